"""What the learned captioner reads and writes: its words, and its training pairs.

Where it sits: between the world (scenes, renders, dense captions, minivid/footage.py) and
the captioner (minivid/captioner.py). train_captioner.py asks `training_batch` for (clips,
captions) pairs; nothing here is learned.

A training pair is (footage-like clip, a dense caption freshly phrased for it):
  - the scene is drawn from the world's train distribution (never one of the scenes of the
    val or test manifests: those are the held-out clips the bench scores on);
  - 20% are still images (T = 1, held for all 16 frames; the decoder is told which);
  - 70% have two objects (the world's mix: 40%), since binding is what takes learning;
  - 30% are exact renders, the rest go through one perturbation of minivid/footage.py;
    a distractor's caption adds UNKNOWN_SENTENCE (the world has no name for its colour);
  - 5% are not tiny-world scenes at all (smooth colour fields, collages of blobs): their
    caption is OUTSIDE, so "I cannot describe this" is something the captioner learned to say.
The caption is drawn anew every time a clip is seen (dense_caption's several structures and
phrasings), so the decoder learns what to say, not one sentence per clip.

    python -m minivid.caption_data      # a few training pairs, printed
"""
import json
from dataclasses import replace

import numpy as np
import torch

from minivid.captions import dense_caption
from minivid.footage import PERTURBATIONS, UNKNOWN_SENTENCE, footage
from minivid.scene import Scene, sample_scene
from minivid.vocab import POSITIONS
from minivid.vocab import split_words

FRAMES, SIZE = 16, 32                 # every clip is read at 16 frames of 32 x 32
SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>", "<clip>", "<image>"]
PAD, UNK, BOS, EOS, CLIP, IMAGE = range(len(SPECIALS))
OUTSIDE = "Not a tiny-world scene: nothing in it has a name in this world."
P_STILL, P_EXACT, P_OUTSIDE = 0.2, 0.3, 0.05
# Two objects in 70% of the scenes (the world's own mix has 40%): a scene of one object is
# learned early; telling WHICH object starts where and moves how (binding) is what is hard.
P_TWO = 0.7


def vocabulary(n_scenes: int = 3000) -> list[str]:
    """SPECIALS + every word the world's dense captions use (drawn from n_scenes scenes of
    every split, images and clips, with a fixed seed) + the two special sentences' words.
    Deterministic: the same list on every machine."""
    rng = np.random.default_rng(0)
    words = set(split_words(UNKNOWN_SENTENCE) + split_words(OUTSIDE))
    for i in range(n_scenes):
        scene = sample_scene(rng, ("train", "test")[i % 2], frames=(16, 1)[i % 5 == 0])
        words.update(split_words(dense_caption(scene, rng)))
    return SPECIALS + sorted(words)


def encode(text: str, still: bool, index: dict[str, int]) -> list[int]:
    """A caption -> [<bos>, <clip> | <image>, word ids..., <eos>]. The first two are given to
    the decoder (it is told whether it looks at a still image); it predicts the rest."""
    return [BOS, IMAGE if still else CLIP] + [index.get(w, UNK) for w in split_words(text)] + [EOS]


def pad(rows: list[list[int]]):
    """Token lists -> (ids (B, L), targets (B, L)): targets[:, l] is ids[:, l + 1], PAD where
    there is nothing to predict (the given prefix, padding)."""
    L = max(len(r) for r in rows)
    ids = torch.full((len(rows), L), PAD, dtype=torch.long)                  # (B, L)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r)
    targets = torch.full_like(ids, PAD)
    targets[:, 1:-1] = ids[:, 2:]            # position 0 (<bos>) would predict the given flag
    return ids, targets


def scene_key(spec: dict) -> str:
    """A scene's identity, to keep held-out scenes out of training."""
    return json.dumps(spec, sort_keys=True)


def held_out_keys(manifests: list[str]) -> set[str]:
    """The scenes of these manifests (rows with a "spec"): the captioner never trains on them."""
    keys = set()
    for path in manifests:
        with open(path) as f:
            keys.update(scene_key(json.loads(line)["spec"]) for line in f if line.strip())
    return keys


