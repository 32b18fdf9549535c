"""What a continuation clip is conditioned on: its history (which past latent frames, packed
into which tokens) and its prompt.

Where it sits: clip extension makes a long video clip by clip (minivid/sampling.py samples it:
sample_long; train_extend.py trains it, on the rows minivid/extend.py lays out). Before each
new clip the latent frames made so far are this file's business: `build_context` picks and
groups them (the context strategy), `Context.prefix` embeds them into the clean tokens the
DiT reads in front of the noisy ones (minivid/dit.py: `cond=`, a `Prefix`), and
`add_context_kernels` gives the DiT the coarse patch embeddings that packing needs;
`clip_prompts` says what text each clip gets.

The strategies (S = tokens per latent frame: (h/p)(w/p) = 16 for the tiny DiT's 8x8 latents
and 2x2 patches; the history before clip m has L = 1 + 4 m latent frames; the new clip itself
adds 4 S = 64 tokens to every strategy):
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
                With anchor="full" (train_extend.py's default since issue 22; ANCHORS):
                frame 0 at full resolution (S tokens) at -19 from clip 2 on, the window
                over frames 1, 2, ...: tokens = S + the above for L - 1 frames without its
                anchor, <= 2.5 S = 40; with the new clip's 64: clip 2 = 101, clip 16 = 104
                (1.03x). (The first full anchor, only once frame 0 left the window, made
                clip 16 cost 1.31x clip 2; the coarse anchor's step is 85 -> 92 tokens.)
Each coarse kernel is its own patch embedding, initialised as "average-pool, then the full
embedding"; its positions are pooled the same way (the mean frame index for the time code and
RoPE, the mean of the 2-D table). The newest history frame sits at frame 0 and the new frames
at 1..4, the numbers the video stage trained on, so a continuation is told "you come after
this frame"; older frames are at negative positions, and pack keeps even those bounded (the
anchor sits just past the kept window, at -19).

    python -m minivid.extend --clips 16      # the token table of each strategy, clip by clip
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_07_extend.py -q`
"""
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from einops import rearrange, reduce

from minivid.captions import strip_motion, strip_positions
from minivid.dit import DiT, Prefix, sincos_2d
from minivid.long_clips import CLIP

STRATEGIES = ("full", "window", "pack")
NEW = 4                 # latent frames a continuation clip adds (16 frames / tf 4)
FIRST = 5               # latent frames of the first clip (1 + 16 frames)
PACK = ((1, 1), (2, 2), (4, 16))   # (kernel, frames) from the newest backwards
KEPT = sum(n for _, n in PACK)     # 19 frames that pack keeps before the anchor
ANCHOR_POS = -float(KEPT)          # where pack puts frame 0 once it is older than those
ANCHOR_KERNEL = 2                  # the anchor frame, repeated to a 2-frame kernel-2 group
# Where frame 0 goes in pack: "coarse" (the layout above: at kernel 2, only once it is older
# than the kept window, i.e. from clip 6 on) or "full" (issue 22: frame 0 at FULL resolution,
# kernel 1, at the fixed position ANCHOR_POS, from clip 2 on, and the kept window walks back
# over frames 1, 2, ...). A model is trained with one and samples with the same: its
# checkpoint says which (extra["anchor"]; older checkpoints: "coarse").
ANCHORS = ("coarse", "full")


def frames_of(clips: int) -> int:
    """Pixel frames of a video of `clips` clips: 1 + 16 clips."""
    return 1 + CLIP * clips


