"""09b resume: stop a run anywhere, resume it, and get the very same run.

Concept: a resumed run must continue the trajectory it was on, bit for bit. That needs every
piece of state in the checkpoint (model, EMA, optimizer moments, step, lr schedule length,
the loss log) and data and randomness that do not depend on the process's history: step s
reads the batch training.batch_indices gives it and draws its noise from a generator seeded
by (seed, step), whether the process started at step 0 or at step s - 1. Every trainer runs
the one loop (minivid/run.py), so every trainer resumes the same way. The tests run the real
scripts on tiny inputs, and none of them races a clock:
1. Pre-emption (a cluster sends SIGTERM before it kills a job): the script saves at the
   step it was told, exits 0 and says how to resume; `--resume` then gives per-step losses,
   val losses, model, EMA and optimizer state bitwise equal to an uninterrupted run. The
   stop comes from MINIVID_STOP_AFTER=k, which makes the loop act as if SIGTERM arrived
   during step k: a pre-emption at a known step (the real signal is test_04's StopFlag test).
2. SIGKILL (no warning, no cleanup), sent once a checkpoint exists: wherever it lands, mid-run
   or after the end, the last checkpoint is intact (atomic saves) and resuming from it
   reproduces the uninterrupted run bitwise.
3. Every other trainer the same way: train_vae.py, train_extend.py, distill.py,
   train_rewriter.py, train_captioner.py.
4. Resuming on 2 processes a run begun on 1 continues the same trajectory, up to float
   summation order (as in test_11). Adam lets that rounding grow a little every step: after
   ~20 steps on 2 processes the weights differ by ~1e-5 (bound 1e-4), where a different
   seed or a wrong noise row would differ by ~1e-2.
5. A run budgeted with --minutes: the step count it planned once is saved, and the resumed
   run keeps it (and is bitwise a --steps run of that length), whatever that count came to.
6. Bad input: resuming with another --preset names the differing fields; --resume with
   nothing to resume says so; --resume on another trainer's run names that trainer.

    OMP_NUM_THREADS=1 python -m pytest tests/test_09b_resume.py -q
"""
import pytest
import torch
from helpers import ENV, HANG, make_dit_inputs, run, start, trainer_flags, wait_for

from minivid.checkpoint import load_checkpoint, save_checkpoint, trainer_of
from minivid.training import StepBudget

pytestmark = pytest.mark.slow  # real runs of 6 trainers, stopped and resumed: ~3 min on 2 cores
N = 40  # steps of the DiT image stage: long enough to be stopped half-way


def pre_empted(k, script, *args, nproc=1):
    """Run `script` as if SIGTERM arrived during step k (minivid.run.Run reads
    MINIVID_STOP_AFTER): it saves a checkpoint at step k, prints how to resume, exits 0."""
    ENV["MINIVID_STOP_AFTER"] = str(k)
    try:
        return run(script, *args, nproc=nproc)
    finally:
        del ENV["MINIVID_STOP_AFTER"]


