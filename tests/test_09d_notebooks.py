"""09d The notebooks run.

Concept: notebooks are part of the textbook; they import the package (never copy it) and
run top to bottom on a tiny setting. This test executes each one with nbclient, so a
notebook that drifts from the code fails CI; and it checks that pictures really come out
(a figure that only renders to a headless backend shows nothing in Jupyter) and that the
committed file carries them, so the notebook reads well on the web without running it.
Refresh the committed outputs with: cd notebooks && jupyter execute --inplace NAME.ipynb

Run: python -m pytest tests/test_09d_notebooks.py -q
"""
import glob
import os

import pytest
from helpers import HANG

nbformat = pytest.importorskip("nbformat", reason="pip install -e '.[dev]' installs nbclient")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "notebooks", "*.ipynb")))


def images(nb) -> int:
    """How many PNG pictures the notebook's code cells output."""
    return sum("image/png" in out.get("data", {}) for cell in nb.cells
               if cell.cell_type == "code" for out in cell.get("outputs", []))


# 1. Every notebook executes without error (its own asserts included) and draws pictures.
@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_1_notebook_runs(path):
    nb = nbformat.read(path, as_version=4)
    assert images(nb) > 0, f"{path} is committed without its pictures; execute it in place"
    for cell in nb.cells:  # start clean: only what runs now counts
        if cell.cell_type == "code":
            cell.outputs = []
    nbclient.NotebookClient(nb, timeout=HANG, kernel_name="python3",
                            resources={"metadata": {"path": os.path.dirname(path)}}).execute()
    assert images(nb) > 0, f"{path} ran but showed no picture"
