"""The scene checker: reads only the pixels of a tiny-world clip and recovers what is there.

Where it sits: the yardstick. `minivid.evaluate` uses it to score generated clips against
their prompts (adherence), and the tests use it on real clips to prove it is right before it
judges anything generated (adherence >= 0.99 on real val clips).

How it reads a clip (no learning, just the world's rules from `minivid.world`):
  1. every pixel gets its nearest palette colour; the background is the background colour
     that wins the most pixels;
  2. each object colour that covers enough pixels (in the median frame) is an object;
  3. per frame, that colour's bounding box gives centre and radius; the fill ratio
     area / box area gives the shape (square ~1.0, circle ~0.79, triangle ~0.5);
  4. the first frame gives size and start cell; the centre and radius tracks over time give
     the motion (direction, bounce, grow, shrink) and the speed.

    python -m minivid.checker tiny_data/val/clips.jsonl   # adherence of real clips (~1.0)
"""
import json
import os
import sys

import numpy as np

from minivid.captions import parse_caption
from minivid.world import BACKGROUNDS, OBJECT_COLOURS, POSITIONS, SIZES, Scene, render

_BG_NAMES, _OBJ_NAMES = list(BACKGROUNDS), list(OBJECT_COLOURS)
_BG_RGB = np.array([BACKGROUNDS[n] for n in _BG_NAMES], dtype=np.float32)    # (4, 3)
_OBJ_RGB = np.array([OBJECT_COLOURS[n] for n in _OBJ_NAMES], dtype=np.float32)  # (8, 3)


def _as_uint8(video):
    """Accept uint8 (T, H, W, 3) or a float tensor/array (C, T, H, W) in [-1, 1]."""
    v = np.asarray(video.detach().cpu() if hasattr(video, "detach") else video)
    if v.dtype != np.uint8:
        if v.ndim != 4 or v.shape[0] != 3:
            raise ValueError(f"expected a float clip (C=3, T, H, W) in [-1, 1], got {v.shape}")
        v = ((v.clip(-1, 1) + 1) * 127.5).round().astype(np.uint8).transpose(1, 2, 3, 0)
    if v.ndim != 4 or v.shape[-1] != 3:
        raise ValueError(f"expected uint8 (T, H, W, 3), got shape {v.shape}")
    return v


def _nearest(pixels, rgb):
    """Index of the nearest colour in `rgb` (K, 3) for each pixel (..., 3)."""
    d = ((pixels[..., None, :].astype(np.float32) - rgb) ** 2).sum(-1)  # (..., K)
    return d.argmin(-1)


def _labels(v):
    """uint8 (T, H, W, 3) -> (background index, labels (T, H, W): 0 = background, k = object
    colour k-1). Each pixel is the background or an object colour, whichever is nearer."""
    bg_votes = np.bincount(_nearest(v, _BG_RGB).ravel(), minlength=len(_BG_NAMES))
    bg = int(bg_votes.argmax())
    rgb = np.concatenate([_BG_RGB[bg:bg + 1], _OBJ_RGB])
    return bg, _nearest(v, rgb)


