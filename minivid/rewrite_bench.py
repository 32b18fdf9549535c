"""What prompt rewriting buys, measured fairly: the talk's claim that the language model, not
the diffusion model, supplies most of the quality.

Where it sits: after train_rewriter.py (and the DiTs of the README's rewriting section);
`python -m minivid.evaluate rewrite` prints the tables and one JSON line.

Everything is scored against EXPECTATIONS WRITTEN BY HAND (minivid/expect.py), never against
a parser's reading of the prompt, on a frozen set (prompts/frozen_prompts.jsonl: 111 prompts
written without looking at the rewriter's training data, with negations, counts, relations,
sequences, typos, synonyms and impossible requests). Every figure is a mean over --seeds
seeds (each seed: its own rewrite samples and its own noise) with the spread (std) over them.

1. The text (no DiT): the LM rewriter's dense caption, read back by the caption parser, against
   the expectations; the baseline is the simplest rule that does the same job
   (rewrite.keyword_rewrite: spot the world's colour / size / shape / background words, fill
   the rest from the world's prior). Also, on generated prompts the model never trained on,
   the ordinary ones and the held-out synonyms and structures of minivid/user_language.py
   (their expectations: the generator's reading).
2. The clips (with --ckpt): the checker on the pixels of each condition, the same noise per
   prompt and seed in every condition:
     typed        the prompt as typed, on the dense-only DiT (--ckpt)
     typed_mixed  the prompt as typed, on the mixed-caption DiT (--mixed: word dropout and
                  user-language captions in training: the fair "without a rewriter")
     keywords     the keyword rule's rewrite, on --ckpt
     rewriter     the LM's rewrite, on --ckpt
     world        the world's own caption of the scene the LM's rewrite describes, on --ckpt:
                  the bar for the rewriter's wording
     typed_better the prompt as typed on --better (e.g. the mixed DiT trained twice as long)

    python -m minivid.evaluate rewrite --rewriter runs/rewriter/ckpt.pt \\
        --ckpt runs/dit_video/ckpt.pt --mixed runs/rewrite/dit_mixed/ckpt.pt \\
        --better runs/rewrite/dit_mixed_2x/ckpt.pt
"""
import os
import statistics
import warnings

import numpy as np
from matplotlib.figure import Figure

from minivid import bench, checker, expect, user_language
from minivid.captions import dense_caption, parse_caption
from minivid.llm_api import ApiRewriter
from minivid.rewrite import Rewriter, keyword_rewrite, read_reading
from minivid.sampling import Pipeline
from minivid.scene import Scene

FROZEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "prompts", "frozen_prompts.jsonl")
# Prompts that state what no template can know: the rule reads none of it.
BEYOND_KEYWORDS = ("negation", "count", "relation", "sequence", "impossible")
TRACED = ["a black circle on a white background", "a circle that is not red", "two red circles",
          "a small blue square to the left of the big yellow circle",
          "a red square above a green triangle", "a blue circle below a yellow square",
          "a purple triangle behind an orange circle", "a rose square",
          "first a red circle moves right, then it moves up", "a red blue circle",
          "three circles", "a dog"]


def text_checks(r, exp) -> list:
    """The checks of one rewrite's caption against an expectation. The note check counts the
    reading's notes (what the model decided the world cannot show); the list of words it was
    never taught is information, printed for every prompt with a typo, not a decision."""
    return expect.checks(parse_caption(r.text), exp, noted=bool(r.notes))


def expectation_of(reading: str) -> dict:
    """A generated prompt's expectation, from the generator's reading of it."""
    read = read_reading(reading)
    objs = []
    for o in read["objects"]:
        e = {k: v for k, v in o.items() if k not in ("not", "rel")}
        if o.get("not"):
            e["colour_not"] = o["not"]
        if o.get("rel"):
            e[o["rel"][0].replace(" ", "_")] = o["rel"][1]
        objs.append(e)
    return {"background": read["background"], "objects": objs, "note": bool(read["notes"])}


def mean_std(values) -> tuple[float, float]:
    v = [x for x in values if x == x]
    return (float(np.mean(v)), float(np.std(v))) if v else (float("nan"), float("nan"))


