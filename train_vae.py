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
from tqdm import tqdm

from minivid.checkpoint import check_config, restore_run, resume_run, save_run
from minivid.common import (autocast, check_batch, dist_cleanup, dist_setup, pick_precision,
                            print0, rank_rows, seed_all, step_generator, wrap_ddp)
from minivid.data import CaptionedVideos, load_uint8, save_grid, to_float, to_uint8
from minivid.latents import roundtrip
from minivid.metrics import psnr
from minivid.training import (LossLog, Meter, NonFiniteGuard, StepBudget, StopFlag, adamw,
                              batch_indices, clip_and_step, lr_at, set_lr)
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
p.add_argument("--minutes", type=float, default=4.25, help="wall-clock budget of the train "
               "loop, turned into a step count once (loading + report add ~15 s)")
p.add_argument("--steps", type=int, default=None, help="optimizer steps; wins over --minutes")
p.add_argument("--batch-size", type=int, default=4, help="clips per step (global, over all ranks)")
p.add_argument("--image-batch-size", type=int, default=16, help="images per step (global)")
p.add_argument("--lr", type=float, default=1e-2, help="peak Adam learning rate")
p.add_argument("--warmup", type=int, default=300, help="linear lr warmup steps")
p.add_argument("--grad-clip", type=float, default=1.0, help="clip the gradient norm to this")
p.add_argument("--kl-weight", type=float, default=1e-6, help="weight of the KL term")
p.add_argument("--log-every", type=int, default=10, help="steps between log points (the only "
               "steps where ranks meet and the host reads the loss)")
p.add_argument("--save-every", type=int, default=1000, help="checkpoint every N steps")
p.add_argument("--out", default=None, help="output folder (default runs/vae_<preset>)")
p.add_argument("--resume", action="store_true", help="continue <out>/ckpt.pt exactly")
p.add_argument("--seed", type=int, default=0, help="seeds init, data order and noise")
p.add_argument("--device", default="auto", help="auto | cpu | cuda")
p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
               help="autocast dtype; auto: bf16 on CUDA and on CPUs with bf16 hardware, where "
                    "it trains the VAE ~1.6x faster at the same PSNR (common.pick_precision)")
args = p.parse_args()
args.out = args.out or f"runs/vae_{args.preset or 'tiny-t4'}"
for name in ("log_every", "save_every", "batch_size", "image_batch_size"):
    if getattr(args, name) < 1:
        p.error(f"--{name.replace('_', '-')} must be >= 1")
TRAJECTORY = ["steps", "batch_size", "image_batch_size", "lr", "warmup", "grad_clip",
              "kl_weight", "frames", "size", "seed", "precision"]

# -------------------------------------------------------------------------------- setup
dist = dist_setup(args.device)
seed_all(args.seed)  # the same init on every rank
ckpt_path = os.path.join(args.out, "ckpt.pt")
resume = resume_run(args, "vae", TRAJECTORY)
if resume is not None:
    cfg = VAEConfig(**resume["config"])
    if args.preset:  # refuse before anything is loaded, naming the differing fields
        check_config(resume["config"], asdict(PRESETS[args.preset]), "VAE")
else:
    cfg = PRESETS[args.preset or "tiny-t4"]
budget = StepBudget(args.steps, args.minutes, resume and resume["schedule"])
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
log, guard, meter, step = LossLog(), NonFiniteGuard(), Meter(), 0
if resume is not None:
    step = restore_run(resume, model, opt, log)
    print0(f"resumed {ckpt_path} at step {step}")
ddp_model = wrap_ddp(model, dist)
dtype = pick_precision(dist.device, args.precision, bf16_pays_on_cpu=True)
print0(f"VAE {cfg}: {sum(q.numel() for q in model.parameters()) / 1e6:.2f}M parameters, {dtype}")


def save():
    save_run(ckpt_path, dist, kind="vae", config=asdict(cfg), model=model, opt=opt, step=step,
             args=args, log=log, budget=budget)


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
budget.start(step)
bar = tqdm(total=budget.total, initial=step, disable=not dist.is_main, unit="step")
stopping = False
with StopFlag() as stop:
    while budget.total is None or step < budget.total:
        lr = lr_at(step, args.warmup, budget.total, args.lr, min_ratio=0.0)
        set_lr(opt, lr)
        loss, parts = 0.0, {}
        for i, (kind, data) in enumerate(train.items()):  # a batch of clips, one of images
            # This rank's examples and the posterior noise of the GLOBAL batch, from (seed,
            # step); each rank keeps its rows. So 1 process and N take the same trajectory,
            # and --resume continues it exactly (minivid/common.py, minivid/training.py).
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
        meter.add(step, loss=loss.detach(), grad_norm=grad_norm, **parts)
        step += 1
        bar.update()
        if budget.plan(step, dist):  # --minutes alone: the step count is fixed now, once
            bar.total = budget.total
        if step != budget.total and step % args.log_every and step % args.save_every:
            continue
        # ------------------------------------------------------------- a log point
        logged, flags = meter.sync(dist, stop=bool(stop))  # the interval's one all-reduce
        guard.check(logged)
        log.extend(logged.pop("steps"), **logged)
        bar.set_postfix(loss=f"{logged['loss'][-1]:.4f}", lr=f"{lr:.1e}")
        stopping = flags["stop"]
        # the last step and a stop always save (a skipped step left the weights untouched)
        if step == budget.total or stopping or (step % args.save_every == 0
                                                 and guard.in_a_row == 0):
            save()
        if stopping:
            break
bar.close()
if stopping:  # pre-empted: the checkpoint is what matters, leave before the grace period ends
    print0(stop.saved_message(ckpt_path, step))
    dist_cleanup()
    raise SystemExit(0)
print0(f"trained {step} steps, {guard.skipped} skipped")

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
