"""A scene of the tiny world: what it holds, how it moves, how it looks.

Where it sits: under the dataset writer (minivid/world.py) and long clips
(minivid/long_clips.py); the checker and the benches draw and render scenes with it too.
A scene is pure data (`Scene`, `Obj`: named attributes from minivid/vocab.py, no free
floats), so the dense caption can pin down everything visible and the checker can recover it
from pixels. From the data, this file computes each object's path (`trajectory`, defined for
clips of any length), draws random scenes under the world's rules (`sample_scene`) and
renders exact pixels (`render`: hard edges, flat colours).

    scene = sample_scene(np.random.default_rng(0), frames=16)   # 1-2 objects, a background
    render(scene)                                               # uint8 (16, 32, 32, 3)

Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_01a_world.py -q`
"""
from dataclasses import asdict, dataclass, field

import numpy as np

from minivid.vocab import (BACKGROUNDS, BOUNCE_HEIGHT, DIRECTIONS, GROW, GROW_FRAMES, MOTIONS,
                           MOVING, OBJECT_COLOURS, POSITIONS, SHAPES, SHRINK, SIZES, SPEEDS)


@dataclass
class Obj:
    shape: str
    colour: str
    size: str
    position: str          # named start cell, a key of POSITIONS
    motion: str = "still"  # a key of MOTIONS ("still" for images)
    speed: str = ""        # "slow" | "fast" for MOVING motions, "" otherwise
    # Changes of motion for long clips: [frame, motion, speed] each, frames increasing. From
    # that frame on the object moves the new way, starting where it is ("it moves right, then
    # turns and moves up"). Empty for every short clip and image.
    turns: list = field(default_factory=list)


@dataclass
class Scene:
    background: str
    objects: list = field(default_factory=list)  # list[Obj]
    frames: int = 16                             # 1 = a still image
    res: int = 32

    def to_dict(self):
        d = asdict(self)
        for o in d["objects"]:  # short clips keep the manifest layout they always had
            if not o["turns"]:
                del o["turns"]
        return d

    @staticmethod
    def from_dict(d):
        return Scene(d["background"], [Obj(**o) for o in d["objects"]], d["frames"], d["res"])


# ----------------------------------------------------------------------------- geometry
# Physics that stays defined for clips of ANY length (long clips, minivid/extend.py):
# - a moving object REFLECTS off the frame edges like a billiard ball: the velocity component
#   that would take its box (centre +- r) out of the frame flips sign, the speed is kept;
# - a bounce hops forever (period 16 or 8 frames) on the floor where it started;
# - grow / shrink change the radius over GROW_FRAMES frames, then the object holds its size;
# - objects do not collide with each other: the later one is drawn on top where they cross;
# - `Obj.turns` switch the motion at given frames, from wherever the object is then.
# A short clip's objects never reach an edge (sample_object rejects those), so for 16-frame
# clips this is exactly straight-line motion: the dataset is what it always was.


def _reflect(u, lo, hi):
    """Fold positions u into [lo, hi] by mirror reflections at both walls (arrays, pixels).
    Values already inside are returned unchanged, bit for bit."""
    span = np.maximum(hi - lo, 1e-9)
    m = np.mod(u - lo, 2 * span)
    folded = lo + np.where(m <= span, m, 2 * span - m)
    return np.where((u >= lo) & (u <= hi), u, folded)


def _piece(motion, speed, x0, y0, r0, t, s):
    """Centre and radius over times t (frames since the piece began) for ONE motion that
    starts at (x0, y0) with radius r0; no walls yet."""
    x, y, r = np.full(len(t), x0), np.full(len(t), y0), np.full(len(t), r0)
    if motion in DIRECTIONS:
        dx, dy = DIRECTIONS[motion]
        v = SPEEDS[speed] * s
        x, y = x0 + dx * v * t, y0 + dy * v * t
    elif motion == "bounce":
        # A ball bouncing on the floor at its start height: |sin| hops, one hop per period.
        period = 16 if speed == "slow" else 8
        y = y0 - BOUNCE_HEIGHT * s * np.abs(np.sin(np.pi * t / period))
    elif motion in ("grow", "shrink"):
        end = GROW if motion == "grow" else SHRINK
        r = r0 * (1 + (end - 1) * np.minimum(t / GROW_FRAMES, 1.0))
    return x, y, r


def trajectory(obj, frames, res, walls=True):
    """Centre and radius of `obj` in every frame: three float arrays of length T (pixels).

    walls=False is free flight (straight through the edges): `fits` uses it to keep short
    clips' objects away from the edges."""
    s = res / 32.0
    x0, y0 = POSITIONS[obj.position]
    state = (x0 * res, y0 * res, SIZES[obj.size] * s)          # centre and radius at a piece start
    pieces = [(0, obj.motion, obj.speed)] + [tuple(tr) for tr in obj.turns]
    x, y, r = (np.zeros(frames) for _ in range(3))
    for k, (f0, motion, speed) in enumerate(pieces):
        if f0 >= frames:
            break
        f1 = min(pieces[k + 1][0] if k + 1 < len(pieces) else frames, frames)
        t = np.arange(f1 - f0 + 1, dtype=np.float64)           # one frame past the piece's end
        px, py, pr = _piece(motion, speed, *state, t, s)
        if walls:
            px, py = _reflect(px, pr, res - pr), _reflect(py, pr, res - pr)
        x[f0:f1], y[f0:f1], r[f0:f1] = px[:-1], py[:-1], pr[:-1]
        state = (px[-1], py[-1], pr[-1])                       # the next piece starts here
    return x, y, r


