"""Clip extension, the training stage: teach the video DiT to continue a history.

Where it sits: after the video DiT. A long video is made clip by clip (minivid/sampling.py,
sample_long; `sample.py --extend`), each new clip conditioned on the latent frames made so far
(minivid/history.py: which of them, packed into which tokens). train_extend.py fine-tunes the
video model for that on the long clips (129 frames, 33 latent frames); this file lays out its
data. Each step draws ONE layout for its whole batch (one shape per batch) from the step's
generator, so 1 process and N, and a resumed run, draw the same:

    history clips hc   0 (a first clip from text alone, so the same model still starts
                       videos) or 1 .. clips - 1
    strategy, window   how the history is packed (pack 70%, window 15%, full 15%)
    the example        long clip i -> history = its first 1 + 4 hc latent frames, noised a
                       little (to tau ~ U(0, 0.1), history.TRAIN_NOISE), packed; x0 = the 4
                       latent frames after them (the first clip's 5 for hc = 0). With
                       per-piece noise (--piece-noise MAX): packed first, then each piece to
                       its own tau ~ U(0, MAX), the anchor (frame 0) exactly clean
    its caption        the next clip's own caption, or (30%) only WHO is in it, the history
                       deciding how they move: what a one-prompt long video gives later clips

The loss then falls on the new clip only (minivid/flow.py: only noisy tokens are decoded).

    python -m minivid.extend --clips 16      # the token table of each strategy, clip by clip
    python train_extend.py --vae runs/vae_t4/ckpt.pt --latents runs/latents \
        --init-from runs/dit_video/ckpt.pt --out runs/extend --minutes 5
    python sample.py --ckpt runs/extend/ckpt.pt --extend 8 --context pack --prompt "..."
    GPU: add --device cuda; torchrun as for the other stages
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_07_extend.py -q`
"""
import argparse
from dataclasses import dataclass

import torch

from minivid.captions import strip_motion
from minivid.history import (FIRST, NEW, PACK, SAMPLE_NOISE, STRATEGIES, TRAIN_NOISE,
                             context_tokens, noised_context)

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


def long_captions(cache: dict, path: str) -> tuple[list[str], int]:
    """A long-clip latent cache -> (its captions by row, clips per long clip). Clip m of long
    clip i has row i * clips + m (clip 0: the caption with start positions, the others their
    own per-clip captions); row n * clips + i * clips + m has the same without motions: who
    is in the clip only, the history decides how they move (history.clip_prompts)."""
    T = cache["latents"].shape[2]
    clips = (T - 1) // NEW
    if (T - 1) % NEW or clips < 2:
        raise ValueError(f"{path}: long clips of {T} latent frames; extension needs 1 + 4 k "
                         "with k >= 2 (make them with python -m minivid.world)")
    bad = [i for i, r in enumerate(cache["clip_captions"]) if len(r) != clips - 1]
    if bad:
        raise ValueError(f"{path}: long clip {bad[0]} has {len(cache['clip_captions'][bad[0]])} "
                         f"per-clip captions, expected {clips - 1} (one per continuation clip); "
                         "make long clips with python -m minivid.world, which writes them")
    rows = [c for first, rest in zip(cache["captions"], cache["clip_captions"])
            for c in [first, *rest]]
    return rows + [strip_motion(c) for c in rows], clips


