"""The evaluation commands: every figure in the README comes from one of these.

Where it sits: the end of every stage. Each command prints a readable table and, last, one
JSON line with its figures (easy to grep, diff and plot).

    python -m minivid.evaluate data                      # is the yardstick itself right?
    python -m minivid.evaluate vae --ckpt runs/vae_t4/ckpt.pt
    python -m minivid.evaluate dit --ckpt runs/dit_video/ckpt.pt
    python -m minivid.evaluate compare runs/dit_video/ckpt.pt runs/dit_scratch/ckpt.pt
    python -m minivid.evaluate throughput --preset tiny  # training speed / MFU, no checkpoint
    python -m minivid.evaluate distill --teacher runs/dit_video/ckpt.pt --student runs/distill/ckpt.pt
    python -m minivid.evaluate extend --ckpt runs/extend/ckpt.pt --plot runs/extend/extend.png
    python -m minivid.evaluate rewrite --ckpt runs/dit_video/ckpt.pt --rewriter runs/rewriter/ckpt.pt
    python -m minivid.evaluate captions --captioner runs/captioner/ckpt.pt --dits dense=... sparse=...

`data` checks the yardsticks on real tiny-world clips before they judge anything generated:
the scene checker's adherence on real val clips (must be ~1) and on captions swapped with
another clip's (must be low); the Fréchet distance (tiny FVD, see `minivid/fd.py`) of val
against train (the real-vs-real floor), against val with shuffled frames and against noise.
"""
import argparse
import json
import os
import sys

import numpy as np


def print_table(title, rows):
    """rows: list of (name, value) pairs; floats get 4 significant digits."""
    width = max(len(str(k)) for k, _ in rows)
    print(f"\n{title}\n" + "-" * (width + 16))
    for k, v in rows:
        v = f"{v:.4g}" if isinstance(v, float) else v
        print(f"{str(k):<{width}}  {v}")
    print("-" * (width + 16))


def _need(path, fix):
    if not os.path.exists(path):
        sys.exit(f"error: {path} not found. {fix}")


