"""`Run`: the one training loop every minivid trainer runs, and the run flags they all share.

Where it sits: train_vae.py, train_dit.py, train_extend.py, distill.py, train_rewriter.py,
train_captioner.py and the FD probe (minivid/fd.py) each build their model, data and loss,
then hand the loop's machinery to a `Run`: step counting, the --steps / --minutes budget, the
lr schedule, the metrics meter, the non-finite guard, the progress bar, the loss log, the stop
flag (SIGTERM / Ctrl-C), periodic and final checkpoints, and --resume. The pieces themselves
live in minivid/training.py (one concern each); this file only puts them in order. A trainer:

    p = argparse.ArgumentParser(...)
    add_run_args(p, out="runs/mine", lr=1e-3, warmup=100, batch_size=32)   # the same flags
    args = p.parse_args()
    dist = dist_setup(args.device)
    run = Run(args, dist, kind="mine", trainer="train_mine.py", trajectory=["lr", "seed"])
    model = Model(cfg).to(dist.device)             # run.resumed: the --resume checkpoint or None
    opt = adamw(model.parameters(), args.lr)
    run.attach(model, opt, config=asdict(cfg))     # --resume: weights, optimizer, log, step back
    for step in run:                               # stops at the budget, or at a signal
        run.set_lr(opt)                            # warmup + cosine, a function of the step
        idx = batch_indices(N, args.batch_size, step, args.seed, dist)   # data order = f(step)
        loss = loss_of(model, data[idx]); loss.backward()                # THE MATH
        grad_norm = clip_and_step(opt, model.parameters())               # non-finite: skipped
        opt.zero_grad(set_to_none=True)
        run.record(loss=loss.detach(), grad_norm=grad_norm)              # stays on the device
        if run.saving:                             # a checkpoint follows this step: log val
            run.log.append(run.step, val=val_loss())
    run.finish()                                   # the summary line; a stopped run exits here

At a log point (every --log-every steps, every --save-every steps and the last step) `record`
does the interval's ONE all-reduce (metrics + the stop flag), checks the guard and extends the
log; after the step's body the loop saves when `run.saving` says so. A checkpoint names the
trainer that wrote it, so `--resume` on another trainer's run is refused with its name.

Run its tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_09a_checkpoint.py -q`
"""
from __future__ import annotations

import argparse
import os

from tqdm import tqdm

from minivid.checkpoint import restore_run, resume_run, save_run
from minivid.common import Dist, dist_cleanup, print0
from minivid.training import (LossLog, Meter, NonFiniteGuard, StepBudget, StopFlag, Throughput,
                              lr_at, set_lr)

# The run flags every trainer shares: same names, same meaning, same help (a test compares the
# parsers). Only the defaults differ per trainer, passed to add_run_args.
RUN_FLAGS = ["out", "resume", "steps", "minutes", "batch_size", "lr", "warmup", "seed",
             "device", "precision", "log_every", "save_every"]


def add_run_args(p: argparse.ArgumentParser, *, out: str | None, lr: float, warmup: int,
                 batch_size: int, minutes: float | None = None, save_every: int = 100,
                 log_every: int = 10) -> None:
    """Add the shared run flags to a trainer's parser, with that trainer's defaults."""
    g = p.add_argument_group("run (the same flags in every trainer, minivid/run.py)")
    g.add_argument("--out", default=out, help="run folder: ckpt.pt, loss.png, previews")
    g.add_argument("--resume", action="store_true", help="continue <out>/ckpt.pt exactly "
                   "(the same command + --resume follows the same trajectory)")
    g.add_argument("--steps", type=int, default=None, help="optimizer steps (the lr schedule's "
                   "length); wins over --minutes")
    g.add_argument("--minutes", type=float, default=minutes, help="wall-clock budget of the "
                   "loop, turned into a step count ONCE from the speed of steps 10-50")
    g.add_argument("--batch-size", type=int, default=batch_size, help="GLOBAL batch per "
                   "optimizer step, split over the ranks")
    g.add_argument("--lr", type=float, default=lr, help="peak learning rate (AdamW)")
    g.add_argument("--warmup", type=int, default=warmup, help="linear lr warmup steps")
    g.add_argument("--seed", type=int, default=0, help="seeds init, data order and noise")
    g.add_argument("--device", default="auto", help="auto | cpu | cuda")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="autocast dtype; auto: bf16 on CUDA, on CPU where it pays "
                   "(common.pick_precision)")
    g.add_argument("--log-every", type=int, default=log_every, help="steps between log points: "
                   "the only steps where the ranks meet (one all-reduce) and the host reads "
                   "the loss")
    g.add_argument("--save-every", type=int, default=save_every, help="checkpoint (and val "
                   "loss, where the trainer has one) every N steps")


def check_run_args(p: argparse.ArgumentParser, args, *more: str) -> None:
    """p.error for run flags (and the trainer's own integer flags `more`) below 1."""
    for name in ("batch_size", "log_every", "save_every", *more):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1 (got {getattr(args, name)})")
    if args.out is None:
        p.error("--out is required: the run folder for ckpt.pt")


def run_args(p_defaults: dict, **flags) -> argparse.Namespace:
    """The run flags as a Namespace without a command line: for trainers called from code
    (the FD probe). p_defaults: add_run_args' keyword arguments; flags: values to set."""
    p = argparse.ArgumentParser()
    add_run_args(p, **p_defaults)
    args = p.parse_args([])
    for k, v in flags.items():
        setattr(args, k, v)
    return args


