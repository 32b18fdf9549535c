"""A learned captioner: clip pixels -> a dense caption, for footage that comes with no text.

Where it sits: before the data loader, for data without captions (the talk's first lesson:
internet video carries no text that describes it, so production stacks caption their footage
with a vision-language model, "in enough detail that a blind person could reconstruct it").

What it is: a tiny vision-language model, nothing hand-written on its path.
  1. a VIDEO ENCODER: the FD probe's three 3-D convolutions (minivid/fd.py) over the RGB
     frames and their differences, keeping where things are: (B, 3, 16, 32, 32) -> a 4 x 4 x 4
     grid of 64 video tokens (B, 64, D), plus a learned position for each;
  2. a TEXT DECODER: the GPT block of minivid/text.py (pre-LayerNorm, causal self-attention,
     rotary positions) with a cross-attention layer added, through which every word looks at
     the 64 video tokens (the encoder-decoder of "Attention is all you need", the shape of
     image captioners since; https://arxiv.org/abs/1706.03762). It writes the caption word by
     word, told first whether it looks at a still image or a clip.
It trains on footage-like clips with captions freshly phrased each time (minivid/
caption_data.py, train_captioner.py), so it learns to describe, not to fill slots.

Reading a clip: greedy decoding with a key/value cache (each new word attends to the cached
keys of the words before it: one word's work per step, not the whole caption's again).
Confidence is a probability, not a score: the decoder's probability of each word it wrote
(synonyms pooled: "ball" and "circle" are one choice), summarised as the mean and the minimum
log-probability, mapped by a logistic fit (Platt scaling, https://www.cs.colorado.edu/~mozer/
Teaching/syllabi/6622/papers/Platt1999.pdf) onto the fraction of the caption's attributes
that are right, fitted at the end of training on fresh calibration clips (not the bench's).

    python train_captioner.py --out runs/captioner --steps 1500        # trains it (~5 min)
    python -m minivid.caption_folder caption --ckpt runs/captioner/ckpt.pt --data my_clips/ \\
        --out my_clips/captions.jsonl          # a folder -> a manifest (minivid/caption_folder.py)
"""
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from minivid import checkpoint
from minivid.caption_data import BOS, CLIP, EOS, FRAMES, IMAGE, OUTSIDE, PAD, SIZE, SPECIALS
from minivid.captions import COLOUR_WORDS, SHAPE_WORDS, SIZE_WORDS, SPEED_WORDS
from minivid.rope import apply_rope, rope_angles
from minivid.text import Block, gpt2_init


# ----------------------------------------------------------------------------- 1. network
@dataclass
class CaptionerConfig:
    vocab: list[str] = field(default_factory=list)   # caption_data.vocabulary(); saved
    width: int = 16        # encoder channels (the FD probe's): w, 2w, 4w
    dim: int = 128         # D: video tokens and words
    depth: int = 3         # decoder blocks
    heads: int = 4
    max_len: int = 72      # L: <bos> <clip> + caption + <eos>
    enc_depth: int = 0     # transformer layers over the video tokens
    time_tokens: int = 4   # T': video tokens along time (N = 16 T')


PRESETS = {"tiny": CaptionerConfig(width=16, dim=128, depth=3, heads=4),   # 2 CPU cores, 5 min
           "small": CaptionerConfig(width=32, dim=256, depth=6, heads=8)}  # one GPU


