"""Text side of the DiT: a word-level tokenizer and a small transformer text encoder.

Where it sits: caption -> [Tokenizer] -> ids (B, L) -> [TextEncoder] -> features (B, L, D)
-> cross-attention in every DiT block (minivid/dit.py). The encoder is trained jointly with
the DiT from scratch (no download): the tiny world's language is a few hundred words, so a
2-layer encoder learns it quickly, and a frozen web-scale model (T5, CLIP) would be a
download and most of the compute.

Why words, not bytes: a tiny-world caption is ~40 words but ~200 bytes. Attention cost grows
with length and the text encoder runs every training step, so words are ~5x cheaper on CPU.
The price is a vocabulary: `build_vocab(captions, max_size)` builds it from the training
captions (lower-cased, punctuation split off: minivid.vocab.split_words, the parser's and the
rewriter's words too) and it is stored IN `TextConfig.vocab`, so the checkpoint config alone
rebuilds the tokenizer. Any string still tokenizes: words not in the vocabulary (typos,
other languages, emoji) become `<unk>`; Unicode is NFKC-normalised and `\\w` matches letters
of every script, so "Café" and "日本" are words like any other.

Why RoPE for word positions (minivid/rope.py), not a learned table: the hard part of a
two-object caption is BINDING, "a tiny purple ball that starts on the left ...; and a large
white triangle at the top right": the word "left" must carry "purple ball" into the DiT, so
each word has to gather the words of its own clause. With rotary positions "attend to the
words just before me" is one pattern that holds at every position; a learned table must
learn it separately for each absolute position, and a 4.5-minute run does not get there.
Measured on the tiny image stage (4.5 minutes each, batch 64): two-object position accuracy
0.40 with a learned table, 0.91 with RoPE (README, DiT section).

The null caption for classifier-free guidance is simply the encoding of the empty string:
`<bos>` alone (allow_empty=True). The trainer replaces ~10% of captions by "" so the encoder
learns what "no caption" means; no extra parameter is needed, and CFG at sampling time
encodes [""] * B (https://arxiv.org/abs/2207.12598). Every sequence starts with `<bos>`, so
even the null caption has one key to attend to (an all-masked row would give NaN).

Mask convention (here and in dit.py): `mask` is bool (B, L), True where a REAL token is,
False on padding; the same meaning as `attn_mask` in F.scaled_dot_product_attention.

    python -m minivid.text          # tokenizes a few tiny-world captions and prints shapes
"""
import dataclasses
import math
import warnings
from collections import Counter
from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

from minivid.rope import apply_rope, rope_angles
from minivid.vocab import split_words

SPECIALS = ["<pad>", "<unk>", "<bos>"]   # ids 0, 1, 2 in every vocabulary
PAD, UNK, BOS = 0, 1, 2


def build_vocab(captions: list[str], max_size: int = 2000) -> list[str]:
    """The SPECIALS, then the most frequent words of `captions` (ties alphabetical, so the
    vocabulary is deterministic), at most `max_size` entries in all."""
    if max_size <= len(SPECIALS):
        raise ValueError(f"max_size={max_size} leaves no room for words; use at least "
                         f"{len(SPECIALS) + 1}")
    counts = Counter(w for c in captions for w in split_words(c))
    words = sorted(counts, key=lambda w: (-counts[w], w))
    return SPECIALS + words[:max_size - len(SPECIALS)]


