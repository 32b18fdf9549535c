"""Train the patch VAE (minivid/vae.py) on images and clips together.

Where it sits: stage 2 of the pipeline. world.py makes the data -> THIS -> latents.py caches
latents with the trained VAE -> train_dit.py learns to generate latents from text.

Reads top to bottom: flags, data (decoded once into uint8 arrays), model, loop, report. The
loop is train_dit.py's, from the same pieces (minivid/training.py): --steps, or a --minutes
budget turned into a step count once; warmup + cosine lr; epochs of a fresh permutation;
non-finite steps skipped on the device; one all-reduce per log point; bitwise --resume.

    python train_vae.py --preset tiny-t4 --out runs/vae_t4        # 2 CPU cores, 4.25 min
    python train_vae.py --preset tiny-t1 --out runs/vae_t1        # frame-by-frame baseline
    python train_vae.py --preset small-t4 --data my_data --size 64 --device cuda --steps 50000
    torchrun --standalone --nproc_per_node 8 train_vae.py --preset base-t4 --size 256 ...
    python train_vae.py --preset tiny-t4 --out runs/vae_t4 --resume  # continue a stopped run

Writes <out>/ckpt.pt (kind "vae"), <out>/loss.png and <out>/recon.gif (val clips: original
above, reconstruction below), and prints val PSNR at the end.
"""
import argparse
import os
from dataclasses import asdict

import torch

from minivid.checkpoint import check_config
from minivid.common import (autocast, check_batch, dist_cleanup, dist_setup, pick_precision,
                            print0, rank_rows, seed_all, step_generator, wrap_ddp)
from minivid.data import CaptionedVideos, load_uint8, save_grid, to_float, to_uint8
from minivid.latents import roundtrip
from minivid.metrics import psnr
from minivid.run import Run, add_run_args, check_run_args
from minivid.training import adamw, batch_indices, clip_and_step
from minivid.vae import PRESETS, VAE, VAEConfig, pad_frames

p = argparse.ArgumentParser(description="Train the patch VAE on images + clips.",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--preset", choices=sorted(PRESETS), default=None,
               help="model size and temporal compression (default tiny-t4; on --resume, the "
                    "checkpoint's own config)")
p.add_argument("--data", default="tiny_data", help="folder with <split>/{images,clips}.jsonl")
p.add_argument("--train-manifest", nargs="+", default=None,
               help="your own train data: manifests (.jsonl) or captioned folders, instead of "
                    "<data>/train")
p.add_argument("--val-manifest", nargs="+", default=None, help="val manifests, instead of --data")
p.add_argument("--frames", type=int, default=16, help="frames per clip (padded to 1 + 4k for tf=4)")
p.add_argument("--size", type=int, default=32, help="frame size in pixels")
p.add_argument("--image-batch-size", type=int, default=16, help="images per step (global), "
               "beside --batch-size clips")
p.add_argument("--grad-clip", type=float, default=1.0, help="clip the gradient norm to this")
p.add_argument("--kl-weight", type=float, default=1e-6, help="weight of the KL term")
add_run_args(p, out=None, lr=1e-2, warmup=300, batch_size=4, minutes=4.25, save_every=1000)
args = p.parse_args()
args.out = args.out or f"runs/vae_{args.preset or 'tiny-t4'}"
check_run_args(p, args, "image_batch_size")
TRAJECTORY = ["steps", "batch_size", "image_batch_size", "lr", "warmup", "grad_clip",
              "kl_weight", "frames", "size", "seed", "precision"]

