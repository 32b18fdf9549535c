"""02 Recaptioning: a learned captioner for clips that come without text, robust to footage.

Concept: production stacks caption their footage with a vision-language model, densely
enough "that a blind person could reconstruct it". minivid's captioner is one in miniature:
a 3-D conv video encoder and a GPT-style decoder that cross-attends to it, trained on
footage-like clips (anti-aliased, compressed, colour-shifted, blurred, noisy, with objects
of no known colour) and captions phrased anew each time. The blind-person test makes "dense
enough" exact: parse a caption, guess what it leaves open, render, compare; the rule it must
beat is the scene checker's reading written out (zero parameters).

    OMP_NUM_THREADS=1 python -m pytest tests/test_02_captioner.py -q
"""
import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from helpers import make_dit_inputs, make_vae, run

from minivid import caption_data, caption_folder, captioner, captions, checker, footage, world
from minivid.caption_bench import (calibration, caption_accuracy, rebuild, rebuild_score,
                                   rule_caption)
from minivid.checkpoint import load_checkpoint
from minivid.data import CaptionedVideos
from minivid.prompt_parse import parse


# 1. Footage: every perturbation keeps the clip's shape and changes its pixels; supersampling
#    mixes colours at the edges (the exact render has only the scene's colours); the
#    distractor's colour is off the palette, yet the nearest-palette rule snaps it to a world
#    colour: the mistake a learned captioner must not make.
def test_01_footage_perturbations():
    rng = np.random.default_rng(1)
    scene = world.sample_scene(rng, n_objects=1)
    exact = world.render(scene)
    clips, added = footage.footage([scene] * 8, ["exact", *footage.PERTURBATIONS], rng)
    assert np.array_equal(clips[0], exact) and added == [False] * 7 + [True]
    for kind, u8 in zip(footage.PERTURBATIONS, clips[1:]):
        assert u8.shape == exact.shape and u8.dtype == np.uint8, kind
        assert (u8 != exact).any(), kind
    colours = lambda u8: len(np.unique(u8.reshape(-1, 3), axis=0))  # noqa: E731
    assert colours(exact) == 2 and colours(clips[1]) > 2                       # antialias
    off = np.array(list(footage.OFF_PALETTE.values()))
    has_off = (clips[7][..., None, :] == off).all(-1).any()
    assert has_off and len(checker.detect(clips[7])["objects"]) == 2            # named wrongly


# 2. Words and pairs: the vocabulary holds every word of the world's dense captions (and of
#    the unknown and outside sentences); encode/pad line each word up with the next; a batch
#    has stills, perturbations and outside clips, and never a held-out scene.
def test_02_vocabulary_and_training_pairs():
    vocab = caption_data.vocabulary()
    index = {w: i for i, w in enumerate(vocab)}
    rng = np.random.default_rng(2)
    for i in range(300):
        scene = world.sample_scene(rng, ("train", "test")[i % 2], frames=(1, 16)[i % 3 > 0])
        ids = caption_data.encode(captions.dense_caption(scene, rng), scene.frames == 1, index)
        assert caption_data.UNK not in ids
    ids, targets = caption_data.pad([[2, 4, 10, 11, 3], [2, 5, 12, 3]])
    assert ids.tolist() == [[2, 4, 10, 11, 3], [2, 5, 12, 3, 0]]
    assert targets.tolist() == [[0, 10, 11, 3, 0], [0, 12, 3, 0, 0]]      # the flag is given
    u8, caps, stills, specs = caption_data.training_batch(np.random.default_rng(3), 64)
    assert u8.shape == (64, 16, 32, 32, 3) and any(stills) and caption_data.OUTSIDE in caps
    held = {caption_data.scene_key(s) for s in specs if s is not None}
    _, _, _, again = caption_data.training_batch(np.random.default_rng(3), 64, held)
    assert not held & {caption_data.scene_key(s) for s in again if s is not None}


def tiny_model(**kw):
    torch.manual_seed(0)
    cfg = captioner.CaptionerConfig(vocab=caption_data.vocabulary(), width=8, dim=64, depth=2,
                                    heads=4, **kw)
    return captioner.CaptionerNet(cfg)


