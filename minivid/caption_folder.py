"""Captioning a folder: a user's images and clips -> a manifest every trainer reads.

Where it sits: between a folder of footage that came with no text and the data loader
(minivid/data.py reads the manifest as it is). The learned captioner (minivid/captioner.py,
trained by train_captioner.py) writes the captions; this file finds the media, refuses what
it cannot read with the reason (corrupt, greyscale, too small, odd-sized, too long), and
writes the manifest atomically. `relabel` writes a tiny-world manifest's clips with captions
of another kind (dense, sparse, title), from their specs: the caption experiment's inputs.

    python -m minivid.caption_folder caption --ckpt runs/captioner/ckpt.pt --data my_clips/ \\
        --out my_clips/captions.jsonl          # each row: media, caption, confidence
    python -m minivid.caption_folder relabel --kind sparse --data tiny_data/train/clips.jsonl \\
        --out runs/captions/sparse.jsonl
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_02_captioner.py -q` (8, 9)
"""
import argparse
import json
import os
import warnings

import imageio_ffmpeg
import numpy as np
from PIL import Image
from tqdm import tqdm

from minivid.caption_data import FRAMES, SIZE
from minivid.captioner import Captioner
from minivid.captions import dense_caption, sparse_caption, title_caption
from minivid.data import MEDIA_EXTS, read_frames
from minivid.scene import Scene

MAX_FRAMES = 2000     # longer clips (over ~4 minutes at 8 fps) are skipped: cut them first
MAX_ASPECT = 3.0      # wider or taller than 3:1: a centre crop would keep too little of it


def media_of(data: str) -> list[str]:
    """The media files to caption: a manifest's entries, or every media file in a folder."""
    if os.path.isdir(data):
        files = sorted(os.path.join(data, f) for f in os.listdir(data)
                       if f.lower().endswith(MEDIA_EXTS))
    elif os.path.isfile(data):
        with open(data) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        files = [r["media"] if os.path.isabs(r["media"]) else
                 os.path.join(os.path.dirname(data), r["media"]) for r in rows]
    else:
        raise FileNotFoundError(f"--data {data}: no such folder or manifest")
    if not files:
        raise ValueError(f"--data {data}: no images or clips in it (readable: png, jpg, jpeg, "
                         "gif, mp4, webm)")
    return files


def _check_size(w: int, h: int) -> None:
    if min(w, h) < 16:
        raise ValueError(f"too small: {w}x{h} pixels (>= 16 needed)")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ValueError(f"odd-sized: {w}x{h} pixels (wider than {MAX_ASPECT:.0f}:1); crop it "
                         "to the part to caption")


def read_clip(path):
    """A file -> (uint8 (16, 32, 32, 3), frames it has: 1 for an image, else 16). Raises
    ValueError with the reason for a file the captioner cannot read: corrupt, greyscale (it
    names colours), too small, odd-sized or too long."""
    if path.lower().endswith((".mp4", ".webm")):
        try:
            meta = next(imageio_ffmpeg.read_frames(path))
            frames, _ = imageio_ffmpeg.count_frames_and_secs(path)
        except Exception as e:  # the decoder's own error, named
            raise ValueError(f"unreadable ({type(e).__name__}: {str(e)[:80]})") from None
        _check_size(*meta["size"])
    else:
        try:
            with Image.open(path) as im:
                if im.mode in ("1", "L", "LA", "I", "I;16", "F"):
                    raise ValueError("greyscale: the captioner names colours")
                _check_size(*im.size)
                frames = getattr(im, "n_frames", 1)
        except (OSError, Image.DecompressionBombError) as e:
            raise ValueError(f"unreadable ({e})") from None
    if frames > MAX_FRAMES:
        raise ValueError(f"too long: {frames} frames (> {MAX_FRAMES}); cut it into clips")
    try:
        picked, seen = read_frames(path, frames=FRAMES, size=SIZE)
    except Exception as e:
        raise ValueError(f"unreadable ({type(e).__name__}: {e})") from None
    picked = picked + [picked[-1]] * (FRAMES - len(picked))                  # hold the last
    return np.stack(picked), (1 if seen == 1 else FRAMES)


