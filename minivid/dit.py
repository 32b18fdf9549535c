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
- Clean conditioning frames (clip extension, minivid/extend.py; image-to-video): `cond` is
  the history, (B, C, Tc, H, W) full-resolution frames or a `Context` of pieces, each with
  its own patch kernel (FramePack-style: older frames coarser, 2x and 4x in time and space;
  a coarse kernel starts as "average-pool, then the full embedding"). Its tokens go BEFORE
  the noisy ones; the newest history frame is frame 0 and the noisy frames 1..T, the numbers
  the video stage trained on; coarse tokens get the mean position of what they cover.
  Clean tokens are modulated by adaLN at the history's time (0, or the little noise it was
  given: Context.t; the noisy ones at t): per-token
  timesteps as in diffusion forcing, so the video model reads its history as the nearly
  clean frames it already knows. (A first version marked them only by an added learned
  `clean` vector, at the noisy tokens' t; it kept identity across clips far worse, see the
  README; the vector stays, trained.) They reach the output only through attention, and
  only the noisy frames' tokens are decoded.
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
    # Coarse patch embeddings for packed history (clip extension, minivid/extend.py): kernel
    # k embeds k latent frames x (k p)^2 pixels of latent as ONE token. () = none.
    context_kernels: tuple = ()


PRESETS = {
    "tiny": DiTConfig(dim=128, depth=4, heads=4, text_dim=128),     # 2 CPU cores, minutes
    "small": DiTConfig(dim=384, depth=12, heads=6, text_dim=384),   # one GPU, 64x64 pixels
    "base": DiTConfig(dim=768, depth=12, heads=12, text_dim=768),   # multi-GPU recipe
}