def eval_data(args):
    """Adherence of real and caption-swapped val clips; FD floor and contrasts."""
    from minivid import checker, fd

    val_m = os.path.join(args.data, "val", "clips.jsonl")
    _need(val_m, f"Make the tiny data first: python -m minivid.world --out {args.data}")
    val, val_specs = fd.load_clips(val_m)
    caps = [json.loads(line)["caption"] for line in open(val_m)]
    n = len(val)
    real = [checker.adherence(val[i], caps[i]) for i in range(n)]
    swapped = [checker.adherence(val[i], caps[(i + n // 2) % n]) for i in range(n)]

    train, train_specs = fd.load_clips(os.path.join(args.data, "train", "clips.jsonl"))
    probe = fd.load_or_train_probe(args.data, train, train_specs, steps=args.probe_steps)
    acc = fd.accuracy(probe, val, val_specs)
    rng = np.random.default_rng(0)
    f_val = fd.features(probe, val)
    f_train = fd.features(probe, train)  # all of train: less estimator bias than 512
    shuffled = np.stack([v[rng.permutation(len(v))] for v in val])  # same frames, wrong order
    noise = rng.integers(0, 256, val.shape, dtype=np.uint8)
    fig = {
        "adherence_real_val": float(np.mean(real)),
        "adherence_swapped_captions": float(np.mean(swapped)),
        "fd_val_vs_train": fd.frechet(f_val, f_train),
        "fd_val_vs_shuffled_frames": fd.frechet(f_val, fd.features(probe, shuffled)),
        "fd_val_vs_noise": fd.frechet(f_val, fd.features(probe, noise)),
        "probe_val_accuracy_mean": float(np.mean(list(acc.values()))),
        "val_clips": n,
    }
    print_table(f"yardstick on {args.data} (val clips: {n})", list(fig.items()))
    print_table("probe accuracy per head (val)", list(acc.items()))
    return fig


def eval_vae(args):
    """Compression, PSNR/SSIM, speed and streaming latency of a VAE (minivid/vae_bench.py)."""
    from minivid.vae_bench import evaluate_vae

    _need(args.ckpt, "Train one first: python train_vae.py --preset tiny-t4")
    fig = evaluate_vae(args.ckpt, args.data, device=args.device)
    print_table(f"VAE {args.ckpt} on {args.data}/val", list(fig.items()))
    return fig


def eval_dit(args):
    from minivid.dit_bench import dit_report

    _need(args.ckpt, "Train one first: python train_dit.py --stage image ... (see its docstring)")
    fig = dit_report(args.ckpt, args.data, steps_list=args.steps, n=args.n, cfg=args.cfg,
                     seed=args.seed, sampler=args.sampler, device=args.device, vae=args.vae)
    print_table(f"DiT {args.ckpt} ({args.n} prompts per set, cfg {args.cfg}, {args.sampler})",
                list(fig.items()))
    return fig


def eval_throughput(args):
    from minivid.common import pick_device
    from minivid.dit_bench import throughput

    fig = throughput(args.preset, args.frames, args.latent_hw, args.channels, args.batch_size,
                     pick_device(args.device), args.steps, args.compile, args.precision)
    print_table(f"DiT training throughput, preset {args.preset}, batch {args.batch_size}",
                list(fig.items()))
    return fig


def eval_distill(args):
    from minivid.distill_bench import distill_report

    _need(args.teacher, "Train one first: python train_dit.py --stage video ... (README)")
    _need(args.student, "Distil one first: python distill.py --teacher <ckpt> --out runs/distill")
    fig = distill_report(args.teacher, args.student, args.data, args.n, args.cfg,
                         args.teacher_steps, args.strength, args.device, args.gif)
    table = fig.pop("table")
    cols = [("calls_per_clip", "calls"), ("adherence_val", "adh val"), ("adherence_test", "adh test"),
            ("fvd_val", "FVD val"), ("ms_b1_total", "ms b1"), ("ms_b1_text", "text"),
            ("ms_b1_dit", "DiT"), ("ms_b1_vae", "VAE"), ("ms_b64_total", "ms b64"),
            ("ms_b64_text", "text"), ("ms_b64_dit", "DiT"), ("ms_b64_vae", "VAE")]
    print(f"\nteacher (cfg {args.cfg}, Euler) vs student (guidance {fig['student_cfg_folded']} "
          f"folded in), {args.n} prompts per set; ms per clip, one at a time (b1) and 64 at once")
    print(f"{'':13}" + "".join(f"{h:>9}" for _, h in cols))
    for name, row in table:
        print(f"{name:13}" + "".join(f"{row[k]:9.3g}" for k, _ in cols))
    print_table(f"one-step transfer at strength {args.strength} ({args.n} val clips, edited "
                "colour or background)", [(k, v) for k, v in fig.items() if "transfer" in k
                                          or k == "original_vs_new_caption"])
    return fig


def eval_extend(args):
    from minivid.extend_bench import extend_report, plot

    _need(args.ckpt, "Train one first: python train_dit.py --stage extend --init-from "
          "runs/dit_video/ckpt.pt ... (README, clip extension)")
    _need(os.path.join(args.data, "val", "long.jsonl"), "Make the long clips: python -m "
          f"minivid.world --out {args.data} (it writes val/long.jsonl)")
    from minivid.checkpoint import load_checkpoint
    ck = load_checkpoint(args.ckpt, kind="dit")
    if not ck["config"]["dit"].get("context_kernels") or ck["extra"].get("distilled"):
        sys.exit(f"error: --ckpt {args.ckpt} is not a clip-extension teacher (train_dit.py "
                 "--stage extend); pass that, and a distilled student of it with --student")
    if args.student:
        _need(args.student, "Distil one first: python distill.py --teacher runs/extend/ckpt.pt")
        counts = (load_checkpoint(args.student, kind="dit")["extra"].get("distilled") or
                  {}).get("step_counts")
        if not counts:
            sys.exit(f"error: --student {args.student} is not a distilled student (distill.py)")
        if args.student_steps is not None and args.student_steps not in counts:
            sys.exit(f"error: --student-steps {args.student_steps}: this student was distilled "
                     f"for {counts} steps")
    try:
        fig = extend_report(args.ckpt, args.data, args.videos, args.clips, args.steps, args.cfg,
                            args.window, args.seed, args.student, args.student_steps,
                            args.device, args.gif, tuple(args.strategies))
    except ValueError as e:
        sys.exit(f"error: {e}")
    print(f"\none prompt per video, {args.videos} videos, {args.steps} steps + CFG {args.cfg} a "
          "clip; ms per clip per video (videos batched); identity and static adherence of clip N")
    print(f"{'strategy':12}{'N':>4}{'tokens':>8}{'ms':>9}{'peak MB':>9}{'identity':>10}"
          f"{'static adh':>11}")
    for name, res in fig["strategies"].items():
        for r in res["per_clip"]:
            if r["clip"] in (1, 2, 4, 8, 12, 16) or r["clip"] == args.clips:
                mb = "n/a" if r["peak_mb"] is None else f"{r['peak_mb']:.0f}"
                print(f"{name:12}{r['clip']:4}{r['tokens']:8}{r['ms']:9.1f}{mb:>9}"
                      f"{r['identity']:10.3f}{r['static_adherence']:11.3f}")
    rows = []
    for name, res in fig["strategies"].items():
        per = res["per_clip"]
        rows += [(f"{name}: identity, mean over clips 2..{args.clips}",
                  float(np.mean([r["identity"] for r in per[1:]])) if len(per) > 1 else 1.0),
                 (f"{name}: boundary jump / within-clip motion (px)",
                  f"{res['boundary_jump_px']:.2f} / {res['within_clip_motion_px']:.2f}"),
                 (f"{name}: ms clip {per[-1]['clip']} / ms clip {per[min(1, len(per) - 1)]['clip']}",
                  per[-1]["ms"] / per[min(1, len(per) - 1)]["ms"])]
    print_table("consistency and cost", rows)
    for key, title in (("per_clip_prompts", "one prompt per clip (val long clips, random turns)"),
                       ("four_prompts", "four prompts: a square path")):
        res = fig[key]
        print_table(f"{title}: adherence per clip (generated / real clips)",
                    [(f"clip {m + 1}", f"{a:.3f} / {r:.3f}   identity {i:.3f}") for m, (a, r, i) in
                     enumerate(zip(res["pack"]["adherence"], res["real"]["adherence"],
                                   res["pack"]["identity"]))])
    if args.student:
        st = fig["student"]
        per = st["per_clip"]
        print_table(f"distilled student, {st['steps']} step(s) a clip, pack", [
            ("identity, mean over clips 2..N", float(np.mean([r["identity"] for r in per[1:]]))),
            ("boundary jump / within-clip motion (px)",
             f"{st['boundary_jump_px']:.2f} / {st['within_clip_motion_px']:.2f}"),
            ("four prompts: adherence per clip", " ".join(f"{a:.3f}" for a in
                                                          st["four_prompts"]["adherence"])),
            ("ms per clip per video (clip 2, clip N)", f"{per[1]['ms']:.1f}, {per[-1]['ms']:.1f}"),
            ("seconds of video per second of compute", st["video_seconds_per_second"])])
    if args.plot:
        print(f"wrote {plot(fig, args.plot)}")
    return fig


def eval_rewrite(args):
    """With vs without prompt rewriting, and rewriting vs a better DiT (minivid/rewrite_bench.py)."""
    from minivid.llm_api import ApiRewriter
    from minivid.rewrite import Rewriter
    from minivid.rewrite_bench import plot, rewrite_report

    _need(args.ckpt, "Train one first: python train_dit.py --stage video ... (README)")
    _need(args.rewriter, "Train the rewriter first: python train_rewriter.py --out runs/rewriter")
    if args.better:
        _need(args.better, "Train it first, e.g. python train_dit.py --stage video --init-from "
              "runs/dit_image/ckpt.pt --steps 2998 --out runs/dit_video_2x (README)")
    _need(os.path.join(args.data, "val", "clips.jsonl"),
          f"Make the tiny data first: python -m minivid.world --out {args.data}")
    _need(args.prompts, "The hand-written prompts ship in prompts/user_prompts.jsonl")
    rewriter = Rewriter.load(args.rewriter, args.temperature)
    if args.backend == "openai":
        rewriter = ApiRewriter(args.llm_url, args.llm_model, timeout=args.llm_timeout,
                               fallback=rewriter)
    fig = rewrite_report(args.ckpt, rewriter, args.better, args.data, args.n, args.steps,
                         args.cfg, args.seeds, args.device, args.gif, args.prompts)
    conds = [c for c in ("raw", "rewritten", "better_raw", "better_rewritten", "generator")
             if f"val_{c}_adherence" in fig or f"user_{c}_adherence" in fig]
    print(f"\n{args.n} sparse prompts per set (user: {fig['user_scored_prompts'] // args.seeds} "
          f"that state an attribute, x {args.seeds} seeds), {args.steps} Euler steps, CFG "
          f"{args.cfg}; adherence to what the user stated / tiny FVD to the real clips")
    print(f"{'set':8}" + "".join(f"{c.replace('_', ' '):>24}" for c in conds))
    for s in ("val", "test", "user", "dense"):
        cells = []
        for c in conds:
            a, f = fig.get(f"{s}_{c}_adherence"), fig.get(f"{s}_{c}_fvd")
            cells.append("" if a is None else f"{a:.3f}" + ("" if f is None else f" / {f:.1f}"))
        print(f"{s:8}" + "".join(f"{c:>24}" for c in cells))
    rows = [("guard accepted (no template)", fig["guard_accepted"]),
            ("guard accepted at the first sample", fig["guard_first_sample"]),
            (f"distinct scenes per prompt ({args.seeds} seeds)", fig["distinct_scenes_per_prompt"]),
            ("ms per rewrite (median)", fig["rewrite_ms_median"]),
            ("user: rewritten minus the world's captions of the same scenes",
             fig["user_rewritten_minus_generator_captions"])]
    for s in ("val", "test"):
        rows.append((f"{s}: FVD gain from rewriting", fig[f"{s}_rewriting_fvd_gain"]))
        if args.better:
            rows.append((f"{s}: FVD gain from the better DiT", fig[f"{s}_better_dit_fvd_gain"]))
            rows.append((f"{s}: the larger gain", fig[f"{s}_larger_fvd_gain"]))
    print_table("the rewriter, and the claim", rows)
    if args.plot:
        print(f"wrote {plot(fig, args.plot)}")
    return fig


def eval_captions(args):
    """The blind-person test and the caption experiment (minivid/caption_bench.py)."""
    from minivid.caption_bench import captions_report, plot

    _need(os.path.join(args.data, "val", "clips.jsonl"),
          f"Make the tiny data first: python -m minivid.world --out {args.data}")
    if args.captioner:
        _need(args.captioner, "Train it first: python -m minivid.captioner train --minutes 3")
    dits = {}
    for item in args.dits or []:
        name, _, path = item.partition("=")
        if not path:
            sys.exit(f"error: --dits {item!r}: write name=path, e.g. dense=runs/captions/dense/ckpt.pt")
        _need(path, "Train it first (README: the caption experiment)")
        dits[name] = path
    fig = captions_report(args.data, args.captioner, dits, args.n, args.steps, args.cfg)
    bp = fig["blind_person"]
    print(f"\nthe blind-person test on {args.n} val clips: parse the caption, guess what it "
          "leaves open, render, compare")
    print(f"{'caption':12}{'states':>8}{'true':>8}{'rebuild':>9}")
    for kind, r in bp.items():
        print(f"{kind:12}{r['states']:8.2f}{r['true']:8.3f}{r['rebuild']:9.3f}")
    for kind, caps in fig.pop("examples").items():
        print(f"  {kind}: {caps[0]}")
    rows = [(k, v) for k, v in fig.items() if k.startswith("captioner_")]
    if rows:
        print_table("the captioner", rows)
    if dits:
        print_table(f"DiTs trained on each caption kind, scored on {args.n} dense val prompts "
                    "(adherence / tiny FVD)", [(k, f"{v['adherence']:.3f} / {v['fvd']:.1f}")
                                               for k, v in fig["dits"].items()])
    if args.plot:
        print(f"wrote {plot(fig, args.plot)}")
    return fig


def eval_compare(args):
    from minivid.dit_bench import compare

    for path in (args.finetuned, args.scratch):
        _need(path, "Train both runs first (README, DiT section: the image-first control)")
    fig = compare(args.finetuned, args.scratch, args.out)
    print_table("image first vs from scratch (val loss curves)", list(fig.items()))
    ratio = "never" if fig["step_ratio"] is None else f"{fig['step_ratio']:.0%} of the steps"
    print(f"from the image model: reaches the scratch run's final val loss "
          f"{fig['scratch_final_loss']:.4f} at step {fig['steps_to_reach']} ({ratio})")
    return fig


def main(argv=None):
    p = argparse.ArgumentParser(description="minivid evaluations: each prints a table, then "
                                "one JSON line of figures.")
    sub = p.add_subparsers(dest="what", required=True)
    fmt = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter}
    d = sub.add_parser("data", **fmt, help="check the yardsticks (checker, tiny FVD) on real data")
    d.add_argument("--data", default="tiny_data", help="tiny-world folder (default tiny_data)")
    d.add_argument("--probe-steps", type=int, default=500, help="FD probe training steps")
    v = sub.add_parser("vae", **fmt, help="compression, PSNR/SSIM, speed and latency of a VAE")
    v.add_argument("--ckpt", required=True, help="VAE checkpoint (train_vae.py output)")
    v.add_argument("--data", default="tiny_data", help="tiny-world folder (val split)")
    v.add_argument("--device", default="cpu", help="cpu | cuda")
    t = sub.add_parser("dit", **fmt, help="adherence, FD vs floor, speed and MFU of a text-to-video DiT")
    t.add_argument("--ckpt", required=True, help="DiT checkpoint (train_dit.py output)")
    t.add_argument("--data", default="tiny_data", help="tiny-world folder (val/test prompts)")
    t.add_argument("--vae", default=None, help="VAE checkpoint (default: the one recorded)")
    t.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 100],
                   help="sampler step counts to score")
    t.add_argument("--n", type=int, default=128, help="prompts per set (val, test)")
    t.add_argument("--cfg", type=float, default=2.0,
                   help="classifier-free guidance scale (2: the best of 1.5, 2, 3, 4 here)")
    t.add_argument("--sampler", default="euler", choices=["euler", "heun"], help="ODE step")
    t.add_argument("--seed", type=int, default=0, help="noise seed")
    t.add_argument("--device", default="cpu", help="cpu | cuda")
    r = sub.add_parser("throughput", **fmt, help="training tokens/s, samples/s, peak memory and MFU "
                       "of a DiT preset on this device (random weights, no data needed)")
    r.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"], help="DiT size")
    r.add_argument("--batch-size", type=int, default=64, help="examples per step")
    r.add_argument("--frames", type=int, default=5, help="latent frames T' (5: a 16-frame clip "
                   "through a tf=4 VAE; 1: an image)")
    r.add_argument("--latent-hw", type=int, default=8, help="latent height = width (8: 32x32 "
                   "pixels through a patch-4 VAE)")
    r.add_argument("--channels", type=int, default=3, help="latent channels")
    r.add_argument("--steps", type=int, default=8, help="timed steps (after 2 warm-up steps)")
    r.add_argument("--compile", action="store_true", help="torch.compile the DiT first")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda")
    r.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="autocast dtype, as train_dit.py --precision (common.pick_precision)")
    c = sub.add_parser("compare", **fmt, help="does the image stage pay off? Steps a video run "
                       "from the image model needs to reach a scratch run's final val loss")
    c.add_argument("finetuned", help="video run started from the image checkpoint")
    c.add_argument("scratch", help="video run of the same length from scratch")
    c.add_argument("--out", default=None, help="PNG with both curves")
    s = sub.add_parser("distill", **fmt, help="teacher vs distilled student: calls, ms per "
                       "clip by stage, adherence, tiny FVD; one-step image-to-image transfer")
    s.add_argument("--teacher", required=True, help="the train_dit.py checkpoint")
    s.add_argument("--student", required=True, help="the distill.py checkpoint")
    s.add_argument("--data", default="tiny_data", help="tiny-world folder (val/test prompts)")
    s.add_argument("--n", type=int, default=128, help="prompts per set (val, test)")
    s.add_argument("--cfg", type=float, default=2.0, help="the teacher's guidance scale")
    s.add_argument("--teacher-steps", type=int, nargs="+", default=[100, 8, 4, 2, 1],
                   help="teacher Euler step counts to score")
    s.add_argument("--strength", type=float, default=0.5, help="transfer: noise level of the "
                   "init clip, in (0, 1]")
    s.add_argument("--gif", default=None, help="before/after transfer GIF to write")
    s.add_argument("--device", default="cpu", help="cpu | cuda")
    e = sub.add_parser("extend", **fmt, help="clip extension: context tokens, ms and memory "
                       "per clip for full / window / pack and a prompt-only baseline; identity, "
                       "boundary continuity, per-clip adherence, drift; plot")
    e.add_argument("--ckpt", required=True, help="the train_dit.py --stage extend checkpoint")
    e.add_argument("--student", default=None, help="a distill.py student of it, to score too")
    e.add_argument("--student-steps", type=int, default=None, help="student steps per clip "
                   "(default: its fewest)")
    e.add_argument("--data", default="tiny_data", help="tiny-world folder (val/long.jsonl)")
    e.add_argument("--videos", type=int, default=16, help="videos per set")
    e.add_argument("--clips", type=int, default=16, help="clips per one-prompt video")
    e.add_argument("--steps", type=int, default=32, help="teacher Euler steps per clip")
    e.add_argument("--cfg", type=float, default=2.0, help="guidance scale")
    e.add_argument("--window", type=int, default=4, help="latent frames the window strategy keeps")
    e.add_argument("--strategies", nargs="+", default=["full", "window", "pack", "prompt-only"],
                   choices=["full", "window", "pack", "prompt-only"], help="what to compare")
    e.add_argument("--seed", type=int, default=0, help="noise seed")
    e.add_argument("--plot", default=None, help="PNG of tokens and ms vs video length")
    e.add_argument("--gif", default=None, help="GIF: strategies side by side, 4-prompt videos")
    e.add_argument("--device", default="cpu", help="cpu | cuda")
    w = sub.add_parser("rewrite", **fmt, help="prompt rewriting: with vs without on sparse and "
                       "hand-written prompts (adherence to what the user stated, tiny FVD), "
                       "guard acceptance, diversity, latency; rewriting vs a better DiT")
    w.add_argument("--ckpt", required=True, help="the DiT (train_dit.py --stage video)")
    w.add_argument("--rewriter", default="runs/rewriter/ckpt.pt", help="train_rewriter.py output")
    w.add_argument("--better", default=None, help="a better DiT to compare the gain with (e.g. "
                   "the video stage trained twice as long)")
    w.add_argument("--data", default="tiny_data", help="tiny-world folder (val/test prompts)")
    w.add_argument("--prompts", default="prompts/user_prompts.jsonl", help="hand-written prompts")
    w.add_argument("--n", type=int, default=128, help="sparse prompts per set (val, test)")
    w.add_argument("--steps", type=int, default=32, help="Euler steps")
    w.add_argument("--cfg", type=float, default=2.0, help="guidance scale")
    w.add_argument("--seeds", type=int, default=4, help="rewrites per prompt for diversity")
    w.add_argument("--temperature", type=float, default=0.8, help="rewriter sampling temperature")
    w.add_argument("--backend", default="local", choices=["local", "openai"], help="local: the "
                   "tiny LM; openai: an OpenAI-compatible endpoint (falls back to local)")
    w.add_argument("--llm-url", default=None, help="endpoint base URL (minivid/llm_api.py)")
    w.add_argument("--llm-model", default=None, help="endpoint model name")
    w.add_argument("--llm-timeout", type=float, default=20.0, help="seconds per endpoint try")
    w.add_argument("--gif", default=None, help="GIF: typed vs rewritten (vs better DiT)")
    w.add_argument("--plot", default=None, help="PNG: FVD and adherence per condition")
    w.add_argument("--device", default="cpu", help="cpu | cuda")
    k = sub.add_parser("captions", **fmt, help="why captions must be dense: the blind-person "
                       "test (dense, sparse, captioner, title-like captions) and DiTs trained "
                       "on each kind")
    k.add_argument("--data", default="tiny_data", help="tiny-world folder (val/test clips)")
    k.add_argument("--captioner", default=None, help="python -m minivid.captioner train output")
    k.add_argument("--dits", nargs="*", default=None, metavar="NAME=CKPT", help="DiTs trained on "
                   "each caption kind, e.g. dense=runs/captions/dense/ckpt.pt")
    k.add_argument("--n", type=int, default=128, help="val clips / prompts")
    k.add_argument("--steps", type=int, default=32, help="Euler steps for the DiTs")
    k.add_argument("--cfg", type=float, default=2.0, help="guidance scale")
    k.add_argument("--plot", default=None, help="PNG: blind-person test and the DiTs")
    args = p.parse_args(argv)
    if args.what == "rewrite" and (args.n < 2 or args.steps < 1 or args.seeds < 1
                                   or args.temperature < 0):
        p.error("rewrite: need --n >= 2, --steps >= 1, --seeds >= 1 and --temperature >= 0")
    if args.what == "extend" and (args.videos < 1 or args.clips < 2 or args.steps < 1
                                  or args.window < 1):
        p.error("extend: need --videos >= 1, --clips >= 2, --steps >= 1 and --window >= 1")
    fig = {"data": eval_data, "vae": eval_vae, "dit": eval_dit, "throughput": eval_throughput,
           "compare": eval_compare, "distill": eval_distill, "extend": eval_extend,
           "rewrite": eval_rewrite, "captions": eval_captions}[args.what](args)
    print(json.dumps({"eval": args.what, **fig}))


if __name__ == "__main__":
    main()
