"""Footage-like clips: the tiny world's exact renders, made to look like camera footage.

Where it sits: beside the world (minivid/world.py). The learned captioner
(minivid/captioner.py) trains on these, and `python -m minivid.evaluate captions` scores
every captioner on each perturbation separately, so "robust" is a number per kind of damage.

Why: an exact render has 12 colours and hard edges; a rule that snaps each pixel to its
nearest palette colour reads it perfectly, and a captioner that only ever saw exact renders
learns to lean on that. Real footage is anti-aliased, compressed, colour-shifted, blurred and
noisy, and it shows things nobody has a word for. Each perturbation below is one of those:

    antialias   rendered at 4x the size and averaged down: soft edges, mixed colours
    jpeg        every frame through JPEG at quality 25-50: blocks and colour bleeding
    mp4         the clip through H.264 (the ffmpeg of imageio-ffmpeg): motion-compensated
                smear, the loss a real upload has
    jitter      per-channel gain 0.8-1.2 and offset +-20: another camera's white balance
    blur        a Gaussian blur of sigma 0.6-1.2 pixels: focus, motion blur
    noise       Gaussian noise of sigma 6-14 grey levels: sensor noise
    distractor  one more object in a colour off the palette (pink, lime, teal, ...): a thing
                the world has no name for; a caption must call it unknown, not invent a name

    python -m minivid.footage --demo docs/footage.png     # one clip under every perturbation
    python -m minivid.footage --data tiny_data/train/clips.jsonl --out runs/captions/footage
                                       # every clip damaged once: the DiT experiment's data
"""
import argparse
import json
import os
import tempfile
from dataclasses import replace

import imageio.v3 as iio
import numpy as np
from PIL import Image
from tqdm import tqdm

from minivid.scene import Scene, overlaps, render, render_indices, sample_object, sample_scene
from minivid.vocab import OBJECT_COLOURS
from minivid.world import FRAME_MS

PERTURBATIONS = ("antialias", "jpeg", "mp4", "jitter", "blur", "noise", "distractor")
# Colours at least 100 RGB units from every palette colour (object and background): the
# nearest-palette rule still snaps them to a world colour, which is the mistake to avoid.
OFF_PALETTE = {"pink": (255, 120, 190), "lime": (160, 255, 100), "teal": (0, 128, 128),
               "beige": (200, 180, 130), "mint": (150, 255, 200), "lavender": (180, 160, 255)}
UNKNOWN_SENTENCE = "Also in view: an object of an unknown colour."


def supersample(scene: Scene, factor: int = 4) -> np.ndarray:
    """Render at `factor` x the resolution and average each factor x factor block: the soft,
    colour-mixing edges of a real camera. -> uint8 (T, H, W, 3)"""
    big = render(replace(scene, res=scene.res * factor)).astype(np.float32)   # (T, fH, fW, 3)
    T, H, W = big.shape[0], scene.res, scene.res
    small = big.reshape(T, H, factor, W, factor, 3).mean((2, 4))              # (T, H, W, 3)
    return small.round().astype(np.uint8)


def add_distractor(scene: Scene, rng) -> tuple[np.ndarray, bool]:
    """The clip with one more object whose colour is off the palette (placed so it overlaps
    no world object). -> (uint8 (T, H, W, 3), whether one was added); the scene without it
    is still its caption."""
    for _ in range(50):
        taken = {o.colour for o in scene.objects}
        extra = sample_object(rng, scene.frames, scene.res,
                              [c for c in OBJECT_COLOURS if c not in taken], lambda pair: True)
        if not any(overlaps(extra, o, scene.frames, scene.res) for o in scene.objects):
            break
    else:           # a crowded scene: no room found in 50 draws, leave it as it is
        return render(scene), False
    both = replace(scene, objects=[*scene.objects, extra])
    u8 = render(both)                                                         # (T, H, W, 3)
    rgb = list(OFF_PALETTE.values())[int(rng.integers(len(OFF_PALETTE)))]
    u8[render_indices(both) == len(both.objects)] = rgb                      # recolour it
    return u8, True


