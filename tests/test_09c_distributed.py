"""09c distributed: one process or N, the same script, the same training.

Concept: data parallelism splits each GLOBAL batch over N processes. Every rank runs the
same model on its share, DDP averages the gradients in backward, and all ranks take the
same optimizer step. For that to equal a 1-process run, three things must hold, and these
tests check them on real `torchrun` launches of the real scripts (2 CPU processes, gloo):
- each rank gets a disjoint share of the same global batch (training.batch_indices);
- each example gets the same random numbers (flow time, noise, caption dropout, the VAE's
  posterior noise) whatever rank it lands on: they are drawn for the whole global batch
  from a generator seeded by (seed, step) and each rank keeps its rows (step_generator);
- gradient accumulation syncs only on the last micro-batch and still averages correctly.
What remains is floating-point summation order: the all-reduce adds two half-batch
gradients where one process sums the whole batch at once. In float32 that is ~1e-7 relative,
but Adam divides each gradient by its own running size, so a weight whose gradient nearly
cancels over the batch (early on, the text encoder's, through freshly opened adaLN-Zero
gates) turns that rounding into a visible step: after 4 steps one process against two
differ by ~1e-6 at most. So the bound is measured, not guessed: one process with
--grad-accum 2 and 4 does the SAME maths as --grad-accum 1 (the same examples, noise and
mean) in another summation order, and DDP must stay within a few times that gap
(or 1e-6, whichever is larger). A real mismatch, such as another seed, is ~1e-2: far outside.
Every trainer runs the one loop (minivid/run.py) on these pieces, so every trainer passes the
same check: the rewriter, the captioner, distillation and clip extension too (their losses
are normalised by the GLOBAL batch: a per-rank mean over a varying number of words or
objects would weigh the ranks unevenly).
Then the cost side: the ranks meet only at log points (one packed all-reduce each), counted
on a real run; and a --minutes budget is turned into one step count all ranks agree on.

    OMP_NUM_THREADS=1 python -m pytest tests/test_09c_distributed.py -q
"""
import json

import pytest
from helpers import make_dit_inputs, make_world, run, trainer_flags

from minivid.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow  # real torchrun launches of 6 trainers: ~3 minutes on 2 cores
TOL = 1e-6


def max_diff(a: dict, b: dict) -> float:
    """Largest absolute difference between two state dicts with the same keys."""
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def dit(tmp_path_factory):
    """A 1-process run, and the rounding gap: the same run summed in other orders."""
    d = tmp_path_factory.mktemp("ddp_dit")
    flags = [*make_dit_inputs(d), "--stage", "video", "--steps", 4, "--batch-size", 8,
             "--warmup", 2, "--save-every", 4, "--sample-every", 0, "--device", "cpu"]
    gap = 0.0
    for accum in (1, 2, 4):
        run("train_dit.py", *flags, "--out", d / f"accum{accum}", "--grad-accum", accum)
        ck = load_checkpoint(d / f"accum{accum}" / "ckpt.pt", kind="dit")
        if accum == 1:
            one = ck
        else:
            gap = max(gap, max_diff(one["model"], ck["model"]))
    bound = max(TOL, 4 * gap)
    print(f"float32 summation-order gap {gap:.2e}: bound {bound:.2e}")
    return d, flags, one, bound


# 1. DiT: 2 processes x 4 examples == 1 process x 8 examples, up to summation order.
def test_01_dit_two_processes_equal_one(dit):
    d, flags, one, bound = dit
    r = run("train_dit.py", *flags, "--out", d / "two", nproc=2)
    assert "world size 2" in r.stdout
    two = load_checkpoint(d / "two" / "ckpt.pt", kind="dit")
    print(f"1 vs 2 processes: model {max_diff(one['model'], two['model']):.2e}")
    assert max_diff(one["model"], two["model"]) <= bound
    assert max_diff(one["ema"]["shadow"], two["ema"]["shadow"]) <= bound
    losses = [ck["log"]["series"]["loss"]["value"] for ck in (one, two)]
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)  # rank-averaged = global mean
    # The bound means something: another seed (other init and noise) is far outside it.
    run("train_dit.py", *flags, "--out", d / "seed1", "--seed", 1)
    other = load_checkpoint(d / "seed1" / "ckpt.pt", kind="dit")
    assert max_diff(one["model"], other["model"]) > 100 * bound


# 2. Gradient accumulation under DDP: 2 processes x 2 micro-batches of 2 == 1 x 8.
def test_02_dit_grad_accum_under_ddp(dit):
    d, flags, one, bound = dit
    run("train_dit.py", *flags, "--out", d / "ddp_accum", "--grad-accum", 2, nproc=2)
    accum = load_checkpoint(d / "ddp_accum" / "ckpt.pt", kind="dit")
    assert max_diff(one["model"], accum["model"]) <= bound


