"""Train the patch VAE (minivid/vae.py) on images and clips together.

Where it sits: stage 2 of the pipeline. world.py makes the data -> THIS -> latents.py caches
latents with the trained VAE -> train_dit.py learns to generate latents from text.

Reads top to bottom: flags, data (decoded once into uint8 arrays), model, loop, report.
The loop runs for a wall-clock budget (--minutes) and/or a step count (--steps); the learning
rate follows the budget (warmup, then cosine), so a short run still ends with a small lr.

    python train_vae.py --preset tiny-t4 --out runs/vae_t4        # 2 CPU cores, under 5 min
    python train_vae.py --preset tiny-t1 --out runs/vae_t1        # frame-by-frame baseline
    python train_vae.py --preset small-t4 --data my_data --size 64 --device cuda --minutes 60
    torchrun --standalone --nproc_per_node 8 train_vae.py --preset base-t4 --size 256 ...
    python train_vae.py --preset tiny-t4 --out runs/vae_t4 --resume  # continue a stopped run

Writes <out>/ckpt.pt (kind "vae"), <out>/loss.png and <out>/recon.gif (val clips: original
above, reconstruction below), and prints val PSNR at the end.
"""
import argparse
import math
import os
import time
from dataclasses import asdict

import torch
import torch.nn as nn
from tqdm import tqdm

from minivid.checkpoint import check_config, load_state_strict, resume_checkpoint, save_checkpoint
from minivid.common import (all_reduce_mean, check_batch, dist_cleanup, dist_setup, print0,
                            rank_rows, seed_all, step_generator, wrap_ddp)
from minivid.data import CaptionedVideos, load_uint8, save_grid, to_float, to_uint8
from minivid.metrics import psnr
from minivid.training import LossLog, NonFiniteGuard, StopFlag
from minivid.vae import PRESETS, VAE, VAEConfig, pad_frames
from minivid.vae_bench import reconstruct

p = argparse.ArgumentParser(description="Train the patch VAE on images + clips.")
p.add_argument("--preset", choices=sorted(PRESETS), default=None,
               help="model size and temporal compression (default tiny-t4; on --resume, the "
                    "checkpoint's own config)")
p.add_argument("--data", default="tiny_data", help="folder with <split>/{images,clips}.jsonl")
p.add_argument("--train-manifest", nargs="+", default=None,
               help="train manifests (.jsonl) or caption folders, instead of --data")
p.add_argument("--val-manifest", nargs="+", default=None, help="val manifests, instead of --data")
p.add_argument("--frames", type=int, default=16, help="frames per clip (padded to 1 + 4k for tf=4)")
p.add_argument("--size", type=int, default=32, help="frame size in pixels")
p.add_argument("--minutes", type=float, default=4.25,
               help="wall-clock budget of the train loop (loading + report add ~15 s)")
p.add_argument("--steps", type=int, default=0, help="stop after this many steps (0: budget only)")
p.add_argument("--batch-size", type=int, default=4, help="clips per step (global, over all ranks)")
p.add_argument("--image-batch-size", type=int, default=16, help="images per step (global)")
p.add_argument("--lr", type=float, default=1e-2, help="peak Adam learning rate")
p.add_argument("--warmup", type=int, default=300, help="linear lr warmup steps")
p.add_argument("--grad-clip", type=float, default=1.0, help="clip the gradient norm to this")
p.add_argument("--kl-weight", type=float, default=1e-6, help="weight of the KL term")
p.add_argument("--save-every", type=int, default=1000, help="checkpoint every N steps")
p.add_argument("--out", default="runs/train_vae", help="output folder")
p.add_argument("--resume", action="store_true", help="continue <out>/ckpt.pt exactly (same "
               "flags; --minutes/--steps may grow)")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--device", default="auto", help="cpu, cuda or auto")
p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
               help="bf16 autocast (GPUs and CPUs with AVX512-BF16: ~1.6x faster on the tiny "
                    "presets, same PSNR); fp32 on older CPUs, where bf16 is emulated and slow")
args = p.parse_args()