def shape_mask(shape, cx, cy, r, res):
    """Boolean (H, W) mask of one shape, tested at pixel centres (hard edges, exact)."""
    yy, xx = np.mgrid[0:res, 0:res] + 0.5
    if shape == "circle":
        return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    if shape == "square":  # half-side 0.85 r: about the same area as the circle
        h = 0.85 * r
        return (np.abs(xx - cx) <= h) & (np.abs(yy - cy) <= h)
    if shape == "triangle":  # upright isosceles triangle inscribed in the 2r x 2r box
        top, bottom = cy - r, cy + r
        frac = (yy - top) / (2 * r)  # 0 at the apex, 1 at the base
        return (yy >= top) & (yy <= bottom) & (np.abs(xx - cx) <= frac * r)
    raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def bounding_boxes(obj, frames, res, walls=True):
    """(T, 4) array of x0, y0, x1, y1 boxes, for the fits-in-frame and no-overlap rules."""
    x, y, r = trajectory(obj, frames, res, walls)
    return np.stack([x - r, y - r, x + r, y + r], axis=1)


def fits(obj, frames, res):
    """True when the object stays inside the frame in free flight (never touches a wall)."""
    b = bounding_boxes(obj, frames, res, walls=False)
    return bool((b[:, :2] >= 0).all() and (b[:, 2:] <= res).all())


def overlaps(a, b, frames, res, margin=1.0):
    ba, bb = bounding_boxes(a, frames, res), bounding_boxes(b, frames, res)
    sep = ((ba[:, 2] + margin < bb[:, 0]) | (bb[:, 2] + margin < ba[:, 0])
           | (ba[:, 3] + margin < bb[:, 1]) | (bb[:, 3] + margin < ba[:, 1]))
    return bool((~sep).any())


# ----------------------------------------------------------------------------- sampling
# Compositional test split: these colour+shape pairs never appear in train or val.
HELD_OUT = {("red", "triangle"), ("green", "circle"), ("blue", "square"), ("yellow", "triangle")}


def sample_object(rng, frames, res, colours, pairs_ok):
    """Draw one object that stays fully inside the frame (rejection sampling)."""
    while True:
        shape, colour = rng.choice(SHAPES), rng.choice(colours)
        if not pairs_ok((colour, shape)):
            continue
        motion = "still" if frames == 1 else rng.choice(MOTIONS)
        obj = Obj(shape=str(shape), colour=str(colour), size=str(rng.choice(list(SIZES))),
                  position=str(rng.choice(list(POSITIONS))), motion=str(motion),
                  speed=str(rng.choice(list(SPEEDS))) if motion in MOVING else "")
        if fits(obj, frames, res):
            return obj


def sample_scene(rng, split="train", frames=16, res=32, n_objects=None):
    """A random scene. `split` "test" puts a held-out colour+shape pair in every scene;
    "train" and "val" never contain one. n_objects: 1 or 2, else drawn (60% one object)."""
    if n_objects is None:
        n_objects = 1 if rng.random() < 0.6 else 2
    while True:
        scene = Scene(background=str(rng.choice(list(BACKGROUNDS))), frames=frames, res=res)
        colours = list(OBJECT_COLOURS)
        for k in range(n_objects):
            if split == "test" and k == 0:
                ok = lambda p: p in HELD_OUT  # noqa: E731
            elif split == "test":
                ok = lambda p: True  # noqa: E731
            else:
                ok = lambda p: p not in HELD_OUT  # noqa: E731
            obj = sample_object(rng, frames, res, colours, ok)
            colours.remove(obj.colour)  # two objects never share a colour
            scene.objects.append(obj)
        a = scene.objects
        if len(a) == 1 or (a[0].position != a[1].position and not overlaps(a[0], a[1], frames, res)):
            return scene


# ----------------------------------------------------------------------------- rendering
def palette(scene):
    """The scene's colours as a (K, 3) uint8 array: index 0 background, then each object."""
    cols = [BACKGROUNDS[scene.background]] + [OBJECT_COLOURS[o.colour] for o in scene.objects]
    return np.array(cols, dtype=np.uint8)


def render_indices(scene):
    """Palette indices of every pixel: uint8 (T, H, W); 0 = background, k = object k."""
    T, R = scene.frames, scene.res
    out = np.zeros((T, R, R), dtype=np.uint8)
    for k, obj in enumerate(scene.objects, start=1):
        x, y, r = trajectory(obj, T, R)
        for t in range(T):
            out[t][shape_mask(obj.shape, x[t], y[t], r[t], R)] = k
    return out


def render(scene):
    """The scene's pixels: uint8 (T, H, W, 3)."""
    return palette(scene)[render_indices(scene)]
