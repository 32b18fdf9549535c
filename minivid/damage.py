"""Training clip extension on DAMAGED histories: put back what the history lost (issue 22).

Where it sits: inside train_extend.py (--damage). Counting how long videos lose who is in them
(video_identity.losses; docs/results.md 7) shows few slow drifts and some sudden, lasting
failures: an object fades into the background and never returns, a lime-green object turns
yellow, a square becomes a blob. Once the history shows the failure, the model copies it
forward, although the clean anchor (frame 0, kept at full resolution in every packed context)
and the prompt still say what should be there. In training the history is always real, so
the model has never seen a history that is wrong and a next clip that is right. This file
makes such histories with the world's own renderer, so no model is needed to build them.
Clips are numbered from 0 here, as in the latents (clip 0 = the first 17 frames):

    for V long train clips, each with its own draw (from the seed):
        one object j, one kind of damage, a start clip k0 in 1 .. clips - 2, a depth a in
        [0.6, 1]:
            vanish     object j removed           (the model's fade)
            recolour   j in one of the two nearest colours in RGB    (colour drift)
            reshape    j in another shape          (rounded corners, blobs)
            resize     j small <-> large           (shrinking)
        never a shape-colour pair the world holds out of training (scene.HELD_OUT), never
        the colour of the other object (two objects never share one)
        the damaged video = (1 - a(t)) * real + a(t) * altered, pixel by pixel, where a(t) is
        0 before clip k0, ramps 0 -> a over clip k0's 16 frames and stays at a: the damage
        arrives the way the model's errors do, gradually, and stays
    encoded by the stage's VAE -> bank (V, C, 1 + 4 clips, h, w), normalised like the cache

A bank step (share --damage of the steps whose history has >= 2 clips) takes the history's
clips 1 .. hc - 1 from the bank (rollouts.with_own_history: the anchor, clip 0, stays real)
and learns the REAL clip hc: the object comes back, in its colour, shape and size, at the
place the world put it. The damage shows only when it starts inside the history (k0 < hc):
with 8-clip long clips that is ~58% of bank steps, so --damage 0.5 shows a damaged history
in ~29% of the steps with >= 2 history clips. The bank is rebuilt identically at every start
(~50 s for 1,000 long clips on 2 CPU cores; a resumed run gets the same one). The idea is the
rollout bank's (minivid/rollouts.py: the model's own one-step errors), with the errors the
long videos actually make, written by hand.

    python train_extend.py ... --piece-noise 0.5 --damage 0.5      # all long clips (1,000)
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_07b_damage.py -q -m "slow or not slow"`
"""
from dataclasses import replace

import numpy as np
import torch

from minivid.latents import encode_uint8
from minivid.long_clips import CLIP, clip_start
from minivid.scene import HELD_OUT, Scene, render
from minivid.vocab import OBJECT_COLOURS, SHAPES

KINDS = ("vanish", "recolour", "reshape", "resize")
DEPTH = (0.6, 1.0)      # how far the damage goes: a ~ U(DEPTH), 1 = all the way


def nearest_colours(colour: str, k: int = 2, allowed=None) -> list[str]:
    """The k object colours nearest to `colour` in RGB (the ones a drifting colour turns into),
    among `allowed` (default: all the others)."""
    rgb = np.array(OBJECT_COLOURS[colour], dtype=float)
    others = [c for c in (OBJECT_COLOURS if allowed is None else allowed) if c != colour]
    return sorted(others, key=lambda c: ((np.array(OBJECT_COLOURS[c]) - rgb) ** 2).sum())[:k]


def damaged_scene(scene: Scene, j: int, kind: str, rng) -> Scene:
    """The scene with object j changed by `kind` (KINDS); the other objects as they were. A
    new colour or shape is never a pair held out of training, nor another object's colour."""
    objects = list(scene.objects)
    o = objects[j]
    if kind == "vanish":
        objects.pop(j)
    elif kind == "recolour":
        taken = {x.colour for x in objects}
        allowed = [c for c in OBJECT_COLOURS if c not in taken and (c, o.shape) not in HELD_OUT]
        objects[j] = replace(o, colour=str(rng.choice(nearest_colours(o.colour, 2, allowed))))
    elif kind == "reshape":
        allowed = [s for s in SHAPES if s != o.shape and (o.colour, s) not in HELD_OUT]
        objects[j] = replace(o, shape=str(rng.choice(allowed)))
    elif kind == "resize":
        objects[j] = replace(o, size="small" if o.size == "large" else "large")
    else:
        raise ValueError(f"unknown damage {kind!r}: one of {KINDS}")
    return replace(scene, objects=objects)


def damage_ramp(frames: int, k0: int, depth: float) -> np.ndarray:
    """a(t) for t < frames: 0 before clip k0, 0 -> depth over its CLIP frames, then depth."""
    a = np.zeros(frames, dtype=np.float32)
    s = clip_start(k0)
    a[s:s + CLIP] = depth * np.arange(1, CLIP + 1) / CLIP
    a[s + CLIP:] = depth
    return a


def damaged_video(scene: Scene, clips: int, rng) -> tuple[np.ndarray, dict]:
    """One long clip's damaged video, uint8 (T, H, W, 3) with T = scene.frames, and what was
    done to it: {"object": j, "kind": one of KINDS, "clip": k0, "depth": a}. rng: a numpy
    Generator, which draws all four (the module docstring)."""
    j = int(rng.integers(len(scene.objects)))
    kind = str(rng.choice(KINDS))
    k0 = int(rng.integers(1, clips - 1))                     # 1 .. clips - 2
    depth = float(rng.uniform(*DEPTH))
    real = render(scene).astype(np.float32)                  # (T, H, W, 3)
    altered = render(damaged_scene(scene, j, kind, rng)).astype(np.float32)
    a = damage_ramp(len(real), k0, depth)[:, None, None, None]
    video = ((1 - a) * real + a * altered).round().clip(0, 255).astype(np.uint8)
    return video, dict(object=j, kind=kind, clip=k0, depth=depth)


@torch.no_grad()
def build_bank(vae, scenes, rows, clips: int, shift: float, scale: float, seed: int = 0,
               batch_size: int = 64) -> tuple[torch.Tensor, list[dict]]:
    """Damaged long clips `rows` (indices into scenes: t2v.cache_scenes of the cache) -> (bank
    (V, C, 1 + 4 clips, h, w) float on the CPU, normalised (z - shift) / scale like the DiT's
    latents, and the damage done to each). Deterministic in `seed`."""
    if clips < 3:
        raise ValueError(f"long clips of {clips} clips: a damaged history needs >= 3 (a clean "
                         "clip 0, a damaged clip, the real clip after it)")
    rng = np.random.default_rng(seed)
    bank, done = [], []
    for start in range(0, len(rows), batch_size):   # a batch at a time: pixels are big
        videos = []
        for i in rows[start:start + batch_size]:
            if scenes[int(i)] is None:
                raise ValueError(f"long clip {int(i)} has no scene spec (footage of your own?): "
                                 "--damage renders the world's scenes; train without it")
            v, d = damaged_video(scenes[int(i)], clips, rng)
            videos.append(v)
            done.append(d)
        z, _ = encode_uint8(vae, np.stack(videos), batch_size)   # (b, C, T', h, w) float16
        bank.append((z.float() - shift) / scale)
    return torch.cat(bank), done
