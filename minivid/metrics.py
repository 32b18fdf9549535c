"""Reconstruction metrics: PSNR and SSIM between two videos.

Where it sits: the VAE report (minivid/vae_bench.py) measures how much a VAE loses; any
other stage that compares a clip with a reference can use the same two numbers.

Both take video tensors (B, C, T, H, W) in [-1, 1] (images are T = 1), map them to [0, 1]
first (the range the usual dB figures assume), and return one value per video, shape (B,).
- PSNR = 10 log10(1 / MSE), the MSE taken over all pixels of the video. +1 dB ~ 21% less MSE.
- SSIM (Wang et al. 2004, https://ieeexplore.ieee.org/document/1284395) compares local means,
  contrasts and structure in an 11x11 Gaussian window (sigma 1.5), frame by frame, then
  averages; 1.0 means identical. It punishes blur that PSNR forgives.

Run its checks: `OMP_NUM_THREADS=1 python -m pytest tests/test_03a_vae.py -q -k metric`
"""

import torch
import torch.nn.functional as F


def _check(a: torch.Tensor, b: torch.Tensor) -> None:
    if a.shape != b.shape or a.ndim != 5:
        raise ValueError(f"expected two videos of the same shape (B, C, T, H, W), got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}; crop padded frames first")


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a, b: (B, C, T, H, W) in [-1, 1] -> PSNR in dB on the [0, 1] range, (B,)."""
    _check(a, b)
    a, b = (a.float().clamp(-1, 1) + 1) / 2, (b.float().clamp(-1, 1) + 1) / 2
    mse = (a - b).pow(2).flatten(1).mean(1)                     # (B,)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))        # identical videos -> 100 dB


def ssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """a, b: (B, C, T, H, W) in [-1, 1] -> mean SSIM over frames, channels and positions, (B,).

    The window slides over the valid region only (no padding), as in the reference code;
    frames smaller than the window use a window the size of the frame.
    """
    _check(a, b)
    B, C, T, H, W = a.shape
    window = min(window, H, W)
    a = ((a.float().clamp(-1, 1) + 1) / 2).transpose(1, 2).reshape(B * T, C, H, W)  # (B*T, C, H, W)
    b = ((b.float().clamp(-1, 1) + 1) / 2).transpose(1, 2).reshape(B * T, C, H, W)  # (B*T, C, H, W)
    x = torch.arange(window, dtype=torch.float32, device=a.device) - (window - 1) / 2
    g = torch.exp(-x.pow(2) / (2 * sigma ** 2))
    g = (g / g.sum()).outer(g / g.sum())                                # (k, k), sums to 1
    k = g.expand(C, 1, window, window)                                  # one window per channel

    def blur(x):
        return F.conv2d(x, k, groups=C)                                 # (B*T, C, h, w) valid

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a ** 2
    var_b = blur(b * b) - mu_b ** 2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2  # stabilisers from the paper, for a data range of 1
    s = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return s.reshape(B, -1).mean(1)                                     # (B,)
