"""00 - The arithmetic of video: tokens, bytes, dollars and FLOPs, before anything trains.

Concept: a video generator is shaped by a few multiplications. One token per pixel makes a
1000x1000 image a million tokens; an 8x8 VAE and 2x2 patches cut that 256-fold and 4x in
time another 4-fold. A billion 5 MB videos are 5 PB, about $115K a month in S3, and the
talk's $230K is that plus as much again for the cached VAE features. Training costs 6 N D
FLOPs, which at an H100's 989 TFLOP/s and 40% MFU is tens of thousands of GPU-days for a 19B
model on tens of trillions of tokens. minivid/arithmetic.py makes each assumption a keyword
parameter; this walkthrough checks that the stated assumptions reproduce the talk's figures,
that each function answers its parameters, and that minivid's own numbers are those of the
model its trainer builds.

Run: python -m pytest tests/test_00_arithmetic.py -q
"""
import math

import pytest
import torch

from minivid import arithmetic as ar
from minivid.dit import patchify
from minivid.t2v import build_model, make_config
from minivid.text import build_vocab
from minivid.vae import PRESETS as VAE_PRESETS, VAE, pad_frames


# 1. One token per pixel: a 1000x1000 image is a million tokens; an 8x8 VAE with 2x2 patches
#    (16x16 pixels a token) leaves 63 x 63 (1000 / 16 padded up), a 1024 image exactly 64 x 64.
def test_01_pixels_and_patches():
    assert ar.tokens(1000, 1000) == 1_000_000
    assert ar.tokens(1000, 1000, spatial=8, patch=2) == 63 * 63
    assert ar.tokens(1024, 1024, spatial=8, patch=2) == 64 * 64
    assert ar.tokens(1024, 1024, spatial=16) == ar.tokens(1024, 1024, spatial=8, patch=2)


# 2. 4x temporal compression quarters the tokens, up to the causal first frame: 1 + 4k frames
#    become 1 + k latent frames (minivid/vae.py), groups from the start give exactly a quarter.
def test_02_temporal_compression():
    one = ar.tokens(720, 1280, 1, spatial=8)
    assert ar.tokens(720, 1280, 17, spatial=8, temporal=4) == 5 * one         # 1 + 4*4 -> 1 + 4
    assert ar.tokens(720, 1280, 16, spatial=8, temporal=4) == 5 * one         # padded to 17
    assert ar.tokens(720, 1280, 16, spatial=8, temporal=4, causal=False) == 4 * one
    assert ar.tokens(720, 1280, 16, spatial=8) == 16 * one                    # frame by frame
    frame_by_frame = ar.tokens_per_second(720, 1280, spatial=8)
    assert ar.tokens_per_second(720, 1280, spatial=8, temporal=4) == frame_by_frame / 4
    assert ar.tokens_per_second(720, 1280, fps=48, spatial=8) == 2 * frame_by_frame
    assert ar.tokens_per_second(720, 1280) == 24 * 720 * 1280                 # pixels


# 3. The talk's "five seconds of video in Cosmos is roughly 50-60K tokens": 121 frames of
#    704x1280 through an 8x8x8 causal VAE (16 latent frames of 88 x 160) and 2x2 patches.
def test_03_cosmos_clip():
    assert ar.tokens(704, 1280, 121, spatial=8, temporal=8, patch=2) == 16 * 44 * 80 == 56_320


# 4. A billion 5 MB videos are 5 PB; their cached latents are the same order of size (a
#    5 s 720p clip: 31 x 90 x 160 positions x 16 bf16 channels = 14 MB at 8x8x4, 7 MB at 8x8x8).
def test_04_storage():
    assert ar.storage_bytes(1e9, 5e6) == 5 * ar.PB
    assert ar.latent_bytes(720, 1280, 121) == 31 * 90 * 160 * 16 * 2
    assert 1e6 < ar.latent_bytes(720, 1280, 121, temporal=8) < 20e6


