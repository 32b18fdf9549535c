"""Train the prompt rewriter: a tiny word-level GPT that turns briefs into dense captions.

Where it sits: tiny_data -> THIS -> minivid/rewrite.py (Rewriter) -> sample.py --rewrite local
and `python -m minivid.evaluate rewrite`. The model is minivid/gpt.py; the data, the brief and
the guard are minivid/rewrite.py; the loop is the one training core (minivid/training.py).

Each step draws a batch of train scenes (tiny_data/<split>/clips.jsonl, their specs) and makes
fresh (brief -> dense caption) pairs from them: a random subset of each scene's attributes as
the brief (what a user might state), the world's own captioner for the caption, in a new
phrasing every time. So the data never repeats and the model learns to COPY what the brief
states and to FILL what it leaves open. The loss is next-word cross-entropy on the caption
only. At the end: the val loss and the guard's acceptance of its samples on val sparse
prompts, saved in the checkpoint.

CPU (tiny, 2 cores, 3 minutes):
    python train_rewriter.py --data tiny_data --out runs/rewriter --minutes 3
    python -m minivid.rewrite --ckpt runs/rewriter/ckpt.pt "a red circle" "blue box moving up"
torchrun: torchrun --standalone --nproc_per_node 8 train_rewriter.py --preset small --batch-size 512
Resume:   the same command + --resume.
"""
import argparse
import dataclasses
import json
import os

import numpy as np
import torch
from tqdm import tqdm

from minivid import rewrite
from minivid.checkpoint import restore_run, resume_run, save_run
from minivid.common import (autocast, check_batch, dist_cleanup, dist_setup, pick_precision,
                            print0, seed_all, wrap_ddp)
from minivid.gpt import GPT, PRESETS, GPTConfig
from minivid.training import (EMA, LossLog, Meter, NonFiniteGuard, StepBudget, StopFlag, adamw,
                              batch_indices, clip_and_step, lr_at, set_lr)

p = argparse.ArgumentParser(description="Train the prompt rewriter (brief -> dense caption LM).",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--data", default="tiny_data", help="tiny world folder (python -m minivid.world)")
p.add_argument("--out", default="runs/rewriter", help="run folder")
p.add_argument("--resume", action="store_true", help="continue <out>/ckpt.pt exactly")
p.add_argument("--preset", default="tiny", choices=list(PRESETS), help="model size (gpt.py)")
p.add_argument("--steps", type=int, default=None, help="optimizer steps; wins over --minutes")
p.add_argument("--minutes", type=float, default=None, help="wall-clock budget, turned into a "
               "step count once (training.StepBudget)")
p.add_argument("--batch-size", type=int, default=64, help="GLOBAL batch of pairs")
p.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (AdamW)")
p.add_argument("--warmup", type=int, default=50, help="linear lr warmup steps")
p.add_argument("--ema-decay", type=float, default=0.99, help="EMA decay (after its warmup)")
p.add_argument("--seed", type=int, default=0, help="seeds init, data order and phrasings")
p.add_argument("--device", default="auto", help="auto | cpu | cuda")
p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
               help="autocast dtype (common.pick_precision)")
p.add_argument("--log-every", type=int, default=10, help="steps between log points")
p.add_argument("--eval-every", type=int, default=100, help="val loss + checkpoint every N steps")
p.add_argument("--check-prompts", type=int, default=64, help="val sparse prompts whose rewrites "
               "the guard checks at the end (0: skip)")
args = p.parse_args()
for name in ("log_every", "eval_every", "batch_size"):
    if getattr(args, name) < 1:
        p.error(f"--{name.replace('_', '-')} must be >= 1")
TRAJECTORY = ["data", "preset", "steps", "batch_size", "lr", "warmup", "ema_decay", "seed",
              "precision"]

# ----------------------------------------------------------------------------- 1. data
dist = dist_setup(args.device)
device = dist.device
ckpt_path = os.path.join(args.out, "ckpt.pt")
resume = resume_run(args, "rewriter", TRAJECTORY)
budget = StepBudget(args.steps, args.minutes, resume and resume["schedule"])


def load_rows(split):
    path = os.path.join(args.data, split, "clips.jsonl")
    if not os.path.exists(path):
        raise SystemExit(f"error: {path} not found. Make the tiny data first: "
                         f"python -m minivid.world --out {args.data}")
    with open(path) as f:
        return [json.loads(line) for line in f]


train_rows, val_rows = load_rows("train"), load_rows("val")
train_specs, val_specs = [r["spec"] for r in train_rows], [r["spec"] for r in val_rows]
if resume is not None:
    config = resume["config"]
else:
    config = dataclasses.asdict(dataclasses.replace(
        PRESETS[args.preset], vocab=rewrite.build_vocabulary()))
