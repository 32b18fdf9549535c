"""The video agent: plan a film, generate its shots, check them, retry, edit, stitch.

Where it sits: the end of the stack, on top of every stage before it. A request for several
shots ("a red ball rolls right, then it moves up quickly; cut to a small blue square that
bounces. about 8 seconds") is more than one prompt to a diffusion model can do; an agent does
it as a person would, with tools (minivid/studio.py):

    plan     the shot list (minivid/agent_plan.py): per shot what it shows, its length,
             continue-or-cut, the transition, the consistency groups
    act      per shot a dense prompt (the rewriter for a new scene; for a continued shot the
             same objects with the new motion), then N candidates (generate_clip, or
             extend_clip with the shot before as history)
    verify   check_clip on each candidate: the scene checker's adherence to the prompt and,
             for a continued shot, identity with the shot before; the best is kept
    retry    a shot whose best candidate fails is tried again, with new seeds, then with a
             revised prompt (a new rewrite) or a wider context; the critique (which
             attributes failed) is the reason written in the trace
    stitch   continued shots join with no seam, a cut cuts, "appears" crossfades; the film is
             written as MP4 and GIF beside plan.json and trace.jsonl

Three ways to run the same loop, which `python -m minivid.evaluate agent` compares:
    one-pass    one candidate per shot, nothing checked (what a single prompt chain gives)
    best-of-n   N candidates, the checker picks, no retry
    agent       N candidates, then retries with critique, up to `rounds` rounds

The planner that decides the calls is either this file's fixed policy (offline, the default)
or a real LLM through the OpenAI tool-calling protocol (--planner openai; the same tools,
every call validated before it runs: minivid/tool_calling.py).

    python -m minivid.agent "a red ball rolls right, then it moves up quickly. about 6 seconds" \\
        --ckpt runs/extend/ckpt.pt --rewriter runs/rewriter/ckpt.pt --out runs/agent/film.mp4
    python -m minivid.agent --replay runs/agent/trace.jsonl --ckpt runs/extend/ckpt.pt
    MINIVID_LLM_API_KEY=... python -m minivid.agent "..." --planner openai
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_08c_agent.py -q`
"""
import argparse
import json
import os
import time

from tqdm import tqdm

from minivid import agent_plan
from minivid.studio import Studio

MODES = ("one-pass", "best-of-n", "agent")
CROSSFADE = 4          # frames a crossfade blends (half a second)


def pick(checks: list[dict]) -> int:
    """The best candidate: passed first, then adherence + identity, then the smaller jump."""
    def key(i):
        c = checks[i]
        return (c["passed"], c["adherence"] + c.get("identity", 0.0), -c.get("jump", 0.0))
    return max(range(len(checks)), key=key)


def shot_prompt(studio: Studio, shot: agent_plan.Shot, before: str | None, seed: int) -> str:
    """The dense prompt a shot is generated from: a new scene is rewritten from the request's
    words; a continued shot keeps the prompt before it, with the new motion."""
    if shot.continues and before:
        o = (shot.read["objects"] or [{}])[0]
        args = {"prompt": before, "motion": o.get("motion", "still"), "speed": o.get("speed", "")}
        r = studio.call("continue_prompt", args, "a continued shot: the same objects, a new motion")
    else:
        r = studio.call("rewrite_prompt", {"text": shot.text, "seed": seed},
                        "a new scene: expand what the user wrote into a dense prompt")
    if "error" in r:
        raise RuntimeError(f"could not write the prompt of shot {shot.text!r}: {r['error']}")
    return r["prompt"]