# -------------------------------------------------------------------------------- setup
dist = dist_setup(args.device)
seed_all(args.seed)  # the same init on every rank
ckpt_path = os.path.join(args.out, "ckpt.pt")
ckpt = None
if args.resume:
    ckpt = resume_checkpoint(args.out, kind="vae")
if ckpt is not None:
    cfg = VAEConfig(**ckpt["config"])
    if args.preset:  # refuse before anything is loaded, naming the differing fields
        check_config(ckpt["config"], asdict(PRESETS[args.preset]), "VAE")
else:
    cfg = PRESETS[args.preset or "tiny-t4"]
per_rank = {"clips": check_batch(args.batch_size, dist),
            "images": check_batch(args.image_batch_size, dist)}

# -------------------------------------------------------------------------------- data
# Decode every file once into uint8 (N, T, H, W, 3): 8000 tiny clips are 400 MB, and a step
# then only indexes memory. Clips and images stay in separate arrays (T = 16 vs T = 1).
def load(manifests, split):
    """-> {"images": uint8 (N, 1, H, W, 3), "clips": uint8 (N, T, H, W, 3)} (those present)."""
    if manifests is None:
        manifests = [os.path.join(args.data, split, f"{k}.jsonl") for k in ("images", "clips")]
    out = {}
    for m in manifests:
        u8, _ = load_uint8(CaptionedVideos(m, frames=args.frames, size=args.size),
                           desc=f"decoding {m}")
        out.setdefault("images" if u8.shape[1] == 1 else "clips", []).append(torch.from_numpy(u8))
    return {kind: torch.cat(parts) for kind, parts in out.items()}

train, val = load(args.train_manifest, "train"), load(args.val_manifest, "val")
print0("train: " + ", ".join(f"{len(v)} {k} {tuple(v.shape[1:])}" for k, v in train.items()))

# -------------------------------------------------------------------------------- model
model = VAE(cfg).to(dist.device)  # the raw handle: saved, evaluated
opt = torch.optim.Adam(model.parameters(), lr=args.lr)
log, step, trained_s = LossLog(), 0, 0.0
if ckpt is not None:
    load_state_strict(model, ckpt["model"], "VAE")
    opt.load_state_dict(ckpt["optimizer"])
    log.load_state_dict(ckpt["extra"]["log"])
    step, trained_s = ckpt["step"], ckpt["extra"]["trained_seconds"]
    print0(f"resumed {ckpt_path} at step {step} ({trained_s / 60:.1f} min trained)")
ddp_model = wrap_ddp(model, dist)
print0(f"VAE {cfg}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters")


def save(path):
    """Rank 0 writes. No RNG state: a step's randomness is a function of (seed, step)."""
    if dist.is_main:
        save_checkpoint(path, {
            "kind": "vae", "config": asdict(cfg), "model": model.state_dict(), "ema": None,
            "optimizer": opt.state_dict(), "step": step, "args": vars(args),
            "data": {"sampling": "uniform with replacement, step_generator(seed, step)"},
            "extra": {"log": log.state_dict(), "trained_seconds": trained_s}})


