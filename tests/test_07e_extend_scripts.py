"""07e Clip extension, the scripts: train_extend.py, sample.py --extend, evaluate extend and
distill.py on a tiny extension model (tests/test_07_extend.py has the concepts, step by step).

Concept: the same code as the concepts' tests, run like a user runs it: a 3-step video model,
4 extension steps from it and a 2-step student (the module fixture, made once), then each
command, its checkpoint, its JSON line and its refusals.

    OMP_NUM_THREADS=1 python -m pytest tests/test_07e_extend_scripts.py -q -m slow
"""
import json

import numpy as np
import pytest
import torch
from helpers import make_extend_model, run

from minivid import video_identity, world
from minivid.checkpoint import load_checkpoint
from minivid.sampling import sample_long


# ----------------------------------------------------------------------------- the scripts
@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """VAE + caches; 3 video steps, then 4 extend steps from them; a 2-step student of it."""
    d = tmp_path_factory.mktemp("extend")
    make_extend_model(d)
    run("distill.py", "--teacher", d / "extend" / "ckpt.pt", "--out", d / "student", "--steps",
        2, "--trajectories", 12, "--batch-size", 4, "--step-counts", 1, 2, "--K", 2,
        "--sample-every", 0)
    return d


# 1. train_extend.py: the coarse kernels start from the video model's patch embedding, the
#    clean flag trains, the checkpoint says what it is.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_01_extend_checkpoint(setup):
    d = setup
    video = load_checkpoint(d / "video" / "ckpt.pt", kind="dit")
    ext = load_checkpoint(d / "extend" / "ckpt.pt", kind="dit")
    assert tuple(ext["config"]["dit"]["context_kernels"]) == (2, 4)
    assert ext["extra"]["anchor"] == "full"                # train_extend.py's default layout
    assert ext["extra"]["stage"] == "extend" and ext["extra"]["long_frames"] == 1 + 16 * 3
    assert not torch.equal(ext["model"]["dit.clean"], video["ema"]["shadow"]["dit.clean"])
    assert "dit.ctx_embed.4.weight" in ext["model"] and "val" in ext["log"]["series"]
    student = load_checkpoint(d / "student" / "ckpt.pt", kind="dit")
    assert student["extra"]["distilled"]["step_counts"] == [1, 2]
    assert tuple(student["config"]["dit"]["context_kernels"]) == (2, 4)


# 2. sample.py --extend: one long GIF of 1 + 16 N frames, teacher (here with the Heun step and
#     a shifted time grid) and student; one prompt per clip works too; bad requests fail with
#     the fix named.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_02_sample_extend(setup):
    from minivid.data import read_frames
    d = setup
    p = "A small red circle on the left moves quickly to the right. The background is plain black."
    r = run("sample.py", "--ckpt", d / "extend" / "ckpt.pt", "--extend", 3, "--steps", 2,
            "--context", "pack", "--prompt", p, "--out", d / "samples", "--sampler", "heun",
            "--time-shift", 0.5)
    frames, seen = read_frames(d / "samples" / "long_pack_3clips.gif", frames=1000)
    assert seen == 1 + 16 * 3 and "clip 2:" in r.stdout and "on the left" not in \
        r.stdout.split("clip 2:")[1]
    run("sample.py", "--ckpt", d / "student" / "ckpt.pt", "--extend", 2, "--steps", 1,
        "--context", "full", "--prompt", p, "--prompt", p.replace("right", "left"),
        "--out", d / "student_samples")
    assert (d / "student_samples" / "long_full_2clips.gif").exists()
    bad = run("sample.py", "--ckpt", d / "extend" / "ckpt.pt", "--extend", 3, "--prompt", p,
              "--prompt", p, "--out", d / "x", check=False)
    assert bad.returncode != 0 and "one per clip" in bad.stderr
    bad = run("sample.py", "--ckpt", d / "video" / "ckpt.pt", "--extend", 2, "--steps", 2,
              "--prompt", p, "--out", d / "x", check=False)
    assert bad.returncode != 0 and "train_extend.py" in bad.stderr
    bad = run("sample.py", "--ckpt", d / "extend" / "ckpt.pt", "--history-guidance", 1,
              "--prompt", p, "--out", d / "x", check=False)         # guidance without a history
    assert bad.returncode != 0 and "needs --extend" in bad.stderr
    bad = run("sample.py", "--ckpt", d / "extend" / "ckpt.pt", "--guide-on", "anchor",
              "--extend", 2, "--prompt", p, "--out", d / "x", check=False)   # no weight given
    assert bad.returncode != 0 and "--history-guidance 2" in bad.stderr
    bad = run("sample.py", "--ckpt", d / "extend" / "ckpt.pt", "--time-shift", -1,
              "--prompt", p, "--out", d / "x", check=False)
    assert bad.returncode != 0 and "must be > 0" in bad.stderr
    bad = run("sample.py", "--ckpt", d / "student" / "ckpt.pt", "--time-shift", 0.5,
              "--prompt", p, "--out", d / "x", check=False)         # a student's grid is fixed
    assert bad.returncode != 0 and "distilled on" in bad.stderr


