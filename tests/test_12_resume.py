"""12 resume: stop a run anywhere, resume it, and get the very same run.

Concept: a resumed run must continue the trajectory it was on, bit for bit. That needs every
piece of state in the checkpoint (model, EMA, optimizer moments, step, lr schedule length,
the loss log) and data and randomness that do not depend on the process's history: step s
reads the batch training.batch_indices gives it and draws its noise from a generator seeded
by (seed, step), whether the process started at step 0 or at step s - 1. The tests run the real scripts on a tiny synthetic cache:
1. SIGTERM (what a cluster sends before pre-empting a job): the script runs on to its next
   log point, saves and exits 0; `--resume` then gives per-step losses, val losses, model, EMA and
   optimizer state bitwise equal to an uninterrupted run.
2. SIGKILL (no warning, no cleanup): the last periodic checkpoint is intact (atomic saves)
   and resuming from it again reproduces the uninterrupted run bitwise.
3. The VAE trainer, the same way.
4. Resuming on 2 processes a run begun on 1 continues the same trajectory, up to float
   summation order (as in test_11). Adam lets that rounding grow a little every step: after
   ~35 steps on 2 processes the weights differ by ~1e-5 (bound 1e-4), where a different
   seed or a wrong noise row would differ by ~1e-2.
5. A run budgeted with --minutes: the step count it planned once is saved, and the resumed
   run keeps it (and is bitwise a --steps run of that length).
6. Bad input: resuming with another --preset names the differing fields; --resume with
   nothing to resume says so (train_vae.py here; train_dit.py in test_10).

    OMP_NUM_THREADS=1 python -m pytest tests/test_12_resume.py -q
"""
import signal

import pytest
import torch
from helpers import make_dit_inputs, make_world, run, start, wait_for

from minivid.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow  # real runs, killed and resumed: ~40 s on 2 cores
N = 40  # steps of the image stage: long enough to be interrupted half-way


