"""How a long video is scored against itself: identity, static adherence, continuity.

Where it sits: `python -m minivid.evaluate extend` (minivid/extend_bench.py) makes the long
videos; this file reads them. A video is uint8 (1 + 16 N, H, W, 3): clip 1 has 17 frames, every
later clip 16 (`split`). The scene checker (minivid/checker.py) finds the background and each
object's colour, shape, size and track in a clip; from those:
    IDENTITY of clip N: does it show clip 1's background and objects (matched by colour) with
        their shapes and sizes? By part (`identity_parts`), size read at the first frame or as
        the median over the clip (one smeared frame of a fast small object no longer decides
        it); an object clip 1 did not have counts as a miss.
    STATIC ADHERENCE: what the prompt states of background, colours, shapes and sizes, which
        must hold in every clip of a one-prompt video (positions and motions move on).
    CONTINUITY: each object's centre jump across a clip boundary (px) against its
        frame-to-frame motion inside clips.
    HOW IT IS LOST (`losses`): each clip-1 object in each later clip is kept whole, or gone
        (no object of its colour and no new colour: faded out), or recoloured (gone, and a
        colour clip 1 did not have appeared), or kept with another shape or size. A missing
        colour costs the colour, shape AND size parts of identity at once, so a few objects
        that fade weigh three times; and per video, so one bad video is not read as a drift
        of all of them.
    BY HOW CLIP 1 DREW IT (`as_asked`): the reference is the model's own clip 1, flaws and
        all. Each clip-1 object is "drawn as asked" when the prompt names an object of its
        colour with its shape and size; the others (a wrong shape or size, a stray blob the
        prompt never named) are "drawn otherwise". Identity is then also counted per object
        (its colour, shape and size in clip N) for each group apart: keeping what clip 1 drew
        right is the memory the video needs; keeping a flaw is consistency with a mistake,
        and a later clip that mends it (towards the prompt it also reads) counts as a loss.
Every rate is hits / total, summed over videos, per clip index.
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_07_extend.py tests/test_07e_extend_scripts.py -q -m "slow or not slow"`
"""
import numpy as np

from minivid import checker
from minivid.history import clip_prompts
from minivid.long_clips import clip_start

STATIC = ("colour", "shape", "size")
LOSSES = ("kept", "gone", "recoloured", "shape", "size")   # what became of a clip-1 object


def split(video, clips: int) -> list[np.ndarray]:
    """uint8 (1 + 16 clips, H, W, 3) -> the clips' frames: 17, then 16 each."""
    return [video[clip_start(m):clip_start(m + 1)] for m in range(clips)]


def match_objects(first: dict, later: dict) -> tuple[list, list]:
    """Clip 1's objects found again in clip N (detect outputs), by colour -> ([(object, its
    match in `later` or None)], [objects of `later` whose colour clip 1 did not have])."""
    pairs = [(o, next((f for f in later["objects"] if f["colour"] == o["colour"]), None))
             for o in first["objects"]]
    known = {o["colour"] for o in first["objects"]}
    return pairs, [f for f in later["objects"] if f["colour"] not in known]


def identity_parts(first: dict, later: dict, size: str = "size") -> dict:
    """{part: (hits, total)}: does `later` (detect output of clip N) show what `first` (clip 1)
    showed? "background"; per clip-1 object "colour" (present in clip N), "shape", "size"
    (read by `size`: "size" = at the first frame, "size_median" = the median over the clip);
    "extra": each object in clip N that clip 1 did not have counts as one miss."""
    parts = {"background": (int(later["background"] == first["background"]), 1),
             "colour": (0, 0), "shape": (0, 0), "size": (0, 0), "extra": (0, 0)}
    pairs, new = match_objects(first, later)
    for o, match in pairs:
        for key, read in (("colour", "colour"), ("shape", "shape"), ("size", size)):
            h, t = parts[key]
            parts[key] = (h + int(match is not None and match[read] == o[read]), t + 1)
    parts["extra"] = (0, len(new))
    return parts


def as_asked(obj: dict, prompt: str) -> bool:
    """Did clip 1 draw this object (a detect output's) the way the prompt asks: does the prompt
    name an object of its colour, with its shape and its size (read as the median over the
    clip)?"""
    named = next((o for o in checker.stated(prompt)["objects"] if o["colour"] == obj["colour"]),
                 None)
    return named is not None and (named["shape"], named["size"]) == (obj["shape"],
                                                                     obj["size_median"])


def object_kept(obj: dict, later: dict) -> tuple[int, int]:
    """(hits, 3) for one clip-1 object in clip N (detect output `later`): is an object of its
    colour there, with its shape, with its size (median over the clip)? identity_parts' three
    object parts, for this object alone."""
    parts = identity_parts({"background": later["background"], "objects": [obj]}, later,
                           "size_median")
    return sum(parts[k][0] for k in STATIC), len(STATIC)


def identity(first: dict, later: dict, size: str = "size") -> tuple[int, int]:
    """(hits, total) over identity_parts: the identity of clip N with clip 1."""
    parts = identity_parts(first, later, size).values()
    return sum(h for h, _ in parts), sum(t for _, t in parts)