class Run:
    """One training run: iterate it for the steps; it logs, saves, resumes and stops.

    kind: the checkpoint kind ("vae", "dit", ...: what loaders ask for); trainer: the command
    that wrote it ("train_vae.py", "train_dit.py --stage image", ...: what --resume checks);
    trajectory: the flags that shape the trajectory (a changed one on --resume is warned).
    """

    def __init__(self, args, dist: Dist, *, kind: str, trainer: str, trajectory: list[str]):
        self.args, self.dist, self.kind, self.trainer = args, dist, kind, trainer
        self.path = os.path.join(args.out, "ckpt.pt")
        self.resumed = resume_run(args, kind, trajectory, trainer)   # dict, or None: fresh
        self.budget = StepBudget(args.steps, args.minutes,
                                 self.resumed and self.resumed["schedule"])
        self.log, self.meter, self.guard = LossLog(), Meter(), NonFiniteGuard()
        self.speed: Throughput | None = None   # set it to count tokens/s and MFU
        self.step, self.lr = 0, args.lr
        self.saving = self.stopped = self.done = False
        self.model = self.opt = self.ema = self.config = None
        self.extra: dict = {}
        # MINIVID_STOP_AFTER=k: behave as if SIGTERM arrived during step k (save, exit 0). A
        # pre-emption at a known step: what the resume tests use, with no race against a clock.
        self.stop_after = int(os.environ.get("MINIVID_STOP_AFTER", 0)) or None

    def attach(self, model, opt, *, config: dict, ema=None, extra: dict | None = None) -> int:
        """What the checkpoint holds: the raw model (not DDP, not compiled), its optimizer, its
        config (to rebuild it), the EMA and plain `extra` facts. On --resume, loads them now
        (all-or-nothing) and returns the step to go on at."""
        self.model, self.opt, self.ema, self.config = model, opt, ema, config
        self.extra = dict(extra or {})
        if self.resumed is not None:
            self.step = restore_run(self.resumed, model, opt, self.log, ema)
            print0(f"resumed {self.path} at step {self.step}")
        return self.step

    def set_lr(self, opt, min_ratio: float = 0.1) -> float:
        """Linear warmup, then cosine to min_ratio * --lr (training.lr_at), set on `opt`."""
        self.lr = lr_at(self.step, self.args.warmup, self.budget.total, self.args.lr, min_ratio)
        set_lr(opt, self.lr)
        return self.lr

    def due(self, every: int) -> bool:
        """After record(): is this step a multiple of `every` (0: never), or the last one?"""
        return self.done or bool(every and self.step % every == 0)

    def record(self, **metrics) -> None:
        """End of a step: its 0-dim metrics (needs `loss` and `grad_norm`) join the meter, the
        step count moves on, and at a log point the interval is synced, checked and logged."""
        args, dist = self.args, self.dist
        self.meter.add(self.step, **metrics)
        self.step += 1
        self.bar.update()
        if self.budget.plan(self.step, dist):   # --minutes alone: the step count is fixed now
            self.bar.total = self.budget.total
        self.done = self.step == self.budget.total
        asked = self.step == self.stop_after
        if asked and not self.stop:
            self.stop.signal = f"MINIVID_STOP_AFTER={self.stop_after}"
        self.logged = self.done or asked or self.step % args.log_every == 0 or \
            self.step % args.save_every == 0
        if not self.logged:
            return
        logged, flags = self.meter.sync(dist, stop=bool(self.stop) or asked)  # ONE all-reduce
        self.guard.check(logged)   # too many non-finite steps in a row: a clear error
        self.log.extend(logged.pop("steps"), **logged)
        post = {"loss": f"{logged['loss'][-1]:.4f}", "lr": f"{self.lr:.1e}"}
        if self.speed is not None:
            rate = self.speed.lap()   # the device caught up at the sync: an honest clock
            post.update(tok_s=f"{rate['tokens_per_s']:.0f}", mfu=f"{rate['mfu']:.0%}")
        self.bar.set_postfix(post)
        self.stopped = flags["stop"]
        # A skipped (non-finite) step left the weights untouched, so the last step and a stop
        # always save; a periodic save waits for a good step (the guard raises if none comes).
        self.saving = self.done or self.stopped or (self.step % args.save_every == 0
                                                    and self.guard.in_a_row == 0)

    def __iter__(self):
        self.budget.start(self.step)
        self.bar = tqdm(total=self.budget.total, initial=self.step, desc=self.trainer,
                        disable=not self.dist.is_main, unit="step")
        with StopFlag() as self.stop:
            while self.budget.total is None or self.step < self.budget.total:
                self.saving = self.logged = False
                before = self.step
                yield self.step
                if self.step != before + 1:
                    raise RuntimeError("call run.record(loss=..., grad_norm=...) once per step")
                if self.saving:
                    self.save()
                if self.logged and self.speed is not None:
                    self.speed.restart()   # val, checkpoint and previews are not training
                if self.stopped:
                    break
        self.bar.close()

    def save(self, **extra) -> None:
        """The checkpoint, now (rank 0; atomic; loss.png beside it). `extra` adds facts."""
        self.extra.update(extra)
        save_run(self.path, self.dist, kind=self.kind, config=self.config, model=self.model,
                 opt=self.opt, step=self.step, args=self.args, log=self.log,
                 budget=self.budget, ema=self.ema, extra=self.extra, trainer=self.trainer)

    def finish(self, summary: str = "") -> None:
        """After the loop: a stopped run prints how to resume and exits (the checkpoint is what
        matters: leave before the grace period ends); a finished one prints its summary."""
        if self.stopped:
            print0(self.stop.saved_message(self.path, self.step))
            dist_cleanup()
            raise SystemExit(0)
        print0(f"done: step {self.step}/{self.budget.total}, {self.guard.skipped} skipped "
               f"steps; {self.path}" + (f"; {summary}" if summary else ""))
