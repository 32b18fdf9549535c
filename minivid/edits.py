"""Deterministic video edits: trim, concatenate, crossfade, change speed, caption, write a film.

Where it sits: after generation. A video agent makes clips with the model, then assembles a
film from them with these tools. An edit is not learned: it is a fixed operation, so it must
be exact, and it must say so. Each edit checks its own output (frames, height, width,
duration) and returns an `EditResult`; a bad input or a failed ffmpeg run comes back as
ok=False with an error that says what is wrong and how to fix it. Nothing raises, and
nothing fails silently, so an agent can read the error and try again.

A clip is uint8 (T, H, W, 3) at the tiny world's frame time (FRAME_MS = 120 ms, 25/3 fps).
Edits that ffmpeg does naturally (trim, concat, xfade, speed) run the ffmpeg binary that
imageio-ffmpeg bundles, with raw rgb24 frames in and out: lossless, so a trim returns the
very same pixels. The caption is drawn with PIL.

    python -m minivid.edits --demo /tmp/edits.gif     # two tiny clips through every edit
    OMP_NUM_THREADS=1 python -m pytest tests/test_08a_edits.py -q
"""
import argparse
import json
import numbers
import os
import subprocess
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from minivid.world import FRAME_MS, render, sample_scene

# An exact fraction, not 8.333...: ffmpeg turns times into frame numbers, and a rounded
# rate would drift by a frame on longer clips.
FPS = Fraction(1000, FRAME_MS)  # 25/3
MIN_SPEED, MAX_SPEED = 0.01, 100.0  # 100x slower .. 100x faster


@dataclass
class EditResult:
    """What an edit returns. ok: every check passed. frames: uint8 (T, H, W, 3) or None.
    error: what went wrong and how to fix it. checks: {name: {"expected": e, "got": g}}."""
    ok: bool
    frames: np.ndarray | None
    error: str | None = None
    checks: dict = field(default_factory=dict)

    def as_json(self):
        """A JSON-ready dict for an agent's trace: the frames' shape only, never the pixels."""
        shape = None if self.frames is None else list(self.frames.shape)
        return {"ok": self.ok, "frames": shape, "error": self.error, "checks": self.checks}


# ----------------------------------------------------------------------------- plumbing
class _EditError(Exception):
    """Raised inside this file only; every public edit turns it into EditResult(ok=False)."""


def _fail(edit, problem):
    return EditResult(ok=False, frames=None, error=f"{edit}: {problem}")


def _problem(**clips):
    """Why the named clips are not clips uint8 (T, H, W, 3) of one frame size, or None."""
    for name, x in clips.items():
        if not isinstance(x, np.ndarray):
            return f"{name} must be a numpy array, got {type(x).__name__}; pass np.asarray(...)"
        if x.ndim != 4 or x.shape[-1] != 3:
            return f"{name} must have shape (T, H, W, 3), got {x.shape}; add T or drop alpha"
        if x.dtype != np.uint8:
            return f"{name} must be uint8 (0..255), got {x.dtype}; see minivid.data.to_uint8"
        if min(x.shape[:3]) == 0:
            return f"{name} is empty (shape {x.shape}); an edit needs at least one frame of pixels"
    if len({x.shape[1:3] for x in clips.values()}) > 1:
        sizes = ", ".join(f"{name} is {x.shape[1]}x{x.shape[2]}" for name, x in clips.items())
        return f"the clips must share one frame size ({sizes}); resize them first"
    return None