def make_shot(studio, shot, i, prev_id, prompt, mode, candidates, rounds, seed):
    """Candidates for one shot, checked, retried -> (the kept clip id, its check, tries)."""
    n = 1 if mode == "one-pass" else candidates
    rounds = rounds if mode == "agent" else 1
    best, context, tries = None, "pack", 0
    for r in range(rounds):
        s = seed + 1000 * i + 100 * r
        if shot.continues and prev_id:
            made = studio.call("extend_clip", {"clip": prev_id, "prompt": prompt, "clips": shot.clips,
                                               "candidates": n, "seed": s, "context": context},
                               f"shot {i + 1}, round {r + 1}: {n} continuation(s) of {prev_id}")
        else:
            made = studio.call("generate_clip", {"prompt": prompt, "clips": shot.clips,
                                                 "candidates": n, "seed": s},
                               f"shot {i + 1}, round {r + 1}: {n} candidate(s)")
        if "error" in made:
            raise RuntimeError(f"shot {i + 1}: {made['error']}")
        tries += n
        if mode == "one-pass":
            return made["clips"][0], None, tries
        checks = []
        for cid in made["clips"]:
            args = {"clip": cid, "prompt": prompt}
            if shot.continues and prev_id:
                args["previous"] = prev_id
            checks.append(studio.call("check_clip", args, f"verify shot {i + 1} ({cid})"))
        k = pick(checks)
        if best is None or pick([best[1], checks[k]]) == 1:
            best = (made["clips"][k], checks[k])
        if best[1]["passed"] or r == rounds - 1:
            break
        failed = ", ".join(best[1]["failed"]) or "nothing"
        if r == 0:                                     # critique -> what the retry changes
            why = f"shot {i + 1} failed on {failed}: retry with new seeds"
        elif shot.continues:
            context = "full"
            why = f"shot {i + 1} still fails on {failed}: retry with the whole history (full)"
        else:
            prompt = shot_prompt(studio, shot, None, seed + 7 * (r + 1))
            why = f"shot {i + 1} still fails on {failed}: retry with a new rewrite of the prompt"
        studio.log("critique", {"shot": i + 1, "failed": best[1]["failed"]}, {"next": why}, 0.0, why)
    return best[0], best[1], tries


