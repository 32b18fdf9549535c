"""01b data: captioned images and clips on disk -> tensors (C, T, H, W) in [-1, 1].

A dataset is described in one of two ways (see minivid/data.py):
  - a manifest: a JSONL file, one JSON object per line,
        {"media": "clips/000012.gif", "caption": "a red square moves right", "sparse": "..."}
    with `media` relative to the manifest's folder; `caption` is required, other keys pass
    through (the tiny data is tiny_data/<split>/{images,clips}.jsonl + images/*.png, clips/*.gif);
  - a folder of media files, each with its caption in a sidecar `<name>.txt`.

An image is a one-frame video (T = 1); a clip gives exactly `frames` frames, sampled from
frame 0 every `stride` frames and padded with its last frame when short. Every frame is
centre-cropped to a square and resized to size x size. Broken media files are skipped with one
warning; broken manifest lines fail early with their line number.

The walkthrough writes its own tiny synthetic media (a moving square) with imageio, so it does
not need the tiny-world generator. Run:
    OMP_NUM_THREADS=1 python -m pytest tests/test_01b_data.py -q
"""
import json
import warnings

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from minivid.data import (CaptionedVideos, collate, load_uint8, save_grid,
                          save_video, to_float, to_uint8)


def moving_square(T=8, H=32, W=32):
    """uint8 (T, H, W, 3): a blue background and a red 8x8 square moving right 2 px a frame.
    Few flat colours, so GIF and PNG store it exactly."""
    v = np.zeros((T, H, W, 3), np.uint8)
    v[..., 2] = 120
    for t in range(T):
        v[t, 12:20, 2 * t:2 * t + 8] = (230, 40, 40)
    return v


def write_manifest(folder, rows):
    """rows: dicts or raw strings (for malformed lines) -> folder/data.jsonl."""
    path = folder / "data.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def write_gif(path, frames):
    iio.imwrite(path, frames, duration=125, loop=0)


def one(tmp_path, name, frames=16, **kw):
    """Item 0 of a one-line manifest for media file `name`, as uint8 (T, H, W, 3)."""
    manifest = write_manifest(tmp_path, [{"media": name, "caption": "x"}])
    ds = CaptionedVideos(manifest, frames=frames, **kw)
    return to_uint8(ds[0]["video"])


# ----------------------------------------------------------------------------- 1. shapes
def test_01_image_is_a_one_frame_video(tmp_path):
    v = moving_square()
    iio.imwrite(tmp_path / "a.png", v[0])
    row = {"media": "a.png", "caption": "a red square", "sparse": "square", "spec": {"k": 1}}
    ds = CaptionedVideos(write_manifest(tmp_path, [row]), frames=16)
    item = ds[0]
    assert item["video"].shape == (3, 1, 32, 32) and item["video"].dtype == torch.float32
    assert item["video"].min() >= -1 and item["video"].max() <= 1
    assert np.array_equal(to_uint8(item["video"]), v[:1])  # PNG is lossless
    assert item["caption"] == "a red square" and item["sparse"] == "square"
    assert item["spec"] == {"k": 1} and item["index"] == 0  # other keys pass through


def test_02_gif_clip_is_exact_and_image_equals_first_frame(tmp_path):
    v = moving_square()
    write_gif(tmp_path / "a.gif", v)
    iio.imwrite(tmp_path / "a.png", v[0])
    clip = one(tmp_path, "a.gif", frames=8)
    assert clip.shape == (8, 32, 32, 3) and np.array_equal(clip, v)
    assert np.array_equal(one(tmp_path, "a.png", frames=8), clip[:1])


def test_03_jpg_and_mp4_are_close(tmp_path):
    v = moving_square()
    iio.imwrite(tmp_path / "a.jpg", v[0], quality=95)
    iio.imwrite(tmp_path / "a.mp4", v, fps=8)  # imageio-ffmpeg, H.264: lossy
    jpg, mp4 = one(tmp_path, "a.jpg"), one(tmp_path, "a.mp4", frames=8)
    assert jpg.shape == (1, 32, 32, 3) and mp4.shape == (8, 32, 32, 3)
    assert np.abs(jpg.astype(int) - v[:1]).mean() < 4
    assert np.abs(mp4.astype(int) - v).mean() < 8


# ----------------------------------------------------------------------------- 2. sampling
def test_04_frames_stride_and_padding(tmp_path):
    v = moving_square(T=8)
    write_gif(tmp_path / "a.gif", v)
    assert np.array_equal(one(tmp_path, "a.gif", frames=3, stride=2), v[[0, 2, 4]])  # from frame 0
    padded = one(tmp_path, "a.gif", frames=6, stride=2)
    assert np.array_equal(padded, v[[0, 2, 4, 6, 6, 6]])  # the last sampled frame repeats
    assert np.array_equal(one(tmp_path, "a.gif", frames=1), v[:1])
    with pytest.raises(ValueError, match=r"has 8 frames.*frames=12 expected.*pad=True"):
        one(tmp_path, "a.gif", frames=12, pad=False)


