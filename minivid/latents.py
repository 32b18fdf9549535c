"""Latent cache: encode every image and clip ONCE with a trained VAE, then train the DiT on it.

Where it sits: after train_vae.py, before train_dit.py. Encoding costs a full VAE forward per
clip; doing it once here instead of every DiT step makes DiT training several times cheaper,
and the cache is small (a tiny-t4 clip is 3 x 5 x 8 x 8 fp16 numbers = 1,920 bytes vs 49,152
bytes of pixels).

One file per (split, kind), e.g. runs/latents/train_clips.pt (kinds: images, clips, and long:
the 129-frame clips clip extension trains on, 33 latent frames), written atomically, loadable
with torch.load(weights_only=True):
    {"kind": "latents", "latents": float16 (N, C, T', h, w), "frames": T (before padding),
     "captions": [...], "sparse": [...], "specs": [JSON or ""], "source": manifest path,
     "clip_captions": [[caption of clip 1, clip 2, ...] for long clips, [] otherwise],
     "vae": {"config": {...}, "fingerprint": "..."}, "scale": float, "shift": float}
We store the posterior MEAN (no sampling): the DiT should learn the data, not VAE noise.
`shift` and `scale` are the mean and std of all train latents (images and clips pooled, the
same two numbers in every file): the DiT trains on (latents - shift) / scale, unit variance,
which is what its noise schedule assumes (Stable Diffusion's 0.18215 factor, measured here).

Run (CPU):  python -m minivid.latents --vae runs/vae_t4/ckpt.pt --data tiny_data --out runs/latents
Your data:  python -m minivid.latents --vae ... --train-manifest my_clips/ --val-manifest my_val.jsonl
GPU:        add --device cuda.
Tests:      OMP_NUM_THREADS=1 python -m pytest tests/test_03b_latents.py -q
"""
import argparse
import json
import os
from dataclasses import asdict

import numpy as np
import torch
from tqdm import tqdm

from minivid.checkpoint import load_checkpoint, save_checkpoint
from minivid.common import pick_device
from minivid.data import CaptionedVideos, load_uint8, to_float, to_uint8
from minivid.vae import fingerprint, load_vae, pad_frames


# ----------------------------------------------------------------------------- the VAE round trip
# The one place that goes pixels -> latents -> pixels: pad the frames to 1 + tf * k for the
# causal VAE, encode to the posterior mean, decode, crop back to the frames asked for.
# The latent cache, the DiT's previews and sampling, and every evaluation use these three.


@torch.no_grad()
def encode_uint8(vae, u8, batch_size: int = 64) -> tuple[torch.Tensor, int]:
    """uint8 (N, T, H, W, 3) -> (posterior means float16 (N, Cl, T', h, w) on the CPU, T)."""
    device = next(vae.parameters()).device
    out = []
    for i in tqdm(range(0, len(u8), batch_size), desc="encoding", unit="batch", leave=False,
                  disable=len(u8) <= batch_size):
        x = to_float(u8[i:i + batch_size]).to(device)     # (B, C, T, H, W)
        mean, _ = vae.encode(pad_frames(x, vae.cfg.tf)[0])  # (B, Cl, T', h, w)
        out.append(mean.half().cpu())
    return torch.cat(out), u8.shape[1]  # T before padding: decoded clips are cropped to it


@torch.no_grad()
def decode_latents(vae, z, frames: int, batch_size: int = 64) -> np.ndarray:
    """Latents (N, Cl, T', h, w) in the VAE's own scale (undo the cache's (z - shift) / scale
    first) -> uint8 (N, frames, H, W, 3), the padding frames cropped (17 decoded -> 16)."""
    device = next(vae.parameters()).device
    out = []
    for i in range(0, len(z), batch_size):
        x = vae.decode(z[i:i + batch_size].to(device).float())  # (B, 3, T_pad, H, W)
        out.append(to_uint8(x[:, :, :frames]))                  # (B, frames, H, W, 3)
    return np.concatenate(out)


@torch.no_grad()
def reconstruct(vae, x: torch.Tensor) -> torch.Tensor:
    """Pixels (B, C, T, H, W) in [-1, 1], on the VAE's device -> its reconstruction, the same
    shape, clamped to [-1, 1], left on that device (a trainer's batch never visits the host).
    The frames are padded to the VAE's time stride for the trip, then cut back to T."""
    x, T = pad_frames(x, vae.cfg.tf)                               # (B, C, T_pad, H, W)
    return vae.decode(vae.encode(x)[0])[:, :, :T].clamp(-1, 1)


@torch.no_grad()
def roundtrip(vae, u8, batch_size: int = 64) -> torch.Tensor:
    """uint8 (N, T, H, W, 3) -> the VAE's reconstruction, float (N, C, T, H, W) in [-1, 1] on
    the CPU (float, so PSNR is not blurred by rounding to uint8; to_uint8 it for pixels)."""
    device = next(vae.parameters()).device
    return torch.cat([reconstruct(vae, to_float(u8[i:i + batch_size]).to(device)).float().cpu()
                      for i in range(0, len(u8), batch_size)])