def caption_folder(captioner, data: str, out: str) -> tuple[int, list[str]]:
    """Caption every readable file of `data` into the manifest `out` (media paths relative
    to its folder; each row with its confidence). -> (captioned, skipped descriptions)."""
    files = media_of(data)
    clips, kept, frames, skipped = [], [], [], []
    for path in tqdm(files, desc="reading"):
        try:
            u8, n = read_clip(path)
        except ValueError as e:
            warnings.warn(f"skipping {path}: {e}")
            skipped.append(f"{path}: {e}")
            continue
        clips.append(u8), kept.append(path), frames.append(n)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        if clips:
            for path, (text, conf) in zip(kept, captioner(np.stack(clips), frames)):
                rel = os.path.relpath(os.path.abspath(path), os.path.dirname(os.path.abspath(out)))
                f.write(json.dumps({"media": rel, "caption": text,
                                    "confidence": round(conf, 4)}) + "\n")
    os.replace(tmp, out)
    return len(kept), skipped


def relabel(kind: str, manifest: str, out: str, seed: int = 0) -> None:
    """Write `manifest`'s clips with captions of another kind (made from their specs)."""
    make = {"dense": dense_caption, "sparse": sparse_caption, "title": title_caption}[kind]
    rng = np.random.default_rng(seed)
    with open(manifest) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows or "spec" not in rows[0]:
        raise SystemExit(f"error: {manifest}: relabel needs tiny-world rows with a 'spec'")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    base = os.path.dirname(os.path.abspath(manifest))
    with open(out + ".tmp", "w") as f:
        for r in rows:
            media = os.path.relpath(os.path.join(base, r["media"]), os.path.dirname(os.path.abspath(out)))
            f.write(json.dumps({"media": media,
                                "caption": make(Scene.from_dict(r["spec"]), rng)}) + "\n")
    os.replace(out + ".tmp", out)
    print(f"wrote {out}: {len(rows)} {kind} captions")


def main(argv=None):
    p = argparse.ArgumentParser(description="The learned captioner: caption a folder, or "
                                "relabel a manifest (train it with train_captioner.py).")
    sub = p.add_subparsers(dest="what", required=True)
    fmt = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter}
    c = sub.add_parser("caption", **fmt, help="caption a folder (or a manifest's media) into "
                       "a manifest the trainers read")
    c.add_argument("--ckpt", default="runs/captioner/ckpt.pt", help="the trained captioner")
    c.add_argument("--data", required=True, help="a folder of images / clips, or a manifest")
    c.add_argument("--out", required=True, help="the manifest to write (JSONL)")
    r = sub.add_parser("relabel", **fmt, help="the same clips captioned another way, from their "
                       "specs: dense, sparse or title-like (for the caption experiment)")
    r.add_argument("--kind", required=True, choices=["dense", "sparse", "title"])
    r.add_argument("--data", required=True, help="a tiny-world manifest (rows with a spec)")
    r.add_argument("--out", required=True, help="the manifest to write (JSONL)")
    r.add_argument("--seed", type=int, default=0, help="phrasing seed")
    args = p.parse_args(argv)
    if args.what == "relabel":
        relabel(args.kind, args.data, args.out, args.seed)
        return
    if not os.path.exists(args.ckpt):
        p.error(f"--ckpt {args.ckpt} not found; train one: python train_captioner.py")
    try:
        n, skipped = caption_folder(Captioner.load(args.ckpt), args.data, args.out)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    print(f"captioned {n} file(s) into {args.out}; skipped {len(skipped)}"
          + "".join(f"\n  {s}" for s in skipped))


if __name__ == "__main__":
    main()