def text_report(rewriter, rows, seeds, n_generated, out) -> dict:
    """Part 1: the rewrites of every frozen prompt at every seed, by both rewriters, scored.
    -> {"rewriter": [per seed: [(row, Rewrite)]], "keywords": ...} for part 2."""
    rewrites = {"rewriter": [], "keywords": []}
    ms = []
    for s in range(seeds):
        for name, fn in (("rewriter", rewriter), ("keywords", keyword_rewrite)):
            done = []
            for row in rows:
                t0 = bench.clock()
                done.append(fn(row["prompt"], seed=s))
                if name == "rewriter":
                    ms.append(1e3 * (bench.clock() - t0))
            rewrites[name].append(done)
    tags = sorted({t for r in rows for t in r.get("tags", [])})
    for name, per_seed in rewrites.items():
        scored = [[text_checks(r, row["expect"]) for r, row in zip(done, rows)]
                  for done in per_seed]
        out[f"text_{name}"], out[f"text_{name}_std"] = mean_std(
            [expect.accuracy(cs) for cs in scored])
        for tag in tags + ["beyond_keywords"]:
            keep = [i for i, row in enumerate(rows) if tag in row.get("tags", []) or (
                tag == "beyond_keywords" and set(row.get("tags", [])) & set(BEYOND_KEYWORDS))]
            out[f"text_{name}_{tag}"] = mean_std(
                [expect.accuracy([cs[i] for i in keep]) for cs in scored])[0]
        kinds = [expect.by_kind(cs) for cs in scored]
        for kind in kinds[0]:
            out[f"text_{name}_check_{kind}"] = float(np.mean([k.get(kind, np.nan) for k in kinds]))
        out[f"text_{name}_spurious_notes"] = float(np.mean(
            [bool(r.notes) for done in per_seed for r, row in zip(done, rows)
             if not row["expect"].get("note")]))
    out["rewriter_ms_median"] = statistics.median(ms)
    first = rewrites["rewriter"][0]
    out["guard_accepted"] = float(np.mean([r.source == "local" for d in rewrites["rewriter"]
                                           for r in d]))
    out["traced"] = [{"prompt": r.prompt, "reading": r.reading, "rewrite": r.text,
                      "notes": r.warnings, "checks_passed": f"{sum(ok for _, ok in cs)}/{len(cs)}"}
                     for r, row in zip(first, rows) if row["prompt"] in TRACED
                     for cs in [text_checks(r, row["expect"])]]
    # generated prompts it never trained on: ordinary, held-out words, held-out structures
    for name, kw in (("ordinary", {}), ("held_out_words", {"held_words": True}),
                     ("held_out_structures", {"held_structures": True})):
        accs, exact = {"rewriter": [], "keywords": []}, []
        for s in range(seeds):
            rng = np.random.default_rng([1234, s, len(name)])
            pairs = [user_language.sample_pair(rng, **kw) for _ in range(n_generated)]
            for rw_name, fn in (("rewriter", rewriter), ("keywords", keyword_rewrite)):
                accs[rw_name].append(expect.accuracy(
                    [text_checks(fn(p, seed=s), expectation_of(r)) for p, r, _ in pairs]))
            exact.append(np.mean([rewriter.read(p)[0] == r for p, r, _ in pairs]))
        for rw_name, a in accs.items():
            out[f"generated_{name}_{rw_name}"], out[f"generated_{name}_{rw_name}_std"] = mean_std(a)
        out[f"generated_{name}_reading_exact"] = float(np.mean(exact))
    return rewrites


