"""The video agent's studio: the tools it acts with, the clips they make, the trace.

Where it sits: between the agent (minivid/agent.py: who decides what to call) and every
stage before it. Each tool has a name, a description and JSON-schema arguments, defined
once here, and the same for both planners (the local policy and a real LLM through the
OpenAI tool-calling protocol, minivid/tool_calling.py):

    plan_shots       the shot list of a request (minivid/agent_plan.py)
    rewrite_prompt   what a user typed for a shot -> a dense prompt (the rewriter)
    continue_prompt  the dense prompt of a continued shot: the same objects, a new motion
    generate_clip    N candidate shots from a prompt (the DiT, teacher or distilled student)
    extend_clip      N candidate next shots with a clip as history (clip extension)
    check_clip       the scene checker: adherence, the failed attributes, identity and the
                     seam's jump against the previous clip (an EXACT verifier)
    trim, concat, crossfade, speed, caption_overlay, write_film
                     deterministic edits (minivid/edits.py; ffmpeg where it does them
                     naturally), each checking its own output

`Studio.call(name, args, reason)` validates the arguments against the schema (an invalid
call is refused with the reason, never run), runs the tool, and appends one JSON line to the
trace: {"i", "tool", "args", "result", "seconds", "reason", "ok"}. A clip is an id ("c3")
in the workspace, never pixels, so every result is small JSON a planner can read.

Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_08c_agent.py -q`
"""
import json
import os
import time
from dataclasses import dataclass

import numpy as np

from minivid import agent_plan, checker, edits
from minivid.captions import dense_caption, parse_caption
from minivid.video_identity import boundary_stats, identity
from minivid.history import STRATEGIES
from minivid.long_clips import CLIP
from minivid.scene import Obj, Scene
from minivid.vocab import MOTIONS, MOVING, SPEEDS
from minivid.tool_calling import Tool, tool_spec, validate

PASS = 0.999                 # a shot passes when every stated attribute holds (and identity)
MAX_CANDIDATES = 8           # per tool call: one DiT batch


@dataclass
class Take:
    """A clip in the studio's workspace."""
    frames: np.ndarray       # uint8 (T, H, W, 3): the shot itself
    chain: np.ndarray        # uint8 (1 + 16 k, H, W, 3): the continuity it ends (the history a
                             # continuation is generated from; its first frame is the anchor)
    prompt: str = ""


def first_clip(frames: np.ndarray) -> np.ndarray:
    """The first clip of a shot: 17 frames for a film's first clip (1 + 16), else 16."""
    return frames[:CLIP + 1] if len(frames) % CLIP == 1 else frames[:CLIP]


def critique(video: np.ndarray, prompt: str) -> tuple[float, list[str], dict]:
    """The checker on a shot: its first clip against everything the prompt states, each later
    clip against what must hold all along (background, colours, shapes, sizes) -> (adherence,
    failed attributes, what the first clip shows)."""
    want = checker.stated(prompt)
    found = checker.detect(first_clip(video))
    parts = checker.score_by_attribute(found, want)
    static = {"background": want["background"],
              "objects": [{k: v for k, v in o.items() if k in ("colour", "shape", "size")}
                          for o in want["objects"]]}
    start = len(first_clip(video))
    for s in range(start, len(video) - CLIP + 1, CLIP):
        for k, (h, t) in checker.score_by_attribute(checker.detect(video[s:s + CLIP]), static).items():
            parts[k] = (parts.get(k, (0, 0))[0] + h, parts.get(k, (0, 0))[1] + t)
    parts.pop("position_2", None)
    hits, total = sum(h for h, _ in parts.values()), sum(t for _, t in parts.values())
    if total == 0:
        raise ValueError(f"the prompt {prompt!r} states nothing the checker can verify")
    return hits / total, sorted(k for k, (h, t) in parts.items() if h < t), found


def continuity(before: np.ndarray, after: np.ndarray) -> tuple[float, float]:
    """Does `after` keep who `before` showed, and without a jump? -> (identity of after's
    first clip with before's last clip, the centre jump across the seam / the median move
    inside the two clips; ~1 = as smooth as the motion itself)."""
    last = before[-CLIP:]
    fa, fb = checker.detect(last), checker.detect(first_clip(after))
    hits, total = identity(fa, fb, "size_median")
    video = np.concatenate([last, first_clip(after)])
    colours = [o["colour"] for o in fa["objects"]]
    jumps, moves = boundary_stats(video, colours, 2) if colours else ([], [])
    ratio = float(np.mean(jumps) / max(np.median(moves), 0.5)) if jumps and moves else 0.0
    return hits / max(total, 1), ratio


def continued_prompt(prompt: str, motion: str, speed: str = "") -> str:
    """A continued shot's dense prompt: who the previous prompt shows (background, colours,
    shapes, sizes), doing a new motion, with no start positions (they go on from the
    history). The previous prompt is the model's own dense language, read by the scorer's
    parser; the user's words never go through a rule table here."""
    if motion not in MOTIONS:
        raise ValueError(f"motion {motion!r}: choose one of {MOTIONS}")
    read = parse_caption(prompt)
    objs = [Obj(o["shape"], o.get("colour", "red"), o.get("size", "small"), "centre",
                motion, (speed or "slow") if motion in MOVING else "") for o in read["objects"]]
    if not objs:
        raise ValueError(f"the previous prompt {prompt!r} shows no object to continue")
    scene = Scene(read["background"] or "black", objs, 16, 32)
    return dense_caption(scene, np.random.default_rng(0), where=False)