class VideoEncoder(nn.Module):
    """(B, 3, 16, 32, 32) in [-1, 1] -> video tokens (B, N = 64, D)."""

    def __init__(self, width: int, dim: int, heads: int, depth: int, time_tokens: int):
        super().__init__()
        w, st = width, FRAMES // 2 // time_tokens
        self.net = nn.Sequential(   # frames, differences, x, y in (8 channels); fd.Probe's convs
            nn.Conv3d(8, w, 3, stride=(1, 2, 2), padding=1), nn.GELU(),      # (B, w, 16, 16, 16)
            nn.Conv3d(w, 2 * w, 3, stride=2, padding=1), nn.GELU(),          # (B, 2w, 8, 8, 8)
            nn.Conv3d(2 * w, 4 * w, 3, stride=(st, 2, 2), padding=1), nn.GELU())  # (B, 4w, T', 4, 4)
        self.proj = nn.Linear(4 * w, dim)
        self.pos = nn.Parameter(torch.zeros(time_tokens * 16, dim))  # where and when each is
        # Optional transformer layers over the 64 tokens (enc_depth), so that a token sees the
        # whole clip; the presets have none: at 1,000 steps they measured no better.
        self.blocks = nn.ModuleList(Block(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        B, C, T, H, W = x.shape
        if (C, T, H, W) != (3, FRAMES, SIZE, SIZE):
            raise ValueError(f"the captioner reads (B, 3, {FRAMES}, {SIZE}, {SIZE}) clips, got "
                             f"{tuple(x.shape)}; read files with captioner.read_clip")
        dx = F.pad(x[:, :, 1:] - x[:, :, :-1], (0, 0, 0, 0, 1, 0))         # (B, 3, T, H, W)
        ys, xs = torch.meshgrid(torch.linspace(-1, 1, H, device=x.device),
                                torch.linspace(-1, 1, W, device=x.device), indexing="ij")
        where = torch.stack([xs, ys]).to(x)[None, :, None].expand(B, 2, T, H, W)
        f = self.net(torch.cat([x, dx, where], 1)).flatten(2).transpose(1, 2)  # (B, 64, 4w)
        f = self.proj(f) + self.pos                                         # (B, N, D)
        for block in self.blocks:          # positions are in self.pos; rope at 0 = identity
            f = block(f, rope_angles(torch.zeros(f.shape[1], device=x.device),
                                     f.shape[2] // block.heads))
        return self.norm(f)


class DecoderBlock(nn.Module):
    """text.Block (causal self-attention + MLP, pre-LayerNorm, rotary positions) with a
    cross-attention layer between the two: the words' queries, the video tokens' keys/values."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2, self.norm3 = nn.LayerNorm(dim), nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.q_x, self.kv_x, self.proj_x = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), \
            nn.Linear(dim, dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(4 * dim, dim))

    def forward(self, x, rope, video, cache=None):
        """x: (B, l, D) words, rope: (cos, sin) of their positions, video: (B, N, D) tokens;
        cache: None (training: the whole caption, causal) or this block's dict of earlier
        keys/values (decoding: the new words attend to all cached ones) -> (B, l, D)"""
        B, l, D = x.shape
        h, hs = self.heads, D // self.heads
        q, k, v = self.qkv(self.norm1(x)).view(B, l, 3, h, hs).permute(2, 0, 3, 1, 4)  # (B, h, l, hs)
        q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        causal = cache is None or "k" not in cache       # a first call sees only its own words
        if cache is not None:
            if "k" in cache:
                if l != 1:
                    raise ValueError("decode one word at a time after the first call")
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v                                    # (B, h, l', hs)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=causal and l > 1)
        x = x + self.proj(a.transpose(1, 2).reshape(B, l, D))              # (B, l, D)
        if cache is not None and "mk" in cache:            # the video's keys: computed once
            mk, mv = cache["mk"], cache["mv"]
        else:
            mk, mv = self.kv_x(video).view(B, -1, 2, h, hs).permute(2, 0, 3, 1, 4)  # (B, h, N, hs)
            if cache is not None:
                cache["mk"], cache["mv"] = mk, mv
        q = self.q_x(self.norm2(x)).view(B, l, h, hs).transpose(1, 2)      # (B, h, l, hs)
        a = F.scaled_dot_product_attention(q, mk, mv)
        x = x + self.proj_x(a.transpose(1, 2).reshape(B, l, D))
        return x + self.mlp(self.norm3(x))


class CaptionerNet(nn.Module):
    """video (B, 3, 16, 32, 32), words (B, L) -> next-word logits (B, L, V)."""

    def __init__(self, cfg: CaptionerConfig):
        super().__init__()
        if cfg.vocab[:len(SPECIALS)] != SPECIALS:
            raise ValueError("CaptionerConfig.vocab must be caption_data.vocabulary()")
        self.cfg = cfg
        self.encoder = VideoEncoder(cfg.width, cfg.dim, cfg.heads, cfg.enc_depth, cfg.time_tokens)
        self.tok_emb = nn.Embedding(len(cfg.vocab), cfg.dim)
        self.blocks = nn.ModuleList(DecoderBlock(cfg.dim, cfg.heads) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        # GPT-2 init for the transformer parts (text.gpt2_init); the convolutions and their
        # projection keep PyTorch's default (Kaiming-uniform): at N(0, 0.02) the projection
        # would shrink the gradient the convolutions learn from (measured: a slower start).
        gpt2_init(self.blocks, [*self.blocks, *self.encoder.blocks])
        gpt2_init(self.encoder.blocks, self.encoder.blocks)
        nn.init.normal_(self.tok_emb.weight, std=0.02)
        for b in self.blocks:                    # the cross-attention writes to the stream too
            nn.init.normal_(b.proj_x.weight, std=0.02 / math.sqrt(2 * cfg.depth))

    def words(self, ids, video, start: int = 0, caches=None):
        """ids: (B, l) words at positions start.., video: (B, N, D) -> logits (B, l, V)."""
        B, l = ids.shape
        if start + l > self.cfg.max_len:
            raise ValueError(f"{start + l} words > max_len {self.cfg.max_len}")
        rope = rope_angles(torch.arange(start, start + l, device=ids.device),
                           self.cfg.dim // self.cfg.heads)
        x = self.tok_emb(ids)                                                # (B, l, D)
        for i, block in enumerate(self.blocks):
            x = block(x, rope, video, None if caches is None else caches[i])
        return self.norm(x) @ self.tok_emb.weight.T                          # (B, l, V) tied

    def forward(self, video, ids):
        return self.words(ids, self.encoder(video))


def caption_loss(model, video, ids, targets, tokens: int | None = None, world: int = 1):
    """Cross-entropy of every word the decoder predicts (teacher forcing), PAD ignored.

    One process: the mean over the batch's words. Data parallel: this rank's rows, summed and
    divided by the GLOBAL batch's word count `tokens`, times the world size, so the average
    DDP takes of the ranks' gradients is the one-process mean (a per-rank mean would weigh a
    word by how long the captions of its rank happen to be)."""
    logits = model(video, ids)                                               # (B, L, V)
    loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=PAD,
                           reduction="sum")
    return loss * world / (tokens if tokens is not None else (targets != PAD).sum())


def to_video(u8) -> torch.Tensor:
    """uint8 (B, T, H, W, 3) -> float (B, 3, T, H, W) in [-1, 1]."""
    return torch.as_tensor(np.asarray(u8)).permute(0, 4, 1, 2, 3).float() / 127.5 - 1


# ----------------------------------------------------------------------------- 2. reading
def synonym_groups(vocab: list[str]) -> torch.Tensor:
    """(V,) group id per word: the one-word phrasings of one attribute value ("ball", "disc",
    "circle") share one, so their probabilities pool; every other word is its own group."""
    group = list(range(len(vocab)))
    index = {w: i for i, w in enumerate(vocab)}
    for table in (SIZE_WORDS, SHAPE_WORDS, SPEED_WORDS, COLOUR_WORDS):
        for words in table.values():
            ids = [index[w] for w in words if w in index]
            for i in ids:
                group[i] = ids[0]
    return torch.tensor(group)


@torch.no_grad()
def describe(model, u8, stills, batch: int = 256):
    """Greedy captions of uint8 clips (N, 16, 32, 32, 3) -> [(caption, (mean, min) log-prob
    of the words written, synonyms pooled, P(outside))]. stills[i]: clip i is a still image.
    P(outside) is the probability of the first word of OUTSIDE ("not") as the caption's first
    word: the captioner's own belief that the clip is no tiny-world scene, even when the
    greedy caption goes on to describe one."""
    model.eval()
    vocab, groups = model.cfg.vocab, synonym_groups(model.cfg.vocab)
    first_of_outside = vocab.index(OUTSIDE.split()[0].lower())
    out = []
    for s in range(0, len(u8), batch):
        video = model.encoder(to_video(u8[s:s + batch]))                    # (B, N, D)
        B = len(video)
        ids = torch.tensor([[BOS, IMAGE if st else CLIP] for st in stills[s:s + batch]])
        caches = [{} for _ in model.blocks]
        logits = model.words(ids, video, 0, caches)[:, -1]                  # (B, V)
        p_out = F.softmax(logits.float(), -1)[:, first_of_outside]            # (B,)
        written, logp = [], []
        done = torch.zeros(B, dtype=torch.bool)
        for pos in range(2, model.cfg.max_len):
            p = F.softmax(logits.float(), -1)                               # (B, V)
            p[:, [PAD, BOS, CLIP, IMAGE]] = 0
            word = p.argmax(-1)                                             # (B,)
            pooled = torch.zeros_like(p).index_add_(1, groups, p)           # (B, V) per group
            logp.append(torch.log(pooled.gather(1, groups[word][:, None])[:, 0]).masked_fill(done, 0))
            written.append(word.masked_fill(done, PAD))
            done |= word == EOS
            if done.all() or pos == model.cfg.max_len - 1:
                break
            logits = model.words(word[:, None], video, pos, caches)[:, -1]
        written, logp = torch.stack(written, 1), torch.stack(logp, 1)       # (B, l)
        for b in range(B):
            n = int((written[b] != PAD).sum())
            text = " ".join(vocab[i] for i in written[b, :n].tolist() if i != EOS)
            out.append((detokenize(text), (float(logp[b, :n].mean()), float(logp[b, :n].min())),
                        float(p_out[b])))
    return out


def detokenize(text: str) -> str:
    """'a red circle . it moves .' -> 'A red circle. It moves.' (the words split_words made)."""
    text = text.replace(" .", ".").replace(" ,", ",").replace(" :", ":").replace(" ;", ";")
    text = text.replace(" - ", "-")
    sentences = [s.strip() for s in text.split(". ")]
    return ". ".join(s[:1].upper() + s[1:] for s in sentences)


def calibrate(features, accuracy, steps: int = 500) -> list[float]:
    """Platt scaling: (a, b, c) with sigmoid(a * mean + b * min + c) ~ accuracy, fitted by
    cross-entropy against the per-caption accuracy (a fraction). features: [(mean, min)]."""
    x = torch.tensor(features, dtype=torch.float64)                          # (M, 2)
    y = torch.tensor(accuracy, dtype=torch.float64)                          # (M,)
    w = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ w[:2] + w[2], y)
        loss.backward()
        return loss
    opt.step(closure)
    return [float(v) for v in w.detach()]


def confidence(features, platt) -> float:
    a, b, c = platt
    return 1 / (1 + math.exp(-(a * features[0] + b * features[1] + c)))


class Captioner:
    """cap = Captioner.load("runs/captioner/ckpt.pt"); cap(u8_clips, frames) -> [(caption,
    confidence)]; frames[i] = 1 marks a still image (read_clip says which).

    A clip is marked OUTSIDE the world (confidence 0, nothing claimed) when the captioner says
    so, or when its P(outside) exceeds `outside`: a line only 1% of the in-world clips of the
    fresh calibration set cross (train_captioner.py). Token probabilities alone are no
    out-of-distribution detector: on a checkerboard the greedy caption describes a scene at
    the usual confidence, while P(outside) is far above anything an in-world clip gets."""

    def __init__(self, model: CaptionerNet, platt=(1.0, 0.0, 0.0), outside: float = 1.0):
        self.model, self.platt, self.outside = model.eval(), list(platt), outside

    @classmethod
    def load(cls, path):
        ck = checkpoint.load_checkpoint(path, kind="captioner")
        if "vocab" not in ck["config"]:
            raise ValueError(f"{path} is the old attribute-head captioner (palette masks); "
                             "retrain: python train_captioner.py --out runs/captioner")
        model = CaptionerNet(CaptionerConfig(**ck["config"]))
        checkpoint.load_state_strict(model, ck["ema"]["shadow"], f"captioner ({path})")
        return cls(model, ck["extra"].get("platt", (1.0, 0.0, 0.0)),
                   ck["extra"].get("outside", 1.0))

    def __call__(self, u8, frames=None):
        stills = [f == 1 for f in frames] if frames is not None else [False] * len(u8)
        out = []
        for text, feats, p_out in describe(self.model, u8, stills):
            conf = confidence(feats, self.platt)
            if text == OUTSIDE or not text or p_out > self.outside:   # say so, claim nothing
                text, conf = OUTSIDE, 0.0
            out.append((text, conf))
        return out
