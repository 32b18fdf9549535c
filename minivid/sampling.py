"""Text -> video with a trained DiT: rebuild everything from the checkpoint, sample, decode.

Where it sits: the end of the pipeline. train_dit.py saves a "dit" checkpoint that carries
the text-encoder and DiT configs (vocabulary included), their weights and EMA weights, the
VAE's path and fingerprint and the latent normalisation; this file needs nothing else:

    pipe = Pipeline("runs/dit_video/ckpt.pt")                 # EMA weights, VAE from extra
    videos = pipe.generate(["a red circle moves to the left"], frames=16, steps=30, cfg=2.0)
    # uint8 (N, T, H, W, 3), the same for the same seed

Steps: captions -> TextEncoder -> features; Gaussian noise of the latent shape -> flow.sample
(Euler or Heun, classifier-free guidance against the empty caption) -> latents * scale +
shift -> VAE decode -> crop the frames the causal VAE padded -> uint8.
The latent shape comes from the VAE: 16 frames pad to 17 = 1 + 4 * 4 for a tf = 4 VAE, i.e.
5 latent frames; frames = 1 is a still image (1 latent frame).

Used by sample.py (CLI), minivid/dit_bench.py (evaluation) and train_dit.py (previews).
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_10_train_dit.py -q`
"""
import os

import numpy as np
import torch
import torch.nn as nn

from minivid import flow
from minivid.checkpoint import load_checkpoint, load_state_strict
from minivid.data import to_uint8
from minivid.dit import DiT, DiTConfig
from minivid.text import TextConfig, TextEncoder
from minivid.vae import fingerprint, load_vae


def build_model(config: dict) -> nn.ModuleDict:
    """{"text": asdict(TextConfig), "dit": asdict(DiTConfig)} -> ModuleDict(text=, dit=).

    One container for both networks, so they share one optimizer, one EMA and one
    state_dict ("text.*" and "dit.*" keys) in the checkpoint."""
    return nn.ModuleDict({"text": TextEncoder(TextConfig(**config["text"])),
                          "dit": DiT(DiTConfig(**config["dit"]))})


def load_model(path, ema: bool = True) -> tuple[nn.ModuleDict, dict]:
    """Rebuild text encoder + DiT from a "dit" checkpoint alone -> (model in eval mode, ckpt).

    ema=True loads the EMA weights: they average out the last steps' SGD noise and sample
    visibly better than the raw weights."""
    ckpt = load_checkpoint(path, kind="dit")
    model = build_model(ckpt["config"])
    load_state_strict(model, ckpt["ema"]["shadow"] if ema else ckpt["model"], f"DiT ({path})")
    return model.eval(), ckpt


def latent_frames(frames: int, tf: int) -> int:
    """Latent frames T' for `frames` pixel frames: pad to 1 + tf * k, then 1 + k."""
    if frames < 1:
        raise ValueError(f"frames = {frames}; ask for at least 1 (1 = a still image)")
    return 1 + -(-(frames - 1) // tf)


@torch.no_grad()
def sample_latents(model, prompts: list[str], shape, steps: int = 30, cfg: float = 2.0,
                   seed: int = 0, sampler: str = "euler", allow_empty: bool = False,
                   batch_size: int = 64):
    """Prompts -> normalised latents (N, C, T, h, w), deterministic for `seed`.

    shape: (C, T, h, w) of one latent. The noise of prompt i is the i-th draw of a CPU
    generator seeded with `seed`, so it never depends on the device, the batch size, or the
    global RNG (a training run can call this for previews without changing its own noise).
    cfg = 1 samples the conditional model alone (half the compute); cfg > 1 extrapolates
    away from the unconditional prediction (https://arxiv.org/abs/2207.12598)."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(prompts), *shape, generator=g)            # (N, C, T, h, w)
    out = []
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i:i + batch_size]
        text, mask = model["text"].encode(chunk, allow_empty=allow_empty)   # (B, L, D), (B, L)
        uncond = None
        if cfg != 1.0:  # the null caption: "" padded to the same L, one batched forward
            null, null_mask = model["text"].encode([""] * len(chunk), allow_empty=True,
                                                   length=mask.shape[1])
            uncond = dict(text=null, text_mask=null_mask)
        x = flow.sample(model["dit"], noise[i:i + batch_size].to(device),
                        dict(text=text, text_mask=mask), uncond, cfg, steps, sampler)
        out.append(x.float().cpu())
    return torch.cat(out)


@torch.no_grad()
def decode(vae, z, shift: float, scale: float, frames: int, batch_size: int = 64):
    """Normalised latents (N, C, T', h, w) -> uint8 (N, frames, H, W, 3).

    Undo the cache's normalisation (the DiT learned (z - shift) / scale), decode, and crop
    the frames pad_frames added (17 decoded -> 16 asked)."""
    device = next(vae.parameters()).device
    out = []
    for i in range(0, len(z), batch_size):
        x = vae.decode(z[i:i + batch_size].to(device) * scale + shift)  # (B, 3, T_pad, H, W)
        out.append(to_uint8(x[:, :, :frames]))                          # (B, frames, H, W, 3)
    return np.concatenate(out)                                          # (N, frames, H, W, 3)


class Pipeline:
    """A DiT checkpoint + its VAE, ready to turn prompts into uint8 videos."""

    def __init__(self, ckpt_path, vae_path=None, device="cpu"):
        self.model, self.ckpt = load_model(ckpt_path)
        extra = self.ckpt["extra"]
        vae_path = vae_path or extra["vae"]
        if not os.path.exists(vae_path):
            raise FileNotFoundError(f"VAE checkpoint {vae_path} (recorded in {ckpt_path}) not "
                                    "found; pass the VAE the DiT was trained with (--vae)")
        self.vae, _ = load_vae(vae_path)
        if fingerprint(self.vae) != extra["vae_fingerprint"]:
            raise ValueError(f"{vae_path} has fingerprint {fingerprint(self.vae)}, but {ckpt_path} "
                             f"was trained on latents of the VAE {extra['vae_fingerprint']}; its "
                             "latents would decode to noise. Pass that VAE with --vae")
        self.device = torch.device(device)
        self.model.to(self.device)
        self.vae.to(self.device)
        self.shift, self.scale = extra["latent_shift"], extra["latent_scale"]

    def generate(self, prompts: list[str], frames: int = 16, steps: int = 30, cfg: float = 2.0,
                 seed: int = 0, sampler: str = "euler", allow_empty: bool = False,
                 batch_size: int = 64):
        """-> uint8 (N, frames, H, W, 3); the same prompts and seed give the same videos."""
        C, (h, w) = self.model["dit"].cfg.in_channels, self.ckpt["extra"]["latent_hw"]
        shape = (C, latent_frames(frames, self.vae.cfg.tf), h, w)
        z = sample_latents(self.model, list(prompts), shape, steps, cfg, seed, sampler,
                           allow_empty, batch_size)
        return decode(self.vae, z, self.shift, self.scale, frames, batch_size)
