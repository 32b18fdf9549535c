"""08a Edits: deterministic tools that assemble a film from clips, each checking its own output.

Concept: a video agent generates clips, then cuts and joins them with fixed operations:
trim, concatenate, crossfade, change speed, caption, write a film. Unlike the model these
must be exact, so each runs the bundled ffmpeg (imageio-ffmpeg) on lossless raw frames,
checks its output (frames, height, width, duration) against what it promised, and returns an
EditResult: a bad input or a failed ffmpeg run is ok=False with an error that says what is
wrong and how to fix it, never an exception an agent cannot read.

    OMP_NUM_THREADS=1 python -m pytest tests/test_08a_edits.py -q
"""
import json
import sys

import numpy as np
import pytest

from minivid import edits, world


def clip(T, seed=0, H=32, W=32):
    """Random pixels: any mistake in the frame order or the values shows."""
    return np.random.default_rng(seed).integers(0, 256, (T, H, W, 3), dtype=np.uint8)


def flat(T, value):
    return np.full((T, 32, 32, 3), value, dtype=np.uint8)


# 1. A trim is frames[start:end], the very same pixels: rawvideo in and out is lossless.
#    Each result carries its checks, expected against got, and a JSON trace without pixels.
def test_01_trim_exact_pixels():
    x = clip(16)
    res = edits.trim(x, 3, 11)
    assert res.ok and res.error is None
    assert np.array_equal(res.frames, x[3:11])
    assert res.checks["frames"] == {"expected": 8, "got": 8}
    assert res.checks["duration_s"]["got"] == pytest.approx(8 * world.FRAME_MS / 1000)
    trace = json.loads(json.dumps(res.as_json()))
    assert trace["frames"] == [8, 32, 32, 3] and trace["ok"]
    assert edits.trim(clip(5, H=20, W=48), 0, 5).frames.shape == (5, 20, 48, 3)  # any size


# 2. Concatenation gives the clips one after the other: the sum of their frame counts.
def test_02_concat_count():
    parts = [clip(3, 1), clip(5, 2), clip(7, 3)]
    res = edits.concat(parts)
    assert res.ok and len(res.frames) == 15
    assert np.array_equal(res.frames, np.concatenate(parts))


# 3. A crossfade of n frames gives len(a) + len(b) - n frames: a untouched before the fade,
#    b's remaining frames untouched after it, and half of each at the fade's midpoint.
def test_03_crossfade_count_and_blend():
    a, b, n = flat(16, 0), flat(12, 200), 4
    res = edits.crossfade(a, b, n)
    assert res.ok and len(res.frames) == 16 + 12 - n
    assert (res.frames[:12] == 0).all() and (res.frames[16:] == 200).all()
    weights = res.frames[12:16, 0, 0, 0].astype(int)  # xfade weights b by k/n at frame k
    assert np.abs(weights - [0, 50, 100, 150]).max() <= 1
    assert abs(int(res.frames[12 + n // 2].mean()) - 100) <= 1  # the midpoint: between the two
    assert len(edits.crossfade(clip(5), clip(7, 1), 5).frames) == 7  # the whole of a fades


# 4. Speed: factor 2 keeps every second frame, 0.5 shows each frame twice, and any factor
#    gives max(1, floor(T / factor + 1/2)) frames at the same frame rate.
def test_04_speed_counts():
    x = clip(16)
    fast, slow = edits.speed(x, 2), edits.speed(x, 0.5)
    assert fast.ok and np.array_equal(fast.frames, x[::2])
    assert slow.ok and np.array_equal(slow.frames, np.repeat(x, 2, axis=0))
    for T, factor, N in [(16, 3, 5), (16, 1.5, 11), (17, 2, 9), (16, 0.7, 23), (1, 4, 1)]:
        res = edits.speed(clip(T), factor)
        assert res.ok and len(res.frames) == N, (T, factor, res.checks)


# 5. A caption changes the bottom quarter of the picture (the band) and nothing else.
def test_05_caption_changes_only_the_band():
    x = world.render(world.sample_scene(np.random.default_rng(0), frames=8))  # (8, 32, 32, 3)
    res = edits.caption_overlay(x, "a red ball")
    assert res.ok and res.checks["unchanged_above_band"]["got"] is True
    assert np.array_equal(res.frames[:, :24], x[:, :24])
    band = res.frames[:, 24:]
    assert (band == 255).any() and (band == 0).any()  # white text on the black band
    assert all(np.array_equal(band[0], f) for f in band)  # the same on every frame


# 6. Bad inputs never raise: ok=False, no frames, and an error naming the edit, what is wrong
#    and how to fix it. A failed ffmpeg run and a missing ffmpeg come back the same way.
def test_06_bad_inputs_give_readable_errors(monkeypatch):
    x = clip(8)
    cases = [(edits.trim(x.astype(np.float32), 0, 4), "uint8"),
             (edits.trim(x[0], 0, 1), "(T, H, W, 3)"),
             (edits.trim(x[..., :2], 0, 1), "(T, H, W, 3)"),
             (edits.trim(x[:0], 0, 1), "empty"),
             (edits.trim(x, 5, 20), "0 <= start < end <= T = 8"),
             (edits.trim(x, 4, 4), "start < end"),
             (edits.concat([]), "non-empty list"),
             (edits.concat([x, clip(4, H=16)]), "one frame size"),
             (edits.crossfade(x, clip(8, W=16), 2), "one frame size"),
             (edits.crossfade(x, clip(3), 5), "from 1 to 3"),
             (edits.crossfade(x, x, 0), "for a cut use concat"),
             (edits.speed(x, 0), "factor"),
             (edits.speed(x, -2), "factor"),
             (edits.speed(x, float("nan")), "factor"),
             (edits.caption_overlay(x, "  "), "non-empty string"),
             (edits.write_film(x, "film.avi"), ".mp4 or .gif"),
             (edits._edit("bogus", [x], "nosuchfilter", 8), "ffmpeg failed")]
    for res, words in cases:
        assert not res.ok and res.frames is None, res
        assert words in res.error, (words, res.error)
        json.dumps(res.as_json())  # a failure is still a trace line
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if it were not installed
    res = edits.trim(x, 0, 4)
    assert not res.ok and "pip install imageio-ffmpeg" in res.error


# 7. A film round trip: mp4 (H.264) and GIF written scaled up 4x and read back with their
#    frame count, size and duration; a pause (identical frames, which GIF writers merge into
#    one longer frame) still counts as its frames, and the GIF keeps the world's pixels.
def test_07_write_film_round_trip(tmp_path):
    x = world.render(world.sample_scene(np.random.default_rng(1), frames=12))  # (12, 32, 32, 3)
    x[4:8] = x[4]  # a pause
    big = x.repeat(4, axis=1).repeat(4, axis=2)  # (12, 128, 128, 3)
    for ext in ("mp4", "gif"):
        res = edits.write_film(x, tmp_path / f"film.{ext}", scale=4)
        assert res.ok, res.error
        assert res.frames.shape == (12, 128, 128, 3)
        seconds = 12 * world.FRAME_MS / 1000
        assert res.checks["duration_s"]["got"] == pytest.approx(seconds, abs=0.01)
        if ext == "gif":
            assert np.array_equal(res.frames, big)
        else:  # lossy, but close
            assert np.abs(res.frames.astype(int) - big).mean() < 8
