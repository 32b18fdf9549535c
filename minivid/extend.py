"""Clip extension: a long video made clip by clip, each clip conditioned on its history.

Where it sits: after the video DiT. `train_dit.py --stage extend` fine-tunes it to continue a
history (clean latent frames in front of the noisy ones, the loss on the new frames only);
this file decides WHICH history the model sees (the context strategy) and runs the loop:

    clip 0:   text -> 5 latent frames (17 pixel frames), exactly the video model's job
    clip m:   history (1 + 4 m latent frames) -> context -> 4 new latent frames (16 frames)
    decode:   the whole 1 + 4 n latent sequence in ONE causal VAE pass (1 + 16 n frames), so
              clip boundaries are not decoder seams

The context strategies (S = tokens per latent frame: (h/p)(w/p) = 16 for the tiny DiT's 8x8
latents and 2x2 patches; the history before clip m has L = 1 + 4 m latent frames; the new
clip itself adds 4 S = 64 tokens to every strategy):
    full    every history frame at full resolution (the naive baseline):
                tokens = S L = S (1 + 4 m)               grows with the video, attention ~ L^2
    window  the last k frames only (forgets the rest, e.g. what the first clip looked like):
                tokens = S min(k, L)                      constant, 4 S for k = 4
    pack    FramePack-style (https://github.com/lllyasviel/FramePack), older = coarser:
                the newest frame at full resolution   (kernel 1: S tokens)
                the next 2 frames at kernel 2         (2 frames x 2p x 2p -> S/4 tokens)
                the next 16 frames at kernel 4        (4 frames x 4p x 4p -> S/16 each, S/4)
                older frames dropped, but frame 0 kept as an ANCHOR at kernel 2 (what the
                video looked like at the start: who is in it, their colours)
                tokens = S + S/4 [L >= 2] + (S/16) ceil(min(L - 3, 16) / 4) + S/4 [L > 19]
                       <= S (1 + 1/4 + 1/4 + 1/4) = 1.75 S = 28, for every L
                (A full-resolution anchor, S tokens, made clip 16 cost 1.31x clip 2: 104
                tokens against 85; at kernel 2 the step from clip 2 to the steady state is
                85 -> 92 tokens.)
Each coarse kernel is its own patch embedding, initialised as "average-pool, then the full
embedding" (minivid/dit.py); its positions are pooled the same way (the mean frame index for
the time code and RoPE, the mean of the 2-D table). The newest history frame sits at frame 0
and the new frames at 1..4, the numbers the video stage trained on, so a continuation is
told "you come after this frame"; older frames are at negative positions, and pack keeps
even those bounded (the anchor sits just past the kept window, at -19).

    python -m minivid.extend --clips 16      # the token table of each strategy, clip by clip
    python sample.py --ckpt runs/extend/ckpt.pt --extend 8 --context pack --prompt "..."
    GPU: add --device cuda to sample.py and evaluate; train with train_dit.py --stage extend
    (torchrun as for the other stages: each step's layout is the same on every rank)
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_16_extend.py -q`
"""
import argparse
import math
import time

import torch

from minivid.captions import strip_motion, strip_positions
from minivid.dit import Context
from minivid.long_clips import CLIP

STRATEGIES = ("full", "window", "pack")
NEW = 4                 # latent frames a continuation clip adds (16 frames / tf 4)
FIRST = 5               # latent frames of the first clip (1 + 16 frames)
PACK = ((1, 1), (2, 2), (4, 16))   # (kernel, frames) from the newest backwards
KEPT = sum(n for _, n in PACK)     # 19 frames that pack keeps before the anchor
ANCHOR_POS = -float(KEPT)          # where pack puts frame 0 once it is older than those
ANCHOR_KERNEL = 2                  # the anchor frame, repeated to a 2-frame kernel-2 group


