"""Long clips: the tiny world run on for many clips, cut the way clip extension cuts it.

Where it sits: `minivid.world` writes the long split with these (kind "long"); clip extension
(minivid/extend.py) trains on it, and `minivid.evaluate extend` scores each clip of a long
video against `clip_scene`. The physics that makes any length well defined (reflection off
the edges, grow / shrink that hold, turns at given frames) is `minivid.scene.trajectory`;
this file decides where the turns go and what each clip of a long clip is:

    scene = sample_long_scene(rng, clips=8)     # 1 + 16 x 8 = 129 frames
    render(scene)                               # uint8 (129, 32, 32, 3), minivid.scene
    clip_scene(scene, m)                        # clip m as a short Scene: its caption, its truth

Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_07_extend.py -q -k "01 or 02"`
"""
import numpy as np

from minivid.scene import Obj, Scene, overlaps, sample_scene, trajectory
from minivid.vocab import BOUNCE_HEIGHT, DIRECTIONS, GROW_FRAMES, MOVING, POSITIONS, SIZES, SPEEDS

# A long clip is cut into CLIPS the way a causal tf = 4 VAE and minivid/extend.py cut it:
# clip 0 is frames 0..16 (1 + 16 frames: 5 latent frames), clip m >= 1 is frames
# 16 m + 1 .. 16 m + 16 (the next 4 latent frames). A long clip of k clips has 1 + 16 k frames.
CLIP = 16                            # frames a continuation clip adds
TURN_MOTIONS = ("still", *DIRECTIONS, "bounce")  # what an object may turn to


def clip_start(m):
    """First frame of clip m of a long clip."""
    return 0 if m == 0 else CLIP * m + 1


def motion_at(obj, frame):
    """(motion, speed) the object is doing at `frame`: the last turn at or before it; a grow or
    shrink that has run its GROW_FRAMES is "still"."""
    f0, motion, speed = 0, obj.motion, obj.speed
    for f, m, sp in obj.turns:
        if f <= frame:
            f0, motion, speed = f, m, sp
    if motion in ("grow", "shrink") and frame - f0 >= GROW_FRAMES:
        return "still", ""
    return motion, speed


def clip_scene(scene, m):
    """Clip m of a long clip as a short-clip Scene: each object where it is at the clip's first
    frame (nearest named cell), the size it has then, the motion it does then. Its dense
    caption is clip m's caption; the checker scores clip m against it."""
    f = clip_start(m)
    T = f + 2
    names = list(POSITIONS)
    cells = np.array([POSITIONS[n] for n in names]) * scene.res
    objs = []
    for o in scene.objects:
        x, y, r = trajectory(o, T, scene.res)
        position = names[int(((cells - [x[f], y[f]]) ** 2).sum(1).argmin())]
        size = "small" if r[f] < (SIZES["small"] + SIZES["large"]) / 2 * scene.res / 32 else "large"
        motion, speed = motion_at(o, f)
        if motion in DIRECTIONS:  # a reflection may have flipped it: read the direction off
            dx, dy = np.sign(x[f + 1] - x[f]), np.sign(y[f + 1] - y[f])
            name = next((n for n, d in DIRECTIONS.items() if d == (dx, dy)), None)
            motion = name or motion
        objs.append(Obj(o.shape, o.colour, size, position, motion, speed))
    return Scene(scene.background, objs, frames=CLIP, res=scene.res)


def sample_long_scene(rng, split="train", clips=8, res=32, p_turn=0.4, tries=200):
    """A long clip of `clips` clips (1 + 16 clips frames): a short clip's scene (so clip 0 is
    an ordinary clip), run on with the long-clip physics, each object turning at each clip
    start with probability p_turn (so "then it turns and moves up" has a ground truth).
    Two objects never overlap, as in short clips (the VAE never saw one object hide
    another): a two-object draw in which they would cross is redrawn, up to `tries` times
    (then the scene keeps its first object). So two-object long clips lean towards objects
    that stay apart: still ones, bounces, parallel moves."""
    n_objects = 1 if rng.random() < 0.6 else 2
    for _ in range(tries):
        scene = _long_draw(rng, split, clips, res, p_turn, n_objects)
        a = scene.objects
        if len(a) == 1 or not overlaps(a[0], a[1], scene.frames, res):
            return scene
    scene.objects = scene.objects[:1]
    return scene


def _long_draw(rng, split, clips, res, p_turn, n_objects):
    scene = sample_scene(rng, split, frames=CLIP, res=res, n_objects=n_objects)
    scene.frames = 1 + CLIP * clips
    for o in scene.objects:
        for m in range(1, clips):
            if rng.random() >= p_turn:
                continue
            f = clip_start(m)
            now, _ = motion_at(o, f)
            y = trajectory(o, f + 1, res)[1][f]
            r = trajectory(o, f + 1, res)[2][f]
            options = [t for t in TURN_MOTIONS if t != now
                       and (t != "bounce" or y - BOUNCE_HEIGHT * res / 32 - r >= 0)]
            motion = str(rng.choice(options))
            speed = (o.speed or str(rng.choice(list(SPEEDS)))) if motion in MOVING else ""
            o.turns.append([f, motion, speed])
    return scene
