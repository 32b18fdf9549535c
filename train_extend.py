"""Train clip extension: fine-tune the video DiT to continue a history, clip after clip.

Where it sits: after train_dit.py's video stage; sample.py --extend and `minivid.evaluate
extend` use what it writes. It trains on the long clips (129 frames, 33 latent frames; the
long split of python -m minivid.world, cached by minivid.latents): each step draws a history
of 0..7 clips and a context strategy (pack, window or full: minivid/history.py), the history
(a little noised) goes in front of the noisy next clip as clean tokens, and the loss falls on
the new clip only (minivid/extend.py lays the data out). History 0 is an ordinary first clip,
so the same model still starts videos. The model gains the coarse context kernels
(initialised from the full patch embedding) and trains the clean-frame flag. The rest is the
video stage's: the same model, loss, optimizer step and flags (minivid/t2v.py), and the same
loop (minivid/run.py's `Run`). Two options against the drift of long videos (issue 22):
--piece-noise (each packed piece at its own noise level, the anchor clean: minivid/history.py)
--rollouts (part of the histories are the model's own continuations: minivid/rollouts.py)
--damage (part of the histories damaged the way long videos fail, the clip to learn real:
minivid/damage.py) and --object-weight (more of the loss on the latent cells the objects
cover: minivid/object_weight.py).

CPU (tiny preset, 2 cores, 5 minutes):
    python train_extend.py --vae runs/vae_t4/ckpt.pt --latents runs/latents \
        --init-from runs/dit_video/ckpt.pt --out runs/extend --minutes 5
One GPU:  add --device cuda (bf16 autocast); torchrun: as train_dit.py (the layout of a step
          is the same on every rank)
Resume:   the same command + --resume: the exact same trajectory (bitwise on CPU).
"""
import argparse
import os
import time

import torch

from minivid import damage, extend, flow, object_weight, rollouts
from minivid.common import check_batch, dist_cleanup, dist_setup, print0, rank_rows, step_generator
from minivid.data import save_grid
from minivid.history import ANCHORS, PACK, frames_of
from minivid.latents import decode_latents
from minivid.run import Run, add_run_args, check_run_args
from minivid.sampling import sample_long
from minivid.t2v import (TRAJECTORY, add_stage_args, build_stage, cache_scenes, caption_batch,
                         ema_model, load_init, load_stage_latents, mean_loss, stage_config,
                         stage_extra, summary, train_step, val_draws)
from minivid.training import batch_indices

