"""01c The yardstick: scene checker, tiny FVD, and the `evaluate data` command.

Concept: before a metric judges generated clips it must be right on real ones. The scene
checker reads only pixels and recovers background, colours, shapes, sizes, start cells,
motions and speeds; adherence = fraction of the attributes a caption states that hold.
The Fréchet distance compares two sets of clips in the feature space of a small probe
network trained on tiny-world attributes (our tiny FVD): real-vs-real is small, frames out
of order or noise are far away. The probe trains on the one training loop (minivid/run.py),
so a stopped probe training resumes exactly like any trainer's run.

Run: python -m pytest tests/test_01c_yardstick.py -q
"""
import json

import numpy as np
import pytest
import torch

from minivid import checker, evaluate, fd, world


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A small tiny-world dataset on disk, read back through the normal loader."""
    out = tmp_path_factory.mktemp("world")
    world.generate(str(out), {("train", "clips"): 400, ("val", "clips"): 120}, seed=3,
                   workers=1)
    train, train_specs = fd.load_clips(str(out / "train" / "clips.jsonl"))
    val, val_specs = fd.load_clips(str(out / "val" / "clips.jsonl"))
    caps = [json.loads(line)["caption"] for line in open(out / "val" / "clips.jsonl")]
    return out, train, train_specs, val, val_specs, caps


# 1. On real clips read from disk the checker recovers what the dense caption says.
def test_1_checker_right_on_real_clips(tiny):
    _, _, _, val, specs, caps = tiny
    scores = [checker.adherence(v, c) for v, c in zip(val, caps)]
    assert np.mean(scores) >= 0.99
    # the caption and the structured spec state the same attributes
    assert all(checker.stated(s) == checker.stated(c) for s, c in zip(specs, caps))


# 2. Swapping captions between clips makes adherence collapse: the checker really looks.
def test_2_swapped_captions_score_low(tiny):
    _, _, _, val, _, caps = tiny
    n = len(val)
    swapped = [checker.adherence(val[i], caps[(i + n // 2) % n]) for i in range(n)]
    assert np.mean(swapped) < 0.5


# 3. The checker tolerates the softness of generated clips: a blurred real clip still
#    scores high, while the attributes it states stay exact.
def test_3_checker_tolerates_blur(tiny):
    _, _, _, val, _, caps = tiny
    v = val[:40].astype(np.float32)
    blurred = (v + np.roll(v, 1, 2) + np.roll(v, -1, 2) + np.roll(v, 1, 3) + np.roll(v, -1, 3)) / 5
    scores = [checker.adherence(b.round().astype(np.uint8), c) for b, c in zip(blurred, caps)]
    assert np.mean(scores) >= 0.9


# 3b. Per attribute: which stated attributes hold. Two objects whose positions are swapped
#     keep every attribute but their positions: position_2 (two-object scenes) drops to 0.
def test_3b_score_by_attribute_finds_swapped_positions():
    a = world.Obj("circle", "red", "large", "top left", "still")
    b = world.Obj("square", "blue", "small", "bottom right", "still")
    scene = world.Scene("black", [a, b], frames=1)
    parts = checker.score_by_attribute(checker.detect(world.render(scene)), checker.stated(scene))
    assert all(h == t for h, t in parts.values()) and parts["position_2"] == (2, 2)
    swapped = world.Scene("black", [world.Obj(**{**vars(a), "position": b.position}),
                                    world.Obj(**{**vars(b), "position": a.position})], frames=1)
    parts = checker.score_by_attribute(checker.detect(world.render(swapped)),
                                       checker.stated(scene))
    assert parts["position_2"] == (0, 2) and parts["shape"] == (2, 2)
    assert checker.score(checker.detect(world.render(swapped)), checker.stated(scene)) == (7, 9)


# 4. Fréchet distance: zero for a set against itself, symmetric, and the closed form for
#    two 1-D Gaussians: (m1 - m2)^2 + s1 + s2 - 2 sqrt(s1 s2).
def test_4_frechet_math():
    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (4000, 3))
    assert fd.frechet(a, a) == pytest.approx(0, abs=1e-6)
    b = rng.normal(0.5, 2, (4000, 3))
    assert fd.frechet(a, b) == pytest.approx(fd.frechet(b, a), rel=1e-6)
    x, y = rng.normal(1, 1, (20000, 1)), rng.normal(3, 2, (20000, 1))
    assert fd.frechet(x, y) == pytest.approx((1 - 3) ** 2 + 1 + 4 - 2 * 2, rel=0.05)


# 5. Tiny FVD on real data: val-vs-train is small next to val-vs-shuffled-frames and
#    val-vs-noise (a probe trained briefly already separates them).
@pytest.mark.slow
def test_5_tiny_fvd_separates(tiny, tmp_path):
    _, train, train_specs, val, _, _ = tiny
    probe = fd.train_probe(train, train_specs, tmp_path / "probe", steps=300)
    rng = np.random.default_rng(0)
    f_val, f_train = fd.features(probe, val), fd.features(probe, train)
    shuffled = np.stack([v[rng.permutation(len(v))] for v in val])
    noise = rng.integers(0, 256, val.shape, dtype=np.uint8)
    floor = fd.frechet(f_val, f_train)
    assert fd.frechet(f_val, fd.features(probe, shuffled)) > 2 * floor
    assert fd.frechet(f_val, fd.features(probe, noise)) > 10 * floor


# 6. The command prints a table and, last, one JSON line with the figures.
@pytest.mark.slow
def test_6_evaluate_data_command(tiny, capsys):
    out = tiny[0]
    evaluate.main(["data", "--data", str(out), "--probe-steps", "60"])
    last = capsys.readouterr().out.strip().splitlines()[-1]
    fig = json.loads(last)
    assert fig["eval"] == "data" and fig["adherence_real_val"] >= 0.99
    assert fig["adherence_swapped_captions"] < 0.5
    assert (out / "probe" / "ckpt.pt").exists()  # a run folder, in the one checkpoint format
    assert (out / "probe" / "loss.png").exists()


# 7. The probe's training is a run like any trainer's: stopped at step 3 (as SIGTERM would),
#    load_or_train_probe goes on from its checkpoint and ends bitwise where an unbroken run
#    ends; then the probe is cached (keyed by the manifest's size and mtime).
def test_7_probe_training_resumes(tiny, tmp_path, monkeypatch):
    out, train, specs = tiny[0], tiny[1], tiny[2]
    whole = fd.train_probe(train, specs, tmp_path / "whole", steps=6)
    monkeypatch.setenv("MINIVID_STOP_AFTER", "3")
    with pytest.raises(SystemExit):
        fd.load_or_train_probe(str(out), train, specs, steps=6)
    monkeypatch.delenv("MINIVID_STOP_AFTER")
    ckpt = out / "probe" / "ckpt.pt"
    assert torch.load(ckpt, weights_only=True)["step"] == 3
    resumed = fd.load_or_train_probe(str(out), train, specs, steps=6)
    for (k, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    stamp = ckpt.stat().st_mtime_ns
    cached = fd.load_or_train_probe(str(out), steps=6)   # no clips passed: none needed
    assert ckpt.stat().st_mtime_ns == stamp and torch.equal(
        cached.order.weight, resumed.order.weight)