# 2b. sample.py --extend --restate rule prints what the reader made of clip 1 and uses it for
#     clips 2..; --restate needs --extend; a missing captioner names how to train one.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_02b_sample_restate(setup):
    d = setup
    p = "A small red circle on the left moves quickly to the right. The background is plain black."
    r = run("sample.py", "--ckpt", d / "extend" / "ckpt.pt", "--extend", 2, "--steps", 1,
            "--prompt", p, "--out", d / "restated", "--restate", "rule", "--later-cfg", 1.5,
            "--frames", 8)
    assert "restated by the rule from clip 1:" in r.stdout
    assert "--frames 8 does not apply with --extend" in r.stdout      # every clip is 16 frames
    assert (d / "restated" / "long_pack_2clips.gif").exists()
    bad = run("sample.py", "--ckpt", d / "extend" / "ckpt.pt", "--restate", "rule",
              "--prompt", p, "--out", d / "x", check=False)
    assert bad.returncode != 0 and "need --extend" in bad.stderr
    bad = run("sample.py", "--ckpt", d / "extend" / "ckpt.pt", "--extend", 2, "--restate",
              "captioner", "--captioner", d / "none.pt", "--prompt", p, "--out", d / "x",
              check=False)
    assert bad.returncode != 0 and "train_captioner.py" in bad.stderr


# 3. evaluate extend prints its table and ends with one JSON line that has every strategy,
#     per clip: tokens, ms, identity; the per-clip-prompt and four-prompt scores.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_03_evaluate_extend(setup, tmp_path):
    d = setup
    data = tmp_path / "data"
    world.generate(data, {("val", "long"): 4}, seed=0, workers=1, long_clips=4)
    r = run("minivid/evaluate.py", "extend", "--ckpt", d / "extend" / "ckpt.pt", "--data", data,
            "--videos", 2, "--clips", 3, "--steps", 1, "--student", d / "student" / "ckpt.pt",
            "--history-noise", 0, 0.2, "--history-guidance", 1, "--sampler", "heun",
            "--time-shift", 0.5, "--plot", tmp_path / "extend.png", "--strategies", "full",
            "window", "pack", "prompt-only", "history-only")
    fig = json.loads(r.stdout.strip().splitlines()[-1])
    assert fig["eval"] == "extend" and set(fig["strategies"]) == {"full", "window", "pack",
                                                                   "prompt-only", "history-only"}
    full, pack = fig["strategies"]["full"]["per_clip"], fig["strategies"]["pack"]["per_clip"]
    only = fig["strategies"]["history-only"]["per_clip"]      # pack's context, no text later
    assert [r["tokens"] for r in only] == [r["tokens"] for r in pack]
    assert [r["tokens"] for r in full] == [0, 16 * 5, 16 * 9]
    assert [r["tokens"] for r in pack] == [0, 16 + 21, 16 + 22]   # the full-size anchor: S more
    assert len(fig["four_prompts"]["pack"]["adherence"]) == 4
    assert fig["student"]["video_seconds_per_second"] > 0
    assert (tmp_path / "extend.png").exists()
    # identity by part (size read as the median over each clip), and exposure bias: the next
    # clip after 1 and 2 real clips vs after the model's own (history lengths below --clips)
    assert set(fig["strategies"]["pack"]["identity_by_part"]) == {"background", "colour",
                                                                  "shape", "size"}
    lost = fig["strategies"]["pack"]["lost"]                 # how clip 1's objects are lost
    assert set(lost) == set(video_identity.LOSSES) and all(0 <= v <= 1 for v in lost.values())
    assert len(fig["strategies"]["pack"]["video_identity"]) == 2      # one per video
    pack = fig["strategies"]["pack"]      # by how clip 1 drew each object: a share, two rates
    assert 0 <= pack["drawn_as_asked"] <= 1 and pack["clip1_objects"] >= 0
    assert all(0 <= r <= 1 for k in ("as_asked", "otherwise") for r in pack["identity_by_start"][k])
    assert [r["history_clips"] for r in fig["exposure"]] == [1, 2]
    assert [r["history_noise"] for r in fig["history_noise"]] == [0, 0.2]   # a sampling sweep
    assert fig["history_guidance"] == 1 and fig["guidance_noise"] == 0.5
    assert fig["sampler"] == "heun" and fig["shift"] == 0.5    # the ODE dials, recorded
    assert set(fig["ceiling"]) == {"real", "real_through_vae"}   # the truth, scored the same way
    assert all(0 <= r["lowest_clip"] <= r["identity"] <= 1 for r in fig["ceiling"].values())
    assert fig["ceiling"]["real"]["drawn_as_asked"] == 1.0     # the world draws what it says
    assert all(0 <= r[k] <= 1 for r in fig["exposure"]
               for k in ("real_history", "own_history", "real_clip"))