@dataclass
class StepLayout:
    """One step's layout (draw_layout), the same for the whole global batch; who_only and tau
    are this rank's rows."""
    hc: int                    # history clips: 0 = a first clip
    strategy: str              # how the history is packed (history.STRATEGIES)
    window: int                # frames the window strategy keeps
    who_only: torch.Tensor     # (B,) bool: the who-only caption
    tau: torch.Tensor          # (B,) the flow time the history is noised to; (B, MAX_PIECES)
                               # with per-piece noise: one time per piece (the anchor's unused)
    anchor: str = "coarse"     # where pack puts frame 0 (history.ANCHORS)
    piece_noise: bool = False  # each piece at its own time, the anchor clean (noise_pieces)

    @property
    def frames(self) -> int:
        """Latent frames of the clip to learn."""
        return FIRST if self.hc == 0 else NEW

    @property
    def history_frames(self) -> int:
        """Latent frames of the history before it."""
        return 0 if self.hc == 0 else 1 + NEW * self.hc

    def example(self, z, noise, rows):
        """Long-clip latents z (b, C, T, h, w) of this rank's batch rows `rows`, the history's
        noise (b, C, history_frames, h, w) -> (x0: the clip to learn, its history: noised to
        tau, packed by the strategy, a Context, or None for hc = 0)."""
        history, x0 = split_example(z, self.hc)
        return x0, noised_context(history, noise, self.tau[rows].to(z.device), self.strategy,
                                  self.window, self.anchor, self.piece_noise)

    def caption_rows(self, idx, rows, clips: int, n: int):
        """Caption rows (long_captions) of the clip after the history of long clips idx."""
        return idx * clips + self.hc + n * clips * self.who_only[rows].long()


MAX_PIECES = len(PACK) + 1   # pack's pieces and the anchor: the most a context has


def draw_layout(g, batch: int, clips: int, mine, anchor: str = "coarse",
                piece_noise: float = 0.0) -> StepLayout:
    """The step's layout from its CPU generator g, drawn for the global batch; `mine`: this
    rank's rows (common.rank_rows); anchor: where pack puts frame 0 (history.ANCHORS);
    piece_noise: 0 = one time tau ~ U(0, TRAIN_NOISE) for the whole history, > 0 = one
    tau ~ U(0, piece_noise) per piece, the anchor clean (Diffusion Forcing)."""
    hc, strategy, window = training_layout(g, clips)
    who_only = (torch.rand(batch, generator=g) < P_WHO_ONLY)[mine]
    who_only &= hc > 0
    if piece_noise:
        tau = (piece_noise * torch.rand(batch, MAX_PIECES, generator=g))[mine]
    else:
        tau = (TRAIN_NOISE * torch.rand(batch, generator=g))[mine]
    return StepLayout(hc, strategy, window, who_only, tau, anchor, piece_noise > 0)


def val_batches(x, noise, t, g, cache: dict, clips: int, tokenizer,
                anchor: str = "coarse", piece_noise: bool = False) -> list[dict]:
    """Fixed val batches (FlowLoss's arguments), one per history length (one shape per
    batch): val clip i continues after hc = i % clips clips, its history packed and noised as
    sampling does (SAMPLE_NOISE), with the next clip's caption. x, noise: (n, C, T, h, w)
    long-clip latents and their noise, t (n,), g: the generator drawn on for the history's
    noise (t2v.val_draws)."""
    n, device = len(x), x.device
    hc_of = [i % clips for i in range(n)]
    captions = [([c] + r)[hc] for c, r, hc in zip(cache["captions"], cache["clip_captions"], hc_of)]
    hist_noise = torch.randn(x.shape, generator=g).to(device)
    ids, mask = (v.to(device) for v in tokenizer(captions))
    batches = []
    for hc in range(clips):
        s = torch.tensor([i for i in range(n) if hc_of[i] == hc], dtype=torch.long)
        if len(s) == 0:  # fewer val clips than history lengths
            continue
        history, x0 = split_example(x[s], hc)
        cond = noised_context(history, hist_noise[s][:, :, :history.shape[2]], SAMPLE_NOISE,
                              "pack", anchor=anchor, per_piece=piece_noise)  # as sampling does
        batches.append(dict(x0=x0, noise=noise[s][:, :, :x0.shape[2]], t=t[s], ids=ids[s],
                            mask=mask[s], cond=cond))
    return batches


def main(argv=None):
    p = argparse.ArgumentParser(description="Context tokens per strategy, clip by clip.",
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