class Tokenizer:
    """Words -> ids with a fixed vocabulary; a batch is padded to its longest caption."""

    def __init__(self, vocab: list[str], max_len: int):
        if vocab[:len(SPECIALS)] != SPECIALS or len(set(vocab)) != len(vocab):
            raise ValueError("vocab must start with " + ", ".join(SPECIALS) + " and have no "
                             "duplicates; build it with minivid.text.build_vocab(captions)")
        if max_len < 2:
            raise ValueError(f"max_len={max_len} leaves no room for a word after <bos>")
        self.vocab, self.max_len = list(vocab), max_len
        self.index = {w: i for i, w in enumerate(vocab)}

    def encode(self, text: str, allow_empty: bool = False) -> list[int]:
        """One caption -> [BOS, word ids...], at most max_len ids."""
        if not isinstance(text, str):
            raise TypeError(f"a caption must be a str, got {type(text).__name__}")
        words = split_words(text)
        if not words and not allow_empty:
            raise ValueError("empty prompt: write a caption (e.g. 'a red circle moves left'); "
                             "the null caption for guidance is made with allow_empty=True")
        ids = [BOS] + [self.index.get(w, UNK) for w in words]
        if len(ids) > self.max_len:
            warnings.warn(f"caption has {len(ids)} tokens (with <bos>) but max_len is "
                          f"{self.max_len}; truncated. Shorten it or raise TextConfig.max_len "
                          f"(this needs retraining): {text[:60]!r}...")
            ids = ids[:self.max_len]
        return ids

    def __call__(self, texts: list[str], allow_empty: bool = False, length: int | None = None):
        """A batch of captions -> ids (B, L) long, mask (B, L) bool (True = real token).

        L is the longest caption, or `length` if given (e.g. to pad the null caption to the
        same L as the real ones so both fit in one batched forward for CFG)."""
        if isinstance(texts, str):
            raise TypeError("pass a list of captions, e.g. tokenizer([text])")
        if not texts:
            raise ValueError("no captions given: pass a non-empty list of strings")
        rows = [self.encode(t, allow_empty) for t in texts]
        L = max(len(r) for r in rows) if length is None else length
        if L < max(len(r) for r in rows):
            raise ValueError(f"length={L} is shorter than the longest caption "
                             f"({max(len(r) for r in rows)} tokens)")
        ids = torch.full((len(rows), L), PAD, dtype=torch.long)  # (B, L)
        for i, r in enumerate(rows):
            ids[i, :len(r)] = torch.tensor(r)
        return ids, ids != PAD

    def decode(self, ids: list[int]) -> str:
        return " ".join(self.vocab[i] for i in ids if i not in (PAD, BOS))


@dataclass
class TextConfig:
    vocab: list[str] = field(default_factory=list)  # from build_vocab(); saved with the model
    max_len: int = 64      # tokens per caption including <bos>; longer ones are truncated
    dim: int = 128         # D: feature width handed to the DiT
    depth: int = 2         # transformer layers
    heads: int = 4


# The vocabulary comes from the data: dataclasses.replace(PRESETS["tiny"], vocab=build_vocab(c)).
PRESETS = {
    "tiny": TextConfig(max_len=64, dim=128, depth=2, heads=4),    # 2 CPU cores, minutes
    "small": TextConfig(max_len=128, dim=384, depth=4, heads=6),  # one GPU
    "base": TextConfig(max_len=256, dim=768, depth=8, heads=12),  # multi-GPU recipe
}


class Block(nn.Module):
    """Pre-LayerNorm transformer layer (GPT-2 / ViT style) with rotary positions.

    causal=False (the text encoder): every word sees every real word of its caption, padding
    hidden by a key mask. causal=True (the rewriter's GPT, minivid/gpt.py): word l sees words
    0..l only, so the layer can be trained to predict the next word at every position."""

    def __init__(self, dim: int, heads: int, causal: bool = False):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * dim, dim))

    def forward(self, x, rope, mask=None):
        """x: (B, L, D), rope: (cos, sin) of the word positions, mask: (B, L) bool, True on
        real words (None: no padding; a causal layer takes none) -> (B, L, D)"""
        B, L, D = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(B, L, 3, self.heads, D // self.heads) \
                      .permute(2, 0, 3, 1, 4)                           # 3 x (B, nh, L, hs)
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)              # relative positions
        keys = None if mask is None else mask[:, None, None, :]         # (B, 1, 1, L)
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=keys, is_causal=self.causal)
        x = x + self.proj(a.transpose(1, 2).reshape(B, L, D))           # (B, L, D)
        return x + self.mlp(self.norm2(x))