def jpeg(u8: np.ndarray, rng) -> np.ndarray:
    """Every frame through JPEG at one quality in 25-50 (4:2:0 chroma, as cameras save)."""
    quality = int(rng.integers(25, 51))
    out = []
    for frame in u8:
        with tempfile.SpooledTemporaryFile() as f:
            Image.fromarray(frame).save(f, format="JPEG", quality=quality)
            f.seek(0)
            out.append(np.asarray(Image.open(f).convert("RGB")))
    return np.stack(out)


def mp4(clips: list[np.ndarray], rng) -> list[np.ndarray]:
    """Clips (each uint8 (T, H, W, 3)) through one H.264 encode and decode, back to back in
    one file (one ffmpeg call for a whole batch). Quality 1-3 of imageio's 0-10: lossy."""
    if not clips:
        return []
    T, H, W, _ = clips[0].shape
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "clip.mp4")
        iio.imwrite(path, np.concatenate(clips), fps=8, quality=int(rng.integers(1, 4)),
                    macro_block_size=16, ffmpeg_log_level="error")
        back = iio.imread(path)                                              # (N T, H, W, 3)
    return list(back[:len(clips) * T].reshape(len(clips), T, H, W, 3))


def jitter(u8: np.ndarray, rng) -> np.ndarray:
    """Another camera's colour: each channel times a gain in 0.8-1.2, plus an offset +-20."""
    gain, offset = rng.uniform(0.8, 1.2, 3), rng.uniform(-20, 20, 3)
    return (u8 * gain + offset).clip(0, 255).round().astype(np.uint8)


def blur(u8: np.ndarray, rng) -> np.ndarray:
    """A separable Gaussian blur of sigma 0.6-1.2 pixels, each frame (edges clamped)."""
    sigma = rng.uniform(0.6, 1.2)
    k = np.exp(-0.5 * (np.arange(-2, 3) / sigma) ** 2)
    k /= k.sum()                                                             # (5,)
    x = u8.astype(np.float32)
    for axis in (1, 2):                                                      # H, then W
        pad = [(0, 0)] * 4
        pad[axis] = (2, 2)
        xp = np.pad(x, pad, mode="edge")
        x = sum(k[i] * np.take(xp, np.arange(i, i + x.shape[axis]), axis=axis) for i in range(5))
    return x.round().clip(0, 255).astype(np.uint8)


def noise(u8: np.ndarray, rng) -> np.ndarray:
    """Gaussian sensor noise, sigma 6-14 grey levels, independent per pixel and channel."""
    return (u8 + rng.normal(0, rng.uniform(6, 14), u8.shape)).clip(0, 255).round() \
        .astype(np.uint8)


def footage(scenes: list[Scene], kinds: list[str], rng) -> tuple[np.ndarray, list[bool]]:
    """Each scene rendered and then damaged by its kind ("exact" = the plain render, or one
    of PERTURBATIONS). -> (N uint8 clips (T, H, W, 3); T = the scene's frames, 1 for a still
    image), has_distractor per clip)."""
    bad = sorted(set(kinds) - {"exact", *PERTURBATIONS})
    if bad:
        raise ValueError(f"unknown perturbation(s) {bad}; choose from exact, "
                         + ", ".join(PERTURBATIONS))
    out, distractor = [], []
    for scene, kind in zip(scenes, kinds):
        added = False
        if kind == "antialias":
            u8 = supersample(scene)
        elif kind == "distractor":
            u8, added = add_distractor(scene, rng)
        else:
            u8 = render(scene)
            if kind in ("jpeg", "jitter", "blur", "noise"):
                u8 = {"jpeg": jpeg, "jitter": jitter, "blur": blur, "noise": noise}[kind](u8, rng)
        out.append(u8)
        distractor.append(added)
    for T in sorted({len(u8) for u8 in out}):        # one H.264 file per clip length
        which = [i for i, k in enumerate(kinds) if k == "mp4" and len(out[i]) == T]
        for i, u8 in zip(which, mp4([out[i] for i in which], rng)):
            out[i] = u8
    return out, distractor


