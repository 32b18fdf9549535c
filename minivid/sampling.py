"""Text -> video with a trained DiT: rebuild everything from the checkpoint, sample, decode.

Where it sits: the end of the pipeline. train_dit.py saves a "dit" checkpoint that carries
the text-encoder and DiT configs (vocabulary included), their weights and EMA weights, the
VAE's path and fingerprint and the latent normalisation; this file needs nothing else:

    pipe = Pipeline("runs/dit_video/ckpt.pt")                 # EMA weights, VAE from extra
    videos = pipe.generate(["a red circle moves to the left"], frames=16, steps=30, cfg=2.0)
    # uint8 (N, T, H, W, 3), the same for the same seed

Steps: captions -> TextEncoder -> features; Gaussian noise of the latent shape -> flow.sample
(Euler or Heun, classifier-free guidance against the empty caption) -> latents * scale +
shift -> VAE decode -> crop the frames the causal VAE padded -> uint8.
The latent shape comes from the VAE: 16 frames pad to 17 = 1 + 4 * 4 for a tf = 4 VAE, i.e.
5 latent frames; frames = 1 is a still image (1 latent frame).

Long videos (clip extension): `sample_long` makes one clip after another, each continuing the
latent frames made so far (their packed history, minivid/history.py, in front of the new
clip's noise); the whole latent sequence is decoded in one causal VAE pass at the end:

    clip 0:   text -> 5 latent frames (17 pixel frames), exactly the video model's job
    clip m:   history (1 + 4 m latent frames) -> context -> 4 new latent frames (16 frames)
    decode:   the whole 1 + 4 n latent sequence at once (1 + 16 n frames): no seams
    videos = pipe.extend(["a red circle moves to the left"], clips=8, strategy="pack")

Used by sample.py (CLI), the benchmarks (minivid/*_bench.py) and the trainers' previews.
The model itself (text encoder + DiT, rebuilt from a checkpoint) lives in minivid/t2v.py.
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_04d_train_dit.py -q`
"""
import os
import time

import torch

from minivid import distillation, flow
from minivid.history import (FIRST, GUIDE_NOISE, NEW, SAMPLE_NOISE, check_history_guidance,
                             check_history_noise, clip_prompts, frames_of, noised_context,
                             vaguer_context)
from minivid.latents import decode_latents, encode_uint8
from minivid.long_clips import CLIP
from minivid.t2v import load_model
from minivid.vae import fingerprint, load_vae