def clip_report(rows, rewrites, seeds, ckpt, mixed, better, steps, cfg, device, out) -> dict:
    """Part 2: every condition's clips, scored on pixels against the expectations."""
    base = Pipeline(ckpt, device=device)
    pipes = {"": base, "mixed": mixed and Pipeline(mixed, device=device),
             "better": better and Pipeline(better, device=device)}
    frames = base.ckpt["extra"]["frames"]
    prompts = [row["prompt"] for row in rows]
    videos = {}
    for s in range(seeds):
        lm = rewrites["rewriter"][s]
        rng = np.random.default_rng(s)
        conditions = {
            "typed": ("", prompts), "typed_mixed": ("mixed", prompts),
            "keywords": ("", [r.text for r in rewrites["keywords"][s]]),
            "rewriter": ("", [r.text for r in lm]),
            "world": ("", [dense_caption(Scene.from_dict(r.scene), rng) for r in lm]),
            "typed_better": ("better", prompts)}
        for cond, (pipe, texts) in conditions.items():
            if not pipes[pipe]:
                continue
            print(f"seed {s}: generating {cond} ({len(texts)} clips)", flush=True)
            v = pipes[pipe].generate(texts, frames, steps, cfg, seed=s)
            videos.setdefault(cond, []).append(v)
            cs = [expect.checks(checker.detect(clip), row["expect"]) for clip, row in zip(v, rows)]
            out.setdefault(f"clips_{cond}_seeds", []).append(expect.accuracy(cs))
            keep = [i for i, row in enumerate(rows)
                    if set(row.get("tags", [])) & set(BEYOND_KEYWORDS)]
            out.setdefault(f"clips_{cond}_beyond_keywords_seeds", []).append(
                expect.accuracy([cs[i] for i in keep]))
    for cond in [k[6:-6] for k in list(out) if k.startswith("clips_") and k.endswith("_seeds")
                 and "beyond" not in k]:
        out[f"clips_{cond}"], out[f"clips_{cond}_std"] = mean_std(out[f"clips_{cond}_seeds"])
        out[f"clips_{cond}_beyond_keywords"] = mean_std(
            out[f"clips_{cond}_beyond_keywords_seeds"])[0]
    if "clips_world" in out:
        out["clips_rewriter_minus_world"] = out["clips_rewriter"] - out["clips_world"]
        for cond in ("typed", "typed_mixed", "typed_better"):
            if f"clips_{cond}" in out:
                out[f"clips_{cond}_minus_world"] = out[f"clips_{cond}"] - out["clips_world"]
    return videos


def plot(fig: dict, path: str) -> str:
    """Two panels: text accuracy (LM vs keywords) per tag; clip accuracy per condition."""
    f = Figure(figsize=(12, 4))
    a, b = f.subplots(1, 2)
    tags = sorted({k.split("_", 2)[2] for k in fig if k.startswith("text_rewriter_")
                   and isinstance(fig[k], float) and "check" not in k and "std" not in k
                   and "spurious" not in k})
    for k, name in enumerate(("rewriter", "keywords")):
        a.bar(np.arange(len(tags)) + 0.4 * k - 0.2, [fig.get(f"text_{name}_{t}", np.nan)
                                                    for t in tags], 0.4, label=name)
    a.set_xticks(range(len(tags)), tags, rotation=60, fontsize=7)
    a.set_ylim(0, 1)
    a.set_title("the rewrite's caption vs hand-written expectations")
    a.legend(fontsize=8)
    conds = [c for c in ("typed", "typed_mixed", "typed_better", "keywords", "rewriter", "world")
             if f"clips_{c}" in fig]
    b.bar(range(len(conds)), [fig[f"clips_{c}"] for c in conds],
          yerr=[fig[f"clips_{c}_std"] for c in conds], capsize=3)
    b.set_xticks(range(len(conds)), [c.replace("_", "\n") for c in conds], fontsize=8)
    b.set_ylim(0, 1)
    b.set_title("clips: checks passed on pixels (mean, std over seeds)")
    f.tight_layout()
    return bench.save_figure(f, path)


# ----------------------------------------------------------------------------- the command
def add_args(sub) -> None:
    p = bench.command(sub, "rewrite", run, "prompt rewriting, fairly: the LM rewriter vs the "
                      "keyword rule on a frozen hand-written prompt set (text), and, with "
                      "--ckpt, clips from typed prompts, rewrites and the world's captions")
    p.add_argument("--rewriter", default="runs/rewriter/ckpt.pt", help="train_rewriter.py output")
    p.add_argument("--prompts", default=FROZEN, help="frozen prompts with hand-written "
                   "expectations (minivid/expect.py)")
    p.add_argument("--ckpt", default=None, help="the dense-only DiT (train_dit.py --stage "
                   "video); without it, only the text part runs")
    p.add_argument("--mixed", default=None, help="the mixed-caption DiT (--word-dropout, "
                   "--user-captions): typed prompts on it are the fair 'no rewriter'")
    p.add_argument("--better", default=None, help="a DiT trained longer (typed prompts on it)")
    p.add_argument("--seeds", type=int, default=3, help="seeds: rewrite samples and noise")
    p.add_argument("--generated", type=int, default=96, help="generated prompts per part "
                   "(ordinary, held-out words, held-out structures) per seed")
    p.add_argument("--n", type=int, default=None, help="the first n frozen prompts (default: "
                   "all; fewer for a quick run)")
    p.add_argument("--temperature", type=float, default=0.8, help="rewriter sampling temperature")
    p.add_argument("--backend", default="local", choices=["local", "openai"], help="local: the "
                   "tiny LM; openai: an OpenAI-compatible endpoint (falls back to local)")
    p.add_argument("--llm-url", default=None, help="endpoint base URL (minivid/llm_api.py)")
    p.add_argument("--llm-model", default=None, help="endpoint model name")
    p.add_argument("--llm-timeout", type=float, default=20.0, help="seconds per endpoint try")
    bench.shared_args(p, "steps", "cfg", "plot", "device",
                      help={"plot": "PNG: text accuracy per tag, clip accuracy per condition"})