def assert_same_state(a: dict, b: dict):
    """Bitwise: every tensor of model, EMA and optimizer, the step and the schedule."""
    assert a["step"] == b["step"] and a["schedule"] == b["schedule"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    if a["ema"] is not None:
        assert all(torch.equal(a["ema"]["shadow"][k], b["ema"]["shadow"][k]) for k in a["model"])
    for pa, pb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert all(torch.equal(pa[k], pb[k]) for k in pa)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The reference: N steps of the DiT image stage without stopping."""
    d = tmp_path_factory.mktemp("resume")
    flags = [*make_dit_inputs(d), "--stage", "image", "--steps", N, "--batch-size", 8,
             "--warmup", 5, "--save-every", 4, "--sample-every", 0, "--device", "cpu"]
    run("train_dit.py", *flags, "--out", d / "straight")
    return d, flags, load_checkpoint(d / "straight" / "ckpt.pt", kind="dit")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("trainers")
    return lambda script: trainer_flags(d, script)


# 1. Pre-empted at step 20: save, exit cleanly; the resumed run is bitwise the uninterrupted one.
def test_01_preempted_then_resume_is_bitwise(straight):
    d, flags, ref = straight
    r = pre_empted(20, "train_dit.py", *flags, "--out", d / "term")
    assert "saved" in r.stdout and "--resume" in r.stdout
    assert load_checkpoint(d / "term" / "ckpt.pt", kind="dit")["step"] == 20
    run("train_dit.py", *flags, "--out", d / "term", "--resume")
    back = load_checkpoint(d / "term" / "ckpt.pt", kind="dit")
    assert back["log"]["series"]["loss"] == ref["log"]["series"]["loss"]  # all N per-step losses
    assert back["log"]["series"]["val"] == ref["log"]["series"]["val"]
    assert_same_state(back, ref)


# 2. SIGKILL once a checkpoint exists: no chance to save; the last checkpoint survives and
#    resumes exactly. Where the kill lands (mid-run or after the end) is not assumed.
def test_02_sigkill_then_resume_is_bitwise(straight):
    d, flags, ref = straight
    proc = start("train_dit.py", *flags, "--out", d / "kill")
    wait_for(d / "kill" / "ckpt.pt", proc)  # something to resume from
    proc.kill()                             # a no-op if the run is already over
    proc.communicate(timeout=HANG)
    cut = load_checkpoint(d / "kill" / "ckpt.pt", kind="dit")["step"]
    assert cut % 4 == 0 and 0 < cut <= N    # a periodic (or the final) checkpoint, intact
    run("train_dit.py", *flags, "--out", d / "kill", "--resume")
    back = load_checkpoint(d / "kill" / "ckpt.pt", kind="dit")
    assert back["log"]["series"]["loss"] == ref["log"]["series"]["loss"]
    assert back["log"]["series"]["val"] == ref["log"]["series"]["val"]
    assert_same_state(back, ref)


# 3. Every other trainer: 6 steps straight, or pre-empted at step 4 and resumed: the same
#    per-step numbers and the same weights, EMA and optimizer, bit for bit.
@pytest.mark.parametrize("script", ["train_vae.py", "train_extend.py", "distill.py",
                                    "train_rewriter.py", "train_captioner.py"])
def test_03_every_trainer_resumes_bitwise(script, inputs, tmp_path):
    flags = [*inputs(script), "--steps", 6]
    run(script, *flags, "--out", tmp_path / "straight")
    r = pre_empted(4, script, *flags, "--out", tmp_path / "cut")
    assert "--resume" in r.stdout and load_checkpoint(tmp_path / "cut" / "ckpt.pt")["step"] == 4
    run(script, *flags, "--out", tmp_path / "cut", "--resume")
    ref, back = (load_checkpoint(tmp_path / r / "ckpt.pt") for r in ("straight", "cut"))
    assert back["step"] == 6 and back["trainer"] == ref["trainer"] == script
    assert back["log"]["series"] == ref["log"]["series"]  # every per-step number
    assert_same_state(back, ref)


# 4. Pre-empted on 1 process, resumed on 2: the same trajectory (float order aside).
def test_04_resume_on_more_processes(straight):
    d, flags, ref = straight
    pre_empted(20, "train_dit.py", *flags, "--out", d / "grow")
    run("train_dit.py", *flags, "--out", d / "grow", "--resume", nproc=2)
    back = load_checkpoint(d / "grow" / "ckpt.pt", kind="dit")
    assert back["step"] == N
    diff = max((back["model"][k] - ref["model"][k]).abs().max().item() for k in ref["model"])
    assert diff <= 1e-4
    losses = [ck["log"]["series"]["loss"]["value"] for ck in (back, ref)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-4)


# 5. A --minutes run: the budget becomes a step count once (at step StepBudget.PLAN_AT), saved
#    in the checkpoint. Pre-empted the step after, then resumed, it runs to that same count
#    on the same lr schedule, and the whole run is bitwise a plain `--steps <that count>` run
#    (whose lr before the planning step is the same warmup: the default 100 steps). The count
#    itself depends on the machine's speed; nothing here depends on what it came to.
def test_05_minutes_budget_resumes_on_the_same_schedule(straight, tmp_path):
    d, _, _ = straight
    flags = ["--vae", d / "vae.pt", "--latents", d / "latents", "--stage", "image",
             "--batch-size", 8, "--minutes", 0.05, "--save-every", 50, "--sample-every", 0,
             "--device", "cpu"]
    k = StepBudget.PLAN_AT + 1
    pre_empted(k, "train_dit.py", *flags, "--out", tmp_path / "budget")
    cut = load_checkpoint(tmp_path / "budget" / "ckpt.pt", kind="dit")
    total = cut["schedule"]["total"]
    assert cut["step"] == k and total is not None and total >= k
    run("train_dit.py", *flags, "--out", tmp_path / "budget", "--resume")
    back = load_checkpoint(tmp_path / "budget" / "ckpt.pt", kind="dit")
    assert back["step"] == back["schedule"]["total"] == total
    steps = [f if f != "--minutes" else "--steps" for f in flags]
    steps[steps.index("--steps") + 1] = total
    run("train_dit.py", *steps, "--out", tmp_path / "steps")
    ref = load_checkpoint(tmp_path / "steps" / "ckpt.pt", kind="dit")
    assert back["log"]["series"]["loss"] == ref["log"]["series"]["loss"]
    assert_same_state(back, ref)


# 6. Bad input: another preset on --resume is refused, naming the fields; nothing to resume;
#    another trainer's run is refused, naming the trainer that wrote it and how to resume it.
def test_06_resume_bad_input(straight, tmp_path):
    d, flags, _ = straight
    r = run("train_dit.py", *flags, "--out", d / "straight", "--resume", "--preset", "small",
            check=False)
    assert r.returncode != 0 and "dim: checkpoint has 128, expected 384" in r.stderr
    r = run("train_vae.py", "--out", tmp_path / "nothing", "--resume", check=False)
    assert r.returncode != 0 and "no checkpoint" in r.stderr and "drop --resume" in r.stderr
    r = run("train_vae.py", "--out", d / "straight", "--resume", check=False)
    assert r.returncode != 0 and "was written by train_dit.py" in r.stderr
    assert "not train_vae.py" in r.stderr and "or give this run another --out" in r.stderr


# 7. A checkpoint written before checkpoints named their trainer (no "trainer" key): the
#    trainer is inferred from its kind and args, so it still resumes with the right script,
#    and another script is refused with the inferred name.
def test_07_checkpoint_from_before_the_move(straight, tmp_path):
    d, flags, ref = straight
    old = {k: v for k, v in ref.items() if k != "trainer"}
    assert trainer_of(old) == "train_dit.py --stage image"
    (tmp_path / "old").mkdir()
    save_checkpoint(tmp_path / "old" / "ckpt.pt", old)
    r = run("train_dit.py", *flags, "--out", tmp_path / "old", "--resume")  # at its end: no-op
    assert load_checkpoint(tmp_path / "old" / "ckpt.pt")["step"] == ref["step"], r.stderr
    r = run("train_extend.py", "--vae", d / "vae.pt", "--latents", d / "latents", "--out",
            tmp_path / "old", "--resume", check=False)
    assert r.returncode != 0 and "was written by train_dit.py --stage image" in r.stderr