index = {w: i for i, w in enumerate(config["vocab"])}
print0(f"rewriter: {len(train_specs)} train scenes, vocabulary {len(config['vocab'])} words")

# ----------------------------------------------------------------------------- 2. model
seed_all(args.seed)
model = GPT(GPTConfig(**config)).to(device)
opt = adamw(model.parameters(), args.lr, betas=(0.9, 0.99), weight_decay=0.0)
ema, log, guard, meter = EMA(model, args.ema_decay), LossLog(), NonFiniteGuard(), Meter()
step = 0
if resume is not None:
    step = restore_run(resume, model, opt, log, ema)
ddp = wrap_ddp(model, dist)
dtype = pick_precision(device, args.precision, bf16_pays_on_cpu=False)
check_batch(args.batch_size, dist)
max_len = config["max_len"]


def batch(specs, rows, stream, step_seed):
    """The pairs of `rows` for one step: phrasings drawn from (seed, stream, step), so a
    resumed run sees the same captions (stream 0: train, 1: val)."""
    rng = np.random.default_rng([args.seed, stream, step_seed])
    ids, target = rewrite.training_batch(specs, rows, index, max_len, rng)
    return ids.to(device), target.to(device)


@torch.no_grad()
def val_loss(m) -> float:
    """The EMA model on 256 val scenes with fixed phrasings (the same every time)."""
    ids, target = batch(val_specs, range(min(256, len(val_specs))), 1, 0)
    with autocast(device, dtype):
        return rewrite.lm_loss(m.eval(), ids, target).item()


def save(extra=None):
    save_run(ckpt_path, dist, kind="rewriter", config=config, model=model, opt=opt, step=step,
             args=args, log=log, budget=budget, ema=ema, extra=extra)


# ----------------------------------------------------------------------------- 3. train
print0(f"GPT: {sum(q.numel() for q in model.parameters()) / 1e6:.2f}M params, batch "
       f"{args.batch_size}, world size {dist.world_size}, {dtype}")
budget.start(step)
bar = tqdm(total=budget.total, initial=step, disable=not dist.is_main, desc="rewriter")
stopping = False
eval_model = GPT(GPTConfig(**config)).to(device)
with StopFlag() as stop:
    while budget.total is None or step < budget.total:
        lr = lr_at(step, args.warmup, budget.total, args.lr)
        set_lr(opt, lr)
        rows = batch_indices(len(train_specs), args.batch_size, step, args.seed, dist)  # (B,)
        ids, target = batch(train_specs, rows.tolist(), 0, step)                       # (B, L)
        with autocast(device, dtype):
            loss = rewrite.lm_loss(ddp.train(), ids, target)
        loss.backward()
        grad_norm = clip_and_step(opt, model.parameters())
        opt.zero_grad(set_to_none=True)
        ema.update(model, step)
        meter.add(step, loss=loss.detach(), grad_norm=grad_norm)
        step += 1
        bar.update()
        if budget.plan(step, dist):
            bar.total = budget.total
        if step != budget.total and step % args.log_every and step % args.eval_every:
            continue
        # ------------------------------------------------------------- a log point
        logged, flags = meter.sync(dist, stop=bool(stop))
        guard.check(logged)
        log.extend(logged.pop("steps"), **logged)
        stopping, done = flags["stop"], step == budget.total
        if done or stopping or step % args.eval_every == 0:
            ema.copy_to(eval_model)
            log.append(step, val_loss=val_loss(eval_model))
            if guard.in_a_row == 0 or done or stopping:
                save()
        bar.set_postfix(loss=f"{logged['loss'][-1]:.3f}", lr=f"{lr:.1e}")
        if stopping:
            break
bar.close()
if stopping:
    print0(stop.saved_message(ckpt_path, step))

# ----------------------------------------------------------------------------- 4. check
# The guard on the trained model: val sparse prompts (what users type), one rewrite each.
if dist.is_main and args.check_prompts and not stopping:
    rw = rewrite.Rewriter.load(ckpt_path)
    results = [rw(r["sparse"], seed=0) for r in val_rows[:args.check_prompts]]
    first = np.mean([r.source == "local" and r.tries == 1 for r in results])
    accepted = np.mean([r.source == "local" for r in results])
    report = {"val_loss": log.series["val_loss"]["value"][-1], "guard_first_try": float(first),
              "guard_accepted": float(accepted), "check_prompts": len(results)}
    save({"report": report})
    print0(f"guard on {len(results)} val sparse prompts: {first:.1%} accepted at the first "
           f"sample, {accepted:.1%} within {rw.tries} (the rest: template)")
    for r in results[:3]:
        print0(f"  {r.prompt!r}\n    -> {r.text}")
    print0(json.dumps(report))
print0(f"done: step {step}/{budget.total}, {guard.skipped} skipped steps; rewriter in {ckpt_path}")
dist_cleanup()
