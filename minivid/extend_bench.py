"""What clip extension costs and what it keeps: `python -m minivid.evaluate extend`.

Where it sits: after `train_extend.py`. Three sets of long videos, all from the
val long clips' scenes (tiny_data/val/long.jsonl; scenes where something grows or shrinks
are left out, since their size changes on purpose):
  1. ONE PROMPT per video (its first clip's dense caption), `clips` clips long, made with each
     context strategy (full, window, pack; minivid/extend.py) and with the PROMPT-ONLY
     baseline (every clip drawn on its own from the same prompt, no history). Per clip index
     N = 1..clips: context tokens, ms for clip N (per video, the videos batched), the peak
     memory while making it, IDENTITY (does clip N show clip 1's background and objects with
     their colours, shapes and sizes: `identity`) and STATIC ADHERENCE (background, colours,
     shapes, sizes the prompt states). Per video: BOUNDARY CONTINUITY, the jump of each
     object's centre across each clip boundary (px) against the mean frame-to-frame motion
     inside clips.
  2. ONE PROMPT PER CLIP, the val long clips' per-clip captions (their scenes' own clips,
     captioned by the world's caption writer, seed 0; random turns at clip starts):
     adherence of every clip to its prompt, with the same score of the REAL clips
     (the ground truth rendered by the world) as the ceiling, since a reflection off an edge
     mid-clip can make even the truth disagree with a caption's direction.
  3. FOUR PROMPTS: "moves right", then "moves up", "moves left", "moves down" (a square
     path; each video's start corner, turning sense, object and speed drawn): adherence per
     clip, identity.
Set 1 also gives the metric's CEILING (the real videos of the same scenes, as rendered and
through the model's VAE, scored the same way), identity BY PART (background, colour, shape,
size read as the median over each clip, extra objects: where identity is lost), HOW clip 1's
objects are lost (gone, recoloured, another shape or size), identity per video (a few
videos that fail outright read differently from a drift of all), identity BY HOW CLIP 1 DREW
each object (as the prompt asks, or otherwise: video_identity.as_asked), and for pack:
  EXPOSURE BIAS (--exposure K ...): clip K + 1 made from the REAL first K clips (rendered by
     the world, encoded by the VAE) against the same clip of the model's own video;
  a HISTORY NOISE sweep (--history-noise TAU ...): the noise the history gets in sampling,
     changed without retraining: identity and boundary jump per value.
--strategies ... history-only adds a diagnostic: pack with no text after clip 1 (CFG 0, the
null caption alone), the mirror of prompt-only: what the model keeps from its history alone.
--restate captioner (or rule) restates the later clips' text of one-prompt videos from what
clip 1 shows (minivid/restate.py).
--history-guidance W scores every continued video with guidance over the history (sampling.
sample_long; --guide-on anchor: towards what frame 0 shows); --skip-videos K scores scenes the
setting was not tuned on.
With --student, sets 1 (pack) and 3 again with the distilled student, and how many seconds
of video it makes per second of compute. A plot of tokens and ms vs video length per strategy.
How each video is scored (identity, adherence, continuity) is minivid/video_identity.py; the
scenes of the three sets are minivid/extend_sets.py; making and timing the videos, the ceiling
and exposure bias are minivid/extend_videos.py.

    python -m minivid.evaluate extend --ckpt runs/extend/ckpt.pt --plot runs/extend/extend.png
"""
import numpy as np
import torch
from matplotlib.figure import Figure

from minivid import bench
from minivid.checkpoint import load_checkpoint
from minivid.data import save_grid
from minivid.extend_sets import clip_captions, eval_scenes, real_videos, square_path_scene
from minivid.extend_videos import ceiling, exposure_bias, run_strategy
from minivid.history import (GUIDE_NOISE, GUIDE_TARGETS, TRAIN_NOISE, check_history_guidance,
                             check_history_noise)
from minivid.long_clips import CLIP
from minivid.restate import add_args as add_restate_args, missing_reader, restater
from minivid.sampling import Pipeline
from minivid.video_identity import LOSSES, PARTS, score_one_prompt, score_per_clip
from minivid.world import Scene

