"""What prompt rewriting buys, measured: the talk's claim that the rewriter matters more than
the diffusion model, head to head on the tiny world.

Where it sits: after train_rewriter.py; `python -m minivid.evaluate rewrite` prints
`rewrite_report` as a table and one JSON line.

Prompt sets (what users type, never the dense captions the DiT trained on):
  val    the val clips' sparse captions ("a red circle", "blue square moves to the left")
  test   the compositional split's sparse captions (held-out colour + shape pairs)
  user   prompts/user_prompts.jsonl: hand-written, new sentence structures, synonyms, typos,
         partial descriptions, unknown words (the expected attributes are in the file); so
         few that each is generated --seeds times (its rewrites at seeds 0..n-1, each with
         its own noise)
  dense  the val clips' generator captions: the reference the DiT is at home with
Conditions, the same noise for each prompt in every condition (paired):
  raw              the base DiT on the prompt as typed
  rewritten        the base DiT on rewrite(prompt, seed=0)
  better_raw       a better DiT (--better: e.g. trained twice as long) on the prompt as typed
  better_rewritten the better DiT on the rewrite (val and test)
  generator        (user set) the world's own dense caption of the scene each rewrite
                   describes: the bar for the rewriter's wording (same scenes, same noise)
Per set and condition: adherence to the attributes the USER stated (prompt_parse of the raw
prompt; the rewrite is never scored against what it made up itself) and tiny FVD to the
real clips of that split (minivid/fd.py; not for the 48 user prompts: too few for 64-d
feature statistics). For the rewriter: guard acceptance (samples that passed without the
template), first-sample acceptance, distinct scenes per prompt over --seeds seeds, and the
latency of one rewrite. The claim: FVD(raw) / FVD(rewritten) against FVD(raw) /
FVD(better_raw), and the same for adherence, on the same prompts.

    python -m minivid.evaluate rewrite --ckpt runs/dit_video/ckpt.pt \\
        --better runs/dit_video_2x/ckpt.pt --rewriter runs/rewriter/ckpt.pt
"""
import json
import os
import statistics

import numpy as np
from matplotlib.figure import Figure

from minivid import bench, checker, fd
from minivid.captions import dense_caption
from minivid.data import save_grid
from minivid.llm_api import ApiRewriter
from minivid.prompt_parse import parse
from minivid.rewrite import Rewriter
from minivid.sampling import Pipeline
from minivid.world import Scene

USER_PROMPTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "prompts", "user_prompts.jsonl")


def load_sets(data_dir, n, user_file=USER_PROMPTS) -> dict:
    """-> {set: {"prompts": [...], "real": the split of its real clips, or None}}; dense
    holds the generator captions of the same val clips the val set's sparse captions describe."""
    sets = {}
    for split in ("val", "test"):
        rows = bench.rows(data_dir, split, n=n)
        sets[split] = {"prompts": [r["sparse"] for r in rows], "real": split}
        if split == "val":
            sets["dense"] = {"prompts": [r["caption"] for r in rows], "real": split}
    with open(user_file) as f:
        sets["user"] = {"prompts": [json.loads(line)["prompt"] for line in f], "real": None}
    return sets


def adherence_to_stated(videos, prompts) -> tuple[float, int]:
    """Mean fraction of each prompt's stated attributes the clip shows, over the prompts that
    state at least one (-> mean, count). A rewrite is scored against the RAW prompt."""
    scores = []
    for video, prompt in zip(videos, prompts):
        hits, total = checker.score(checker.detect(video), parse(prompt).stated())
        if total:
            scores.append(hits / total)
    return (float(np.mean(scores)) if scores else float("nan")), len(scores)


def rewrite_all(rewriter, prompts, seeds) -> tuple[list, list]:
    """-> (rewrites at seed 0, one list per prompt of the rewrites at every seed), timed."""
    per_prompt, ms = [], []
    for p in prompts:
        row = []
        for s in range(seeds):
            t0 = bench.clock()
            row.append(rewriter(p, seed=s))
            ms.append(1e3 * (bench.clock() - t0))
        per_prompt.append(row)
    return [row[0] for row in per_prompt], per_prompt, ms


