"""The videos `python -m minivid.evaluate extend` makes, timed and scored (minivid/extend_bench.py
is the command and its report).

    run_strategy   one strategy's one-prompt videos (full / window / pack, prompt-only, or the
                   history-only diagnostic), every clip timed and sized, the videos scored
    prompt_only    the baseline with no memory: every clip drawn on its own from the prompt
    ceiling        what the metric gives the TRUTH: the real videos, rendered and through the VAE
    exposure_bias  the next clip from the real first k clips vs from the model's own

How each video is scored is minivid/video_identity.py; the scenes are minivid/extend_sets.py.
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_07_extend.py tests/test_07e_extend_scripts.py -q -m "slow or not slow"`
"""
import numpy as np

from minivid import bench, checker
from minivid.extend_sets import real_videos
from minivid.latents import decode_latents, encode_uint8
from minivid.long_clips import CLIP, clip_start
from minivid.video_identity import identity, score_one_prompt
from minivid.world import FRAME_MS, Scene


def prompt_only(pipe, prompts, clips, steps, cfg, seed, batch_size=64, on_clip=None,
                sampler="euler", shift=1.0):
    """The baseline with no memory: clip m drawn on its own from the same prompt (noise seed
    + 1000 m), its first 17 (clip 0) or 16 frames laid end to end. Each clip is a whole first
    clip (5 latent frames, 80 tokens); on_clip times its sampling only, as for the others.
    sampler, shift: the ODE step and time grid, as for the others."""
    parts = []
    for m in range(clips):
        timed = None if on_clip is None else (lambda _, s, ctx, m=m: on_clip(m, s, ctx))
        video = pipe.extend(prompts, 1, "full", steps, cfg, seed + 1000 * m,
                            batch_size=batch_size, on_clip=timed, sampler=sampler, shift=shift)
        parts.append(video if m == 0 else video[:, :CLIP])
    return np.concatenate(parts, axis=1)


def run_strategy(pipe, prompts, clips, strategy, steps, cfg, seed, window, device, guide=None):
    """Make the one-prompt videos, timing, sizing and scoring every clip -> (uint8 videos,
    {"per_clip": rows, "video_seconds_per_second", "boundary_jump_px", ...}).
    guide: the sampling dials for the extension (Pipeline.extend's history_guidance,
    guidance_noise, guide_on, sampler, shift, who_only, later_cfg; prompt-only, which has no
    history, takes only the sampler and the shift; history-only sets later_cfg to 0)."""
    rows, peak, n = [], bench.Peak(device), len(prompts)
    patch = pipe.model["dit"].cfg.patch

    def on_clip(m, seconds, ctx):
        rows.append({"clip": m + 1, "tokens": 0 if ctx is None else ctx.tokens(patch),
                     "ms": 1e3 * seconds / n, "peak_mb": peak.mb()})
        peak.reset()

    peak.reset()
    t0 = bench.clock()
    if strategy == "prompt-only":
        grid = {k: v for k, v in (guide or {}).items() if k in ("sampler", "shift")}
        videos = prompt_only(pipe, prompts, clips, steps, cfg, seed, on_clip=on_clip, **grid)
    elif strategy == "history-only":   # pack, every later clip with the null caption alone
        videos = pipe.extend(prompts, clips, "pack", steps, cfg, seed, window, on_clip=on_clip,
                             **{**(guide or {}), "later_cfg": 0.0})
    else:
        videos = pipe.extend(prompts, clips, strategy, steps, cfg, seed, window, on_clip=on_clip,
                             **(guide or {}))
    # everything, text and VAE decoding included: seconds of video per second of compute
    speed = video_seconds(len(prompts), clips) / (bench.clock() - t0)
    scores = score_one_prompt(videos, prompts, clips)
    for r, ident, med, adh in zip(rows, scores.pop("identity"), scores.pop("identity_median_size"),
                                  scores.pop("static_adherence")):
        r.update(identity=ident, identity_median_size=med, static_adherence=adh)
    return videos, {"per_clip": rows, "video_seconds_per_second": speed, **scores}


def video_seconds(videos: int, clips: int) -> float:
    """Seconds of video in `videos` videos of `clips` clips (1 + 16 clips frames, FRAME_MS each)."""
    return videos * (1 + CLIP * clips) * FRAME_MS / 1e3


def ceiling(vae, scenes, prompts, clips) -> dict:
    """What the identity metric gives the TRUTH on these scenes: their real videos, `clips`
    clips long, scored exactly like the generated ones, as rendered and after a round trip
    through the model's VAE (encode, decode: the best a latent model that copied perfectly
    could show). -> {"real": ..., "real_through_vae": ...}, each identity over clips 2..N
    (median size), its lowest clip, by part, boundary jump and motion."""
    real = real_videos([Scene(s.background, s.objects, 1 + CLIP * clips, s.res) for s in scenes])
    z, _ = encode_uint8(vae, real)                            # (N, C, 1 + 4 clips, h, w)
    through = decode_latents(vae, z.float(), real.shape[1])   # uint8, like the real ones
    out = {}
    for name, videos in (("real", real), ("real_through_vae", through)):
        sc = score_one_prompt(videos, prompts, clips)
        later = sc["identity_median_size"][1:]
        out[name] = {"identity": float(np.mean(later)), "lowest_clip": float(min(later)),
                     **{k: float(np.mean(v[1:])) for k, v in sc["identity_by_part"].items()},
                     "boundary_jump_px": sc["boundary_jump_px"],
                     "within_clip_motion_px": sc["within_clip_motion_px"],
                     "drawn_as_asked": sc["drawn_as_asked"],
                     "identity_as_asked": float(np.mean(sc["identity_by_start"]["as_asked"][1:]))}
    return out


def exposure_bias(pipe, scenes, prompts, own, lengths, steps, cfg, seed, window,
                  guide=None) -> list[dict]:
    """Exposure bias as a number. For each history length k: the next clip (k + 1) made from
    the REAL first k clips (rendered by the world, encoded by the VAE) against the same clip
    of the model's OWN video (`own`, made from its own first k clips, the same prompts and
    noise seeds); identity of that clip with clip 1 of ITS video (median size), and the real
    clip k + 1 as the ceiling of the metric. In training the history is always real: the gap
    between the two is what the model's own errors cost it."""
    rows = []
    for k in lengths:
        real = real_videos([Scene(s.background, s.objects, 1 + CLIP * (k + 1), s.res)
                            for s in scenes])                          # (N, 1 + 16 (k+1), ...)
        made = pipe.extend(prompts, 1, "pack", steps, cfg, seed, window,
                           history=real[:, :1 + CLIP * k], **(guide or {}))
        row = {"history_clips": k}
        for name, videos in (("real_history", made), ("own_history", own), ("real_clip", real)):
            hits = np.zeros(2)
            for v in videos:
                first = checker.detect(v[:clip_start(1)])
                nxt = checker.detect(v[clip_start(k):clip_start(k + 1)])
                hits += identity(first, nxt, "size_median")
            row[name] = float(hits[0] / max(hits[1], 1))
        rows.append(row)
    return rows