def centres(video, colours):
    """Where each named object colour is, frame by frame: {colour: float (T, 2) array of the
    (x, y) bounding-box centre in pixels, NaN in frames where that colour is (nearly) absent}.
    Clip extension measures jumps across clip boundaries with it (minivid/video_identity.py)."""
    v = _as_uint8(video)
    T, H, W, _ = v.shape
    _, label = _labels(v)
    out = {}
    for name in colours:
        masks = label == _OBJ_NAMES.index(name) + 1                     # (T, H, W)
        track = np.full((T, 2), np.nan)
        for t in range(T):
            ys, xs = np.nonzero(masks[t])
            if len(xs) >= 4 * (H / 32.0) ** 2:  # a few stray blurred pixels are not an object
                track[t] = ((xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2)
        out[name] = track
    return out


def detect(video):
    """Recover the scene from pixels: {"background": str, "objects": [dict]}.

    video: uint8 (T, H, W, 3) or float (C, T, H, W) in [-1, 1].
    Each object dict has colour, shape, size, position and, for clips (T > 1), motion and
    speed ("" when the motion has none), plus "pixels" (median area) for the curious.
    """
    v = _as_uint8(video)
    T, H, W, _ = v.shape
    s = H / 32.0
    bg, label = _labels(v)
    min_pixels = 10 * s * s   # smallest object: ~32 pixels at 32x32; blur strays are fewer
    objects = []
    for k, name in enumerate(_OBJ_NAMES, start=1):
        masks = label == k  # (T, H, W)
        areas = masks.reshape(T, -1).sum(1)
        if np.median(areas) < min_pixels:
            continue
        objects.append(_describe(name, masks, s))
    objects.sort(key=lambda o: -o["pixels"])
    return {"background": _BG_NAMES[bg], "objects": objects}


def _describe(colour, masks, s):
    """Shape, size, start cell, motion and speed of one object from its per-frame masks."""
    T, H, W = masks.shape
    cx, cy, rad, fill = [], [], [], []
    for t in range(T):
        ys, xs = np.nonzero(masks[t])
        if len(xs) == 0:  # vanished in this frame: reuse the last track point
            cx.append(cx[-1] if cx else W / 2), cy.append(cy[-1] if cy else H / 2)
            rad.append(rad[-1] if rad else 0.0), fill.append(fill[-1] if fill else 0.0)
            continue
        x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        cx.append((x0 + x1) / 2), cy.append((y0 + y1) / 2)
        rad.append(max(x1 - x0, y1 - y0) / 2)
        fill.append(len(xs) / ((x1 - x0) * (y1 - y0)))
    cx, cy, rad = np.array(cx), np.array(cy), np.array(rad)
    f = float(np.median(fill))
    shape = "square" if f > 0.9 else ("circle" if f > 0.64 else "triangle")
    # A square's box is 1.7 r wide, the others' 2 r; size is judged at the first frame.
    r0 = rad[0] / (0.85 if shape == "square" else 1.0)
    size = "small" if r0 < (SIZES["small"] + SIZES["large"]) / 2 * s else "large"
    names = list(POSITIONS)
    cells = np.array([POSITIONS[n] for n in names]) * H
    position = names[int(((cells - [cx[0], cy[0]]) ** 2).sum(1).argmin())]
    # The same rule on the median box over all frames: a fast small object smears in some
    # frames (a longer box), which the first frame alone can misread; the median cannot.
    r_med = float(np.median(rad)) / (0.85 if shape == "square" else 1.0)
    size_median = "small" if r_med < (SIZES["small"] + SIZES["large"]) / 2 * s else "large"
    obj = {"colour": colour, "shape": shape, "size": size, "position": position,
           "size_median": size_median, "pixels": int(np.median(masks.reshape(T, -1).sum(1)))}
    if T > 1:
        obj["motion"], obj["speed"] = _motion(cx, cy, rad, s)
    return obj


def _motion(cx, cy, rad, s):
    """(motion, speed) from the centre and radius tracks, each of length T (pixels)."""
    T = len(cx)
    dx, dy = cx[-1] - cx[0], cy[-1] - cy[0]
    y_range = cy.max() - cy.min()
    ratio = rad[-1] / max(rad[0], 1e-6)
    if ratio > 1.3:
        return "grow", ""
    if ratio < 0.77:
        return "shrink", ""
    # A bounce rises and comes back down: a large vertical range but a small net change.
    if y_range > 4 * s and abs(dy) < 0.5 * y_range and np.ptp(cx) < 2 * s:
        # Fast bounces hop every 8 frames, so the ball is back on the floor mid-clip.
        mid = cy[T // 2]
        return "bounce", ("fast" if mid > cy.max() - 0.5 * y_range else "slow")
    step = max(abs(dx), abs(dy))
    if step < 2 * s:
        return "still", ""
    hor = "" if abs(dx) < 0.4 * step else ("right" if dx > 0 else "left")
    ver = "" if abs(dy) < 0.4 * step else ("down" if dy > 0 else "up")
    motion = f"{ver}-{hor}" if hor and ver else (hor or ver)
    speed = "fast" if step / (T - 1) > 0.75 * s else "slow"
    return motion, speed


# ----------------------------------------------------------------------------- scoring
def stated(target):
    """What a target states, in parse_caption's form. target: caption str, scene spec dict
    (as in a manifest's "spec") or a `world.Scene`."""
    if isinstance(target, str):
        return parse_caption(target)
    if hasattr(target, "to_dict"):
        target = target.to_dict()
    still = target.get("frames", 16) == 1
    objs = []
    for o in target["objects"]:
        d = {k: o[k] for k in ("colour", "shape", "size", "position")}
        if not still:
            d["motion"] = o["motion"]
            if o.get("speed"):
                d["speed"] = o["speed"]
        objs.append(d)
    return {"background": target["background"], "objects": objs}


def score_by_attribute(found, want) -> dict:
    """{attribute: (hits, total)} over the attributes stated in `want` (detect's output in
    `found`): "background", "colour", "shape", ..., and "position_2" for the positions of
    objects in two-object scenes, the hardest thing to get right (binding each position to
    the right object).

    Each stated object is matched to the found object of the same colour (else, to an
    unmatched found object of the same shape, so a wrong colour costs one attribute, not all).
    """
    out = {}

    def count(key, ok):
        hits, total = out.get(key, (0, 0))
        out[key] = (hits + int(ok), total + 1)

    if want["background"] is not None:
        count("background", found["background"] == want["background"])
    free = list(found["objects"])
    for w in want["objects"]:
        match = next((f for f in free if f.get("colour") == w.get("colour")), None)
        if match is None:
            match = next((f for f in free if f.get("shape") == w.get("shape")), None)
        if match is not None:
            free.remove(match)
        for key, value in w.items():
            count(key, match is not None and match.get(key, "") == value)
            if key == "position" and len(want["objects"]) == 2:
                count("position_2", match is not None and match.get(key, "") == value)
    return out


def score(found, want):
    """(hits, total) of the stated attributes in `want` that hold in `found` (detect output)."""
    parts = [v for k, v in score_by_attribute(found, want).items() if k != "position_2"]
    return sum(h for h, _ in parts), sum(t for _, t in parts)


def adherence(video, target):
    """Fraction of the attributes stated by `target` (caption, spec or Scene) that the clip's
    pixels show. 1.0 = everything said is there."""
    hits, total = score(detect(video), stated(target))
    if total == 0:
        raise ValueError("the target states no tiny-world attribute to check (is it a tiny-"
                         "world caption? e.g. 'a red circle moves to the right')")
    return hits / total


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else "tiny_data/val/clips.jsonl"
    rows = [json.loads(line) for line in open(path)]
    a = [adherence(render(Scene.from_dict(r["spec"])), r["caption"]) for r in rows]
    print(f"{os.path.basename(path)}: mean adherence {np.mean(a):.4f} over {len(a)} clips")