def clip_prompts(prompts, clips: int, who_only: bool = False) -> list[list[str]]:
    """Per video, per clip, the text the model gets. A video's prompt is either
    - one string: clip 0 gets it as written; later clips lose its start positions
      (captions.strip_positions: the history says where things are) and keep the rest, how
      things move included: the form most continuation training steps see (the world's
      per-clip captions; extend.P_WHO_ONLY of them have their motions stripped too).
      who_only=True strips the motions as well (captions.strip_motion), so "moves right"
      never fights an object that has bounced off the right edge; measured on 64 held-out
      videos x 16 clips, three seeds, it keeps LESS of who is in the video (identity 0.792 /
      0.785 / 0.748 against 0.809 / 0.811 / 0.785 with the motion kept: docs/results.md 7),
      so it is opt-in;
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
        out.append([per_clip[0]] + [strip_motion(q) if one and who_only else q for q in later])
    return out


def patchify_coarse(z, p: int, k: int):
    """(B, C, T, H, W) -> (B, T/k * H/(kp) * W/(kp), C * k * kp * kp): one token per k frames
    x kp x kp latent pixels, tokens ordered (t, h, w), features ordered (c, dt, dy, dx).
    k = 1 is minivid.dit.patchify."""
    return rearrange(z, "B C (T k) (h y) (w x) -> B (T h w) (C k y x)", k=k, y=k * p, x=k * p)


@dataclass
class Context:
    """Clean history for clip extension: groups of latent frames, each embedded with its own
    kernel. pieces: list of (z (B, C, Tp, H, W), k, pos (Tp,) float frame positions), Tp a
    multiple of k. The newest history frame sits at position 0; the noisy frames that
    continue it are 1, 2, ... (build_context makes these).
    t: the flow time the history is at (a little noise makes a model robust to the flaws of
    its own past clips, noise_history): (B,) one time for every piece, (B, P) one per piece
    (noise_pieces: Diffusion Forcing's per-piece levels), or None = 0: exactly clean.
    anchored: the first piece is frame 0, kept as the video's anchor (build_context)."""
    pieces: list
    t: torch.Tensor | None = None
    anchored: bool = False

    def piece_times(self):
        """t as (B, P), one time per piece (None = 0: clean; (B,): the same for every piece)."""
        z = self.pieces[0][0]
        B, P = z.shape[0], len(self.pieces)
        t = torch.zeros(B, device=z.device) if self.t is None else self.t
        return t.view(B, 1).expand(B, P) if t.dim() == 1 else t

    def cat(self, other):
        """Concatenate two contexts of the same layout along the batch (guidance halves); if
        their times differ in form ((B,) and (B, P), or None), both go per piece."""
        if self.t is None and other.t is None:
            t = None
        elif self.t is not None and other.t is not None and self.t.dim() == other.t.dim():
            t = torch.cat([self.t, other.t])
        else:
            t = torch.cat([self.piece_times(), other.piece_times()])
        return Context([(torch.cat([a, b]), k, pos)
                        for (a, k, pos), (b, _, _) in zip(self.pieces, other.pieces)], t,
                       self.anchored)

    def __getitem__(self, rows):
        return Context([(z[rows], k, pos) for z, k, pos in self.pieces],
                       None if self.t is None else self.t[rows], self.anchored)

    def to(self, device):
        return Context([(z.to(device), k, pos.to(device)) for z, k, pos in self.pieces],
                       None if self.t is None else self.t.to(device), self.anchored)

    def tokens(self, patch: int) -> int:
        """Tokens this context adds to the DiT's sequence."""
        return sum((z.shape[2] // k) * (z.shape[3] // (k * patch)) * (z.shape[4] // (k * patch))
                   for z, k, _ in self.pieces)

    def prefix(self, dit: DiT, shape) -> Prefix | None:
        """The clean tokens the DiT reads (its `cond=` calls this): each piece through its
        kernel (k = 1: the DiT's own patch embedding, else dit.ctx_embed[k]), plus the 2-D
        table pooled like the kernel; a token's frame is the mean position of its k frames.
        shape: (B, C, T, H, W) of the noisy latents the history goes in front of."""
        if not self.pieces:
            return None
        H, W, p = shape[3], shape[4], dit.cfg.patch
        tokens, frame, times = [], [], []
        for i, (z, k, pos) in enumerate(self.pieces):
            check_piece(dit, z, k, pos, shape)
            embed = dit.x_embed if k == 1 else dit.ctx_embed[str(k)]
            tok = embed(patchify_coarse(z, p, k))                          # (B, Tp/k * Sk, D)
            table = sincos_2d(H // p, W // p, dit.cfg.dim, z.device)       # (H/p * W/p, D)
            space = reduce(table, "(h y w x) D -> (h w) D", "mean", y=k, x=k, w=W // (k * p))
            tokens.append(tok + space.repeat(z.shape[2] // k, 1))          # (B, Tp/k * Sk, D)
            frame.append(pos.to(z.device).view(-1, k).mean(1).repeat_interleave(len(space)))
            if self.t is not None and self.t.dim() == 2:   # per piece: each token its piece's
                times.append(self.t[:, i:i + 1].expand(-1, tok.shape[1]))
        t = torch.cat(times, dim=1) if times else self.t  # (B,), (B, Nc) per token, or None
        return Prefix(torch.cat(tokens, dim=1), torch.cat(frame), t)   # (B, Nc, D), (Nc,)


def check_piece(dit: DiT, z, k: int, pos, shape) -> None:
    """A piece must fit the noisy latents (B, C, T, H, W) and have its kernel in the DiT."""
    B, C, _, H, W = shape
    q = k * dit.cfg.patch
    if (z.shape[:2] != (B, C) or z.shape[3:] != (H, W) or z.shape[2] % k or H % q or W % q
            or pos.shape != (z.shape[2],)):
        raise ValueError(f"context piece {tuple(z.shape)} (kernel {k}) must match x "
                         f"{tuple(shape)} in batch, channels and H, W, with a frame count "
                         f"divisible by {k}, H and W by {q}, one position per frame")
    if k != 1 and str(k) not in dit.ctx_embed:
        raise ValueError(f"context kernel {k}: this DiT has coarse kernels "
                         f"{tuple(int(key) for key in dit.ctx_embed)}; build it with "
                         "DiTConfig(context_kernels=(2, 4)) through minivid.t2v.build_model "
                         "(or history.add_context_kernels), as train_extend.py does")


# ----------------------------------------------------------------------------- the kernels
def add_context_kernels(dit: DiT) -> DiT:
    """Give `dit` the coarse patch embeddings of dit.cfg.context_kernels, in dit.ctx_embed
    (so they live in the DiT's state_dict: dit.ctx_embed.<k>.weight / .bias, the keys
    checkpoints have always had), initialised by init_context_kernels. -> dit"""
    C, p, D = dit.cfg.in_channels, dit.cfg.patch, dit.cfg.dim
    for k in dit.cfg.context_kernels:
        # skip_init: no random init (and no RNG draw): init_context_kernels sets every weight
        dit.ctx_embed[str(k)] = nn.utils.skip_init(nn.Linear, C * k * (k * p) ** 2, D,
                                                   device=dit.x_embed.weight.device)
    init_context_kernels(dit)
    return dit


@torch.no_grad()
def init_context_kernels(dit: DiT) -> None:
    """Each coarse kernel starts as: average-pool its k x kp x kp block down to one p x p
    patch, then apply the full-resolution embedding. As weights: the full kernel copied to
    every (dt, dy, dx) it pools, divided by the k^3 values averaged. So a coarse token starts
    as the full model's token of the blurred frames (FramePack initialises its coarse
    projections from the full one the same way); training refines it."""
    W = dit.x_embed.weight                                 # (D, C p p), features (c, y, x)
    D, C, p = W.shape[0], dit.cfg.in_channels, dit.cfg.patch
    for key, lin in dit.ctx_embed.items():
        k = int(key)
        Wk = W.view(D, C, 1, p, 1, p, 1).expand(D, C, k, p, k, p, k) / k ** 3
        # (D, C, dt, y, ky, x, kx) -> features (c, dt, dy = y k + ky, dx = x k + kx)
        lin.weight.copy_(Wk.reshape(D, C * k * (k * p) ** 2))
        lin.bias.copy_(dit.x_embed.bias)


# ----------------------------------------------------------------------------- strategies
def context_tokens(strategy: str, L: int, S: int = 16, window: int = 4,
                   anchor: str = "coarse") -> int:
    """Tokens of the context for a history of L latent frames: the module docstring's formulas.
    (The test checks each against the Context that build_context really makes.)"""
    if L == 0:
        return 0
    if strategy == "pack" and anchor == "full" and L > 1:    # frame 0 in full + pack of 1..
        return S + context_tokens("pack", L - 1, S, window, "coarse") - \
            (S // ANCHOR_KERNEL ** 2 if L - 1 > KEPT else 0)
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


def build_context(history, strategy: str = "pack", window: int = 4, t=None,
                  anchor: str = "coarse") -> Context | None:
    """History latents (B, C, L, h, w), oldest first -> the Context the DiT sees (None if L = 0).
    Positions: the newest frame is 0, the one before -1, ... (pack: the anchor at -19).
    t: (B,) the flow time of the history if it was noised (noise_history), else None.
    anchor: where pack puts frame 0 (ANCHORS; see there)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown context strategy {strategy!r}; choose one of {STRATEGIES}")
    if anchor not in ANCHORS:
        raise ValueError(f"unknown anchor {anchor!r}; choose one of {ANCHORS}")
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
    first = 0
    if anchor == "full" and L > 1:                      # frame 0, full resolution, fixed place
        first = 1
    pieces, end = [], L                                 # walk back from the newest frame
    for k, n in PACK:
        start = max(end - n, first)
        if start < end:
            pieces.append(_group(history[:, :, start:end], pos[start:end], k))
        end = start
    if first:
        pieces.append((history[:, :, :1], 1, torch.full((1,), ANCHOR_POS)))
    elif end > 0:                                       # frames dropped: keep frame 0 anyway
        anchor = history[:, :, :1].expand(-1, -1, ANCHOR_KERNEL, -1, -1)  # frame 0, twice
        pieces.append((anchor, ANCHOR_KERNEL, torch.full((ANCHOR_KERNEL,), ANCHOR_POS)))
    anchored = bool(first) or end > 0
    return Context(pieces[::-1], t, anchored)           # oldest first, like the frames


# Noise augmentation of the history (as cascaded diffusion models do with their low-res input,
# https://arxiv.org/abs/2106.15282): in training the clean history is moved a little towards
# noise, to a time tau ~ U(0, TRAIN_NOISE) that the model is told (Context.t); in sampling
# every history is given SAMPLE_NOISE. The model then does not lean on pixel-exact history,
# and the small flaws of its OWN past clips, which a real history never has, stop compounding.
TRAIN_NOISE = 0.1
SAMPLE_NOISE = 0.05


def check_history_noise(tau: float) -> None:
    """Refuse a sampling-time history noise that is not a flow time: tau in [0, 1)."""
    if not 0 <= tau < 1:
        raise ValueError(f"history noise {tau}: the history's noise is a flow time in [0, 1) "
                         f"(0: clean; the sampling default is {SAMPLE_NOISE})")


# History guidance (sampling.sample_long): the weaker history is the same one noised to this
# time, the top of the range a per-piece model trains on (train_extend.py --piece-noise 0.5).
GUIDE_NOISE = 0.5
# What the weaker branch of history guidance loses (sampling.sample_long's guide_on):
#   "history"  the whole history noised to the guidance time (the anchor of a per-piece model
#              stays clean): w > 0 pushes towards what a SHARP history says and a vague one
#              does not (History-Guided Video Diffusion's fractional guidance)
#   "anchor"   the history as sampling sees it, only the anchor (frame 0) noised to the
#              guidance time: w > 0 pushes towards what the FIRST frame says, i.e. who is in
#              the video and how they looked, against the newest frames' drift (pack with
#              an anchor only; a context without one gets no guidance)
GUIDE_TARGETS = ("history", "anchor")


def check_history_guidance(w: float, tau: float = GUIDE_NOISE, target: str = "history") -> None:
    """Refuse a history guidance weight below 0, a guidance noise that is not a flow time, or
    an unknown target (GUIDE_TARGETS)."""
    if target not in GUIDE_TARGETS:
        raise ValueError(f"guidance target {target!r}: choose one of {GUIDE_TARGETS} (what the "
                         "weaker branch loses: the whole history's detail, or the anchor)")
    if w < 0:
        raise ValueError(f"history guidance {w}: a weight >= 0 (0: off; try 1 or 2)")
    if not 0 < tau < 1:
        raise ValueError(f"guidance noise {tau}: the noisier history's flow time, in (0, 1) "
                         f"(default {GUIDE_NOISE})")


def vaguer_context(history, noise, tau, guide_tau: float, target: str = "history",
                   strategy: str = "pack", window: int = 4, anchor: str = "coarse",
                   per_piece: bool = False) -> Context | None:
    """The weaker history of history guidance (GUIDE_TARGETS), in the same layout as
    noised_context(history, noise, tau, ...) so both go through one batched forward.
    history, noise (B, C, L, h, w); tau: sampling's history time; guide_tau: the weaker
    branch's. -> a Context, or None (no history, or target "anchor" and no anchor piece)."""
    if target not in GUIDE_TARGETS:
        raise ValueError(f"unknown guidance target {target!r}; choose one of {GUIDE_TARGETS}")
    if target == "history":
        return noised_context(history, noise, guide_tau, strategy, window, anchor, per_piece)
    ctx = noised_context(history, noise, tau, strategy, window, anchor, per_piece)
    if ctx is None or not ctx.anchored:
        return None
    x0 = build_context(history, strategy, window, None, anchor).pieces[0][0]  # clean anchor
    n0 = build_context(noise, strategy, window, None, anchor).pieces[0][0]    # its noise
    t = ctx.piece_times().clone()                                            # (B, P)
    t[:, 0] = guide_tau
    _, k, pos = ctx.pieces[0]
    vague = (1 - guide_tau) * x0 + guide_tau * n0.to(x0.device)
    return Context([(vague, k, pos)] + ctx.pieces[1:], t, True)


def noise_history(history, tau, generator=None, noise=None):
    """(1 - tau) history + tau noise, the straight path of minivid/flow.py; tau (B,). The
    noise is drawn from `generator` unless given (train_extend.py draws it with the step)."""
    if noise is None:
        noise = torch.randn(history.shape, generator=generator, device=history.device)
    tau = tau.view(-1, 1, 1, 1, 1).to(history.dtype)
    return (1 - tau) * history + tau * noise


# Per-piece noise levels (Diffusion Forcing, https://arxiv.org/abs/2407.01392; issue 22). Above,
# one tau moves the whole history. Here the history is packed first, and each piece goes to
# its OWN time: the anchor (frame 0: who is in the video) stays exactly clean, every other
# piece gets tau_i ~ U(0, max) in training, independently, and the model is told each token's
# time (Context.t (B, P) -> Prefix.t (B, Nc)). In sampling the recent pieces get one level you
# choose (sample_long's history_noise) and the anchor stays clean, so the level can be swept
# without retraining, anywhere in the trained range: a noisier recent history is trusted less
# for detail, and the clean anchor is what the detail is read from.
def noise_pieces(ctx: Context, noise_ctx: Context, tau) -> Context:
    """Move each piece of the packed clean history `ctx` to its own flow time: piece i becomes
    (1 - tau_i) z_i + tau_i n_i, n_i its noise packed the same way (noise_ctx: build_context
    of the history's noise, so a frame gets the same noise it would get before packing).
    tau (B, P): one time per piece, or a float: that time for every piece but the anchor,
    which stays at 0 (exactly clean) either way -> a Context with t (B, P); None (no
    history: a first clip) stays None. Only pack has an anchor piece: with "full" and
    "window", frame 0 (if kept) is part of the one noised piece."""
    if ctx is None:
        return None
    B, P = ctx.pieces[0][0].shape[0], len(ctx.pieces)
    if not torch.is_tensor(tau):
        tau = torch.full((B, P), float(tau))
    if tau.dim() != 2 or tau.shape[0] != B or tau.shape[1] < P:
        raise ValueError(f"tau {tuple(tau.shape)}: expected (B, >= P) = ({B}, >= {P}), one "
                         "time per piece of the packed history, or a float")
    tau = tau[:, :P].clone()
    if ctx.anchored:
        tau[:, 0] = 0.0                                  # the anchor: exactly clean
    pieces = []
    for i, ((z, k, pos), (n, _, _)) in enumerate(zip(ctx.pieces, noise_ctx.pieces)):
        ti = tau[:, i].view(-1, 1, 1, 1, 1).to(z.dtype).to(z.device)
        pieces.append(((1 - ti) * z + ti * n.to(z.device), k, pos))
    return Context(pieces, tau.to(ctx.pieces[0][0].device), ctx.anchored)


def noised_context(history, noise, tau, strategy: str = "pack", window: int = 4,
                   anchor: str = "coarse", per_piece: bool = False) -> Context | None:
    """The context a continuation sees, noised as its model was trained: history (B, C, L, h,
    w) and its noise (same shape); tau (B,) one time for the whole history (noise_history,
    then build_context), or with per_piece (noise_pieces) a float or (B, >= P) per piece,
    the anchor clean. None when L = 0 (a first clip). Training, validation and sampling all
    call this, so the three cannot drift apart."""
    if per_piece:
        return noise_pieces(build_context(history, strategy, window, None, anchor),
                            build_context(noise, strategy, window, None, anchor), tau)
    tau = torch.full((history.shape[0],), float(tau)) if not torch.is_tensor(tau) else tau
    tau = tau.to(history.device)
    return build_context(noise_history(history, tau, noise=noise), strategy, window, tau, anchor)
