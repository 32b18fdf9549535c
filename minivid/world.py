"""The tiny captioned world: a deterministic generator of small captioned clips and images.

Where it sits: the very first stage. Every model in minivid trains on what this file makes,
and `minivid.checker` judges generated clips against the same rules, so the world is kept
simple enough to check exactly and rich enough to need text and motion:

    1-2 objects  x  3 shapes  x  8 colours  x  2 sizes  x  9 start positions
    x  12 motions (still, 8 directions, bounce, grow, shrink)  x  2 speeds  x  4 backgrounds

A scene is pure data (`Scene`, `Obj`: named attributes only, no free floats), so the dense
caption can pin down everything visible and the checker can recover it from pixels.
Rendering is exact (hard edges, flat colours), so clips are stored losslessly as palette GIFs
and images as PNGs, in the same manifest + media layout a user's own data uses (see
`minivid/data.py`). Captions live in `minivid/captions.py`.

Run it (CPU, about half a minute for the default sizes):
    python -m minivid.world --out tiny_data            # the default dataset + preview.gif
    python -m minivid.world --out /tmp/w64 --res 64 --n-train-clips 500
"""
import argparse
import json
import os
from dataclasses import asdict, dataclass, field
from multiprocessing import Pool

import numpy as np
from PIL import Image
from tqdm import tqdm

from minivid import captions

# ----------------------------------------------------------------------------- vocabulary
# Object colours and background colours are far apart in RGB, so a pixel's nearest palette
# entry is unambiguous even in a blurry generated clip.
OBJECT_COLOURS = {
    "red": (230, 40, 40), "orange": (255, 150, 20), "yellow": (245, 230, 40),
    "green": (40, 200, 60), "cyan": (40, 220, 230), "blue": (50, 80, 245),
    "purple": (170, 60, 220), "white": (245, 245, 245),
}
BACKGROUNDS = {
    "black": (0, 0, 0), "grey": (110, 110, 110), "navy": (20, 25, 90), "brown": (95, 60, 30),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 4.0, "large": 7.0}  # radius in pixels at 32x32 (scaled with resolution)
# 3x3 grid of named start positions: (x, y) as fractions of the frame.
POSITIONS = {
    "top left": (0.22, 0.22), "top": (0.5, 0.22), "top right": (0.78, 0.22),
    "left": (0.22, 0.5), "centre": (0.5, 0.5), "right": (0.78, 0.5),
    "bottom left": (0.22, 0.78), "bottom": (0.5, 0.78), "bottom right": (0.78, 0.78),
}
# Direction of travel per frame, image coordinates (y grows downwards).
DIRECTIONS = {
    "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1),
    "up-left": (-1, -1), "up-right": (1, -1), "down-left": (-1, 1), "down-right": (1, 1),
}
MOTIONS = ("still", *DIRECTIONS, "bounce", "grow", "shrink")
SPEEDS = {"slow": 0.5, "fast": 1.0}  # pixels per frame at 32x32 along each moving axis
MOVING = (*DIRECTIONS, "bounce")     # motions that have a speed
BOUNCE_HEIGHT = 8.0                  # pixels at 32x32
GROW, SHRINK = 1.6, 0.55             # final radius / start radius
# Compositional test split: these colour+shape pairs never appear in train or val.
FRAME_MS = 120                       # GIF frame time (about 8 fps)
HELD_OUT = {("red", "triangle"), ("green", "circle"), ("blue", "square"), ("yellow", "triangle")}


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
GROW_FRAMES = 15                     # frames a grow / shrink takes (a 16-frame clip's length)


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


# ----------------------------------------------------------------------------- writing
def write_media(path, scene):
    """PNG for an image, palette GIF for a clip: both exact, since the world has < 256 colours."""
    idx, pal = render_indices(scene), palette(scene)
    flat_pal = pal.reshape(-1).tolist() + [0] * (768 - pal.size)
    frames = []
    for t in range(scene.frames):
        im = Image.fromarray(idx[t], mode="P")
        im.putpalette(flat_pal)
        frames.append(im)
    if scene.frames == 1:
        frames[0].convert("RGB").save(path)
    else:
        # ~8 fps (GIF delays are in 1/100 s). Writers merge identical consecutive frames (a
        # pause) into one longer frame; the comment records the frame time so that
        # minivid.data can expand them back exactly. optimize=False keeps the palette exact.
        frames[0].save(path, save_all=True, append_images=frames[1:], duration=FRAME_MS,
                       loop=0, optimize=False, disposal=1,
                       comment=f"minivid frame_ms={FRAME_MS}".encode())


