"""18 Recaptioning: a tiny captioner for clips that come without text, and why captions must
be dense.

Concept: production stacks caption their footage with a vision-language model, densely
enough "that a blind person could reconstruct it". minivid's captioner reads a clip's
palette masks (one per object colour) with ONE shared 3-D conv encoder and attribute heads;
the world's captioner turns the attributes into sentences. The blind-person test makes
"dense enough" exact: parse a caption, guess what it leaves open, render, compare.

    OMP_NUM_THREADS=1 python -m pytest tests/test_18_captioner.py -q
"""
import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from helpers import make_dit_inputs, run

from minivid import captioner, captions, checker, world
from minivid.caption_bench import blind_person, caption_accuracy, rebuild_score
from minivid.checkpoint import load_checkpoint
from minivid.data import CaptionedVideos
from minivid.prompt_parse import parse


# 1. Palette masks: one binary mask per object colour, exactly the rendered objects; a
#    tiny-world clip fits the palette, noise does not.
def test_01_palette_masks():
    rng = np.random.default_rng(0)
    scene = world.sample_scene(rng, n_objects=2)
    u8 = world.render(scene)[None]                                   # (1, T, H, W, 3)
    masks, hist, fit = captioner.palette_masks(u8)
    assert masks.shape == (1, 8, 16, 32, 32) and fit.item() == 1.0
    idx = world.render_indices(scene)
    for k, o in enumerate(scene.objects, start=1):
        c = captioner.OBJ_NAMES.index(o.colour)
        assert torch.equal(masks[0, c].bool(), torch.from_numpy(idx == k))
    assert abs(hist.sum().item() - 1) < 1e-5
    noise = np.random.default_rng(1).integers(0, 256, (1, 16, 32, 32, 3), dtype=np.uint8)
    assert captioner.palette_masks(noise)[2].item() < 0.5


