"""DiT: a diffusion transformer over VAE latents, for images (T = 1) and videos alike.

Where it sits: cached latents (B, C, T, H, W) (minivid/latents.py; H, W here are the LATENT
grid) -> noised by minivid/flow.py -> this network predicts the velocity -> flow.py samples.
Text comes in as features from minivid/text.py, through cross-attention.

The design, top to bottom (DiT https://arxiv.org/abs/2212.09748, PixArt-a
https://arxiv.org/abs/2310.00426):
- Patchify: each latent frame is cut into 2x2 patches (1 frame in time), one token each,
  ordered (t, h, w). A 5x8x8 latent clip is 5 * 4 * 4 = 80 tokens.
- Positions, factorised by axis:
  * space is ABSOLUTE: DiT's fixed 2-D sin-cos table added to every frame's tokens. A frame
    has edges and "top left" is an absolute statement, which a tiny model reads off directly.
  * time is RELATIVE in attention: rotary embedding (RoPE, minivid/rope.py) over the frame
    index inside self-attention, so two tokens interact according to how many frames apart
    they are; clean conditioning frames shifted in front of the clip do not change what
    "one frame later" means.
  * ... and ABSOLUTE in the input: every token also gets sincos(frame) - sincos(0) added.
    RoPE alone cannot tell a token WHICH frame it is in: at high noise every frame holds
    the same kind of noise, and attention only mixes those values; the rotations change
    the mixing weights but leave no reliable frame number behind. But "starts at the top
    left and moves right" is an absolute statement about frame 0. The offset is exactly 0
    for frame 0, so an image (T = 1: no rotation, no offset) is exactly a 2-D DiT, and a
    video reuses all of it: frame 0 IS the image, the others are told how far after it
    they are.
- adaLN-Zero: the timestep (plus the mean-pooled caption, as in SD3) gives every block a
  shift, scale and gate per channel; the gates start at zero so every block starts as the
  identity and the untrained model predicts v = 0.
- Cross-attention to the text tokens (with their padding mask) after self-attention.
- Clean conditioning tokens (`cond`): tokens the network reads but does not denoise, in
  FRONT of the noisy ones: clean latent frames (B, C, Tc, H, W) embedded like x
  (image-to-video), or a `Prefix` of tokens someone else embedded (clip extension's packed
  history, minivid/history.py, with its own coarse patch kernels). Their frames are numbered
  so that the newest clean frame is frame 0 and the noisy frames 1..T, the numbers the video
  stage trained on. Clean tokens are modulated by adaLN at THEIR time (0, or the little noise
  they were given: Prefix.t; the noisy ones at t): per-token timesteps as in diffusion
  forcing, so the video model reads them as the nearly clean frames it already knows. (A
  first version marked them only by an added learned `clean` vector, at the noisy tokens' t;
  it kept identity across clips far worse, see the README; the vector stays, trained.) They
  reach the output only through attention, and only the noisy frames' tokens are decoded.
- Step size (distilled students only, `step_input=True`): a few-step student
  (minivid/distillation.py) also gets the jump size d, embedded like t and added to the
  adaLN condition; its embedding starts at exactly zero, so a student loaded with the
  teacher's weights IS the teacher until distillation trains it.
Everything uses F.scaled_dot_product_attention; `grad_checkpoint=True` recomputes each block
in the backward pass (less memory, ~1/3 more compute).

    python -m minivid.dit           # parameter counts and FLOPs of the presets
"""
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from torch.utils.checkpoint import checkpoint

from minivid.rope import apply_rope, rope_angles


@dataclass
class DiTConfig:
    in_channels: int = 8     # C: latent channels; set it from the latent cache
    text_dim: int = 128      # width of the text features; = TextConfig.dim
    patch: int = 2           # spatial patch size (time patch is 1)
    dim: int = 128           # D
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4
    grad_checkpoint: bool = False  # activation checkpointing of each block when training
    step_input: bool = False  # a distilled student: forward takes the step size d as well
    # Coarse patch kernels of a packed history (clip extension): kernel k embeds k latent
    # frames x (k p)^2 latent pixels as ONE token. The DiT itself does not use them: they are
    # built, initialised and applied by minivid/history.py (add_context_kernels), and kept
    # here so that a checkpoint's config rebuilds them. () = none.
    context_kernels: tuple = ()


