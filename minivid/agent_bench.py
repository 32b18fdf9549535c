"""Does the agent make better films than one pass? `python -m minivid.evaluate agent`.

Where it sits: the end of the stack (minivid/agent.py). On a frozen set of multi-shot
requests with gold shot lists (prompts/agent_requests.jsonl: `agent_plan.make_requests`
with a seed no development used; the planner was developed on seed 1), it measures:

  the planner   shot count, continue-or-cut, lengths and the stated attributes of each shot
                against the gold list, for the learned reader (the rewriter's reading) and
                for the simplest rule (keyword_reading) beside it;
  the films     for (a) one pass (one candidate per shot, nothing checked), (b) best-of-N (the
                checker picks, no retry), (c) the full agent (best-of-N, then retries with
                critique): per shot against what the USER asked (the gold shot, not the
                agent's own prompt): pass rate (every stated attribute holds) and adherence;
                identity of each continued shot with the one before, and of every shot of a
                consistency group with the group's first; the seam's jump against the motion
                inside the clips (~1 = smooth); candidates, tool calls and seconds per film.
Over several seeds, each figure with its spread (max - min over seeds).

    python -m minivid.evaluate agent --ckpt runs/extend/ckpt.pt --rewriter runs/rewriter/ckpt.pt
"""
import json
import os

import numpy as np

from minivid import agent_plan, bench, checker
from minivid.agent import MODES, make_film
from minivid.studio import CLIP, Studio, continuity, first_clip

REQUESTS = "prompts/agent_requests.jsonl"


def load_requests(path: str, n: int | None = None) -> list[dict]:
    bench.need(path, "Make them: python -m minivid.agent_plan --make prompts/agent_requests.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()][:n]


def gold_want(g: dict) -> dict:
    """A gold shot -> what it states, in checker.stated's form."""
    return {"background": g.get("background"), "objects": [dict(o) for o in g["objects"]]}


def score_shot(frames: np.ndarray, want: dict) -> tuple[int, int]:
    """(hits, total) of the gold shot's stated attributes: its first clip everything, later
    clips what holds all along (background, colour, shape, size)."""
    parts = checker.score_by_attribute(checker.detect(first_clip(frames)), want)
    static = {"background": want["background"],
              "objects": [{k: v for k, v in o.items() if k in ("colour", "shape", "size")}
                          for o in want["objects"]]}
    for s in range(len(first_clip(frames)), len(frames) - CLIP + 1, CLIP):
        for k, (h, t) in checker.score_by_attribute(checker.detect(frames[s:s + CLIP]), static).items():
            parts[k] = (parts.get(k, (0, 0))[0] + h, parts.get(k, (0, 0))[1] + t)
    parts.pop("position_2", None)
    return sum(h for h, _ in parts.values()), sum(t for _, t in parts.values())


def film_scores(studio: Studio, film: dict, gold: list[dict]) -> dict:
    """One film against its gold shot list."""
    shots = [studio.clips[c].frames for c in film["clips"]]
    out = {"pass": [], "adherence": [], "identity": [], "group": [], "jump": []}
    for i, (frames, g) in enumerate(zip(shots, gold)):
        h, t = score_shot(frames, gold_want(g))
        out["adherence"].append(h / max(t, 1))
        out["pass"].append(int(h == t))
    plan = film["plan"]
    for i, shot in enumerate(plan.shots[1:], start=1):
        if shot.continues and i < len(shots):
            ident, jump = continuity(shots[i - 1], shots[i])
            out["identity"].append(ident)
            out["jump"].append(jump)
    for members in plan.groups().values():
        for j in members[1:]:
            if j < len(shots):
                out["group"].append(continuity(shots[members[0]], shots[j])[0])
    return out


def evaluate(studio_for, requests, modes, seeds, candidates, rounds, progress=True) -> dict:
    """{mode: {figure: (mean, spread over seeds)}}; studio_for() makes a fresh Studio."""
    out = {}
    for mode in modes:
        per_seed = []
        for seed in seeds:
            acc = {"pass": [], "adherence": [], "identity": [], "group": [], "jump": [],
                   "candidates": [], "calls": [], "seconds": []}
            for r in requests:
                studio = studio_for()
                film = make_film(studio, r["request"], mode, candidates, rounds, seed,
                                 progress=False)
                for k, v in film_scores(studio, film, r["gold"]).items():
                    acc[k] += v
                for k in ("candidates", "calls", "seconds"):
                    acc[k].append(film[k])
            per_seed.append({k: float(np.mean(v)) if v else float("nan") for k, v in acc.items()})
            if progress:
                print(f"  {mode} seed {seed}: pass {per_seed[-1]['pass']:.3f}", flush=True)
        out[mode] = {k: (float(np.mean([s[k] for s in per_seed])),
                         float(np.ptp([s[k] for s in per_seed]))) for k in per_seed[0]}
    return out


def planner_scores(requests, reader) -> dict:
    acc = {"count": [], "continues": [], "clips": [], "attrs": []}
    for r in requests:
        s = agent_plan.score_plan(agent_plan.plan_request(r["request"], reader), r["gold"])
        for k in acc:
            acc[k] += s[k] if isinstance(s[k], list) else [s[k]]
    return {k: float(np.mean(v)) for k, v in acc.items()}


# ----------------------------------------------------------------------------- the command
def add_args(sub) -> None:
    p = bench.command(sub, "agent", run, "the video agent on frozen multi-shot requests: "
                      "one pass vs best-of-N vs the full agent; the planner vs gold")
    bench.shared_args(p, "steps", "device", steps=16)
    p.add_argument("--ckpt", default="runs/extend/ckpt.pt", help="clip-extension DiT")
    p.add_argument("--rewriter", default="runs/rewriter/ckpt.pt", help="train_rewriter.py "
                   "checkpoint (the planner's reader and the prompts' rewriter)")
    p.add_argument("--requests", default=REQUESTS, help="frozen requests with gold shot lists")
    p.add_argument("--n", type=int, default=None, help="first n requests (default: all)")
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES, help="what to run")
    p.add_argument("--seeds", type=int, default=2, help="seeds per mode (the spread)")
    p.add_argument("--candidates", type=int, default=4, help="N of best-of-N and the agent")
    p.add_argument("--rounds", type=int, default=3, help="the agent's rounds per shot")