# ----------------------------------------------------------------------------- the report
def extend_report(ckpt, data_dir="tiny_data", n=16, clips=16, steps=32, cfg=2.0, window=4,
                  seed=0, student=None, student_steps=None, device="cpu", gif=None,
                  strategies=("full", "window", "pack", "prompt-only"), progress=print,
                  exposure=(1, 2, 4, 8), history_noises=(), history_guidance=0.0,
                  guidance_noise=GUIDE_NOISE, skip=0, guide_on="history", sampler="euler",
                  shift=1.0, who_only=False, later_cfg=None, restate=None):
    """Every score of the module docstring -> one dict (the JSON line). history_guidance,
    guidance_noise, guide_on, sampler, shift, who_only, later_cfg: sampling.sample_long's, for
    every video the teacher makes (the student keeps its own). restate: a restate.Restater
    (Pipeline.extend: later clips of one-prompt videos get the reader's text of clip 1)."""
    guide = dict(history_guidance=history_guidance, guidance_noise=guidance_noise,
                 guide_on=guide_on, sampler=sampler, shift=shift, who_only=who_only,
                 later_cfg=later_cfg)
    pipe = Pipeline(ckpt, device=device)
    if pipe.distilled:
        raise ValueError(f"--ckpt {ckpt} is a distilled student; pass the extension teacher "
                         "and the student with --student")
    scenes = eval_scenes(data_dir, n, skip)
    if len(scenes) < n:
        raise ValueError(f"{data_dir}/val/long.jsonl has {skip + len(scenes)} usable long clips, "
                         f"fewer than --skip-videos {skip} + --videos {n}: regenerate it with "
                         "more (python -m minivid.world --n-val-long 180: ~45% are usable) or "
                         "ask for fewer")
    prompts = [clip_captions(s, 1)[0] for s in scenes]
    out = {"ckpt": str(ckpt), "videos": n, "skip_videos": skip, "clips": clips, "steps": steps,
           "cfg": cfg, "window": window, "threads": torch.get_num_threads(), **guide,
           "restate": f"{restate.name}/{restate.take}" if restate else "none",
           "strategies": {}}
    guide["restate"] = restate
    videos_by = {}
    pipe.extend(prompts[:1], 2, "pack" if pipe.model["dit"].cfg.context_kernels else "full",
                1, cfg, seed)  # warm-up: the first strategy must not pay for it
    for strategy in strategies:
        progress(f"one prompt per video, {strategy}: {n} videos x {clips} clips")
        videos_by[strategy], out["strategies"][strategy] = run_strategy(
            pipe, prompts, clips, strategy, steps, cfg, seed, window, device, guide)
    progress("the metric's ceiling: the real videos, as rendered and through the VAE")
    out["ceiling"] = ceiling(pipe.vae, scenes, prompts, clips)
    sweep = []
    for tau in history_noises:    # the sampling-time history noise, no retraining: pack
        progress(f"history noise {tau}, pack: {n} videos x {clips} clips")
        scores = score_one_prompt(pipe.extend(prompts, clips, "pack", steps, cfg, seed, window,
                                              history_noise=tau, **guide), prompts, clips)
        sweep.append({"history_noise": tau,
                      "identity": float(np.mean(scores["identity_median_size"][1:])),
                      "boundary_jump_px": scores["boundary_jump_px"],
                      "within_clip_motion_px": scores["within_clip_motion_px"]})
    if sweep:
        out["history_noise"] = sweep
    lengths = [k for k in exposure if k < clips]
    if lengths and "pack" in videos_by:
        progress(f"exposure bias, pack: the next clip after {lengths} real clips")
        out["exposure"] = exposure_bias(pipe, scenes, prompts, videos_by["pack"], lengths, steps,
                                        cfg, seed, window, guide)

    # multi-prompt sets, the packed strategy (the one meant for long videos)
    long_clips = min(clips, (scenes[0].frames - 1) // CLIP)
    per_clip = [clip_captions(s, long_clips) for s in scenes]
    progress(f"one prompt per clip (val long clips), pack: {n} videos x {long_clips} clips")
    videos = pipe.extend(per_clip, long_clips, "pack", steps, cfg, seed, window, **guide)
    real = real_videos([Scene(s.background, s.objects, 1 + CLIP * long_clips, s.res)
                        for s in scenes])
    out["per_clip_prompts"] = {"pack": score_per_clip(videos, per_clip, long_clips),
                               "real": score_per_clip(real, per_clip, long_clips)}
    rng = np.random.default_rng(seed + 1)
    squares = [square_path_scene(rng) for _ in range(n)]
    four = [clip_captions(s, 4) for s in squares]
    progress(f"four prompts (a square path), pack: {n} videos x 4 clips")
    square_videos = pipe.extend(four, 4, "pack", steps, cfg, seed, window, **guide)
    out["four_prompts"] = {"pack": score_per_clip(square_videos, four, 4),
                           "real": score_per_clip(real_videos(squares), four, 4),
                           "example": four[0]}
    if student:
        out["student"] = student_report(student, student_steps, prompts, four, clips, seed,
                                        window, device, progress)
    if gif:
        write_gif(gif, videos_by, prompts, square_videos, four)
    return out


def student_report(path, steps, prompts, four, clips, seed, window, device, progress):
    pipe = Pipeline(path, device=device)
    if not pipe.distilled:
        raise ValueError(f"--student {path} is not a distilled student (distill.py output)")
    steps = steps or min(pipe.distilled["step_counts"])
    progress(f"student, {steps} step(s) a clip, pack: {len(prompts)} videos x {clips} clips")
    _, result = run_strategy(pipe, prompts, clips, "pack", steps, 1.0, seed, window, device)
    square = pipe.extend(four, 4, "pack", steps, 1.0, seed, window)
    return {"ckpt": str(path), "steps": steps, **result,
            "four_prompts": score_per_clip(square, four, 4)}


def write_gif(path, videos_by, prompts, square_videos, four, k=2):
    """Rows: each strategy's first k one-prompt videos, then k four-prompt videos."""
    names = list(videos_by)
    vids, caps = [], []
    for i in range(k):
        for s in names:
            vids.append(videos_by[s][i])
            caps.append(f"{s}: {prompts[i]}")
    vids += [square_videos[i] for i in range(k)]
    caps += ["pack, 4 prompts: " + " | ".join(four[i]) for i in range(k)]
    T = max(len(v) for v in vids)    # shorter videos hold their last frame
    vids = [np.concatenate([v, np.repeat(v[-1:], T - len(v), axis=0)]) for v in vids]
    save_grid(path, np.stack(vids), caps, cols=len(names))


def plot(report, path):
    """Context tokens and ms per clip vs the clip index, one line per strategy."""
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    for name, res in report["strategies"].items():
        clips = [r["clip"] for r in res["per_clip"]]
        if name != "prompt-only":
            axes[0].plot(clips, [r["tokens"] for r in res["per_clip"]], marker=".", label=name)
        axes[1].plot(clips, [r["ms"] for r in res["per_clip"]], marker=".", label=name)
    axes[0].set(xlabel="clip index N (video length in clips)", ylabel="context tokens",
                title="context the DiT attends to")
    axes[1].set(xlabel="clip index N", ylabel="ms per clip per video",
                title=f"time to make clip N ({report['steps']} steps, CFG)")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend()
    return bench.save_figure(fig, path, dpi=110)


# ----------------------------------------------------------------------------- the command
STRATEGIES = ["full", "window", "pack", "prompt-only"]
# opt-in, a diagnostic: pack with no text after clip 1 (CFG 0: the null caption alone), the
# mirror of prompt-only: how much of who is in the video the model reads from its history
DIAGNOSTICS = ["history-only"]


def add_args(sub) -> None:
    p = bench.command(sub, "extend", run, "clip extension: context tokens, ms and memory per "
                      "clip for full / window / pack and a prompt-only baseline; identity, "
                      "boundary continuity, per-clip adherence, drift; plot")
    bench.shared_args(p, "data", "steps", "cfg", "seed", "plot", "gif", "device",
                      help={"steps": "teacher sampler steps per clip (--sampler)",
                            "plot": "PNG of tokens and ms vs video length",
                            "gif": "GIF: strategies side by side, 4-prompt videos"})
    p.add_argument("--ckpt", required=True, help="the train_extend.py checkpoint")
    p.add_argument("--student", default=None, help="a distill.py student of it, to score too")
    p.add_argument("--student-steps", type=int, default=None, help="student steps per clip "
                   "(default: its fewest)")
    p.add_argument("--videos", type=int, default=16, help="videos per set")
    p.add_argument("--skip-videos", type=int, default=0, metavar="K", help="leave out the first "
                   "K usable val long scenes (e.g. the ones a setting was tuned on)")
    p.add_argument("--clips", type=int, default=16, help="clips per one-prompt video")
    p.add_argument("--window", type=int, default=4, help="latent frames the window strategy "
                   "keeps")
    p.add_argument("--strategies", nargs="+", default=STRATEGIES,
                   choices=STRATEGIES + DIAGNOSTICS, help="what to compare (history-only: pack "
                   "with no text after clip 1, so whatever it keeps it read from the history)")
    p.add_argument("--history-noise", nargs="*", type=float, default=[], metavar="TAU",
                   help="sweep the flow time the history is noised to in sampling (pack; the "
                   "default is history.SAMPLE_NOISE): identity and boundary jump per value")
    p.add_argument("--history-guidance", type=float, default=0.0, metavar="W",
                   help="guidance over the history for every continued video (sampling."
                   "sample_long): + W (v(history) - v(the history noised to --guidance-noise)); "
                   "0: off; 1.5x the network rows of plain CFG (~1.7x the time)")
    p.add_argument("--guidance-noise", type=float, default=GUIDE_NOISE, metavar="TAU",
                   help="the flow time of the vaguer history that --history-guidance pushes "
                   "away from (the anchor stays clean in a per-piece model)")
    p.add_argument("--guide-on", default="history", choices=GUIDE_TARGETS,
                   help="what --history-guidance's vaguer branch loses: the whole history's "
                   "detail (history), or only the anchor, frame 0 (anchor: pulls every clip "
                   "towards how the video started)")
    p.add_argument("--sampler", default="euler", choices=["euler", "heun"], help="the teacher's "
                   "ODE step (heun: second order, ~2x the network calls a step)")
    p.add_argument("--time-shift", type=float, default=1.0, metavar="S", help="the time grid's "
                   "shift (flow.timesteps): < 1 puts more of the steps at low noise, where "
                   "fine detail is finished; > 1 at high noise")
    p.add_argument("--later-cfg", type=float, default=None, metavar="C", help="the CFG of every "
                   "clip after the first (default: --cfg); the history-only strategy uses 0")
    p.add_argument("--who-only", action="store_true", help="one-prompt videos: later clips get "
                   "only who is in the video, not how it moves (history.clip_prompts; the "
                   "default keeps the motion, and keeps more of who is in the video)")
    add_restate_args(p)     # --restate, --captioner, --restate-take
    p.add_argument("--exposure", nargs="*", type=int, default=[1, 2, 4, 8], metavar="K",
                   help="history lengths (clips) at which to measure exposure bias: the next "
                   "clip from the real first K clips vs from the model's own (pack; none: off)")


def check(args) -> None:
    """Refuse what extend_report cannot score, before any work, naming the fix."""
    bench.at_least(args, videos=1, clips=2, steps=1, window=1, skip_videos=0)
    bench.need(args.ckpt, "Train one first: python train_extend.py --init-from "
               "runs/dit_video/ckpt.pt ... (README, clip extension)")
    bench.need(bench.manifest(args.data, "val", "long"), "Make the long clips: python -m "
               f"minivid.world --out {args.data} (it writes val/long.jsonl)")
    try:   # before any work: the sweep runs last
        for tau in args.history_noise:
            check_history_noise(tau)
    except ValueError as e:
        args.error(f"--history-noise: {e}")
    try:
        check_history_guidance(args.history_guidance, args.guidance_noise, args.guide_on)
    except ValueError as e:
        args.error(f"--history-guidance / --guidance-noise: {e}")
    if not args.time_shift > 0:
        args.error(f"--time-shift {args.time_shift}: must be > 0 (1 = an even time grid)")
    if args.later_cfg is not None and args.later_cfg < 0:
        args.error(f"--later-cfg {args.later_cfg}: a guidance scale >= 0 (0: no text after clip "
                   "1, 1: no guidance, > 1: guided; default: --cfg)")
    if args.guide_on != "history" and not args.history_guidance:
        args.error(f"--guide-on {args.guide_on} says what --history-guidance guides towards; "
                   "give it a weight too (e.g. --history-guidance 2)")
    if why := missing_reader(args.restate, args.captioner):
        args.error(why)
    ck = load_checkpoint(args.ckpt, kind="dit")
    if not ck["config"]["dit"].get("context_kernels") or ck["extra"].get("distilled"):
        args.error(f"--ckpt {args.ckpt} is not a clip-extension teacher (train_dit.py --stage "
                   "extend); pass that, and a distilled student of it with --student")
    trained = ck["extra"].get("piece_noise") or TRAIN_NOISE   # the most noise it ever saw
    beyond = [tau for tau in args.history_noise if tau > trained]
    if beyond:   # allowed (a sweep may look past it), but the reader should know
        print(f"note: --history-noise {beyond} lies beyond what {args.ckpt} was trained on "
              f"(history noise up to {trained}): those rows test it out of its range")
    if args.history_guidance and args.guidance_noise > trained:   # the same, for the weak branch
        print(f"note: --guidance-noise {args.guidance_noise} lies beyond what {args.ckpt} was "
              f"trained on (history noise up to {trained}): its guidance branch asks the model "
              "about histories it never saw")
    if args.history_guidance and args.guide_on == "anchor":
        print("note: --guide-on anchor noises the anchor, which training kept clean (or at "
              f"most at {TRAIN_NOISE}): the weaker branch lies outside what the model saw, a "
              "direction to guide by, not a prediction to trust on its own")
    if args.student:
        bench.need(args.student, "Distil one first: python distill.py --teacher "
                   "runs/extend/ckpt.pt")
        counts = (load_checkpoint(args.student, kind="dit")["extra"].get("distilled") or
                  {}).get("step_counts")
        if not counts:
            args.error(f"--student {args.student} is not a distilled student (distill.py)")
        if args.student_steps is not None and args.student_steps not in counts:
            args.error(f"--student-steps {args.student_steps}: this student was distilled for "
                       f"{counts} steps")


def run(args) -> dict:
    check(args)
    try:
        fig = extend_report(args.ckpt, args.data, args.videos, args.clips, args.steps, args.cfg,
                            args.window, args.seed, args.student, args.student_steps,
                            args.device, args.gif, tuple(args.strategies),
                            exposure=tuple(args.exposure),
                            history_noises=tuple(args.history_noise),
                            history_guidance=args.history_guidance,
                            guidance_noise=args.guidance_noise, skip=args.skip_videos,
                            guide_on=args.guide_on, sampler=args.sampler,
                            shift=args.time_shift, who_only=args.who_only,
                            later_cfg=args.later_cfg,
                            restate=restater(args.restate, args.captioner, args.seed,
                                             args.restate_take))
    except ValueError as e:   # too few long clips, a student passed as --ckpt: the fix is named
        args.error(str(e))
    shown = {1, 2, 4, 8, 12, 16, args.clips}
    bench.print_columns(
        f"one prompt per video, {args.videos} videos, {args.steps} {args.sampler} steps "
        f"(time shift {args.time_shift:g}) + CFG {args.cfg} a "
        "clip; ms per clip per video (videos batched); identity and static adherence of clip N",
        ["strategy", "N", "tokens", "ms", "peak MB", "identity", "static adh"],
        [(name, [r["clip"], r["tokens"], f"{r['ms']:.1f}",
                 "n/a" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}",
                 f"{r['identity']:.3f}", f"{r['static_adherence']:.3f}"])
         for name, res in fig["strategies"].items() for r in res["per_clip"]
         if r["clip"] in shown])
    rows = []
    for name, res in fig["strategies"].items():
        per, one = res["per_clip"], min(1, len(res["per_clip"]) - 1)
        rows += [(f"{name}: identity, mean over clips 2..{args.clips}",
                  float(np.mean([r["identity"] for r in per[1:]])) if len(per) > 1 else 1.0),
                 (f"{name}: boundary jump / within-clip motion (px)",
                  f"{res['boundary_jump_px']:.2f} / {res['within_clip_motion_px']:.2f}"),
                 (f"{name}: ms clip {per[-1]['clip']} / ms clip {per[one]['clip']}",
                  per[-1]["ms"] / per[one]["ms"])]
    bench.print_table("consistency and cost", rows)
    bench.print_columns(
        "identity by part, size read as the median over each clip (mean over clips 2..N)",
        ["strategy", "all", *PARTS[:-1], "extra objects"],
        [(name, [f"{np.mean([r['identity_median_size'] for r in res['per_clip'][1:]]):.3f}"] +
          [f"{np.mean(res['identity_by_part'][k][1:]):.3f}" for k in PARTS[:-1]] +
          [f"{np.mean(res['extra_objects_per_clip'][1:]):.2f}"])
         for name, res in fig["strategies"].items() if len(res["per_clip"]) > 1])
    bench.print_columns(
        "how clip 1's objects are lost (share of objects x clips 2..N): gone (faded out), "
        "recoloured, or kept with another shape / size; identity per video",
        ["strategy", *LOSSES, "videos >= 0.95", "worst video"],
        [(name, [f"{res['lost'][k]:.3f}" for k in LOSSES] +
          [f"{np.mean(np.array(res['video_identity']) >= 0.95):.2f}",
           f"{min(res['video_identity']):.3f}"])
         for name, res in fig["strategies"].items() if len(res["per_clip"]) > 1])
    bench.print_columns(
        "identity by how clip 1 drew each object (its colour, shape and size in clips 2..N): "
        "drawn as the prompt asks, or otherwise (another shape or size, a stray blob); clip 1 "
        "is the reference either way", ["strategy", "clip-1 objects", "drawn as asked",
                                        "identity as asked", "identity otherwise"],
        [(name, [res["clip1_objects"], f"{res['drawn_as_asked']:.2f}"] +
          [f"{np.mean(res['identity_by_start'][k][1:]):.3f}" if share else "n/a"
           for k, share in (("as_asked", res["drawn_as_asked"]),
                            ("otherwise", 1 - res["drawn_as_asked"]))])
         for name, res in fig["strategies"].items() if len(res["per_clip"]) > 1])
    bench.print_columns(
        "the metric's ceiling: the REAL videos of the same scenes, scored the same way "
        "(identity over clips 2..N, median size)", ["video", "identity", "lowest clip", "colour",
                                                    "shape", "size", "jump px", "motion px",
                                                    "drawn as asked", "identity as asked"],
        [(name, [f"{r['identity']:.3f}", f"{r['lowest_clip']:.3f}", f"{r['colour']:.3f}",
                 f"{r['shape']:.3f}", f"{r['size']:.3f}", f"{r['boundary_jump_px']:.2f}",
                 f"{r['within_clip_motion_px']:.2f}", f"{r['drawn_as_asked']:.2f}",
                 f"{r['identity_as_asked']:.3f}"]) for name, r in fig["ceiling"].items()])
    if fig.get("history_noise"):
        bench.print_columns(
            "history noise in sampling (pack): identity over clips 2..N (median size), boundary "
            "jump vs within-clip motion", ["tau", "identity", "jump px", "motion px"],
            [(r["history_noise"], [f"{r['identity']:.3f}", f"{r['boundary_jump_px']:.2f}",
                                   f"{r['within_clip_motion_px']:.2f}"])
             for r in fig["history_noise"]])
    if fig.get("exposure"):
        bench.print_columns(
            "exposure bias (pack): identity with clip 1 of clip k + 1, made from the real first "
            "k clips / from the model's own; the real clip k + 1 (the metric's ceiling)",
            ["k", "real history", "own history", "gap", "real clip"],
            [(r["history_clips"], [f"{r['real_history']:.3f}", f"{r['own_history']:.3f}",
                                   f"{r['real_history'] - r['own_history']:+.3f}",
                                   f"{r['real_clip']:.3f}"]) for r in fig["exposure"]])
    for key, title in (("per_clip_prompts", "one prompt per clip (val long clips, random turns)"),
                       ("four_prompts", "four prompts: a square path")):
        res = fig[key]
        bench.print_table(f"{title}: adherence per clip (generated / real clips)", [
            (f"clip {m + 1}", f"{a:.3f} / {r:.3f}   identity {i:.3f}") for m, (a, r, i) in
            enumerate(zip(res["pack"]["adherence"], res["real"]["adherence"],
                          res["pack"]["identity"]))])
    if args.student:
        st = fig["student"]
        per = st["per_clip"]
        bench.print_table(f"distilled student, {st['steps']} step(s) a clip, pack", [
            ("identity, mean over clips 2..N", float(np.mean([r["identity"] for r in per[1:]]))),
            ("boundary jump / within-clip motion (px)",
             f"{st['boundary_jump_px']:.2f} / {st['within_clip_motion_px']:.2f}"),
            ("four prompts: adherence per clip", " ".join(f"{a:.3f}" for a in
                                                          st["four_prompts"]["adherence"])),
            ("ms per clip per video (clip 2, clip N)", f"{per[1]['ms']:.1f}, {per[-1]['ms']:.1f}"),
            ("seconds of video per second of compute", st["video_seconds_per_second"])])
    if args.plot:
        print(f"wrote {plot(fig, args.plot)}")
    bench.print_json("extend", fig)
    return fig
