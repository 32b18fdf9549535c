"""A tiny captioner: clips with no text -> dense captions, so an uncaptioned folder trains.

Where it sits: before the data loader, for data that comes without captions (the talk's first
lesson: internet videos carry no useful text, so production stacks caption their footage
with a vision-language model, "in enough detail that a blind person could reconstruct it").

What it is, honestly: ATTRIBUTE HEADS, not a text decoder. The network reads a clip and
predicts the tiny world's attributes; `captions.dense_caption` turns them into sentences.
Why: the world's language is a fixed grammar over a few attributes, so a text decoder would
spend its 3 CPU minutes learning grammar the captioner module already knows; the heads learn
only what must be seen. The price: it can never say anything the world has no word for.

How it reads a clip (uint8 (T, H, W, 3), any size, resized to 32x32 and 16 frames):
  1. palette masks: every pixel is labelled with its nearest palette colour (the 4
     background and 8 object colours of minivid.world): a (8, T, H, W) stack, one binary
     mask per object colour. A fixed, rule-based step: colour is the one thing a palette
     world names exactly.
  2. ONE shared 3-D conv encoder reads each colour's mask (with x, y coordinate channels, so
     where things are survives the convolutions) -> heads: present?, shape, size, start
     position, motion, speed. The same weights for every colour, so a red triangle is read
     like any triangle: the compositional split's held-out pairs are nothing new to it.
  3. a background head on the clip's palette histogram.
Confidence (0..1): how well the clip fits the palette (the fraction of pixels within a small
distance of their nearest palette colour) times the least sure head's probability. A clip
from outside the world (a photo) fits the palette badly: its caption then names only the
nearest background colour and the dominant colour, and says it is a low-confidence guess
rather than inventing shapes.

    python train_captioner.py --data tiny_data --out runs/captioner --minutes 3   # trains it
    python -m minivid.captioner caption --ckpt runs/captioner/ckpt.pt --data my_clips/ \\
        --out my_clips/captions.jsonl          # a manifest minivid.data reads as it is
"""
import argparse
import json
import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from minivid import checkpoint
from minivid.captions import dense_caption, sparse_caption, title_caption
from minivid.data import MEDIA_EXTS, read_frames
from minivid.world import (BACKGROUNDS, MOTIONS, MOVING, OBJECT_COLOURS, POSITIONS, SHAPES,
                           SIZES, SPEEDS, Obj, Scene)

BG_NAMES, OBJ_NAMES = list(BACKGROUNDS), list(OBJECT_COLOURS)
PALETTE = np.array([*BACKGROUNDS.values(), *OBJECT_COLOURS.values()], dtype=np.float32)  # (12, 3)
HEADS = {"present": [False, True], "shape": list(SHAPES), "size": list(SIZES),
         "position": list(POSITIONS), "motion": list(MOTIONS), "speed": ["", *SPEEDS]}
FIT_DISTANCE = 40.0     # RGB distance within which a pixel "is" its palette colour
MIN_FIT = 0.8           # clips fitting the palette worse are out of the world
FRAMES, SIZE = 16, 32


# ----------------------------------------------------------------------------- 1. masks
def palette_masks(u8):
    """uint8 (N, T, H, W, 3) -> (masks float (N, 8, T, H, W), histogram (N, 12) of nearest
    palette colours, fit (N,): the fraction of pixels within FIT_DISTANCE of theirs)."""
    x = torch.as_tensor(np.asarray(u8), dtype=torch.float32)                  # (N, T, H, W, 3)
    d = ((x[..., None, :] - torch.from_numpy(PALETTE)) ** 2).sum(-1)          # (N, T, H, W, 12)
    best, label = d.min(-1)                                                   # (N, T, H, W)
    masks = torch.stack([(label == len(BG_NAMES) + k) for k in range(len(OBJ_NAMES))], 1)
    hist = F.one_hot(label.flatten(1), len(PALETTE)).float().mean(1)          # (N, 12)
    fit = (best.flatten(1) <= FIT_DISTANCE ** 2).float().mean(1)              # (N,)
    return masks.float(), hist, fit


# ----------------------------------------------------------------------------- 2. network
@dataclass
class CaptionerConfig:
    width: int = 16


