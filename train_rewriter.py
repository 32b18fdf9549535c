"""Train the prompt rewriter: a tiny word-level GPT that turns briefs into dense captions.

Where it sits: tiny_data -> THIS -> minivid/rewrite.py (Rewriter) -> sample.py --rewrite local
and `python -m minivid.evaluate rewrite`. The model is minivid/gpt.py; the data, the brief and
the guard are minivid/rewrite.py; the loop is the one training loop (minivid/run.py).

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

from minivid import rewrite
from minivid.common import (Dist, autocast, check_batch, dist_cleanup, dist_setup,
                            pick_precision, print0, rank_rows, seed_all, wrap_ddp)
from minivid.gpt import GPT, PRESETS, GPTConfig
from minivid.run import Run, add_run_args, check_run_args
from minivid.training import EMA, adamw, batch_indices, clip_and_step

p = argparse.ArgumentParser(description="Train the prompt rewriter (brief -> dense caption LM).",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--data", default="tiny_data", help="tiny world folder (python -m minivid.world)")
p.add_argument("--preset", default="tiny", choices=list(PRESETS), help="model size (gpt.py)")
p.add_argument("--ema-decay", type=float, default=0.99, help="EMA decay (after its warmup)")
p.add_argument("--check-prompts", type=int, default=64, help="val sparse prompts whose rewrites "
               "the guard checks at the end (0: skip)")
add_run_args(p, out="runs/rewriter", lr=2e-3, warmup=50, batch_size=64, save_every=100)
args = p.parse_args()
check_run_args(p, args)
TRAJECTORY = ["data", "preset", "steps", "batch_size", "lr", "warmup", "ema_decay", "seed",
              "precision"]

# ----------------------------------------------------------------------------- 1. data
dist = dist_setup(args.device)
device = dist.device
run = Run(args, dist, kind="rewriter", trainer="train_rewriter.py", trajectory=TRAJECTORY)


def load_rows(split):
    path = os.path.join(args.data, split, "clips.jsonl")
    if not os.path.exists(path):
        raise SystemExit(f"error: {path} not found. Make the tiny data first: "
                         f"python -m minivid.world --out {args.data}")
    with open(path) as f:
        return [json.loads(line) for line in f]


train_rows, val_rows = load_rows("train"), load_rows("val")
train_specs, val_specs = [r["spec"] for r in train_rows], [r["spec"] for r in val_rows]
if run.resumed is not None:
    config = run.resumed["config"]
else:
    config = dataclasses.asdict(dataclasses.replace(
        PRESETS[args.preset], vocab=rewrite.build_vocabulary()))
index = {w: i for i, w in enumerate(config["vocab"])}
print0(f"rewriter: {len(train_specs)} train scenes, vocabulary {len(config['vocab'])} words")

# ----------------------------------------------------------------------------- 2. model
seed_all(args.seed)
model = GPT(GPTConfig(**config)).to(device)
opt = adamw(model.parameters(), args.lr, betas=(0.9, 0.99), weight_decay=0.0)
ema = EMA(model, args.ema_decay)
run.attach(model, opt, config=config, ema=ema)
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


# ----------------------------------------------------------------------------- 3. train
print0(f"GPT: {sum(q.numel() for q in model.parameters()) / 1e6:.2f}M params, batch "
       f"{args.batch_size}, world size {dist.world_size}, {dtype}")
eval_model = GPT(GPTConfig(**config)).to(device)   # the EMA weights, for the val loss
for step in run:
    run.set_lr(opt)
    # The GLOBAL batch's pairs, phrased from (seed, step); this rank keeps its rows.
    rows = batch_indices(len(train_specs), args.batch_size, step, args.seed, Dist())  # (B,)
    ids, target = batch(train_specs, rows.tolist(), 0, step)                         # (B, L)
    words = (target >= 0).sum()                                      # caption words in it
    ids, target = ids[rank_rows(dist)], target[rank_rows(dist)]                  # (B / W, L)
    with autocast(device, dtype):
        loss = rewrite.lm_loss(ddp.train(), ids, target)         # mean over this rank's words
    # DDP averages the ranks' gradients: weigh each rank by its share of the batch's words,
    # so the average is the one-process mean (x 1.0 on one process).
    loss = loss * ((target >= 0).sum() * dist.world_size / words)
    loss.backward()
    grad_norm = clip_and_step(opt, model.parameters())
    opt.zero_grad(set_to_none=True)
    ema.update(model, step)
    run.record(loss=loss.detach(), grad_norm=grad_norm)
    if run.saving:                          # a checkpoint follows this step: the val loss first
        ema.copy_to(eval_model)
        run.log.append(run.step, val_loss=val_loss(eval_model))
run.finish()

# ----------------------------------------------------------------------------- 4. check
# The guard on the trained model: val sparse prompts (what users type), one rewrite each.
if dist.is_main and args.check_prompts:
    rw = rewrite.Rewriter.load(run.path)
    results = [rw(r["sparse"], seed=0) for r in val_rows[:args.check_prompts]]
    first = np.mean([r.source == "local" and r.tries == 1 for r in results])
    accepted = np.mean([r.source == "local" for r in results])
    report = {"val_loss": run.log.series["val_loss"]["value"][-1],
              "guard_first_try": float(first), "guard_accepted": float(accepted),
              "check_prompts": len(results)}
    run.save(report=report)
    print0(f"guard on {len(results)} val sparse prompts: {first:.1%} accepted at the first "
           f"sample, {accepted:.1%} within {rw.tries} (the rest: template)")
    for r in results[:3]:
        print0(f"  {r.prompt!r}\n    -> {r.text}")
    print0(json.dumps(report))
dist_cleanup()