def outside_clip(rng) -> np.ndarray:
    """A clip that is no tiny-world scene: a smooth colour field drifting over time, or a
    collage of overlapping blobs in random colours, with a little noise. -> uint8 (T, H, W, 3)"""
    ys, xs = np.mgrid[0:SIZE, 0:SIZE] / SIZE                                 # (H, W) each
    if rng.random() < 0.5:                              # a smooth field: sums of waves
        f = rng.uniform(0.5, 3, (3, 2))
        phase, drift = rng.uniform(0, 2 * np.pi, 3), rng.uniform(-0.3, 0.3, 3)
        frames = [np.stack([np.sin(2 * np.pi * (f[c, 0] * xs + f[c, 1] * ys) + phase[c] + drift[c] * t)
                            for c in range(3)], -1) for t in range(FRAMES)]
        u8 = (np.stack(frames) * 0.5 + 0.5) * 255                            # (T, H, W, 3)
    else:                                               # a collage of blobs
        u8 = np.broadcast_to(rng.uniform(0, 255, 3), (FRAMES, SIZE, SIZE, 3)).copy()
        for _ in range(int(rng.integers(4, 12))):
            cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
            vx, vy = rng.uniform(-0.02, 0.02, 2)
            colour = rng.uniform(0, 255, 3)
            for t in range(FRAMES):
                u8[t][(xs - cx - vx * t) ** 2 + (ys - cy - vy * t) ** 2 < r * r] = colour
    return (u8 + rng.normal(0, 6, u8.shape)).clip(0, 255).astype(np.uint8)


def reading_order(scene: Scene) -> Scene:
    """The scene with its objects in reading order of their start cells (top to bottom, left
    to right), as a person describes a picture. The decoder then always describes first the
    object it finds first, instead of having to pick one and remember which (measured: with
    the objects in random order it swapped the two objects' places half the time)."""
    return replace(scene, objects=sorted(scene.objects, key=lambda o: POSITIONS[o.position][::-1]))


def hold(u8: np.ndarray) -> np.ndarray:
    """A still image (1, H, W, 3) held for FRAMES frames; a clip as it is."""
    return np.repeat(u8, FRAMES, 0) if len(u8) == 1 else u8


def training_batch(rng, B: int, held: set[str] = frozenset()):
    """B training pairs -> (uint8 clips (B, FRAMES, SIZE, SIZE, 3), captions [B], stills [B],
    specs [B]: the scene dict, None for an outside clip). `held`: scene keys never drawn."""
    scenes, kinds = [], []
    while len(scenes) < B:
        scene = sample_scene(rng, "train", frames=1 if rng.random() < P_STILL else FRAMES,
                             n_objects=2 if rng.random() < P_TWO else 1)
        if scene_key(scene.to_dict()) in held:
            continue
        scenes.append(scene)
        kinds.append("exact" if rng.random() < P_EXACT else str(rng.choice(PERTURBATIONS)))
    clips, distractor = footage(scenes, kinds, rng)
    captions = [dense_caption(reading_order(s), rng) + (" " + UNKNOWN_SENTENCE if d else "")
                for s, d in zip(scenes, distractor)]
    stills = [s.frames == 1 for s in scenes]
    specs = [s.to_dict() for s in scenes]
    for i in np.nonzero(rng.random(B) < P_OUTSIDE)[0]:
        clips[i], captions[i], stills[i], specs[i] = outside_clip(rng), OUTSIDE, False, None
    return np.stack([hold(c) for c in clips]), captions, stills, specs


class Batches(torch.utils.data.IterableDataset):
    """The training batches of steps start, start + 1, ... (batch k from rng (seed, k), so a
    resumed run gets the very batches it would have): made in a DataLoader worker process,
    so the clips of the next step render while this one trains."""

    def __init__(self, start: int, seed: int, B: int, held: set[str]):
        self.start, self.seed, self.B, self.held = start, seed, B, held

    def __iter__(self):
        step = self.start
        while True:
            yield training_batch(np.random.default_rng([self.seed, step]), self.B, self.held)
            step += 1


def _as_is(batch):
    return batch


def loader(start: int, seed: int, B: int, held: set[str], workers: int = 1):
    """An endless iterator over Batches, made by `workers` processes (0: in this one)."""
    return iter(torch.utils.data.DataLoader(Batches(start, seed, B, held), batch_size=None,
                                            num_workers=workers, collate_fn=_as_is))


if __name__ == "__main__":
    u8, caps, stills, _ = training_batch(np.random.default_rng(0), 6)
    print(f"clips {u8.shape} {u8.dtype}; vocabulary {len(vocabulary())} words")
    for c, s in zip(caps, stills):
        print(("[image] " if s else "[clip]  ") + c)
