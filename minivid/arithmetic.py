"""The arithmetic of video: tokens, bytes, dollars and GPU-days, with every assumption a
keyword parameter you can change.

Where it sits: beside the pipeline, not in it. Nothing here trains or samples; it works out
the back-of-the-envelope numbers that shape the rest of minivid (why a VAE, why patches, why
4x in time, what a big run costs), then reads the same numbers off minivid's own tiny model.
notebooks/00_arithmetic_of_video.ipynb plots them; tests/test_00_arithmetic.py checks them.

    python -m minivid.arithmetic        # a table of the talk's figures and of minivid's tiny run

Units: bytes are decimal (1 GB = 1e9, 1 PB = 1e15), FLOPs are counts and FLOP/s are rates.
"""
import math

GB, PB = 1e9, 1e15
H100_BF16_DENSE = 989e12  # FLOP/s: H100 SXM spec sheet, bf16 dense matmul (no 2:4 sparsity)
# S3 Standard list price, us-east-1, $ per GB-month: (tier's upper edge in GB, price): the
# first 50 TB, the next 450 TB, everything over 500 TB. Today's: https://aws.amazon.com/s3/pricing/
S3_STANDARD = ((50e3, 0.023), (500e3, 0.022), (math.inf, 0.021))


def latent_frames(frames: int, temporal: int = 1, causal: bool = True) -> int:
    """Frames left after compressing time by `temporal`. causal=True: the first frame is
    encoded alone and every later latent frame covers the next `temporal` frames (CogVideoX,
    Cosmos, Wan, minivid/vae.py): T -> 1 + ceil((T - 1) / temporal). causal=False: groups of
    `temporal` from the start, T -> ceil(T / temporal). A short last group is padded."""
    if causal:
        return 1 + math.ceil((frames - 1) / temporal)
    return math.ceil(frames / temporal)


def tokens(height: int, width: int, frames: int = 1, spatial: int = 1, temporal: int = 1,
           patch: int = 1, causal: bool = True) -> int:
    """Tokens a transformer sees for a clip of `frames` frames of height x width pixels.

    spatial:  the VAE's downsampling per side (8 in most video VAEs; 1 = raw pixels)
    temporal: the VAE's compression in time (4 in CogVideoX and Wan; 1 = frame by frame)
    patch:    the DiT's patch on the latent grid (2 in DiT and minivid; 1 = none)
    A side that does not divide by spatial * patch is padded up (ceil)."""
    side = spatial * patch
    return (latent_frames(frames, temporal, causal)
            * math.ceil(height / side) * math.ceil(width / side))


def tokens_per_second(height: int, width: int, fps: float = 24, spatial: int = 1,
                      temporal: int = 1, patch: int = 1) -> float:
    """Tokens per second of video, in steady state: fps / temporal latent frames a second,
    each of tokens(height, width, spatial=, patch=). The causal first frame is a one-off and
    is left out here; count a whole clip with tokens()."""
    return fps / temporal * tokens(height, width, spatial=spatial, patch=patch)


def storage_bytes(videos: float, bytes_each: float = 5e6) -> float:
    """Bytes to store `videos` files of `bytes_each` (5 MB: ~5 s of 720p H.264 at ~8 Mbit/s)."""
    return videos * bytes_each


def latent_bytes(height: int, width: int, frames: int, spatial: int = 8, temporal: int = 4,
                 channels: int = 16, bytes_per_number: int = 2) -> int:
    """Bytes of one clip's cached VAE latents: (latent frames x h x w) positions x `channels`
    numbers of `bytes_per_number` (2: bf16). A video file is entropy-coded (H.264 keeps only
    what changes); latents are dense numbers, so their cache is the same order of size as the
    videos, even at 8x8x4 fewer positions."""
    return tokens(height, width, frames, spatial, temporal) * channels * bytes_per_number


def s3_monthly_cost(nbytes: float, price_per_gb_month: float = 0.023, tiers=None,
                    gb: float = GB) -> float:
    """Dollars a month to keep `nbytes` in S3.

    Flat (default): every GB at `price_per_gb_month`, the first-tier S3 Standard price.
    tiers=S3_STANDARD: the volume discount, each tier's GB at its own price (replaces the
    flat price). gb: AWS's bill counts GiB (2**30 bytes); pass gb=2**30 for ~7% less.
    Left out: requests, egress (data leaving AWS is billed per GB on top), replicas."""
    size = nbytes / gb
    if tiers is None:
        return size * price_per_gb_month
    cost, below = 0.0, 0.0
    for upper, price in tiers:
        cost += max(0.0, min(size, upper) - below) * price
        below = upper
    return cost