def latent_frames(frames: int, tf: int) -> int:
    """Latent frames T' for `frames` pixel frames: pad to 1 + tf * k, then 1 + k."""
    if frames < 1:
        raise ValueError(f"frames = {frames}; ask for at least 1 (1 = a still image)")
    return 1 + -(-(frames - 1) // tf)


@torch.no_grad()
def sample_latents(model, prompts: list[str], shape, steps: int = 30, cfg: float = 2.0,
                   seed: int = 0, sampler="euler", allow_empty: bool = False,
                   batch_size: int = 64, cond_frames=None, times=None, init=None,
                   strength: float = 1.0, weak_frames=None, history_guidance: float = 0.0,
                   shift: float = 1.0):
    """Prompts -> normalised latents (N, C, T, h, w), deterministic for `seed`.

    shape: (C, T, h, w) of one latent. The noise of prompt i is the i-th draw of a CPU
    generator seeded with `seed`, so it never depends on the device, the batch size, or the
    global RNG (a training run can call this for previews without changing its own noise).
    cfg = 1 samples the conditional model alone (half the compute); cfg > 1 extrapolates
    away from the unconditional prediction (https://arxiv.org/abs/2207.12598).
    sampler: a flow step function or its name ("euler", "heun"); times: a custom time grid;
    shift: the time grid's shift (flow.timesteps: > 1 more steps at high noise, < 1 more at
    low noise, where fine detail is finished).
    cond_frames: (N, C, Tc, h, w) clean normalised latent frames the new ones continue, or
    a packed history (minivid/history.Context, clip extension: sample_long); they condition
    both guidance halves, only the caption is dropped.
    init, strength: image-to-image (SDEdit, https://arxiv.org/abs/2108.01073): start from the
    normalised latents `init` (N, C, T, h, w) noised to time `strength` on the straight path,
    (1 - s) * init + s * noise, and integrate from t = s (not 1) down to 0; the layout that
    survives the noise is kept, the caption decides the rest.
    weak_frames, history_guidance: history guidance (sample_long): + w (v(history) -
    v(weak_frames)), the same caption, the history replaced by weak_frames (a noisier one)."""
    if not 0 < strength <= 1:
        raise ValueError(f"strength {strength}: must be in (0, 1] (1 = from pure noise)")
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(len(prompts), *shape, generator=g)            # (N, C, T, h, w)
    if init is not None:
        if tuple(init.shape) != tuple(noise.shape):
            raise ValueError(f"init latents {tuple(init.shape)} do not match {tuple(noise.shape)}"
                             "; encode one clip per prompt, of the frames and size asked for")
        noise = flow.interpolate(init.float(), noise, torch.full((len(noise),), strength))
    if strength != 1:
        if times is not None:
            raise ValueError("give either a custom time grid or a strength < 1, not both")
        times = strength * flow.timesteps(steps, shift)
    out = []
    for i in range(0, len(prompts), batch_size):
        chunk = prompts[i:i + batch_size]
        text, mask = model["text"].encode(chunk, allow_empty=allow_empty)   # (B, L, D), (B, L)
        cond = dict(text=text, text_mask=mask)
        if cond_frames is not None:
            cond["cond"] = cond_frames[i:i + batch_size].to(device)         # (B, C, Tc, h, w)
        uncond = None
        if cfg != 1.0:  # the null caption: "" padded to the same L, one batched forward
            null, null_mask = model["text"].encode([""] * len(chunk), allow_empty=True,
                                                   length=mask.shape[1])
            uncond = dict(text=null, text_mask=null_mask)
        guides = []
        if history_guidance and weak_frames is not None:   # the same caption, a vaguer history
            guides = [(dict(cond=weak_frames[i:i + batch_size].to(device)), history_guidance)]
        x = flow.sample(model["dit"], noise[i:i + batch_size].to(device), cond, uncond, cfg,
                        steps, step=sampler, times=times, shift=shift, guides=guides)
        out.append(x.float().cpu())
    return torch.cat(out)


@torch.no_grad()
def sample_long(model, prompts, clips: int, strategy: str = "pack", steps: int = 32,
                cfg: float = 2.0, seed: int = 0, sampler="euler", window: int = 4,
                latent_hw=(8, 8), batch_size: int = 64, on_clip=None, progress=None,
                history=None, anchor: str = "coarse", history_noise: float = SAMPLE_NOISE,
                piece_noise: bool = False, history_guidance: float = 0.0,
                guidance_noise: float = GUIDE_NOISE, guide_on: str = "history",
                shift: float = 1.0, later_cfg: float | None = None, who_only: bool = False,
                restate=None):
    """Make len(prompts) long videos of `clips` clips -> normalised latents (B, C, 1 + 4 clips,
    h, w). prompts: see history.clip_prompts; strategy, window: what history each clip sees
    (minivid/history.py). on_clip(m, seconds, context) is called after each clip (the
    extension benchmark times and sizes them). The noise of clip m comes from seed + 1000 m,
    so strategies given the same seed start from the same noise.

    history: normalised latents (B, C, 1 + 4 k, h, w) of k clips made elsewhere (e.g. real
    clips, encoded): the video goes on from there, `clips` more clips, numbered k, k + 1, ...
    (their prompts, noise seeds and contexts as if this function had made the first k).
    anchor: where pack puts frame 0, as the model was trained (history.ANCHORS).
    history_noise: the flow time tau every history is noised to before it is packed (the
    model was trained on tau ~ U(0, TRAIN_NOISE) and is told tau; sweep it without retraining:
    higher hides more of the model's own flaws, and more of what the history shows).
    piece_noise: the model was trained with per-piece levels (history.noise_pieces): the
    history is packed first, every piece but the anchor goes to history_noise, the anchor
    stays clean.
    history_guidance: w >= 0 (0: off). Guidance over the history (History-Guided Video
    Diffusion, https://arxiv.org/abs/2502.06764, its "fractional" form): each step also asks
    the model about the SAME history noised further, to guidance_noise (the anchor stays clean
    for a per-piece model), and moves + w (v(history) - v(noisier history)): towards what the
    sharp history says and a vague one does not, i.e. who is in the video and how they look.
    No retraining (a per-piece model was trained on pieces up to its --piece-noise, 0.5);
    1.5x the network rows of plain CFG (measured ~1.7x the time a clip). Measured on 64
    held-out videos, two seeds: no identity gain, smoother boundaries (docs/results.md 7).
    guide_on: what the weaker branch loses (history.GUIDE_TARGETS): "history" (above) or
    "anchor": only the anchor frame noised to guidance_noise, the rest as sampled, so w > 0
    pulls each clip towards how the first frame looked (pack with an anchor only). Held out
    (64 videos, two seeds, with 32 steps): +0.013 identity for 3.3x the time a clip.
    sampler, shift: the ODE step ("euler", "heun") and the time grid's shift (sample_latents).
    later_cfg: the CFG of every clip after the first (None: cfg). 0 keeps only the null-caption
    prediction: the continuation sees the history and no text, so what it keeps of who is in
    the video it read from the history alone (evaluate extend's history-only strategy).
    who_only: one-prompt videos' later clips get only who is in the video, no motions
    (history.clip_prompts; off by default: it keeps less of who is in the video).
    restate: None, or restate(prompts, first) -> prompts, called once the first clip exists
    (made here, or the given history's), first its latents (B, C, 5, h, w): what it returns
    is the text of every later clip (Pipeline.extend passes a reader of the decoded clip,
    minivid/restate.py: the text then names who the history shows)."""
    if clips < 1:
        raise ValueError(f"clips = {clips}: a video needs at least one clip")
    check_history_noise(history_noise)
    check_history_guidance(history_guidance, guidance_noise, guide_on)
    C = model["dit"].cfg.in_channels
    done = 0
    if history is None:
        z = torch.zeros(len(prompts), C, 0, *latent_hw)                # (B, C, 0, h, w)
    else:
        z = history
        B, c, L = z.shape[:3]
        if (B, c, *z.shape[3:]) != (len(prompts), C, *latent_hw) or L < FIRST or (L - FIRST) % NEW:
            raise ValueError(f"history latents {tuple(z.shape)}: expected ({len(prompts)}, {C}, "
                             f"1 + 4 k, {latent_hw[0]}, {latent_hw[1]}), the latents of k whole "
                             "clips (1 + 16 k frames) made by this model's VAE")
        done = 1 + (L - FIRST) // NEW
    texts = clip_prompts(prompts, done + clips, who_only)
    for m in range(done, done + clips):
        if restate is not None and m == max(done, 1):      # clip 1 exists now: read it
            texts = clip_prompts(restate(prompts, z[:, :, :FIRST]), done + clips, who_only)
        g = torch.Generator().manual_seed(seed + 1000 * m + 1)
        hist_noise = torch.randn(z.shape, generator=g)
        ctx = noised_context(z, hist_noise, history_noise, strategy,
                             window, anchor, piece_noise) if m else None  # a little noised
        weak = vaguer_context(z, hist_noise, history_noise, guidance_noise, guide_on, strategy,
                              window, anchor, piece_noise) if m and history_guidance else None
        T = FIRST if m == 0 else NEW
        t0 = time.perf_counter()
        scale = cfg if m == 0 or later_cfg is None else later_cfg
        new = sample_latents(model, [t[m] for t in texts], (C, T, *latent_hw), steps, scale,
                             seed + 1000 * m, sampler, batch_size=batch_size, cond_frames=ctx,
                        weak_frames=weak, history_guidance=history_guidance, shift=shift)
        seconds = time.perf_counter() - t0
        z = torch.cat([z, new], dim=2)                                  # (B, C, L + T, h, w)
        if on_clip is not None:
            on_clip(m, seconds, ctx)
        if progress is not None:
            progress.update()
    return z


class Pipeline:
    """A DiT checkpoint + its VAE, ready to turn prompts into uint8 videos."""

    def __init__(self, ckpt_path, vae_path=None, device="cpu"):
        self.model, self.ckpt = load_model(ckpt_path)
        extra = self.ckpt["extra"]
        # A distilled student (distill.py) samples with its own step, no guidance pass, and
        # only at the step counts it was trained for.
        self.distilled = extra.get("distilled")
        vae_path = vae_path or extra["vae"]
        if not os.path.exists(vae_path):
            raise FileNotFoundError(f"VAE checkpoint {vae_path} (recorded in {ckpt_path}) not "
                                    "found; pass the VAE the DiT was trained with (--vae)")
        self.vae, _ = load_vae(vae_path)
        if fingerprint(self.vae) != extra["vae_fingerprint"]:
            raise ValueError(f"{vae_path} has fingerprint {fingerprint(self.vae)}, but {ckpt_path} "
                             f"was trained on latents of the VAE {extra['vae_fingerprint']}; its "
                             "latents would decode to noise. Pass that VAE with --vae")
        self.device = torch.device(device)
        self.model.to(self.device)
        self.vae.to(self.device)
        self.shift, self.scale = extra["latent_shift"], extra["latent_scale"]

    def generate(self, prompts: list[str], frames: int = 16, steps: int = 30, cfg: float = 2.0,
                 seed: int = 0, sampler: str = "euler", allow_empty: bool = False,
                 batch_size: int = 64, init=None, strength: float = 1.0, shift: float = 1.0):
        """-> uint8 (N, frames, H, W, 3); the same prompts and seed give the same videos.

        init: uint8 (N, frames, H, W, 3) clips to transform (image-to-image), noised to
        `strength`. shift: the time grid's (sample_latents). A distilled student ignores cfg
        and sampler (see __init__) and refuses a shift."""
        C, (h, w) = self.model["dit"].cfg.in_channels, self.ckpt["extra"]["latent_hw"]
        shape = (C, latent_frames(frames, self.vae.cfg.tf), h, w)
        if self.distilled:
            self.check_steps(steps, strength, shift)
            if allow_empty:
                raise ValueError("a distilled student never saw the empty caption (guidance is "
                                 "folded into it); sample unconditionally with the teacher")
            cfg, sampler = 1.0, distillation.student_step
        z_init = None
        if init is not None:
            H, W = h * self.vae.cfg.patch, w * self.vae.cfg.patch
            if tuple(init.shape[1:]) != (frames, H, W, 3):
                raise ValueError(f"init clips {tuple(init.shape)}: expected (N, {frames}, {H}, "
                                 f"{W}, 3), the frames and size this model makes; resize them "
                                 f"(minivid.data.read_frames(path, frames={frames}, size={H}))")
            z, _ = encode_uint8(self.vae, init, batch_size)
            z_init = (z.float() - self.shift) / self.scale             # (N, C, T', h, w)
        z = sample_latents(self.model, list(prompts), shape, steps, cfg, seed, sampler,
                           allow_empty, batch_size, init=z_init, strength=strength, shift=shift)
        return self.decode(z, frames, batch_size)

    def extend(self, prompts, clips: int, strategy: str = "pack", steps: int = 32,
               cfg: float = 2.0, seed: int = 0, window: int = 4, batch_size: int = 64,
               on_clip=None, progress=None, sampler: str = "euler", history=None,
               history_noise: float = SAMPLE_NOISE, history_guidance: float = 0.0,
               guidance_noise: float = GUIDE_NOISE, guide_on: str = "history",
               shift: float = 1.0, later_cfg: float | None = None, who_only: bool = False,
               restate=None):
        """Long videos clip by clip (sample_long) -> uint8 (N, 1 + 16 clips, H, W, 3).
        prompts: one per video, or per video a list with one prompt per clip. The whole
        latent sequence is decoded in one causal pass, so clip boundaries are not seams.
        history: uint8 (N, 1 + 16 k, H, W, 3), k whole clips to go on from (encoded by this
        model's VAE); the result then holds them (as decoded) and the `clips` new ones.
        history_noise, history_guidance, guidance_noise, guide_on, shift, later_cfg, who_only:
        see sample_long.
        restate: a restate.Restater, or None. After the first clip (made, or the history's),
        the reader describes what it shows, and that text is every later clip's prompt
        (one-prompt videos): the text then names who the history shows (minivid/restate.py)."""
        if clips > 1 and not self.model["dit"].cfg.context_kernels:
            raise ValueError("this DiT was not trained to continue clips (no context kernels: "
                             "train_extend.py did not make it). Train one with python "
                             "train_extend.py --init-from <video ckpt>")
        if self.distilled:
            self.check_steps(steps, shift=shift)
            if history_guidance:
                raise ValueError("a distilled student was not distilled with history guidance "
                                 "(it samples in one call a step); use it with guidance 0, or "
                                 "guide the teacher")
            cfg, sampler = 1.0, distillation.student_step
            if later_cfg is not None:
                raise ValueError("a distilled student has guidance folded in (no null-caption "
                                 "branch to keep): pass later_cfg=None, or use the teacher")
        done = 0
        if history is not None:
            h, w = self.ckpt["extra"]["latent_hw"]
            H, W = h * self.vae.cfg.patch, w * self.vae.cfg.patch
            n = history.shape[1] if history.ndim == 5 else 0              # 1 + 16 k frames
            if history.ndim != 5 or history.shape[2:] != (H, W, 3) or n < frames_of(1) \
                    or (n - 1) % CLIP:
                raise ValueError(f"history {tuple(history.shape)}: expected uint8 (N, 1 + {CLIP} k, "
                                 f"{H}, {W}, 3), whole clips of the size this model makes")
            done = (n - 1) // CLIP
            zh, _ = encode_uint8(self.vae, history, batch_size)
            history = (zh.float() - self.shift) / self.scale              # (N, C, 1 + 4 k, h, w)
        def read(prompts, z1):    # the reader sees pixels: decode the first clip for it
            return restate(prompts, self.decode(z1, frames_of(1), batch_size))

        z = sample_long(self.model, prompts, clips, strategy, steps, cfg, seed, sampler, window,
                        tuple(self.ckpt["extra"]["latent_hw"]), batch_size, on_clip, progress,
                        history, self.ckpt["extra"].get("anchor", "coarse"), history_noise,
                        self.ckpt["extra"].get("piece_noise", 0.0) > 0, history_guidance,
                        guidance_noise, guide_on, shift, later_cfg, who_only,
                        read if restate is not None else None)
        return self.decode(z, frames_of(done + clips), batch_size)

    def check_steps(self, steps: int, strength: float = 1.0, shift: float = 1.0) -> None:
        """A student jumps only by the step sizes it learnt: d = 1/n from t = 1 - k/n, for n in
        its step counts. Other step counts are refused; so is a strength that puts the jumps
        off that grid (from t = s in `steps` jumps of s/steps: s/steps must be one of 1/n), and
        any time shift (it bends the even grid)."""
        if shift != 1.0:
            raise ValueError(f"time shift {shift}: a distilled student jumps only along the even "
                             "grid it was distilled on; leave the shift at 1 (--time-shift 1)")
        valid = self.distilled["step_counts"]
        if steps not in valid:
            raise ValueError(f"this student was distilled for {valid} steps, not {steps}; pass "
                             f"--steps {' | '.join(map(str, valid))}")
        n = steps / strength
        if abs(n - round(n)) > 1e-6 or round(n) not in valid:
            ok = sorted((steps / m for m in valid if m >= steps), reverse=True)
            raise ValueError(f"strength {strength} with {steps} step(s): jumps of {strength / steps:.3g}"
                             f" the student never learnt; with --steps {steps} use --strength "
                             f"{' | '.join(f'{s:g}' for s in ok)}")

    def decode(self, z, frames: int, batch_size: int = 64):
        """Normalised latents (N, C, T', h, w) -> uint8 (N, frames, H, W, 3): undo the cache's
        (z - shift) / scale, decode, crop the padding frames (17 decoded -> 16 asked)."""
        return decode_latents(self.vae, z * self.scale + self.shift, frames, batch_size)