class CaptionerNet(nn.Module):
    """One colour's mask video -> attribute logits; the palette histogram -> background.
    One forward for both, so a DDP wrapper sees every parameter used (train_captioner.py)."""

    def __init__(self, cfg: CaptionerConfig):
        super().__init__()
        w = cfg.width
        self.cfg = cfg
        self.net = nn.Sequential(                     # input (M, 3, 16, 32, 32): mask, x, y
            nn.Conv3d(3, w, 3, stride=(1, 2, 2), padding=1), nn.GELU(),   # (M, w, 16, 16, 16)
            nn.Conv3d(w, 2 * w, 3, stride=2, padding=1), nn.GELU(),       # (M, 2w, 8, 8, 8)
            nn.Conv3d(2 * w, 4 * w, 3, stride=2, padding=1), nn.GELU(),   # (M, 4w, 4, 4, 4)
            nn.Flatten(), nn.Linear(4 * w * 64, 128), nn.GELU())          # (M, 128)
        self.heads = nn.ModuleDict({k: nn.Linear(128, len(v)) for k, v in HEADS.items()})
        self.background = nn.Linear(len(PALETTE), len(BG_NAMES))

    def forward(self, masks, hist):
        """masks: (M, T=16, 32, 32) one colour each, hist: (N, 12) palette histograms ->
        {head: logits (M, classes)} and {"background": logits (N, 4)}"""
        M, T, H, W = masks.shape
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
        coords = torch.stack([xs, ys]).to(masks)[None, :, None].expand(M, 2, T, H, W)
        f = self.net(torch.cat([masks[:, None], coords], 1))                 # (M, 128)
        return {**{k: head(f) for k, head in self.heads.items()},
                "background": self.background(hist)}                         # (N, 4)


def targets(spec: dict) -> dict:
    """{colour index: {head: class}} for the objects of a scene spec."""
    out = {}
    for o in spec["objects"]:
        out[OBJ_NAMES.index(o["colour"])] = {
            "present": 1, "shape": SHAPES.index(o["shape"]), "size": list(SIZES).index(o["size"]),
            "position": list(POSITIONS).index(o["position"]),
            "motion": MOTIONS.index(o["motion"]), "speed": HEADS["speed"].index(o["speed"])}
    return out


