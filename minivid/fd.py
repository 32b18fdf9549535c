"""Tiny FVD: the Fréchet distance between two sets of clips, in the feature space of a small
3-D conv classifier (the "probe") trained on tiny-world attributes.

Where it sits: the yardstick for distribution quality (how real generated clips look as a
set), beside the checker's per-clip adherence. FVD (Unterthiner et al. 2018,
https://arxiv.org/abs/1812.01717) uses an I3D network trained on Kinetics; we cannot
download one, so we train our own small probe on what the tiny world varies: each object's
shape, size, motion and speed (one head per colour) and the background.
Because the probe must tell motions apart, its features depend on frame order, so a set of
clips with shuffled frames lands far from the real set.

How the probe is trained and cached: `load_or_train_probe(data_dir)` trains it once on
`<data_dir>/train/clips.jsonl` (about a minute on 2 CPU cores) with the one training loop
(minivid/run.py), as a run in `<data_dir>/probe/` (ckpt.pt, loss.png), keyed by the
manifest's size and modification time: a changed dataset retrains it, and a training that
was stopped (Ctrl-C) goes on from its last checkpoint the next time.

    python -m minivid.evaluate data        # trains/loads the probe, prints FD figures
"""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from minivid import checkpoint
from minivid.common import Dist, seed_all, step_generator
from minivid.data import CaptionedVideos, load_uint8
from minivid.run import Run, run_args
from minivid.training import adamw, batch_indices, clip_and_step
from minivid.world import BACKGROUNDS, MOTIONS, OBJECT_COLOURS, SHAPES, SIZES, SPEEDS

# Every head of the probe: name -> classes. Heads are per colour ("red shape": is there a red
# object, and which shape?), so labels do not depend on the order objects were listed in.
HEADS = {"background": list(BACKGROUNDS)}
for _c in OBJECT_COLOURS:
    HEADS[f"{_c} shape"] = ["none", *SHAPES]
    HEADS[f"{_c} size"] = ["none", *SIZES]
    HEADS[f"{_c} motion"] = ["none", *MOTIONS]
    HEADS[f"{_c} speed"] = ["none", "", *SPEEDS]
PROBE_CONFIG = {"width": 16, "dim": 64}   # Probe(**config): what its checkpoint rebuilds


def labels(spec):
    """Integer class per head for one scene spec dict (as stored in the manifest)."""
    y = {k: 0 for k in HEADS}
    y["background"] = HEADS["background"].index(spec["background"])
    for o in spec["objects"]:
        for attr in ("shape", "size", "motion", "speed"):
            head = f"{o['colour']} {attr}"
            y[head] = HEADS[head].index(o[attr])
    return y


class Probe(nn.Module):
    """3-D conv classifier. features: (B, 3, T, H, W) in [-1, 1] -> (B, D); forward -> logits."""

    def __init__(self, width=16, dim=64):
        super().__init__()
        w = width
        self.net = nn.Sequential(  # each conv mixes 3 frames, so features see motion
            nn.Conv3d(6, w, 3, stride=(1, 2, 2), padding=1), nn.GELU(),        # (B, w, T, H/2, W/2)
            nn.Conv3d(w, 2 * w, 3, stride=2, padding=1), nn.GELU(),            # (B, 2w, T/2, H/4, W/4)
            nn.Conv3d(2 * w, dim, 3, stride=2, padding=1), nn.GELU(),          # (B, D, T/4, H/8, W/8)
        )
        self.heads = nn.ModuleDict({k: nn.Linear(dim, len(v)) for k, v in HEADS.items()})
        self.order = nn.Linear(dim, 2)  # real frame order vs shuffled (see train_probe)

    def features(self, x):
        # Two streams in one: the frames and their differences (a cheap stand-in for optical
        # flow, as in two-stream action recognition): real motion leaves thin edge slivers in
        # the differences, frames out of order leave whole shapes.
        dx = F.pad(x[:, :, 1:] - x[:, :, :-1], (0, 0, 0, 0, 1, 0))  # (B, 3, T, H, W)
        return self.net(torch.cat([x, dx], 1)).mean(dim=(2, 3, 4))   # (B, D): global pool

    def forward(self, x):
        f = self.features(x)
        return {k: head(f) for k, head in self.heads.items()}