p = argparse.ArgumentParser(description="Teach the video DiT to continue clips (clip extension).",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
add_stage_args(p)
p.add_argument("--piece-noise", type=float, default=0.0, help="0: the whole history at one "
               "noise level tau ~ U(0, 0.1); > 0: each packed piece at its own tau ~ U(0, this), "
               "the anchor (frame 0) exactly clean, as in Diffusion Forcing (issue 22: try 0.5)")
p.add_argument("--anchor", default="full", choices=ANCHORS, help="where the packed context "
               "puts the video's first frame: full = at full resolution from clip 2 on; "
               "coarse = at kernel 2 once it is older than the kept window (the old layout)")
p.add_argument("--rollouts", type=float, default=0.0, help="share of the steps with >= 2 "
               "history clips whose history is the model's OWN continuations (minivid/"
               "rollouts.py; a bank built once from --init-from, which must be an extension "
               "model); 0 = always real history (issue 22, part 4: try 0.5)")
p.add_argument("--rollout-videos", type=int, default=128, help="long train clips in the "
               "rollout bank (each gets clips - 1 own continuation clips)")
p.add_argument("--rollout-steps", type=int, default=16, help="sampler steps per own clip")
p.add_argument("--damage", type=float, default=0.0, help="share of the steps with >= 2 history "
               "clips whose history is DAMAGED (an object fades, changes colour, shape or size "
               "from some clip on: minivid/damage.py) while the clip to learn is real; 0 = off "
               "(issue 22: try 0.5)")
p.add_argument("--damage-videos", type=int, default=1000, help="long train clips in the damage "
               "bank, at most all of them (rendered and encoded at the start: ~50 s for 1000 "
               "on 2 CPU cores)")
p.add_argument("--object-weight", type=float, default=1.0, help="the flow loss's weight on the "
               "latent cells an object covers (the world's scene specs say where; the rest "
               "weigh 1; a weighted mean, so the loss keeps its scale): > 1 puts more of the "
               "signal on the objects' shapes (minivid/object_weight.py; issue 22: try 3); 1 = off")
add_run_args(p, out="runs/extend", lr=1e-3, warmup=100, batch_size=32)
args = p.parse_args()
check_run_args(p, args, "grad_accum")
if not (args.init_from or args.resume):
    p.error("train_extend.py continues a video model: pass --init-from runs/dit_video/ckpt.pt")
if not 0 <= args.piece_noise <= 1:
    p.error(f"--piece-noise {args.piece_noise} must be in [0, 1] (a flow time; 0 turns it off)")
if not 0 <= args.rollouts <= 1:
    p.error(f"--rollouts {args.rollouts} must be in [0, 1] (a share of the steps; 0 turns it off)")
if args.rollout_steps < 1:
    p.error(f"--rollout-steps {args.rollout_steps}: sample each own clip in at least 1 step")
if not 0 <= args.damage <= 1:
    p.error(f"--damage {args.damage} must be in [0, 1] (a share of the steps; 0 turns it off)")
if args.object_weight <= 0:
    p.error(f"--object-weight {args.object_weight} must be > 0 (1 turns it off)")
if args.rollouts and args.damage:
    p.error("--rollouts and --damage both replace the history of some steps: use one at a time")
if args.damage and not args.resume and args.damage_videos < args.batch_size:
    p.error(f"--damage-videos {args.damage_videos} is smaller than --batch-size "
            f"{args.batch_size}: a damage step draws its whole batch from the bank")
if args.rollouts and args.rollout_videos < args.batch_size:
    p.error(f"--rollout-videos {args.rollout_videos} is smaller than --batch-size "
            f"{args.batch_size}: a rollout step draws its whole batch from the bank")

# ----------------------------------------------------------------------------- setup
dist = dist_setup(args.device)
device = dist.device
run = Run(args, dist, kind="dit", trainer="train_extend.py", trajectory=TRAJECTORY)
init = load_init(args, run.resumed)
if run.resumed is None and init["extra"].get("stage") not in ("video", "extend"):
    raise ValueError(f"--init-from {args.init_from} is a --stage {init['extra'].get('stage')} "
                     "model; clip extension continues a VIDEO model: --init-from "
                     "runs/dit_video/ckpt.pt")
lat = load_stage_latents(args, "long", init, device)
X = lat.normalised(lat.train)                                          # (N, C, T, h, w)
N, C, T, h, w = X.shape
captions, CLIPS = extend.long_captions(lat.train, lat.paths["train"])  # caption of every row
# where pack puts frame 0: the run's own choice, kept on --resume (history.ANCHORS)
ANCHOR = run.resumed["extra"].get("anchor", "coarse") if run.resumed else args.anchor
# per-piece noise levels (history.noise_pieces): the run's own choice too, kept on --resume
PIECE = run.resumed["extra"].get("piece_noise", 0.0) if run.resumed else args.piece_noise
if PIECE and ANCHOR != "full":
    p.error("--piece-noise keeps the anchor clean: it needs --anchor full")
# training on its own continuations (minivid/rollouts.py): kept on --resume, like the above
ROLL = run.resumed["extra"].get("rollouts") if run.resumed else (
    dict(share=args.rollouts, videos=args.rollout_videos, steps=args.rollout_steps,
         init=os.path.abspath(args.init_from)) if args.rollouts else None)
if ROLL and run.resumed is None and init["extra"].get("stage") != "extend":
    p.error(f"--rollouts samples the model's own continuations, but --init-from {args.init_from} "
            "is a video model that never learnt to continue: train_extend.py it first, then "
            "--init-from that extension checkpoint")
# training on damaged histories (minivid/damage.py): kept on --resume too
DAMAGE = run.resumed["extra"].get("damage") if run.resumed else (
    dict(share=args.damage, videos=args.damage_videos) if args.damage else None)
if DAMAGE and CLIPS < 3:
    p.error(f"--damage needs long clips of >= 3 clips (these have {CLIPS}): make them with "
            "python -m minivid.world (8 by default)")
# the loss's weight on the objects (minivid/object_weight.py): kept on --resume too
OBJW = run.resumed["extra"].get("object_weight", 1.0) if run.resumed else args.object_weight
config = stage_config(args, lat, init, context_kernels=tuple(k for k, _ in PACK if k > 1))
print0(f"extension: {N} long clips of {tuple(X.shape[1:])} latents ({CLIPS} clips each)")
# an extension model's own clips are ordinary 16-frame clips (1 + 4 latents at a time after
# the first); it trained on long clips of long_frames
stage = build_stage(args, run, config, init, stage_extra(
    args, lat, "extend", latent_frames=extend.FIRST, frames=16,
    long_frames=int(lat.train["frames"]), anchor=ANCHOR, piece_noise=PIECE,
    rollouts=ROLL, damage=DAMAGE, object_weight=OBJW), history=True)
tokens = stage.model["text"].tokenizer(captions)  # every caption, once
B = check_batch(args.batch_size, dist)  # per-rank batch
if B % args.grad_accum:
    raise ValueError(f"per-rank batch {B} does not split into --grad-accum {args.grad_accum}")
val_batches = []  # every history length once per CLIPS val clips, packed
if lat.val is not None:
    vx = lat.normalised(lat.val, 128).to(device)
    val_batches = extend.val_batches(vx, *val_draws(vx, args.t_mean), lat.val, CLIPS,
                                     stage.model["text"].tokenizer, ANCHOR, PIECE > 0)


own = None       # the bank (rollouts or damage): (V, C, T, h, w), long clips 0 .. V-1 with
                 # their clips 1 .. clips - 1 replaced (the model's own, or damaged)
if ROLL:
    V = min(ROLL["videos"], N)
    bank_path = os.path.join(args.out, rollouts.BANK_FILE)
    if run.resumed and not os.path.exists(bank_path):
        raise FileNotFoundError(f"{bank_path} is missing: this run trains on the rollout bank it "
                                "built at its start; restore it, or start a new run (--out)")
    t0 = time.perf_counter()
    # from the model the run starts with, sampled as IT was trained (its anchor, its noise)
    start = dict(anchor=init["extra"].get("anchor", "coarse"),
                 piece_noise=init["extra"].get("piece_noise", 0.0) > 0)
    own = rollouts.load_or_build(bank_path, ROLL, lambda: rollouts.build_bank(
        ema_model(config, stage), X, torch.arange(V), captions, CLIPS, ROLL["steps"],
        seed=args.seed, progress=dist.is_main, **start))
    print0(f"rollout bank: {V} long clips x {CLIPS - 1} own clips ({ROLL['steps']} sampler "
           f"steps each), ready in {time.perf_counter() - t0:.0f} s; {ROLL['share']:.0%} of the "
           "steps with >= 2 history clips continue the model's own clips")
if DAMAGE:        # the same use as the rollout bank, with the world's damage instead
    V = min(DAMAGE["videos"], N)
    t0 = time.perf_counter()
    own, done = damage.build_bank(lat.vae, cache_scenes(lat.train["specs"]), torch.arange(V),
                                  CLIPS, lat.train["shift"], lat.train["scale"], seed=args.seed)
    kinds = {k: sum(d["kind"] == k for d in done) for k in damage.KINDS}
    print0(f"damage bank: {V} long clips, damaged from one clip on ({kinds}), ready in "
           f"{time.perf_counter() - t0:.0f} s; "
           f"{DAMAGE['share']:.0%} of the steps with >= 2 history clips continue a damaged history")
share = (ROLL or DAMAGE or {}).get("share", 0.0)
cells = None     # (N, 1, T, h, w) bool: the latent cells each long clip's objects cover
if OBJW != 1:
    cells = object_weight.latent_masks(cache_scenes(lat.train["specs"]), range(N), T, h, w)
    print0(f"object weight {OBJW:g}: objects cover {cells.float().mean():.1%} of the latent "
           "cells of the long train clips")


def preview():
    """4 long videos of 4 clips from the EMA model, packed history, one val prompt each."""
    prompts = list(lat.val["captions"][:4])
    z = sample_long(ema_model(config, stage), prompts, 4, "pack", steps=30, latent_hw=(h, w),
                    anchor=ANCHOR, piece_noise=PIECE > 0)
    videos = decode_latents(lat.vae, z * lat.train["scale"] + lat.train["shift"], frames_of(4))
    save_grid(os.path.join(args.out, f"samples_{run.step:06d}.gif"), videos, prompts)


# ----------------------------------------------------------------------------- train
if run.step == 0 and val_batches and dist.is_main:
    run.log.append(0, val=mean_loss(stage, val_batches))  # where the curve starts: the video model
mine = rank_rows(dist)
bank_steps = 0   # steps whose history came from the bank (rollouts or damage), this run
for step in run:
    run.set_lr(stage.opt)
    idx = batch_indices(N, args.batch_size, step, args.seed, dist)   # (B,) this rank's long clips
    # The step's randomness for the GLOBAL batch, from (seed, step); this rank keeps its rows.
    # Its layout (history length, strategy) is the whole batch's: one shape per batch.
    g_cpu, g_dev = step_generator(args.seed, step), step_generator(args.seed, step, device, 1)
    lay = extend.draw_layout(g_cpu, args.batch_size, CLIPS, mine, ANCHOR, PIECE)
    # a bank step (its own stream: the other draws stay those of a run without a bank)
    roll = own is not None and lay.hc >= 2 and \
        torch.rand(1, generator=step_generator(args.seed, step, "cpu", 2)).item() < share
    if roll:   # long clips from the bank, in their own epochs
        idx = batch_indices(len(own), args.batch_size, step, args.seed, dist, stream=1)
        bank_steps += 1
    drop = (torch.rand(args.batch_size, generator=g_cpu) < args.caption_dropout)[mine]
    t = flow.sample_t(args.batch_size, mean=args.t_mean, generator=g_cpu)[mine]    # (B,)
    noise = torch.randn((args.batch_size, C, lay.frames, h, w), generator=g_dev,
                        device=device)[mine]             # the clip's noise
    hist_noise = torch.randn((args.batch_size, C, lay.history_frames, h, w), generator=g_dev,
                             device=device)[mine]        # moves the history to its time tau
    micro = []
    for m in torch.arange(B).chunk(args.grad_accum):                   # gradient accumulation
        z = X[idx[m]].to(device)                                       # (b, C, T, h, w)
        if roll:   # the history's clips 1 .. hc-1 from the bank, the clip to learn real
            z = rollouts.with_own_history(z, own[idx[m]], lay.hc)
        x0, ctx = lay.example(z, hist_noise[m], m)                     # the clip, its history
        rows = lay.caption_rows(idx[m], m, CLIPS, N)   # the new clip's caption, maybe who-only
        weight = None if cells is None else object_weight.weights(   # the clip to learn's cells
            extend.split_example(cells[idx[m]], lay.hc)[1], OBJW).to(device)
        micro.append(dict(x0=x0, noise=noise[m], t=t[m].to(device), cond=ctx, weight=weight,
                          **caption_batch(tokens, rows, drop[m], args.compile, device)))
    train_step(run, stage, micro, val_batches)  # forward, backward, step, EMA, log, val loss
    if args.sample_every and run.due(args.sample_every) and val_batches and dist.is_main:
        preview()
if own is not None:
    print0(f"bank steps: {bank_steps} of this run's steps took their history from the bank")
run.finish(summary(run, stage))
dist_cleanup()
