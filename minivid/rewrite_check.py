"""The rewriter's guard: read its reading back, and check a caption against it and the world.

Where it sits: between the rewriter's LM and the video model (minivid/rewrite.py; the
OpenAI-compatible rewriter, minivid/llm_api.py, uses `check` too). The LM writes a READING of
the prompt in the world's words, then samples dense captions; nothing it writes is trusted:

    "small red circle moves right ; on black"  --read_reading-->  {objects, notes, background}
    a sampled caption  --parse_caption, scene_of-->  the Scene it describes
    check(caption, reading)  ->  problems: what the caption misses of the reading (keeps), and
                                 what makes the scene one the world never shows (world_problems)

The reading is an exact little grammar (written by minivid/user_language.py's `reading`);
a clause outside it is kept under "bad", never half-read. The caption is read with the world's
caption parser (minivid/captions.py: generator language, never the user's words). A caption
with no problems is a complete scene the world can show that keeps every attribute the user
stated, negations ("not red") and relations ("left of 2") included; else the rewriter takes
its next sample.

    OMP_NUM_THREADS=1 python -m pytest tests/test_06_rewrite.py -q -k "reading or guard"
"""
from minivid.captions import parse_caption
from minivid.scene import Obj, Scene, fits, overlaps
from minivid.vocab import (BACKGROUNDS, MOTIONS, MOVING, OBJECT_COLOURS, POSITIONS, SHAPES,
                           SIZES, SPEEDS)

KEYS = ("colour", "shape", "size", "position", "motion", "speed")   # an object's attributes


def read_reading(text: str) -> dict:
    """The reading's exact little grammar (user_language.reading) -> {"background": str|None,
    "objects": [dict of KEYS, + "not": colour, "rel": (relation, other index)], "notes": [...]}.
    Clauses the grammar does not allow are returned under "bad" (the guard refuses them)."""
    out = {"background": None, "objects": [], "notes": [], "bad": []}
    for clause in [c.strip() for c in text.split(";") if c.strip()]:
        w = clause.split()
        if w[0] == "note":
            out["notes"].append(" ".join(w[1:]))
            continue
        if w[0] == "on" and len(w) == 2 and w[1] in BACKGROUNDS:
            out["background"] = w[1]
            continue
        o, i = {}, 0
        try:
            while i < len(w):
                t = w[i]
                if t in SIZES:
                    o["size"] = t
                elif t in OBJECT_COLOURS:
                    o["colour"] = t
                elif t == "not":
                    o["not"], i = w[i + 1], i + 1
                elif t in SHAPES:
                    o["shape"] = t
                elif t == "at":
                    two = " ".join(w[i + 1:i + 3])
                    o["position"], i = (two, i + 2) if two in POSITIONS else (w[i + 1], i + 1)
                elif t == "moves":
                    o["motion"], i = w[i + 1], i + 1
                elif t in SPEEDS:
                    o["speed"] = t
                elif t in ("left", "right") and w[i + 1] == "of":
                    o["rel"], i = (f"{t} of", int(w[i + 2]) - 1), i + 2
                elif t in ("above", "below"):
                    o["rel"], i = (t, int(w[i + 1]) - 1), i + 1
                else:
                    raise ValueError(t)
                i += 1
        except (ValueError, IndexError):
            out["bad"].append(clause)
            continue
        if "shape" not in o or o.get("position", "centre") not in POSITIONS \
                or o.get("motion", "still") not in MOTIONS \
                or o.get("not", "red") not in OBJECT_COLOURS or o.get("rel", ("", 0))[1] < 0:
            out["bad"].append(clause)
            continue
        if len(out["objects"]) == 2:          # the world has at most two objects
            out["bad"].append(clause)
            continue
        out["objects"].append(o)
    return out


def scene_of(stated: dict, frames: int = 16, res: int = 32) -> Scene | None:
    """A complete parse of a caption -> the Scene it describes; None if anything is missing."""
    if not stated["background"] or not stated["objects"]:
        return None
    objs = []
    for o in stated["objects"]:
        if any(k not in o for k in KEYS[:5]):
            return None
        objs.append(Obj(o["shape"], o["colour"], o["size"], o["position"], o["motion"],
                        o.get("speed", "")))
    return Scene(stated["background"], objs, frames, res)


def world_problems(scene: Scene) -> list[str]:
    """What makes a scene one the world never shows (and the DiT never saw)."""
    a = scene.objects
    out = [f"the {o.colour} {o.shape}: '{o.motion}' "
           + ("needs a speed" if o.motion in MOVING else "has no speed")
           for o in a if (o.motion in MOVING) != bool(o.speed)]
    if len(a) > 2:
        out.append(f"{len(a)} objects (the world has 1 or 2)")
    if out:          # the geometry below needs a valid motion and speed
        return out
    out = [f"the {o.colour} {o.shape} leaves the frame" for o in a
           if not fits(o, scene.frames, scene.res)]
    if len(a) == 2 and a[0].colour == a[1].colour:
        out.append("two objects of one colour")
    if len(a) == 2 and (a[0].position == a[1].position or overlaps(a[0], a[1], scene.frames,
                                                                   scene.res)):
        out.append("the two objects overlap")
    return out


def relation_holds(rel: str, a: str, b: str) -> bool:
    """Is start cell a `rel` ("left of", "right of", "above", "below") start cell b?"""
    (xa, ya), (xb, yb) = POSITIONS[a], POSITIONS[b]
    return {"left of": xa < xb, "right of": xa > xb, "above": ya < yb, "below": ya > yb}[rel]


def keeps(objs: list, want: list) -> list[str]:
    """What the objects (Obj, in order) miss of the reading's objects `want`."""
    out = []
    for k, (o, w) in enumerate(zip(objs, want)):
        out += [f"{k + 1}: {key} {getattr(o, key)}, the reading says {w[key]}"
                for key in KEYS if key in w and getattr(o, key) != w[key]]
        if w.get("not") and o.colour == w["not"]:
            out.append(f"{k + 1}: colour {o.colour}, the reading says not {w['not']}")
        if w.get("rel") and w["rel"][1] < len(objs) and w["rel"][1] != k and \
                not relation_holds(w["rel"][0], o.position, objs[w["rel"][1]].position):
            out.append(f"{k + 1}: not {w['rel'][0]} {w['rel'][1] + 1}")
    return out


def check(caption: str, read: dict | None, frames: int = 16) -> tuple[list[str], Scene | None]:
    """The guard: -> (problems, scene). No problems = the caption describes a complete scene
    the world can show that keeps every attribute of the reading (read None: world rules
    only, e.g. a real LLM's reply), objects in the reading's order."""
    scene = scene_of(parse_caption(caption), frames)
    if scene is None:
        return ["incomplete: some attribute is not stated"], None
    problems = []
    if read is not None:
        want = read["objects"]
        if want and len(scene.objects) != len(want):
            problems.append(f"{len(scene.objects)} objects, the reading has {len(want)}")
        if read["background"] and scene.background != read["background"]:
            problems.append(f"background {scene.background}, the reading says "
                            f"{read['background']}")
        problems += keeps(scene.objects, want)
    return problems + world_problems(scene), scene
