"""Train the learned captioner (minivid/captioner.py): footage-like clips -> dense captions.

Where it sits: beside the pipeline, for data that comes without captions. THIS -> `python -m
minivid.caption_folder caption` writes a manifest for an uncaptioned folder, and `python -m
minivid.evaluate captions` runs the blind-person test on clean and damaged held-out clips.

Each step draws a fresh batch of (clip, caption) pairs (minivid/caption_data.py): scenes
of the world's train distribution (never a val or test scene of --data), rendered exactly or
damaged like footage (minivid/footage.py), a few stills and a few clips from outside the
world, each with a dense caption phrased anew. The loss is next-word cross-entropy, the
decoder reading the video through cross-attention. The batch is a function of (seed, step),
so --resume and any number of processes follow the same trajectory. After the last step,
the EMA captioner captions fresh calibration clips (not the bench's) and a logistic fit
maps its word probabilities to the fraction of attributes it gets right: its confidence.

    python train_captioner.py --out runs/captioner --steps 1500          # 2 CPU cores, ~5 min
    python train_captioner.py --out runs/captioner --steps 1500 --resume  # continue
    torchrun --standalone --nproc_per_node 2 train_captioner.py --steps 1500
    python train_captioner.py --out runs/captioner_vae --steps 2400 --vae runs/vae_t4/ckpt.pt
            # a reader of the pipeline's own clips: 30% of each batch through the VAE

With --vae, a share of each batch (--p-vae; the rows drawn from (seed, step)) is replaced by
its VAE round trip, pixels -> latents -> pixels, before the captioner sees it. Every clip the
DiT makes reaches pixels through that decoder, so its softness and colour bleed are what a
reader of generated clips (minivid/restate.py) has to see through. The caption stays the
scene's own: the labels are still the truth, only the pixels change.

Writes <out>/ckpt.pt (kind "captioner"; its EMA weights and Platt fit are the captioner) and
<out>/loss.png.
"""
import argparse
import os
from dataclasses import asdict, replace

import numpy as np
import torch

from minivid import caption_data
from minivid.caption_bench import fit_confidence
from minivid.captioner import PRESETS, CaptionerConfig, CaptionerNet, caption_loss, to_video
from minivid.common import (autocast, check_batch, dist_cleanup, dist_setup, pick_precision,
                            print0, rank_rows, seed_all, wrap_ddp)
from minivid.latents import reconstruct
from minivid.run import Run, add_run_args, check_run_args
from minivid.training import EMA, adamw, clip_and_step
from minivid.vae import load_vae

p = argparse.ArgumentParser(description="Train the learned captioner on footage-like clips of "
                            "the tiny world.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--preset", default="tiny", choices=list(PRESETS), help="model size (captioner.py)")
p.add_argument("--data", default="tiny_data", help="tiny-world folder whose val and test scenes "
               "are kept out of training (the bench's held-out clips)")
p.add_argument("--calibration", type=int, default=512, help="fresh clips the confidence is "
               "fitted on after training")
p.add_argument("--workers", type=int, default=1, help="processes that render the training "
               "clips ahead of the model (0: the training process itself)")
p.add_argument("--vae", default=None, help="a VAE checkpoint (train_vae.py): --p-vae of each "
               "batch goes through its round trip, so the captioner learns to read decoded clips")
p.add_argument("--p-vae", type=float, default=0.3, help="share of each batch's clips sent "
               "through the --vae round trip (ignored without --vae)")
add_run_args(p, out="runs/captioner", lr=2e-3, warmup=100, batch_size=32, save_every=250)
args = p.parse_args()
check_run_args(p, args)
if args.calibration < 32:
    p.error(f"--calibration {args.calibration}: fit the confidence on at least 32 clips")
if not 0 <= args.p_vae <= 1:
    p.error(f"--p-vae {args.p_vae}: a share of the batch, between 0 and 1")
if args.vae and not os.path.exists(args.vae):
    p.error(f"--vae {args.vae}: no such file; train a VAE first: python train_vae.py "
            "--preset tiny-t4 --out runs/vae_t4")
held_manifests = [os.path.join(args.data, s, f"{k}.jsonl") for s in ("val", "test")
                  for k in ("clips", "images")]
held_manifests = [m for m in held_manifests if os.path.exists(m)]
TRAJECTORY = ["preset", "steps", "batch_size", "lr", "warmup", "seed", "precision", "vae",
              "p_vae"]

