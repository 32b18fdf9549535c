"""What every evaluation command shares: its flags, its inputs, its yardsticks, its clock and
its report. The commands themselves live in the *_bench.py modules; minivid/evaluate.py
only dispatches to them.

Where it sits: under every `python -m minivid.evaluate <name>`. A bench module holds
    add_args(sub)   its subcommand(s) and their flags (the shared ones from `shared_args`)
    run(args)       the measurement, the tables, and last the one JSON line (`print_json`)
and calls these helpers for the rest:
    flags     command, shared_args, at_least, need, need_data
    inputs    manifest, rows, captions (the tiny-world manifests: one JSON object a line)
    scores    adherence (the scene checker), real_features, fvd (tiny FVD, fd.py)
    cost      clock, median_ms, Peak (wall time and peak memory of a stretch of work)
    report    print_table, print_columns, print_json, save_figure

Run its tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_01c_yardstick.py -q`
"""
from __future__ import annotations

import argparse
import ctypes
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
from matplotlib.figure import Figure

from minivid import checker, fd
from minivid.common import pick_device, sync_device

# ----------------------------------------------------------------------------- flags


def _device(name: str) -> torch.device:
    try:
        return pick_device(name)
    except (ValueError, RuntimeError) as e:  # argparse shows an ArgumentTypeError's message
        raise argparse.ArgumentTypeError(str(e)) from None


# The flags several commands share: one name, one meaning, one help everywhere.
SHARED = {
    "data": dict(default="tiny_data", help="tiny-world folder: <split>/{images,clips,long}.jsonl "
                 "(python -m minivid.world)"),
    "n": dict(type=int, default=128, help="prompts (or clips) per set"),
    "steps": dict(type=int, default=32, help="Euler sampler steps (per clip)"),
    "cfg": dict(type=float, default=2.0, help="classifier-free guidance scale (2: the best of "
                "1.5, 2, 3, 4 on the tiny video model)"),
    "seed": dict(type=int, default=0, help="noise seed"),
    "device": dict(type=_device, default="cpu",
                   help="cpu | cuda | auto (cuda when torch sees a GPU)"),
    "gif": dict(default=None, help="GIF of examples to write"),
    "plot": dict(default=None, help="PNG of the figures to write"),
}


