"""Shared by the tests that run the real scripts: launchers and tiny synthetic inputs.

Not a test file (pytest collects test_*.py only); tests import it as `from helpers import ...`
(pytest puts this folder on sys.path).
"""
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from minivid import captions, long_clips, world
from minivid.checkpoint import save_checkpoint
from minivid.vae import PRESETS as VAE_PRESETS, VAE, fingerprint

ROOT = Path(__file__).resolve().parents[1]
# One thread per process: results are then bitwise reproducible, and two gloo processes
# share a 2-core machine without oversubscribing it.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}
# Seconds after which a test process counts as hung, not slow. No test measures speed: CI
# runs beside other work, where a seconds-long script can take many times longer.
HANG = 1800


def run(script, *args, check=True, nproc=1):
    """Run a repo script like a user would: `python script ...`, or with nproc > 1
    `torchrun --standalone --nproc_per_node nproc script ...`. Returns the CompletedProcess."""
    launch = [sys.executable]
    if nproc > 1:
        launch += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    r = subprocess.run([*launch, str(ROOT / script), *map(str, args)], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=HANG)
    if check and r.returncode != 0:
        raise AssertionError(f"{script} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def start(script, *args):
    """Start a repo script in the background (for tests that kill it); returns the Popen."""
    return subprocess.Popen([sys.executable, str(ROOT / script), *map(str, args)], cwd=ROOT,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, proc, timeout=HANG):
    """Block until `path` exists (a first checkpoint), failing if `proc` ends first."""
    t0 = time.time()
    while not Path(path).exists():
        if proc.poll() is not None:
            raise AssertionError(f"process ended before writing {path}:\n{proc.stderr.read()}")
        if time.time() - t0 > timeout:
            proc.kill()
            raise AssertionError(f"no {path} after {timeout} s")
        time.sleep(0.005)


def make_vae(path, seed):
    """A random-weight tiny-t4 VAE checkpoint: enough to encode, decode and fingerprint."""
    torch.manual_seed(seed)
    cfg = VAE_PRESETS["tiny-t4"]
    vae = VAE(cfg)
    save_checkpoint(path, {"kind": "vae", "config": dataclasses.asdict(cfg),
                           "model": vae.state_dict(), "step": 0})
    return vae


def make_cache(folder, vae, n=48):
    """Latent cache files in minivid.latents' format, random latents, real tiny-world captions."""
    rng = np.random.default_rng(0)
    info = {"config": dataclasses.asdict(vae.cfg), "fingerprint": fingerprint(vae)}
    for split in ("train", "val"):
        for kind, frames, T in (("images", 1, 1), ("clips", 16, 5)):
            scenes = [world.sample_scene(rng, split, frames) for _ in range(n)]
            save_checkpoint(Path(folder) / f"{split}_{kind}.pt", {
                "kind": "latents", "latents": torch.randn(n, 3, T, 8, 8).half(), "frames": frames,
                "captions": [captions.dense_caption(s, rng) for s in scenes],
                "sparse": [""] * n, "specs": [json.dumps(s.to_dict()) for s in scenes],
                "vae": info, "source": "synthetic", "shift": 0.0, "scale": 1.0})


def make_dit_inputs(folder):
    """A random VAE + its synthetic latent cache in `folder`; returns the train_dit.py flags."""
    folder = Path(folder)
    make_cache(folder / "latents", make_vae(folder / "vae.pt", seed=0))
    return ["--vae", folder / "vae.pt", "--latents", folder / "latents"]


def make_world(folder, n=8):
    """A tiny world on disk (n images and n clips per split) for train_vae.py."""
    sizes = {(s, k): n for s in ("train", "val") for k in ("images", "clips")}
    world.generate(Path(folder), sizes, seed=0, workers=1)
    return ["--data", folder]


def make_long_cache(folder, vae, n=24, clips=3):
    """Synthetic latent caches: images, clips and long clips (random latents, real captions)."""
    rng = np.random.default_rng(0)
    info = {"config": dataclasses.asdict(vae.cfg), "fingerprint": fingerprint(vae)}
    for split in ("train", "val"):
        for kind, T in (("images", 1), ("clips", 5), ("long", 1 + 4 * clips)):
            if kind == "long":
                scenes = [long_clips.sample_long_scene(rng, split, clips) for _ in range(n)]
                caps = [captions.dense_caption(long_clips.clip_scene(s, 0), rng) for s in scenes]
                clip_caps = [[captions.dense_caption(long_clips.clip_scene(s, m), rng, where=False)
                              for m in range(1, clips)] for s in scenes]
            else:
                scenes = [world.sample_scene(rng, split, 1 if T == 1 else 16) for _ in range(n)]
                caps = [captions.dense_caption(s, rng) for s in scenes]
                clip_caps = [[] for _ in scenes]
            save_checkpoint(folder / f"{split}_{kind}.pt", {
                "kind": "latents", "latents": torch.randn(n, 3, T, 8, 8).half(),
                "frames": 1 + 16 * clips if kind == "long" else (1 if T == 1 else 16),
                "captions": caps, "sparse": [""] * n, "clip_captions": clip_caps,
                "specs": [json.dumps(s.to_dict()) for s in scenes], "vae": info,
                "source": "synthetic", "shift": 0.0, "scale": 1.0})


def make_extend_model(d):
    """A tiny clip-extension model in folder d: VAE + caches, 3 video steps, then 4 extension
    steps from them (d/vae.pt, d/latents, d/video/ckpt.pt, d/extend/ckpt.pt) -> the flags the
    trainers share, for a test that trains more from them."""
    vae = make_vae(d / "vae.pt", seed=0)
    make_long_cache(d / "latents", vae)
    common = ["--vae", d / "vae.pt", "--latents", d / "latents", "--batch-size", 4,
              "--warmup", 2, "--save-every", 2, "--sample-every", 0]
    run("train_dit.py", "--stage", "video", "--out", d / "video", "--steps", 3, *common)
    run("train_extend.py", "--out", d / "extend", "--steps", 4,
        "--init-from", d / "video" / "ckpt.pt", *common)
    return common


def trainer_flags(d, script):
    """Tiny inputs in folder `d` for every trainer but train_dit.py (made on first use): the
    script's flags, all but --steps and --out. A world on disk for the VAE and the captioner
    (the rewriter writes its own data); a synthetic latent cache with long clips and a 2-step video DiT for
    distill.py (its teacher) and train_extend.py (its start). Used by test_11 and test_12."""
    common = ["--warmup", 2, "--save-every", 2, "--log-every", 2, "--device", "cpu"]
    if script == "train_rewriter.py":   # writes its own data (minivid/user_language.py)
        return ["--batch-size", 8, "--check-prompts", 0] + common
    if script in ("train_vae.py", "train_captioner.py"):
        world = ["--data", d / "world"]
        if not (d / "world").exists():
            make_world(d / "world", n=8)
        return {"train_vae.py": ["--preset", "tiny-t4", "--batch-size", 2,
                                 "--image-batch-size", 4],
                "train_captioner.py": ["--batch-size", 8, "--calibration", 32]}[script] + world + common
    latents = ["--vae", d / "vae.pt", "--latents", d / "latents"]
    video = d / "video" / "ckpt.pt"
    if not video.exists():
        make_long_cache(d / "latents", make_vae(d / "vae.pt", seed=0))
        run("train_dit.py", "--stage", "video", *latents, "--out", d / "video", "--steps", 2,
            "--batch-size", 4, "--sample-every", 0, "--device", "cpu")
    return {"train_extend.py": [*latents, "--init-from", video, "--batch-size", 4],
            "distill.py": ["--teacher", video, "--trajectories", 16, "--K", 2, "--step-counts",
                           1, 2, "--batch-size", 4]}[script] + ["--sample-every", 0, *common]
