"""A tiny GPT: the language model behind the prompt rewriter (minivid/rewrite.py).

Where it sits: sparse prompt -> [rewrite.brief] -> words -> ids -> GPT -> next-word logits;
rewrite.py trains it on (brief -> dense caption) pairs and samples dense captions from it.
It is nanoGPT's model (https://github.com/karpathy/nanoGPT) cut to what a few-hundred-word
language needs: token embedding, pre-LayerNorm causal self-attention blocks with rotary
positions (minivid/rope.py, as in the text encoder), a final LayerNorm, and an output layer
that shares the embedding matrix (weight tying: the same vectors read and write words).

Words, not bytes, for the same reason as the text encoder (minivid/text.py): a dense caption
is ~55 words but ~260 bytes; a word-level model learns the world's captions in a couple of
CPU minutes, a byte-level one would first have to learn to spell. Words it never saw can not
reach it: the rewriter's input is rebuilt from the parsed prompt (rewrite.brief), and the
parser (minivid/prompt_parse.py) has already mapped synonyms and typos and set aside the
words the world never uses.

    python -m minivid.gpt        # shapes of one forward pass
"""
import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from minivid.rope import apply_rope, rope_angles


@dataclass
class GPTConfig:
    vocab: list[str] = field(default_factory=list)   # the words; saved with the model
    max_len: int = 96      # L: tokens per sequence (brief + dense caption + markers)
    dim: int = 128         # D
    depth: int = 4
    heads: int = 4


PRESETS = {
    "tiny": GPTConfig(max_len=96, dim=128, depth=4, heads=4),    # 2 CPU cores, <= 3 minutes
    "small": GPTConfig(max_len=128, dim=256, depth=6, heads=8),  # one GPU
}


class Block(nn.Module):
    """Pre-LayerNorm transformer layer with CAUSAL attention: word l sees words 0..l only."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * dim, dim))

    def forward(self, x, rope):
        """x: (B, L, D), rope: (cos, sin) of the positions -> (B, L, D)"""
        B, L, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.heads, D // self.heads) \
                      .permute(2, 0, 3, 1, 4)                           # 3 x (B, nh, L, hs)
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True)     # (B, nh, L, hs)
        x = x + self.proj(a.transpose(1, 2).reshape(B, L, D))           # (B, L, D)
        return x + self.mlp(self.norm2(x))


class GPT(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if len(cfg.vocab) < 2:
            raise ValueError("GPTConfig.vocab is empty: build it from the training text "
                             "(minivid.rewrite.build_vocabulary)")
        if cfg.dim % cfg.heads:
            raise ValueError(f"dim={cfg.dim} must be divisible by heads={cfg.heads}")
        self.cfg = cfg
        self.tok_emb = nn.Embedding(len(cfg.vocab), cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        self.initialize_weights()

    def initialize_weights(self):
        # GPT-2 init, as in minivid/text.py: N(0, 0.02), zero biases, residual projections
        # scaled by 1/sqrt(2 * depth) so the residual stream does not grow with depth.
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        for b in self.blocks:
            for m in (b.proj, b.mlp[2]):
                nn.init.normal_(m.weight, std=0.02 / math.sqrt(2 * self.cfg.depth))

    def forward(self, ids):
        """ids: (B, L) long -> logits (B, L, V) for the word after each position."""
        B, L = ids.shape
        if L > self.cfg.max_len:
            raise ValueError(f"{L} tokens > max_len {self.cfg.max_len}")
        x = self.tok_emb(ids)                                            # (B, L, D)
        rope = rope_angles(torch.arange(L, device=ids.device), self.cfg.dim // self.cfg.heads)
        for block in self.blocks:
            x = block(x, rope)
        return self.norm(x) @ self.tok_emb.weight.T                      # (B, L, V) tied

    def flops(self, L: int) -> int:
        """Training FLOPs for one sequence of L tokens (6 per parameter per token + attention,
        as in TextEncoder.flops, plus the tied output layer)."""
        D, n, V = self.cfg.dim, self.cfg.depth, len(self.cfg.vocab)
        return 3 * (2 * L * (12 * D * D * n + D * V) + 4 * n * L * L * D)


if __name__ == "__main__":
    model = GPT(GPTConfig(vocab=["<pad>", "a", "red", "circle"]))
    ids = torch.randint(0, 4, (2, 10))                                   # (B, L)
    print("ids", tuple(ids.shape), "-> logits", tuple(model(ids).shape),
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params")