def assert_same_state(a: dict, b: dict):
    """Bitwise: every tensor of model, EMA and optimizer, the step and the schedule."""
    assert a["step"] == b["step"] and a["schedule"] == b["schedule"]
    for key in ("model",):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert all(torch.equal(a["ema"]["shadow"][k], b["ema"]["shadow"][k]) for k in a["model"])
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The reference: N steps without stopping."""
    d = tmp_path_factory.mktemp("resume")
    flags = [*make_dit_inputs(d), "--stage", "image", "--steps", N, "--batch-size", 8,
             "--warmup", 5, "--eval-every", 4, "--sample-every", 0, "--device", "cpu"]
    run("train_dit.py", *flags, "--out", d / "straight")
    return d, flags, load_checkpoint(d / "straight" / "ckpt.pt", kind="dit")


def interrupt(flags, out, sig):
    """Start a run, send `sig` once its first checkpoint exists; -> the step it stopped at."""
    proc = start("train_dit.py", *flags, "--out", out)
    wait_for(out / "ckpt.pt", proc)
    proc.send_signal(sig)
    out_text, err = proc.communicate(timeout=120)
    stopped = load_checkpoint(out / "ckpt.pt", kind="dit")["step"]
    assert 0 < stopped < N, f"the run was not interrupted half-way (step {stopped}):\n{err}"
    return proc.returncode, out_text + err, stopped


# 1. SIGTERM: save, exit cleanly; the resumed run is bitwise the uninterrupted one.
def test_01_sigterm_then_resume_is_bitwise(straight):
    d, flags, ref = straight
    code, output, stopped = interrupt(flags, d / "term", signal.SIGTERM)
    assert code == 0 and "SIGTERM received" in output and "--resume" in output
    run("train_dit.py", *flags, "--out", d / "term", "--resume")
    back = load_checkpoint(d / "term" / "ckpt.pt", kind="dit")
    assert back["log"]["series"]["loss"] == ref["log"]["series"]["loss"]  # all N per-step losses
    assert back["log"]["series"]["val"] == ref["log"]["series"]["val"]
    assert_same_state(back, ref)


# 2. SIGKILL: no chance to save; the last periodic checkpoint survives and resumes exactly.
def test_02_sigkill_then_resume_is_bitwise(straight):
    d, flags, ref = straight
    code, _, stopped = interrupt(flags, d / "kill", signal.SIGKILL)
    assert code == -signal.SIGKILL and stopped % 4 == 0  # a periodic checkpoint, intact
    run("train_dit.py", *flags, "--out", d / "kill", "--resume")
    back = load_checkpoint(d / "kill" / "ckpt.pt", kind="dit")
    assert back["log"]["series"]["loss"] == ref["log"]["series"]["loss"]
    assert_same_state(back, ref)


# 3. The VAE trainer: SIGTERM half-way, --resume, bitwise the same as straight through.
def test_03_vae_sigterm_then_resume_is_bitwise(tmp_path):
    flags = [*make_world(tmp_path / "data", n=4), "--preset", "tiny-t4", "--steps", 30,
             "--batch-size", 2, "--image-batch-size", 4, "--save-every", 3, "--device", "cpu"]
    run("train_vae.py", *flags, "--out", tmp_path / "straight")
    proc = start("train_vae.py", *flags, "--out", tmp_path / "term")
    wait_for(tmp_path / "term" / "ckpt.pt", proc)
    proc.send_signal(signal.SIGTERM)
    out_text, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and "--resume" in out_text, err
    assert 0 < load_checkpoint(tmp_path / "term" / "ckpt.pt")["step"] < 30
    run("train_vae.py", *flags, "--out", tmp_path / "term", "--resume")
    a, b = (load_checkpoint(tmp_path / r / "ckpt.pt", kind="vae") for r in ("straight", "term"))
    assert a["log"]["series"] == b["log"]["series"]  # every per-step number
    assert a["step"] == b["step"] == 30
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


# 4. Pre-empted on 1 process, resumed on 2: the same trajectory (float order aside).
def test_04_resume_on_more_processes(straight):
    d, flags, ref = straight
    interrupt(flags, d / "grow", signal.SIGTERM)
    run("train_dit.py", *flags, "--out", d / "grow", "--resume", nproc=2)
    back = load_checkpoint(d / "grow" / "ckpt.pt", kind="dit")
    assert back["step"] == N
    diff = max((back["model"][k] - ref["model"][k]).abs().max().item() for k in ref["model"])
    assert diff <= 1e-4
    losses = [ck["log"]["series"]["loss"]["value"] for ck in (back, ref)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


# 5. A --minutes run: the budget became a step count once, saved in the checkpoint; resumed,
#    it runs to that same count on the same lr schedule, and the whole run is bitwise a plain
#    `--steps <that count>` run (whose lr before the planning step is the same warmup).
def test_05_minutes_budget_resumes_on_the_same_schedule(tmp_path):
    flags = [*make_dit_inputs(tmp_path), "--stage", "image", "--batch-size", 8, "--minutes", 0.05,
             "--eval-every", 50, "--sample-every", 0, "--device", "cpu"]
    proc = start("train_dit.py", *flags, "--out", tmp_path / "budget")
    wait_for(tmp_path / "budget" / "ckpt.pt", proc)  # first save at step 50: after planning
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    cut = load_checkpoint(tmp_path / "budget" / "ckpt.pt", kind="dit")
    total = cut["schedule"]["total"]
    assert total is not None and 50 <= cut["step"] < total
    run("train_dit.py", *flags, "--out", tmp_path / "budget", "--resume")
    back = load_checkpoint(tmp_path / "budget" / "ckpt.pt", kind="dit")
    assert back["step"] == back["schedule"]["total"] == total
    steps = [f if f != "--minutes" else "--steps" for f in flags]
    steps[steps.index("--steps") + 1] = total
    run("train_dit.py", *steps, "--out", tmp_path / "steps")
    ref = load_checkpoint(tmp_path / "steps" / "ckpt.pt", kind="dit")
    assert back["log"]["series"]["loss"] == ref["log"]["series"]["loss"]
    assert_same_state(back, ref)


# 6. Bad input: another preset on --resume is refused, naming the fields; nothing to resume.
def test_06_resume_bad_input(straight, tmp_path):
    d, flags, _ = straight
    r = run("train_dit.py", *flags, "--out", d / "straight", "--resume", "--preset", "small",
            check=False)
    assert r.returncode != 0 and "dim: checkpoint has 128, expected 384" in r.stderr
    r = run("train_vae.py", "--out", tmp_path / "nothing", "--resume", check=False)
    assert r.returncode != 0 and "no checkpoint" in r.stderr and "drop --resume" in r.stderr
