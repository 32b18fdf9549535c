"""What a prompt asks for, written down by hand, and how well a scene meets it.

Where it sits: the rewriting bench (minivid/rewrite_bench.py) scores two things against the
same expectations: a rewrite's dense caption (read by the caption parser) and a generated
clip (read from pixels by minivid/checker.py). The expectations come from people, not from
any parser, so a parser's mistakes cannot hide: prompts/frozen_prompts.jsonl (frozen, written
without looking at the rewriter's training data; prompts/FROZEN.md).

An expectation (one per prompt):
    {"background": "black" | None,
     "objects": [{"shape": "square", "colour": "blue", "left_of": 1, ...}, ...],
     "count": 2,        # optional: the exact number of objects (default: len(objects) if any)
     "note": True}      # the rewrite must flag something the world cannot show
Object keys: shape, colour, size, position, motion, speed (world values), colour_not and
motion_not (a value or a list), left_of / right_of / above / below (the index of the other
object: this one's start cell is strictly left of / right of / above / below that one's).

A "scene" here is what minivid.checker.detect returns (and captions.parse_caption, for
text): {"background": str, "objects": [{"colour", "shape", "size", "position", ...}]}.

    python -m minivid.expect prompts/frozen_prompts.jsonl     # counts of checks per tag
"""
import itertools
import json
import sys

from minivid.vocab import POSITIONS

ATTRIBUTES = ("shape", "colour", "size", "position", "motion", "speed")
RELATIONS = {"left_of": lambda a, b: a[0] < b[0], "right_of": lambda a, b: a[0] > b[0],
             "above": lambda a, b: a[1] < b[1], "below": lambda a, b: a[1] > b[1]}


def load(path) -> list[dict]:
    """A JSONL file of {"prompt", "tags", "expect"} rows; a clear error on a bad line."""
    rows = []
    with open(path) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                assert isinstance(row["prompt"], str) and isinstance(row["expect"], dict)
            except (ValueError, KeyError, AssertionError) as e:
                raise ValueError(f"{path}, line {n}: not a prompt row ({e}); each line is "
                                 '{"prompt": str, "tags": [...], "expect": {...}}') from None
            rows.append(row)
    return rows


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _object_checks(w, f, k, chosen):
    """[(check, ok)] for expected object w (index k) against found object f (or None)."""
    out = [(key, f is not None and f.get(key, "") == w[key]) for key in ATTRIBUTES if key in w]
    for key, attr in (("colour_not", "colour"), ("motion_not", "motion")):
        if key in w:
            out.append((key, f is not None and f.get(attr) not in _as_list(w[key])))
    for rel, holds in RELATIONS.items():
        if rel in w:
            other = chosen[w[rel]] if w[rel] < len(chosen) and w[rel] != k else None
            ok = f is not None and other is not None and f.get("position") in POSITIONS \
                and other.get("position") in POSITIONS \
                and holds(POSITIONS[f["position"]], POSITIONS[other["position"]])
            out.append(("relation", ok))
    return out


def checks(found: dict, expect: dict, noted: bool | None = None) -> list[tuple[str, bool]]:
    """Every check of `expect` on `found`: [(kind, passed)]. Expected objects are matched to
    found ones by the assignment that passes the most checks (so a wrong colour costs one
    check, not the whole object). noted: did the rewrite flag something (None: not scored,
    e.g. pixels)?"""
    want, have = expect["objects"], list(found["objects"])
    best = None
    slots = have + [None] * len(want)          # an expected object may match nothing
    for chosen in itertools.permutations(range(len(slots)), len(want)):
        objs = [slots[i] for i in chosen]
        if any(o is not None and objs.count(o) > 1 for o in objs):
            continue
        got = [c for k, (w, f) in enumerate(zip(want, objs)) for c in _object_checks(w, f, k, objs)]
        if best is None or sum(ok for _, ok in got) > sum(ok for _, ok in best):
            best = got
    out = list(best or [])
    if expect.get("background"):
        out.append(("background", found["background"] == expect["background"]))
    count = expect.get("count", len(want) if want else None)
    if count is not None:
        out.append(("count", len(have) == count))
    if noted is not None and expect.get("note"):
        out.append(("note", bool(noted)))
    return out


def accuracy(rows_checks: list[list]) -> float:
    """Passed / all checks over many prompts (nan if there is none)."""
    flat = [ok for cs in rows_checks for _, ok in cs]
    return sum(flat) / len(flat) if flat else float("nan")


def by_kind(rows_checks: list[list]) -> dict:
    """{kind of check: accuracy} over many prompts."""
    out = {}
    for cs in rows_checks:
        for kind, ok in cs:
            h, t = out.get(kind, (0, 0))
            out[kind] = (h + ok, t + 1)
    return {k: h / t for k, (h, t) in sorted(out.items())}


if __name__ == "__main__":
    rows = load(sys.argv[1] if len(sys.argv) > 1 else "prompts/frozen_prompts.jsonl")
    empty = {"background": None, "objects": []}
    tags = {}
    for r in rows:
        for t in r.get("tags", []):
            tags[t] = tags.get(t, 0) + 1
    n = sum(len(checks(empty, r["expect"], noted=False)) for r in rows)
    print(f"{len(rows)} prompts, {n} checks; tags: {tags}")