def load_latents(path, vae_fingerprint: str | None = None) -> dict:
    """Load a cache file; with `vae_fingerprint`, refuse one made by another VAE.

    Latents of a different VAE are meaningless to its decoder (and a DiT trained on them
    would decode to noise), so the mismatch is an error, never a warning.
    """
    cache = load_checkpoint(path, kind="latents")
    made_with = cache["vae"]["fingerprint"]
    if vae_fingerprint is not None and made_with != vae_fingerprint:
        raise ValueError(f"{path} was encoded with the VAE of fingerprint {made_with}, but the "
                         f"VAE in use has fingerprint {vae_fingerprint}: its latents mean nothing "
                         "to this decoder. Re-encode with this VAE: python -m minivid.latents "
                         "--vae <its ckpt.pt> --data <data> --out <new folder>")
    return cache


def main(argv=None):
    p = argparse.ArgumentParser(description="Encode images and clips once into latent caches.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--vae", required=True, help="VAE checkpoint (train_vae.py output ckpt.pt)")
    p.add_argument("--data", default="tiny_data", help="folder with <split>/{images,clips}.jsonl")
    p.add_argument("--train-manifest", nargs="+", default=None, help="your own train data: "
                   "manifests (.jsonl) or captioned folders, instead of <data>/train")
    p.add_argument("--val-manifest", nargs="+", default=None, help="your own val data, instead "
                   "of <data>/val")
    p.add_argument("--out", default="runs/latents", help="folder for <split>_<kind>.pt files")
    p.add_argument("--splits", nargs="+", default=["train", "val", "test"],
                   help="splits to encode (the first one gives scale/shift: keep train first)")
    p.add_argument("--frames", type=int, default=16, help="frames per clip (padded for the VAE)")
    p.add_argument("--size", type=int, default=32, help="frame size the VAE was trained at")
    p.add_argument("--batch-size", type=int, default=64, help="clips per encoder call")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    args = p.parse_args(argv)

    device = pick_device(args.device)
    vae, _ = load_vae(args.vae)
    vae.to(device)
    info = {"config": asdict(vae.cfg), "fingerprint": fingerprint(vae)}
    print(f"VAE {args.vae}: fingerprint {info['fingerprint']}, config {info['config']}")

    caches = {}  # (split, kind) -> cache dict, scale/shift filled in below
    for split in args.splits:
        sources = getattr(args, f"{split}_manifest", None) or \
            [os.path.join(args.data, split, f"{k}.jsonl") for k in ("images", "clips", "long")]
        for source in sources:
            if not os.path.exists(source):
                print(f"skip {source} (not found)")
                continue
            # Long clips (clip extension) keep all their frames: 1 + 16 k, no padding.
            is_long = os.path.basename(source) == "long.jsonl"
            frames = args.frames
            if is_long:
                with open(source) as f:
                    frames = json.loads(f.readline())["spec"]["frames"]
            ds = CaptionedVideos(source, frames=frames, size=args.size)
            u8, metas = load_uint8(ds, desc=f"decoding {source}")
            kind = "long" if is_long else "images" if u8.shape[1] == 1 else "clips"
            if (split, kind) in caches:
                raise ValueError(f"two {split} sources hold {kind} ({caches[split, kind]['source']}"
                                 f" and {source}); merge them into one manifest")
            z, T = encode_uint8(vae, u8, args.batch_size)
            caches[(split, kind)] = {
                "kind": "latents", "latents": z, "frames": T,
                "captions": [m["caption"] for m in metas],
                "sparse": [m.get("sparse", "") for m in metas],
                "specs": [json.dumps(m["spec"]) if "spec" in m else "" for m in metas],
                # long clips: the dense caption of each continuation clip (positions left out)
                "clip_captions": [m.get("clips", []) for m in metas],
                "vae": info, "source": os.path.abspath(source)}
    if not caches:
        raise FileNotFoundError(f"no manifests under {args.data} for splits {args.splits}; "
                                "make the tiny data with `python -m minivid.world --out tiny_data`")

    # One shift/scale for every file, from the first split (train): val and test latents must
    # be normalised exactly like the latents the DiT trained on.
    first = [c["latents"].float() for (s, k), c in caches.items()
             if s == args.splits[0] and k != "long"]  # long clips: the same world, re-used
    pooled = torch.cat([z.flatten() for z in first])
    shift, scale = pooled.mean().item(), pooled.std().item()
    print(f"latent stats from {args.splits[0]}: shift {shift:.4f}, scale {scale:.4f}")

    total = 0
    for (split, kind), cache in caches.items():
        path = os.path.join(args.out, f"{split}_{kind}.pt")
        save_checkpoint(path, {**cache, "shift": shift, "scale": scale})
        z, T = cache["latents"], cache["frames"]
        per_item = z[0].numel() * z.element_size()
        pixels = T * args.size * args.size * 3  # uint8 bytes of one decoded item
        total += os.path.getsize(path)
        print(f"wrote {path}: {len(z)} x {tuple(z.shape[1:])} fp16 = {per_item} bytes per "
              f"{kind[:-1]} (pixels: {pixels} bytes, {pixels / per_item:.1f}x smaller), "
              f"file {os.path.getsize(path) / 1e6:.1f} MB")
    print(f"total {total / 1e6:.1f} MB in {args.out}")


if __name__ == "__main__":
    main()
