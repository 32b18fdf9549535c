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

from minivid import captions, world
from minivid.checkpoint import save_checkpoint
from minivid.vae import PRESETS as VAE_PRESETS, VAE, fingerprint

ROOT = Path(__file__).resolve().parents[1]
# One thread per process: results are then bitwise reproducible, and two gloo processes
# share a 2-core machine without oversubscribing it.
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "default"}


def run(script, *args, check=True, nproc=1):
    """Run a repo script like a user would: `python script ...`, or with nproc > 1
    `torchrun --standalone --nproc_per_node nproc script ...`. Returns the CompletedProcess."""
    launch = [sys.executable]
    if nproc > 1:
        launch += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    r = subprocess.run([*launch, str(ROOT / script), *map(str, args)], cwd=ROOT, env=ENV,
                       capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"{script} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return r


def start(script, *args):
    """Start a repo script in the background (for tests that kill it); returns the Popen."""
    return subprocess.Popen([sys.executable, str(ROOT / script), *map(str, args)], cwd=ROOT,
                            env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(path, proc, timeout=120.0):
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
