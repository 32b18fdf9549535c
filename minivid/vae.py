"""Patch VAE: squeeze a video into a small grid of continuous latents, and back.

Pipeline position: pixels -> [vae.encode] -> latents -> DiT (trained on cached latents, see
minivid/latents.py) -> [vae.decode] -> pixels. The DiT never sees pixels, so every number
the VAE saves is compute the DiT does not spend.

Design (reads top to bottom below):
- Spatial compression by patches: each p x p pixel square becomes one token (p = 4 for 32x32
  toy clips, 8 for larger). Patchify is a reshape + Linear, like ViT, far cheaper on a CPU
  than the strided conv towers of the Stable Diffusion VAE. One cheap 3x3 conv at full
  resolution sits before it (stem) and two after the decoder's un-patchify (head): a token's
  Linear alone paints each p x p square on its own, so edges come out blurred and blocky;
  the full-resolution convs see across square borders and sharpen edges.
- Temporal compression tf = 1 (frame by frame) or tf = 4, CAUSAL in time. The first frame is
  encoded on its own and every later latent frame covers the next tf frames, so a video has
  T = 1 + tf*k frames -> 1 + k latent frames (the convention of CogVideoX / Cosmos /
  Wan: https://arxiv.org/abs/2408.06072). Implementation: the first frame is repeated tf
  times in front, so every group has tf frames and one Linear embeds all groups alike.
  Consequences: an image is a one-frame video, and a video's first latent IS that image's
  latent (the text-to-image and text-to-video models share a latent space).
- Between patchify and the latents: a few ConvNeXt-style residual blocks on the (h, w) token
  grid of each latent frame; each block's MLP also sees the token one latent frame EARLIER
  (a causal temporal kernel of size 2), so motion is mixed in without ever looking ahead.
  Norms act per token, never over time, so causality holds exactly: changing frame k leaves
  all earlier latent frames unchanged. The decoder mirrors the encoder and is causal too, so
  a stream can be decoded as it comes.
- Continuous latents with a KL term (the "VAE" part, https://arxiv.org/abs/1312.6114) of tiny
  weight, as in latent diffusion (https://arxiv.org/abs/2112.10752): it keeps the latents
  from drifting without costing reconstruction quality (see train_vae.py).

Run: this file is a library; train it with `python train_vae.py --preset tiny-t4` (CPU),
`python train_vae.py --preset small-t4 --device cuda` (one GPU), or
`torchrun --nproc_per_node 8 train_vae.py --preset base-t4` (multi-GPU).
Tests: `python -m pytest tests/test_03a_vae.py -q`.
"""

import hashlib
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange

from minivid.checkpoint import check_config, load_checkpoint, load_state_strict


@dataclass
class VAEConfig:
    patch: int = 4          # spatial patch size p: H, W -> H/p, W/p
    tf: int = 4             # temporal compression: 1 (frame by frame) or 4 (causal groups)
    channels: int = 3       # image channels C
    latent: int = 3         # latent channels per token
    width: int = 256        # token width D inside the blocks
    pixel_width: int = 16   # channels S of the full-resolution stem (encoder) and head (decoder)
    depth: int = 1          # residual blocks in the encoder (and again in the decoder)


# Compression = (C * T * H * W) / (latent * T' * h * w). For a 16-frame 32x32 clip (49152
# numbers): tiny-t4 -> 3 x 5 x 8 x 8 = 960 numbers, 51.2x; tiny-t1 -> 4 x 16 x 8 x 8, 12x.
# The tiny presets are tuned to train in ~4 minutes on 2 CPU cores (train_vae.py defaults):
# one block each side is enough there, since steps matter more than depth at that budget.
# small/base are untuned starting points for 64x64+ data (patch 8): one GPU / several.
PRESETS = {
    "tiny-t1": VAEConfig(patch=4, tf=1, latent=4, width=256, depth=1),
    "tiny-t4": VAEConfig(patch=4, tf=4, latent=3, width=256, depth=1),
    "small-t1": VAEConfig(patch=8, tf=1, latent=16, width=384, depth=4),
    "small-t4": VAEConfig(patch=8, tf=4, latent=16, width=384, depth=4),
    "base-t1": VAEConfig(patch=8, tf=1, latent=16, width=768, pixel_width=32, depth=8),
    "base-t4": VAEConfig(patch=8, tf=4, latent=16, width=768, pixel_width=32, depth=8),
}


def valid_frames(T: int, tf: int) -> bool:
    """True when a clip of T frames fits the causal grid: T = 1 + tf * k, k >= 0."""
    return T >= 1 and (T - 1) % tf == 0


def check_frames(T: int, tf: int) -> None:
    """Raise a ValueError naming the valid frame counts and the fix."""
    if not valid_frames(T, tf):
        ok = ", ".join(str(1 + tf * k) for k in range(5))
        raise ValueError(f"got T = {T} frames, but a VAE with temporal compression tf = {tf} "
                         f"expects T = 1 + {tf}k ({ok}, ...): the first frame is encoded alone, "
                         f"then groups of {tf}. Pad with minivid.vae.pad_frames(x, {tf}) and crop "
                         f"the decoded clip back to T frames.")