def loss_on(model, masks, hist, specs, rng, share: slice = slice(None)):
    """Cross-entropy of every head for a batch: each clip's present colours plus one absent
    colour (present = no; which one, drawn from rng); the background from the histogram.

    One process: masks (B, 8, T, H, W), hist (B, 12) and specs are the same B clips. Data
    parallel: specs (and so the rng's draws) are the GLOBAL batch's, masks and hist only this
    rank's clips of it, share = common.rank_rows(dist). Each rank sums its rows' losses over
    the global batch's counts, times the world size, so the average DDP takes of the ranks'
    gradients is the one-process mean (a per-rank mean would weigh a rank's rows by how many
    objects its clips happen to have)."""
    rows, want = [], {k: [] for k in HEADS}
    for n, spec in enumerate(specs):
        t = targets(spec)
        absent = [c for c in range(len(OBJ_NAMES)) if c not in t]
        for c in [*t, int(rng.choice(absent))]:
            rows.append((n, c))
            for k in HEADS:
                want[k].append(t[c][k] if c in t else -1)
        want["present"][-1] = 0
    mine = range(len(specs))[share]                      # the global clips masks holds, in order
    keep = [j for j, (n, _) in enumerate(rows) if n in mine]
    sel = masks[[mine.index(rows[j][0]) for j in keep], [rows[j][1] for j in keep]]  # (M, T, H, W)
    logits = model(sel, hist)
    loss = 0.0
    for k, v in want.items():
        v = torch.tensor(v, device=masks.device)        # (all rows of the global batch,)
        loss = loss + F.cross_entropy(logits[k], v[keep], ignore_index=-1,
                                      reduction="sum") / (v >= 0).sum()
    bg = torch.tensor([BG_NAMES.index(specs[n]["background"]) for n in mine], device=masks.device)
    loss = loss + F.cross_entropy(logits["background"], bg, reduction="sum") / len(specs)
    return loss * (len(specs) // len(mine))              # x world size: DDP averages


# ----------------------------------------------------------------------------- 3. captions
@torch.no_grad()
def read_scenes(model, u8, frames: list[int] | None = None, batch: int = 64):
    """uint8 clips (N, 16, 32, 32, 3) -> [(Scene, confidence, fit)]; frames[i] = 1 marks a
    still image (its caption has no motion)."""
    out = []
    for i in range(0, len(u8), batch):
        masks, hist, fit = palette_masks(u8[i:i + batch])
        N = len(masks)
        logits = model(masks.flatten(0, 1), hist)                           # (N * 8, ...)
        bg_p = F.softmax(logits.pop("background"), -1)                      # (N, 4)
        probs = {k: F.softmax(v, -1).view(N, len(OBJ_NAMES), -1) for k, v in logits.items()}
        for n in range(N):
            still = frames is not None and frames[i + n] == 1
            conf = [float(bg_p[n].max())]
            objs = []
            for c in range(len(OBJ_NAMES)):
                if probs["present"][n, c, 1] < 0.5:
                    continue
                pick = {k: int(probs[k][n, c].argmax()) for k in HEADS}
                conf += [float(probs[k][n, c].max()) for k in HEADS
                         if not (still and k in ("motion", "speed"))]
                motion = "still" if still else HEADS["motion"][pick["motion"]]
                speed = HEADS["speed"][pick["speed"]] if motion in MOVING else ""
                if motion in MOVING and not speed:
                    speed = max(SPEEDS, key=lambda s: float(probs["speed"][n, c, HEADS["speed"].index(s)]))
                objs.append((float(probs["present"][n, c, 1]),
                             Obj(SHAPES[pick["shape"]], OBJ_NAMES[c], list(SIZES)[pick["size"]],
                                 list(POSITIONS)[pick["position"]], motion, speed)))
            objs = [o for _, o in sorted(objs, key=lambda p: -p[0])[:2]]   # the world: 1 or 2
            scene = Scene(BG_NAMES[int(bg_p[n].argmax())], objs, 1 if still else FRAMES, SIZE)
            out.append((scene, float(fit[n]) * min(conf), float(fit[n]), hist[n]))
    return out


def caption_of(scene, confidence, fit, hist, rng) -> str:
    """The caption: the world's dense caption, or for a clip outside the world (palette fit
    below MIN_FIT, or no object found) what can be said: background and dominant colour."""
    if fit >= MIN_FIT and scene.objects:
        return dense_caption(scene, rng)
    names = [*BG_NAMES, *OBJ_NAMES]
    bg = BG_NAMES[int(hist[:len(BG_NAMES)].argmax())]
    dominant = names[int(hist.argmax())]
    return (f"Mostly {dominant}, on something closest to plain {bg}; no tiny-world object "
            f"recognised (low confidence {confidence:.2f}: only {fit:.0%} of the pixels are "
            "tiny-world colours).")


class Captioner:
    """cap = Captioner.load("runs/captioner/ckpt.pt"); cap(u8_clips) -> [(caption, confidence)]"""

    def __init__(self, model: CaptionerNet):
        self.model = model.eval()

    @classmethod
    def load(cls, path):
        ck = checkpoint.load_checkpoint(path, kind="captioner")
        model = CaptionerNet(CaptionerConfig(**ck["config"]))
        checkpoint.load_state_strict(model, ck["ema"]["shadow"], f"captioner ({path})")
        return cls(model)

    def __call__(self, u8, frames=None, seed: int = 0):
        rng = np.random.default_rng(seed)
        return [(caption_of(s, c, f, h, rng), c)
                for s, c, f, h in read_scenes(self.model, u8, frames)]


# ----------------------------------------------------------------------------- 4. a folder
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


def read_clip(path):
    """A file -> (uint8 (16, 32, 32, 3), frames it has: 1 for an image). Raises ValueError
    with the reason for files the captioner cannot read (corrupt, greyscale, too small)."""
    try:
        with Image.open(path) as im:
            if im.mode in ("1", "L", "LA", "I", "I;16", "F"):
                raise ValueError("greyscale: the captioner names colours")
            if min(im.size) < 16:
                raise ValueError(f"{im.size[0]}x{im.size[1]} pixels: too small (>= 16 needed)")
    except (OSError, Image.DecompressionBombError) as e:
        if not path.lower().endswith((".mp4", ".webm")):
            raise ValueError(f"unreadable ({e})") from None
    try:
        frames, seen = read_frames(path, frames=FRAMES, size=SIZE)
    except Exception as e:  # the decoder's own error, named
        raise ValueError(f"unreadable ({type(e).__name__}: {e})") from None
    frames = frames + [frames[-1]] * (FRAMES - len(frames))                # hold the last
    return np.stack(frames), (1 if seen == 1 else FRAMES)


def caption_folder(captioner, data: str, out: str) -> tuple[int, list[str]]:
    """Caption every readable file of `data` into the manifest `out` (media paths relative
    to its folder). -> (captioned, skipped descriptions)."""
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
    p = argparse.ArgumentParser(description="The tiny captioner: caption a folder, or relabel "
                                "a manifest (train it with train_captioner.py).")
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
        p.error(f"--ckpt {args.ckpt} not found; train one: python train_captioner.py "
                "--minutes 3")
    try:
        n, skipped = caption_folder(Captioner.load(args.ckpt), args.data, args.out)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}")
    print(f"captioned {n} file(s) into {args.out}; skipped {len(skipped)}"
          + "".join(f"\n  {s}" for s in skipped))


if __name__ == "__main__":
    main()