PRESETS = {
    "tiny": DiTConfig(dim=128, depth=4, heads=4, text_dim=128),     # 2 CPU cores, minutes
    "small": DiTConfig(dim=384, depth=12, heads=6, text_dim=384),   # one GPU, 64x64 pixels
    "base": DiTConfig(dim=768, depth=12, heads=12, text_dim=768),   # multi-GPU recipe
}


def patchify(x, p: int):
    """(B, C, T, H, W) -> (B, T * H/p * W/p, C * p * p): one token per p x p patch of a frame,
    tokens ordered (t, h, w), features (c, y, x)."""
    return rearrange(x, "B C T (h y) (w x) -> B (T h w) (C y x)", y=p, x=p)


def unpatchify(x, p: int, T: int, H: int, W: int):
    """(B, T * H/p * W/p, C * p * p) -> (B, C, T, H, W), the inverse of patchify."""
    return rearrange(x, "B (T h w) (C y x) -> B C T (h y) (w x)", T=T, h=H // p, y=p, x=p)


@dataclass
class Prefix:
    """Clean tokens in front of the noisy ones: conditioning the DiT reads but never denoises.

    tokens: (B, Nc, D) embedded tokens, their 2-D space position already added
    frame:  (Nc,) float frame position of each token: the newest clean frame is 0, so the
            noisy frames after it are 1..T (a coarse token: the mean of the frames it covers)
    t:      (B,) the flow time the tokens are at (a little noise), (B, Nc) one per token
            (per-piece levels, minivid/history.py: noise_pieces), or None: 0, exactly clean
    """
    tokens: torch.Tensor
    frame: torch.Tensor
    t: torch.Tensor | None = None


def sincos_1d(pos, dim: int):
    """Transformer sin-cos features of positions (N,) -> (N, dim)."""
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, device=pos.device) / (dim // 2))
    angle = pos.float()[:, None] * omega[None]                          # (N, dim/2)
    return torch.cat([angle.sin(), angle.cos()], dim=1)


def sincos_2d(h: int, w: int, dim: int, device=None):
    """Fixed 2-D position table for an h x w token grid -> (h * w, dim), half per axis."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device),
                            indexing="ij")
    return torch.cat([sincos_1d(ys.flatten(), dim // 2), sincos_1d(xs.flatten(), dim // 2)], 1)


def frame_offset(frame, dim: int):
    """Absolute time code of frame indices frame (N,) -> (N, dim): sincos(frame) - sincos(0),
    exactly zero for frame 0 (so an image, T = 1, is left exactly as the 2-D DiT sees it)."""
    return sincos_1d(frame, dim) - sincos_1d(torch.zeros_like(frame[:1]), dim)


def modulate(x, shift, scale):
    """adaLN: affine shift, scale (B, 1, D) (one per sample) or (B, N, D) (one per token)
    applied to the tokens of x (B, N, D)."""
    return x * (1 + scale) + shift


def per_token(mod, mod_clean, Nc: int, N: int):
    """The adaLN outputs of the noisy tokens, mod (B, D), and of the Nc clean context tokens
    in front of them, mod_clean (B, D), (B, Nc, D) (one per token) or None -> (B, 1, D) or
    (B, N, D)."""
    if not Nc:
        return mod[:, None]
    if mod_clean.dim() == 2:
        mod_clean = mod_clean[:, None].expand(-1, Nc, -1)
    return torch.cat([mod_clean, mod[:, None].expand(-1, N - Nc, -1)], dim=1)


class TimestepEmbedder(nn.Module):
    """Flow time t in [0, 1] -> (B, D): sin-cos features of 1000 * t, then an MLP (DiT)."""

    def __init__(self, dim: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t):
        # x1000 so the fastest sin-cos frequencies resolve small differences in t, as DDPM's
        # integer timesteps did.
        return self.mlp(sincos_1d(1000 * t, self.freq_dim))             # (B, D)


class Attention(nn.Module):
    """Multi-head attention. Self-attention (context=None, optional time RoPE) or
    cross-attention to `context` with a key mask."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, context=None, mask=None, rope=None):
        """x: (B, N, D); context: (B, L, D) or None (= x); mask: (B, L) bool; rope: (cos, sin)
        -> (B, N, D)"""
        B, N, D = x.shape
        ctx = x if context is None else context
        hs = D // self.heads
        q = self.q(x).view(B, N, self.heads, hs).transpose(1, 2)        # (B, nh, N, hs)
        k, v = self.kv(ctx).view(B, -1, 2, self.heads, hs).permute(2, 0, 3, 1, 4)  # (B, nh, L, hs)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        m = None if mask is None else mask[:, None, None, :]           # (B, 1, 1, L)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=m)       # (B, nh, N, hs)
        return self.proj(a.transpose(1, 2).reshape(B, N, D))           # (B, N, D)


class DiTBlock(nn.Module):
    """adaLN-Zero self-attention, cross-attention to text, adaLN-Zero MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int):
        super().__init__()
        # LayerNorms without affine: adaLN supplies the scale and shift.
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.cross = Attention(dim, heads)
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(mlp_ratio * dim, dim))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c, text, text_mask, rope, c_clean=None, Nc: int = 0):
        """x: (B, N, D), c: (B, D), text: (B, L, D), text_mask: (B, L) -> (B, N, D).
        c_clean (B, D) or (B, Nc, D): the condition of the first Nc tokens (clean context)."""
        mods = self.ada(c).chunk(6, dim=1)                                # 6 x (B, D)
        clean = self.ada(c_clean).chunk(6, dim=-1) if Nc else [None] * 6
        shift1, scale1, gate1, shift3, scale3, gate3 = (per_token(m, mc, Nc, x.shape[1])
                                                        for m, mc in zip(mods, clean))
        x = x + gate1 * self.attn(modulate(self.norm1(x), shift1, scale1), rope=rope)
        x = x + self.cross(self.norm2(x), text, text_mask)
        return x + gate3 * self.mlp(modulate(self.norm3(x), shift3, scale3))


class DiT(nn.Module):
    """Velocity network v(x_t, t, text, clean frames) over latent images and videos."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        if cfg.dim % cfg.heads or (cfg.dim // cfg.heads) % 2 or cfg.dim % 4:
            raise ValueError(f"dim={cfg.dim} must be divisible by 4 and by heads={cfg.heads}, "
                             "with an even head size (RoPE rotates channel pairs)")
        self.cfg = cfg
        D, p, C = cfg.dim, cfg.patch, cfg.in_channels
        self.x_embed = nn.Linear(C * p * p, D)          # a stride-p conv, written as a Linear
        self.t_embed = TimestepEmbedder(D)
        if cfg.step_input:                               # step size d, minivid/distillation.py
            self.d_embed = TimestepEmbedder(D)
        self.text_proj = nn.Linear(cfg.text_dim, D)     # text features -> DiT width
        self.pool_proj = nn.Linear(cfg.text_dim, D)     # pooled caption -> adaLN condition
        self.clean = nn.Parameter(torch.zeros(D))       # added to clean conditioning tokens
        # Patch embeddings of other shapes for clean tokens, filled by what embeds them (clip
        # extension's coarse kernels: minivid/history.py), so their weights live here too.
        self.ctx_embed = nn.ModuleDict()
        self.blocks = nn.ModuleList(DiTBlock(D, cfg.heads, cfg.mlp_ratio)
                                    for _ in range(cfg.depth))
        self.final_norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(D, 2 * D))
        self.final = nn.Linear(D, C * p * p)
        self.initialize_weights()

    def initialize_weights(self):
        # Every Linear: Xavier-uniform, zero bias (DiT). It keeps activations at unit variance
        # for any width; the patch embedding is a Linear here, so it gets the same.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        # Timestep MLP: N(0, 0.02) as in DiT; sin-cos inputs are already O(1).
        for m in self.t_embed.mlp[0::2]:
            nn.init.normal_(m.weight, std=0.02)
        # Step-size MLP: same first layer, but the LAST layer at 0, so its output is exactly 0
        # for every d and a student holding the teacher's weights predicts exactly what the
        # teacher does: distillation starts from a working sampler and only has to learn the
        # correction for big jumps. (The first layer's output is nonzero, so the last layer
        # still gets gradients and the embedding wakes up at the first step, as adaLN-Zero.)
        if self.cfg.step_input:
            nn.init.normal_(self.d_embed.mlp[0].weight, std=0.02)
            nn.init.zeros_(self.d_embed.mlp[2].weight), nn.init.zeros_(self.d_embed.mlp[2].bias)
        # The clean-frame flag is a small random vector, like a learned position embedding.
        nn.init.normal_(self.clean, std=0.02)
        # adaLN-Zero: shift, scale and gate of every block start at 0, so each residual branch
        # is switched off and every block is the identity; training opens the gates. The
        # cross-attention has no gate, so its output projection starts at 0 too (PixArt-a).
        for b in self.blocks:
            nn.init.zeros_(b.ada[1].weight), nn.init.zeros_(b.ada[1].bias)
            nn.init.zeros_(b.cross.proj.weight), nn.init.zeros_(b.cross.proj.bias)
        # Final layer at 0: the untrained model predicts v = 0, the mean of noise - x0 for
        # zero-mean latents, i.e. the best constant guess.
        for m in (self.final_ada[1], self.final):
            nn.init.zeros_(m.weight), nn.init.zeros_(m.bias)

    def embed(self, z):
        """Latent frames (B, C, T, H, W) -> tokens (B, T * S, D): the patch embedding plus the
        fixed 2-D sin-cos position of each patch (S = H/p * W/p tokens per frame)."""
        p = self.cfg.patch
        table = sincos_2d(z.shape[3] // p, z.shape[4] // p, self.cfg.dim, z.device)  # (S, D)
        return self.x_embed(patchify(z, p)) + table.repeat(z.shape[2], 1)          # (B, T S, D)

    def forward(self, x, t, text, text_mask, cond=None, d=None):
        """
        x:         (B, C, T, H, W) noisy latents at time t (H, W divisible by the patch)
        t:         (B,) flow time in [0, 1]: 0 = data, 1 = noise (minivid/flow.py)
        text:      (B, L, Dt) text features from minivid.text.TextEncoder
        text_mask: (B, L) bool, True for real tokens
        cond:      clean conditioning in front of x, or None: clean latent frames (B, C, Tc,
                   H, W), a Prefix, or an object that embeds itself (see `prefix`)
        d:         (B,) step size of a distilled student's jump (only with step_input=True);
                   None adds nothing: the step_input model then runs its teacher pathway
        returns    (B, C, T, H, W) predicted velocity (noise - data) for the noisy frames
        """
        self.check_inputs(x, text, text_mask, d)
        B, C, T, H, W = x.shape
        pre = self.prefix(cond, x.shape)                               # Prefix or None
        Nc = 0 if pre is None else pre.tokens.shape[1]                 # clean tokens in front
        S = (H // self.cfg.patch) * (W // self.cfg.patch)              # tokens per frame
        h = self.embed(x)                                              # (B, T * S, D)
        first = 1 if Nc else 0    # after clean tokens the noisy frames are 1..T, else 0..T-1
        frame = torch.arange(first, first + T, device=x.device).float().repeat_interleave(S)
        if Nc:                    # clean tokens first, marked by the learned `clean` vector
            h = torch.cat([pre.tokens, h], dim=1)                      # (B, N, D), N = Nc + T S
            is_clean = torch.arange(h.shape[1], device=h.device) < Nc  # (N,)
            h = h + is_clean[:, None] * self.clean                     # (B, N, D)
            frame = torch.cat([pre.frame.to(x.device), frame])         # (N,)
        rope = None
        if Nc or T > 1:           # an image alone gets neither: exactly the 2-D DiT
            rope = rope_angles(frame, self.cfg.dim // self.cfg.heads)
            h = h + frame_offset(frame, self.cfg.dim)                  # (B, N, D)
        c, c_clean = self.condition(t, text, text_mask, d, pre)        # (B, D), (B, D) or None
        ctx = self.text_proj(text)                                     # (B, L, D)
        for block in self.blocks:
            if self.cfg.grad_checkpoint and self.training and torch.is_grad_enabled():
                h = checkpoint(block, h, c, ctx, text_mask, rope, c_clean, Nc, use_reentrant=False)
            else:
                h = block(h, c, ctx, text_mask, rope, c_clean, Nc)
        h = h[:, Nc:]                                                  # (B, T * S, D)
        shift, scale = self.final_ada(c).chunk(2, dim=1)               # 2 x (B, D)
        h = modulate(self.final_norm(h), shift[:, None], scale[:, None])  # (B, T * S, D)
        return unpatchify(self.final(h), self.cfg.patch, T, H, W)      # (B, C, T, H, W)

    def prefix(self, cond, shape) -> Prefix | None:
        """`cond` -> the clean tokens it puts in front of x (of shape (B, C, T, H, W)), or None.
        Clean latent frames (B, C, Tc, H, W) are embedded like x, at frames -(Tc - 1) .. 0; a
        Prefix is taken as it is; any other object embeds itself with this DiT's weights:
        cond.prefix(dit, shape) -> Prefix (clip extension's packed history, minivid/history.py)."""
        B, C, T, H, W = shape
        if torch.is_tensor(cond):
            if cond.shape[:2] != (B, C) or cond.shape[3:] != (H, W):
                raise ValueError(f"clean frames {tuple(cond.shape)} must match x {tuple(shape)} "
                                 "in batch, channels and H, W")
            frame = torch.arange(1 - cond.shape[2], 1, device=cond.device).float()  # (Tc,)
            cond = Prefix(self.embed(cond), frame.repeat_interleave(H * W // self.cfg.patch ** 2))
        elif cond is not None and not isinstance(cond, Prefix):
            cond = cond.prefix(self, shape)
        if cond is None or cond.tokens.shape[1] == 0:                  # no clean tokens: none
            return None
        Nc = cond.tokens.shape[1]
        if (cond.tokens.shape != (B, Nc, self.cfg.dim) or cond.frame.shape != (Nc,)
                or (cond.t is not None and cond.t.shape not in ((B,), (B, Nc)))):
            raise ValueError(f"clean tokens {tuple(cond.tokens.shape)}, frames "
                             f"{tuple(cond.frame.shape)}: expected (B, Nc, D) = ({B}, Nc, "
                             f"{self.cfg.dim}), one frame per token and a time t of shape ({B},) "
                             f"or ({B}, Nc)")
        return cond

    def check_inputs(self, x, text, text_mask, d) -> None:
        """Refuse what forward cannot use, naming the fix."""
        B, C, T, H, W = x.shape
        p = self.cfg.patch
        if C != self.cfg.in_channels or H % p or W % p:
            raise ValueError(f"latents {tuple(x.shape)}: expected C = {self.cfg.in_channels} "
                             f"and H, W divisible by patch = {p}; check the VAE/latent cache")
        if text.shape[-1] != self.cfg.text_dim or text_mask.shape != text.shape[:2]:
            raise ValueError(f"text {tuple(text.shape)} / text_mask {tuple(text_mask.shape)}: "
                             f"expected (B, L, {self.cfg.text_dim}) and (B, L); set "
                             "DiTConfig.text_dim = TextConfig.dim")
        if d is not None and not self.cfg.step_input:
            raise ValueError("got a step size d, but this DiT was built without a step input; "
                             "build the student with DiTConfig(step_input=True) (see "
                             "minivid.distillation.student_config) or drop d for the teacher")
        if d is not None and d.shape != (B,):
            raise ValueError(f"d {tuple(d.shape)}: expected one step size per sample, ({B},)")

    def condition(self, t, text, text_mask, d, pre):
        """The adaLN conditions (B, D): c, of the noisy tokens, is time t + the mean-pooled
        caption (+ the step size d); c_clean, of the clean tokens, is the same at the prefix's
        own time (0, or the little noise it was given; (B, Nc, D) when each token has its
        own time), or None without clean tokens."""
        pooled = (text * text_mask[..., None]).sum(1) / text_mask.sum(1, keepdim=True)
        te = self.t_embed(t)                                           # (B, D)
        c = te + self.pool_proj(pooled)                                # (B, D)
        if d is not None:
            c = c + self.d_embed(d)                                    # (B, D)
        if pre is None:
            return c, None
        t_clean = torch.zeros_like(t) if pre.t is None else pre.t.to(t.dtype)
        if t_clean.dim() == 2:                                         # (B, Nc): per token
            B, Nc = t_clean.shape
            return c, (c - te)[:, None] + self.t_embed(t_clean.reshape(-1)).view(B, Nc, -1)
        return c, c - te + self.t_embed(t_clean)                       # (B, D)

    def flops(self, T: int, H: int, W: int, L: int, Tc: int = 0, Nc: int | None = None,
              clean_times: int = 1) -> int:
        """Training FLOPs (forward + backward) of one sample; for MFU multiply by the batch,
        divide by the step time and the hardware's peak FLOP/s.

        A matmul of an (N, a) input with an (a, b) weight costs 2 * N * a * b; the backward
        pass costs twice the forward (gradients of inputs and of weights), so training is
        3 x forward, i.e. the familiar 6 * params * tokens. With N = (Tc + T) * S tokens
        (S = H W / p^2 per frame), Nt = T * S of them decoded, D = dim, K = depth:
          per token:      K * 14 D^2 (qkv 3, out 1, cross q 1, cross out 1, mlp 8 D^2)
                          + p^2 C D (patch embedding);  final layer p^2 C D per Nt token
          per text token: Dt D + K * 2 D^2 (text projection, cross k and v)
          per sample:     adaLN K * 6 D^2 + 2 D^2, timestep MLP 256 D + D^2, pooling Dt D,
                          with step_input another 256 D + D^2 for the step-size MLP; with a context
                          another K * 6 D^2 + 256 D + D^2 (adaLN of the clean tokens at their
                          time) per distinct clean time: clean_times = 1 when the history has
                          one time, = its token count when each token has its own (per-piece
                          noise, Prefix.t (B, Nc): the adaLN then runs once per clean token)
          attention:      K * 4 D (N^2 + N L)  (scores q k^T and the weighted sum a v)
        FLOPs = 3 * 2 * (sum of the matmul terms) + 3 * attention. Elementwise ops, norms and
        softmax are left out (the usual MFU convention); grad_checkpoint adds a forward but
        is not counted (MFU counts model FLOPs, not hardware FLOPs). A packed context (clip
        extension) passes its token count Nc instead of Tc; its coarse tokens are counted at
        the full kernel's embedding cost (theirs is k^3 larger: under 1% of the total)."""
        D, K, p, C, Dt = self.cfg.dim, self.cfg.depth, self.cfg.patch, self.cfg.in_channels, \
            self.cfg.text_dim
        S = (H // p) * (W // p)
        Nt = T * S
        N = (Tc * S if Nc is None else Nc) + Nt
        macs = (N * (K * 14 * D * D + p * p * C * D) + Nt * p * p * C * D
                + L * (Dt * D + K * 2 * D * D)
                + K * 6 * D * D + 2 * D * D + 256 * D + D * D + Dt * D
                + self.cfg.step_input * (256 * D + D * D)
                + (N > Nt) * clean_times * (K * 6 * D * D + 256 * D + D * D))  # clean adaLN
        attention = K * 4 * D * (N * N + N * L)
        return 3 * (2 * macs + attention)


if __name__ == "__main__":
    for name, cfg in PRESETS.items():
        m = DiT(cfg)
        n = sum(p.numel() for p in m.parameters())
        print(f"{name:6} {n / 1e6:7.2f}M params  {m.flops(5, 8, 8, 40) / 1e9:8.3f} GFLOP "
              "per training sample of 5x8x8 latents and 40 text tokens")