# 3b. evaluate extend --restate rule records the reader in its JSON line; --restate
#     captioner with no captioner names how to train one.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_03b_evaluate_restate(setup, tmp_path):
    data = tmp_path / "data"
    world.generate(data, {("val", "long"): 4}, seed=0, workers=1, long_clips=4)
    common = ["minivid/evaluate.py", "extend", "--ckpt", setup / "extend" / "ckpt.pt", "--data",
              data, "--videos", 1, "--clips", 2, "--steps", 1, "--strategies", "pack",
              "--exposure"]
    r = run(*common, "--restate", "rule")
    fig = json.loads(r.stdout.strip().splitlines()[-1])
    assert fig["restate"] == "rule/all" and len(fig["strategies"]["pack"]["per_clip"]) == 2
    r = run(*common, "--restate", "captioner", "--captioner", tmp_path / "none.pt", check=False)
    assert r.returncode != 0 and "train_captioner.py" in r.stderr


# 4. A video can go on from a history made elsewhere (real clips, encoded by the model's
#     VAE): the result keeps those frames as the VAE gives them back (the VAE is causal, so
#     the new clip does not change them) and adds a clip; a history that is not whole clips
#     of the model's size is refused with the shape it needs; history guidance, the time shift
#     and the Heun step change the new clip only. And identity by part: a clip against itself is whole; a smaller object costs
#     the size part only.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_04_continue_a_given_history(setup):
    from minivid.sampling import Pipeline, encode_uint8
    pipe = Pipeline(setup / "extend" / "ckpt.pt")
    scene = world.sample_scene(np.random.default_rng(12), frames=17)
    real = world.render(scene)[None]                                        # (1, 17, 32, 32, 3)
    p = "A small red circle on the left moves quickly to the right. The background is plain black."
    out = pipe.extend([p], 1, "pack", steps=1, history=real)
    assert out.shape == (1, 33, *real.shape[2:])
    z, _ = encode_uint8(pipe.vae, real)
    back = pipe.decode((z.float() - pipe.shift) / pipe.scale, 17)
    assert np.abs(out[:, :17].astype(int) - back.astype(int)).max() <= 2
    with pytest.raises(ValueError, match="1 \\+ 16 k"):
        pipe.extend([p], 1, "pack", steps=1, history=real[:, :10])
    with pytest.raises(ValueError, match="flow time in \\[0, 1\\)"):      # not a flow time
        pipe.extend([p], 1, "pack", steps=1, history=real, history_noise=1.5)
    # history guidance: only the new clip changes (w = 0 is the plain sampler, bit for bit)
    plain = pipe.extend([p], 1, "pack", steps=2, history=real)
    assert np.array_equal(plain, pipe.extend([p], 1, "pack", steps=2, history=real,
                                             history_guidance=0.0))
    guided = pipe.extend([p], 1, "pack", steps=2, history=real, history_guidance=2.0)
    assert np.array_equal(guided[:, :17], plain[:, :17]) and not np.array_equal(guided, plain)
    anchored = pipe.extend([p], 1, "pack", steps=2, history=real, history_guidance=2.0,
                           guide_on="anchor")                  # only frame 0 made vaguer
    assert np.array_equal(anchored[:, :17], plain[:, :17])
    assert not np.array_equal(anchored, plain) and not np.array_equal(anchored, guided)
    with pytest.raises(ValueError, match="weight >= 0"):
        pipe.extend([p], 1, "pack", steps=1, history=real, history_guidance=-1)
    # the ODE dials reach the new clip only: a time grid shifted towards t = 0, a Heun step
    for dial in (dict(shift=0.5), dict(sampler="heun")):
        other = pipe.extend([p], 1, "pack", steps=2, history=real, **dial)
        assert np.array_equal(other[:, :17], plain[:, :17]) and not np.array_equal(other, plain)
    # the CFG of the later clips alone: 0 = the null caption only (evaluate's history-only)
    assert np.array_equal(pipe.extend([p], 1, "pack", steps=2, history=real, later_cfg=2.0),
                          plain)                             # = cfg: nothing changes
    mute = pipe.extend([p], 1, "pack", steps=2, history=real, later_cfg=0.0)
    assert np.array_equal(mute[:, :17], plain[:, :17]) and not np.array_equal(mute, plain)
    with pytest.raises(ValueError, match="distilled on"):      # a student's grid is fixed
        Pipeline(setup / "student" / "ckpt.pt").extend([p], 1, "pack", steps=1, shift=0.5)
    with pytest.raises(ValueError, match="guidance folded in"):   # no null caption to keep
        Pipeline(setup / "student" / "ckpt.pt").extend([p], 1, "pack", steps=1, later_cfg=0.0)
    first = {"background": "black", "objects": [{"colour": "red", "shape": "circle",
                                                 "size": "large", "size_median": "large"}]}
    later = {"background": "black", "objects": [dict(first["objects"][0], size_median="small")]}
    assert video_identity.identity(first, first, "size_median") == (4, 4)
    parts = video_identity.identity_parts(first, later, "size_median")
    assert parts["size"] == (0, 1) and parts["shape"] == (1, 1) and parts["extra"] == (0, 0)


