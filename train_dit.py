"""Train the text-to-video DiT with flow matching: an image model first, then video.

Where it sits: tiny_data -> train_vae.py -> minivid.latents (latent cache) -> THIS -> sample.py.
- `--stage image` trains on the image latents (T = 1). Images are cheap (16 tokens vs 80 for a
  clip) and plentiful, so the model learns the text -> background / colour / shape / size /
  position mapping there, at a fifth of the cost per example.
- `--stage video --init-from <image ckpt>` fine-tunes on clip latents (T = 5 for the t4 VAE).
  Space and text are already learned; frames are told apart by RoPE in self-attention and an
  absolute frame code that is zero for frame 0 (minivid/dit.py), so frame 0 IS the image model
  and video training mostly has to learn motion. Measure the pay-off with
  `python -m minivid.evaluate compare runs/dit_video/ckpt.pt runs/dit_scratch/ckpt.pt`.
- The third stage, clip extension (continuing a history), is train_extend.py.
One step (the loop below): captions -> TextEncoder; latents x0 and noise mixed at a random time
t -> DiT -> velocity; loss = |v - (noise - x0)|^2 (minivid/flow.py, via minivid/t2v.FlowLoss).
The text encoder trains jointly (one optimizer, one EMA); a tenth of the captions are replaced
by "" so the same network also learns the unconditional velocity that guidance needs. The loop's
machinery (steps, lr, logging, checkpoints, --resume) is minivid/run.py's `Run`; what the stages
share (flags, latents, model, the optimizer step over micro-batches) is in minivid/t2v.py.

CPU (tiny preset, 2 cores; image then video, 9 minutes together; V = --vae runs/vae_t4/ckpt.pt
--latents runs/latents):
    python train_dit.py --stage image $V --out runs/dit_image --minutes 4.5
    python train_dit.py --stage video $V --out runs/dit_video --minutes 4.5 \
        --init-from runs/dit_image/ckpt.pt
One GPU:  python train_dit.py --preset small --batch-size 256 --compile ...      (bf16 autocast)
torchrun: torchrun --standalone --nproc_per_node 8 train_dit.py --preset base --batch-size 1024 ...
Resume:   the same command + --resume: the exact same trajectory (bitwise on CPU).
"""
import argparse
import os

import numpy as np
import torch

from minivid import flow
from minivid.common import check_batch, dist_cleanup, dist_setup, print0, rank_rows, step_generator
from minivid.data import save_grid
from minivid.latents import decode_latents
from minivid.run import Run, add_run_args, check_run_args
from minivid.sampling import sample_latents
from minivid.t2v import (TRAJECTORY, add_stage_args, build_stage, cache_scenes, caption_batch,
                         ema_model, load_init, load_stage_latents, mean_loss, read_captions, stage_config,
                         stage_extra, summary, train_step, user_captions, val_draws,
                         word_dropout)
from minivid.training import batch_indices

p = argparse.ArgumentParser(description="Train the text-conditioned DiT on cached VAE latents.",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--stage", choices=["image", "video"], required=True,
               help="image: train on <latents>/train_images.pt; video: on train_clips.pt "
               "(usually --init-from the image stage). Clip extension: train_extend.py")
p.add_argument("--captions", default=None, help="train on these captions instead of the cache's:"
               " a JSONL manifest with one row per train item, in the cache's order (e.g. "
               "`python -m minivid.caption_folder caption` or `relabel` output; the caption experiment)")
add_stage_args(p)
# batch 32 for the tiny CPU runs: a time budget buys ~1.7x the steps of batch 64, and more
# steps won (README)
add_run_args(p, out=None, lr=1e-3, warmup=100, batch_size=32)
args = p.parse_args()
args.out = args.out or f"runs/dit_{args.stage}"
check_run_args(p, args, "grad_accum")

# ----------------------------------------------------------------------------- setup
dist = dist_setup(args.device)
device = dist.device
run = Run(args, dist, kind="dit", trainer=f"train_dit.py --stage {args.stage}",
          trajectory=["stage", "captions", *TRAJECTORY])
init = load_init(args, run.resumed)
lat = load_stage_latents(args, "images" if args.stage == "image" else "clips", init, device)
if args.captions:  # the same clips, captioned another way (README: the caption experiment)
    lat.train["captions"] = read_captions(args.captions, lat.train, lat.paths["train"])
