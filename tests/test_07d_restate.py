"""07d Restating who is in a long video from what its first clip shows (issue 22).

Concept: at the main job's scale the continuation reads WHERE things are from its history and
WHO they are from its text; when clip 1 draws an object other than asked, the later clips
follow the text and the video changes who is in it. minivid/restate.py mends the text: once
clip 1 exists, a reader (the learned captioner of stage 2, or the scene checker's rule)
describes it, and that description is every later clip's prompt. sampling.sample_long takes
the hook (it sees latents); Pipeline.extend gives it the decoded clip.

    OMP_NUM_THREADS=1 python -m pytest tests/test_07d_restate.py -q
(sample.py --restate and evaluate extend --restate: tests/test_07e_extend_scripts.py, 2b, 3b)
"""
import numpy as np
import pytest
import torch

from minivid import captions, world
from minivid.restate import Restater, cast_text, missing_reader, restater
from minivid.sampling import sample_long
from minivid.t2v import build_model, make_config
from minivid.text import build_vocab


# 1. The restater swaps the text of one-prompt videos for what its reader says of clip 1; a
#    video steered clip by clip keeps its prompts, and a reader with nothing to say (None: a
#    clip outside the world) keeps the user's. Clips of the wrong shape are refused.
def test_01_restater_swaps_one_prompt_videos():
    said = iter(["A small blue square.", None, "A large red circle."])
    r = Restater(lambda u8: [next(said) for _ in u8], "fake")        # take="all": the default
    first = np.zeros((3, 17, 32, 32, 3), np.uint8)
    prompts = ["A large red circle.", "A green box.", ["clip one", "clip two"]]
    assert r(prompts, first) == ["A small blue square.", "A green box.", ["clip one", "clip two"]]
    assert r.last[0] == "A small blue square."                          # the last call's
    with pytest.raises(ValueError, match="one clip per prompt"):
        r(prompts, first[:2])
    with pytest.raises(ValueError, match=">= 16"):
        r(prompts, first[:, :8])
    assert restater("none") is None and restater("rule").name == "rule"
    with pytest.raises(ValueError, match="one of"):
        restater("oracle")
    with pytest.raises(ValueError, match="one of"):
        Restater(None, "fake", take="some")


# 1b. take="who": the reading says who is there (colour, shape, the
#     background), the prompt how big each object is and how it moves; a cast drawn as asked
#     keeps the prompt word for word; a reading that names nothing keeps it too.
def test_01b_cast_text():
    p = ("A large red circle that starts on the left and moves quickly to the right; and a "
         "small blue square in the top right corner, which sinks. The background is plain grey.")
    seen = ("A big red box at the left, not moving. A tiny blue square starts at the top right "
            "and drifts down. Background: plain grey.")
    got = captions.parse_caption(cast_text(p, seen))
    assert got["background"] == "grey" and all("position" not in o for o in got["objects"])
    assert sorted((o["colour"], o["shape"], o["size"], o["motion"]) for o in got["objects"]) == \
        [("blue", "square", "small", "down"), ("red", "square", "large", "right")]
    drawn_right = "A big red ball on the left, still; and a tiny blue box at the top right. Plain grey background."
    assert cast_text(p, drawn_right) == p                         # sizes, motions: the prompt's
    assert cast_text(p, "Nothing but noise.") == p


# 1c. Before anything loads, a missing learned reader is named with its fix (sample.py and
#     evaluate extend print this same line); the rule and "none" need no file.
def test_01c_missing_reader(tmp_path):
    assert missing_reader("rule", None) is None and missing_reader("none", None) is None
    why = missing_reader("captioner", str(tmp_path / "none.pt"))
    assert "none.pt not found" in why and "train_captioner.py" in why and "--restate rule" in why


# 2. The rule reads a rendered clip as the world made it: the same objects (colour, shape,
#    size) and background; its positions are what a later clip loses anyway.
def test_02_rule_reads_a_rendered_clip():
    rng = np.random.default_rng(7)
    for _ in range(5):
        scene = world.sample_scene(rng, frames=17)
        said = Restater.rule()([""], world.render(scene)[None])[0]
        got = captions.parse_caption(said)
        assert got["background"] == scene.background
        assert sorted((o["colour"], o["shape"], o["size"]) for o in got["objects"]) == \
            sorted((o.colour, o.shape, o.size) for o in scene.objects), said


# 3. sample_long calls the hook once, when clip 1 exists (made here or given as history), with
#    its latents (B, C, 5, h, w). Returning the same prompts changes nothing, bit for bit;
#    other prompts change the later clips only.
def test_03_sample_long_restates_after_clip_1():
    torch.manual_seed(0)
    p = "A large red circle moves to the right. The background is plain black."
    q = "A small blue square moves down. The background is plain white."
    config = make_config("tiny", build_vocab([p, q]), channels=4)
    config["dit"].update(dim=32, depth=1, heads=2, context_kernels=(2, 4))
    config["text"].update(dim=32, depth=1, heads=2)
    config["dit"]["text_dim"] = 32
    model = build_model(config).eval()
    for w in model.parameters():       # wake the zero-initialised gates: text and history count
        torch.nn.init.normal_(w, std=0.05)
    seen = []

    def same(prompts, z1):
        seen.append(tuple(z1.shape))
        return prompts

    kw = dict(steps=1, latent_hw=(8, 8), anchor="full")
    plain = sample_long(model, [p, p], 3, "pack", **kw)                   # (2, 4, 13, 8, 8)
    assert torch.equal(sample_long(model, [p, p], 3, "pack", restate=same, **kw), plain)
    assert seen == [(2, 4, 5, 8, 8)]                                      # once, clip 1 only
    other = sample_long(model, [p, p], 3, "pack", restate=lambda ps, z1: [q, q], **kw)
    assert torch.equal(other[:, :, :5], plain[:, :, :5])                  # clip 1: as before
    assert not torch.equal(other[:, :, 5:], plain[:, :, 5:])              # later: the new text
    seen.clear()
    sample_long(model, [p, p], 1, "pack", history=plain[:, :, :9], restate=same, **kw)
    assert seen == [(2, 4, 5, 8, 8)]                                      # a given history's
