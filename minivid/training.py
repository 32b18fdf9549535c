"""Small helpers for hand-written training loops: EMA, loss log, NaN guard, stop flag, lr.

Where it sits: `train_vae.py` and `train_dit.py` read top to bottom with no Trainer class;
these are the few pieces every such loop needs, each a few lines you can read:

    ema, log, guard = EMA(model, decay=0.999), LossLog(), NonFiniteGuard()
    with StopFlag() as stop:
        for step in range(start, total):
            for g in opt.param_groups:
                g["lr"] = lr_at(step, warmup, total, base_lr)
            loss = ...
            if guard.check(all_reduce_mean(loss.detach(), dist), step):  # same verdict on all ranks
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                ema.update(model)
            log.append(step, loss=loss.item())
            if stop.should_stop(dist):     # SIGTERM / Ctrl-C: save, then leave cleanly
                break
    save_checkpoint(...); log.plot(out / "loss.png")

Run its tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_04_checkpoint.py -q`
"""

from __future__ import annotations

import math
import os
import signal
import threading
import warnings

import torch
from matplotlib.figure import Figure

from minivid.common import Dist, all_reduce_mean

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
    def update(self, model: torch.nn.Module) -> None:
        """Move the shadow weights towards the model's current ones (call after opt.step)."""
        for k, v in model.state_dict().items():
            s = self.shadow[k]
            if s.is_floating_point():
                s.lerp_(v, 1.0 - self.decay)  # s + (1 - decay) * (v - s), in place
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


# ----------------------------------------------------------------------------- NaN guard


class NonFiniteGuard:
    """Skip updates whose loss is nan/inf; stop with a clear error if it keeps happening.

    One bad batch (a rare overflow) should not poison the weights: we skip that step. But
    K non-finite losses in a row means training diverged, and skipping forever would only
    burn compute, so we stop. Under DDP pass the all-reduced loss (all_reduce_mean): a nan
    on any rank makes the mean nan, so every rank skips the same steps and none waits
    forever for the others' gradients.
    """

    def __init__(self, max_in_a_row: int = 5):
        self.max_in_a_row = max_in_a_row
        self.in_a_row = 0  # consecutive non-finite values so far
        self.skipped = 0  # total skipped steps in this run, for the final report

    def check(self, loss, step: int) -> bool:
        """True: take the optimizer step. False: skip it (a warning names the step)."""
        value = float(loss)  # for a CUDA tensor this waits for the GPU; once a step is fine
        if math.isfinite(value):
            self.in_a_row = 0
            return True
        self.in_a_row += 1
        self.skipped += 1
        if self.in_a_row >= self.max_in_a_row:
            raise RuntimeError(
                f"loss was {value} (not finite) for {self.in_a_row} steps in a row, last at "
                f"step {step}: training diverged, stopping. The last checkpoint saved before "
                "this is kept untouched; resume from it with a lower learning rate (e.g. half "
                "of --lr) or a longer warmup, and check the data for broken samples")
        warnings.warn(f"step {step}: loss is {value}, skipping this update "
                      f"({self.in_a_row}/{self.max_in_a_row} in a row before stopping)",
                      RuntimeWarning, stacklevel=2)
        return False


# ----------------------------------------------------------------------------- stop flag


class StopFlag:
    """Turn SIGTERM / SIGINT (Ctrl-C) into a flag: the loop saves a checkpoint and exits.

    Clusters send SIGTERM before killing a job (pre-emption, time limit). The default
    action kills the process mid-step and loses everything since the last checkpoint; with
    this flag the loop finishes its step, saves, and returns normally. A second Ctrl-C
    raises KeyboardInterrupt at once, for when you really want out. Use as a context
    manager (or call close()) so the previous handlers come back afterwards.
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
            os.write(2, f"\n{self.signal} received: will save a checkpoint and exit after "
                        "this step (Ctrl-C again to quit at once)\n".encode())

    def __bool__(self) -> bool:
        return self.signal is not None

    def should_stop(self, dist: Dist | None = None) -> bool:
        """Whether to stop now. Under DDP, True on every rank if any rank got a signal.

        That agreement matters: a rank that leaves the loop alone would leave the others
        waiting forever in their next all-reduce. It is a collective, so every rank must
        call it at the same point of every step.
        """
        if dist is None or dist.world_size == 1:
            return bool(self)
        return all_reduce_mean(float(bool(self)), dist) > 0

    def close(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def __enter__(self) -> StopFlag:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ----------------------------------------------------------------------------- lr schedule


def lr_at(step: int, warmup: int, total: int, base: float, min_ratio: float = 0.1) -> float:
    """Learning rate at `step` (0-based): linear warmup, then cosine decay to min_ratio * base.

    Warmup: Adam's second-moment estimates are poor in the first steps, so full-size
    updates then can blow up the fresh network; ramping over `warmup` steps avoids it.
    Step 0 already gets base / warmup (a zero-lr step would be wasted).
    Cosine (Loshchilov & Hutter 2016, https://arxiv.org/abs/1608.03983): our runs have a
    fixed step budget, and annealing the lr towards the end gives a clearly lower final
    loss than a constant lr at the same budget. We stop at 10% rather than 0 so a run
    resumed past `total` to train longer still learns (lr stays at the floor there).
    """
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return base * (min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))