def _checked(edit, out, T, H, W, duration_s=None, **flags):
    """The self-check every edit ends with: `out` against the expected (T, H, W), plus flags
    that must be True. The duration is read from the file where there is one (write_film),
    else it follows from the frame count; half a frame of slack lets a container's rounded
    duration (mp4 headers keep 10 ms) pass."""
    got = (0, 0, 0) if out is None else out.shape[:3]
    duration_s = got[0] * FRAME_MS / 1000 if duration_s is None else duration_s
    checks = {"frames": (T, got[0]), "height": (H, got[1]), "width": (W, got[2]),
              "duration_s": (T * FRAME_MS / 1000, duration_s),
              **{name: (True, flag) for name, flag in flags.items()}}
    wrong = [f"{k} expected {e}, got {g}" for k, (e, g) in checks.items()
             if (abs(g - e) > FRAME_MS / 2000 if k == "duration_s" else g != e)]
    checks = {k: {"expected": e, "got": g} for k, (e, g) in checks.items()}
    if wrong:
        return EditResult(False, out, f"{edit}: the output failed its checks: {'; '.join(wrong)}",
                          checks)
    return EditResult(True, out, None, checks)


def _ffmpeg(clips, graph):
    """Run the filter graph `graph` on `clips` (a list of uint8 (T, H, W, 3), all H x W) and
    return its output frames uint8 (T', H, W, 3). Input i is named [i:v] in the graph.

    ffmpeg has one stdin, and concat and xfade need several inputs, so every clip goes in as
    a raw rgb24 file in a temporary folder (its bytes are its pixels); the output comes back
    raw on stdout. Raises _EditError with the end of ffmpeg's stderr if it fails."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise _EditError("the ffmpeg binary is missing: pip install imageio-ffmpeg") from None
    H, W = clips[0].shape[1:3]
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error"]
    with tempfile.TemporaryDirectory() as tmp:
        for i, clip in enumerate(clips):
            path = os.path.join(tmp, f"{i}.rgb")
            np.ascontiguousarray(clip).tofile(path)
            cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}", "-r", str(FPS),
                    "-i", path]
        cmd += ["-filter_complex", graph, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        run = subprocess.run(cmd, capture_output=True)
    if run.returncode != 0:
        tail = " | ".join(run.stderr.decode(errors="replace").strip().splitlines()[-3:])
        raise _EditError(f"ffmpeg failed (exit {run.returncode}) on the graph {graph!r}: {tail}")
    return np.frombuffer(run.stdout, np.uint8).reshape(-1, H, W, 3)  # (T', H, W, 3)


def _edit(edit, clips, graph, T):
    """Run an ffmpeg edit that keeps the frame size and should give T frames."""
    try:
        out = _ffmpeg(clips, graph)
    except _EditError as e:
        return _fail(edit, str(e))
    return _checked(edit, out, T, *clips[0].shape[1:3])


def _is_int(n):
    return isinstance(n, numbers.Integral) and not isinstance(n, bool)


# ----------------------------------------------------------------------------- edits
def trim(frames, start, end):
    """frames[start:end]: frames start .. end-1, with 0 <= start < end <= T."""
    if (problem := _problem(frames=frames)) is not None:
        return _fail("trim", problem)
    T = len(frames)
    if not (_is_int(start) and _is_int(end) and 0 <= start < end <= T):
        return _fail("trim", f"the range [start, end) = [{start!r}, {end!r}) must be whole "
                             f"numbers with 0 <= start < end <= T = {T}")
    # setpts restarts the clock at 0, so the kept frames play from the start of the clip.
    return _edit("trim", [frames], f"trim=start_frame={start}:end_frame={end},setpts=PTS-STARTPTS",
                 end - start)


def concat(clips):
    """The clips one after the other: sum of their frame counts. All must share H x W."""
    if not isinstance(clips, (list, tuple)) or len(clips) == 0:
        return _fail("concat", "clips must be a non-empty list of clips (T, H, W, 3)")
    if (problem := _problem(**{f"clip {i}": clip for i, clip in enumerate(clips)})) is not None:
        return _fail("concat", problem)
    inputs = "".join(f"[{i}:v]" for i in range(len(clips)))
    return _edit("concat", list(clips), f"{inputs}concat=n={len(clips)}:v=1:a=0",
                 sum(len(c) for c in clips))


def crossfade(a, b, n):
    """The last n frames of a fade into the first n of b: len(a) + len(b) - n frames.

    ffmpeg's xfade weights b by k/n on transition frame k = 0 .. n-1, so the output frame
    len(a) - n + k is a[len(a) - n + k] * (1 - k/n) + b[k] * k/n (up to 1 level of rounding):
    the first blended frame is still all a, and the next frame after the fade is b[n]."""
    if (problem := _problem(a=a, b=b)) is not None:
        return _fail("crossfade", problem)
    longest = min(len(a), len(b))
    if not (_is_int(n) and 1 <= n <= longest):
        return _fail("crossfade", f"n = {n!r} frames must be a whole number from 1 to {longest} "
                                  f"(a has {len(a)} frames, b has {len(b)}); for a cut use concat")
    # xfade speaks seconds: the fade starts `offset` into a and lasts `duration`.
    # Multiples of FRAME_MS are exact decimals, so no frame is lost to rounding.
    duration, offset = n * FRAME_MS / 1000, (len(a) - n) * FRAME_MS / 1000
    return _edit("crossfade", [a, b],
                 f"[0:v][1:v]xfade=transition=fade:duration={duration}:offset={offset}",
                 len(a) + len(b) - n)


def speed(frames, factor):
    """Play `factor` times as fast at the same frame rate: factor 2 keeps every second frame,
    0.5 shows each frame twice. Output: N = max(1, floor(T / factor + 1/2)) frames.

    setpts divides every timestamp by factor, then the fps filter resamples to the frame rate
    (each output tick shows the last input frame whose time rounds to that tick). Where the
    last frame falls between ticks, fps gives N or N + 1 frames; trim keeps exactly N."""
    if (problem := _problem(frames=frames)) is not None:
        return _fail("speed", problem)
    if isinstance(factor, bool) or not (isinstance(factor, numbers.Real)
                                        and MIN_SPEED <= factor <= MAX_SPEED):
        return _fail("speed", f"factor = {factor!r} must be a number from {MIN_SPEED} (slower) "
                              f"to {MAX_SPEED} (faster); 1 keeps the speed, 2 is twice as fast")
    N = max(1, int(len(frames) / factor + 0.5))
    # settb first: in the input's own time base one tick is one frame, so PTS/2 would have to
    # round half-frames (ffmpeg then keeps the odd frames); in milliseconds it need not.
    # eof_action=pass lets the last frame through even when its time is short of a tick.
    graph = (f"settb=1/1000,setpts=PTS/{float(factor)},fps={FPS}:eof_action=pass,"
             f"trim=end_frame={N}")
    return _edit("speed", [frames], graph, N)


def caption_overlay(frames, text):
    """`text` in white on a black band over the bottom quarter of every frame; the rest of
    the picture is untouched (the edit checks that). Text wider than the clip is cut off.

    Drawn with PIL's default font, not ffmpeg's drawtext: drawtext needs a font file, and
    the bundled static ffmpeg may not find one on the machine. A 32 x 32 clip gets a band
    of 8 rows and tiny text: we draw on the clip as it is, without scaling it up."""
    if (problem := _problem(frames=frames)) is not None:
        return _fail("caption_overlay", problem)
    if not isinstance(text, str) or not text.strip():
        return _fail("caption_overlay", f"text must be a non-empty string, got {text!r}")
    T, H, W, _ = frames.shape
    band = max(1, H // 4)
    im = Image.new("RGB", (W, band), (0, 0, 0))
    font = ImageFont.load_default(size=max(4, band - 2))
    draw = ImageDraw.Draw(im)
    draw.fontmode = "1"  # no anti-aliasing: at 6 px grey edges blur letters into each other
    left, top, right, bottom = draw.textbbox((0, 0), text.strip(), font=font)
    # centre the text's ink vertically in the band; start it one pixel from the left edge
    draw.text((1 - left, (band - (bottom - top)) // 2 - top), text.strip(), fill=(255, 255, 255),
              font=font)
    out = frames.copy()
    out[:, H - band:] = np.asarray(im)  # (T, band, W, 3) <- (band, W, 3), same for every frame
    same = bool((out[:, :H - band] == frames[:, :H - band]).all())
    return _checked("caption_overlay", out, T, H, W, unchanged_above_band=same)


# ----------------------------------------------------------------------------- films
def write_film(frames, path, scale=4):
    """Write a clip as .mp4 (H.264) or .gif, each pixel made a scale x scale block (a 32 x 32
    clip is too small to watch), then read the file back and check it.

    The writer is minivid's own (minivid.data.save_video). The check decodes the file with
    ffmpeg resampled to the clip's frame rate: GIF writers merge identical consecutive frames
    into one longer frame, and resampling counts it as the frames it stands for. Returns the
    frames read back (an mp4 is lossy; a GIF keeps up to 256 colours exactly)."""
    if (problem := _problem(frames=frames)) is not None:
        return _fail("write_film", problem)
    ext = os.path.splitext(str(path))[1].lower()
    if ext not in (".mp4", ".gif"):
        return _fail("write_film", f"{path}: the film must end in .mp4 or .gif")
    if not (_is_int(scale) and scale >= 1):
        return _fail("write_film", f"scale = {scale!r} must be a whole number >= 1 (4: 32 -> 128)")
    T, H, W = frames.shape[0], frames.shape[1] * scale, frames.shape[2] * scale
    if ext == ".mp4" and (H % 2 or W % 2):
        # H.264 in yuv420p (what every player reads) stores colour at half resolution.
        return _fail("write_film", f"an mp4 needs even sides, got {H}x{W}; use an even scale")
    big = frames.repeat(scale, axis=1).repeat(scale, axis=2)  # (T, H, W, 3), nearest upscaling
    try:
        import imageio_ffmpeg

        from minivid.data import save_video  # here, not on top: it imports torch
        save_video(path, big, fps=float(FPS))
        reader = imageio_ffmpeg.read_frames(str(path), output_params=["-vf", f"fps={FPS}"])
        meta = next(reader)  # the first item is metadata
        back = [np.frombuffer(f, np.uint8) for f in reader]
    except ImportError:
        return _fail("write_film", "the ffmpeg binary is missing: pip install imageio-ffmpeg")
    except (OSError, RuntimeError, ValueError) as e:
        return _fail("write_film", f"{path}: could not write or read back the film: {e}")
    w, h = meta["size"]
    out = np.stack(back).reshape(-1, h, w, 3) if back else None  # (T, H, W, 3)
    return _checked("write_film", out, T, H, W, duration_s=meta["duration"])


# ----------------------------------------------------------------------------- demo
def main(argv=None):
    p = argparse.ArgumentParser(description="Deterministic video edits on tiny-world clips.")
    p.add_argument("--demo", required=True, metavar="OUT", help="film to write (.gif or .mp4)")
    p.add_argument("--scale", type=int, default=4, help="upscale each pixel to scale x scale")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    a, b = (render(sample_scene(rng, frames=16)) for _ in range(2))  # (16, 32, 32, 3) each

    def step(name, res):  # print the trace line; stop at the first failed edit
        print(f"{name:28s}", json.dumps(res.as_json()))
        if not res.ok:
            raise SystemExit(res.error)
        return res.frames

    head = step("trim a to frames 2..13", trim(a, 2, 14))
    slow = step("b at half speed", speed(b, 0.5))
    faded = step("crossfade over 4 frames", crossfade(head, slow, 4))
    fast = step("a at double speed", speed(a, 2))
    film = step("concat", concat([faded, fast]))
    film = step("caption", caption_overlay(film, "the end"))
    step("write the film", write_film(film, args.demo, scale=args.scale))
    print(f"wrote {args.demo}")


if __name__ == "__main__":
    main()