def run(args) -> dict:
    bench.need(args.ckpt, "Train clip extension first: python train_extend.py (README)")
    bench.at_least(args, seeds=1, candidates=1, rounds=1, steps=1)
    from minivid.rewrite import Rewriter
    from minivid.sampling import Pipeline
    requests = load_requests(args.requests, args.n)
    rewriter = Rewriter.load(args.rewriter) if os.path.exists(args.rewriter) else None
    if rewriter is None:
        print(f"warning: no rewriter at {args.rewriter}: the keyword rule reads and rewrites")
    planner = {"keyword rule": planner_scores(requests, agent_plan.keyword_reader)}
    if rewriter is not None:
        planner["rewriter (learned)"] = planner_scores(requests, agent_plan.RewriterReader(rewriter))
    bench.print_table(f"planner vs gold on {len(requests)} frozen requests",
                      [(f"{who}: {k}", v) for who, s in planner.items() for k, v in s.items()])
    pipe = Pipeline(args.ckpt, device=args.device)
    films = evaluate(lambda: Studio(pipe, rewriter, None, args.steps), requests, args.modes,
                     range(args.seeds), args.candidates, args.rounds)
    keys = ["pass", "adherence", "identity", "group", "jump", "candidates", "calls", "seconds"]
    print(f"\nfilms: {len(requests)} requests x {args.seeds} seeds, {args.steps} steps, "
          f"N = {args.candidates}, rounds = {args.rounds} (mean, spread over seeds)")
    print(f"{'mode':12s}" + "".join(f"{k:>16s}" for k in keys))
    for mode, figs in films.items():
        print(f"{mode:12s}" + "".join(f"{figs[k][0]:>9.3f} ±{figs[k][1]:<5.3f}" for k in keys))
    fig = {"requests": len(requests), "seeds": args.seeds, "planner": planner,
           "films": {m: {k: round(v[0], 4) for k, v in f.items()} for m, f in films.items()},
           "spread": {m: {k: round(v[1], 4) for k, v in f.items()} for m, f in films.items()}}
    bench.print_json("agent", fig)
    return fig
