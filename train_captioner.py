"""Train the tiny captioner (minivid/captioner.py): clips -> the tiny world's attributes.

Where it sits: beside the pipeline, for data that comes without captions. tiny_data -> THIS
-> `python -m minivid.captioner caption` writes a manifest for an uncaptioned folder, and
`python -m minivid.evaluate captions` runs the blind-person test on its captions.

Each step reads a batch of train clips (decoded once into uint8), turns each into palette
masks (one per object colour, a fixed rule) and trains the shared 3-D conv encoder and its
attribute heads on every present colour plus one absent one (captioner.loss_on). The loop
is the one training loop (minivid/run.py): data order = training.batch_indices, the absent
colours drawn from (seed, step), so --resume and any number of processes follow the same
trajectory.

    python train_captioner.py --data tiny_data --out runs/captioner --minutes 3   # 2 CPU cores
    python train_captioner.py --out runs/captioner --minutes 3 --resume           # continue
    torchrun --standalone --nproc_per_node 2 train_captioner.py --minutes 3       # 2 processes
    python -m minivid.captioner caption --ckpt runs/captioner/ckpt.pt --data my_clips/ \\
        --out my_clips/captions.jsonl

Writes <out>/ckpt.pt (kind "captioner"; its EMA weights are the captioner) and <out>/loss.png.
"""
import argparse
import os
from dataclasses import asdict

import numpy as np

from minivid.captioner import CaptionerConfig, CaptionerNet, loss_on, palette_masks
from minivid.common import (Dist, autocast, check_batch, dist_cleanup, dist_setup,
                            pick_precision, print0, rank_rows, seed_all, wrap_ddp)
from minivid.fd import load_clips
from minivid.run import Run, add_run_args, check_run_args
from minivid.training import EMA, adamw, batch_indices, clip_and_step

p = argparse.ArgumentParser(description="Train the tiny captioner on the tiny world's clips.",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--data", default="tiny_data", help="tiny-world folder (python -m minivid.world)")
p.add_argument("--width", type=int, default=16, help="encoder width (on --resume, the "
               "checkpoint's)")
add_run_args(p, out="runs/captioner", lr=2e-3, warmup=50, batch_size=32, minutes=3.0,
             save_every=200)
args = p.parse_args()
check_run_args(p, args, "width")
manifest = os.path.join(args.data, "train", "clips.jsonl")
if not os.path.exists(manifest):
    p.error(f"{manifest} not found; make the tiny data: python -m minivid.world --out {args.data}")
TRAJECTORY = ["data", "steps", "batch_size", "lr", "warmup", "width", "seed", "precision"]

# ----------------------------------------------------------------------------- setup
dist = dist_setup(args.device)
run = Run(args, dist, kind="captioner", trainer="train_captioner.py", trajectory=TRAJECTORY)
clips, specs = load_clips(manifest)                      # uint8 (N, 16, 32, 32, 3), N spec dicts
cfg = CaptionerConfig(**run.resumed["config"]) if run.resumed else CaptionerConfig(args.width)
seed_all(args.seed)                                      # the same init on every rank
model = CaptionerNet(cfg).to(dist.device)                # the raw handle: saved, EMA'd
opt = adamw(model.parameters(), args.lr, weight_decay=1e-4)
ema = EMA(model, 0.99)                                   # Captioner.load reads these weights
run.attach(model, opt, config=asdict(cfg), ema=ema)
ddp = wrap_ddp(model, dist)
dtype = pick_precision(dist.device, args.precision, bf16_pays_on_cpu=False)
check_batch(args.batch_size, dist)
print0(f"captioner {cfg}: {sum(q.numel() for q in model.parameters()) / 1e6:.2f}M parameters, "
       f"{len(clips)} train clips, world size {dist.world_size}, {dtype}")

# ----------------------------------------------------------------------------- train
for step in run:
    run.set_lr(opt)
    # The GLOBAL batch and its absent colours from (seed, step); this rank reads its rows'
    # clips, and loss_on normalises by the whole batch: 1 process or N, the same step.
    idx = batch_indices(len(clips), args.batch_size, step, args.seed, Dist())   # (B,)
    mine = idx[rank_rows(dist)]                                                 # (B / W,)
    masks, hist, _ = palette_masks(clips[mine.numpy()])          # (B / W, 8, T, H, W)
    rng = np.random.default_rng([args.seed, step])
    with autocast(dist.device, dtype):
        loss = loss_on(ddp, masks.to(dist.device), hist.to(dist.device),
                       [specs[i] for i in idx], rng, rank_rows(dist))
    loss.backward()
    grad_norm = clip_and_step(opt, model.parameters())
    opt.zero_grad(set_to_none=True)
    ema.update(model, step)
    run.record(loss=loss.detach(), grad_norm=grad_norm)
run.finish("caption a folder with: python -m minivid.captioner caption --ckpt " + run.path +
           " --data <folder> --out <folder>/captions.jsonl")
dist_cleanup()