# -------------------------------------------------------------------------------- train
# Loss = MSE + kl_weight * KL, each a mean (over pixel numbers, over latent numbers). MSE is
# what PSNR measures. The KL term pulls the posterior towards N(0, I): it bounds the latents
# and would have the encoder add noise the decoder must tolerate. With 3 numbers per 4x4x4
# pixels tiny-t4 has no precision to spare, so the weight is tiny (as in latent diffusion,
# https://arxiv.org/abs/2112.10752): on tiny-t4, 1e-4 gave posterior std 0.12 (latents std
# 1.2) and 0.4 dB lower val PSNR than 1e-6 (std 0.02, latents std 3.1) at the same steps.
# latents.py rescales the latents to unit variance for the DiT either way.
# No EMA: the lr decays to ~0 at the end of the budget, which settles the weights just as well
# for a run of a few thousand steps.
budget, bf16 = args.minutes * 60, args.precision == "bf16"
print0(f"training for {args.minutes} min" + (f" or {args.steps} steps" if args.steps else ""))
guard, bar = NonFiniteGuard(), tqdm(disable=not dist.is_main, unit="step", initial=step)
t0, stopped = time.time() - trained_s, False
with StopFlag() as stop:
    while True:
        trained_s = all_reduce_mean(time.time() - t0, dist)  # ranks agree on when to stop
        # The lr schedule follows --steps when given (reproducible: resume is exact), else the
        # wall-clock budget; either one running out ends the run.
        progress = step / args.steps if args.steps else trained_s / budget
        stopped = stop.should_stop(dist)  # SIGTERM / Ctrl-C on any rank
        if progress >= 1 or trained_s >= budget or stopped:
            break
        # warmup, then cosine over the budget (not minivid.training.lr_at: with a wall-clock
        # budget the total number of steps is not known in advance)
        lr = args.lr * min(1.0, (step + 1) / args.warmup) * 0.5 * (1 + math.cos(math.pi * progress))
        for g in opt.param_groups:
            g["lr"] = lr

        loss, parts = 0.0, {}
        for i, (kind, data) in enumerate(train.items()):  # a batch of clips, one of images
            # The examples and the posterior noise of the GLOBAL batch, from a generator seeded
            # by (seed, step); this rank keeps its rows. So 1 process and N take the same
            # trajectory, and --resume continues it exactly (minivid.common.step_generator).
            n = per_rank[kind] * dist.world_size
            g_cpu = step_generator(args.seed, step, stream=2 * i)
            g_dev = step_generator(args.seed, step, dist.device, stream=2 * i + 1)
            idx = torch.randint(len(data), (n,), generator=g_cpu)[rank_rows(dist)]
            x = to_float(data[idx]).to(dist.device)              # (B, C, T, H, W) in [-1, 1]
            x, _ = pad_frames(x, cfg.tf)                         # (B, C, 1 + tf*k, H, W)
            z_shape = model.latent_shape(*x.shape[2:])           # (Cl, T', h, w)
            noise = torch.randn((n, *z_shape), generator=g_dev, device=dist.device)
            with torch.autocast(dist.device.type, torch.bfloat16, enabled=bf16):
                recon, kl = ddp_model(x, noise=noise[rank_rows(dist)])
            mse = (recon.float() - x).pow(2).mean()
            loss = loss + mse + args.kl_weight * kl
            parts[f"mse_{kind}"], parts[f"kl_{kind}"] = mse.item(), kl.item()
        if guard.check(all_reduce_mean(loss.detach(), dist), step):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # At this high lr a rare huge gradient could throw the run into a state it never
            # left (seen once: KL 4 -> 60 at the end of warmup, val PSNR 20 dB instead of 36);
            # clipping the norm caps such steps (it binds in ~2% of steps, early on).
            parts["grad_norm"] = nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip).item()
            opt.step()
        step += 1
        log.append(step, loss=loss.item(), **parts)
        bar.update()
        bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.1e}")
        if step % args.save_every == 0:
            save(ckpt_path)
bar.close()
save(ckpt_path)
if dist.is_main:
    log.plot(os.path.join(args.out, "loss.png"))
ms = trained_s / max(step, 1) * 1e3
print0(f"trained {step} steps in {trained_s / 60:.2f} min ({ms:.0f} ms/step)")
if stopped:  # pre-empted: the checkpoint is what matters, leave before the grace period ends
    print0(f"stopped by a signal; continue with the same command + --resume")
    dist_cleanup()
    raise SystemExit(0)

# -------------------------------------------------------------------------------- report
if dist.is_main:
    model.eval()
    for kind, data in val.items():
        x, r = reconstruct(model, data, dist.device)
        print(f"val {kind}: PSNR {psnr(r, x).mean().item():.2f} dB over {len(x)} {kind}")
        if kind == "clips":
            n = min(8, len(x))  # original above, reconstruction below
            grid = to_uint8(torch.cat([x[:n], r[:n]]))
            save_grid(os.path.join(args.out, "recon.gif"), grid, cols=n,
                      captions=["original"] * n + ["reconstruction"] * n)
    print(f"wrote {args.out}/ckpt.pt, loss.png, recon.gif")
dist_cleanup()
