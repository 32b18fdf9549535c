"""Train the prompt rewriter: a tiny GPT that reads what people type and writes, first, its
reading (what the prompt states, in the world's words) and then a dense caption.

Where it sits: THIS -> minivid/rewrite.py (Rewriter) -> sample.py --rewrite local and
`python -m minivid.evaluate rewrite`. The model is minivid/gpt.py (words + hashed character
n-grams in, words out); the data is minivid/user_language.py; the loop is the one training
loop (minivid/run.py).

Each step draws fresh scenes from the tiny world and writes, for each, a prompt as a person
might type it (synonyms, typos, negation, counts, relations, sequences, impossible requests)
with the reading it states, and the world's dense caption of the scene (a new phrasing every
time). So the data never repeats, needs no dataset on disk, and the model learns to READ
people, to COPY what they state and to FILL what they leave open. The loss is next-word
cross-entropy on the reading and the caption. The held-out synonyms and structures of
user_language.py never appear; at the end the reading accuracy on them and on ordinary
generated prompts is printed and saved in the checkpoint.

CPU (tiny, 2 cores, 4.5 minutes):
    python train_rewriter.py --out runs/rewriter --minutes 4.5
    python -m minivid.rewrite --ckpt runs/rewriter/ckpt.pt "two red circles" "a dog"
torchrun: torchrun --standalone --nproc_per_node 8 train_rewriter.py --preset small --batch-size 512
Resume:   the same command + --resume.
"""
import argparse
import contextlib
import dataclasses
import json

import numpy as np
import torch

from minivid import rewrite, user_language
from minivid.common import (autocast, check_batch, dist_cleanup, dist_setup, pick_precision,
                            print0, rank_rows, seed_all, wrap_ddp)
from minivid.gpt import GPT, PRESETS, GPTConfig
from minivid.run import Run, add_run_args, check_run_args
from minivid.training import EMA, adamw, clip_and_step

