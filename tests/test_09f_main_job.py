"""09f The main job, end to end: `run_tiny.sh --quick` runs every stage at toy budgets.

Concept: each stage has its own walkthrough, but only a run of the whole job shows that the
stages still fit together (the VAE's latents feed the DiT, the DiT the student, the rewriter
and clip extension, all of them the agent). The quick path runs the very same commands as
the main job, with toy step counts and small evaluations, into a folder of its own; the
report at the end must show every stage. A finished stage is skipped when the job runs
again, so an interrupted job goes on where it stopped; a stage that fails names itself and
its log. Nothing here is timed: the quick path's figures are meaningless, its job is to run.

    OMP_NUM_THREADS=1 python -m pytest tests/test_09f_main_job.py -q
"""
import json
import subprocess

import pytest
from helpers import ENV, HANG, ROOT

from minivid import report

STAGES = {1: "data", 2: "captioner", 3: "vae_t4", 4: "dit_video", 5: "distill", 6: "rewrite",
          7: "extend", 8: "agent"}


def job(runs, *flags):
    return subprocess.run(["bash", str(ROOT / "run_tiny.sh"), *flags], cwd=ROOT, timeout=HANG,
                          env={**ENV, "MINIVID_RUNS": str(runs)}, capture_output=True, text=True)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    runs = tmp_path_factory.mktemp("quick")
    r = job(runs, "--quick")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return runs, r


# 1. Every stage ran: its folder says so (.done), holds its wall time and its evaluation,
#    whose last line is the JSON of its figures.
def test_01_every_stage_runs(quick):
    runs, r = quick
    for n, folder in STAGES.items():
        d = runs / folder
        assert (d / ".done").exists() and int((d / "wall_time.txt").read_text()) >= 0, folder
        assert f"== {n}." in r.stdout and f"stage {n} took" in r.stdout
        text = (d / "evaluate.txt").read_text().strip().splitlines()
        assert json.loads(text[-1])["eval"], folder
    assert (runs / "agent" / "film.mp4").exists() and (runs / "agent" / "trace.jsonl").exists()


# 2. The report: one page that names every stage and has something from each (none "not run
#    yet"), with its pictures inline.
def test_02_report(quick):
    runs, _ = quick
    page = (runs / "report.html").read_text()
    assert page.count("not run yet") == 0 and "data:image/" in page
    for title in ("Recaptioning", "Patch VAE", "Distillation", "Clip extension", "Video agent"):
        assert title in page
    assert page.count('<h2 id="s') == len(report.STAGES) == 8
    assert len(page) < 30e6                     # the report's cap: it opens in any browser


# 3. Run again: every finished stage is skipped; a stage whose mark is gone runs again and
#    the job finishes (what an interrupted job does).
def test_03_rerun_skips_finished_stages(quick):
    runs, _ = quick
    (runs / "data" / ".done").unlink()              # the cheapest stage: the world, its yardstick
    r = job(runs, "--quick")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("done already") == 7 and "stage 1 took" in r.stdout


# 4. A stage that fails stops the job and names itself and its log; a bad flag is refused.
def test_04_failure_names_the_stage(quick):
    runs, _ = quick
    (runs / "agent" / ".done").unlink()
    (runs / "extend" / "ckpt.pt").write_bytes(b"not a checkpoint")
    r = job(runs, "--quick")
    assert r.returncode != 0
    assert "stage 8" in r.stderr and "FAILED" in r.stderr and "logs/8.log" in r.stderr
    assert not (runs / "agent" / ".done").exists()
    bad = job(runs, "--quik")
    assert bad.returncode == 2 and "unknown flag --quik" in bad.stderr