def write_clip(path: str, u8: np.ndarray) -> None:
    """A footage clip (T, H, W, 3) as a GIF the data loader reads back frame for frame (each
    frame quantised to its own 256-colour palette: near exact at 32 x 32), a still as PNG."""
    frames = [Image.fromarray(f) for f in u8]
    if len(frames) == 1:
        frames[0].save(path)
        return
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0,
                   optimize=False, disposal=1, comment=f"minivid frame_ms={FRAME_MS}".encode())


def damage_manifest(manifest: str, out: str, seed: int = 0) -> str:
    """Every clip of a tiny-world manifest re-rendered from its spec under one perturbation
    (drawn per clip, uniformly) into <out>/clips/, with <out>/clips.jsonl: the ground-truth
    dense caption (plus UNKNOWN_SENTENCE for a distractor), the spec and the perturbation."""
    with open(manifest) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    if not rows or "spec" not in rows[0]:
        raise SystemExit(f"error: {manifest}: needs tiny-world rows with a 'spec' "
                         "(python -m minivid.world --out tiny_data)")
    os.makedirs(os.path.join(out, "clips"), exist_ok=True)
    rng = np.random.default_rng(seed)
    path = os.path.join(out, "clips.jsonl")
    with open(path + ".tmp", "w") as f:
        for i, row in enumerate(tqdm(rows, desc=f"damaging {manifest}")):
            kind = str(rng.choice(PERTURBATIONS))
            (u8,), (added,) = footage([Scene.from_dict(row["spec"])], [kind], rng)
            media = f"clips/{i:06d}.{'png' if len(u8) == 1 else 'gif'}"
            write_clip(os.path.join(out, media), u8)
            caption = row["caption"] + (" " + UNKNOWN_SENTENCE if added else "")
            f.write(json.dumps({"media": media, "caption": caption, "spec": row["spec"],
                                "perturbation": kind}) + "\n")
    os.replace(path + ".tmp", path)
    return path


def _demo(path: str) -> None:
    """One two-object clip's first frame under each perturbation, 4x enlarged, side by side."""
    rng = np.random.default_rng(3)
    scene = sample_scene(rng, n_objects=2)
    kinds = ["exact", *PERTURBATIONS]
    u8, _ = footage([scene] * len(kinds), kinds, rng)                       # K x (T, H, W, 3)
    strip = np.concatenate([u[0] for u in u8], axis=1)                       # (H, K W, 3)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(strip).resize((strip.shape[1] * 4, strip.shape[0] * 4), Image.NEAREST) \
        .save(path)
    print(f"wrote {path}: " + ", ".join(kinds))


def main(argv=None):
    p = argparse.ArgumentParser(description="Footage-like tiny-world clips: a picture of every "
                                "perturbation, or a damaged copy of a manifest.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--demo", default=None, help="PNG: one clip's first frame under each "
                   "perturbation")
    p.add_argument("--data", default=None, help="a tiny-world manifest to damage (rows with a "
                   "spec), e.g. tiny_data/train/clips.jsonl")
    p.add_argument("--out", default=None, help="folder for the damaged copy: clips/, clips.jsonl")
    p.add_argument("--seed", type=int, default=0, help="which perturbation each clip gets")
    args = p.parse_args(argv)
    if args.data is None and args.demo is None:
        p.error("nothing to do: pass --demo footage.png, or --data MANIFEST --out FOLDER")
    if args.data is not None:
        if args.out is None:
            p.error("--data needs --out (the folder of the damaged copy)")
        print(f"wrote {damage_manifest(args.data, args.out, args.seed)}")
    if args.demo is not None:
        _demo(args.demo)


if __name__ == "__main__":
    main()
