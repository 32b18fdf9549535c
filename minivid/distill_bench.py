"""What step distillation buys: quality, network calls and wall time, teacher vs student.

Where it sits: after distill.py; `python -m minivid.evaluate distill --teacher ... --student ...`
prints `distill_report` as a table plus one JSON line. Rows:
  - the teacher at 100, 8, 4, 2 and 1 Euler steps with guidance (2 network calls a step: the
    conditional and unconditional halves, batched into one forward);
  - the student at each step count it learnt (1 call a step: guidance is folded in).
Columns per row: network calls per clip; milliseconds per clip on this machine, one clip at
a time (median of a few) and batched (64 at once), split into text encoder, DiT and VAE
decoder; adherence on the val prompts and on the compositional test prompts; tiny FVD of the
val clips to the real val clips (minivid/fd.py). The same checker, probe, prompts and noise
seeds as `evaluate dit`.
Then one-step image-to-image transfer on real val clips: each clip's scene is edited (one
object's colour, or the background) and re-captioned; the clip is encoded, noised to
`strength` and mapped to the new caption in ONE student step, against the teacher doing the
same in 100 guided steps. Reported: adherence to the new caption, accuracy of the changed
attribute, and of the KEPT ones (shape, size, position, motion, speed). A before/after GIF
goes to --gif.

    python -m minivid.evaluate distill --teacher runs/dit_video/ckpt.pt --student runs/distill/ckpt.pt
"""
import copy
import statistics

import numpy as np
import torch

from minivid import bench, checker, distillation, fd
from minivid.captions import dense_caption
from minivid.data import save_grid
from minivid.sampling import Pipeline, latent_frames, sample_latents
from minivid.world import BACKGROUNDS, OBJECT_COLOURS, Scene

KEPT = ("shape", "size", "position", "motion", "speed")


def _setup(pipe, steps):
    """-> (cfg, step function) for a teacher (guided Euler) or a student (its own step)."""
    if pipe.distilled:
        pipe.check_steps(steps)
        return 1.0, distillation.student_step
    return None, "euler"


@torch.no_grad()
def stage_ms(pipe, prompts, steps, cfg, frames, batch) -> dict:
    """Milliseconds per clip of each stage, `batch` clips per call: text encoder, DiT sampling,
    VAE decode. One clip at a time: the median over the prompts; batched: the mean."""
    model, vae_cfg = pipe.model, pipe.vae.cfg
    C, (h, w) = model["dit"].cfg.in_channels, pipe.ckpt["extra"]["latent_hw"]
    shape = (C, latent_frames(frames, vae_cfg.tf), h, w)
    cfg_used, step = _setup(pipe, steps)
    cfg = cfg if cfg_used is None else cfg_used
    times = {"text": [], "dit": [], "vae": []}
    clock = lambda: bench.clock(pipe.device)  # noqa: E731 (GPU: wait for queued work)
    # one clip at a time: every prompt once; batched: the same batch twice, the second counts
    chunks = [prompts[i:i + batch] for i in range(0, len(prompts), batch)]
    for chunk in chunks if batch == 1 else chunks[:1] * 2:
        t0 = clock()
        _, mask = model["text"].encode(chunk)
        if cfg != 1.0:  # the null caption too, as sample_latents encodes it
            model["text"].encode([""] * len(chunk), allow_empty=True, length=mask.shape[1])
        t1 = clock()
        z = sample_latents(model, chunk, shape, steps, cfg, sampler=step, batch_size=batch)
        t2 = clock()
        pipe.decode(z, frames, batch)
        t3 = clock()
        # sample_latents encodes the captions itself: its DiT time is its total minus that.
        for k, s in (("text", t1 - t0), ("dit", (t2 - t1) - (t1 - t0)), ("vae", t3 - t2)):
            times[k].append(1e3 * max(s, 0.0) / len(chunk))
    out = {k: statistics.median(v) if batch == 1 else v[-1] for k, v in times.items()}
    out["total"] = sum(out.values())
    return out


def _quality(pipe, prompts, steps, cfg, frames, probe, f_val, seed=0) -> dict:
    """Adherence (val, test) and FVD of the val clips, at `steps`."""
    cfg_used, step = _setup(pipe, steps)
    cfg = cfg if cfg_used is None else cfg_used
    out = {}
    for split, caps in prompts.items():
        videos = pipe.generate(caps, frames, steps, cfg, seed, step)
        out[f"adherence_{split}"] = bench.adherence(videos, caps)
        if split == "val":
            out["fvd_val"] = bench.fvd(probe, videos, f_val)
    return out