def pad_frames(x: torch.Tensor, tf: int) -> tuple[torch.Tensor, int]:
    """Pad a video at the END by repeating its last frame up to the next valid length.

    x: (B, C, T, H, W) -> (x_padded (B, C, T_pad, H, W), T). Crop decoded clips with [:, :, :T].
    A 16-frame clip with tf = 4 becomes 17 frames (1 + 4*4).
    """
    T = x.shape[2]
    T_pad = 1 + tf * -(-(T - 1) // tf)  # ceil((T - 1) / tf) groups after the first frame
    if T_pad == T:
        return x, T
    last = x[:, :, -1:].expand(-1, -1, T_pad - T, -1, -1)  # (B, C, T_pad - T, H, W)
    return torch.cat([x, last], dim=2), T


def fingerprint(model: nn.Module) -> str:
    """Short sha256 of the weights (names, shapes, bytes): identifies the VAE a cache came from."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(str(tuple(t.shape)).encode())
        h.update(t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of each token on its own: (N, D, h, w) -> (N, D, h, w).

    Not GroupNorm: that subtracts a mean over the whole frame, and in a world of flat colours
    the frame mean IS the background colour, which the decoder then has to guess. A per-token
    norm keeps each token's colour (its direction in channel space) and never mixes tokens,
    so causality in time holds trivially.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


class CausalBlock(nn.Module):
    """Residual block on the token grid, ConvNeXt-style (https://arxiv.org/abs/2201.03545):
    a depthwise 3x3 conv mixes neighbouring tokens, then an MLP mixes channels of the token
    together with the same token one latent frame earlier (a causal temporal kernel of 2).
    Depthwise 3x3 + MLP costs ~3 D^2 multiply-adds per token, against 27 D^2 for two full 3x3
    convs (the first on [now, prev]): on 2 CPU cores the budget is counted in steps, and the
    cheap block buys many more of them. (A 2x wider MLP hidden layer gave the same PSNR per
    step on tiny-t4 but ~20% fewer steps in the budget.)"""

    def __init__(self, width: int):
        super().__init__()
        self.norm = ChannelNorm(width)
        self.spatial = nn.Conv2d(width, width, 3, padding=1, groups=width)  # depthwise
        self.fc1 = nn.Conv2d(2 * width, width, 1)  # [now, previous] -> hidden
        self.fc2 = nn.Conv2d(width, width, 1)

    def forward(self, x: torch.Tensor, T: int) -> torch.Tensor:
        """x: (B*T, D, h, w) with frames of one clip adjacent -> (B*T, D, h, w)."""
        BT, D, h, w = x.shape
        y = self.spatial(self.norm(x)).view(BT // T, T, D, h, w)       # (B, T, D, h, w)
        prev = F.pad(y, (0, 0, 0, 0, 0, 0, 1, 0))[:, :T]               # (B, T, D, h, w), 0 at t=0
        y = torch.cat([y, prev], dim=2).view(BT, 2 * D, h, w)          # (B*T, 2D, h, w)
        return x + self.fc2(F.silu(self.fc1(y)))


class VAE(nn.Module):
    def __init__(self, cfg: VAEConfig):
        super().__init__()
        if cfg.tf not in (1, 4):
            raise ValueError(f"tf = {cfg.tf} is not supported; use tf = 1 or tf = 4")
        self.cfg = cfg
        p, tf, D = cfg.patch, cfg.tf, cfg.width
        S = cfg.pixel_width
        self.patch_dim = S * tf * p * p    # stem features in one token: S * tf * p * p
        self.stem = nn.Conv2d(cfg.channels, S, 3, padding=1)
        self.embed = nn.Linear(self.patch_dim, D)
        self.enc = nn.ModuleList(CausalBlock(D) for _ in range(cfg.depth))
        self.enc_out = nn.Sequential(ChannelNorm(D), nn.SiLU(),
                                     nn.Conv2d(D, 2 * cfg.latent, 1))  # -> mean, logvar
        self.dec_in = nn.Conv2d(cfg.latent, D, 1)
        self.dec = nn.ModuleList(CausalBlock(D) for _ in range(cfg.depth))
        self.dec_out = nn.Sequential(ChannelNorm(D), nn.SiLU(),
                                     nn.Conv2d(D, self.patch_dim, 1))  # -> one token of features
        self.head = nn.Sequential(nn.SiLU(), nn.Conv2d(S, S, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(S, cfg.channels, 3, padding=1))
        self._init_weights()

    def _init_weights(self):
        # Zero the last conv of every residual branch: each block starts as the identity, so the
        # untrained net is a plain linear patch autoencoder and the loss falls from step one.
        for block in [*self.enc, *self.dec]:
            nn.init.zeros_(block.fc2.weight)
            nn.init.zeros_(block.fc2.bias)
        # Start the posterior nearly deterministic (std e^-4 ~ 0.02 instead of 1): unit noise
        # on a fresh encoder's small outputs would drown the signal and stall early training;
        # the KL term then raises the noise only as far as the decoder can tolerate.
        logvar_bias = self.enc_out[-1].bias[self.cfg.latent:]
        nn.init.constant_(logvar_bias, -8.0)

    def latent_shape(self, T: int, H: int, W: int) -> tuple[int, int, int, int]:
        """Latent (C_lat, T', h, w) of a (C, T, H, W) video; T must be valid (see pad_frames)."""
        check_frames(T, self.cfg.tf)
        return (self.cfg.latent, 1 + (T - 1) // self.cfg.tf,
                H // self.cfg.patch, W // self.cfg.patch)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, T, H, W) in [-1, 1], T = 1 + tf*k -> mean, logvar: each (B, Cl, T', h, w)."""
        B, C, T, H, W = x.shape
        p, tf = self.cfg.patch, self.cfg.tf
        check_frames(T, tf)
        if C != self.cfg.channels or H % p or W % p:
            raise ValueError(f"expected (B, {self.cfg.channels}, T, H, W) with H, W divisible by "
                             f"patch {p}; got {tuple(x.shape)}. Resize or crop the frames.")
        Tl = 1 + (T - 1) // tf
        x = self.stem(rearrange(x, "b c t h w -> (b t) c h w"))    # (B*T, S, H, W), per frame
        x = rearrange(x, "(b t) s h w -> b t s h w", b=B)          # (B, T, S, H, W)
        first = x[:, :1].expand(-1, tf - 1, -1, -1, -1)            # frame 0, tf - 1 more times
        x = F.silu(torch.cat([first, x], dim=1))                   # (B, tf*T', S, H, W)
        # Patchify: each latent frame's tf frames x p x p pixels x S features -> one token.
        x = rearrange(x, "b (t f) s (h p) (w q) -> b t h w (f s p q)", f=tf, p=p, q=p)
        x = self.embed(x)                                          # (B, T', h, w, D)
        x = rearrange(x, "b t h w d -> (b t) d h w")               # (B*T', D, h, w)
        for block in self.enc:
            x = block(x, Tl)
        x = rearrange(self.enc_out(x), "(b t) c h w -> b c t h w", b=B)  # (B, 2Cl, T', h, w)
        mean, logvar = x.chunk(2, dim=1)                           # (B, Cl, T', h, w) each
        return mean, logvar.clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, Cl, T', h, w) -> video (B, C, 1 + tf*(T'-1), h*p, w*p), roughly in [-1, 1]."""
        B, Cl, Tl, h, w = z.shape
        p, tf = self.cfg.patch, self.cfg.tf
        x = self.dec_in(rearrange(z, "b c t h w -> (b t) c h w"))  # (B*T', D, h, w)
        for block in self.dec:
            x = block(x, Tl)
        # Unpatchify: one token's features -> tf frames x p x p pixels x S features.
        x = rearrange(self.dec_out(x), "(b t) (f s p q) h w -> b (t f) s (h p) (w q)",
                      b=B, f=tf, p=p, q=p)                         # (B, tf*T', S, H, W)
        x = x[:, tf - 1:]                                          # drop the first frame's repeats
        x = self.head(rearrange(x, "b t s h w -> (b t) s h w"))    # (B*T, C, H, W), per frame
        return rearrange(x, "(b t) c h w -> b c t h w", b=B)       # (B, C, T, H, W)

    def forward(self, x: torch.Tensor, sample: bool = True,
                noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, T, H, W), T = 1 + tf*k -> (recon (B, C, T, H, W), kl: scalar).

        kl is KL(q(z|x) || N(0, I)) averaged over latent numbers. With sample=True the latent is
        drawn from the posterior (reparameterisation trick) with `noise` (B, Cl, T', h, w), a
        fresh standard normal draw when None; sample=False uses the mean.
        """
        mean, logvar = self.encode(x)
        if sample and noise is None:
            noise = torch.randn_like(mean)
        z = mean + noise * (0.5 * logvar).exp() if sample else mean
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        return self.decode(z), kl


def load_vae(path, expect: VAEConfig | None = None) -> tuple[VAE, dict]:
    """Rebuild a VAE from its checkpoint file alone -> (model on the CPU in eval mode, ckpt).

    With `expect`, a checkpoint of another config is refused before any weight is copied
    (a half-loaded model is worse than none), with an error naming the differing fields.
    """
    ckpt = load_checkpoint(path, kind="vae")
    if expect is not None:
        check_config(ckpt["config"], asdict(expect), "VAE")
    model = VAE(VAEConfig(**ckpt["config"]))
    load_state_strict(model, ckpt["model"], "VAE")
    return model.eval(), ckpt