# 5. Bad requests to the extension tools fail early and name the fix.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_05_bad_inputs(setup, tmp_path):
    d = setup
    data = tmp_path / "data"
    world.generate(data, {("val", "long"): 2}, seed=0, workers=1, long_clips=2)
    r = run("minivid/evaluate.py", "extend", "--ckpt", d / "video" / "ckpt.pt", "--data", data,
            "--videos", 1, "--clips", 2, "--steps", 1, check=False)
    assert r.returncode != 0 and "not a clip-extension teacher" in r.stderr
    r = run("minivid/evaluate.py", "extend", "--ckpt", d / "extend" / "ckpt.pt", "--data",
            tmp_path / "nowhere", check=False)
    assert r.returncode != 0 and "minivid.world" in r.stderr
    r = run("minivid/evaluate.py", "extend", "--ckpt", d / "extend" / "ckpt.pt", "--data", data,
            "--student", d / "student" / "ckpt.pt", "--student-steps", 3, check=False)
    assert r.returncode != 0 and "distilled for [1, 2]" in r.stderr
    r = run("minivid/evaluate.py", "extend", "--ckpt", d / "extend" / "ckpt.pt", "--data", data,
            "--history-noise", 0.05, 1.5, check=False)
    assert r.returncode != 0 and "[0, 1)" in r.stderr
    r = run("minivid/evaluate.py", "extend", "--ckpt", d / "extend" / "ckpt.pt", "--data", data,
            "--history-guidance", 1, "--guidance-noise", 1, check=False)
    assert r.returncode != 0 and "--guidance-noise" in r.stderr and "(0, 1)" in r.stderr
    r = run("minivid/evaluate.py", "extend", "--ckpt", d / "extend" / "ckpt.pt", "--data", data,
            "--guide-on", "anchor", check=False)            # a target with no guidance weight
    assert r.returncode != 0 and "--history-guidance 2" in r.stderr
    r = run("minivid/evaluate.py", "extend", "--ckpt", d / "extend" / "ckpt.pt", "--data", data,
            "--time-shift", 0, check=False)
    assert r.returncode != 0 and "--time-shift 0" in r.stderr and "must be > 0" in r.stderr
    r = run("minivid/evaluate.py", "extend", "--ckpt", d / "extend" / "ckpt.pt", "--data", data,
            "--skip-videos", -1, check=False)
    assert r.returncode != 0 and "--skip-videos >= 0" in r.stderr
    r = run("minivid/evaluate.py", "extend", "--ckpt", d / "extend" / "ckpt.pt", "--data", data,
            "--skip-videos", 5, "--videos", 1, check=False)   # held-out scenes run out
    assert r.returncode != 0 and "--n-val-long" in r.stderr and "--skip-videos 5" in r.stderr
    r = run("train_extend.py", "--vae", d / "vae.pt", "--latents",
            d / "latents", "--out", d / "x", "--steps", 1, check=False)
    assert r.returncode != 0 and "--init-from" in r.stderr
    for flags, why in ((["--piece-noise", 2], "must be in [0, 1]"),
                       (["--piece-noise", 0.5, "--anchor", "coarse"], "needs --anchor full")):
        r = run("train_extend.py", "--vae", d / "vae.pt", "--latents", d / "latents", "--out",
                d / "x", "--steps", 1, "--init-from", d / "video" / "ckpt.pt", *flags, check=False)
        assert r.returncode != 0 and why in r.stderr, r.stderr[-500:]
    r = run("train_extend.py", "--vae", d / "vae.pt", "--latents", d / "latents", "--out", d / "x",
            "--steps", 1, "--init-from", d / "video" / "ckpt.pt", "--rollouts", 0.5, check=False)
    assert r.returncode != 0 and "never learnt to continue" in r.stderr, r.stderr[-500:]
    r = run("train_extend.py", "--vae", d / "vae.pt", "--latents", d / "latents", "--out", d / "x",
            "--steps", 1, "--init-from", d / "extend" / "ckpt.pt", "--rollouts", 0.5,
            "--rollout-videos", 2, "--batch-size", 4, check=False)
    assert r.returncode != 0 and "smaller than --batch-size" in r.stderr, r.stderr[-500:]
    with pytest.raises(ValueError, match="at least one clip"):
        sample_long(None, ["a red circle"], 0)