# ----------------------------------------------------------------------------- setup
dist = dist_setup(args.device)
run = Run(args, dist, kind="captioner", trainer="train_captioner.py", trajectory=TRAJECTORY)
cfg = CaptionerConfig(**run.resumed["config"]) if run.resumed else \
    replace(PRESETS[args.preset], vocab=caption_data.vocabulary())
index = {w: i for i, w in enumerate(cfg.vocab)}
held = caption_data.held_out_keys(held_manifests)
seed_all(args.seed)                                      # the same init on every rank
model = CaptionerNet(cfg).to(dist.device)                # the raw handle: saved, EMA'd
opt = adamw(model.parameters(), args.lr, weight_decay=0.01)
ema = EMA(model, 0.995)
run.attach(model, opt, config=asdict(cfg), ema=ema)
ddp = wrap_ddp(model, dist)
dtype = pick_precision(dist.device, args.precision, bf16_pays_on_cpu=False)
vae = load_vae(args.vae)[0].to(dist.device) if args.vae else None      # frozen, eval mode
check_batch(args.batch_size, dist)
print0(f"captioner: {sum(q.numel() for q in model.parameters()) / 1e6:.2f}M parameters, "
       f"{len(cfg.vocab)} words, {len(held)} held-out scenes kept out "
       f"({len(held_manifests)} manifests of {args.data}), world size {dist.world_size}, {dtype}")

# ----------------------------------------------------------------------------- train
# The GLOBAL batch of step k from rng (seed, k), drawn alike on every rank (each takes its
# rows), rendered one step ahead in a worker process while the model trains.
batches = caption_data.loader(run.step, args.seed, args.batch_size, held, args.workers)
for step in run:
    run.set_lr(opt)
    u8, captions, stills, _ = next(batches)
    rows = [caption_data.encode(c, s, index) for c, s in zip(captions, stills)]
    ids, targets = caption_data.pad(rows)                                    # (B, L) each
    mine = rank_rows(dist)
    video = to_video(u8[mine]).to(dist.device)                               # (B/W, 3, T, H, W)
    if vae is not None:   # the global batch's rows drawn from (seed, step); each rank does its own
        decoded = (np.random.default_rng([args.seed, step, 7]).random(len(u8)) < args.p_vae)[mine]
        if decoded.any():
            decoded = torch.from_numpy(decoded).to(dist.device)
            x = reconstruct(vae, video[decoded])                            # (n, 3, T, H, W)
            video[decoded] = ((x + 1) * 127.5).round() / 127.5 - 1   # 8-bit levels, as pixels
    with autocast(dist.device, dtype):
        loss = caption_loss(ddp, video, ids[mine].to(dist.device), targets[mine].to(dist.device),
                            tokens=int((targets != caption_data.PAD).sum()), world=dist.world_size)
    loss.backward()
    grad_norm = clip_and_step(opt, model.parameters())
    opt.zero_grad(set_to_none=True)
    ema.update(model, step)
    run.record(loss=loss.detach(), grad_norm=grad_norm)
# Stop the render worker now: a distributed rank leaves by os._exit (common.dist_cleanup),
# which would orphan it, blocked on a full pipe and holding the launcher's output open.
del batches

# ----------------------------------------------------------------------------- calibrate
# The confidence: the EMA captioner captions fresh clips of the training mixture (a seed no
# step used); a logistic fit maps its (mean, min) word log-probabilities to the fraction of
# each caption's attributes that are right (caption_bench.caption_accuracy). The P(outside)
# that 1% of these in-world clips exceed becomes the line past which a clip is marked as
# outside the world (captioner.Captioner).
if dist.is_main and not run.stopped:
    captioner = CaptionerNet(cfg)
    ema.copy_to(captioner)
    fit = fit_confidence(captioner, np.random.default_rng([args.seed, 1 << 30]),
                         args.calibration, held)
    print0(f"calibration on {fit['clips']} fresh clips: mean accuracy {fit['accuracy']:.3f}, "
           f"mean confidence {fit['confidence']:.3f}; Platt (a, b, c) = "
           + ", ".join(f"{v:.3f}" for v in fit["platt"])
           + f"; outside the world past P(outside) = {fit['outside']:.3f}")
    run.save(platt=fit.pop("platt"), outside=fit.pop("outside"), calibration=fit)
run.finish("caption a folder with: python -m minivid.caption_folder caption --ckpt " + run.path +
           " --data <folder> --out <folder>/captions.jsonl")
dist_cleanup()