def gpt2_init(model: nn.Module, blocks: nn.ModuleList) -> None:
    """GPT-2 init, for the text encoder and the GPT (minivid/gpt.py) alike:
    N(0, 0.02) for every matrix and embedding, zero biases; the projections that write into
    the residual stream are scaled by 1/sqrt(2 * depth), so the stream's variance does not
    grow with depth. LayerNorms keep their (1, 0) default."""
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
    for b in blocks:
        for m in (b.proj, b.mlp[2]):
            nn.init.normal_(m.weight, std=0.02 / math.sqrt(2 * len(blocks)))


def transformer_flops(L: int, dim: int, depth: int, vocab_out: int = 0) -> int:
    """Training FLOPs (forward + backward = 3 x forward) of `depth` Blocks on one sequence of
    L tokens: 2 per multiply-add, 12 D^2 weights per layer (qkv 3, proj 1, MLP 8), plus the
    attention scores and mixing (2 L^2 D multiply-adds per layer), plus an output layer of
    `vocab_out` words (the GPT's tied one; 0 for the text encoder). The embedding lookup is
    free; see DiT.flops for the derivation."""
    D, n = dim, depth
    return 3 * (2 * L * (12 * D * D * n + D * vocab_out) + 4 * n * L * L * D)


class TextEncoder(nn.Module):
    """Token ids -> contextual features, trained jointly with the DiT."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        if len(cfg.vocab) <= len(SPECIALS):
            raise ValueError("TextConfig.vocab is empty: build it from the training captions, "
                             "dataclasses.replace(cfg, vocab=minivid.text.build_vocab(captions))")
        if cfg.dim % cfg.heads:
            raise ValueError(f"dim={cfg.dim} must be divisible by heads={cfg.heads}")
        self.cfg = cfg
        self.tokenizer = Tokenizer(cfg.vocab, cfg.max_len)
        self.tok_emb = nn.Embedding(len(cfg.vocab), cfg.dim)
        self.blocks = nn.ModuleList(Block(cfg.dim, cfg.heads) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        gpt2_init(self, self.blocks)

    def forward(self, ids, mask):
        """
        ids:  (B, L) long token ids from self.tokenizer
        mask: (B, L) bool, True for real tokens (each row starts with a True <bos>)
        returns (B, L, D) features, zero at padding (so the output never depends on padding)
        """
        B, L = ids.shape
        assert L <= self.cfg.max_len, f"L={L} > max_len={self.cfg.max_len}"
        x = self.tok_emb(ids)                                            # (B, L, D)
        rope = rope_angles(torch.arange(L, device=ids.device), self.cfg.dim // self.cfg.heads)
        for block in self.blocks:
            x = block(x, rope, mask)
        return self.norm(x) * mask[..., None]                            # (B, L, D)

    def encode(self, captions: list[str], allow_empty: bool = False, length: int | None = None):
        """Captions -> (features (B, L, D), mask (B, L)) on the encoder's device."""
        ids, mask = self.tokenizer(captions, allow_empty, length)
        device = self.tok_emb.weight.device
        mask = mask.to(device)
        return self(ids.to(device), mask), mask

    def flops(self, L: int) -> int:
        """Training FLOPs for one caption of L tokens:
        6 * L * (12 D^2 per layer)  +  12 * depth * L^2 * D (attention scores and mixing)."""
        return transformer_flops(L, self.cfg.dim, self.cfg.depth)


if __name__ == "__main__":
    caps = ["A small red circle moves to the left.", "Un cercle rouge, très petit! 🎈", ""]
    cfg = dataclasses.replace(PRESETS["tiny"], vocab=build_vocab(caps[:1]))
    enc = TextEncoder(cfg)
    ids, mask = enc.tokenizer(caps, allow_empty=True)
    for c, r in zip(caps, ids):
        print(f"{c!r:45} -> {r.tolist()}")
    print("features", tuple(enc(ids, mask).shape), "mask", tuple(mask.shape))