# 6. Rollout training end to end, on a per-piece model: the bank of the model's own clips is
#     built once beside the checkpoint and reused on --resume (not rebuilt: same bytes); a
#     per-piece teacher distils into a student that keeps its history layout.
@pytest.mark.slow  # a real script run on a trained model: `-m slow`
def test_06_rollouts_and_per_piece_student(setup):
    d = setup
    common = ["--vae", d / "vae.pt", "--latents", d / "latents", "--batch-size", 4,
              "--warmup", 2, "--save-every", 2, "--sample-every", 0]
    run("train_extend.py", "--out", d / "piece", "--steps", 2, "--piece-noise", 0.5,
        "--init-from", d / "extend" / "ckpt.pt", *common)
    run("train_extend.py", "--out", d / "roll", "--steps", 2, "--rollouts", 1.0,
        "--rollout-videos", 4, "--rollout-steps", 1, "--init-from", d / "piece" / "ckpt.pt",
        *common)
    bank = torch.load(d / "roll" / "rollouts.pt", weights_only=True)
    assert bank["own"].shape == (4, 3, 13, 8, 8) and bank["meta"]["share"] == 1.0
    stamp = (d / "roll" / "rollouts.pt").stat().st_mtime_ns
    r = run("train_extend.py", "--out", d / "roll", "--steps", 4, "--rollouts", 1.0,
            "--rollout-videos", 4, "--rollout-steps", 1, "--init-from", d / "piece" / "ckpt.pt",
            "--resume", *common)
    assert (d / "roll" / "rollouts.pt").stat().st_mtime_ns == stamp and "rollout bank" in r.stdout
    ckpt = load_checkpoint(d / "roll" / "ckpt.pt", kind="dit")
    assert ckpt["step"] == 4 and ckpt["extra"]["rollouts"]["videos"] == 4
    run("distill.py", "--teacher", d / "piece" / "ckpt.pt", "--out", d / "piece_student",
        "--steps", 2, "--trajectories", 12, "--batch-size", 4, "--step-counts", 1, 2, "--K", 2,
        "--sample-every", 0)
    student = load_checkpoint(d / "piece_student" / "ckpt.pt", kind="dit")
    assert student["extra"]["piece_noise"] == 0.5 and student["extra"]["anchor"] == "full"