def losses(first: dict, later: dict) -> dict:
    """{LOSSES: count, "objects": n} for clip 1's n objects (detect output `first`) in clip N
    (`later`), size read as the median over the clip. Each object is kept, gone or recoloured:
    of the objects whose colour is missing, as many as there are new colours in clip N count
    as recoloured, the rest as gone. A kept-colour object with a wrong shape and a wrong size
    counts in both."""
    out = dict.fromkeys(LOSSES, 0)
    out["objects"] = len(first["objects"])
    pairs, new = match_objects(first, later)
    missing = sum(match is None for _, match in pairs)
    out["recoloured"] = min(missing, len(new))
    out["gone"] = missing - out["recoloured"]
    for o, match in pairs:
        if match is None:
            continue
        wrong_shape = match["shape"] != o["shape"]
        wrong_size = match["size_median"] != o["size_median"]
        out["kept"] += not (wrong_shape or wrong_size)
        out["shape"] += wrong_shape
        out["size"] += wrong_size
    return out


def static_adherence(found: dict, prompt: str) -> tuple[int, int]:
    """(hits, total) over what the prompt states of background, colours, shapes and sizes:
    what must hold in EVERY clip of a one-prompt video (positions and motions move on)."""
    want = checker.stated(prompt)
    want = {"background": want["background"],
            "objects": [{k: v for k, v in o.items() if k in STATIC} for o in want["objects"]]}
    return checker.score(found, want)


def boundary_stats(video, colours, clips: int):
    """-> (jumps, moves): each object's centre jump across each clip boundary (px), and every
    frame-to-frame move inside clips (px). Frames where the object is missing are skipped."""
    tracks = checker.centres(video, colours)
    jumps, moves = [], []
    boundaries = {clip_start(m) for m in range(1, clips)}   # first frame of clips 2..n
    for track in tracks.values():
        step = np.linalg.norm(np.diff(track, axis=0), axis=1)   # (T-1,) move into frame t+1
        for t, d in enumerate(step):
            if np.isnan(d):
                continue
            (jumps if t + 1 in boundaries else moves).append(float(d))
    return jumps, moves


PARTS = ("background", "colour", "shape", "size", "extra")


def score_one_prompt(videos, prompts, clips):
    """Identity and static adherence per clip index, boundary jumps vs motion; identity also
    with each object's size read as the median over the clip, and that one per part."""
    ident, ident_med = np.zeros((clips, 2)), np.zeros((clips, 2))
    by_part = {k: np.zeros((clips, 2)) for k in PARTS}
    adher = np.zeros((clips, 2))
    jumps, moves = [], []
    lost, per_video = dict.fromkeys(LOSSES + ("objects",), 0), []
    by_start = {True: np.zeros((clips, 2)), False: np.zeros((clips, 2))}   # as_asked or not
    n_asked = np.zeros(2)                       # clip-1 objects drawn as asked, all of them
    for video, prompt in zip(videos, prompts):
        parts = [checker.detect(c) for c in split(video, clips)]
        for o in parts[0]["objects"]:
            right = as_asked(o, prompt)
            n_asked += (right, 1)
            for m, found in enumerate(parts):
                by_start[right][m] += object_kept(o, found)
        mine = np.zeros(2)
        for m, found in enumerate(parts):
            ident[m] += identity(parts[0], found)
            for k, ht in identity_parts(parts[0], found, "size_median").items():
                by_part[k][m] += ht
                ident_med[m] += ht
                mine += ht if m else 0                  # this video, clips 2..N
            if m:
                for k, n in losses(parts[0], found).items():
                    lost[k] += n
            adher[m] += static_adherence(found, prompt)
        per_video.append(float(mine[0] / max(mine[1], 1)))
        j, mv = boundary_stats(video, [o["colour"] for o in parts[0]["objects"]], clips)
        jumps += j
        moves += mv
    rate = lambda a: (a[:, 0] / np.maximum(a[:, 1], 1)).tolist()   # noqa: E731
    return {"identity": rate(ident), "identity_median_size": rate(ident_med),
            "identity_by_part": {k: rate(by_part[k]) for k in PARTS[:-1]},
            "extra_objects_per_clip": (by_part["extra"][:, 1] / max(len(videos), 1)).tolist(),
            "static_adherence": rate(adher),
            # clips 2..N: what became of clip 1's objects (shares), each video's identity
            "lost": {k: lost[k] / max(lost["objects"], 1) for k in LOSSES},
            "video_identity": per_video,
            # per clip-1 object (colour, shape, size), apart by how clip 1 drew it (as_asked)
            "drawn_as_asked": float(n_asked[0] / max(n_asked[1], 1)),
            "clip1_objects": int(n_asked[1]),
            "identity_by_start": {"as_asked": rate(by_start[True]),
                                  "otherwise": rate(by_start[False])},
            "boundary_jump_px": float(np.mean(jumps)) if jumps else float("nan"),
            "within_clip_motion_px": float(np.mean(moves)) if moves else float("nan")}


def score_per_clip(videos, prompts_per_video, clips):
    """Adherence of each clip to its own prompt (the prompt as written, positions included for
    clip 1 only, as the model saw it) and identity vs clip 1 -> per clip index."""
    adher, ident = np.zeros((clips, 2)), np.zeros((clips, 2))
    for video, prompts in zip(videos, prompts_per_video):
        texts = clip_prompts([prompts], clips)[0]
        parts = split(video, clips)
        first = checker.detect(parts[0])
        for m, (part, text) in enumerate(zip(parts, texts)):
            found = checker.detect(part)
            adher[m] += checker.score(found, checker.stated(text))
            ident[m] += identity(first, found)
    return {"adherence": (adher[:, 0] / np.maximum(adher[:, 1], 1)).tolist(),
            "identity": (ident[:, 0] / np.maximum(ident[:, 1], 1)).tolist()}