def test_05_repeated_frames_survive_a_gif(tmp_path):
    # GIF writers merge identical consecutive frames into one longer frame; reading must
    # undo it or a clip with a pause (or a still scene) comes back short.
    v = moving_square(T=8)[[0, 1, 1, 1, 2, 3, 3, 4]]
    save_video(tmp_path / "ours.gif", v)  # records its frame time
    write_gif(tmp_path / "theirs.gif", v)  # plain Pillow GIF: the frame time is guessed
    assert Image.open(tmp_path / "theirs.gif").n_frames == 5
    for name in ("ours.gif", "theirs.gif"):
        assert np.array_equal(one(tmp_path, name, frames=8, pad=False), v)
    still = np.repeat(v[:1], 16, axis=0)
    save_video(tmp_path / "still.gif", still)
    assert np.array_equal(one(tmp_path, "still.gif", frames=16, pad=False), still)


# ----------------------------------------------------------------------------- 3. pixels
def test_06_greyscale_rgba_and_palette_become_rgb(tmp_path):
    grey = np.arange(32 * 32, dtype=np.uint8).reshape(32, 32)
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    g = one(tmp_path, "g.png")
    assert g.shape == (1, 32, 32, 3) and all(np.array_equal(g[0, ..., c], grey) for c in range(3))

    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., :3] = (200, 100, 50)
    rgba[:, :10, 3], rgba[:, 10:20, 3], rgba[:, 20:, 3] = 255, 128, 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    t = one(tmp_path, "t.png")[0].astype(int)
    assert (t[:, :10] == (200, 100, 50)).all()  # opaque: unchanged
    assert (np.abs(t[:, 10:20] - (100, 50, 25)) <= 1).all()  # half: composited on black
    assert (t[:, 20:] == 0).all()  # transparent: black

    pal = Image.fromarray(moving_square()[0]).convert("P", palette=Image.Palette.ADAPTIVE)
    pal.save(tmp_path / "p.png")
    assert np.array_equal(one(tmp_path, "p.png"), moving_square()[:1])


def test_07_resize_and_centre_crop_odd_sizes(tmp_path):
    # 40 wide x 32 high: a 4-px red border left and right, green in the middle 32 columns
    im = np.zeros((32, 40, 3), np.uint8)
    im[:, :4] = im[:, 36:] = (255, 0, 0)
    im[:, 4:36] = (0, 255, 0)
    iio.imwrite(tmp_path / "wide.png", im)
    assert np.array_equal(one(tmp_path, "wide.png", size=32)[0], im[:, 4:36])  # exact crop
    iio.imwrite(tmp_path / "odd.png", np.full((47, 33, 3), 77, np.uint8))
    for size in (32, 15, 7):  # odd input, odd output; flat colour stays flat
        out = one(tmp_path, "odd.png", size=size)
        assert out.shape == (1, size, size, 3) and (out == 77).all()
    big = moving_square(T=1, H=64, W=64)
    iio.imwrite(tmp_path / "big.png", big)
    half = one(tmp_path, "big.png", size=32)[0]
    assert half.shape == (32, 32, 3) and np.array_equal(half[0, 31], big[0, 0, 63])


# ----------------------------------------------------------------------------- 4. folders
def test_08_folder_with_sidecar_captions(tmp_path):
    v = moving_square()
    write_gif(tmp_path / "b.gif", v)
    iio.imwrite(tmp_path / "a.png", v[0])
    (tmp_path / "a.txt").write_text("an image\n")
    (tmp_path / "b.txt").write_text("a clip")
    ds = CaptionedVideos(tmp_path, frames=8)
    assert [ds[i]["caption"] for i in range(2)] == ["an image", "a clip"]  # sorted by name
    assert ds[0]["video"].shape == (3, 1, 32, 32) and ds[1]["video"].shape == (3, 8, 32, 32)

    iio.imwrite(tmp_path / "c.png", v[0])  # no c.txt
    with pytest.raises(ValueError, match=r"c\.png.*no caption file.*c\.txt"):
        CaptionedVideos(tmp_path)
    with pytest.warns(UserWarning, match="c.png"):
        assert len(CaptionedVideos(tmp_path, skip_bad=True)) == 2


# ----------------------------------------------------------------------------- 5. bad input
def test_09_corrupt_file_is_skipped_with_one_warning(tmp_path):
    v = moving_square()
    for name in ("a", "c"):
        write_gif(tmp_path / f"{name}.gif", v)
    (tmp_path / "b.gif").write_bytes(b"this is not a gif" * 10)
    rows = [{"media": f"{n}.gif", "caption": n} for n in "abc"]
    ds = CaptionedVideos(write_manifest(tmp_path, rows), frames=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):  # two epochs: still one warning
            assert [item["caption"] for item in ds] == ["a", "c", "c"]  # b -> the next good one
    assert len(caught) == 1 and "b.gif" in str(caught[0].message)
    assert ds.bad_files == [str(tmp_path / "b.gif")]
    assert ds.report_bad().startswith("skipped 1 unreadable files:") and "b.gif" in ds.report_bad()