def rewrite_report(ckpt, rewriter, better=None, data_dir="tiny_data", n=128, steps=32,
                   cfg=2.0, seeds=4, device="cpu", gif=None, user_file=USER_PROMPTS) -> dict:
    base = Pipeline(ckpt, device=device)
    pipes = {"": base}
    if better:
        pipes["better_"] = Pipeline(better, device=device)
    frames = base.ckpt["extra"]["frames"]
    sets = load_sets(data_dir, n, user_file)
    probe = fd.load_or_train_probe(data_dir)
    out = {"ckpt": str(ckpt), "better": better and str(better), "n": n, "steps": steps,
           "cfg": cfg, "seeds": seeds}

    # 1. the rewrites (every sparse set, --seeds seeds each; seed 0 is what gets generated)
    all_rewrites, latency, distinct = [], [], []
    for name in ("val", "test", "user"):
        first, per_prompt, ms = rewrite_all(rewriter, sets[name]["prompts"], seeds)
        sets[name]["rewrites"] = first
        if name == "user":  # few prompts: generate every seed's rewrite, each prompt `seeds` x
            out["user_prompts_with_unknown_words"] = sum(bool(r.unknown) for r in first)
            sets[name]["prompts"] = [p for p in sets[name]["prompts"] for _ in range(seeds)]
            sets[name]["rewrites"] = [r for row in per_prompt for r in row]
        all_rewrites += [r for row in per_prompt for r in row]
        latency += ms
        distinct += [len({json.dumps(r.scene, sort_keys=True) for r in row}) for row in per_prompt]
    out["guard_accepted"] = float(np.mean([r.source != "template" for r in all_rewrites]))
    out["guard_first_sample"] = float(np.mean([r.source != "template" and r.tries == 1
                                               for r in all_rewrites]))
    out["rewrites_scored"] = len(all_rewrites)
    out["distinct_scenes_per_prompt"] = float(np.mean(distinct))
    out["rewrite_ms_median"] = statistics.median(latency)

    # 2. generate every set in every condition, score against what the user stated
    videos = {}
    for name, s in sets.items():
        real = None
        if s["real"] is not None:
            real = bench.real_features(probe, data_dir, s["real"], frames)
        conditions = [("raw", s["prompts"])]
        if "rewrites" in s:
            conditions.append(("rewritten", [r.text for r in s["rewrites"]]))
        if name == "user":  # the world's own caption of each rewrite's scene: the fair bar
            rng = np.random.default_rng(0)
            conditions.append(("generator", [dense_caption(Scene.from_dict(r.scene), rng)
                                             for r in s["rewrites"]]))
        for prefix, pipe in pipes.items():
            if prefix and name == "dense":
                continue
            for cond, texts in conditions:
                if prefix and name == "user" and cond != "raw":
                    continue
                key = f"{name}_{prefix}{cond}"
                print(f"generating {key}: {len(texts)} clips", flush=True)
                v = pipe.generate(texts, frames, steps, cfg, seed=0)
                videos[key] = v
                out[f"{key}_adherence"], out[f"{name}_scored_prompts"] = \
                    adherence_to_stated(v, s["prompts"])
                if real is not None:
                    out[f"{key}_fvd"] = bench.fvd(probe, v, real)

    # 3. the claim, on the sparse val and test prompts
    for name in ("val", "test"):
        raw = out[f"{name}_raw_fvd"]
        out[f"{name}_rewriting_fvd_gain"] = raw / out[f"{name}_rewritten_fvd"]
        out[f"{name}_rewriting_adherence_change"] = (out[f"{name}_rewritten_adherence"]
                                                     - out[f"{name}_raw_adherence"])
        if better:
            out[f"{name}_better_dit_fvd_gain"] = raw / out[f"{name}_better_raw_fvd"]
            out[f"{name}_better_dit_adherence_change"] = (out[f"{name}_better_raw_adherence"]
                                                          - out[f"{name}_raw_adherence"])
            out[f"{name}_larger_fvd_gain"] = ("rewriting" if out[f"{name}_rewriting_fvd_gain"]
                                              > out[f"{name}_better_dit_fvd_gain"]
                                              else "better DiT")
    out["user_rewritten_minus_generator_captions"] = (out["user_rewritten_adherence"]
                                                      - out["user_generator_adherence"])
    if gif:
        m = 6
        keys = ["val_raw", "val_rewritten"] + (["val_better_raw"] if better else [])
        labels = [f"typed: {p}" for p in sets["val"]["prompts"][:m]]
        labels += [f"rewritten: {r.text}" for r in sets["val"]["rewrites"][:m]]
        labels += [f"better DiT, typed: {p}" for p in sets["val"]["prompts"][:m]] if better else []
        save_grid(gif, np.concatenate([videos[k][:m] for k in keys]), labels, cols=m)
    return out


