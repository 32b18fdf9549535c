"""Distil a trained DiT (the teacher, ~30-100 guided steps) into a student that samples in 1-8.

Where it sits: train_dit.py -> THIS -> sample.py / `python -m minivid.evaluate distill`.
The method is minivid/distillation.py (teacher-trajectory regression with a step-size input);
this script is its loop, on the one training loop of every trainer (minivid/run.py):
1. Teacher trajectories, once: for N train captions, run the teacher with classifier-free
   guidance (scale --cfg, fixed now: the student will need no guidance pass) from seeded noise
   over a uniform grid of K Euler steps, and keep x at every grid time: (K+1, N, C, T, h, w).
   Every rank computes the same bank (same seeds), so nothing is sent between them. The
   --minutes budget starts after it.
2. The student is the teacher's text encoder + DiT with a step-size input whose embedding
   starts at zero (DiTConfig.step_input): at step 0 it IS the teacher's conditional model.
3. Each step: a batch of trajectories; per example a step count n in --step-counts and one of
   the n jumps that n-step sampler makes (t -> t - 1/n); the student predicts the average
   velocity of that jump, u(x_t, t, d), and the loss is |u - (x_t - x_{t-d}) / d|^2.
   The text encoder stays frozen (the teacher's features are what the DiT knows).

An extension teacher (train_extend.py) is distilled on CONTINUATIONS too: its bank holds, for
every history length 0..7 clips of the long train clips, the teacher's guided trajectories of
the next clip given the packed history (distillation.Continuations); each step trains one
history length, the student sees the same packed context as the teacher did (a per-piece
teacher, train_extend.py --piece-noise: the same per-piece levels, the anchor clean).

CPU (tiny, 2 cores; ~8 minutes: ~2 to make the bank, 6 to train):
    python distill.py --teacher runs/dit_video/ckpt.pt --out runs/distill --minutes 6
    python distill.py --teacher runs/extend/ckpt.pt --out runs/extend_distill --minutes 4
    python sample.py --ckpt runs/distill/ckpt.pt --steps 1 --prompt "..."
torchrun: torchrun --standalone --nproc_per_node 8 distill.py --teacher ... --batch-size 256 ...
Resume:   the same command + --resume (the bank is recomputed from its seeds: identical).
"""
import argparse
import os

import numpy as np
import torch

from minivid import distillation, extend
from minivid.checkpoint import check_config, load_checkpoint
from minivid.common import (autocast, check_batch, dist_cleanup, dist_setup, pick_precision,
                            print0, rank_rows, seed_all, step_generator, wrap_ddp)
from minivid.data import save_grid
from minivid.history import frames_of
from minivid.latents import load_latents
from minivid.run import Run, add_run_args, check_run_args
from minivid.sampling import Pipeline, sample_latents, sample_long
from minivid.t2v import build_model
from minivid.training import EMA, adamw, batch_indices, clip_and_step