def test_10_truncated_gif_is_skipped_by_load_uint8(tmp_path):
    v = moving_square(T=16)
    write_gif(tmp_path / "good.gif", v)
    data = (tmp_path / "good.gif").read_bytes()
    (tmp_path / "cut.gif").write_bytes(data[: len(data) // 2])
    ds = CaptionedVideos(write_manifest(tmp_path, [{"media": "good.gif", "caption": "ok"},
                                                   {"media": "cut.gif", "caption": "cut"}]))
    with pytest.warns(UserWarning, match="cut.gif"):
        u8, items = load_uint8(ds, desc="test")
    assert u8.shape == (1, 16, 32, 32, 3) and np.array_equal(u8[0], v)
    assert [it["caption"] for it in items] == ["ok"] and "video" not in items[0]
    assert ds.report_bad().startswith("skipped 1 unreadable")


@pytest.mark.parametrize("line, why", [
    ({"media": "a.png"}, "caption"),
    ({"media": "a.png", "caption": "  "}, "caption"),
    ({"media": "missing.png", "caption": "x"}, "not found"),
    ('{"media": "a.png", "caption": "x"', "malformed JSON"),
    ({"media": "a.bmp", "caption": "x"}, "unsupported"),
])
def test_11_bad_manifest_lines_name_the_line(tmp_path, line, why):
    iio.imwrite(tmp_path / "a.png", moving_square()[0])
    good = {"media": "a.png", "caption": "fine"}
    path = write_manifest(tmp_path, [good, line, good])
    with pytest.raises(ValueError, match=rf"(?s)data\.jsonl line 2: .*{why}.*skip_bad=True"):
        CaptionedVideos(path)
    with pytest.warns(UserWarning, match="line 2"):
        assert len(CaptionedVideos(path, skip_bad=True)) == 2


def test_12_missing_or_empty_manifest(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.jsonl.*python -m minivid\.world --out"):
        CaptionedVideos(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(ValueError, match="no usable entries"):
        CaptionedVideos(tmp_path / "empty.jsonl")
    with pytest.raises(ValueError, match="frames must be a positive int"):
        CaptionedVideos(tmp_path / "empty.jsonl", frames=0)


# ----------------------------------------------------------------------------- 6. batches
def test_13_collate_and_dataloader(tmp_path):
    v = moving_square()
    write_gif(tmp_path / "a.gif", v)
    iio.imwrite(tmp_path / "b.png", v[0])
    rows = [{"media": "a.gif", "caption": f"clip {i}", "spec": {"i": i}} for i in range(3)]
    ds = CaptionedVideos(write_manifest(tmp_path, rows), frames=4)
    loader = torch.utils.data.DataLoader(ds, batch_size=2, collate_fn=collate)
    batch = next(iter(loader))
    assert batch["video"].shape == (2, 3, 4, 32, 32)  # (B, C, T, H, W)
    assert batch["caption"] == ["clip 0", "clip 1"] and batch["spec"] == [{"i": 0}, {"i": 1}]
    image = CaptionedVideos(write_manifest(tmp_path, [{"media": "b.png", "caption": "i"}]))[0]
    with pytest.raises(ValueError, match=r"different shapes.*T = 1"):
        collate([ds[0], image])


def test_14_load_uint8_and_float_round_trip(tmp_path):
    v = moving_square()
    write_gif(tmp_path / "a.gif", v)
    rows = [{"media": "a.gif", "caption": "x"}] * 3
    ds = CaptionedVideos(write_manifest(tmp_path, rows), frames=8)
    u8, items = load_uint8(ds)
    assert u8.shape == (3, 8, 32, 32, 3) and u8.dtype == np.uint8
    assert [it["index"] for it in items] == [0, 1, 2]
    x = to_float(u8)
    assert x.shape == (3, 3, 8, 32, 32) and x.min() == -1 and x.max() <= 1  # (N, C, T, H, W)
    assert torch.equal(x[0], ds[0]["video"])
    assert np.array_equal(to_uint8(x), u8)
    assert np.array_equal(to_uint8(x * 100)[0], np.where(v > 127, 255, 0))  # clamped
    with pytest.raises(ValueError, match="uint8"):
        to_float(u8.astype(np.float32))


# ----------------------------------------------------------------------------- 7. writing
def test_15_save_video_and_grid(tmp_path):
    v = moving_square()
    save_video(tmp_path / "out" / "a.mp4", v[:, :31, :31])  # odd sides are padded for H.264
    assert iio.imread(tmp_path / "out" / "a.mp4").shape == (8, 32, 32, 3)
    save_video(tmp_path / "a.png", v[:1])
    assert np.array_equal(iio.imread(tmp_path / "a.png"), v[0])
    with pytest.raises(ValueError, match="one frame"):
        save_video(tmp_path / "b.png", v)

    save_grid(tmp_path / "grid.gif", np.stack([v, v[::-1], v]), ["a red square moves right"] * 2
              + ["a long caption that needs to wrap over several lines under its tile"], cols=2)
    with Image.open(tmp_path / "grid.gif") as im:
        assert im.n_frames == 8 and im.width > 2 * 128 and im.height > 2 * 128