def plot(fig: dict, path: str) -> str:
    """Two panels: tiny FVD (val, test) and adherence to the stated attributes (val, test,
    user) per condition; lower FVD and higher adherence are better."""
    conds = [c for c in ("raw", "rewritten", "better_raw", "better_rewritten")
             if f"val_{c}_adherence" in fig]
    f = Figure(figsize=(11, 3.8))
    axes = f.subplots(1, 2)
    for ax, metric, sets in ((axes[0], "fvd", ("val", "test")),
                             (axes[1], "adherence", ("val", "test", "user"))):
        for k, c in enumerate(conds):
            vals = [fig.get(f"{s}_{c}_{metric}", np.nan) for s in sets]
            ax.bar(np.arange(len(sets)) + 0.2 * k - 0.3, vals, 0.2, label=c.replace("_", " "))
        ax.set_xticks(range(len(sets)), sets)
        ax.set_title("tiny FVD to real clips (lower is better)" if metric == "fvd"
                     else "adherence to what the user stated")
        if metric == "fvd":
            ax.axhline(fig["dense_raw_fvd"], color="k", ls=":", lw=1, label="dense captions")
        else:
            ax.axhline(fig["dense_raw_adherence"], color="k", ls=":", lw=1,
                       label="dense captions")
            ax.set_ylim(0.0, 1.0)
    axes[0].legend(fontsize=8)
    return bench.save_figure(f, path)


# ----------------------------------------------------------------------------- the command
CONDITIONS = ("raw", "rewritten", "better_raw", "better_rewritten", "generator")


def add_args(sub) -> None:
    p = bench.command(sub, "rewrite", run, "prompt rewriting: with vs without on sparse and "
                      "hand-written prompts (adherence to what the user stated, tiny FVD), "
                      "guard acceptance, diversity, latency; rewriting vs a better DiT")
    p.add_argument("--ckpt", required=True, help="the DiT (train_dit.py --stage video)")
    p.add_argument("--rewriter", default="runs/rewriter/ckpt.pt", help="train_rewriter.py output")
    p.add_argument("--better", default=None, help="a better DiT to compare the gain with (e.g. "
                   "the video stage trained twice as long)")
    p.add_argument("--prompts", default="prompts/user_prompts.jsonl", help="hand-written prompts")
    p.add_argument("--seeds", type=int, default=4, help="rewrites per prompt for diversity")
    p.add_argument("--temperature", type=float, default=0.8, help="rewriter sampling temperature")
    p.add_argument("--backend", default="local", choices=["local", "openai"], help="local: the "
                   "tiny LM; openai: an OpenAI-compatible endpoint (falls back to local)")
    p.add_argument("--llm-url", default=None, help="endpoint base URL (minivid/llm_api.py)")
    p.add_argument("--llm-model", default=None, help="endpoint model name")
    p.add_argument("--llm-timeout", type=float, default=20.0, help="seconds per endpoint try")
    bench.shared_args(p, "data", "n", "steps", "cfg", "gif", "plot", "device",
                      help={"n": "sparse prompts per set (val, test)",
                            "gif": "GIF: typed vs rewritten (vs better DiT)",
                            "plot": "PNG: FVD and adherence per condition"})


def run(args) -> dict:
    bench.at_least(args, n=2, steps=1, seeds=1, temperature=0)
    bench.need(args.ckpt, "Train one first: python train_dit.py --stage video ... (README)")
    bench.need(args.rewriter, "Train the rewriter first: python train_rewriter.py --out "
               "runs/rewriter")
    if args.better:
        bench.need(args.better, "Train it first, e.g. python train_dit.py --stage video "
                   "--init-from runs/dit_image/ckpt.pt --steps 2998 --out runs/dit_video_2x "
                   "(README)")
    bench.need_data(args.data)
    bench.need(args.prompts, "The hand-written prompts ship in prompts/user_prompts.jsonl")
    rewriter = Rewriter.load(args.rewriter, args.temperature)
    if args.backend == "openai":
        rewriter = ApiRewriter(args.llm_url, args.llm_model, timeout=args.llm_timeout,
                               fallback=rewriter)
    fig = rewrite_report(args.ckpt, rewriter, args.better, args.data, args.n, args.steps,
                         args.cfg, args.seeds, args.device, args.gif, args.prompts)
    conds = [c for c in CONDITIONS if f"val_{c}_adherence" in fig or f"user_{c}_adherence" in fig]
    cells = {}
    for s in ("val", "test", "user", "dense"):
        cells[s] = []
        for c in conds:
            a, f = fig.get(f"{s}_{c}_adherence"), fig.get(f"{s}_{c}_fvd")
            cells[s].append("" if a is None else f"{a:.3f}" + ("" if f is None else f" / {f:.1f}"))
    bench.print_columns(f"{args.n} sparse prompts per set (user: "
                        f"{fig['user_scored_prompts'] // args.seeds} that state an attribute, "
                        f"x {args.seeds} seeds), {args.steps} Euler steps, CFG {args.cfg}; "
                        "adherence to what the user stated / tiny FVD to the real clips",
                        ["set"] + [c.replace("_", " ") for c in conds], cells.items())
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
    bench.print_table("the rewriter, and the claim", rows)
    if args.plot:
        print(f"wrote {plot(fig, args.plot)}")
    bench.print_json("rewrite", fig)
    return fig
