"""05b distill.py: the distillation loop end to end, and sampling with the student.

Concept: distill.py takes a teacher checkpoint (train_dit.py) and writes a student
checkpoint that rebuilds from the file alone and carries what sampling needs: the step
counts it learnt and the guidance scale folded into it. sample.py then picks the student's
sampler from the checkpoint (one network call a step, no unconditional half), refuses step
counts the student never learnt, and maps a real clip to a new caption in one step
(image-to-image, --init/--strength). Like the trainers, a stopped run resumes bitwise.
The tests run the real scripts on a tiny synthetic latent cache (tests/helpers.py) with a
teacher trained for a few steps: they check the plumbing, not the quality (that is
`python -m minivid.evaluate distill`, README).

    OMP_NUM_THREADS=1 python -m pytest tests/test_05b_distill_script.py -q
"""
import signal

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from helpers import HANG, make_cache, make_vae, run, start, wait_for

from minivid import world
from minivid.checkpoint import load_checkpoint, save_checkpoint
from minivid.distill_bench import _transfer_scores, edit_scene
from minivid.sampling import Pipeline

pytestmark = pytest.mark.slow  # real runs of train_dit.py, distill.py and sample.py: ~30 s


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A teacher (3 video steps on a synthetic cache), then a 6-step student of it."""
    d = tmp_path_factory.mktemp("distill")
    make_cache(d / "latents", make_vae(d / "vae.pt", seed=0))
    run("train_dit.py", "--stage", "video", "--vae", d / "vae.pt", "--latents", d / "latents",
        "--out", d / "teacher", "--steps", 3, "--batch-size", 8, "--sample-every", 0)
    flags = ["--teacher", d / "teacher" / "ckpt.pt", "--trajectories", 16, "--batch-size", 8,
             "--sample-every", 6]
    run("distill.py", *flags, "--out", d / "student", "--steps", 6)
    return d, flags


# 1. The student checkpoint: the teacher's config plus a step input, the step counts and the
#    folded guidance scale; it rebuilds from the file alone, and previews were written.
def test_01_student_checkpoint(setup):
    d, _ = setup
    ck = load_checkpoint(d / "student" / "ckpt.pt", kind="dit")
    teacher = load_checkpoint(d / "teacher" / "ckpt.pt", kind="dit")
    assert ck["step"] == 6 and ck["config"]["dit"]["step_input"]
    assert {**ck["config"]["dit"], "step_input": False} == teacher["config"]["dit"]
    assert ck["extra"]["distilled"]["step_counts"] == [1, 2, 4, 8]
    assert ck["extra"]["distilled"]["cfg"] == 2.0
    assert ck["extra"]["vae_fingerprint"] == teacher["extra"]["vae_fingerprint"]
    # the text encoder is frozen: exactly the teacher's EMA weights
    assert all(torch.equal(v, teacher["ema"]["shadow"][k]) for k, v in ck["model"].items()
               if k.startswith("text."))
    pipe = Pipeline(d / "student" / "ckpt.pt")
    assert pipe.distilled["K"] == 8
    assert (d / "student" / "samples_000006.gif").exists() and (d / "student" / "loss.png").exists()


# 2. Sampling: one call a step, no unconditional half; an unlearnt step count is refused.
def test_02_student_sampling(setup):
    d, _ = setup
    pipe = Pipeline(d / "student" / "ckpt.pt")
    calls = []
    forward = pipe.model["dit"].forward
    pipe.model["dit"].forward = lambda x, t, *a, **k: calls.append((x.shape[0], k.get("d"))) \
        or forward(x, t, *a, **k)
    videos = pipe.generate(["a red circle moves left", "a blue square"], steps=2, cfg=5.0)
    assert videos.shape == (2, 16, 32, 32, 3) and videos.dtype == np.uint8
    assert [b for b, _ in calls] == [2, 2]                       # 2 steps, 2 rows: no CFG half
    assert all(torch.allclose(dd, torch.full((2,), 0.5)) for _, dd in calls)
    with pytest.raises(ValueError, match=r"distilled for \[1, 2, 4, 8\] steps, not 3"):
        pipe.generate(["a red circle"], steps=3)
    r = run("sample.py", "--ckpt", d / "student" / "ckpt.pt", "--steps", 3, "--prompt", "a red "
            "circle", "--out", d / "s", check=False)
    assert r.returncode != 0 and "--steps 1 | 2 | 4 | 8" in r.stderr
    r = run("sample.py", "--ckpt", d / "student" / "ckpt.pt", "--prompt", "a red circle",
            "--out", d / "s")
    assert "distilled student: 1 step(s)" in r.stdout and (d / "s" / "grid.gif").exists()


# 3. One-step image-to-image: a real clip in, the same frames and size out, before | after in
#    the grid; bad --strength / --init are clear errors, and so is a strength whose jump the
#    student never learnt (from t = s in one step: s must be 1/n for a learnt n).
def test_03_transfer(setup, tmp_path):
    d, _ = setup
    scene = world.sample_scene(np.random.default_rng(0), "val", 16)
    clip = tmp_path / "clip.gif"
    world.write_media(clip, scene)
    png = tmp_path / "still.png"
    imageio.imwrite(png, world.render(scene)[0])
    base = ["--ckpt", d / "student" / "ckpt.pt", "--prompt", "a green square", "--steps", 1]
    r = run("sample.py", *base, "--init", clip, "--strength", 0.5, "--out", tmp_path / "t")
    assert (tmp_path / "t" / "grid.gif").exists() and (tmp_path / "t" / "000_a_green_square.gif").exists()
    r = run("sample.py", *base, "--init", png, "--out", tmp_path / "still")  # an image: held still
    assert "its last frame is repeated to 16" in r.stdout
    for flags, message in ((["--init", clip, "--strength", 1.5], "--strength 1.5 must be in"),
                           (["--init", tmp_path / "nope.gif"], "no such file"),
                           (["--init", d / "vae.pt"], "could not be read"),
                           (["--init", clip, "--strength", 0.6], "--strength 1 | 0.5 | 0.25 | 0.125"),
                           (["--unconditional"], "never saw the empty caption")):
        r = run("sample.py", *base, *flags, "--out", tmp_path / "bad", check=False)
        assert r.returncode != 0 and message in r.stderr, r.stderr[-500:]
    pipe = Pipeline(d / "student" / "ckpt.pt")
    with pytest.raises(ValueError, match=r"init clips \(1, 16, 64, 64, 3\)"):
        pipe.generate(["a red circle"], steps=1, init=np.zeros((1, 16, 64, 64, 3), np.uint8),
                      strength=0.5)


# 4. Bad input: a VAE checkpoint or a student given as the teacher, step counts that do not
#    divide the grid, and a resumed student whose config is not the teacher's.
def test_04_bad_teacher(setup):
    d, flags = setup
    r = run("distill.py", "--teacher", d / "vae.pt", "--out", d / "x", "--steps", 2, check=False)
    assert r.returncode != 0 and "is a 'vae' checkpoint but a 'dit'" in r.stderr
    r = run("distill.py", "--teacher", d / "student" / "ckpt.pt", "--out", d / "x", "--steps", 2,
            check=False)
    assert r.returncode != 0 and "is a distilled student" in r.stderr
    r = run("distill.py", *flags[:2], "--step-counts", 3, "--out", d / "x", "--steps", 2,
            check=False)
    assert r.returncode != 0 and "must each divide --K 8" in r.stderr
    # --resume on a student of another config (here: its DiT width edited): every differing
    # field is named, nothing is loaded.
    ck = load_checkpoint(d / "student" / "ckpt.pt", kind="dit")
    ck["config"]["dit"]["dim"] = 64
    save_checkpoint(d / "other" / "ckpt.pt", ck)
    r = run("distill.py", *flags, "--out", d / "other", "--steps", 6, "--resume", check=False)
    assert r.returncode != 0 and "dim: checkpoint has 64, expected" in r.stderr


# 5. SIGTERM once a checkpoint exists (mid-run, or after the end on a loaded machine: no race),
#    then --resume: bitwise the uninterrupted run (the trajectory bank is
#    recomputed from its seeds, identically).
def test_05_sigterm_then_resume_is_bitwise(setup):
    d, flags = setup
    flags = [*flags[:-2], "--sample-every", 0, "--steps", 60, "--save-every", 10]
    run("distill.py", *flags, "--out", d / "straight")
    proc = start("distill.py", *flags, "--out", d / "term")
    wait_for(d / "term" / "ckpt.pt", proc)
    proc.send_signal(signal.SIGTERM)  # mid-run or after the end: the result must not differ
    _, err = proc.communicate(timeout=HANG)
    assert proc.returncode == 0, err[-1000:]
    assert 0 < load_checkpoint(d / "term" / "ckpt.pt")["step"] <= 60
    run("distill.py", *flags, "--out", d / "term", "--resume")
    a, b = (load_checkpoint(d / r / "ckpt.pt", kind="dit") for r in ("straight", "term"))
    assert a["log"]["series"]["loss"] == b["log"]["series"]["loss"] and a["step"] == b["step"] == 60
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["ema"]["shadow"][k], b["ema"]["shadow"][k]) for k in a["model"])


# 6. The transfer score of `evaluate distill`: a clip rendered from the edited scene scores 1
#    on everything; the untouched original scores 0 on the changed attribute and 1 on the kept
#    ones, for a recoloured object (even k) and a new background (odd k) alike.
def test_06_transfer_scores():
    rng = np.random.default_rng(3)
    for k in (0, 1):
        spec = world.sample_scene(rng, "val", 16).to_dict()
        new = edit_scene(spec, k)
        assert new != spec
        edited, original = (world.render(world.Scene.from_dict(s)) for s in (new, spec))
        assert _transfer_scores([edited], [new], [k]) == {
            "transfer_all": 1.0, "transfer_changed": 1.0, "transfer_kept": 1.0}
        score = _transfer_scores([original], [new], [k])
        assert score["transfer_changed"] == 0.0 and score["transfer_kept"] == 1.0
