"""The pieces of the ONE training core: EMA, loss log, data order, lr schedule, time budget,
optimizer step with the non-finite guard, metrics, throughput and the stop flag.

Where it sits: minivid/run.py puts these together into `Run`, the one loop every trainer
(train_vae.py, train_dit.py, train_extend.py, distill.py, train_rewriter.py,
train_captioner.py, the FD probe) runs; each piece solves one concern, once, and is tested
on its own. Nothing on the hot path of a step waits for the host or for the other ranks:
metrics stay on the device until a log point (Meter), then ONE packed all-reduce carries all
of them and the stop flag; the only other meeting point is DDP's gradient all-reduce.

Run its tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_09a_checkpoint.py -q`
"""

from __future__ import annotations

import functools
import math
import os
import signal
import threading
import time
import warnings

import numpy as np
import torch
from matplotlib.figure import Figure

from minivid.common import Dist, all_reduce, print0, sync_device

# ----------------------------------------------------------------------------- EMA


class EMA:
    """Exponential moving average of the weights: shadow <- decay * shadow + (1 - decay) * w.

    Averaging the last ~1 / (1 - decay) steps of weights cancels much of SGD's noise, so
    EMA weights sample visibly better than the raw ones for diffusion / flow models
    (used by DDPM, DiT, ...; Polyak & Juditsky 1992). We average the whole state_dict (all
    floating-point parameters and buffers, like timm's ModelEmaV2; integer buffers are
    copied), so `ckpt["ema"]["shadow"]` loads straight into a fresh model:
        load_state_strict(model, ckpt["ema"]["shadow"], "EMA")
    Build it from the raw model (not the DDP wrapper or a torch.compile'd one) so the keys
    carry no "module." / "_orig_mod." prefix.
    """

    def __init__(self, model: torch.nn.Module, decay: float = 0.999):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int | None = None) -> None:
        """Move the shadow weights towards the model's current ones (call after opt.step).

        With `step`, the decay warms up as min(decay, (1 + step) / (10 + step)) (as in timm
        and TensorFlow): early weights move fast, and a 0.999 average would still hold much
        of the random init after a short run. On device, no host sync."""
        decay = self.decay if step is None else min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if s.is_floating_point():
                s.lerp_(v, 1.0 - decay)  # s + (1 - decay) * (v - s), in place
            else:
                s.copy_(v)

    def copy_to(self, model: torch.nn.Module) -> None:
        """Overwrite `model`'s weights with the EMA weights (e.g. a separate copy for previews)."""
        model.load_state_dict(self.shadow, strict=True)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        shadow = state["shadow"]
        if set(shadow) != set(self.shadow):
            diff = sorted(set(shadow) ^ set(self.shadow))[:5]
            raise ValueError(f"EMA state does not match the model (e.g. keys {diff}); was the "
                             "checkpoint made with another config?")
        self.decay = float(state["decay"])
        for k, v in shadow.items():
            self.shadow[k].copy_(v)  # copy_ keeps our device and dtype


# ----------------------------------------------------------------------------- loss log


