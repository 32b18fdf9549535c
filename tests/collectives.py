"""Run a training script and count the collectives it calls: `python tests/collectives.py
OUT_DIR script.py [flags...]`, under torchrun like the script itself (tests/test_11).

Not a test file: a launcher. It wraps torch.distributed's collective functions with counters,
runs the script as __main__, and at the end writes OUT_DIR/rank<R>.json with the counts and
the script's final step and planned total (its `run`, minivid/run.py), so a test can check that every
rank stopped at the same step and that the loop met the other ranks only at log points.
DDP's own gradient all-reduce runs inside its C++ reducer, not through these functions, so it
is not counted: it is the one collective a data-parallel step must make.
"""
import json
import os
import runpy
import sys

import torch.distributed as tdist

from minivid import common, training

counts = {}
for name in ("all_reduce", "all_gather", "all_gather_object", "broadcast", "broadcast_object_list",
             "reduce", "reduce_scatter", "barrier", "all_to_all", "gather", "scatter"):
    def counted(*args, _name=name, _real=getattr(tdist, name), **kwargs):
        counts[_name] = counts.get(_name, 0) + 1
        return _real(*args, **kwargs)
    setattr(tdist, name, counted)


def counted_sync(self, *args, _real=training.Meter.sync, **kwargs):
    counts["log_points"] = counts.get("log_points", 0) + 1  # Meter.sync: the loop's log points
    return _real(self, *args, **kwargs)


training.Meter.sync = counted_sync
out, script = sys.argv[1], sys.argv[2]
rank = os.environ.get("RANK", "0")
real_cleanup = common.dist_cleanup


def report_then_cleanup():
    """The script's last line: write this rank's counts and final step, then the real
    dist_cleanup (which ends a distributed process with os._exit, so nothing runs after it)."""
    run = sys._getframe(1).f_globals["run"]  # the script's minivid.run.Run (runpy's __main__)
    with open(os.path.join(out, f"rank{rank}.json"), "w") as f:
        json.dump({"counts": dict(counts), "step": run.step, "total": run.budget.total}, f)
    real_cleanup()


common.dist_cleanup = report_then_cleanup  # the script imports it from minivid.common

sys.argv = [script, *sys.argv[3:]]
runpy.run_path(script, run_name="__main__")