def _to_float(u8):
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1]."""
    return torch.as_tensor(u8).permute(0, 4, 1, 2, 3).float() / 127.5 - 1


def train_probe(clips, specs, out, steps=500, seed=0, resume=False, extra=None):
    """Train a probe on uint8 clips (N, T, H, W, 3) with their scene spec dicts, as a run in
    folder `out` (ckpt.pt, loss.png); resume=True continues <out>/ckpt.pt. -> the probe, eval.

    Besides the attribute heads, an "order" head learns to tell real clips from the same
    clips with their frames shuffled (a quarter extra per batch). Attributes alone let a
    probe ignore frame order (every shuffled frame is a real frame); this head makes its
    features measure temporal coherence, which is what a video metric must add to an image
    one. The loop is every trainer's (minivid/run.py): epochs of a fresh permutation, the
    lr from 2e-3 down a cosine to 0 (no warmup: the probe is small and shallow), one
    process (the probe trains in a minute; no torchrun needed)."""
    # batch 32 (+ 8 shuffled); fewer on a toy set (a test's 16 clips): an epoch is one batch
    args = run_args(dict(out=str(out), lr=2e-3, warmup=0, batch_size=min(32, len(clips)),
                         save_every=100), steps=steps, seed=seed, resume=resume, device="cpu")
    dist = Dist()
    seed_all(seed)
    run = Run(args, dist, kind="probe", trainer="the FD probe (minivid/fd.py)",
              trajectory=["steps", "batch_size", "lr", "warmup", "seed"])
    y = {k: torch.tensor([labels(s)[k] for s in specs]) for k in HEADS}
    probe = Probe(**PROBE_CONFIG)
    opt = adamw(probe.parameters(), args.lr, weight_decay=1e-4)
    run.attach(probe, opt, config=PROBE_CONFIG, extra=extra)
    B, T = args.batch_size, clips.shape[1]
    for step in run:
        run.set_lr(opt, min_ratio=0.0)
        idx = batch_indices(len(clips), B, step, args.seed, dist)
        real = clips[idx.numpy()]                                    # (B, T, H, W, 3)
        g = step_generator(args.seed, step)                          # the step's shuffle
        mixed = real[: B // 4][:, torch.randperm(T, generator=g).numpy()]
        x = _to_float(np.concatenate([real, mixed]))                 # (B + B/4, 3, T, H, W)
        f = probe.features(x)                                        # (B + B/4, D)
        loss = sum(F.cross_entropy(head(f[:B]), y[k][idx]) for k, head in probe.heads.items())
        order = torch.cat([torch.zeros(B), torch.ones(len(mixed))]).long()
        loss = loss + 5 * F.cross_entropy(probe.order(f), order)  # weighted: one head vs 33
        loss.backward()
        # Not clipped (max_norm inf: the step is still skipped if non-finite), as the probe
        # always trained: its norm is ~16 (the 33 heads' losses add up), so a clip at 1 would
        # bind on every step and move the FD scale (measured on 1,500 train clips, 500 steps:
        # FD val-vs-train 12.5 unclipped, 15.5 clipped; 10.0 / 12.2 for the old loop, seeds 0/1).
        grad_norm = clip_and_step(opt, probe.parameters(), max_norm=float("inf"))
        opt.zero_grad(set_to_none=True)
        run.record(loss=loss.detach(), grad_norm=grad_norm)
    run.finish()
    return probe.eval()


@torch.no_grad()
def features(probe, clips, batch=128):
    """Probe features of clips: uint8 (N, T, H, W, 3) or float (N, 3, T, H, W) -> (N, D)."""
    out = []
    for i in range(0, len(clips), batch):
        x = clips[i:i + batch]
        x = _to_float(x) if (isinstance(x, np.ndarray) and x.dtype == np.uint8) else torch.as_tensor(x).float()
        out.append(probe.features(x).double().numpy())
    return np.concatenate(out)


@torch.no_grad()
def accuracy(probe, clips, specs):
    """Per-head accuracy: a sanity check that the probe learned the attributes."""
    logits = {k: [] for k in HEADS}
    for i in range(0, len(clips), 128):
        for k, v in probe(_to_float(clips[i:i + 128])).items():
            logits[k].append(v.argmax(-1))
    return {k: float((torch.cat(v) == torch.tensor([labels(s)[k] for s in specs])).float().mean())
            for k, v in logits.items()}


def frechet(f1, f2):
    """Fréchet distance between Gaussians fitted to feature sets (N1, D) and (N2, D):
    |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2). The matrix square roots use
    symmetric eigendecompositions, so no scipy is needed."""
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.atleast_2d(np.cov(f1, rowvar=False)), np.atleast_2d(np.cov(f2, rowvar=False))
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(w.clip(min=0))) @ v.T                 # S1^1/2
    middle = np.linalg.eigvalsh(root1 @ s2 @ root1).clip(min=0)  # eigenvalues of S1^1/2 S2 S1^1/2
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(middle).sum())


def load_or_train_probe(data_dir, clips=None, specs=None, steps=None):
    """The cached probe for `data_dir`, trained first if missing or stale, or finished if its
    training was stopped (Ctrl-C, SIGTERM: the run saved a checkpoint to resume from).
    `clips`/`specs`: the train clips if the caller already loaded them (else loaded here).
    steps: the probe's training steps; None = whatever the cached probe was trained for
    (`evaluate data --probe-steps` sets it; every later evaluation reuses that probe), else
    500."""
    manifest = os.path.join(data_dir, "train", "clips.jsonl")
    if not os.path.exists(manifest):
        raise FileNotFoundError(f"{manifest} not found: the FD probe trains on tiny-world "
                                f"clips. Make them with: python -m minivid.world --out {data_dir}")
    st = os.stat(manifest)
    key = f"{st.st_size}-{int(st.st_mtime)}"   # a changed dataset retrains the probe
    out = os.path.join(data_dir, "probe")
    path = os.path.join(out, "ckpt.pt")
    resume = False
    if os.path.exists(path):
        ck = checkpoint.load_checkpoint(path, kind="probe")
        if ck["extra"].get("data_key") == key:
            steps = steps or ck["extra"].get("steps", 500)
            if ck["extra"].get("steps") == steps and ck["step"] >= steps:
                probe = Probe(**ck["config"])
                probe.load_state_dict(ck["model"])
                return probe.eval()
            resume = ck["extra"].get("steps") == steps
    steps = steps or 500
    if clips is None:
        clips, specs = load_clips(manifest)
    return train_probe(clips, specs, out, steps=steps, resume=resume,
                       extra={"data_key": key, "steps": steps})


def load_clips(manifest, size=32, frames=16):
    """uint8 clips (N, T, H, W, 3) and their spec dicts from a tiny-world manifest."""
    u8, items = load_uint8(CaptionedVideos(manifest, frames=frames, size=size),
                           desc=os.path.basename(os.path.dirname(manifest)) + " clips")
    return u8, [it["spec"] for it in items]
