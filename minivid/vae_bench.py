"""What a VAE costs and what it buys: compression, quality, speed and streaming latency.

Where it sits: after train_vae.py. `python -m minivid.evaluate vae --ckpt runs/vae_t4/ckpt.pt`
runs `run` here: `evaluate_vae`, its table and one JSON line; train_vae.py prints only PSNR.

Figures (clips are the real 16 frames: padding frames are cropped before measuring):
- compression: pixel numbers (C*T*H*W) over latent numbers (Cl*T'*h*w).
- dit_tokens_per_clip: T' * (h/2) * (w/2), the sequence a DiT with 2x2 patches attends over;
  it sets the DiT's cost, so temporal compression 4 makes every DiT step ~3x cheaper.
- PSNR / SSIM on val images and val clips separately (minivid/metrics.py), posterior mean.
- encode_ms / decode_ms: one clip (batch 1) on this machine, median of a few runs.
- Streaming latency, counted from the moment a frame's capture starts until it is decoded:
  first_frame_ms: the first frame is encoded alone in both modes, so it only waits for
  compute (encode + decode one frame). worst_frame_ms: with tf = 4 the first frame of each
  later group is held until the whole group of 4 has been captured (4 frame periods: 500 ms
  at 8 fps), then the group is encoded and decoded; with tf = 1 every frame waits only for
  itself (125 ms at 8 fps) plus compute. That buffering is the price of 4x fewer latents.
  The compute part re-runs the previous latent frame too (the causal temporal kernel sees
  it), an upper bound: a streaming cache would skip that work.
"""
import numpy as np
import torch

from minivid import bench
from minivid.data import CaptionedVideos, load_uint8, to_float
from minivid.latents import roundtrip
from minivid.metrics import psnr, ssim
from minivid.vae import load_vae, pad_frames


def _quality(model, u8) -> tuple[float, float]:
    """Mean PSNR (dB) and SSIM over uint8 videos (N, T, H, W, 3), posterior mean."""
    x, r = to_float(u8), roundtrip(model, u8)               # (N, C, T, H, W) each
    return psnr(r, x).mean().item(), ssim(r, x).mean().item()


@torch.no_grad()
def vae_report(model, val_images: np.ndarray, val_clips: np.ndarray, device="cpu",
               fps: float = 8.0) -> dict:
    """Measure a VAE on uint8 val images (N, 1, H, W, 3) and clips (N, T, H, W, 3) -> dict."""
    model = model.to(device).eval()
    cfg, (_, T, H, W, C) = model.cfg, val_clips.shape
    x = to_float(val_clips[:1]).to(device)                 # (1, C, T, H, W)
    xp, _ = pad_frames(x, cfg.tf)
    z, _ = model.encode(xp)                                # (1, Cl, T', h, w)
    Cl, Tl, h, w = z.shape[1:]
    img_psnr, img_ssim = _quality(model, val_images)
    clip_psnr, clip_ssim = _quality(model, val_clips)
    group = xp[:, :, :1 + cfg.tf]                           # first frame + one group
    group_ms = bench.median_ms(lambda: model.decode(model.encode(group)[0]))
    return {
        "latent_shape_per_clip": f"{Cl}x{Tl}x{h}x{w}",
        "compression_clip": C * T * H * W / (Cl * Tl * h * w),
        "compression_image": C * H * W / (Cl * h * w),
        "dit_tokens_per_clip_p2": Tl * (h // 2) * (w // 2),
        "psnr_images": img_psnr, "ssim_images": img_ssim,
        "psnr_clips": clip_psnr, "ssim_clips": clip_ssim,
        "encode_ms_per_clip": bench.median_ms(lambda: model.encode(xp)),
        "decode_ms_per_clip": bench.median_ms(lambda: model.decode(z)),
        "first_frame_ms": bench.median_ms(lambda: model.decode(model.encode(xp[:, :, :1])[0])),
        "worst_frame_ms": 1e3 * cfg.tf / fps + group_ms,
        "val_images": len(val_images), "val_clips": len(val_clips),
        "threads": torch.get_num_threads(), "device": str(device),
    }


def evaluate_vae(ckpt_path, data_dir, device="cpu", frames=16, size=32) -> dict:
    """Load a VAE checkpoint and the val split of `data_dir`, then `vae_report` them."""
    model, _ = load_vae(ckpt_path)
    val = {}
    for kind in ("images", "clips"):
        u8, _ = load_uint8(CaptionedVideos(bench.manifest(data_dir, "val", kind), frames=frames,
                                           size=size), desc=f"decoding val {kind}")
        val[kind] = u8
    return {"ckpt": str(ckpt_path), "temporal_compression": model.cfg.tf,
            **vae_report(model, val["images"], val["clips"], device)}


# ----------------------------------------------------------------------------- the command


def add_args(sub) -> None:
    p = bench.command(sub, "vae", run, "compression, PSNR/SSIM, speed and latency of a VAE")
    p.add_argument("--ckpt", required=True, help="VAE checkpoint (train_vae.py output)")
    bench.shared_args(p, "data", "device")


def run(args) -> dict:
    bench.need(args.ckpt, "Train one first: python train_vae.py --preset tiny-t4")
    for kind in ("images", "clips"):
        bench.need_data(args.data, "val", kind)
    fig = evaluate_vae(args.ckpt, args.data, device=args.device)
    bench.print_table(f"VAE {args.ckpt} on {args.data}/val", fig.items())
    bench.print_json("vae", fig)
    return fig