def context_tokens(strategy: str, L: int, S: int = 16, window: int = 4) -> int:
    """Tokens of the context for a history of L latent frames: the module docstring's formulas.
    (The test checks each against the Context that build_context really makes.)"""
    if L == 0:
        return 0
    if strategy == "full":
        return S * L
    if strategy == "window":
        return S * min(window, L)
    if strategy == "pack":
        tokens = S
        if L >= 2:
            tokens += S // 4
        if L >= 4:
            tokens += (S // 16) * math.ceil(min(L - 3, 16) / 4)
        if L > KEPT:
            tokens += S // ANCHOR_KERNEL ** 2
        return tokens
    raise ValueError(f"unknown context strategy {strategy!r}; choose one of {STRATEGIES}")


def _group(z, pos, k):
    """Pad a run of frames at its OLD end (repeat the oldest) to a multiple of k frames."""
    pad = -z.shape[2] % k
    if pad:
        z = torch.cat([z[:, :, :1].expand(-1, -1, pad, -1, -1), z], dim=2)
        pos = torch.cat([pos[:1].expand(pad), pos])
    return z, k, pos


def build_context(history, strategy: str = "pack", window: int = 4, t=None) -> Context | None:
    """History latents (B, C, L, h, w), oldest first -> the Context the DiT sees (None if L = 0).
    Positions: the newest frame is 0, the one before -1, ... (pack: the anchor at -19).
    t: (B,) the flow time of the history if it was noised (noise_history), else None."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown context strategy {strategy!r}; choose one of {STRATEGIES}")
    if window < 1:
        raise ValueError(f"window {window}: keep at least 1 frame")
    L = history.shape[2]
    if L == 0:
        return None
    pos = torch.arange(1 - L, 1, dtype=torch.float32)                   # (L,) ... -1, 0
    if strategy == "full":
        return Context([(history, 1, pos)], t)
    if strategy == "window":
        return Context([(history[:, :, -window:], 1, pos[-window:])], t)
    pieces, end = [], L                                 # walk back from the newest frame
    for k, n in PACK:
        start = max(end - n, 0)
        if start < end:
            pieces.append(_group(history[:, :, start:end], pos[start:end], k))
        end = start
    if end > 0:                                         # frames dropped: keep frame 0 anyway
        anchor = history[:, :, :1].expand(-1, -1, ANCHOR_KERNEL, -1, -1)  # frame 0, twice
        pieces.append((anchor, ANCHOR_KERNEL, torch.full((ANCHOR_KERNEL,), ANCHOR_POS)))
    return Context(pieces[::-1], t)                     # oldest first, like the frames


# Noise augmentation of the history (as cascaded diffusion models do with their low-res input,
# https://arxiv.org/abs/2106.15282): in training the clean history is moved a little towards
# noise, to a time tau ~ U(0, TRAIN_NOISE) that the model is told (Context.t); in sampling
# every history is given SAMPLE_NOISE. The model then does not lean on pixel-exact history,
# and the small flaws of its OWN past clips, which a real history never has, stop compounding.
TRAIN_NOISE = 0.1
SAMPLE_NOISE = 0.05


def noise_history(history, tau, generator=None, noise=None):
    """(1 - tau) history + tau noise, the straight path of minivid/flow.py; tau (B,). The
    noise is drawn from `generator` unless given (train_dit.py draws it with the step)."""
    if noise is None:
        noise = torch.randn(history.shape, generator=generator, device=history.device)
    tau = tau.view(-1, 1, 1, 1, 1).to(history.dtype)
    return (1 - tau) * history + tau * noise


# ----------------------------------------------------------------------------- training
# train_dit.py --stage extend: every step draws ONE layout for its whole batch (one shape per
# batch), from the step's generator, so 1 process and N, and a resumed run, draw the same.
LAYOUTS = {"pack": 0.7, "window": 0.15, "full": 0.15}  # how often each strategy is trained
P_WHO_ONLY = 0.3        # continuation captions reduced to who is in the clip (strip_motion)


def training_layout(g, clips: int, p_first: float = 0.1, max_window: int = 8):
    """-> (history clips hc, strategy, window) for one step. hc = 0 (probability p_first) is
    a first clip from text alone, so the same model still starts videos; otherwise hc is
    uniform in 1 .. clips - 1 (the long clips have `clips` clips)."""
    u = torch.rand(4, generator=g).tolist()
    hc = 0 if u[0] < p_first else 1 + int(u[1] * (clips - 1))
    edges, strategy = 0.0, "pack"
    for name, share in LAYOUTS.items():
        edges += share
        if u[2] < edges:
            strategy = name
            break
    return hc, strategy, 1 + int(u[3] * max_window)


def split_example(z, hc: int):
    """Long-clip latents (B, C, 1 + 4 n, h, w) -> (history (B, C, 1 + 4 hc, h, w) or empty,
    target: the clip after it, (B, C, 5, h, w) for hc = 0 else (B, C, 4, h, w))."""
    if hc == 0:
        return z[:, :, :0], z[:, :, :FIRST]
    L = 1 + NEW * hc
    return z[:, :, :L], z[:, :, L:L + NEW]


# ----------------------------------------------------------------------------- generating
def clip_prompts(prompts, clips: int) -> list[list[str]]:
    """Per video, per clip, the text the model gets. A video's prompt is either
    - one string: clip 0 gets it as written; later clips get only WHO is in it (no start
      positions, no motions: captions.strip_positions, strip_motion), and the history says
      where things are and how they move, so "moves right" never fights an object that has
      bounced off the right edge;
    - a list of `clips` prompts, one per clip: each steers its clip ("turns and moves up");
      later clips lose only their start positions (the history says where things are)."""
    out = []
    for p in prompts:
        one = isinstance(p, str)
        per_clip = [p] * clips if one else list(p)
        if len(per_clip) != clips:
            raise ValueError(f"{len(per_clip)} prompts for a video of {clips} clips: give one "
                             "prompt for the whole video, or exactly one per clip")
        if any(not q.strip() for q in per_clip):
            raise ValueError("an empty prompt: every clip needs a description")
        later = [strip_positions(q) for q in per_clip[1:]]
        out.append([per_clip[0]] + [strip_motion(q) if one else q for q in later])
    return out


@torch.no_grad()
def extend(model, prompts, clips: int, strategy: str = "pack", steps: int = 32,
           cfg: float = 2.0, seed: int = 0, sampler="euler", window: int = 4,
           latent_hw=(8, 8), batch_size: int = 64, on_clip=None, progress=None):
    """Make len(prompts) long videos of `clips` clips -> normalised latents (B, C, 1 + 4 clips,
    h, w). prompts: see clip_prompts. on_clip(m, seconds, context) is called after each clip
    (evaluate extend times and sizes them). The noise of clip m comes from seed + 1000 m, so
    strategies given the same seed start from the same noise."""
    from minivid.sampling import sample_latents  # sampling.py imports this module's users

    if clips < 1:
        raise ValueError(f"clips = {clips}: a video needs at least one clip")
    texts = clip_prompts(prompts, clips)
    C = model["dit"].cfg.in_channels
    z = torch.zeros(len(texts), C, 0, *latent_hw)
    for m in range(clips):
        tau = torch.full((len(texts),), SAMPLE_NOISE)
        g = torch.Generator().manual_seed(seed + 1000 * m + 1)
        ctx = build_context(noise_history(z, tau, g), strategy, window, tau) if m else None
        T = FIRST if m == 0 else NEW
        t0 = time.perf_counter()
        new = sample_latents(model, [t[m] for t in texts], (C, T, *latent_hw), steps, cfg,
                             seed + 1000 * m, sampler, batch_size=batch_size, cond_frames=ctx)
        seconds = time.perf_counter() - t0
        z = torch.cat([z, new], dim=2)
        if on_clip is not None:
            on_clip(m, seconds, ctx)
        if progress is not None:
            progress.update()
    return z


def frames_of(clips: int) -> int:
    """Pixel frames of a video of `clips` clips: 1 + 16 clips."""
    return 1 + CLIP * clips


def main(argv=None):
    p = argparse.ArgumentParser(description="Context tokens per strategy, and one long video.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--clips", type=int, default=16, help="clips in the video")
    p.add_argument("--tokens-per-frame", type=int, default=16, help="S: tokens per latent "
                   "frame (8x8 latents in 2x2 patches: 16)")
    a = p.parse_args(argv)
    print(f"{'clip':>4} {'history L':>9} " + " ".join(f"{s:>7}" for s in STRATEGIES))
    for m in range(1, a.clips):
        L = 1 + NEW * m
        print(f"{m + 1:>4} {L:>9} " + " ".join(f"{context_tokens(s, L, a.tokens_per_frame):>7}"
                                               for s in STRATEGIES))


if __name__ == "__main__":
    main()
