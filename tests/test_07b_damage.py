"""07b Damaged histories: teaching clip extension to put back what the history lost (issue 22).

Concept: a long video loses an object suddenly (it fades, turns another colour, changes
shape or size) and then copies the loss forward, although the clean anchor frame still shows
it. In training the history is always real, so the model never saw a wrong history followed
by a right clip. minivid/damage.py renders such histories with the world itself (one object
damaged from some clip on, the damage ramping in over that clip), encodes them with the VAE,
and train_extend.py --damage continues them with the REAL next clip as the target.

    OMP_NUM_THREADS=1 python -m pytest tests/test_07b_damage.py -q -m "slow or not slow"
"""
import numpy as np
import pytest
import torch
from helpers import make_extend_model, make_vae, run

from minivid import damage, video_identity
from minivid.checkpoint import load_checkpoint
from minivid.latents import encode_uint8
from minivid.long_clips import CLIP, clip_start, sample_long_scene
from minivid.scene import Obj, Scene, render


def two_objects(frames=1 + 3 * CLIP):
    return Scene("navy", [Obj("square", "green", "large", "left", "right", "slow"),
                          Obj("circle", "white", "small", "top right", "still")], frames)


# 1. How a long video loses an object (video_identity.losses): kept whole, gone (no object of
#    its colour, nothing new), recoloured (gone, and a new colour is there), or kept with another
#    shape / size. Looking at these per video is what showed the failures are sudden and stay.
def test_01_how_identity_is_lost():
    red = {"colour": "red", "shape": "circle", "size": "large", "size_median": "large"}
    blue = {"colour": "blue", "shape": "square", "size": "small", "size_median": "small"}
    first = {"background": "black", "objects": [red, blue]}
    same = video_identity.losses(first, first)
    assert same == {"kept": 2, "gone": 0, "recoloured": 0, "shape": 0, "size": 0, "objects": 2}
    faded = video_identity.losses(first, {"background": "black", "objects": [red]})
    assert faded["gone"] == 1 and faded["kept"] == 1
    turned = video_identity.losses(first, {"background": "black",
                                           "objects": [red, dict(blue, colour="cyan")]})
    assert turned["recoloured"] == 1 and turned["gone"] == 0
    both = video_identity.losses(first, {"background": "black", "objects": [dict(red, colour="orange")]})
    assert both["recoloured"] == 1 and both["gone"] == 1     # one new colour explains one loss
    blob = video_identity.losses(first, {"background": "black", "objects": [
        dict(red, shape="triangle", size_median="small"), blue]})
    assert blob["shape"] == 1 and blob["size"] == 1 and blob["kept"] == 1


# 1b. Clip 1 is the reference, flaws and all: each of its objects is "drawn as asked" (the
#     prompt names its colour with its shape and size) or otherwise, and identity is counted
#     per object in each group, so a later clip that mends a flawed start shows apart from one
#     that loses a right one.
def test_01b_identity_by_how_clip_1_drew_it():
    prompt = "A big red circle stays still in the middle. All on a plain black background."
    right = {"colour": "red", "shape": "circle", "size": "large", "size_median": "large"}
    wrong = dict(right, shape="square")                          # drawn as another shape
    stray = {"colour": "cyan", "shape": "circle", "size": "small", "size_median": "small"}
    assert video_identity.as_asked(right, prompt)
    assert not video_identity.as_asked(wrong, prompt)
    assert not video_identity.as_asked(dict(right, size_median="small"), prompt)
    assert not video_identity.as_asked(stray, prompt)            # the prompt never named it
    later = {"background": "black", "objects": [right]}
    assert video_identity.object_kept(right, later) == (3, 3)
    assert video_identity.object_kept(wrong, later) == (2, 3)    # mended: counts as a loss
    assert video_identity.object_kept(stray, later) == (0, 3)    # gone: all three parts
    # the same through score_one_prompt: two 2-clip videos, one drawn right, one wrong, each
    # with a later clip that shows the right circle
    scene = Scene("black", [Obj("circle", "red", "large", "centre", "still", "slow")], 1 + 2 * CLIP)
    good = render(scene)
    bad = good.copy()
    bad[:clip_start(1)] = render(Scene("black", [Obj("square", "red", "large", "centre", "still",
                                                     "slow")], 1 + 2 * CLIP))[:clip_start(1)]
    sc = video_identity.score_one_prompt(np.stack([good, bad]), [prompt, prompt], 2)
    assert sc["clip1_objects"] == 2 and sc["drawn_as_asked"] == 0.5
    assert sc["identity_by_start"]["as_asked"][1] == 1.0        # the right circle kept
    assert sc["identity_by_start"]["otherwise"][1] == 2 / 3     # the square mended to a circle


# 2. Each kind of damage changes one thing of one object, and nothing else; a drifting colour
#    turns into one of its two nearest neighbours (green: cyan or yellow).
def test_02_damaged_scene():
    s, rng = two_objects(), np.random.default_rng(0)
    assert damage.nearest_colours("green") == ["cyan", "yellow"]
    gone = damage.damaged_scene(s, 0, "vanish", rng)
    assert [o.colour for o in gone.objects] == ["white"]
    for kind, field in (("recolour", "colour"), ("reshape", "shape"), ("resize", "size")):
        d = damage.damaged_scene(s, 0, kind, rng)
        assert getattr(d.objects[0], field) != getattr(s.objects[0], field)
        assert d.objects[1] == s.objects[1] and d.background == s.background
        others = {"colour", "shape", "size"} - {field}
        assert all(getattr(d.objects[0], f) == getattr(s.objects[0], f) for f in others)
    assert s.objects[0].colour == "green" and len(s.objects) == 2    # the original untouched
    with pytest.raises(ValueError, match="unknown damage"):
        damage.damaged_scene(s, 0, "melt", rng)