def run(args) -> dict:
    bench.at_least(args, steps=1, seeds=1, temperature=0, generated=1)
    bench.need(args.rewriter, "Train the rewriter first: python train_rewriter.py --out "
               "runs/rewriter")
    bench.need(args.prompts, "The frozen prompts ship in prompts/frozen_prompts.jsonl")
    for flag in ("ckpt", "mixed", "better"):
        if getattr(args, flag):
            bench.need(getattr(args, flag), "Train it first (README: prompt rewriting)")
    if (args.mixed or args.better) and not args.ckpt:
        raise SystemExit("error: --mixed and --better need --ckpt (the dense-only DiT)")
    rows = expect.load(args.prompts)[:args.n]
    rewriter = Rewriter.load(args.rewriter, args.temperature)
    if args.backend == "openai":
        rewriter = ApiRewriter(args.llm_url, args.llm_model, timeout=args.llm_timeout,
                               fallback=rewriter)
    fig = {"prompts": len(rows), "seeds": args.seeds, "steps": args.steps, "cfg": args.cfg}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # the rewrites' notes are in the report
        rewrites = text_report(rewriter, rows, args.seeds, args.generated, fig)
        if args.ckpt:
            clip_report(rows, rewrites, args.seeds, args.ckpt, args.mixed, args.better,
                        args.steps, args.cfg, args.device, fig)
    tags = sorted({t for r in rows for t in r.get("tags", [])}) + ["beyond_keywords"]
    bench.print_columns(f"the rewrite's caption vs hand-written expectations ({len(rows)} "
                        f"frozen prompts, {args.seeds} seeds): checks passed",
                        ["prompts", "LM rewriter", "keyword rule"],
                        [("all", [f"{fig['text_rewriter']:.3f} +- {fig['text_rewriter_std']:.3f}",
                                  f"{fig['text_keywords']:.3f} +- {fig['text_keywords_std']:.3f}"])]
                        + [(t, [f"{fig[f'text_rewriter_{t}']:.3f}", f"{fig[f'text_keywords_{t}']:.3f}"])
                           for t in tags]
                        + [(f"generated: {n.replace('_', ' ')}",
                            [f"{fig[f'generated_{n}_rewriter']:.3f}",
                             f"{fig[f'generated_{n}_keywords']:.3f}"])
                           for n in ("ordinary", "held_out_words", "held_out_structures")])
    bench.print_table("the rewriter", [
        ("readings exactly right, generated ordinary", fig["generated_ordinary_reading_exact"]),
        ("  held-out words", fig["generated_held_out_words_reading_exact"]),
        ("  held-out structures", fig["generated_held_out_structures_reading_exact"]),
        ("guard accepted an LM sample (no template)", fig["guard_accepted"]),
        ("notes where none was expected (LM)", fig["text_rewriter_spurious_notes"]),
        ("ms per rewrite (median)", fig["rewriter_ms_median"])])
    for t in fig["traced"]:
        print(f"  {t['prompt']!r} -> reading: {t['reading']!r} ({t['checks_passed']} checks)")
    if args.ckpt:
        conds = [c for c in ("typed", "typed_mixed", "typed_better", "keywords", "rewriter",
                             "world") if f"clips_{c}" in fig]
        bench.print_columns(f"clips ({args.steps} Euler steps, CFG {args.cfg}): checks passed "
                            "on pixels, mean +- std over seeds",
                            ["condition", "all prompts", "negation/count/relation/..."],
                            [(c, [f"{fig[f'clips_{c}']:.3f} +- {fig[f'clips_{c}_std']:.3f}",
                                  f"{fig[f'clips_{c}_beyond_keywords']:.3f}"]) for c in conds])
    if args.plot:
        print(f"wrote {plot(fig, args.plot)}")
    bench.print_json("rewrite", fig)
    return fig