def command(sub, name: str, run, help: str) -> argparse.ArgumentParser:
    """A subcommand of `python -m minivid.evaluate`: `run(args)` runs it, `args.error(msg)`
    exits with its usage and msg."""
    p = sub.add_parser(name, help=help, description=help,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.set_defaults(run=run, error=p.error)
    return p


def shared_args(p: argparse.ArgumentParser, *names: str, help: dict | None = None,
                **defaults) -> None:
    """Add the SHARED flags `names` to p, with this command's `defaults` and `help` texts
    ({name: text}) where they differ."""
    for name in names:
        spec = dict(SHARED[name])
        if name in defaults:
            spec["default"] = defaults[name]
        if help and name in help:
            spec["help"] = help[name]
        p.add_argument(f"--{name}", **spec)


def at_least(args, **bounds) -> None:
    """Exit with the command's usage if a flag is below its bound: at_least(args, n=2)."""
    low = [f"--{k.replace('_', '-')} >= {v}" for k, v in bounds.items() if getattr(args, k) < v]
    if low:
        args.error("need " + ", ".join(low))


def need(path, fix: str) -> None:
    """Exit with a clear error naming the fix when an input file is missing."""
    if not os.path.exists(path):
        sys.exit(f"error: {path} not found. {fix}")


# ----------------------------------------------------------------------------- inputs


def manifest(data_dir: str, split: str, kind: str = "clips") -> str:
    """<data_dir>/<split>/<kind>.jsonl: the tiny-world layout (CONTRACT.md)."""
    return os.path.join(data_dir, split, f"{kind}.jsonl")


def need_data(data_dir: str, split: str = "val", kind: str = "clips") -> str:
    """The manifest's path, or exit saying how to make the tiny data."""
    path = manifest(data_dir, split, kind)
    need(path, f"Make the tiny data first: python -m minivid.world --out {data_dir}")
    return path


def rows(data_dir: str, split: str, kind: str = "clips", n: int | None = None) -> list[dict]:
    """The first n rows of a manifest, each its JSON object (caption, sparse, spec, ...)."""
    with open(manifest(data_dir, split, kind)) as f:
        return [json.loads(line) for line in f][:n]


def captions(data_dir: str, split: str, kind: str = "clips", n: int | None = None) -> list[str]:
    """The first n dense captions of a manifest."""
    return [r["caption"] for r in rows(data_dir, split, kind, n)]


# ----------------------------------------------------------------------------- scores


def adherence(videos, prompts) -> float:
    """Mean scene-checker adherence of uint8 videos (N, T, H, W, 3) to their captions."""
    return float(np.mean([checker.adherence(v, c) for v, c in zip(videos, prompts)]))


def real_features(probe: fd.Probe, data_dir: str, split: str = "val",
                  frames: int = 16) -> np.ndarray:
    """Probe features (N, D) of a split's real clips: what tiny FVD compares with."""
    clips, _ = fd.load_clips(manifest(data_dir, split), frames=frames)
    return fd.features(probe, clips)


def fvd(probe: fd.Probe, videos, reference: np.ndarray) -> float:
    """Tiny FVD of generated uint8 videos (N, T, H, W, 3) to reference features (M, D)."""
    return fd.frechet(fd.features(probe, videos), reference)


# ----------------------------------------------------------------------------- cost


def clock(device=None) -> float:
    """Seconds, after the device caught up (on a GPU, queued work would be left uncounted)."""
    if device is not None:
        sync_device(torch.device(device))
    return time.perf_counter()


def median_ms(fn, repeats: int = 5) -> float:
    """Median wall time of fn() in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times)


class Peak:
    """Peak memory of a stretch of work: CUDA's allocator peak, or on Linux the process's
    peak resident set (VmHWM, reset through /proc/self/clear_refs). MB; None elsewhere.
    Before a reset, glibc is asked to hand freed memory back (malloc_trim), or the memory an
    earlier, bigger job freed would stay resident and hide what the next job needs."""

    def __init__(self, device):
        self.cuda = torch.device(device).type == "cuda"

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()
            return
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):
            pass
        if os.path.exists("/proc/self/clear_refs"):
            try:
                with open("/proc/self/clear_refs", "w") as f:
                    f.write("5")
            except OSError:
                pass

    def mb(self) -> float | None:
        if self.cuda:
            return torch.cuda.max_memory_allocated() / 2 ** 20
        try:
            with open("/proc/self/status") as f:
                kb = next(int(line.split()[1]) for line in f if line.startswith("VmHWM"))
            return kb / 1024
        except (OSError, StopIteration):
            return None


# ----------------------------------------------------------------------------- report


def _cell(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def print_table(title: str, items) -> None:
    """A two-column table under a title: items are (name, value); floats get 4 digits."""
    items = list(items)
    width = max(len(str(k)) for k, _ in items)
    print(f"\n{title}\n" + "-" * (width + 16))
    for k, v in items:
        print(f"{str(k):<{width}}  {_cell(v)}")
    print("-" * (width + 16))


def print_columns(title: str, header: list[str], items) -> None:
    """A table with one row per (name, cells): the name left, each cell right-aligned under
    its header; floats get 4 digits (format a cell as a string for anything else)."""
    items = [(str(name), [_cell(v) for v in cells]) for name, cells in items]
    widths = [max([len(header[0])] + [len(name) for name, _ in items])]
    widths += [max([len(h)] + [len(cells[j]) for _, cells in items]) + 2
               for j, h in enumerate(header[1:])]
    print(f"\n{title}")
    print(f"{header[0]:<{widths[0]}}" + "".join(f"{h:>{w}}" for h, w in zip(header[1:],
                                                                          widths[1:])))
    for name, cells in items:
        print(f"{name:<{widths[0]}}" + "".join(f"{c:>{w}}" for c, w in zip(cells, widths[1:])))


def print_json(what: str, fig: dict) -> None:
    """The last line of every command: its figures as one JSON object (grep, diff, plot)."""
    print(json.dumps({"eval": what, **fig}))


def save_figure(fig: Figure, path: str, dpi: int = 120) -> str:
    """Lay out and write a matplotlib Figure (no pyplot: no GUI state) -> path."""
    fig.tight_layout()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path