# -------------------------------------------------------------------------------- setup
dist = dist_setup(args.device)
seed_all(args.seed)  # the same init on every rank
run = Run(args, dist, kind="vae", trainer="train_vae.py", trajectory=TRAJECTORY)
if run.resumed is not None:
    cfg = VAEConfig(**run.resumed["config"])
    if args.preset:  # refuse before anything is loaded, naming the differing fields
        check_config(run.resumed["config"], asdict(PRESETS[args.preset]), "VAE")
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
opt = adamw(model.parameters(), args.lr)  # weight_decay 0: plain Adam
run.attach(model, opt, config=asdict(cfg))
ddp_model = wrap_ddp(model, dist)
dtype = pick_precision(dist.device, args.precision, bf16_pays_on_cpu=True)
print0(f"VAE {cfg}: {sum(q.numel() for q in model.parameters()) / 1e6:.2f}M parameters, {dtype}")

# -------------------------------------------------------------------------------- train
# Loss = MSE + kl_weight * KL, each a mean (over pixel numbers, over latent numbers). MSE is
# what PSNR measures. The KL term pulls the posterior towards N(0, I): it bounds the latents
# and would have the encoder add noise the decoder must tolerate. With 3 numbers per 4x4x4
# pixels tiny-t4 has no precision to spare, so the weight is tiny (as in latent diffusion,
# https://arxiv.org/abs/2112.10752): on tiny-t4, 1e-4 gave posterior std 0.12 (latents std
# 1.2) and 0.4 dB lower val PSNR than 1e-6 (std 0.02, latents std 3.1) at the same steps.
# latents.py rescales the latents to unit variance for the DiT either way.
# No EMA: the lr decays to 0 at the end (min_ratio 0), which settles the weights just as well
# for a run of a few thousand steps. Gradient clipping: at this high lr a rare huge gradient
# could throw the run into a state it never left (seen once: KL 4 -> 60 at the end of warmup,
# val PSNR 20 dB instead of 36); clipping caps such steps (it binds in ~2% of steps, early on).
for step in run:
    run.set_lr(opt, min_ratio=0.0)
    loss, parts = 0.0, {}
    for i, (kind, data) in enumerate(train.items()):  # a batch of clips, one of images
        # This rank's examples and the posterior noise of the GLOBAL batch, from (seed, step);
        # each rank keeps its rows. So 1 process and N take the same trajectory, and --resume
        # continues it exactly (minivid/common.py, minivid/training.py).
        n = per_rank[kind] * dist.world_size
        idx = batch_indices(len(data), n, step, args.seed, dist, stream=i)
        x = to_float(data[idx]).to(dist.device)              # (B, C, T, H, W) in [-1, 1]
        x, _ = pad_frames(x, cfg.tf)                         # (B, C, 1 + tf*k, H, W)
        z_shape = model.latent_shape(*x.shape[2:])           # (Cl, T', h, w)
        g = step_generator(args.seed, step, dist.device, stream=i)
        noise = torch.randn((n, *z_shape), generator=g, device=dist.device)[rank_rows(dist)]
        with autocast(dist.device, dtype):
            recon, kl = ddp_model(x, noise=noise)
        mse = (recon.float() - x).pow(2).mean()
        loss = loss + mse + args.kl_weight * kl
        parts[f"mse_{kind}"], parts[f"kl_{kind}"] = mse.detach(), kl.detach()
    loss.backward()
    grad_norm = clip_and_step(opt, model.parameters(), args.grad_clip)
    opt.zero_grad(set_to_none=True)
    run.record(loss=loss.detach(), grad_norm=grad_norm, **parts)
run.finish()

# -------------------------------------------------------------------------------- report
if dist.is_main:
    model.eval()
    for kind, data in val.items():
        r = roundtrip(model, data.numpy())                     # (N, C, T, H, W) in [-1, 1]
        x = to_float(data)
        print(f"val {kind}: PSNR {psnr(r, x).mean().item():.2f} dB over {len(x)} {kind}")
        if kind == "clips":
            n = min(8, len(x))  # original above, reconstruction below
            grid = to_uint8(torch.cat([x[:n], r[:n]]))
            save_grid(os.path.join(args.out, "recon.gif"), grid, cols=n,
                      captions=["original"] * n + ["reconstruction"] * n)
    print(f"wrote {args.out}/ckpt.pt, loss.png, recon.gif")
dist_cleanup()