p = argparse.ArgumentParser(description="Train the prompt rewriter (raw prompt -> reading -> "
                            "dense caption LM).",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--preset", default="tiny", choices=list(PRESETS), help="model size (gpt.py)")
p.add_argument("--ema-decay", type=float, default=0.99, help="EMA decay (after its warmup)")
p.add_argument("--word-dropout", type=float, default=0.1, help="prompt words whose id becomes "
               "<unk> (their n-grams stay): teaches reading words it has no id for")
p.add_argument("--scenes", type=int, default=8192, help="world scenes drawn once for the "
               "prompts to be written about (drawing one costs more than writing a prompt)")
p.add_argument("--check-prompts", type=int, default=64, help="generated prompts per held-out "
               "part whose readings are checked at the end (0: skip)")
add_run_args(p, out="runs/rewriter", lr=3e-3, warmup=50, batch_size=64, save_every=200)
args = p.parse_args()
check_run_args(p, args)
if args.scenes < 1:
    p.error(f"--scenes {args.scenes} must be >= 1 (the pool prompts are written about)")
if not 0 <= args.word_dropout < 1:
    p.error(f"--word-dropout {args.word_dropout} must be in [0, 1)")
TRAJECTORY = ["preset", "steps", "batch_size", "lr", "warmup", "ema_decay", "word_dropout",
              "scenes", "seed", "precision"]

# ----------------------------------------------------------------------------- 1. data
dist = dist_setup(args.device)
device = dist.device
run = Run(args, dist, kind="rewriter", trainer="train_rewriter.py", trajectory=TRAJECTORY)
if run.resumed is not None:
    config = run.resumed["config"]
else:
    config = dataclasses.asdict(dataclasses.replace(
        PRESETS[args.preset], vocab=rewrite.build_vocabulary()))
cfg = GPTConfig(**config)
index = {w: i for i, w in enumerate(cfg.vocab)}
pool = rewrite.scene_pool(args.scenes, args.seed)     # the scenes prompts are written about
print0(f"rewriter: vocabulary {len(cfg.vocab)} words, {cfg.grams} n-gram buckets")

# ----------------------------------------------------------------------------- 2. model
seed_all(args.seed)
model = GPT(cfg).to(device)
opt = adamw(model.parameters(), args.lr, betas=(0.9, 0.99), weight_decay=0.0)
ema = EMA(model, args.ema_decay)
run.attach(model, opt, config=config, ema=ema)
ddp = wrap_ddp(model, dist)
dtype = pick_precision(device, args.precision, bf16_pays_on_cpu=False)
check_batch(args.batch_size, dist)


def batch(n, stream, step_seed, dropout):
    """n generated pairs for one step, drawn from (seed, stream, step): a resumed run sees
    the same prompts (stream 0: train, 1: val)."""
    rng = np.random.default_rng([args.seed, stream, step_seed])
    ids, grams, target = rewrite.training_batch(n, index, cfg, rng, dropout, pool=pool)
    return ids.to(device), grams.to(device), target.to(device)


@torch.no_grad()
def val_loss(m) -> float:
    """The EMA model on 256 generated pairs from their own stream (the same every time)."""
    ids, grams, target = batch(256, 1, 0, 0.0)
    with autocast(device, dtype):
        return rewrite.lm_loss(m.eval(), ids, grams, target).item()


# ----------------------------------------------------------------------------- 3. train
print0(f"GPT: {sum(q.numel() for q in model.parameters()) / 1e6:.2f}M params, batch "
       f"{args.batch_size}, world size {dist.world_size}, {dtype}")
eval_model = GPT(GPTConfig(**config)).to(device)   # the EMA weights, for the val loss
for step in run:
    run.set_lr(opt)
    # The GLOBAL batch's pairs, drawn from (seed, step); this rank keeps its rows.
    ids, grams, target = batch(args.batch_size, 0, step, args.word_dropout)       # (B, L)
    words = (target >= 0).sum()                                      # target words in it
    mine = rank_rows(dist)
    ids, grams, target = ids[mine], grams[mine], target[mine]                    # (B / W, L)
    # Short pairs (reading only) and long ones (with the caption) as two micro-batches, each
    # cut to its own length. The loss is the sum over this rank's words / the batch's words,
    # times the world size, because DDP averages the ranks' gradients: the result is the
    # one-process mean (x 1.0 on one process).
    groups = rewrite.length_groups(ids, grams, target)
    loss = 0.0
    for k, (gi, gg, gt) in enumerate(groups):
        last = k == len(groups) - 1 or not hasattr(ddp, "no_sync")
        sync = contextlib.nullcontext() if last else ddp.no_sync()    # reduce once, at the end
        with sync, autocast(device, dtype):
            part = rewrite.lm_loss(ddp.train(), gi, gg, gt, "sum") * dist.world_size / words
        part.backward()
        loss = loss + part.detach()
    grad_norm = clip_and_step(opt, model.parameters())
    opt.zero_grad(set_to_none=True)
    ema.update(model, step)
    run.record(loss=loss.detach(), grad_norm=grad_norm)
    if run.saving:                          # a checkpoint follows this step: the val loss first
        ema.copy_to(eval_model)
        run.log.append(run.step, val_loss=val_loss(eval_model))
run.finish()

# ----------------------------------------------------------------------------- 4. check
# The trained model's readings of generated prompts it never saw: ordinary ones, ones with the
# held-out synonyms, ones in the held-out structures (the whole reading must be exact).
if dist.is_main and args.check_prompts:
    rw = rewrite.Rewriter.load(run.path)
    report = {"val_loss": run.log.series["val_loss"]["value"][-1]}
    for name, kw in (("ordinary", {}), ("held_out_words", {"held_words": True}),
                     ("held_out_structures", {"held_structures": True})):
        rng = np.random.default_rng([args.seed, 2, len(name)])
        pairs = [user_language.sample_pair(rng, **kw) for _ in range(args.check_prompts)]
        report[f"reading_exact_{name}"] = float(np.mean([rw.read(p)[0] == r
                                                         for p, r, _ in pairs]))
    run.save(report=report)
    print0("readings exactly right on generated prompts it never saw: " + ", ".join(
        f"{k[14:]} {v:.1%}" for k, v in report.items() if k.startswith("reading_exact")))
    for prompt in ("a circle that is not red", "two red circles", "a dog"):
        r = rw(prompt, seed=0)
        print0(f"  {prompt!r}\n    reading: {r.reading}\n    -> {r.text}")
    print0(json.dumps(report))
dist_cleanup()