# 3. VAE: the same for train_vae.py (clips + images per step, posterior noise), in fp32.
def test_03_vae_two_processes_equal_one(tmp_path):
    flags = [*make_world(tmp_path / "data", n=4), "--steps", 3, "--batch-size", 2,
             "--image-batch-size", 4, "--precision", "fp32", "--device", "cpu"]
    run("train_vae.py", *flags, "--out", tmp_path / "one")
    run("train_vae.py", *flags, "--out", tmp_path / "two", nproc=2)
    one = load_checkpoint(tmp_path / "one" / "ckpt.pt", kind="vae")
    two = load_checkpoint(tmp_path / "two" / "ckpt.pt", kind="vae")
    assert one["step"] == two["step"] == 3
    assert max_diff(one["model"], two["model"]) <= TOL


# 4. A global batch that does not split over the processes: a clear error with the fix.
def test_04_batch_not_divisible_by_world_size(dit):
    d, flags, _, _ = dit
    bad = [f if f != 8 else 7 for f in flags]  # --batch-size 7 over 2 processes
    r = run("train_dit.py", *bad, "--out", d / "bad", nproc=2, check=False)
    assert r.returncode != 0
    assert "global batch 7 does not split over world size 2" in r.stderr
    assert "--batch-size 8" in r.stderr


def launch_counted(tmp_path, script, *flags, nproc=2):
    """Run `script` under torchrun through tests/collectives.py -> one dict per rank."""
    out = tmp_path / "counts"
    out.mkdir(exist_ok=True)
    r = run("tests/collectives.py", out, script, *flags, nproc=nproc)
    return r, [json.loads((out / f"rank{k}.json").read_text()) for k in range(nproc)]


# 5. --minutes on 2 processes, both trainers: the budget becomes a step count ONCE (one
#    all-reduce: the slowest rank's speed), so both ranks stop at the same step and exit
#    cleanly. Before, each rank fixed its own total from its own clock and one could wait
#    forever in a collective for the other. These are the README's 2-process commands.
#    And no blocking collective on the hot path: counted on the real run, the loop meets the
#    other rank only at its log points (every 10 steps and the last: one packed all-reduce
#    each, training.Meter.sync), plus that one planning all-reduce, then dist_cleanup's
#    barrier. DDP's gradient all-reduce inside backward is the only per-step communication,
#    as data parallelism requires (it runs in DDP's C++ reducer and is not counted here).
@pytest.mark.parametrize("script", ["train_dit.py", "train_vae.py"])
def test_05_minutes_budget_on_two_processes(script, tmp_path):
    if script == "train_dit.py":
        flags = [*make_dit_inputs(tmp_path), "--stage", "image"]
    else:
        flags = [*make_world(tmp_path / "data", n=16), "--preset", "tiny-t4"]
    r, ranks = launch_counted(tmp_path, script, *flags, "--out", tmp_path / "run",
                              "--minutes", 0.1, "--device", "cpu")
    assert "steps in all (fixed now" in r.stdout
    total = ranks[0]["total"]
    assert total > 30 and all(k["step"] == k["total"] == total for k in ranks)
    kind = "dit" if script == "train_dit.py" else "vae"
    ck = load_checkpoint(tmp_path / "run" / "ckpt.pt", kind=kind)
    assert ck["step"] == total and ck["schedule"]["total"] == total
    for k in ranks:
        assert k["counts"]["log_points"] == -(-total // 10)   # steps 10, 20, ... and the last
        assert k["counts"]["all_reduce"] == k["counts"]["log_points"] + 1  # + the planning
        assert set(k["counts"]) == {"all_reduce", "log_points"}  # nothing else (counted up
        # to dist_cleanup, whose one barrier ends the run)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ddp_trainers")
    return lambda script: trainer_flags(d, script)  # tiny inputs, as in test_12


# 6. Every other trainer: 2 processes == 1 process after 3 steps, in fp32: the same losses
#    (rank-averaged = global mean: this catches a wrong example, target or normalisation), and
#    weights within a bound ~10x the measured rounding gap. As in test 1, Adam turns float
#    summation order into a visible step where a gradient nearly cancels early on: measured
#    1e-5 (rewriter), 5e-5 (captioner, its second conv), 8e-7 (extension) and 2e-8
#    (distillation); another seed moves the rewriter's and captioner's weights by 0.1 to 0.5.
@pytest.mark.parametrize("script, bound", [("train_rewriter.py", 1e-4),
                                           ("train_captioner.py", 5e-4),
                                           ("train_extend.py", 1e-5), ("distill.py", TOL)])
def test_06_every_trainer_two_processes_equal_one(script, bound, inputs, tmp_path):
    flags = [*inputs(script), "--steps", 3, "--precision", "fp32"]
    run(script, *flags, "--out", tmp_path / "one")
    run(script, *flags, "--out", tmp_path / "two", nproc=2)
    one, two = (load_checkpoint(tmp_path / r / "ckpt.pt") for r in ("one", "two"))
    assert one["step"] == two["step"] == 3
    print(f"{script} 1 vs 2 processes: model {max_diff(one['model'], two['model']):.2e}")
    assert max_diff(one["model"], two["model"]) <= bound
    assert max_diff(one["ema"]["shadow"], two["ema"]["shadow"]) <= bound
    losses = [ck["log"]["series"]["loss"]["value"] for ck in (one, two)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