def _make_one(job):
    """Worker: render and write sample `i`; its RNG depends only on (seed, split, kind, i), so
    the output is identical whatever the number of workers or the order they run in."""
    out, split, kind, i, seed, frames, res = job
    key = [seed, ["train", "val", "test"].index(split), KINDS.index(kind), i]
    rng = np.random.default_rng(key)
    if kind == "long":  # `frames` is the number of clips here
        from minivid.long_clips import clip_scene, sample_long_scene  # (it imports this file)
        scene = sample_long_scene(rng, split, clips=frames, res=res)
    else:
        scene = sample_scene(rng, split, frames=1 if kind == "images" else frames, res=res)
    ext = "png" if kind == "images" else "gif"
    rel = f"{kind}/{i:06d}.{ext}"
    write_media(os.path.join(out, split, rel), scene)
    row = {"media": rel, "caption": captions.dense_caption(scene if kind != "long" else
                                                           clip_scene(scene, 0), rng),
           "sparse": captions.sparse_caption(scene, rng), "spec": scene.to_dict()}
    if kind == "long":  # one dense caption per clip; continuations leave positions out
        row["clips"] = [captions.dense_caption(clip_scene(scene, m), rng, where=False)
                        for m in range(1, frames)]
    return row


KINDS = ("images", "clips", "long")


def generate(out, sizes, seed=0, frames=16, res=32, workers=2, long_clips=8):
    """Write `out/<split>/<kind>.jsonl` manifests and their media. `sizes` maps
    (split, kind) -> count, e.g. {("train", "clips"): 8000, ...}; kind "long" makes long clips
    of `long_clips` clips (1 + 16 long_clips frames). Returns the manifest paths."""
    paths = []
    with Pool(workers) if workers > 1 else _NoPool() as pool:
        for (split, kind), n in sizes.items():
            os.makedirs(os.path.join(out, split, kind), exist_ok=True)
            length = long_clips if kind == "long" else frames
            jobs = [(out, split, kind, i, seed, length, res) for i in range(n)]
            rows = list(tqdm(pool.imap(_make_one, jobs, chunksize=64), total=n,
                             desc=f"{split}/{kind}", leave=False))
            path = os.path.join(out, split, f"{kind}.jsonl")
            with open(path + ".tmp", "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in rows)
            os.replace(path + ".tmp", path)  # a killed run never leaves half a manifest
            paths.append(path)
    return paths


class _NoPool:
    """Stand-in for multiprocessing.Pool when workers=1 (tests, debuggers)."""
    def imap(self, fn, jobs, chunksize=1):
        return map(fn, jobs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def default_sizes(n_train_images=16000, n_train_clips=8000, n_eval=512, n_train_long=2000,
                  n_val_long=64):
    sizes = {("train", "images"): n_train_images, ("train", "clips"): n_train_clips}
    for split in ("val", "test"):
        sizes[(split, "images")] = n_eval
        sizes[(split, "clips")] = n_eval
    sizes[("train", "long")], sizes[("val", "long")] = n_train_long, n_val_long
    return {k: n for k, n in sizes.items() if n > 0}


def main(argv=None):
    p = argparse.ArgumentParser(description="Generate the tiny captioned world (images + clips,"
                                " dense and sparse captions, train/val/compositional test).",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default="tiny_data", help="output folder")
    p.add_argument("--seed", type=int, default=0, help="world seed; same seed, same files")
    p.add_argument("--res", type=int, default=32, help="frame size in pixels (32 or 64)")
    p.add_argument("--frames", type=int, default=16, help="frames per clip")
    p.add_argument("--n-train-images", type=int, default=16000, help="train images")
    p.add_argument("--n-train-clips", type=int, default=8000, help="train clips")
    p.add_argument("--n-eval", type=int, default=512, help="images and clips per val/test split")
    p.add_argument("--n-train-long", type=int, default=2000, help="long train clips (clip "
                   "extension, minivid/extend.py); 0: none")
    p.add_argument("--n-val-long", type=int, default=64, help="long val clips; 0: none")
    p.add_argument("--long-clips", type=int, default=8, help="clips per long clip: 1 + 16 * "
                   "this many frames")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                   help="processes that render and write the files")
    p.add_argument("--no-preview", action="store_true", help="skip writing preview.gif")
    a = p.parse_args(argv)
    if a.res < 16 or a.res % 8:
        p.error(f"--res {a.res}: use a multiple of 8 that is at least 16 (32 and 64 are tested)")
    if a.frames < 1:
        p.error(f"--frames {a.frames}: need at least 1 frame")
    if a.long_clips < 2:
        p.error(f"--long-clips {a.long_clips}: a long clip needs at least 2 clips")
    sizes = default_sizes(a.n_train_images, a.n_train_clips, a.n_eval, a.n_train_long,
                          a.n_val_long)
    paths = generate(a.out, sizes, seed=a.seed, frames=a.frames, res=a.res, workers=a.workers,
                     long_clips=a.long_clips)
    for path in paths:
        print(f"wrote {path}")
    if not a.no_preview:
        print(f"wrote {write_preview(a.out)}")


def write_preview(out, n=12):
    """A GIF grid of val clips with their dense captions, for a person to open."""
    from minivid.data import save_grid  # local import: data.py is not needed to generate

    rows = [json.loads(line) for line in open(os.path.join(out, "val", "clips.jsonl"))][:n]
    clips = np.stack([render(Scene.from_dict(r["spec"])) for r in rows])
    path = os.path.join(out, "preview.gif")
    save_grid(path, clips, [r["caption"] for r in rows], cols=4)
    return path


if __name__ == "__main__":
    main()