# 3. Shapes and the key/value cache: the decoder's logits word by word (each new word
#    attending to the cached keys) equal one causal pass over the whole caption; and the
#    words depend on the video (cross-attention reads it).
def test_03_decoder_cache_equals_full_pass():
    model = tiny_model().eval()
    video = torch.rand(2, 3, 16, 32, 32) * 2 - 1
    tokens = model.encoder(video)
    assert tokens.shape == (2, 64, 64)
    ids = torch.randint(4, len(model.cfg.vocab), (2, 9))
    full = model.words(ids, tokens)                                          # (B, L, V)
    caches = [{} for _ in model.blocks]
    steps = [model.words(ids[:, :2], tokens, 0, caches)]
    steps += [model.words(ids[:, i:i + 1], tokens, i, caches) for i in range(2, 9)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)
    other = model.words(ids, model.encoder(-video))
    assert (other - full).abs().max() > 1e-3
    with pytest.raises(ValueError, match="reads"):
        model.encoder(torch.zeros(1, 3, 8, 32, 32))


# 4. A tiny captioner overfits a handful of clips (and an outside clip): greedy decoding then
#    writes each caption back word for word, and the outside clip comes back marked as such
#    with confidence 0 (no invented scene), also when only its P(outside) crosses the line.
def test_04_overfits_a_handful_of_clips():
    model = tiny_model()
    rng = np.random.default_rng(4)
    scenes = [world.sample_scene(rng) for _ in range(4)]
    texts = [captions.dense_caption(s, rng) for s in scenes] + [caption_data.OUTSIDE]
    u8 = np.stack([world.render(s) for s in scenes] + [caption_data.outside_clip(rng)])
    index = {w: i for i, w in enumerate(model.cfg.vocab)}
    ids, targets = caption_data.pad([caption_data.encode(t, False, index) for t in texts])
    video = captioner.to_video(u8)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        loss = captioner.caption_loss(model, video, ids, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
    said = captioner.Captioner(model)(u8)
    for (text, conf), want in zip(said[:4], texts):
        assert text == want and 0 <= conf <= 1
    assert said[4] == (caption_data.OUTSIDE, 0.0)
    # The gate: P(outside) (the first word's probability of "not ...") is high for the outside
    # clip, low for the scenes; a line below the scenes' P(outside) marks them outside too.
    p_out = [p for _, _, p in captioner.describe(model, u8, [False] * 5)]
    assert max(p_out[:4]) < 0.5 < p_out[4]
    strict = captioner.Captioner(model, outside=-1.0)(u8)
    assert all(said == (caption_data.OUTSIDE, 0.0) for said in strict)


# 5. The blind-person test: a dense caption rebuilds its clip exactly, a title nearly nothing;
#    the scores are what they say (same scene: 1.0, another background: lower). The parser
#    reads every one of the world's six sentence structures exactly.
def test_05_blind_person():
    rng = np.random.default_rng(5)
    scenes = [world.sample_scene(rng, frames=(1, 16)[i % 2]) for i in range(300)]
    for s in scenes:
        text = captions.dense_caption(s, rng)
        assert parse(text).stated() == checker.stated(s), text
        assert rebuild(text, s, 0) == 1.0
    assert np.mean([rebuild(captions.title_caption(s, rng), s, i)
                    for i, s in enumerate(scenes[:20])]) < 0.5
    s = scenes[1]
    other = world.Scene.from_dict({**s.to_dict(), "background": next(
        b for b in world.BACKGROUNDS if b != s.background)})
    assert rebuild_score(s, other) == pytest.approx(len(s.objects) / (1 + len(s.objects)))


# 6. The rule baseline reads exact renders perfectly (it is the scene checker) and names a
#    distractor with a world colour: accuracy drops for the objects it made up.
def test_06_rule_baseline():
    rng = np.random.default_rng(6)
    scenes = [world.sample_scene(rng, n_objects=1) for _ in range(8)]
    for s in scenes:
        text = rule_caption(world.render(s), False, rng)
        assert caption_accuracy(text, s.to_dict()) == (len(checker.stated(s)["objects"][0]) + 1,) * 2
    clips, added = footage.footage(scenes, ["distractor"] * 8, rng)
    acc = [np.divide(*caption_accuracy(rule_caption(c, False, rng), s.to_dict()))
           for c, s, a in zip(clips, scenes, added) if a]
    assert acc and np.mean(acc) < 0.9


# 7. Calibration: the Platt fit recovers a known logistic relation from noisy 0/1 outcomes;
#    calibration() bins confidence against accuracy and reports the largest gap and the
#    count-weighted one (ece); a confidence that lies (always 0.99) shows in both.
def test_07_calibration():
    rng = np.random.default_rng(7)
    x = rng.normal(-1, 1, (4000, 2))
    p = 1 / (1 + np.exp(-(2 * x[:, 0] + 0.5 * x[:, 1] + 1)))
    y = (rng.random(4000) < p).astype(float)
    a, b, c = captioner.calibrate([tuple(v) for v in x], list(y))
    assert (a, b, c) == pytest.approx((2, 0.5, 1), abs=0.2)
    conf = [captioner.confidence(tuple(v), (a, b, c)) for v in x]
    fig = calibration(list(zip(conf, y)))
    assert sum(b["captions"] for b in fig["bins"]) == 4000 and fig["max_gap"] < 0.05
    assert fig["ece"] <= fig["max_gap"] and fig["ece"] < 0.03
    liar = calibration([(0.99, a) for a in y])
    assert liar["ece"] == pytest.approx(0.99 - y.mean()) and liar["max_gap"] == liar["ece"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny world and a captioner trained on it for a few steps (train_captioner.py)."""
    d = tmp_path_factory.mktemp("captioner")
    world.generate(d / "data", {(s, k): 16 for s in ("train", "val", "test")
                                for k in ("clips", "images")}, seed=0, workers=1)
    run("train_captioner.py", "--data", d / "data", "--out", d / "cap", "--steps", 8,
        "--batch-size", 8, "--calibration", 32)
    return d


# 8. A user's own uncaptioned folder, end to end (minivid/caption_folder.py): images and clips
#    written with imageio are captioned into a manifest that minivid.data reads unchanged; a
#    corrupt file, a greyscale picture, a too-small one, an odd-sized one and an over-long
#    one are skipped with a warning naming each, and counted.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_08_caption_a_folder(trained, tmp_path, monkeypatch):
    rng = np.random.default_rng(8)
    folder = tmp_path / "mine"
    folder.mkdir()
    iio.imwrite(folder / "a.gif", world.render(world.sample_scene(rng)), loop=0)
    iio.imwrite(folder / "b.png", world.render(world.sample_scene(rng, frames=1))[0])
    iio.imwrite(folder / "c.mp4", world.render(world.sample_scene(rng)), fps=8)
    (folder / "broken.gif").write_bytes(b"GIF89a not really")
    iio.imwrite(folder / "grey.png", np.full((32, 32), 128, dtype=np.uint8))
    iio.imwrite(folder / "tiny.png", np.zeros((8, 8, 3), dtype=np.uint8))
    iio.imwrite(folder / "wide.png", np.zeros((20, 100, 3), dtype=np.uint8))
    frames = rng.integers(0, 255, (caption_folder.MAX_FRAMES + 1, 16, 16, 3), dtype=np.uint8)
    iio.imwrite(folder / "long.gif", frames, loop=0)
    r = run("minivid/caption_folder.py", "caption", "--ckpt", trained / "cap" / "ckpt.pt", "--data",
            folder, "--out", folder / "captions.jsonl")
    assert "captioned 3 file(s)" in r.stdout and "skipped 5" in r.stdout
    for name, why in [("broken.gif", "unreadable"), ("grey.png", "greyscale"),
                      ("tiny.png", "too small"), ("wide.png", "odd-sized"),
                      ("long.gif", "too long")]:
        assert name in r.stderr and f"{name}: {why}" in r.stdout.replace(str(folder) + "/", "")
    ds = CaptionedVideos(folder / "captions.jsonl", frames=16)
    assert len(ds) == 3 and all(ds[i]["caption"] for i in range(3))
    rows = [json.loads(line) for line in open(folder / "captions.jsonl")]
    assert all(0 <= row["confidence"] <= 1 for row in rows)
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("minivid/caption_folder.py", "caption", "--ckpt", trained / "cap" / "ckpt.pt", "--data",
            empty, "--out", tmp_path / "x.jsonl", check=False)
    assert r.returncode != 0 and "no images or clips" in r.stderr


# 9. The caption experiment's plumbing: relabelled manifests (sparse, title) train the DiT
#    through --captions; a manifest that does not match the cache is refused by name.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_09_relabel_and_train_on_other_captions(trained, tmp_path):
    m = trained / "data" / "train" / "clips.jsonl"
    run("minivid/caption_folder.py", "relabel", "--kind", "title", "--data", m, "--out",
        tmp_path / "title.jsonl")
    rows = [json.loads(line) for line in open(tmp_path / "title.jsonl")]
    assert len(rows) == 16 and CaptionedVideos(tmp_path / "title.jsonl", frames=16)[0]["caption"]
    flags = make_dit_inputs(tmp_path)                       # a synthetic cache of 48 clips
    r = run("train_dit.py", "--stage", "video", "--out", tmp_path / "dit", "--steps", 1,
            "--captions", tmp_path / "title.jsonl", *flags, check=False)
    assert r.returncode != 0 and "has 16 rows" in r.stderr


# 10. evaluate captions: a row per condition (clean, images, compositional, each
#     perturbation, and with --vae the clips through a VAE round trip) for ground truth, rule
#     and learned; calibration bins; a final JSON line. The ground truth rebuilds the clean
#     clips exactly; the rule too. The round trip changes the pixels, never the truth. A
#     captioner or a VAE that is not there is refused, naming the command that makes it.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_10_evaluate_captions(trained, tmp_path):
    make_vae(tmp_path / "vae.pt", seed=0)
    r = run("minivid/evaluate.py", "captions", "--data", trained / "data", "--captioner",
            trained / "cap" / "ckpt.pt", "--n", 6, "--plot", tmp_path / "c.png",
            "--vae", tmp_path / "vae.pt")
    fig = json.loads(r.stdout.strip().splitlines()[-1])
    rows = fig["conditions"]
    assert list(rows) == ["exact", "images", "compositional", *footage.PERTURBATIONS, "vae"]
    assert rows["vae"]["truth"]["rebuild"] == 1.0 and "vae" in r.stdout
    assert rows["exact"]["truth"]["rebuild"] == 1.0 and rows["exact"]["rule"]["rebuild"] == 1.0
    assert all(0 <= r["learned_rebuild"] <= 1 for r in rows.values())
    assert sum(b["captions"] for b in fig["calibration"]["bins"]) == 6 * len(rows)
    assert 0 <= fig["outside_marked"] <= 1 and (tmp_path / "c.png").exists()
    r = run("minivid/evaluate.py", "captions", "--data", trained / "data", "--captioner",
            trained / "nothing.pt", check=False)
    assert r.returncode != 0 and "train_captioner.py" in r.stderr
    r = run("minivid/evaluate.py", "captions", "--data", trained / "data", "--vae",
            trained / "nothing.pt", check=False)
    assert r.returncode != 0 and "train_vae.py" in r.stderr


# 11. The loss under data parallelism: each rank holds half of the batch's clips but divides
#     by the whole batch's word count, so the mean of the ranks' losses (what DDP's gradient
#     average follows) is the one-process loss. And the checkpoint names its trainer and
#     carries the confidence's Platt fit and its outside-the-world line.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_11_loss_split_over_ranks_is_the_whole(trained):
    model = tiny_model()
    u8, caps, stills, _ = caption_data.training_batch(np.random.default_rng(11), 6)
    index = {w: i for i, w in enumerate(model.cfg.vocab)}
    ids, targets = caption_data.pad([caption_data.encode(c, s, index) for c, s in zip(caps, stills)])
    video = captioner.to_video(u8)
    whole = captioner.caption_loss(model, video, ids, targets)
    tokens = int((targets != caption_data.PAD).sum())
    halves = [captioner.caption_loss(model, video[r::2], ids[r::2], targets[r::2], tokens, 2)
              for r in (0, 1)]
    assert (halves[0] + halves[1]).item() / 2 == pytest.approx(whole.item(), rel=1e-5)
    ck = load_checkpoint(trained / "cap" / "ckpt.pt", kind="captioner")
    assert ck["trainer"] == "train_captioner.py" and ck["step"] == 8
    assert len(ck["extra"]["platt"]) == 3 and 0 <= ck["extra"]["outside"] <= 1


# 12. A reader of decoded clips: with --vae, the rows drawn from (seed, step) go through the
#     VAE's round trip before the captioner sees them; the checkpoint keeps the flags (a
#     --resume with another VAE is warned like any changed flag). A share outside [0, 1] and
#     a VAE that is not there are refused by name.
@pytest.mark.slow  # a real script run: `-m slow`
def test_12_train_on_decoded_clips(trained, tmp_path):
    make_vae(tmp_path / "vae.pt", seed=0)
    run("train_captioner.py", "--data", trained / "data", "--out", tmp_path / "cap", "--steps",
        2, "--batch-size", 8, "--calibration", 32, "--vae", tmp_path / "vae.pt", "--p-vae", 1)
    ck = load_checkpoint(tmp_path / "cap" / "ckpt.pt", kind="captioner")
    assert ck["step"] == 2 and ck["args"]["vae"] == str(tmp_path / "vae.pt")
    for flags, words in [(["--p-vae", "1.5"], "between 0 and 1"),
                         (["--vae", tmp_path / "none.pt"], "train_vae.py")]:
        r = run("train_captioner.py", "--data", trained / "data", "--out", tmp_path / "x",
                "--steps", 1, *flags, check=False)
        assert r.returncode != 0 and words in r.stderr, r.stderr
