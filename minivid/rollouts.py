"""Training clip extension on the model's OWN continuations (issue 22, part 4: exposure bias).

Where it sits: inside train_extend.py (--rollouts). In training the history a clip continues
is always REAL (the long clips of the world, encoded by the VAE); in sampling it is the model's
own past clips, with their flaws (rounded corners, smear, fading colour), and a model that
only ever copied perfect history frames copies those flaws forward too. Self-Forcing
(https://arxiv.org/abs/2506.08009) trains on the model's own rollouts to close that gap. The
teaching version here keeps the ordinary flow-matching loss and changes only the history:

    the bank, built ONCE before training (as distill.py builds its teacher bank), from the
    model the stage starts from (its EMA weights), for V long train clips:
        own[i] = long clip i with every continuation clip k = 1 .. clips - 1 replaced by the
                 model's own clip k, sampled from the REAL history before it (clips 0 .. k - 1,
                 packed and noised as sampling does) and clip k's own caption
                 (C, 1 + 4 clips, h, w): clip 0 stays real, like the anchor it holds
    a rollout step (share --rollouts of the steps whose history has >= 2 clips, so at least
    one own clip):
        history = own[i][:, :1 + 4 hc]       every clip after the first is the model's own
        target  = real clip hc of long clip i (what the world did next)

Each own clip is ONE step away from the truth (it continues a real history), so the real
next clip still joins the history's last frame (the boundary stays continuous), while the
history carries the flaws the model makes. The model is asked to produce the real clip from
its own flawed past: to read who is in the video from the clean anchor and correct, not copy.

A control run (the same command without --rollouts, with as many more steps as the bank took
time) separates "more training" from the change: docs/results.md, section 7.

    python train_extend.py ... --rollouts 0.5 --rollout-videos 128     # builds runs/.../rollouts.pt
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_07_extend.py -q`
"""
import os

import torch
from tqdm.auto import tqdm

from minivid.history import FIRST, NEW, SAMPLE_NOISE, noised_context
from minivid.sampling import sample_latents

BANK_FILE = "rollouts.pt"


def clip_frames(k: int) -> slice:
    """Latent frames of clip k of a long clip: clip 0 is 0:5, clip k >= 1 is 1 + 4k : 5 + 4k."""
    return slice(0, FIRST) if k == 0 else slice(1 + NEW * k, 1 + NEW * (k + 1))


@torch.no_grad()
def build_bank(model, X, rows, captions, clips: int, steps: int = 16, cfg: float = 2.0,
               seed: int = 0, anchor: str = "full", piece_noise: bool = False,
               batch_size: int = 64, progress: bool = True) -> torch.Tensor:
    """The model's own one-step continuations of long clips `rows` (the module docstring).

    model: the text encoder + DiT (eval mode, EMA weights); X: (N, C, 1 + 4 clips, h, w)
    normalised long-clip latents; rows: (V,) which long clips; captions: the caption of every
    clip, row i * clips + k (extend.long_captions). Clip k's noise comes from seed + 1000 k,
    as in sample_long. -> own (V, C, 1 + 4 clips, h, w) on the CPU: clip 0 real, clips
    1 .. clips - 1 the model's."""
    device = next(model.parameters()).device
    real = X[rows].float().cpu()                                         # (V, C, T, h, w)
    own = real.clone()
    V, C, _, h, w = real.shape
    bar = tqdm(total=clips - 1, desc=f"own continuations of {V} long clips", disable=not progress)
    for k in range(1, clips):
        history = real[:, :, :1 + NEW * k]                               # real clips 0 .. k-1
        g = torch.Generator().manual_seed(seed + 1000 * k + 1)
        ctx = noised_context(history, torch.randn(history.shape, generator=g), SAMPLE_NOISE,
                             "pack", anchor=anchor, per_piece=piece_noise)
        prompts = [captions[int(i) * clips + k] for i in rows]
        own[:, :, clip_frames(k)] = sample_latents(
            model, prompts, (C, NEW, h, w), steps, cfg, seed + 1000 * k, batch_size=batch_size,
            cond_frames=ctx.to(device)).cpu()
        bar.update()
    bar.close()
    return own


def load_or_build(path: str, meta: dict, build) -> torch.Tensor:
    """The bank at `path` if it was built with the same `meta` (model, rows, steps, seed), else
    build() it and save it atomically beside the checkpoint (a resumed run reuses it)."""
    if os.path.exists(path):
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved.get("meta") == meta:
            return saved["own"]
        print(f"{path}: built for {saved.get('meta')}, this run needs {meta}: building it again")
    own = build()
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    torch.save({"meta": meta, "own": own}, tmp)
    os.replace(tmp, path)
    return own


def with_own_history(z, own, hc: int):
    """Long-clip latents z (B, C, T, h, w) and their bank rows own (B, C, T, h, w) -> z with the
    history's continuation clips 1 .. hc - 1 taken from the bank: split_example then gives
    the model's own history and the REAL clip hc to learn."""
    out = z.clone()
    out[:, :, FIRST:1 + NEW * hc] = own[:, :, FIRST:1 + NEW * hc].to(z.device, z.dtype)
    return out