# ----------------------------------------------------------------------------- the studio
class Studio:
    """The tools, the workspace of clips they make (ids "c1", "c2", ...) and the trace.

    Every call goes through `call`: arguments validated against the tool's JSON schema
    (an invalid call is refused, never run), the tool run, the result and the seconds
    written to the trace. Results are JSON (a clip is its id, never its pixels)."""

    def __init__(self, pipe, rewriter=None, student=None, steps: int = 16, trace_path=None,
                 reader=None):
        """pipe: a sampling.Pipeline of a clip-extension DiT; rewriter: a rewrite.Rewriter
        (None: the keyword rule); student: a distilled Pipeline (model="student"); reader:
        what reads a shot's words for the plan (default: the rewriter's reading, else the
        keyword rule)."""
        self.pipe, self.rewriter, self.student, self.steps = pipe, rewriter, student, steps
        self.reader = reader or (agent_plan.RewriterReader(rewriter) if rewriter
                                 else agent_plan.keyword_reader)
        self.clips: dict[str, Take] = {}
        self.trace: list[dict] = []
        self.trace_path = trace_path
        if trace_path:
            os.makedirs(os.path.dirname(trace_path) or ".", exist_ok=True)
            open(trace_path, "w").close()
        self.tools = {t.name: t for t in self._tools()}
        self.film_path = None

    # ------------------------------------------------------------------ bookkeeping
    def _put(self, frames, chain=None, prompt="") -> str:
        cid = f"c{len(self.clips) + 1}"
        self.clips[cid] = Take(frames, frames if chain is None else chain, prompt)
        return cid

    def _get(self, cid: str) -> Take:
        if cid not in self.clips:
            raise KeyError(f"no clip {cid!r} in the workspace (have: {', '.join(self.clips) or 'none'})")
        return self.clips[cid]

    def call(self, name: str, args: dict, reason: str = "") -> dict:
        """Validate, run and trace one tool call -> its result (always a dict; errors too)."""
        t0 = time.perf_counter()
        tool = self.tools.get(name)
        if tool is None:
            result = {"error": f"unknown tool {name!r}; tools: {', '.join(self.tools)}"}
        else:
            problems = validate(args, tool.parameters)
            result = {"error": "invalid arguments: " + "; ".join(problems)} if problems else None
            if result is None:
                try:
                    result = tool.fn(**args)
                except (ValueError, KeyError, RuntimeError) as e:
                    result = {"error": f"{type(e).__name__}: {e}"}
        self.log(name, args, result, time.perf_counter() - t0, reason)
        return result

    def log(self, name, args, result, seconds, reason="") -> None:
        row = {"i": len(self.trace) + 1, "tool": name, "args": args, "result": result,
               "seconds": round(seconds, 3), "reason": reason, "ok": "error" not in result}
        self.trace.append(row)
        if self.trace_path:
            with open(self.trace_path, "a") as f:
                f.write(json.dumps(row) + "\n")

    # ------------------------------------------------------------------ the tools
    def _tools(self) -> list[Tool]:
        S, I = {"type": "string"}, {"type": "integer"}
        clip, prompt = {"type": "string", "minLength": 1}, {"type": "string", "minLength": 1}
        n = {"type": "integer", "minimum": 1, "maximum": agent_plan.MAX_CLIPS}
        cands = {"type": "integer", "minimum": 1, "maximum": MAX_CANDIDATES}
        seed = {"type": "integer", "minimum": 0}

        def obj(props, required):
            return {"type": "object", "properties": props, "required": required,
                    "additionalProperties": False}
        return [
            Tool("plan_shots", "Split a multi-shot request into a shot list (the local grammar).",
                 obj({"request": prompt}, ["request"]), self.plan_shots),
            Tool("rewrite_prompt", "Expand what a user typed for one shot into a dense prompt.",
                 obj({"text": prompt, "seed": seed}, ["text"]), self.rewrite_prompt),
            Tool("continue_prompt", "The dense prompt of a continued shot: the previous shot's "
                 "objects doing a new motion, no start positions.",
                 obj({"prompt": prompt, "motion": {"type": "string", "enum": list(MOTIONS)},
                      "speed": {"type": "string", "enum": ["", *SPEEDS]}}, ["prompt", "motion"]),
                 lambda prompt, motion, speed="": {"prompt": continued_prompt(prompt, motion, speed)}),
            Tool("generate_clip", "Generate candidate shots from a dense prompt (a new scene).",
                 obj({"prompt": prompt, "clips": n, "candidates": cands, "seed": seed,
                      "model": {"type": "string", "enum": ["teacher", "student"]}},
                     ["prompt"]), self.generate_clip),
            Tool("extend_clip", "Continue a clip: candidate next shots with it as history.",
                 obj({"clip": clip, "prompt": prompt, "clips": n, "candidates": cands,
                      "seed": seed, "context": {"type": "string", "enum": list(STRATEGIES)}},
                     ["clip", "prompt"]), self.extend_clip),
            Tool("check_clip", "Score a clip against its prompt with the scene checker (and "
                 "its continuity with the previous clip).",
                 obj({"clip": clip, "prompt": prompt, "previous": S}, ["clip", "prompt"]),
                 self.check_clip),
            Tool("trim", "Keep frames [start, end) of a clip.",
                 obj({"clip": clip, "start": {"type": "integer", "minimum": 0}, "end": I},
                     ["clip", "start", "end"]), lambda clip, start, end: self._edit(
                         edits.trim(self._get(clip).frames, start, end))),
            Tool("concat", "Join clips end to end.",
                 obj({"clips": {"type": "array", "items": clip, "minItems": 1}}, ["clips"]),
                 lambda clips: self._edit(edits.concat([self._get(c).frames for c in clips]))),
            Tool("crossfade", "Blend the last frames of a into the first of b.",
                 obj({"a": clip, "b": clip, "frames": {"type": "integer", "minimum": 1}},
                     ["a", "b", "frames"]), lambda a, b, frames: self._edit(
                         edits.crossfade(self._get(a).frames, self._get(b).frames, frames))),
            Tool("speed", "Play a clip faster (factor > 1) or slower.",
                 obj({"clip": clip, "factor": {"type": "number", "minimum": 0.25, "maximum": 4}},
                     ["clip", "factor"]), lambda clip, factor: self._edit(
                         edits.speed(self._get(clip).frames, factor))),
            Tool("caption_overlay", "Write a line of text over the bottom of a clip.",
                 obj({"clip": clip, "text": prompt}, ["clip", "text"]),
                 lambda clip, text: self._edit(edits.caption_overlay(self._get(clip).frames, text))),
            Tool("write_film", "Write a clip as the film (.mp4 or .gif).",
                 obj({"clip": clip, "path": prompt}, ["clip", "path"]), self.write_film),
        ]

    def plan_shots(self, request: str) -> dict:
        return agent_plan.plan_request(request, self.reader).to_dict()

    def rewrite_prompt(self, text: str, seed: int = 0) -> dict:
        if self.rewriter is None:         # no rewriter trained: the keyword rule, and say so
            from minivid.rewrite import keyword_rewrite
            r = keyword_rewrite(text, seed)
        else:
            r = self.rewriter(text, seed=seed)
        return {"prompt": r.text, "source": r.source, "notes": r.warnings}

    def _model(self, model: str):
        if model == "student":
            if self.student is None:
                raise ValueError("no distilled student loaded: pass --student runs/distill/ckpt.pt")
            return self.student, self.student.distilled["step_counts"][-1]
        return self.pipe, self.steps

    def generate_clip(self, prompt, clips=1, candidates=1, seed=0, model="teacher") -> dict:
        pipe, steps = self._model(model)
        videos = pipe.extend([prompt] * candidates, clips, "pack", steps, seed=seed)
        ids = [self._put(v, prompt=prompt) for v in videos]
        return {"clips": ids, "frames": int(videos.shape[1])}

    def extend_clip(self, clip, prompt, clips=1, candidates=1, seed=0, context="pack") -> dict:
        chain = self._get(clip).chain
        history = np.repeat(chain[None], candidates, axis=0)
        videos = self.pipe.extend([prompt] * candidates, clips, context, self.steps, seed=seed,
                                  history=history)                # (N, len(chain) + 16 clips)
        ids = [self._put(v[len(chain):], chain=v, prompt=prompt) for v in videos]
        return {"clips": ids, "frames": CLIP * clips}

    def check_clip(self, clip, prompt, previous="") -> dict:
        take = self._get(clip)
        adherence, failed, found = critique(take.frames, prompt)
        out = {"adherence": round(adherence, 4), "failed": failed}
        ok = adherence >= PASS
        if previous:
            ident, jump = continuity(self._get(previous).frames, take.frames)
            out.update(identity=round(ident, 4), jump=round(jump, 3))
            ok = ok and ident >= PASS
            if ident < PASS:
                out["failed"] = failed + ["identity"]
        out["passed"] = bool(ok)
        return out

    def _edit(self, r) -> dict:
        if not r.ok:
            return {"error": r.error, "checks": r.checks}
        return {"clip": self._put(r.frames), "frames": int(len(r.frames)), "checks": r.checks}

    def write_film(self, clip, path) -> dict:
        frames = self._get(clip).frames
        r = edits.write_film(frames, path)
        if not r.ok:
            return {"error": r.error}
        self.film_path = path
        return {"path": path, "frames": int(len(frames)), "seconds": round(len(frames) / agent_plan.FPS, 2)}

    def llm_tools(self) -> list[dict]:
        """The tools as an OpenAI `tools` list."""
        return [tool_spec(t) for t in self.tools.values()]
