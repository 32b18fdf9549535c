"""A tiny GPT: the language model behind the prompt rewriter (minivid/rewrite.py).

Where it sits: raw prompt -> words (+ their n-grams) -> ids -> GPT -> next-word logits;
rewrite.py trains it on (prompt -> reading, dense caption) pairs and samples from it.
It is nanoGPT's model (https://github.com/karpathy/nanoGPT) cut to what a few-hundred-word
language needs: token embedding, pre-LayerNorm causal self-attention blocks with rotary
positions (minivid/rope.py), a final LayerNorm, and an output layer that shares the
embedding matrix (weight tying: the same vectors read and write words). The blocks, their
init and their FLOP count are the text encoder's (minivid/text.py) with causal=True: the
two models differ only in what a word may attend to and in the output layer.

Words, not bytes, for the same reason as the text encoder (minivid/text.py): a dense caption
is ~55 words but ~260 bytes; a word-level model learns the world's captions in a couple of
CPU minutes, a byte-level one would first have to learn to spell. But people type words the
model never saw (typos, rarer forms), so each INPUT word also adds the mean of its hashed
character n-gram vectors (`grams`, fastText's subword trick): "reddish" shares "<re", "red"
with "red", and "circlular" most of its n-grams with "circle". The output stays words.

    python -m minivid.gpt        # shapes of one forward pass
"""
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from minivid.rope import rope_angles
from minivid.text import Block, gpt2_init, transformer_flops


@dataclass
class GPTConfig:
    vocab: list[str] = field(default_factory=list)   # the words; saved with the model
    max_len: int = 160     # L: tokens per sequence (prompt + reading + dense caption + markers)
    dim: int = 128         # D
    depth: int = 4
    heads: int = 4
    grams: int = 2048      # buckets of hashed character n-grams added to each input word (0: off)


PRESETS = {
    "tiny": GPTConfig(max_len=160, dim=128, depth=4, heads=4),   # 2 CPU cores, <= 5 minutes
    "small": GPTConfig(max_len=160, dim=256, depth=6, heads=8),  # one GPU
}


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
        # a word's letters: the mean of its hashed character n-gram vectors (row 0: none)
        self.gram_emb = nn.Embedding(cfg.grams, cfg.dim, padding_idx=0) if cfg.grams else None
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads, causal=True)
                                    for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        gpt2_init(self, self.blocks)     # as the text encoder; the tied output needs nothing more

    def forward(self, ids, grams=None):
        """ids: (B, L) long, grams: (B, L, G) long n-gram ids, 0 = none (minivid/rewrite.py
        .ngrams; None: ids only) -> logits (B, L, V) for the word after each position."""
        B, L = ids.shape
        if L > self.cfg.max_len:
            raise ValueError(f"{L} tokens > max_len {self.cfg.max_len}")
        x = self.tok_emb(ids)                                            # (B, L, D)
        if grams is not None and self.gram_emb is not None:
            n = (grams > 0).sum(-1, keepdim=True).clamp(min=1)           # (B, L, 1)
            x = x + self.gram_emb(grams).sum(2) / n                      # (B, L, D)
        rope = rope_angles(torch.arange(L, device=ids.device), self.cfg.dim // self.cfg.heads)
        for block in self.blocks:
            x = block(x, rope)                                           # causal: no mask
        return self.norm(x) @ self.tok_emb.weight.T                      # (B, L, V) tied

    def flops(self, L: int) -> int:
        """Training FLOPs for one sequence of L tokens (6 per parameter per token + attention,
        as in TextEncoder.flops, plus the tied output layer)."""
        return transformer_flops(L, self.cfg.dim, self.cfg.depth, vocab_out=len(self.cfg.vocab))


if __name__ == "__main__":
    model = GPT(GPTConfig(vocab=["<pad>", "a", "red", "circle"]))
    ids = torch.randint(0, 4, (2, 10))                                   # (B, L)
    print("ids", tuple(ids.shape), "-> logits", tuple(model(ids).shape),
          f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params")