def edit_scene(spec: dict, k: int) -> dict:
    """A new scene for transfer: even k recolours the first object, odd k changes the
    background; always to the next colour of the palette that the scene does not use."""
    new = copy.deepcopy(spec)
    if k % 2 == 0:
        used = {o["colour"] for o in new["objects"]}
        names = list(OBJECT_COLOURS)
        start = names.index(new["objects"][0]["colour"])
        new["objects"][0]["colour"] = next(names[(start + j) % len(names)]
                                           for j in range(1, len(names))
                                           if names[(start + j) % len(names)] not in used)
    else:
        names = list(BACKGROUNDS)
        new["background"] = names[(names.index(new["background"]) + 1) % len(names)]
    return new


def _transfer_scores(videos, specs, edits) -> dict:
    """Adherence to the new caption (all stated attributes), to the one attribute the edit
    changed (the first object's colour, or the background), and to every other one (kept =
    all minus changed, so objects are matched once, by colour, as evaluate dit does)."""
    hits = {"all": [0, 0], "changed": [0, 0]}
    for video, spec, k in zip(videos, specs, edits):
        found, want = checker.detect(video), checker.stated(spec)
        if k % 2 == 0:  # the first object was recoloured
            changed = {"background": None, "objects": [{"colour": want["objects"][0]["colour"]}]}
        else:           # the background was changed
            changed = {"background": want["background"], "objects": []}
        for group, w in (("all", want), ("changed", changed)):
            for key, (h, t) in checker.score_by_attribute(found, w).items():
                if key != "position_2":
                    hits[group][0] += h
                    hits[group][1] += t
    kept = [hits["all"][0] - hits["changed"][0], hits["all"][1] - hits["changed"][1]]
    return {f"transfer_{g}": h / max(t, 1) for g, (h, t) in {**hits, "kept": kept}.items()}


def transfer_report(teacher, student, data_dir, n, strength, student_steps, gif=None) -> dict:
    """One-step transfer on n real val clips; the teacher in 100 guided steps for reference."""
    rows = bench.rows(data_dir, "val", n=n)
    extra = teacher.ckpt["extra"]
    real, _ = fd.load_clips(bench.manifest(data_dir, "val"), frames=extra["frames"],
                            size=extra["latent_hw"][0] * teacher.vae.cfg.patch)
    real = real[:len(rows)]
    specs = [edit_scene(r["spec"], k) for k, r in enumerate(rows)]
    rng = np.random.default_rng(0)
    caps = [dense_caption(Scene.from_dict(s), rng) for s in specs]
    out = {"transfer_strength": strength}
    results = {}
    for name, pipe, steps, cfg in (("student", student, student_steps, 1.0),
                                   ("teacher", teacher, 100, 2.0)):
        t0 = bench.clock()
        videos = pipe.generate(caps, real.shape[1], steps, cfg, 0, _setup(pipe, steps)[1],
                               init=real, strength=strength)
        out[f"{name}_transfer_ms_per_clip"] = 1e3 * (bench.clock() - t0) / len(caps)
        out.update({f"{name}_{k}": v for k, v in
                    _transfer_scores(videos, specs, range(len(specs))).items()})
        results[name] = videos
    # the baseline: the untouched original clip scored against the NEW caption
    out["original_vs_new_caption"] = bench.adherence(real, specs)
    if gif:
        m = 4
        save_grid(gif, np.concatenate([real[:m], results["student"][:m], results["teacher"][:m]]),
                  [f"original: {r['caption']}" for r in rows[:m]] +
                  [f"student, {student_steps} step: {c}" for c in caps[:m]] +
                  [f"teacher, 100 steps: {c}" for c in caps[:m]], cols=m)
    return out


