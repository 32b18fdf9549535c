"""13 - The notebooks run.

Concept: notebooks are part of the textbook; they import the package (never copy it) and
run top to bottom on a tiny setting. This test executes each one with nbclient, so a
notebook that drifts from the code fails CI.

Run: python -m pytest tests/test_13_notebooks.py -q
"""
import glob
import os

import pytest

nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' installs nbclient")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "notebooks", "*.ipynb")))


# 1. Every notebook executes without error (its own asserts included).
@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_1_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": os.path.dirname(path)}}).execute()