# 5. S3: 5 PB at the flat first-tier $0.023/GB-month is $115K; the talk's ~$230K is 5 PB of
#    videos + 5 PB of features at that price (exact, tolerance 1%). With the volume tiers the
#    same 10 PB cost $210.6K, within 10% of $230K; billing in GiB is another ~7% less.
def test_05_s3_cost():
    videos = ar.storage_bytes(1e9)
    assert ar.s3_monthly_cost(videos) == pytest.approx(115_000, rel=0.01)
    assert ar.s3_monthly_cost(2 * videos) == pytest.approx(230_000, rel=0.01)
    tiered = ar.s3_monthly_cost(2 * videos, tiers=ar.S3_STANDARD)
    assert tiered == pytest.approx(50e3 * 0.023 + 450e3 * 0.022 + 9.5e6 * 0.021)
    assert 0.9 * 230_000 < tiered < 230_000
    assert ar.s3_monthly_cost(40e12, tiers=ar.S3_STANDARD) == ar.s3_monthly_cost(40e12)  # tier 1
    assert ar.s3_monthly_cost(videos, gb=2**30) == pytest.approx(115_000 * 1e9 / 2**30)
    assert ar.s3_monthly_cost(videos, price_per_gb_month=0.046) == pytest.approx(230_000)


# 6. Compute: 6 N D for 19B parameters and 20T tokens is 2.28e24 FLOPs, ~67K H100-days at
#    989 TFLOP/s and 40% MFU (67 days on 1,000 GPUs); "tens of trillions" (10T-50T) spans
#    ~33K-167K GPU-days. Twice the MFU halves the days.
def test_06_gpu_days():
    flops = ar.train_flops(19e9, 20e12)
    assert flops == pytest.approx(2.28e24)
    assert 60e3 < ar.gpu_days(flops) < 70e3
    assert 30e3 < ar.gpu_days(ar.train_flops(19e9, 10e12)) < 35e3
    assert 160e3 < ar.gpu_days(ar.train_flops(19e9, 50e12)) < 170e3
    assert ar.gpu_days(flops, mfu=0.8) == pytest.approx(ar.gpu_days(flops) / 2)
    assert ar.gpu_days(86400 * 1e12, peak_flops=1e12, mfu=1.0) == pytest.approx(1.0)


# 7. minivid's own numbers are those of the model train_dit.py builds: the DiT inside
#    t2v.build_model (with a real vocabulary) has tiny_model's parameter count, and a 16-frame
#    32x32 clip, padded and really encoded by a tiny-t4 VAE, patchifies to its 80 tokens:
#    the same as the formula of step 1 with spatial 4, temporal 4, patch 2.
def test_07_tiny_model_matches_the_code():
    torch.manual_seed(0)
    m = ar.tiny_model()
    vae = VAE(VAE_PRESETS["tiny-t4"])
    vocab = build_vocab(["a small red circle moves to the right"])
    built = build_model(make_config("tiny", vocab, channels=vae.cfg.latent))["dit"]
    assert m["params"] == sum(p.numel() for p in built.parameters())
    clip, _ = pad_frames(torch.zeros(1, 3, 16, 32, 32), vae.cfg.tf)           # (1, 3, 17, 32, 32)
    with torch.no_grad():
        mean, _ = vae.encode(clip)                                            # (1, 3, 5, 8, 8)
    assert tuple(mean.shape[1:]) == m["latent"] == (3, 5, 8, 8)
    assert patchify(mean, built.cfg.patch).shape[1] == m["tokens"] == 80
    assert m["tokens"] == ar.tokens(32, 32, 16, spatial=4, temporal=4, patch=2)


# 8. The tiny run's 6 N D, against the DiT's own FLOP count (attention, text tokens and
#    per-sample adaLN counted where they happen): the same order, within a factor of two.
def test_08_tiny_run_flops():
    m = ar.tiny_model()
    flops = ar.tiny_run_flops(1500, 32)
    assert flops == 6 * m["params"] * 1500 * 32 * m["tokens"]
    assert ar.tiny_run_flops(3000, 32) == 2 * flops
    C, T, h, w = m["latent"]
    exact = 1500 * 32 * m["dit"].flops(T, h, w, L=40)
    assert 0.5 < exact / flops < 1.0, f"6ND {flops:.3g} vs DiT.flops {exact:.3g}"
    assert math.isclose(flops, 3.62e13, rel_tol=0.01)