X = lat.normalised(lat.train)                                          # (N, C, T, h, w)
N, C, T, h, w = X.shape
config = stage_config(args, lat, init, own_captions=bool(args.captions))
print0(f"{args.stage} stage: {N} examples of {tuple(X.shape[1:])} latents")
stage = build_stage(args, run, config, init, stage_extra(
    args, lat, args.stage, latent_frames=T, frames=int(lat.train["frames"]),
    captions=args.captions))
text_tokenizer = stage.model["text"].tokenizer
tokens = text_tokenizer(list(lat.train["captions"]))  # every caption, once
scenes = cache_scenes(lat.train.get("specs", [""] * N)) if args.user_captions else None
B = check_batch(args.batch_size, dist)  # per-rank batch
if B % args.grad_accum:
    raise ValueError(f"per-rank batch {B} does not split into --grad-accum {args.grad_accum}")
val_batches = []  # fixed examples, noise and times: a smooth curve, comparable between runs
if lat.val is not None:
    vx = lat.normalised(lat.val, 128).to(device)
    v_noise, v_t, _ = val_draws(vx, args.t_mean)
    v_ids, v_mask = (v.to(device) for v in stage.model["text"].tokenizer(
        list(lat.val["captions"][:len(vx)])))
    val_batches = [dict(x0=vx[i:i + 64], noise=v_noise[i:i + 64], t=v_t[i:i + 64],
                        ids=v_ids[i:i + 64], mask=v_mask[i:i + 64]) for i in range(0, len(vx), 64)]


def preview():
    """The EMA model's samples of 8 val captions -> <out>/samples_<step>.gif."""
    prompts = list(lat.val["captions"][:8])
    z = sample_latents(ema_model(config, stage), prompts, (C, T, h, w), steps=30, cfg=2.0)
    videos = decode_latents(lat.vae, z * lat.train["scale"] + lat.train["shift"],
                            int(lat.train["frames"]))
    save_grid(os.path.join(args.out, f"samples_{run.step:06d}.gif"), videos, prompts)


# ----------------------------------------------------------------------------- train
if run.step == 0 and val_batches and dist.is_main:
    run.log.append(0, val=mean_loss(stage, val_batches))  # where the curve starts
mine = rank_rows(dist)
for step in run:
    run.set_lr(stage.opt)
    idx = batch_indices(N, args.batch_size, step, args.seed, dist)   # (B,) this rank's examples
    # The step's randomness, drawn for the GLOBAL batch from a generator seeded by (seed,
    # step); this rank keeps its rows. So 1 process and N take the same trajectory, and a
    # resumed run draws exactly what the uninterrupted one did (minivid/common.py).
    g_cpu = step_generator(args.seed, step)
    g_dev = step_generator(args.seed, step, device, stream=1)
    drop = (torch.rand(args.batch_size, generator=g_cpu) < args.caption_dropout)[mine]
    t = flow.sample_t(args.batch_size, mean=args.t_mean, generator=g_cpu)[mine]    # (B,)
    noise = torch.randn((args.batch_size, C, T, h, w), generator=g_dev, device=device)[mine]
    step_tokens = tokens
    if args.user_captions or args.word_dropout:   # the mixed-caption DiT (README: rewriting)
        use = (torch.rand(args.batch_size, generator=g_cpu) < args.user_captions)[mine]
        rng = np.random.default_rng([args.seed, step, dist.rank])
        ids, mask = user_captions(text_tokenizer, tokens, idx, use, scenes, rng)
        step_tokens = (word_dropout(ids, mask, args.word_dropout, g_cpu), mask)
        idx_tok = torch.arange(len(idx))
    else:
        idx_tok = idx
    micro = [dict(x0=X[idx[m]].to(device), noise=noise[m], t=t[m].to(device),
                  **caption_batch(step_tokens, idx_tok[m], drop[m], args.compile, device))
             for m in torch.arange(B).chunk(args.grad_accum)]               # gradient accumulation
    train_step(run, stage, micro, val_batches)  # forward, backward, step, EMA, log, val loss
    if args.sample_every and run.due(args.sample_every) and val_batches and dist.is_main:
        preview()
run.finish(summary(run, stage))
dist_cleanup()
