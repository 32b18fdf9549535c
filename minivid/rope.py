"""Rotary position embedding (RoPE, https://arxiv.org/abs/2104.09864): positions as rotations.

Where it sits: inside self-attention, in the text encoder (word positions, minivid/text.py)
and in the DiT (frame indices, minivid/dit.py).

The idea in one line: rotate each channel pair (i, i + hs/2) of a query at position m by the
angle m * f_i, and of a key at position n by n * f_i. A dot product of two rotated vectors
depends only on the DIFFERENCE of their angles, so the attention score q_m . k_n depends on
m - n, never on m or n alone: attention becomes relative ("the word two to my left") and
works for any length. Compare a learned position table (GPT-2), where "two to my left" has
to be learned separately at every absolute position.

    cos, sin = rope_angles(torch.arange(L), head_dim)     # (L, hs/2) each
    q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)

Tests: tests/test_04b_dit.py (the score depends only on the offset).
"""
import torch


def rope_angles(pos, head_dim: int):
    """cos, sin (N, head_dim/2) of the rotation angles pos * f_i for positions pos (N,);
    frequencies f_i = 10000^(-2i / head_dim), from one turn per position to very slow."""
    freqs = 1.0 / 10000 ** (torch.arange(0, head_dim, 2, device=pos.device) / head_dim)
    angle = pos.float()[:, None] * freqs[None]                          # (N, hs/2)
    return angle.cos(), angle.sin()


def apply_rope(x, cos, sin):
    """Rotate channel pairs (i, i + hs/2) of x (B, nh, N, hs) by the angles in cos/sin."""
    x1, x2 = x.chunk(2, dim=-1)                                         # (B, nh, N, hs/2)
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)                         # bf16 under autocast
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
