"""Distil a trained DiT (the teacher, ~30-100 guided steps) into a student that samples in 1-8.

Where it sits: train_dit.py -> THIS -> sample.py / `python -m minivid.evaluate distill`.
The method is minivid/distillation.py (teacher-trajectory regression with a step-size input);
this script is its loop, the same core as the trainers (minivid/training.py):
1. Teacher trajectories, once: for N train captions, run the teacher with classifier-free
   guidance (scale --cfg, fixed now: the student will need no guidance pass) from seeded noise
   over a uniform grid of K Euler steps, and keep x at every grid time: (K+1, N, C, T, h, w).
   Every rank computes the same bank (same seeds), so nothing is sent between them.
2. The student is the teacher's text encoder + DiT with a step-size input whose embedding
   starts at zero (DiTConfig.step_input): at step 0 it IS the teacher's conditional model.
3. Each step: a batch of trajectories; per example a step count n in --step-counts and one of
   the n jumps that n-step sampler makes (t -> t - 1/n); the student predicts the average
   velocity of that jump, u(x_t, t, d), and the loss is |u - (x_t - x_{t-d}) / d|^2.
   The text encoder stays frozen (the teacher's features are what the DiT knows).

An extension teacher (train_dit.py --stage extend) is distilled on CONTINUATIONS too: its bank
holds, for every history length 0..7 clips of the long train clips, the teacher's guided
trajectories of the next clip given the packed history (minivid/extend.py); each step trains
one history length, the student sees the same packed context as the teacher did.

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
import torch.nn.functional as F
from tqdm import tqdm

from minivid import distillation, extend, flow
from minivid.captions import strip_motion
from minivid.checkpoint import check_config, load_checkpoint, restore_run, resume_run, save_run
from minivid.common import (autocast, check_batch, dist_cleanup, dist_setup, pick_precision,
                            print0, rank_rows, seed_all, step_generator, wrap_ddp)
from minivid.data import save_grid
from minivid.latents import load_latents
from minivid.sampling import Pipeline, sample_latents
from minivid.t2v import build_model
from minivid.training import (EMA, LossLog, Meter, NonFiniteGuard, StepBudget, StopFlag, adamw,
                              batch_indices, clip_and_step, lr_at, set_lr)

p = argparse.ArgumentParser(description="Distil a DiT into a few-step student (guidance "
                            "folded in).", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--teacher", required=True, help="the teacher: a train_dit.py checkpoint")
p.add_argument("--out", default="runs/distill", help="run folder for the student")
p.add_argument("--resume", action="store_true", help="continue <out>/ckpt.pt exactly")
p.add_argument("--step-counts", type=int, nargs="+", default=[1, 2, 4, 8],
               help="the sampler step counts the student learns (each must divide --K)")
p.add_argument("--K", type=int, default=8, help="teacher Euler steps per trajectory (the fine "
               "grid; the teacher at 8 steps scores as at 100 on the tiny world)")
p.add_argument("--cfg", type=float, default=2.0, help="guidance scale folded into the student")
p.add_argument("--trajectories", type=int, default=4096, help="teacher trajectories in the bank")
p.add_argument("--steps", type=int, default=None, help="optimizer steps; wins over --minutes")
p.add_argument("--minutes", type=float, default=None, help="wall-clock budget of the training "
               "loop (the bank comes first), turned into a step count once")
p.add_argument("--batch-size", type=int, default=32, help="GLOBAL batch of trajectories")
p.add_argument("--lr", type=float, default=3e-4, help="peak learning rate (AdamW)")
p.add_argument("--warmup", type=int, default=50, help="linear lr warmup steps")
p.add_argument("--ema-decay", type=float, default=0.999, help="EMA decay (after its warmup)")
p.add_argument("--seed", type=int, default=0, help="seeds the bank, data order and segments")
p.add_argument("--device", default="auto", help="auto | cpu | cuda")
p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
               help="autocast dtype (common.pick_precision)")
p.add_argument("--log-every", type=int, default=10, help="steps between log points")
p.add_argument("--eval-every", type=int, default=100, help="checkpoint every N steps")
p.add_argument("--sample-every", type=int, default=500, help="preview GIF (1/2/4/8 steps) every "
               "N steps (0: off)")
args = p.parse_args()
for name in ("log_every", "eval_every", "trajectories", "batch_size", "K"):
    if getattr(args, name) < 1:
        p.error(f"--{name.replace('_', '-')} must be >= 1")
if any(n < 1 or args.K % n for n in args.step_counts):
    p.error(f"--step-counts {args.step_counts} must each divide --K {args.K} (e.g. K 8: 1 2 4 8)")
TRAJECTORY = ["teacher", "step_counts", "K", "cfg", "trajectories", "steps", "batch_size", "lr",
              "warmup", "ema_decay", "seed", "precision"]

# ----------------------------------------------------------------------------- setup
dist = dist_setup(args.device)
device = dist.device
ckpt_path = os.path.join(args.out, "ckpt.pt")
resume = resume_run(args, "dit", TRAJECTORY)
budget = StepBudget(args.steps, args.minutes, resume and resume["schedule"])

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
if resume is not None:  # a student of another teacher config: name every differing field
    check_config(resume["config"]["dit"], config["dit"], "student DiT")

# Captions: the teacher's own train captions (its latent cache), a seeded subset.
cache = load_latents(extra["latents"]["train"], extra["vae_fingerprint"])
order = np.random.default_rng(args.seed).permutation(len(cache["captions"]))
N = min(args.trajectories, len(order))
EXTEND = bool(teacher["dit"].cfg.context_kernels)  # a continuation teacher (--stage extend)
if EXTEND:
    # Trajectory j continues long clip order[j // CLIPS] after hc = j % CLIPS clips of history, so
    # every history length gets N / CLIPS trajectories. HISTORY: the clean long-clip latents.
    HISTORY = (cache["latents"].float() - extra["latent_shift"]) / extra["latent_scale"]
    # at the noise level sampling gives every history (extend.SAMPLE_NOISE), drawn once
    g = torch.Generator().manual_seed(args.seed + 1)
    TAU = torch.full((len(HISTORY),), extend.SAMPLE_NOISE)
    HISTORY = extend.noise_history(HISTORY, TAU, g)
    CLIPS = (HISTORY.shape[2] - 1) // extend.NEW
    N = args.trajectories
    if N // CLIPS < args.batch_size:
        p.error(f"--trajectories {N}: an extension teacher's bank is split over {CLIPS} history "
                f"lengths, so give at least {CLIPS} x --batch-size = {CLIPS * args.batch_size}")
    if any(len(r) != CLIPS - 1 for r in cache["clip_captions"]):
        raise ValueError(f"{extra['latents']['train']}: long clips without one caption per "
                         "continuation clip; make them with python -m minivid.world")
    clip_of = torch.tensor([order[(j // CLIPS) % len(order)] for j in range(N)])   # (N,)
    hc_of = torch.arange(N) % CLIPS                                                  # (N,)
    captions = [([cache["captions"][i]] + cache["clip_captions"][i])[hc]
                for i, hc in zip(clip_of.tolist(), hc_of.tolist())]
    # a share of the continuations get the caption without motions (who is in it only), as
    # in train_dit.py --stage extend: what one-prompt long videos give their later clips
    who_only = torch.rand(N, generator=torch.Generator().manual_seed(args.seed)) < \
        extend.P_WHO_ONLY
    captions = [strip_motion(c) if w and hc else c
                for c, w, hc in zip(captions, who_only.tolist(), hc_of.tolist())]
else:
    captions = [cache["captions"][i] for i in order[:N]]
ids_all, mask_all = teacher["text"].tokenizer(captions)                     # (N, Lmax)


def history_context(rows, hc):
    """The packed history of trajectories `rows`, all with hc clips of history (or None)."""
    history, _ = extend.split_example(HISTORY[clip_of[rows]], hc)
    ctx = extend.build_context(history, "pack", t=TAU[clip_of[rows]])
    return None if ctx is None else ctx.to(device)


# ----------------------------------------------------------------------------- 1. the bank
@torch.no_grad()
def make_bank(batch=64):
    """-> (K+1, N, C, T, h, w): the guided teacher's trajectories, seeded (same on every rank).
    An extension teacher: {hc: (K+1, N/CLIPS, C, 4 or 5, h, w)}, one bank per history length."""
    if EXTEND:
        return {hc: make_bank_rows(torch.nonzero(hc_of == hc)[:, 0], hc, batch)
                for hc in range(CLIPS)}
    return make_bank_rows(torch.arange(N), None, batch)


def make_bank_rows(rows, hc, batch):
    # The bank's own noise stream, mixed from (seed, "bank"): NOT torch's manual_seed(seed),
    # which is what sampling and `evaluate` draw their noise from, so evaluation never starts
    # from a noise tensor the student was trained on.
    entropy = [args.seed, 0xBA4C] + ([] if hc is None else [hc])   # one stream per history
    bank_seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])
    Tn = T if hc is None else (extend.FIRST if hc == 0 else extend.NEW)   # frames to make
    noise = torch.randn((len(rows), C, Tn, h, w), generator=torch.Generator().manual_seed(bank_seed))
    parts = []
    desc = "teacher trajectories" + ("" if hc is None else f", history of {hc} clips")
    for i in tqdm(range(0, len(rows), batch), desc=desc, disable=not dist.is_main):
        r = rows[i:i + batch]
        ids, mask = ids_all[r].to(device), mask_all[r].to(device)
        text = teacher["text"](ids, mask)
        null, null_mask = teacher["text"].encode([""] * len(ids), allow_empty=True,
                                                 length=mask.shape[1])
        cond, uncond = dict(text=text, text_mask=mask), dict(text=null, text_mask=null_mask)
        if hc is not None:  # the history conditions both guidance halves
            cond["cond"] = history_context(r, hc)
        f = lambda x, t: flow.velocity(teacher["dit"], x, t, cond, uncond, args.cfg)  # noqa: E731
        parts.append(distillation.teacher_trajectories(f, noise[i:i + batch].to(device), args.K)
                     .cpu())
    return torch.cat(parts, dim=1)


print0(f"teacher {args.teacher}: {N} trajectories of {args.K} guided Euler steps (cfg "
       f"{args.cfg}) over latents {(C, T, h, w)}"
       + (f", continuing histories of 0..{CLIPS - 1} clips (packed)" if EXTEND else ""))
bank = make_bank()                                                        # (K+1, N, C, T, h, w)
ROWS = {hc: torch.nonzero(hc_of == hc)[:, 0] for hc in range(CLIPS)} if EXTEND else None

# ----------------------------------------------------------------------------- 2. the student
seed_all(args.seed)
student = build_model(config).to(device)
distillation.load_teacher(student["dit"], teacher["dit"].state_dict())  # untrained: IS the teacher
student["text"].load_state_dict(teacher["text"].state_dict())
student["text"].requires_grad_(False)  # frozen: the DiT learns to jump on the teacher's features
student["dit"].clean.requires_grad_(False)  # no conditioning frames here (see train_dit.py)
params = [q for q in student.parameters() if q.requires_grad]
opt = adamw(params, args.lr, betas=(0.9, 0.99))
ema, log, guard, meter = EMA(student, args.ema_decay), LossLog(), NonFiniteGuard(), Meter()
step = 0
if resume is not None:
    step = restore_run(resume, student, opt, log, ema)
ddp = wrap_ddp(student["dit"], dist, find_unused=EXTEND)
dtype = pick_precision(device, args.precision, bf16_pays_on_cpu=student["dit"].cfg.dim >= 256)
check_batch(args.batch_size, dist)  # the global batch must split over the ranks
preview_prompts = list(load_latents(extra["latents"]["val"])["captions"][:4]) \
    if os.path.exists(extra["latents"]["val"]) else captions[:4]


def save():
    save_run(ckpt_path, dist, kind="dit", config=config, model=student, opt=opt, step=step,
             args=args, log=log, budget=budget, ema=ema, extra={
                 **extra, "distilled": {"teacher": os.path.abspath(args.teacher),
                                        "step_counts": sorted(args.step_counts), "K": args.K,
                                        "cfg": args.cfg, "trajectories": N}})


def preview():
    """The student (EMA weights) at each of its step counts: one row per count."""
    model = build_model(config).to(device)
    ema.copy_to(model)
    rows, labels = [], []
    if EXTEND:  # 4-clip videos with packed history, one row per step count
        for n in sorted(args.step_counts):
            z = extend.extend(model.eval(), preview_prompts, 4, "pack", steps=n, cfg=1.0,
                              sampler=distillation.student_step, latent_hw=(h, w))
            rows.append(pipe.decode(z, extend.frames_of(4)))
            labels += [f"{n} step{'s' * (n > 1)} a clip: {c}" for c in preview_prompts]
        save_grid(os.path.join(args.out, f"samples_{step:06d}.gif"), np.concatenate(rows),
                  labels, cols=len(preview_prompts))
        return
    for n in sorted(args.step_counts):
        z = sample_latents(model.eval(), preview_prompts, (C, T, h, w), steps=n, cfg=1.0,
                           sampler=distillation.student_step)
        rows.append(pipe.decode(z, extra["frames"]))
        labels += [f"{n} step{'s' * (n > 1)}: {c}" for c in preview_prompts]
    save_grid(os.path.join(args.out, f"samples_{step:06d}.gif"), np.concatenate(rows), labels,
              cols=len(preview_prompts))


# ----------------------------------------------------------------------------- 3. train
print0(f"student: {sum(q.numel() for q in params) / 1e6:.2f}M trainable params, step counts "
       f"{sorted(args.step_counts)}, world size {dist.world_size}, batch {args.batch_size}, {dtype}")
budget.start(step)
bar = tqdm(total=budget.total, initial=step, disable=not dist.is_main, desc="distil")
stopping = False
with StopFlag() as stop:
    while budget.total is None or step < budget.total:
        lr = lr_at(step, args.warmup, budget.total, args.lr)
        set_lr(opt, lr)
        g = step_generator(args.seed, step)
        ctx, traj = None, bank
        if EXTEND:  # this step's history length (the whole batch's): its bank and rows
            hc = extend.training_layout(g, CLIPS)[0]
            traj, rows = bank[hc], ROWS[hc]
        idx = batch_indices(traj.shape[1], args.batch_size, step, args.seed, dist)  # (B,)
        # Which jump each example learns, drawn for the GLOBAL batch from (seed, step); this
        # rank keeps its rows (as in train_dit.py: 1 process == N processes, exact resume).
        n, i = distillation.pick_segments(args.K, args.step_counts, args.batch_size, g)
        n, i = n[rank_rows(dist)], i[rank_rows(dist)]
        x_t, t, d, target = distillation.segment_targets(traj[:, idx], n, i)  # (B, C, T, h, w)
        if EXTEND:
            idx = rows[idx]                     # trajectory ids: captions and history
            ctx = history_context(idx, hc)
        ids, mask = ids_all[idx], mask_all[idx]
        L = int(mask.sum(1).max())
        ids, mask = ids[:, :L].to(device), mask[:, :L].to(device)
        with torch.no_grad():
            text = student["text"](ids, mask)                                  # (B, L, D)
        with autocast(device, dtype):
            u = ddp(x_t.to(device), t.to(device), text, mask, cond=ctx, d=d.to(device))
        loss = F.mse_loss(u.float(), target.to(device))  # |u(x_t, t, d) - (x_t - x_{t-d}) / d|^2
        loss.backward()
        grad_norm = clip_and_step(opt, params)
        opt.zero_grad(set_to_none=True)
        ema.update(student, step)
        meter.add(step, loss=loss.detach(), grad_norm=grad_norm)
        step += 1
        bar.update()
        if budget.plan(step, dist):
            bar.total = budget.total
        every = (args.log_every, args.eval_every, args.sample_every)
        if step != budget.total and not any(k and step % k == 0 for k in every):
            continue
        # ------------------------------------------------------------- a log point
        logged, flags = meter.sync(dist, stop=bool(stop))
        guard.check(logged)
        log.extend(logged.pop("steps"), **logged)
        bar.set_postfix(loss=f"{logged['loss'][-1]:.4f}", lr=f"{lr:.2e}")
        stopping, done = flags["stop"], step == budget.total
        # A skipped (non-finite) last step left the weights untouched, so done/stopping always
        # save; a periodic save waits for a good step (the guard raises if it never comes).
        if done or stopping or (step % args.eval_every == 0 and guard.in_a_row == 0):
            save()
        if dist.is_main and args.sample_every and (step % args.sample_every == 0 or done):
            preview()
        if stopping:
            break
bar.close()
if stopping:
    print0(stop.saved_message(ckpt_path, step))
print0(f"done: step {step}/{budget.total}, {guard.skipped} skipped steps; loss (last 50) "
       f"{np.mean(log.series['loss']['value'][-50:]):.4f}; student in {ckpt_path}")
dist_cleanup()