def make_film(studio: Studio, request: str, mode: str = "agent", candidates: int = 4,
              rounds: int = 3, seed: int = 0, out: str | None = None, progress: bool = True) -> dict:
    """The local planner's whole loop -> a summary: the plan, the kept clips and their checks,
    the film's clip id, calls, candidates, retries and seconds."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}: choose one of {MODES}")
    t0 = time.perf_counter()
    plan_d = studio.call("plan_shots", {"request": request}, "split the request into shots")
    if "error" in plan_d:
        raise ValueError(plan_d["error"])
    plan = agent_plan.Plan.from_dict(plan_d)
    kept, checks, tries, prev_id, prev_prompt = [], [], 0, None, None
    bar = tqdm(plan.shots, desc=f"agent ({mode})", unit="shot", disable=not progress)
    for i, shot in enumerate(bar):
        shot.prompt = shot_prompt(studio, shot, prev_prompt, seed + i)
        cid, check, n = make_shot(studio, shot, i, prev_id, shot.prompt, mode, candidates,
                                  rounds, seed)
        kept.append(cid)
        checks.append(check)
        tries += n
        prev_id, prev_prompt = cid, shot.prompt
        bar.set_postfix(shot=i + 1, passed=None if check is None else check["passed"])
    film = stitch(studio, plan, kept)
    if out:
        for path in (out, os.path.splitext(out)[0] + ".gif"):
            r = studio.call("write_film", {"clip": film, "path": path}, "the finished film")
            if "error" in r:
                raise RuntimeError(f"could not write {path}: {r['error']}")
        with open(os.path.join(os.path.dirname(out) or ".", "plan.json"), "w") as f:
            json.dump(plan.to_dict(), f, indent=1)
    return {"plan": plan, "clips": kept, "checks": checks, "film": film, "mode": mode,
            "candidates": tries, "retries": sum(r["tool"] == "critique" for r in studio.trace),
            "calls": sum(r["tool"] != "critique" for r in studio.trace),
            "seconds": time.perf_counter() - t0}


def stitch(studio: Studio, plan, kept: list[str]) -> str:
    """The kept shots -> one clip: continued shots join end to end (the history made them
    seamless), a cut is a plain join, an appearance a crossfade."""
    film = kept[0]
    for shot, cid in zip(plan.shots[1:], kept[1:]):
        if shot.transition == "crossfade":
            r = studio.call("crossfade", {"a": film, "b": cid, "frames": CROSSFADE},
                            f"{shot.text!r} appears: crossfade")
        else:
            r = studio.call("concat", {"clips": [film, cid]}, f"join ({shot.transition})")
        if "error" in r:
            raise RuntimeError(f"stitching failed: {r['error']}")
        film = r["clip"]
    return film


# ----------------------------------------------------------------------------- an LLM planner
SYSTEM = """You direct a tiny video model. It knows one world: one or two flat shapes
(circle, square, triangle; red, orange, yellow, green, cyan, blue, purple, white; small or
large) on a plain background (black, grey, navy, brown), moving (left, right, up, down,
diagonally, bounce, grow, shrink, still; slowly or quickly). Make the film the user asks for
with the tools: plan_shots, then per shot rewrite_prompt (a new scene) or continue_prompt (the
same objects go on), generate_clip or extend_clip (several candidates), check_clip each and
keep the best; retry a failing shot; join shots with concat or crossfade; end with
write_film. Answer with a one-line summary when the film is written."""


def llm_film(studio: Studio, request: str, client, out: str, max_turns: int = 40) -> dict:
    """An LLM decides the calls (tool_calling.run_tool_loop); each is traced by the studio."""
    from minivid.tool_calling import run_tool_loop

    def on_event(kind, p):
        if kind == "call":
            studio.log(p["name"], p["args"], p["result"], p["seconds"], p.get("reason") or "")
        elif kind == "rejected":
            studio.log(p.get("name") or "?", {"arguments": p.get("arguments")},
                       {"error": p["error"]}, 0.0, "refused, not run")
    messages = [{"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"{request}\nWrite the film to {out}."}]
    t0 = time.perf_counter()
    r = run_tool_loop(client, messages, list(studio.tools.values()), max_turns, on_event)
    return {"final": r["final"], "turns": r["turns"], "calls": r["calls"],
            "rejected": r["rejected"], "film_path": studio.film_path,
            "seconds": time.perf_counter() - t0}


def replay(studio: Studio, trace_path: str) -> dict:
    """Run a trace's calls again, in order, and compare each result with the recorded one
    (clip ids are given out in order, so the same calls make the same ids)."""
    rows = [json.loads(line) for line in open(trace_path) if line.strip()]
    same, differ = 0, []
    for row in rows:
        if row["tool"] == "critique" or not row.get("ok", True):
            continue
        result = studio.call(row["tool"], row["args"], "replay: " + row.get("reason", ""))
        if json.dumps(result, sort_keys=True) == json.dumps(row["result"], sort_keys=True):
            same += 1
        else:
            differ.append({"i": row["i"], "tool": row["tool"], "was": row["result"], "now": result})
    return {"calls": same + len(differ), "same": same, "differ": differ}


# ----------------------------------------------------------------------------- the command
def load_studio(args) -> Studio:
    from minivid.sampling import Pipeline
    for path, flag in ((args.ckpt, "--ckpt"), (args.rewriter, "--rewriter"), (args.student, "--student")):
        if path and not os.path.exists(path):
            raise SystemExit(f"{flag} {path}: no such file (train it first; see README)")
    pipe = Pipeline(args.ckpt, device=args.device)
    if not pipe.model["dit"].cfg.context_kernels:
        raise SystemExit(f"--ckpt {args.ckpt} cannot continue clips (not a train_extend.py "
                         "model): pass runs/extend/ckpt.pt")
    rewriter = None
    if args.rewriter:
        from minivid.rewrite import Rewriter
        rewriter = Rewriter.load(args.rewriter)
    student = Pipeline(args.student, device=args.device) if args.student else None
    return Studio(pipe, rewriter, student, args.steps, args.trace)


def main(argv=None):
    p = argparse.ArgumentParser(description="The video agent: a multi-shot request -> a film "
                                "(plan, generate, check, retry, stitch), with a trace.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("request", nargs="?", help="what the film shows, in plain language")
    p.add_argument("--ckpt", default="runs/extend/ckpt.pt", help="a clip-extension DiT "
                   "(train_extend.py): it starts scenes and continues them")
    p.add_argument("--rewriter", default=None, help="train_rewriter.py checkpoint (reads the "
                   "request's shots, writes dense prompts); none: the keyword rule")
    p.add_argument("--student", default=None, help="a distilled student for generate_clip "
                   "model=student (the LLM planner may choose it)")
    p.add_argument("--out", default="runs/agent/film.mp4", help="the film (.mp4; a .gif beside)")
    p.add_argument("--trace", default=None, help="trace file (default: trace.jsonl beside --out)")
    p.add_argument("--mode", default="agent", choices=MODES, help="one-pass | best-of-n | agent")
    p.add_argument("--candidates", type=int, default=4, help="candidates per shot and round")
    p.add_argument("--rounds", type=int, default=3, help="rounds per shot (agent mode)")
    p.add_argument("--steps", type=int, default=16, help="sampler steps per clip")
    p.add_argument("--seed", type=int, default=0, help="seed of the first candidate")
    p.add_argument("--planner", default="local", choices=("local", "openai"), help="who decides "
                   "the calls: the fixed local policy, or an OpenAI-compatible LLM (env "
                   "MINIVID_LLM_BASE_URL, MINIVID_LLM_MODEL, MINIVID_LLM_API_KEY)")
    p.add_argument("--replay", default=None, help="a trace.jsonl to run again and compare")
    p.add_argument("--device", default="cpu", help="cpu | cuda")
    a = p.parse_args(argv)
    if not 1 <= a.candidates <= 8 or a.rounds < 1 or a.steps < 1:
        p.error("--candidates must be 1..8, --rounds and --steps >= 1")
    if not a.replay and not (a.request and a.request.strip()):
        p.error("give a request (e.g. \"a red ball rolls right, then it moves up\") or --replay")
    a.trace = a.trace or os.path.join(os.path.dirname(a.out) or ".", "trace.jsonl")
    if a.replay:
        if os.path.abspath(a.replay) == os.path.abspath(a.trace):
            a.trace = os.path.splitext(a.replay)[0] + "_replay.jsonl"
        r = replay(load_studio(a), a.replay)
        print(json.dumps(r if r["differ"] else {k: v for k, v in r.items() if k != "differ"}))
        return r
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    studio = load_studio(a)
    if a.planner == "openai":
        from minivid.tool_calling import ChatClient
        r = llm_film(studio, a.request, ChatClient(), a.out)
        print(json.dumps(r))
        return r
    try:
        film = make_film(studio, a.request, a.mode, a.candidates, a.rounds, a.seed, a.out)
    except ValueError as e:
        raise SystemExit(f"agent: {e}")
    plan = film["plan"]
    for i, (shot, check) in enumerate(zip(plan.shots, film["checks"])):
        state = "-" if check is None else ("pass" if check["passed"] else "FAIL " + ",".join(check["failed"]))
        print(f"shot {i + 1}: {shot.transition:9s} {shot.clips} clip(s)  {state:24s} {shot.prompt}")
    summary = {"shots": len(plan.shots), "passed": sum(bool(c and c["passed"]) for c in film["checks"]),
               "candidates": film["candidates"], "retries": film["retries"],
               "calls": film["calls"], "seconds": round(film["seconds"], 1), "film": a.out,
               "trace": a.trace}
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