def train_flops(params: float, tokens: float) -> float:
    """6 N D: FLOPs to train N parameters on D tokens (https://arxiv.org/abs/2001.08361).
    Each parameter costs a multiply and an add per token forward (2), the backward pass twice
    that (4). Left out: attention's N^2 term (large for long video sequences) and per-sample
    work, such as adaLN, that a token-count formula charges per token (see DiT.flops)."""
    return 6 * params * tokens


def gpu_days(flops: float, peak_flops: float = H100_BF16_DENSE, mfu: float = 0.4) -> float:
    """Days on one GPU that reaches `mfu` (model FLOPs utilisation, 0.3-0.5 in good large runs)
    of `peak_flops`. Divide by the number of GPUs for wall-clock days."""
    return flops / (peak_flops * mfu) / 86400


def tiny_model(preset: str = "tiny", vae_preset: str = "tiny-t4", frames: int = 16,
               size: int = 32) -> dict:
    """minivid's own numbers, read off its code -> {"params": the DiT's parameter count,
    "tokens": DiT tokens of one clip, "latent": (C, T, h, w) of the clip, "dit": the model}.

    The DiT is built as train_dit.py builds it (t2v.make_config: latent channels from the
    VAE preset, text width from the text preset); a `frames`-long size x size clip is padded
    to the VAE's causal length (16 -> 17 frames for tf = 4) and its latent patchified."""
    import torch  # only here: the formulas above need no torch

    from minivid.dit import DiT, DiTConfig, patchify
    from minivid.t2v import make_config
    from minivid.vae import PRESETS, VAE, pad_frames
    vae = VAE(PRESETS[vae_preset])
    T = pad_frames(torch.zeros(1, 3, frames, size, size), vae.cfg.tf)[0].shape[2]
    C, Tl, h, w = vae.latent_shape(T, size, size)
    dit = DiT(DiTConfig(**make_config(preset, [], channels=C)["dit"]))
    n = patchify(torch.zeros(1, C, Tl, h, w), dit.cfg.patch).shape[1]      # (1, N, C p p)
    return {"params": sum(p.numel() for p in dit.parameters()), "tokens": n,
            "latent": (C, Tl, h, w), "dit": dit}


def tiny_run_flops(steps: int = 1500, batch: int = 32, **model) -> float:
    """6 N D of a minivid training run: N = the tiny DiT's parameters, D = steps x batch x
    tokens per clip. `model` goes to tiny_model (preset, vae_preset, frames, size)."""
    m = tiny_model(**model)
    return train_flops(m["params"], steps * batch * m["tokens"])


if __name__ == "__main__":
    videos, big = storage_bytes(1e9), train_flops(19e9, 20e12)  # the talk's run
    m = tiny_model()
    rows = [("1000x1000 image, tokens", tokens(1000, 1000), "1 token per pixel"),
            ("  8x8 VAE + 2x2 patches", tokens(1000, 1000, spatial=8, patch=2), "16x16 pixels"),
            ("720p 24 fps, tokens/s", tokens_per_second(720, 1280), "1 token per pixel"),
            ("  8x8 VAE", tokens_per_second(720, 1280, spatial=8), "frame by frame"),
            ("  8x8x4 VAE", tokens_per_second(720, 1280, spatial=8, temporal=4), "4x in time"),
            ("  8x8x4 VAE + 2x2 patches", tokens_per_second(720, 1280, 24, 8, 4, 2),
             "16x16 pixels x 4 frames"),
            ("Cosmos 5 s clip, tokens", tokens(704, 1280, 121, spatial=8, temporal=8, patch=2),
             "121 frames 704x1280, 8x8x8 VAE, 2x2"),
            ("1e9 videos, PB", videos / PB, "5 MB each"),
            ("S3 $/month, videos", s3_monthly_cost(videos), "$0.023/GB-month flat"),
            ("S3 $/month, videos + features", s3_monthly_cost(2 * videos), "5 PB + 5 PB, flat"),
            ("  with the volume tiers", s3_monthly_cost(2 * videos, tiers=S3_STANDARD),
             "$0.023 / 0.022 / 0.021"),
            ("19B dense x 20T tokens, FLOPs", big, "6ND"),
            ("  H100-days", gpu_days(big), "989 TFLOP/s bf16 x MFU 0.4"),
            ("minivid tiny DiT, params", m["params"], "preset tiny, tiny-t4 latents"),
            ("  tokens per 16-frame 32x32 clip", m["tokens"], "latent (C, T, h, w) = "
             f"{m['latent']}, 2x2 patches"),
            ("  1,500 steps x 32 clips, FLOPs", tiny_run_flops(1500, 32), "6ND")]
    for what, value, assumption in rows:
        shown = f"{value:,.0f}" if value < 1e9 else f"{value:.3g}"
        print(f"{what:34s} {shown:>12s}   {assumption}")
