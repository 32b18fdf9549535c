"""04d train_dit / sample: an image model first, then video, then prompts -> pixels.

Concept: train_dit.py trains the text encoder and the DiT together with flow matching on
cached VAE latents: first on still images (T = 1 latent frame), then, starting from that
checkpoint, on clips (T = 5 latent frames for a tf = 4 VAE). The checkpoint carries all it
needs (configs with the vocabulary, EMA weights, the VAE's path and fingerprint, the latent
normalisation), so sample.py rebuilds everything from it alone; sampling is deterministic for
a seed. Bad inputs fail early and say why: an empty prompt, a VAE checkpoint passed as a DiT,
a DiT of another architecture, a latent cache made by another VAE, --resume with nothing to
resume. A diverging run skips non-finite steps, then stops with a clear error and keeps its
last good checkpoint.

Everything here runs the real scripts (subprocesses, as a user would) on a tiny synthetic
latent cache made by a random-weight VAE, for a handful of steps: seconds each.

    OMP_NUM_THREADS=1 python -m pytest tests/test_04d_train_dit.py -q
"""
import numpy as np
import pytest
import torch
from helpers import make_cache, make_vae, run

from minivid.checkpoint import load_checkpoint, save_checkpoint

pytestmark = pytest.mark.slow  # real runs of train_dit.py and sample.py (the quick path in
#                                 tests/test_09f runs them end to end in the default tier)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """VAE + latent cache, then a 6-step image run and a 4-step video run from it."""
    d = tmp_path_factory.mktemp("train_dit")
    vae = make_vae(d / "vae.pt", seed=0)
    make_cache(d / "latents", vae)
    common = ["--vae", d / "vae.pt", "--latents", d / "latents", "--batch-size", 8,
              "--warmup", 2, "--save-every", 3]
    run("train_dit.py", "--stage", "image", "--out", d / "image", "--steps", 6,
        "--sample-every", 6, *common)
    run("train_dit.py", "--stage", "video", "--out", d / "video", "--steps", 4,
        "--init-from", d / "image" / "ckpt.pt", *common)
    return d, common


# 1. Image stage, then the video stage from it: checkpoints carry everything sampling needs.
def test_01_image_then_video(setup):
    d, _ = setup
    img = load_checkpoint(d / "image" / "ckpt.pt", kind="dit")
    vid = load_checkpoint(d / "video" / "ckpt.pt", kind="dit")
    assert img["step"] == 6 and vid["step"] == 4
    assert img["extra"]["latent_frames"] == 1 and vid["extra"]["latent_frames"] == 5
    assert img["config"] == vid["config"]  # same architecture, vocabulary included
    vocab = img["config"]["text"]["vocab"]
    assert "moves" in vocab and "quickly" in vocab  # motion words: from the clip captions too
    for ck in (img, vid):
        assert set(ck["model"]) == set(ck["ema"]["shadow"])
        assert all(k.split(".")[0] in ("text", "dit") for k in ck["model"])  # raw keys
        assert ck["extra"]["vae_fingerprint"] and ck["schedule"]["total"] == ck["step"]
        assert "val" in ck["log"]["series"]
    assert (d / "image" / "loss.png").exists() and (d / "image" / "samples_000006.gif").exists()


# 2. sample.py rebuilds everything from the checkpoint alone; a seed fixes the pixels.
def test_02_sample_deterministic(setup):
    d, _ = setup
    ck = d / "video" / "ckpt.pt"
    args = ["--ckpt", ck, "--prompt", "A big red box on the left moves to the right.",
            "--prompt", "Un cercle vert très petit 🎈", "--steps", 3]
    run("sample.py", *args, "--out", d / "s1", "--seed", 1)
    run("sample.py", *args, "--out", d / "s2", "--seed", 1)
    run("sample.py", *args, "--out", d / "s3", "--seed", 2)
    files = sorted(p.name for p in (d / "s1").iterdir())
    assert len(files) == 3 and "grid.gif" in files  # 2 prompts + the grid, ASCII names
    assert all(f.isascii() for f in files)
    same = [(d / "s1" / f).read_bytes() == (d / "s2" / f).read_bytes() for f in files]
    other = [(d / "s1" / f).read_bytes() == (d / "s3" / f).read_bytes() for f in files]
    assert all(same) and not any(other)
    run("sample.py", "--ckpt", ck, "--prompt", "a red circle", "--frames", 1, "--steps", 2,
        "--out", d / "s4")
    assert (d / "s4" / "grid.png").exists()  # frames = 1: a still image


