"""The video agent's plan: a request in plain language -> a shot list.

Where it sits: the first thing the agent (minivid/agent.py) does with a request. A request
names several shots ("a red ball rolls right, then it moves up quickly; cut to a small blue
square that bounces. about 8 seconds"); the plan says, per shot, what it shows, how long it
is (in 16-frame clips), whether it CONTINUES the shot before (the same objects, generated
with the history as context: clip extension) or CUTS to a new scene, the transition, and the
consistency group (shots that must show the same objects: a continued shot joins the group
of the shot it continues).

The local planner is honest about what it is: a GRAMMAR for the request's structure, not a
learned model. It splits the request at the connectors people use between shots ("then",
"after that", "next", ";", "cut to"), reads a duration ("about 20 seconds", "20s", "one
minute"), resolves pronouns ("it", "they") to the objects of the shot before, and decides
continue-or-cut (a pronoun, or the same colour and shape as before, continues; "cut to", a
new object, or "appears" cuts). What each shot SAYS is read by the learned rewriter's reading
(minivid/rewrite.py: Rewriter.read), or, without a rewriter checkpoint, by the keyword rule
(rewrite.keyword_reading: the simplest rule that does the job). `evaluate agent` scores the
planner against the gold shot lists of a frozen request set (prompts/agent_requests.jsonl,
made by `make_requests` with a seed that no development used; development used seed 1).

    python -m minivid.agent_plan "a red ball rolls right, then it moves up. about 6 seconds"
    python -m minivid.agent_plan --make prompts/agent_requests.jsonl --n 24 --seed 2026
"""
import argparse
import json
import re
from dataclasses import asdict, dataclass, field

import numpy as np

from minivid import user_language
from minivid.rewrite import keyword_reading, read_reading
from minivid.scene import sample_scene
from minivid.world import FRAME_MS

FPS = 1000 / FRAME_MS          # ~8.3 frames a second, the tiny world's GIF rate
CLIP_FRAMES = 16               # what one continuation clip adds (the first clip has 17)
MAX_CLIPS = 64                 # a film's limit: ~2 minutes (each clip costs a DiT sampling)
DEFAULT_CLIPS_PER_SHOT = 2     # no duration said: two clips (~4 s) a shot
# Where one shot ends and the next begins; "cut to" / "new scene" also says CUT.
CONNECTOR = re.compile(r"\s*(?:[;.!]|,\s*(?=cut to\b)|,?\s*\b(?:and then|then|after that|"
                       r"afterwards|next|finally|later)\b)\s*", re.IGNORECASE)
CUT = re.compile(r"^(?:,?\s*)?(?:cut to|cut|new scene|new shot|meanwhile|elsewhere)\b[:,]?\s*",
                 re.IGNORECASE)
APPEARS = re.compile(r"\b(?:appears?|shows up|comes in|enters)\b\s*(?:and\s*)?", re.IGNORECASE)
PRONOUN = re.compile(r"^(?:it|they|the same (?:one|shape|object)|this one)\b", re.IGNORECASE)
DURATION = re.compile(r"(?:about|around|roughly|~)?\s*(\d+(?:\.\d+)?|one|two|a)\s*"
                      r"(seconds?|secs?|s|minutes?|mins?)\b", re.IGNORECASE)
WORD_NUMBERS = {"one": 1, "two": 2, "a": 1}


@dataclass
class Shot:
    """One shot of the plan."""
    text: str                  # the request's words for it, pronouns resolved
    read: dict                 # what it states: {"background", "objects": [{shape, colour, ...}]}
    clips: int                 # length in clips (17 frames for a film's first, 16 after)
    continues: bool            # go on from the shot before (history as context) or cut
    transition: str            # "start", "continue" (no seam), "cut" or "crossfade"
    group: int                 # consistency group: shots that must show the same objects
    prompt: str = ""           # the dense prompt the agent generates it from (agent.py)


