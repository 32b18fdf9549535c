"""Shared pytest set-up: one CPU thread per test process.

pytest-xdist runs one worker per core. If every worker (and every script, notebook kernel or
`run_tiny.sh --quick` a test starts) also used one thread per core, a 2-core machine would run
4+ OpenMP threads on 2 cores; OpenMP threads spin while they wait for each other, so an
oversubscribed machine runs many times slower, not twice. One thread each keeps the suite
fast and the results bitwise reproducible. Children inherit the variable (tests/helpers.py's
ENV says the same for the scripts it launches).
"""
import os

os.environ["OMP_NUM_THREADS"] = "1"

import torch  # noqa: E402  (after the variable, so that torch's pool starts with one thread)

torch.set_num_threads(1)

# The two long files (the quick path of the main job, the notebooks) go first when xdist runs
# the suite (`-n auto --dist loadfile`): each worker starts one, and the short files fill in
# around them. In collection order they would come last, and one worker could end up running
# both after the rest. Only on xdist workers: a plain `pytest` keeps the numbered order.
LONG_FIRST = ("test_09f_main_job.py", "test_09d_notebooks.py")


def pytest_collection_modifyitems(config, items):
    if "PYTEST_XDIST_WORKER" not in os.environ:
        return
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))   # stable: order kept