class LossLog:
    """Per-step values (loss, grad norm, val loss, ...) that survive resume and plot to PNG.

    Each name is its own series of (step, value), so a value logged every 100 steps (val)
    sits beside one logged every step (train). Only plain lists inside: weights_only-safe.
    """

    def __init__(self):
        self.series: dict[str, dict[str, list]] = {}  # name -> {"step": [...], "value": [...]}

    def append(self, step: int, **values) -> None:
        for name, value in values.items():
            s = self.series.setdefault(name, {"step": [], "value": []})
            s["step"].append(int(step))
            s["value"].append(float(value))  # float() also unwraps 0-dim tensors

    def extend(self, steps: list[int], **series: list[float]) -> None:
        """Many steps at once: what Meter.sync returns at a log point."""
        for i, step in enumerate(steps):
            self.append(step, **{name: values[i] for name, values in series.items()})

    def plot(self, path: str | os.PathLike, smooth: float = 0.9) -> None:
        """Write a PNG: faint raw values plus a smoothed line per series, log-y when possible.

        Smoothing is the debiased exponential average TensorBoard uses: the raw per-step
        loss of a diffusion model is very noisy (it depends on the random timestep), and the
        trend is what tells you whether training works. Log-y because losses fall over
        orders of magnitude. We build a matplotlib `Figure` directly instead of using
        pyplot: that renders with the Agg (PNG) backend and touches no global GUI state, so it
        is safe in scripts, threads and notebooks alike.
        """
        fig = Figure(figsize=(7, 4), dpi=100)
        ax = fig.subplots()
        all_positive, plotted = True, False
        for name, s in self.series.items():
            pts = [(x, y) for x, y in zip(s["step"], s["value"]) if math.isfinite(y)]
            if not pts:
                continue
            xs, ys = zip(*pts)
            all_positive &= min(ys) > 0
            plotted = True
            avg, smoothed = 0.0, []
            for i, y in enumerate(ys):
                avg = smooth * avg + (1 - smooth) * y
                smoothed.append(avg / (1 - smooth ** (i + 1)))  # debias the zero start
            line, = ax.plot(xs, ys, alpha=0.25, linewidth=0.8)
            ax.plot(xs, smoothed, color=line.get_color(), linewidth=1.5, label=name)
        if all_positive and plotted:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.grid(True, which="both", alpha=0.3)
        if plotted:
            ax.legend()
        fig.tight_layout()
        # Write then rename, so a viewer refreshing loss.png never sees half an image.
        tmp = f"{path}.tmp{os.getpid()}"
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)

    def state_dict(self) -> dict:
        return {"series": {k: {"step": list(v["step"]), "value": list(v["value"])}
                           for k, v in self.series.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.series = {k: {"step": list(v["step"]), "value": list(v["value"])}
                       for k, v in state["series"].items()}


# ----------------------------------------------------------------------------- data order


@functools.lru_cache(maxsize=4)
def _permutation(n: int, seed: int, stream: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, stream, epoch]).permutation(n)


def batch_indices(n: int, global_batch: int, step: int, seed: int, dist: Dist,
                  stream: int = 0) -> torch.Tensor:
    """This rank's example indices for optimizer step `step`: (global_batch / world_size,).

    Epochs of a fresh permutation each, seeded by (seed, stream, epoch): every example once
    per epoch, in a new order every epoch. The batch of step s is slice s of its epoch's
    permutation, so the data order is a FUNCTION of the step: nothing to save in a
    checkpoint, and a resumed run (on any number of processes) reads what it would have read.
    Each rank keeps rows rank, rank + W, ... of the global batch: the same rows that
    rank_rows gives it of the step's noise. The last n % global_batch examples of each
    permutation are left out of that epoch (other ones every epoch). `stream` separates
    datasets read side by side (the VAE's images and clips)."""
    per_epoch = n // global_batch
    if per_epoch == 0:
        raise ValueError(f"dataset of {n} examples is smaller than the global batch "
                         f"{global_batch}; use more data or a smaller --batch-size")
    epoch, k = divmod(step, per_epoch)
    order = _permutation(n, seed, stream, epoch)[k * global_batch:(k + 1) * global_batch]
    return torch.from_numpy(order[dist.rank::dist.world_size].copy())


# ----------------------------------------------------------------------------- lr schedule


def lr_at(step: int, warmup: int, total: int | None, base: float,
          min_ratio: float = 0.1) -> float:
    """Learning rate at `step` (0-based): linear warmup, then cosine decay to min_ratio * base.

    Warmup: Adam's second-moment estimates are poor in the first steps, so full-size
    updates then can blow up the fresh network; ramping over `warmup` steps avoids it.
    Step 0 already gets base / warmup (a zero-lr step would be wasted).
    Cosine (Loshchilov & Hutter 2016, https://arxiv.org/abs/1608.03983): our runs have a
    fixed step budget, and annealing the lr towards the end gives a clearly lower final
    loss than a constant lr at the same budget. total=None (a --minutes run that has not
    planned its length yet, see StepBudget) holds the peak lr after the warmup.
    """
    if step < warmup:
        return base * (step + 1) / warmup
    if total is None:
        return base
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    for group in opt.param_groups:
        group["lr"] = lr


# ----------------------------------------------------------------------------- time budget


class StepBudget:
    """The run's length in steps: --steps, or a --minutes budget turned into steps ONCE.

    `total` is None until it is known. --steps sets it and always wins. With --minutes alone
    the run times its steps PLAN_FROM..PLAN_AT after it (re)started (the first steps are slow:
    allocation, caches), the ranks agree on the slowest rank's speed and on the time left in
    ONE all-reduce, and total = step + SPARE * time left / time per step. From then on the
    run is a --steps run: the lr schedule is fixed, every rank stops at the same step (a rank
    that stopped on its own clock would leave the others waiting forever in a collective),
    and the total is saved in the checkpoint, so --resume continues the same schedule
    bitwise. The clock is not read again: a machine that slows down later overruns the budget
    a little rather than cutting the lr schedule short. SPARE leaves 7% for what is not a
    training step (val losses, checkpoints, previews took ~5% of the tiny runs).
    """
    PLAN_FROM, PLAN_AT, SPARE = 10, 50, 0.93

    def __init__(self, steps: int | None, minutes: float | None, saved: dict | None = None):
        if not steps and not minutes and not (saved or {}).get("total"):
            raise ValueError("give --steps and/or --minutes (the run's length)")
        if steps is not None and steps < 1 or minutes is not None and minutes <= 0:
            raise ValueError(f"--steps must be >= 1 and --minutes > 0 (got {steps}, {minutes})")
        self.total = steps or (saved or {}).get("total")
        self.minutes = minutes
        if minutes and not steps and (saved or {}).get("total"):
            print0(f"note: --minutes {minutes} is not used: this run already fixed its length "
                   f"at {saved['total']} steps (pass --steps N to change it)")
        self.start_step = self.t_start = self.t_from = None

    def start(self, step: int) -> None:
        """Call when the loop starts (after loading): the budget counts from here."""
        self.start_step, self.t_start = step, time.perf_counter()

    def plan(self, step: int, dist: Dist) -> bool:
        """Call after every step (on every rank); fixes `total` at the planning step."""
        if self.total is not None:
            return False
        k = step - self.start_step
        if k == self.PLAN_FROM:
            sync_device(dist.device)
            self.t_from = time.perf_counter()
        if k < self.PLAN_AT:
            return False
        sync_device(dist.device)
        now = time.perf_counter()
        per_step = (now - self.t_from) / (self.PLAN_AT - self.PLAN_FROM)
        # max over ranks of (seconds per step, seconds used): the slowest rank decides.
        per_step, used = all_reduce(torch.tensor([per_step, now - self.t_start]), dist, "max").tolist()
        left = self.minutes * 60 - used
        self.total = max(step + 1, step + int(self.SPARE * left / per_step))
        print0(f"--minutes {self.minutes}: {per_step * 1e3:.0f} ms per step -> {self.total} "
               "steps in all (fixed now, saved in the checkpoint)")
        return True

    def state_dict(self) -> dict:
        return {"total": self.total}


# ----------------------------------------------------------------------------- optimizer step


def adamw(params, lr: float, betas=(0.9, 0.999), weight_decay: float = 0.0):
    """AdamW, fused: one kernel for the whole update (CPU and CUDA), and it can skip a step
    on the device (see clip_and_step). weight_decay = 0 makes it plain Adam."""
    return torch.optim.AdamW(params, lr=lr, betas=betas, weight_decay=weight_decay, fused=True)


def clip_and_step(opt: torch.optim.Optimizer, params, max_norm: float = 1.0) -> torch.Tensor:
    """Clip the gradient norm to `max_norm`, then step, unless the norm is not finite.

    Clipping: one rare huge gradient cannot throw the weights far. Skipping: one bad batch
    (an overflow, a broken sample) must not poison the weights. The usual `if
    math.isfinite(loss.item())` makes the host wait for the device every step; instead the
    fused optimizer reads a `found_inf` flag ON the device and leaves weights, moments and
    step count untouched when it is 1 (the mechanism torch's GradScaler uses). Under DDP the
    gradients are already all-reduced here, so every rank sees the same norm and skips the
    same steps. Returns the norm (a 0-dim tensor, nan/inf on a skipped step) for the Meter;
    NonFiniteGuard reads it at the next log point. Call opt.zero_grad afterwards."""
    grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
    opt.found_inf = (~torch.isfinite(grad_norm)).float()
    opt.step()
    return grad_norm


class NonFiniteGuard:
    """At a log point: warn about skipped steps; stop with a clear error if they keep coming.

    clip_and_step already skipped each step whose gradient norm was nan/inf. But K such steps
    in a row means training diverged, and skipping forever would only burn compute, so we
    stop. The verdict comes from the all-reduced log of the interval, the same on every rank.
    """

    def __init__(self, max_in_a_row: int = 5):
        self.max_in_a_row = max_in_a_row
        self.in_a_row = 0  # consecutive non-finite steps so far (0: the last step was fine)
        self.skipped = 0  # total skipped steps in this run, for the final report

    def check(self, logged: dict) -> None:
        """logged: Meter.sync's dict, with "steps" and "grad_norm" lists."""
        for step, norm in zip(logged["steps"], logged["grad_norm"]):
            if math.isfinite(norm):
                self.in_a_row = 0
                continue
            self.in_a_row += 1
            self.skipped += 1
            if self.in_a_row >= self.max_in_a_row:
                raise RuntimeError(
                    f"the gradient was not finite for {self.in_a_row} steps in a row, last at "
                    f"step {step}: training diverged, stopping. The last checkpoint saved "
                    "before this is kept untouched; resume from it with a lower learning rate "
                    "(e.g. half of --lr) or a longer warmup, and check the data for broken "
                    "samples")
            warnings.warn(f"step {step}: gradient norm is {norm}, that update was skipped "
                          f"({self.in_a_row}/{self.max_in_a_row} in a row before stopping)",
                          RuntimeWarning, stacklevel=2)


# ----------------------------------------------------------------------------- metrics


class Meter:
    """Per-step metrics kept on the device until a log point, then ONE all-reduce for all.

    Reading a value (`loss.item()`) makes the host wait for the GPU, and an all-reduce makes
    every rank wait for the slowest; doing either every step stalls the pipeline (nanoGPT
    syncs once per log interval). So a step only appends its 0-dim tensors here; `sync`
    stacks everything since the last log point, plus a few flags, into one tensor, sums it
    over the ranks in one collective, and returns plain floats: per-step values averaged over
    the ranks, and each flag True if it was set on ANY rank (e.g. SIGTERM reached one rank).
    """

    def __init__(self):
        self.steps: list[int] = []
        self.rows: list[torch.Tensor] = []
        self.names: list[str] | None = None

    def add(self, step: int, **values: torch.Tensor) -> None:
        """Record 0-dim tensors (on any one device) for `step`; the same names every step."""
        if self.names is None:
            self.names = list(values)
        self.steps.append(step)
        self.rows.append(torch.stack([values[k].detach().float() for k in self.names]))

    def sync(self, dist: Dist, **flags: bool) -> tuple[dict, dict]:
        """-> ({"steps": [...], name: [per-step mean over ranks], ...}, {flag: any rank})."""
        values = torch.stack(self.rows)                                     # (K, M)
        packed = torch.cat([values.flatten().double(),
                            torch.tensor([float(f) for f in flags.values()],
                                         dtype=torch.float64, device=values.device)])
        packed = all_reduce(packed, dist, "sum").cpu()   # the interval's one collective
        n = values.numel()
        per_step = (packed[:n] / dist.world_size).view(values.shape).T.tolist()  # (M, K)
        logged = {"steps": self.steps, **dict(zip(self.names, per_step))}
        any_rank = {k: bool(v > 0) for k, v in zip(flags, packed[n:].tolist())}
        self.steps, self.rows = [], []
        return logged, any_rank


class Throughput:
    """FLOP/s, tokens/s and MFU of the training steps alone (val, saving, previews excluded).

    Call `add` every step with this rank's work (host numbers: no sync), `lap` at a log point
    right after Meter.sync (the device has caught up there, so the clock is honest), and
    `restart` after the evaluation that follows. The first interval (allocation, warm-up) is
    left out of the averages. MFU is per device: this rank's model FLOP/s over the peak of
    the precision the run uses (common.measure_matmul_peak), measured in the same run.
    """

    def __init__(self, peak_flops: float, world_size: int = 1):
        self.peak, self.world_size = peak_flops, world_size
        self.flops = self.tokens = 0.0  # this interval
        self.total = {"seconds": 0.0, "flops": 0.0, "tokens": 0.0}
        self.laps = 0
        self.restart()

    def add(self, flops: float, tokens: float) -> None:
        self.flops += flops
        self.tokens += tokens

    def restart(self) -> None:
        self.t0 = time.perf_counter()

    def lap(self) -> dict:
        seconds = time.perf_counter() - self.t0
        if self.laps > 0:  # skip the first interval
            for k, v in (("seconds", seconds), ("flops", self.flops), ("tokens", self.tokens)):
                self.total[k] += v
        self.laps += 1
        self.flops = self.tokens = 0.0
        return self.report()

    def report(self) -> dict:
        s = max(self.total["seconds"], 1e-9)
        return {"tokens_per_s": self.total["tokens"] * self.world_size / s,
                "gflops": self.total["flops"] / s / 1e9,
                "mfu": self.total["flops"] / s / self.peak}


# ----------------------------------------------------------------------------- stop flag


class StopFlag:
    """Turn SIGTERM / SIGINT (Ctrl-C) into a flag: the loop saves a checkpoint and exits.

    Clusters send SIGTERM before killing a job (pre-emption, time limit). The default
    action kills the process mid-step and loses everything since the last checkpoint; with
    this flag the loop runs on to its next log point, saves, and returns normally. The
    flag is local; pass it to Meter.sync, which tells every rank if ANY rank got a signal, so
    all of them leave at the same step. A second Ctrl-C raises KeyboardInterrupt at once.
    Use as a context manager so the previous handlers come back afterwards.
    """

    def __init__(self):
        self.signal: str | None = None  # name of the signal that asked us to stop
        self._old = {}
        # Python only allows signal handlers in the main thread; elsewhere we just never stop.
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signal is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt  # second Ctrl-C
        self.signal = signal.Signals(signum).name
        if int(os.environ.get("RANK", 0)) == 0:
            # os.write, not print: a handler can interrupt a print() half-way, and print
            # is not re-entrant; a raw write to stderr is always safe.
            os.write(2, f"\n{self.signal} received: will save a checkpoint and exit at the "
                        "next log point (Ctrl-C again to quit at once)\n".encode())

    def __bool__(self) -> bool:
        return self.signal is not None

    def saved_message(self, path: str, step: int) -> str:
        """What a script prints when it leaves after a signal (on this rank or another)."""
        return (f"{self.signal or 'a signal on another rank'}: saved {path} at step {step}; "
                "continue with the same command + --resume")

    def close(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def __enter__(self) -> StopFlag:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