def patchify(x, p: int):
    """(B, C, T, H, W) -> (B, T * H/p * W/p, C * p * p), tokens ordered (t, h, w)."""
    B, C, T, H, W = x.shape
    x = x.reshape(B, C, T, H // p, p, W // p, p)
    x = x.permute(0, 2, 3, 5, 1, 4, 6)                    # (B, T, H/p, W/p, C, p, p)
    return x.reshape(B, T * (H // p) * (W // p), C * p * p)


def unpatchify(x, p: int, T: int, H: int, W: int):
    """(B, T * H/p * W/p, C * p * p) -> (B, C, T, H, W), the inverse of patchify."""
    B, N, _ = x.shape
    x = x.reshape(B, T, H // p, W // p, -1, p, p)        # (B, T, H/p, W/p, C, p, p)
    x = x.permute(0, 4, 1, 2, 5, 3, 6)                    # (B, C, T, H/p, p, W/p, p)
    return x.reshape(B, -1, T, H, W)


def patchify_coarse(x, p: int, k: int):
    """(B, C, T, H, W) -> (B, T/k * H/(kp) * W/(kp), C * k * kp * kp): one token per k frames
    x kp x kp latent pixels, tokens ordered (t, h, w), features ordered (c, dt, dy, dx).
    k = 1 is `patchify`."""
    B, C, T, H, W = x.shape
    q = k * p
    x = x.reshape(B, C, T // k, k, H // q, q, W // q, q)
    x = x.permute(0, 2, 4, 6, 1, 3, 5, 7)                 # (B, T/k, H/q, W/q, C, k, q, q)
    return x.reshape(B, (T // k) * (H // q) * (W // q), C * k * q * q)


@dataclass
class Context:
    """Clean history for clip extension: groups of latent frames, each embedded with its own
    kernel. pieces: list of (z (B, C, Tp, H, W), k, pos (Tp,) float frame positions), Tp a
    multiple of k. The newest history frame sits at position 0; the noisy frames that
    continue it are 1, 2, ... (minivid/extend.py builds these; `full` is one k = 1 piece).
    t: (B,) the flow time the history is at (a little noise makes a model robust to the
    flaws of its own past clips, minivid/extend.py), None = 0: exactly clean."""
    pieces: list
    t: torch.Tensor | None = None

    @staticmethod
    def frames(z):
        """Full-resolution history z (B, C, Tc, H, W) at positions -(Tc - 1) .. 0."""
        Tc = z.shape[2]
        return Context([(z, 1, torch.arange(1 - Tc, 1, dtype=torch.float32))])

    def cat(self, other):
        """Concatenate two contexts of the same layout along the batch (guidance halves)."""
        t = None if self.t is None else torch.cat([self.t, other.t])
        return Context([(torch.cat([a, b]), k, pos)
                        for (a, k, pos), (b, _, _) in zip(self.pieces, other.pieces)], t)

    def __getitem__(self, rows):
        return Context([(z[rows], k, pos) for z, k, pos in self.pieces],
                       None if self.t is None else self.t[rows])

    def to(self, device):
        return Context([(z.to(device), k, pos.to(device)) for z, k, pos in self.pieces],
                       None if self.t is None else self.t.to(device))

    def tokens(self, patch: int) -> int:
        """Tokens this context adds to the DiT's sequence."""
        return sum((z.shape[2] // k) * (z.shape[3] // (k * patch)) * (z.shape[4] // (k * patch))
                   for z, k, _ in self.pieces)


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
    in front of them, mod_clean (B, D) or None -> (B, 1, D) or (B, N, D)."""
    if not Nc:
        return mod[:, None]
    return torch.cat([mod_clean[:, None].expand(-1, Nc, -1),
                      mod[:, None].expand(-1, N - Nc, -1)], dim=1)


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
        c_clean (B, D): the condition of the first Nc tokens (clean context, time 0)."""
        mods = self.ada(c).chunk(6, dim=1)                                # 6 x (B, D)
        clean = self.ada(c_clean).chunk(6, dim=1) if Nc else [None] * 6
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
        # FramePack-style coarse kernels for old history frames (each its own embedding)
        self.ctx_embed = nn.ModuleDict({str(k): nn.Linear(C * k * (k * p) ** 2, D)
                                        for k in cfg.context_kernels})
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
        self.init_context_kernels()

    @torch.no_grad()
    def init_context_kernels(self):
        """Each coarse kernel starts as: average-pool its k x kp x kp block down to one p x p
        patch, then apply the full-resolution embedding. As weights: the full kernel copied to
        every (dt, dy, dx) it pools, divided by the k^3 values averaged. So a coarse token
        starts as the full model's token of the blurred frames (FramePack initialises its
        coarse projections from the full one the same way); training refines it."""
        W = self.x_embed.weight                                # (D, C p p), features (c, y, x)
        D, C, p = W.shape[0], self.cfg.in_channels, self.cfg.patch
        for key, lin in self.ctx_embed.items():
            k = int(key)
            Wk = W.view(D, C, 1, p, 1, p, 1).expand(D, C, k, p, k, p, k) / k ** 3
            # (D, C, dt, y, ky, x, kx) -> features (c, dt, dy = y k + ky, dx = x k + kx)
            lin.weight.copy_(Wk.reshape(D, C * k * (k * p) ** 2))
            lin.bias.copy_(self.x_embed.bias)

    def forward(self, x, t, text, text_mask, cond=None, d=None):
        """
        x:         (B, C, T, H, W) noisy latents at time t (H, W even)
        t:         (B,) flow time in [0, 1]: 0 = data, 1 = noise (minivid/flow.py)
        text:      (B, L, Dt) text features from minivid.text.TextEncoder
        text_mask: (B, L) bool, True for real tokens
        cond:      clean history that x continues, or None: (B, C, Tc, H, W) full-resolution
                   frames, or a Context (packed history, minivid/extend.py)
        d:         (B,) step size of a distilled student's jump (only with step_input=True);
                   None adds nothing: the step_input model then runs its teacher pathway
        returns    (B, C, T, H, W) predicted velocity (noise - data) for the noisy frames
        """
        B, C, T, H, W = x.shape
        p = self.cfg.patch
        if C != self.cfg.in_channels or H % p or W % p:
            raise ValueError(f"latents {tuple(x.shape)}: expected C = {self.cfg.in_channels} "
                             f"and H, W divisible by patch = {p}; check the VAE/latent cache")
        if torch.is_tensor(cond):
            cond = Context.frames(cond)                     # full resolution, ends at frame 0
        if cond is not None and cond.t is not None and cond.t.shape != (B,):
            raise ValueError(f"context time {tuple(cond.t.shape)}: expected one per sample, ({B},)")
        for z, k, pos in cond.pieces if cond is not None else []:
            q = k * p
            if (z.shape[0] != B or z.shape[1] != C or z.shape[3:] != x.shape[3:] or z.shape[2] % k
                    or H % q or W % q or pos.shape != (z.shape[2],)):
                raise ValueError(f"context piece {tuple(z.shape)} (kernel {k}) must match x "
                                 f"{tuple(x.shape)} in batch, channels and H, W, with a frame "
                                 f"count divisible by {k}, H and W by {q}, one position per frame")
            if k != 1 and str(k) not in self.ctx_embed:
                raise ValueError(f"context kernel {k}: this DiT has coarse kernels "
                                 f"{self.cfg.context_kernels}; build it with "
                                 f"DiTConfig(context_kernels=(2, 4)) (train_dit.py --stage extend)")
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

        # Clean context tokens first (each piece with its kernel, its space table pooled to
        # match), then the noisy frames: frames 1..T after a context, 0..T-1 without one
        # (so a first clip and a continuation clip both number their new frames as the video
        # stage trained them, and the newest history frame plays the first frame's part).
        table = sincos_2d(H // p, W // p, self.cfg.dim, x.device)     # (H/p * W/p, D)
        parts, frame = [], []
        for z, k, pos in cond.pieces if cond is not None else []:
            embed = self.x_embed if k == 1 else self.ctx_embed[str(k)]
            tok = embed(patchify_coarse(z, p, k))                       # (B, Tp/k * Sk, D)
            space = table.view(H // (k * p), k, W // (k * p), k, -1).mean((1, 3)).flatten(0, 1)
            Sk = space.shape[0]                                         # tokens per group
            parts.append(tok + space.repeat(z.shape[2] // k, 1))
            frame.append(pos.to(x.device).view(-1, k).mean(1).repeat_interleave(Sk))
        Nc = sum(t.shape[1] for t in parts)                             # clean tokens
        S = (H // p) * (W // p)                                         # tokens per noisy frame
        first = 1 if Nc else 0                                          # an empty context is none
        parts.append(self.x_embed(patchify(x, p)) + table.repeat(T, 1))  # (B, T * S, D)
        frame.append(torch.arange(first, first + T, device=x.device).float().repeat_interleave(S))
        h = torch.cat(parts, dim=1)                                     # (B, N, D)
        frame = torch.cat(frame)                                        # (N,) float
        if Nc:
            is_clean = torch.arange(h.shape[1], device=h.device) < Nc   # (N,)
            h = h + is_clean[:, None] * self.clean                      # (B, N, D)
        rope = None
        if Nc or T > 1:
            rope = rope_angles(frame, self.cfg.dim // self.cfg.heads)
            h = h + frame_offset(frame, self.cfg.dim)                   # (B, N, D)

        pooled = (text * text_mask[..., None]).sum(1) / text_mask.sum(1, keepdim=True)
        te = self.t_embed(t)                                            # (B, D)
        c = te + self.pool_proj(pooled)                                 # (B, D)
        if d is not None:
            c = c + self.d_embed(d)                                     # (B, D)
        # Clean context tokens are modulated as what they are: frames at time t = 0, which the
        # video model already knows how to read (its own nearly clean frames), while the
        # noisy tokens get time t. Two adaLN conditions, chosen per token.
        c_clean = None
        if Nc:
            t_ctx = torch.zeros_like(t) if cond.t is None else cond.t.to(t.dtype)
            c_clean = c - te + self.t_embed(t_ctx)                      # (B, D)
        ctx = self.text_proj(text)                                      # (B, L, D)
        for block in self.blocks:
            if self.cfg.grad_checkpoint and self.training and torch.is_grad_enabled():
                h = checkpoint(block, h, c, ctx, text_mask, rope, c_clean, Nc,
                               use_reentrant=False)
            else:
                h = block(h, c, ctx, text_mask, rope, c_clean, Nc)

        h = h[:, Nc:]                                                   # (B, T * S, D)
        shift, scale = self.final_ada(c).chunk(2, dim=1)                # 2 x (B, D)
        h = self.final(modulate(self.final_norm(h), shift[:, None], scale[:, None]))
        return unpatchify(h, p, T, H, W)                                # (B, C, T, H, W)

    def flops(self, T: int, H: int, W: int, L: int, Tc: int = 0, Nc: int | None = None) -> int:
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
                          another K * 6 D^2 + 256 D + D^2 (adaLN of the clean tokens, t = 0)
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
                + (N > Nt) * (K * 6 * D * D + 256 * D + D * D))  # clean tokens' adaLN at t = 0
        attention = K * 4 * D * (N * N + N * L)
        return 3 * (2 * macs + attention)


if __name__ == "__main__":
    for name, cfg in PRESETS.items():
        m = DiT(cfg)
        n = sum(p.numel() for p in m.parameters())
        print(f"{name:6} {n / 1e6:7.2f}M params  {m.flops(5, 8, 8, 40) / 1e9:8.3f} GFLOP "
              "per training sample of 5x8x8 latents and 40 text tokens")