# 2. The captioner overfits a handful of clips: after a short training its captions state
#    every attribute of every clip correctly, and they parse back to exactly those.
def test_02_overfits_a_handful_of_clips():
    torch.manual_seed(0)
    rng = np.random.default_rng(2)
    scenes = [world.sample_scene(rng) for _ in range(6)]
    u8 = np.stack([world.render(s) for s in scenes])
    specs = [s.to_dict() for s in scenes]
    model = captioner.CaptionerNet(captioner.CaptionerConfig(width=8))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    masks, hist, _ = captioner.palette_masks(u8)
    for step in range(300):
        loss = captioner.loss_on(model, masks, hist, specs, np.random.default_rng(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    caps = captioner.Captioner(model)(u8)
    by_colour = lambda d: (d["background"], sorted(map(sorted, (o.items() for o in d["objects"]))))  # noqa: E731
    for (text, conf), spec in zip(caps, specs):
        assert by_colour(parse(text).stated()) == by_colour(checker.stated(spec)), text
        hits, total = caption_accuracy(text, spec)
        assert hits == total and conf > 0.5


# 3. The blind-person test: a dense caption rebuilds its clip exactly, a title nearly nothing;
#    the scores are what they say (same scene: 1.0, another background: lower).
def test_03_blind_person():
    rng = np.random.default_rng(3)
    scenes = [world.sample_scene(rng) for _ in range(12)]
    rows = [{"spec": s.to_dict()} for s in scenes]
    caps = {"dense": [captions.dense_caption(s, rng) for s in scenes],
            "title": [captions.title_caption(s, rng) for s in scenes]}
    bp = blind_person(rows, caps)
    assert bp["dense"]["rebuild"] == 1.0 and bp["dense"]["true"] == 1.0
    assert bp["title"]["rebuild"] < 0.5 and bp["title"]["states"] < 1
    s = scenes[0]
    assert rebuild_score(s, s) == 1.0
    other = world.Scene.from_dict({**s.to_dict(), "background": next(
        b for b in world.BACKGROUNDS if b != s.background)})
    assert rebuild_score(s, other) == pytest.approx(len(s.objects) / (1 + len(s.objects)))


# 4. Wider captions: the world now writes six sentence structures (one sentence per object,
#    the background first or alone, participles); the parser reads every one exactly.
def test_04_wider_captions_parse_back():
    rng = np.random.default_rng(4)
    openings = set()
    for i in range(600):
        scene = world.sample_scene(rng, frames=(1, 16)[i % 2])
        text = captions.dense_caption(scene, rng)
        assert parse(text).stated() == checker.stated(scene), text
        openings.add(text.split(" ")[0] if not text.startswith(("Plain", "A short", "A still",
                                                                 "On a"))
                     else " ".join(text.split(" ")[:2]))
    assert len(openings) >= 6


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny world and a captioner trained on it for a few steps (train_captioner.py)."""
    d = tmp_path_factory.mktemp("captioner")
    world.generate(d / "data", {(s, "clips"): 16 for s in ("train", "val", "test")}, seed=0,
                   workers=1)
    run("train_captioner.py", "--data", d / "data", "--out", d / "cap", "--steps", 8,
        "--batch-size", 8)
    return d


# 5. A user's own uncaptioned folder, end to end: images and clips written with imageio are
#    captioned into a manifest that minivid.data reads unchanged; a corrupt file, a greyscale
#    picture and a too-small one are skipped with a warning naming each, and counted.
def test_05_caption_a_folder(trained, tmp_path):
    rng = np.random.default_rng(5)
    folder = tmp_path / "mine"
    folder.mkdir()
    iio.imwrite(folder / "a.gif", world.render(world.sample_scene(rng)), loop=0)
    iio.imwrite(folder / "b.png", world.render(world.sample_scene(rng, frames=1))[0])
    iio.imwrite(folder / "c.mp4", world.render(world.sample_scene(rng)), fps=8)
    (folder / "broken.gif").write_bytes(b"GIF89a not really")
    iio.imwrite(folder / "grey.png", np.full((32, 32), 128, dtype=np.uint8))
    iio.imwrite(folder / "tiny.png", np.zeros((8, 8, 3), dtype=np.uint8))
    r = run("minivid/captioner.py", "caption", "--ckpt", trained / "cap" / "ckpt.pt", "--data",
            folder, "--out", folder / "captions.jsonl")
    assert "captioned 3 file(s)" in r.stdout and "skipped 3" in r.stdout
    for name in ("broken.gif", "grey.png", "tiny.png"):
        assert name in r.stderr and name in r.stdout
    ds = CaptionedVideos(folder / "captions.jsonl", frames=16)
    assert len(ds) == 3 and all(ds[i]["caption"] for i in range(3))
    rows = [json.loads(line) for line in open(folder / "captions.jsonl")]
    assert all(0 <= row["confidence"] <= 1 for row in rows)
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("minivid/captioner.py", "caption", "--ckpt", trained / "cap" / "ckpt.pt", "--data",
            empty, "--out", tmp_path / "x.jsonl", check=False)
    assert r.returncode != 0 and "no images or clips" in r.stderr


# 6. Out of the world: a photo-like picture (smooth colours no palette has) gets what can be
#    said, background and dominant colour, marked low confidence, and no invented shapes.
def test_06_out_of_the_world(trained):
    cap = captioner.Captioner.load(trained / "cap" / "ckpt.pt")
    y, x = np.mgrid[0:32, 0:32]
    photo = np.stack([80 + 3 * x, 120 + 2 * y, 60 + x + y], -1).clip(0, 255).astype(np.uint8)
    (text, conf), = cap(np.repeat(photo[None, None], 16, axis=1), [1])
    assert "low confidence" in text and conf < 0.5
    assert parse(text).stated()["objects"] == []


# 7. The caption experiment's plumbing: relabelled manifests (sparse, title) train the DiT
#    through --captions; a manifest that does not match the cache is refused by name.
def test_07_relabel_and_train_on_other_captions(trained, tmp_path):
    m = trained / "data" / "train" / "clips.jsonl"
    run("minivid/captioner.py", "relabel", "--kind", "title", "--data", m, "--out",
        tmp_path / "title.jsonl")
    rows = [json.loads(line) for line in open(tmp_path / "title.jsonl")]
    assert len(rows) == 16 and CaptionedVideos(tmp_path / "title.jsonl", frames=16)[0]["caption"]
    flags = make_dit_inputs(tmp_path)                       # a synthetic cache of 48 clips
    r = run("train_dit.py", "--stage", "video", "--out", tmp_path / "dit", "--steps", 1,
            "--captions", tmp_path / "title.jsonl", *flags, check=False)
    assert r.returncode != 0 and "has 16 rows" in r.stderr


# 8. evaluate captions: the blind-person table for the four caption kinds, the captioner's
#    accuracy on val and on the compositional split, and a final JSON line.
def test_08_evaluate_captions(trained, tmp_path):
    r = run("minivid/evaluate.py", "captions", "--data", trained / "data", "--captioner",
            trained / "cap" / "ckpt.pt", "--n", 8, "--plot", tmp_path / "c.png")
    fig = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(fig["blind_person"]) == {"dense", "sparse", "title", "captioner"}
    assert fig["blind_person"]["dense"]["rebuild"] == 1.0
    assert 0 <= fig["captioner_accuracy_test"] <= 1 and (tmp_path / "c.png").exists()


# 9. The loss under data parallelism: each rank holds half of the global batch's clips but
#    normalises by the whole batch's counts, so the mean of the ranks' losses (what DDP's
#    gradient average follows) is the one-process loss, with the same absent colours drawn.
#    And train_captioner.py's checkpoint names its trainer (--resume checks it).
def test_09_loss_split_over_ranks_is_the_whole(trained):
    torch.manual_seed(0)
    rng = np.random.default_rng(9)
    scenes = [world.sample_scene(rng) for _ in range(6)]
    masks, hist, _ = captioner.palette_masks(np.stack([world.render(s) for s in scenes]))
    specs = [s.to_dict() for s in scenes]
    model = captioner.CaptionerNet(captioner.CaptionerConfig(width=4))
    whole = captioner.loss_on(model, masks, hist, specs, np.random.default_rng(1))
    halves = [captioner.loss_on(model, masks[r::2], hist[r::2], specs, np.random.default_rng(1),
                                slice(r, None, 2)) for r in (0, 1)]
    assert (halves[0] + halves[1]).item() / 2 == pytest.approx(whole.item(), rel=1e-6)
    ck = load_checkpoint(trained / "cap" / "ckpt.pt", kind="captioner")
    assert ck["trainer"] == "train_captioner.py" and ck["step"] == 8