# 3. Prompts: empty -> clear error (unless --unconditional); too long -> truncated + warning.
def test_03_prompt_errors(setup):
    d, _ = setup
    ck = d / "video" / "ckpt.pt"
    r = run("sample.py", "--ckpt", ck, "--prompt", "  ", "--steps", 1, check=False)
    assert r.returncode != 0 and "empty" in r.stderr and "--unconditional" in r.stderr
    run("sample.py", "--ckpt", ck, "--unconditional", "--steps", 1, "--out", d / "u")
    r = run("sample.py", "--ckpt", ck, "--prompt", "a red circle " * 40, "--steps", 1,
            "--out", d / "long")
    assert "truncated" in r.stderr


# 4. --init-from must be a DiT of the same architecture; anything else is refused up front.
def test_04_init_from_wrong_checkpoint(setup):
    d, common = setup
    r = run("train_dit.py", "--stage", "video", "--out", d / "x", "--steps", 1,
            "--init-from", d / "vae.pt", *common, check=False)
    assert r.returncode != 0 and "'vae' checkpoint but a 'dit' checkpoint" in r.stderr
    other = load_checkpoint(d / "image" / "ckpt.pt", kind="dit")
    other["config"]["dit"]["depth"] += 2
    save_checkpoint(d / "deeper.pt", other)
    r = run("train_dit.py", "--stage", "video", "--out", d / "x", "--steps", 1,
            "--init-from", d / "deeper.pt", *common, check=False)
    assert r.returncode != 0 and "depth: checkpoint has 6, expected 4" in r.stderr


# 5. A latent cache encoded by another VAE is refused (its latents mean nothing to --vae).
def test_05_cache_from_other_vae(setup):
    d, common = setup
    make_vae(d / "other_vae.pt", seed=1)
    args = [a if a != d / "vae.pt" else d / "other_vae.pt" for a in common]
    r = run("train_dit.py", "--stage", "image", "--out", d / "x", "--steps", 1, *args,
            check=False)
    assert r.returncode != 0 and "fingerprint" in r.stderr and "Re-encode" in r.stderr


# 6. Divergence: an absurd learning rate makes the loss non-finite; those steps are skipped
#    with a warning, then the run stops with a clear error, keeping the last good checkpoint.
def test_06_non_finite_loss(setup):
    d, common = setup
    out = d / "diverge"
    r = run("train_dit.py", "--stage", "image", "--out", out, "--steps", 40, "--lr", 1e20,
            *common[:-2], "--save-every", 1, "--sample-every", 0, check=False)
    assert r.returncode != 0
    assert "update was skipped" in r.stderr and "diverged" in r.stderr
    ck = load_checkpoint(out / "ckpt.pt", kind="dit")  # still there, and readable
    assert np.isfinite(ck["log"]["series"]["loss"]["value"]).all()
    assert all(torch.isfinite(v).all() for v in ck["model"].values() if v.is_floating_point())


# 7. --resume with no checkpoint in --out: a clear error, not a silent fresh start.
def test_07_resume_without_checkpoint(setup):
    d, common = setup
    r = run("train_dit.py", "--stage", "image", "--out", d / "empty", "--steps", 2, "--resume",
            *common, check=False)
    assert r.returncode != 0 and "no checkpoint" in r.stderr and "drop --resume" in r.stderr