p = argparse.ArgumentParser(description="Distil a DiT into a few-step student (guidance "
                            "folded in).", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--teacher", required=True, help="the teacher: a train_dit.py checkpoint")
p.add_argument("--step-counts", type=int, nargs="+", default=[1, 2, 4, 8],
               help="the sampler step counts the student learns (each must divide --K)")
p.add_argument("--K", type=int, default=8, help="teacher Euler steps per trajectory (the fine "
               "grid; the teacher at 8 steps scores as at 100 on the tiny world)")
p.add_argument("--cfg", type=float, default=2.0, help="guidance scale folded into the student")
p.add_argument("--trajectories", type=int, default=4096, help="teacher trajectories in the bank")
p.add_argument("--ema-decay", type=float, default=0.999, help="EMA decay (after its warmup)")
p.add_argument("--sample-every", type=int, default=500, help="preview GIF (1/2/4/8 steps) every "
               "N steps (0: off)")
add_run_args(p, out="runs/distill", lr=3e-4, warmup=50, batch_size=32, save_every=100,
             log_every=10)
args = p.parse_args()
check_run_args(p, args, "trajectories", "K")
if any(n < 1 or args.K % n for n in args.step_counts):
    p.error(f"--step-counts {args.step_counts} must each divide --K {args.K} (e.g. K 8: 1 2 4 8)")
TRAJECTORY = ["teacher", "step_counts", "K", "cfg", "trajectories", "steps", "batch_size", "lr",
              "warmup", "ema_decay", "seed", "precision"]

# ----------------------------------------------------------------------------- setup
dist = dist_setup(args.device)
device = dist.device
run = Run(args, dist, kind="dit", trainer="distill.py", trajectory=TRAJECTORY)

# The teacher: a plain DiT checkpoint (not a VAE, not already a student).
teacher_ckpt = load_checkpoint(args.teacher, kind="dit")
if teacher_ckpt["config"]["dit"].get("step_input"):
    raise ValueError(f"--teacher {args.teacher} is a distilled student (its DiT takes a step "
                     "size); distil from the train_dit.py checkpoint it came from")
pipe = Pipeline(args.teacher, device=device)  # EMA weights + the teacher's VAE, eval mode
teacher, extra = pipe.model, teacher_ckpt["extra"]
C, T, (h, w) = teacher["dit"].cfg.in_channels, extra["latent_frames"], extra["latent_hw"]
config = {"text": teacher_ckpt["config"]["text"],
          "dit": distillation.student_config(teacher_ckpt["config"]["dit"])}
if run.resumed is not None:  # a student of another teacher config: name every differing field
    check_config(run.resumed["config"]["dit"], config["dit"], "student DiT")

# Captions: the teacher's own train captions (its latent cache), a seeded subset.
cache = load_latents(extra["latents"]["train"], extra["vae_fingerprint"])
order = np.random.default_rng(args.seed).permutation(len(cache["captions"]))
EXTEND = bool(teacher["dit"].cfg.context_kernels)  # a continuation teacher (train_extend.py)
# its history layout, which the student inherits (it is in the student's extra too): where pack
# puts frame 0, and whether each piece has its own noise level (history.noise_pieces)
ANCHOR, PIECE = extra.get("anchor", "coarse"), extra.get("piece_noise", 0.0) > 0
if EXTEND:  # N trajectories over the long clips and every history length (0 .. clips - 1)
    N = args.trajectories
    hist = distillation.continuations(cache, order, N, args.seed, extra["latent_shift"],
                                      extra["latent_scale"], ANCHOR, PIECE)
    captions = hist.captions
    if N // hist.clips < args.batch_size:
        p.error(f"--trajectories {N}: an extension teacher's bank is split over {hist.clips} "
                f"history lengths, so give at least {hist.clips} x --batch-size = "
                f"{hist.clips * args.batch_size}")
else:
    N = min(args.trajectories, len(order))
    captions = [cache["captions"][i] for i in order[:N]]
ids_all, mask_all = teacher["text"].tokenizer(captions)                     # (N, Lmax)


# ----------------------------------------------------------------------------- 1. the bank
def make_bank(rows, hc=None):
    """The guided teacher from the bank's noise for trajectories `rows` (with hc clips of
    history: an extension teacher): (K+1, len(rows), C, T', h, w), the same on every rank."""
    frames = T if hc is None else hist.frames(hc)
    noise = distillation.bank_noise(args.seed, (len(rows), C, frames, h, w), stream=hc)
    context = None if hc is None else lambda r: hist.context(rows[r], hc, device)  # noqa: E731
    desc = "teacher trajectories" + ("" if hc is None else f", history of {hc} clips")
    return distillation.teacher_bank(teacher, ids_all[rows], mask_all[rows], noise, args.K,
                                     args.cfg, context, desc=desc, progress=dist.is_main)


print0(f"teacher {args.teacher}: {N} trajectories of {args.K} guided Euler steps (cfg "
       f"{args.cfg}) over latents {(C, T, h, w)}"
       + (f", continuing histories of 0..{hist.clips - 1} clips (packed)" if EXTEND else ""))
if EXTEND:  # one bank per history length: {hc: (K+1, N / clips, C, 5 or 4, h, w)}
    bank = {hc: make_bank(hist.rows(hc), hc) for hc in range(hist.clips)}
else:
    bank = make_bank(torch.arange(N))                                     # (K+1, N, C, T, h, w)

# ----------------------------------------------------------------------------- 2. the student
seed_all(args.seed)
student = build_model(config).to(device)
distillation.load_teacher(student["dit"], teacher["dit"].state_dict())  # untrained: IS the teacher
student["text"].load_state_dict(teacher["text"].state_dict())
student["text"].requires_grad_(False)  # frozen: the DiT learns to jump on the teacher's features
student["dit"].clean.requires_grad_(False)  # no conditioning frames here (see train_dit.py)
params = [q for q in student.parameters() if q.requires_grad]
opt = adamw(params, args.lr, betas=(0.9, 0.99))
ema = EMA(student, args.ema_decay)
run.attach(student, opt, config=config, ema=ema, extra={
    **extra, "distilled": {"teacher": os.path.abspath(args.teacher), "K": args.K,
                           "step_counts": sorted(args.step_counts), "cfg": args.cfg,
                           "trajectories": N}})
ddp = wrap_ddp(student["dit"], dist, find_unused=EXTEND)
dtype = pick_precision(device, args.precision, bf16_pays_on_cpu=student["dit"].cfg.dim >= 256)
check_batch(args.batch_size, dist)  # the global batch must split over the ranks
preview_prompts = list(load_latents(extra["latents"]["val"])["captions"][:4]) \
    if os.path.exists(extra["latents"]["val"]) else captions[:4]


def preview(step):
    """The student (EMA weights) at each of its step counts: one row per count (an extension
    teacher's student: 4-clip videos, packed history)."""
    model = build_model(config).to(device).eval()
    ema.copy_to(model)
    rows, labels = [], []
    for n in sorted(args.step_counts):
        if EXTEND:
            z = sample_long(model, preview_prompts, 4, "pack", steps=n, cfg=1.0,
                            sampler=distillation.student_step, latent_hw=(h, w),
                            anchor=ANCHOR, piece_noise=PIECE)
            rows.append(pipe.decode(z, frames_of(4)))
        else:
            z = sample_latents(model, preview_prompts, (C, T, h, w), steps=n, cfg=1.0,
                               sampler=distillation.student_step)
            rows.append(pipe.decode(z, extra["frames"]))
        labels += [f"{n} step{'s' * (n > 1)}{' a clip' * EXTEND}: {c}" for c in preview_prompts]
    save_grid(os.path.join(args.out, f"samples_{step:06d}.gif"), np.concatenate(rows), labels,
              cols=len(preview_prompts))


# ----------------------------------------------------------------------------- 3. train
print0(f"student: {sum(q.numel() for q in params) / 1e6:.2f}M trainable params, step counts "
       f"{sorted(args.step_counts)}, world size {dist.world_size}, batch {args.batch_size}, {dtype}")
for step in run:
    run.set_lr(opt)                                  # warmup, then cosine to 0.1 x --lr
    g = step_generator(args.seed, step)              # all of this step's randomness
    hc = extend.training_layout(g, hist.clips)[0] if EXTEND else None  # history: whole batch's
    traj = bank if hc is None else bank[hc]                             # (K+1, N', C, T, h, w)
    j = batch_indices(traj.shape[1], args.batch_size, step, args.seed, dist)  # (B,) bank rows
    idx = j if hc is None else hist.rows(hc)[j]      # trajectory ids: captions and history
    # Which jump each example learns, drawn for the GLOBAL batch from (seed, step); this rank
    # keeps its rows (as in train_dit.py: 1 process == N processes, exact resume).
    n, i = distillation.pick_segments(args.K, args.step_counts, args.batch_size, g)
    n, i = n[rank_rows(dist)], i[rank_rows(dist)]    # (B,) each: n steps, from grid index i
    ids, mask = ids_all[idx], mask_all[idx]
    L = int(mask.sum(1).max())                       # the batch's longest caption
    ids, mask = ids[:, :L].to(device), mask[:, :L].to(device)
    with torch.no_grad():
        text = student["text"](ids, mask)                                      # (B, L, D)
    ctx = None if hc is None else hist.context(idx, hc, device)   # packed history, or None
    with autocast(device, dtype):  # |u(x_t, t, d) - (x_t - x_{t-d}) / d|^2, d = 1/n
        loss = distillation.distill_loss(ddp, traj[:, j], n, i, device, text=text,
                                         text_mask=mask, cond=ctx)
    loss.backward()
    grad_norm = clip_and_step(opt, params)
    opt.zero_grad(set_to_none=True)
    ema.update(student, step)
    run.record(loss=loss.detach(), grad_norm=grad_norm)
    if dist.is_main and args.sample_every and run.due(args.sample_every):
        preview(run.step)
run.finish(f"loss (last 50) {np.mean(run.log.series['loss']['value'][-50:]):.4f}")
dist_cleanup()