def distill_report(teacher_ckpt, student_ckpt, data_dir="tiny_data", n=128, cfg=2.0,
                   teacher_steps=(100, 8, 4, 2, 1), strength=0.5, device="cpu",
                   gif=None) -> dict:
    teacher = Pipeline(teacher_ckpt, device=device)
    student = Pipeline(student_ckpt, device=device)
    if not student.distilled:
        raise ValueError(f"{student_ckpt} is not a distilled student (no 'distilled' record in "
                         "its extra); make one with distill.py --teacher ...")
    if teacher.distilled:
        raise ValueError(f"--teacher {teacher_ckpt} is a distilled student; pass the "
                         "train_dit.py checkpoint it was distilled from")
    frames = teacher.ckpt["extra"]["frames"]
    prompts = {s: bench.captions(data_dir, s, n=n) for s in ("val", "test")}
    probe = fd.load_or_train_probe(data_dir)
    f_val = bench.real_features(probe, data_dir, frames=frames)
    student_steps = sorted(student.distilled["step_counts"], reverse=True)
    out = {"teacher": str(teacher_ckpt), "student": str(student_ckpt), "n": n, "cfg": cfg,
           "student_cfg_folded": student.distilled["cfg"], "threads": torch.get_num_threads()}
    table = []
    for name, pipe, steps_list in (("teacher", teacher, teacher_steps),
                                   ("student", student, student_steps)):
        for steps in steps_list:
            calls = steps * (1 if pipe.distilled else 2)
            row = {"calls_per_clip": calls}
            row.update(_quality(pipe, prompts, steps, cfg, frames, probe, f_val))
            one = stage_ms(pipe, prompts["val"][:8], steps, cfg, frames, batch=1)
            many = stage_ms(pipe, prompts["val"][:64], steps, cfg, frames, batch=64)
            row.update({f"ms_b1_{k}": v for k, v in one.items()})
            row.update({f"ms_b64_{k}": v for k, v in many.items()})
            table.append((f"{name}@{steps}", row))
            out.update({f"{name}@{steps}_{k}": v for k, v in row.items()})
    out["table"] = table
    out.update(transfer_report(teacher, student, data_dir, n, strength, min(student_steps), gif))
    return out


# ----------------------------------------------------------------------------- the command
COLUMNS = [("calls_per_clip", "calls"), ("adherence_val", "adh val"),
           ("adherence_test", "adh test"), ("fvd_val", "FVD val"), ("ms_b1_total", "ms b1"),
           ("ms_b1_text", "text"), ("ms_b1_dit", "DiT"), ("ms_b1_vae", "VAE"),
           ("ms_b64_total", "ms b64"), ("ms_b64_text", "text"), ("ms_b64_dit", "DiT"),
           ("ms_b64_vae", "VAE")]


def add_args(sub) -> None:
    p = bench.command(sub, "distill", run, "teacher vs distilled student: calls, ms per clip by "
                      "stage, adherence, tiny FVD; one-step image-to-image transfer")
    p.add_argument("--teacher", required=True, help="the train_dit.py checkpoint")
    p.add_argument("--student", required=True, help="the distill.py checkpoint")
    p.add_argument("--teacher-steps", type=int, nargs="+", default=[100, 8, 4, 2, 1],
                   help="teacher Euler step counts to score")
    p.add_argument("--strength", type=float, default=0.5, help="transfer: noise level of the "
                   "init clip, in (0, 1]")
    bench.shared_args(p, "data", "n", "cfg", "gif", "device",
                      help={"cfg": "the teacher's guidance scale",
                            "gif": "before/after transfer GIF to write"})


def run(args) -> dict:
    bench.need(args.teacher, "Train one first: python train_dit.py --stage video ... (README)")
    bench.need(args.student, "Distil one first: python distill.py --teacher <ckpt> --out "
               "runs/distill")
    bench.need_data(args.data)
    fig = distill_report(args.teacher, args.student, args.data, args.n, args.cfg,
                         args.teacher_steps, args.strength, args.device, args.gif)
    table = fig.pop("table")
    bench.print_columns(f"teacher (cfg {args.cfg}, Euler) vs student (guidance "
                        f"{fig['student_cfg_folded']} folded in), {args.n} prompts per set; ms "
                        "per clip, one at a time (b1) and 64 at once",
                        [""] + [h for _, h in COLUMNS],
                        [(name, [row[k] for k, _ in COLUMNS]) for name, row in table])
    bench.print_table(f"one-step transfer at strength {args.strength} ({args.n} val clips, "
                      "edited colour or background)",
                      [(k, v) for k, v in fig.items() if "transfer" in k
                       or k == "original_vs_new_caption"])
    bench.print_json("distill", fig)
    return fig
