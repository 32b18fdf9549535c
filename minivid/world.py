"""The tiny captioned world: a deterministic generator of small captioned clips and images.

Where it sits: the very first stage. Every model in minivid trains on what this file makes,
and `minivid.checker` judges generated clips against the same rules, so the world is kept
simple enough to check exactly and rich enough to need text and motion:

    1-2 objects  x  3 shapes  x  8 colours  x  2 sizes  x  9 start positions
    x  12 motions (still, 8 directions, bounce, grow, shrink)  x  2 speeds  x  4 backgrounds

The world is four small files, imported one way: its words (minivid/vocab.py), its scenes,
physics and pixels (minivid/scene.py), its captions (minivid/captions.py) and long clips
(minivid/long_clips.py); this file is the dataset writer on top of them, and it re-exports
their names, so `from minivid.world import Scene, render, OBJECT_COLOURS` keeps working.
Rendering is exact (hard edges, flat colours), so clips are stored losslessly as palette GIFs
and images as PNGs, in the same manifest + media layout a user's own data uses (see
`minivid/data.py`).

Run it (CPU, about half a minute for the default sizes):
    python -m minivid.world --out tiny_data            # the default dataset + preview.gif
    python -m minivid.world --out /tmp/w64 --res 64 --n-train-clips 500
"""
import argparse
import json
import os
from multiprocessing import Pool

import numpy as np
from PIL import Image
from tqdm import tqdm

from minivid import captions
from minivid.long_clips import clip_scene, sample_long_scene
from minivid.scene import (HELD_OUT, Obj, Scene, bounding_boxes, fits, overlaps, palette, render,
                           render_indices, sample_object, sample_scene, shape_mask, trajectory)
from minivid.vocab import (BACKGROUNDS, BOUNCE_HEIGHT, DIRECTIONS, GROW, GROW_FRAMES, MOTIONS,
                           MOVING, OBJECT_COLOURS, POSITIONS, SHAPES, SHRINK, SIZES, SPEEDS)

# The world's names in one place: this file's own and those of vocab.py and scene.py, which
# other files import from here (`from minivid.world import Scene, render, OBJECT_COLOURS`).
__all__ = ["BACKGROUNDS", "BOUNCE_HEIGHT", "DIRECTIONS", "FRAME_MS", "GROW", "GROW_FRAMES",
           "HELD_OUT", "KINDS", "MOTIONS", "MOVING", "OBJECT_COLOURS", "POSITIONS", "SHAPES",
           "SHRINK", "SIZES", "SPEEDS", "Obj", "Scene", "bounding_boxes", "default_sizes",
           "fits", "generate", "main", "overlaps", "palette", "render", "render_indices",
           "sample_object", "sample_scene", "shape_mask", "trajectory", "write_media",
           "write_preview"]

FRAME_MS = 120                       # GIF frame time (about 8 fps)


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