# 3. The damage arrives over one clip and stays: a(t) is 0 before clip k0, rises to the depth
#    over its 16 frames, and holds; at depth 1 the object is simply gone from the pixels.
def test_03_ramp_and_video():
    a = damage.damage_ramp(1 + 3 * CLIP, k0=1, depth=0.8)
    s = clip_start(1)
    assert (a[:s] == 0).all() and np.all(np.diff(a[s:s + CLIP]) > 0)
    assert np.allclose(a[s + CLIP - 1:], 0.8)
    scene = two_objects()

    class Pick:   # a generator that chooses object 0, "vanish", clip 1, depth 1
        def integers(self, lo, hi=None):
            return 0 if hi is None else 1

        def choice(self, options):
            return options[0]

        def uniform(self, lo, hi):
            return 1.0

    video, done = damage.damaged_video(scene, 3, Pick())
    assert done == dict(object=0, kind="vanish", clip=1, depth=1.0)
    real, without = render(scene), render(damage.damaged_scene(scene, 0, "vanish", None))
    assert np.array_equal(video[:s], real[:s])                      # before: the real video
    assert np.array_equal(video[s + CLIP:], without[s + CLIP:])     # after: the object gone


# 4. The bank: every long clip damaged and encoded; the latent frames before the damage are
#    exactly the real clip's (the VAE is causal: the future cannot change them), the ones
#    after differ; the same seed gives the same bank, however many videos are encoded at a
#    time; a clip without a scene, or long clips too short to damage, are refused.
def test_04_bank(tmp_path):
    vae = make_vae(tmp_path / "vae.pt", seed=0).eval()
    rng = np.random.default_rng(0)
    scenes = [sample_long_scene(rng, "train", 4) for _ in range(6)]
    bank, done = damage.build_bank(vae, scenes, torch.arange(6), 4, shift=0.5, scale=2.0, seed=3)
    assert bank.shape == (6, 3, 1 + 4 * 4, 8, 8) and len(done) == 6
    assert {d["kind"] for d in done} <= set(damage.KINDS) and all(1 <= d["clip"] <= 2 for d in done)
    real, _ = encode_uint8(vae, np.stack([render(s) for s in scenes]))
    real = (real.float() - 0.5) / 2.0
    for i, d in enumerate(done):
        L = 1 + 4 * d["clip"]                # latent frames of clips 0 .. k0 - 1
        before = (bank[i, :, :L] - real[i, :, :L]).abs().max()
        after = (bank[i, :, L:] - real[i, :, L:]).abs().max()
        assert before < 1e-2 < after, (before, after)   # float16 latents: 1e-2 is rounding
    again, _ = damage.build_bank(vae, scenes, torch.arange(6), 4, shift=0.5, scale=2.0, seed=3)
    assert torch.equal(bank, again)
    few, _ = damage.build_bank(vae, scenes, torch.arange(6), 4, 0.5, 2.0, seed=3, batch_size=4)
    assert torch.allclose(few, bank, atol=1e-2)  # built a few videos at a time: the same bank
    with pytest.raises(ValueError, match="no scene spec"):
        damage.build_bank(vae, scenes[:1] + [None], torch.arange(2), 4, 0.0, 1.0)
    with pytest.raises(ValueError, match=">= 3"):
        damage.build_bank(vae, scenes, torch.arange(2), 2, 0.0, 1.0)


# 5. train_extend.py --damage end to end: the bank is built at the start, the checkpoint says
#    what was trained, a resumed run keeps the run's own choice; bad flags name the fix.
@pytest.mark.slow  # real script runs: `-m slow`
def test_05_train_extend_damage(tmp_path):
    d = tmp_path
    common = make_extend_model(d)
    r = run("train_extend.py", "--out", d / "dmg", "--steps", 2, "--damage", 1.0,
            "--damage-videos", 4, "--piece-noise", 0.5, "--init-from", d / "extend" / "ckpt.pt",
            *common)
    assert "damage bank: 4 long clips" in r.stdout
    used = int(r.stdout.split("bank steps: ")[1].split()[0])
    assert used >= 1                                  # the bank really gave histories
    ckpt = load_checkpoint(d / "dmg" / "ckpt.pt", kind="dit")
    assert ckpt["extra"]["damage"] == {"share": 1.0, "videos": 4}
    r = run("train_extend.py", "--out", d / "dmg", "--steps", 4, "--init-from",
            d / "extend" / "ckpt.pt", "--resume", *common)        # no --damage: kept anyway
    ckpt = load_checkpoint(d / "dmg" / "ckpt.pt", kind="dit")
    assert ckpt["step"] == 4 and ckpt["extra"]["damage"]["share"] == 1.0
    assert "damage bank: 4 long clips" in r.stdout
    base = ["--out", d / "x", "--steps", 1, "--init-from", d / "extend" / "ckpt.pt", *common]
    for flags, why in ((["--damage", 2], "must be in [0, 1]"),
                       (["--damage", 0.5, "--rollouts", 0.5], "one at a time"),
                       (["--damage", 0.5, "--damage-videos", 2], "smaller than --batch-size")):
        r = run("train_extend.py", *base, *flags, check=False)
        assert r.returncode != 0 and why in r.stderr, r.stderr[-500:]