@dataclass
class Plan:
    request: str
    seconds: float | None      # what the request asked for (None: not said)
    shots: list[Shot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # what the planner could not read

    def groups(self) -> dict[int, list[int]]:
        """{group: [shot indices]}: the shots that must keep the same objects."""
        out = {}
        for i, s in enumerate(self.shots):
            out.setdefault(s.group, []).append(i)
        return out

    def to_dict(self) -> dict:
        return {"request": self.request, "seconds": self.seconds,
                "shots": [asdict(s) for s in self.shots], "groups": self.groups(),
                "notes": self.notes}

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        return cls(d["request"], d["seconds"], [Shot(**s) for s in d["shots"]], d.get("notes", []))


# ----------------------------------------------------------------------------- the grammar
def read_duration(request: str) -> tuple[float | None, str]:
    """-> (seconds or None, the request without the duration phrase)."""
    m = DURATION.search(request)
    if not m:
        return None, request
    n = m.group(1).lower()
    value = float(WORD_NUMBERS.get(n, n) if n in WORD_NUMBERS else n)
    seconds = value * 60 if m.group(2).lower().startswith("m") else value
    rest = (request[:m.start()] + request[m.end():])
    rest = re.sub(r"\b(?:for|lasting|long|in total|total)\b\s*[.,]?", " ", rest, flags=re.IGNORECASE)
    return seconds, rest


def split_shots(request: str) -> list[tuple[str, bool]]:
    """The request without its duration -> [(shot words, cut said explicitly)]."""
    parts = [p.strip(" ,") for p in CONNECTOR.split(request)]
    out = []
    for p in parts:
        cut = bool(CUT.match(p))
        p = CUT.sub("", p).strip(" ,")
        if p:                                 # a lone "cut to" with nothing after: no shot
            out.append((p, cut))
    return out


def object_words(o: dict) -> str:
    """{"size": "large", "colour": "red", "shape": "circle"} -> "the large red circle"."""
    return "the " + " ".join(o[k] for k in ("size", "colour", "shape") if o.get(k))


def spread_clips(n_shots: int, seconds: float | None) -> list[int]:
    """The film's length in clips, split evenly over the shots (earlier ones get the rest)."""
    if seconds is None:
        return [DEFAULT_CLIPS_PER_SHOT] * n_shots
    total = max(n_shots, min(MAX_CLIPS, round(seconds * FPS / CLIP_FRAMES)))
    return [total // n_shots + (i < total % n_shots) for i in range(n_shots)]


def keyword_reader(text: str) -> dict:
    """The simplest reader (no model): rewrite.keyword_reading (shapes, colours, sizes and a
    background; no motion)."""
    return keyword_reading(text)


class RewriterReader:
    """The learned reader: the rewriter LM's reading of a shot's words (Rewriter.read)."""

    def __init__(self, rewriter):
        self.rewriter = rewriter

    def __call__(self, text: str) -> dict:
        return read_reading(self.rewriter.read(text)[0])


def plan_request(request: str, reader=keyword_reader) -> Plan:
    """A request -> its Plan (the grammar above; `reader` reads each shot's words)."""
    if not isinstance(request, str) or not request.strip():
        raise ValueError("empty request: say what the film shows, e.g. 'a red ball rolls "
                         "right, then it moves up; about 6 seconds'")
    seconds, rest = read_duration(request)
    if seconds is not None and seconds <= 0:
        raise ValueError(f"a film of {seconds} seconds: ask for a positive length")
    pieces = split_shots(rest)
    if not pieces:
        raise ValueError(f"no shot in {request!r}: describe at least one thing that happens")
    shots, prev, notes = [], None, []
    for words, cut_said in pieces:
        appears = bool(APPEARS.search(words))
        words = APPEARS.sub("", words).strip()
        pronoun = bool(PRONOUN.match(words))
        if pronoun and prev is not None:       # "it moves up" -> "the red circle moves up"
            subject = " and ".join(object_words(o) for o in prev.read["objects"])
            words = PRONOUN.sub(subject, words, count=1)
        read = reader(words)
        read = {"background": read.get("background"),
                "objects": [{k: v for k, v in o.items() if k != "rel"} for o in read["objects"]]}
        if prev is not None and not read["objects"] and not pronoun and not cut_said:
            # "... The background is plain grey.": more about the shot before, not a new one
            prev.text = f"{prev.text}. {words}"
            prev.read["background"] = read["background"] or prev.read["background"]
            continue
        same = prev is not None and bool(read["objects"]) and all(
            any(o.get("shape") == p.get("shape") and o.get("colour", p.get("colour")) == p.get("colour")
                for p in prev.read["objects"]) for o in read["objects"])
        continues = prev is not None and not cut_said and not appears and (pronoun or same)
        if continues:                           # the same objects: who they are is the group's
            read = continued_read(prev.read, read)
        elif not read["objects"]:               # the rewriter will make one up, and say so
            notes.append(f"shot {len(shots) + 1} ({words!r}): no object of the world read")
        group = prev.group if continues else len({s.group for s in shots})
        transition = ("start" if prev is None else "continue" if continues
                      else "crossfade" if appears else "cut")
        shot = Shot(words, read, 0, continues, transition, group)
        shots.append(shot)
        prev = shot
    for shot, n in zip(shots, spread_clips(len(shots), seconds)):
        shot.clips = n
    return Plan(request, seconds, shots, notes)


def continued_read(before: dict, now: dict) -> dict:
    """A continued shot shows the objects before it (identity: shape, colour, size and the
    background) doing what the new words say (motion, speed); positions go on from the
    history, so none is stated."""
    objs = []
    for p in before["objects"]:
        o = {k: p[k] for k in ("shape", "colour", "size") if k in p}
        mine = next((n for n in now["objects"] if n.get("shape") == p.get("shape")), None)
        if mine is None and len(now["objects"]) == 1 and len(before["objects"]) == 1:
            mine = now["objects"][0]
        for k in ("motion", "speed"):
            if mine and mine.get(k):
                o[k] = mine[k]
        objs.append(o)
    return {"background": before.get("background"), "objects": objs}


# ----------------------------------------------------------------------------- requests
def _motion_words(rng) -> tuple[str, dict]:
    """A motion as people say it ("slides to the left quickly") and what it states."""
    motion = str(rng.choice(["left", "right", "up", "down", "bounce", "still", "up-right",
                             "down-left", "grow", "shrink"]))
    if motion in user_language.DIRECTION:
        verb = str(rng.choice(["moves", "goes", "slides", "drifts", "rolls"]))
        phrase = f"{verb} {rng.choice(user_language.DIRECTION[motion][:2])}"
    else:
        phrase = str(rng.choice(user_language.OTHER_MOTION[motion][:2])[0])
    state = {"motion": motion}
    if motion not in ("still", "grow", "shrink") and rng.random() < 0.6:
        speed = str(rng.choice(["slow", "fast"]))
        phrase += " " + str(rng.choice(user_language.SPEED[speed][:3]))
        state["speed"] = speed
    return phrase, state


def _noun(rng, shape: str) -> str:
    return str(rng.choice(user_language.SHAPE[shape][:2]))       # "circle" or "ball", ...


def make_request(rng) -> dict:
    """One multi-shot request in the words people use, and its gold shot list: 2-4 shots,
    each one object (a held-out test-split scene); about half the shots after the first go
    on with the same object ("then it ...", "then the red ball ..."), the others cut to a new
    one ("cut to a ...", "then a ... appears and ...")."""
    n = int(rng.integers(2, 5))
    words, gold, prev = [], [], None
    for i in range(n):
        phrase, state = _motion_words(rng)
        if prev is not None and rng.random() < 0.55:             # go on with the same object
            subject = "it" if rng.random() < 0.5 else f"the {prev['colour']} {_noun(rng, prev['shape'])}"
            lead = str(rng.choice(["then", "after that", "and then", "next"]))
            words.append(f"{lead} {subject} {phrase}")
            prev = {**{k: prev[k] for k in ("shape", "colour", "size")}, **state}
            gold.append({"continues": True, "objects": [prev]})
            continue
        scene = sample_scene(rng, "test", n_objects=1)
        o = scene.objects[0]
        who = f"a {o.size} {o.colour} {_noun(rng, o.shape)}"
        bg = f" on a {scene.background} background" if rng.random() < 0.5 else ""
        if i == 0:
            words.append(f"{who} {phrase}{bg}")
        elif rng.random() < 0.5:
            words.append(f"{rng.choice(['cut to', 'then cut to', '; cut to'])} {who} {phrase}{bg}")
        else:
            words.append(f"then {who} appears and {phrase}{bg}")
        prev = {"shape": o.shape, "colour": o.colour, "size": o.size, **state}
        gold.append({"continues": False, "objects": [prev],
                     "background": scene.background if bg else None})
    seconds = int(rng.choice([4, 6, 8, 10, 12]))
    request = ", ".join(words).replace(", ;", ";") + f". about {seconds} seconds"
    for g, n_clips in zip(gold, spread_clips(n, seconds)):
        g["clips"] = n_clips
    return {"request": request, "seconds": seconds, "gold": gold}


def make_requests(n: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [make_request(rng) for _ in range(n)]


def score_plan(plan: Plan, gold: list[dict]) -> dict:
    """How a plan matches a gold shot list: shot count right; per gold shot (matched in
    order): continue-or-cut right, clips right, and the fraction of stated object attributes
    (shape, colour, size, motion, speed) the plan's shot states the same."""
    out = {"count": int(len(plan.shots) == len(gold)), "continues": [], "clips": [], "attrs": []}
    for s, g in zip(plan.shots, gold):
        out["continues"].append(int(s.continues == g["continues"]))
        out["clips"].append(int(s.clips == g["clips"]))
        hits = total = 0
        for go in g["objects"]:
            po = next((o for o in s.read["objects"] if o.get("shape") == go["shape"]), {})
            for k, v in go.items():
                total += 1
                hits += int(po.get(k) == v)
        out["attrs"].append(hits / max(total, 1))
    missing = len(gold) - len(plan.shots)
    for key in ("continues", "clips", "attrs"):
        out[key] += [0] * max(missing, 0)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description="Plan a multi-shot request (the local grammar), or "
                                "make a request set with gold shot lists.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("request", nargs="?", help="a request in plain language")
    p.add_argument("--rewriter", default=None, help="train_rewriter.py checkpoint: the learned "
                   "reader of each shot's words (default: the keyword rule)")
    p.add_argument("--make", default=None, help="write a request set (JSON lines) here")
    p.add_argument("--n", type=int, default=24, help="requests to make with --make")
    p.add_argument("--seed", type=int, default=2026, help="seed of the requests --make writes")
    a = p.parse_args(argv)
    if a.make:
        with open(a.make, "w") as f:
            for r in make_requests(a.n, a.seed):
                f.write(json.dumps(r) + "\n")
        print(f"wrote {a.n} requests to {a.make}")
        return
    if not a.request:
        p.error("give a request, or --make PATH")
    reader = keyword_reader
    if a.rewriter:
        from minivid.rewrite import Rewriter
        reader = RewriterReader(Rewriter.load(a.rewriter))
    print(json.dumps(plan_request(a.request, reader).to_dict(), indent=1))


if __name__ == "__main__":
    main()
