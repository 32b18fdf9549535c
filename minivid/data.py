"""Captioned images and videos on disk -> float tensors (C, T, H, W) in [-1, 1].

Where it sits: between the files (`minivid.world` writes the tiny data, or bring your own)
and every trainer. Two ways to describe a dataset:

  1. A JSONL manifest, one JSON object per line (the tiny data uses this):
         {"media": "clips/000012.gif", "caption": "A red ball moves left.", "sparse": "a red ball"}
     `media` is relative to the manifest's folder (or absolute), `caption` is required,
     `sparse` is optional, and any other key (e.g. `spec`) is passed through to the item.
  2. A folder of media files, each with a sidecar caption `<stem>.txt` beside it:
         my_clips/cat.mp4  my_clips/cat.txt  my_clips/dog.png  my_clips/dog.txt

Readable: png/jpg/jpeg (still images) and gif/mp4/webm (clips). The rules, once:
  - an image is a one-frame video: it always gives T = 1 (ask for `frames=1` to train on
    images); a clip always gives exactly `frames` frames.
  - clips are sampled deterministically from frame 0: frames 0, stride, 2*stride, ...
    A clip that is too short is padded by repeating its last sampled frame (`pad=False`
    raises instead).
  - every frame is centre-cropped to its largest square, then resized to size x size.
  - greyscale and palette pictures become RGB; transparent pixels are composited on black.
  - a corrupt file is skipped with one warning and replaced by the next good item, so an
    epoch never crashes; `dataset.report_bad()` says what was skipped.
  - a bad manifest line (no caption, missing file, malformed JSON) is reported with its line
    number as soon as the dataset is built, not hours into training.

Trainers decode everything once with `load_uint8` (uint8 (N, T, H, W, 3), small in memory)
and convert batches with `to_float`; `save_video` / `save_grid` write previews.

Try it (CPU):
    python -m minivid.world --out tiny_data                       # make the tiny data
    python -c "import minivid.data as d; print(d.CaptionedVideos('tiny_data/val/clips.jsonl')[0]['caption'])"
    OMP_NUM_THREADS=1 python -m pytest tests/test_01b_data.py -q   # the walkthrough
"""
import contextlib
import json
import math
import os
import re
import warnings

import imageio_ffmpeg
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, ImageOps, ImageSequence
from tqdm import tqdm

IMAGE_EXTS = (".png", ".jpg", ".jpeg")  # still images: T = 1
CLIP_EXTS = (".gif", ".mp4", ".webm")  # clips: T = frames
MEDIA_EXTS = IMAGE_EXTS + CLIP_EXTS
TINY_DATA_HINT = "make the tiny data with `python -m minivid.world --out tiny_data`"


# ----------------------------------------------------------------------------- decoding
def _rgb(im):
    """Any PIL mode -> a new RGB image. Transparent pixels are composited on black (rather
    than dropping alpha, which would reveal whatever colour hides under them)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit greyscale: keep the top 8 bits
        im = Image.fromarray((np.asarray(im, dtype=np.uint32) >> 8).clip(0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in im.info:
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", im.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    return im.convert("RGB")  # L, P, 1, CMYK, YCbCr, ...; always a copy, even from RGB


def _gif_frames(path):
    """Every frame of a GIF in display order, as RGB images.

    GIF writers (Pillow included) store a run of identical frames as ONE frame shown k times
    longer, so a 16-frame clip with a pause can come back with 9 frames. We undo that by
    repeating each stored frame (its delay / the frame time) times."""
    with Image.open(path) as im:
        found = re.search(rb"minivid frame_ms=(\d+)", im.info.get("comment", b""))  # on frame 0
        stored = [(_rgb(f), f.info.get("duration", 0)) for f in ImageSequence.Iterator(im)]
    if found:  # written by save_video: delays are exact multiples of the frame time
        unit, bias = int(found.group(1)), 0
    else:  # a guess: the shortest delay is one frame (wrong only if every frame was merged).
        # GIF floors delays to 10 ms, so a stored d meant about d + 5: 16 frames of 125 ms
        # are stored as 2000 against 120 for one, and 2000 / 120 would count 17.
        unit, bias = min((d for _, d in stored if d > 0), default=0), 5
    for frame, ms in stored:
        for _ in range(max(1, round((ms + bias) / (unit + bias))) if unit else 1):
            yield frame


def _ffmpeg_frames(path):
    """Frames of an mp4/webm, decoded by the ffmpeg binary that imageio-ffmpeg bundles."""
    reader = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24")
    try:
        w, h = next(reader)["size"]  # the first item is metadata
        for raw in reader:
            yield Image.frombuffer("RGB", (w, h), raw, "raw", "RGB", 0, 1)
    finally:
        reader.close()  # stops the ffmpeg process when we break out early


def _frames(path):
    """All frames of any supported file, lazily, as RGB PIL images."""
    ext = os.path.splitext(path)[1].lower()
    if ext in IMAGE_EXTS:
        with Image.open(path) as im:
            yield _rgb(ImageOps.exif_transpose(im))  # phone photos store rotation in EXIF
    elif ext == ".gif":
        yield from _gif_frames(path)
    else:
        yield from _ffmpeg_frames(path)


def _square(im, size):
    """Centre-crop the largest square (the shorter side), resize to size x size -> uint8
    (H, W, 3). Equivalent to 'shorter side to size, then centre crop', in one resample.
    Pillow's bilinear filter widens with the scale factor when shrinking, so it averages
    over each output pixel's area (no aliasing). An odd extra pixel is cut on the right/bottom."""
    w, h = im.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    im = im.crop(box) if s == size else im.resize((size, size), Image.Resampling.BILINEAR, box=box)
    return np.asarray(im)


def read_frames(path, frames=16, stride=1, size=32):
    """Decode frames 0, stride, 2*stride, ... (at most `frames` of them) from `path`.
    Returns (list of uint8 (H, W, 3), number of frames seen). Stops decoding once it has
    enough, so a long mp4 costs only what is used. Raises whatever the decoder raises."""
    picked, seen = [], 0
    with contextlib.closing(_frames(path)) as it:
        for i, im in enumerate(it):
            seen = i + 1
            if i % stride == 0:
                picked.append(_square(im, size))
                if len(picked) == frames:
                    break
    if not picked:
        raise OSError("no frames could be decoded")
    return picked, seen


# ----------------------------------------------------------------------------- indexing
def _check(problems, source, skip_bad, hint=""):
    """Raise one clear error for bad manifest lines / folder entries, or warn and go on."""
    if not problems:
        return
    more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
    listing = "\n  ".join(problems[:5]) + more + hint
    if skip_bad:
        warnings.warn(f"skipping {len(problems)} bad entries of {source}:\n  {listing}")
    else:
        raise ValueError(f"{len(problems)} bad entries in {source}:\n  {listing}\n"
                         "Fix them, or pass skip_bad=True to skip them with a warning.")


def _entry_problem(rec, where):
    """Why a record cannot be used (a message with the fix), or None if it is fine."""
    if not isinstance(rec, dict):
        return (f"{where}: expected a JSON object like {{\"media\": ..., \"caption\": ...}}, "
                f"got {type(rec).__name__}")
    if not isinstance(rec.get("media"), str) or not rec["media"]:
        return f"{where}: no 'media' path; add the file path (relative to the manifest's folder)"
    if not isinstance(rec.get("caption"), str) or not rec["caption"].strip():
        return f"{where}: missing or empty 'caption' for {rec['media']}; every item needs one"
    if not rec["media"].lower().endswith(MEDIA_EXTS):
        return f"{where}: unsupported file type {rec['media']}; use one of {', '.join(MEDIA_EXTS)}"
    if not os.path.exists(rec["media"]):
        return f"{where}: media file not found: {rec['media']}; fix the path or remove the line"
    return None


def read_manifest(path, skip_bad=False):
    """JSONL manifest -> list of records {"media": resolved path, "caption", ...}.
    Every line is checked up front (JSON, caption, media type, file exists)."""
    folder = os.path.dirname(os.path.abspath(path))
    records, problems = [], []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue  # blank lines (e.g. a trailing newline) are fine
            where = f"{path} line {n}"
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                problems.append(f"{where}: malformed JSON ({e.msg}, column {e.colno}); each line "
                                'must be one JSON object like {"media": "a.gif", "caption": "..."}')
                continue
            if isinstance(rec, dict) and isinstance(rec.get("media"), str) and rec["media"]:
                rec["media"] = os.path.join(folder, rec["media"])  # an absolute path stays as is
            problem = _entry_problem(rec, where)
            if problem:
                problems.append(problem)
            else:
                records.append(rec)
    _check(problems, path, skip_bad)
    if not records:
        raise ValueError(f"manifest {path} has no usable entries; expected one JSON object per "
                         'line, like {"media": "clips/0.gif", "caption": "..."}; ' + TINY_DATA_HINT)
    return records


def read_folder(folder, skip_bad=False):
    """Folder of media files with sidecar `<stem>.txt` captions -> list of records (sorted by
    path, subfolders included)."""
    paths = sorted(os.path.join(root, name) for root, _, names in os.walk(folder)
                   for name in names if name.lower().endswith(MEDIA_EXTS))
    manifests = [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.endswith("jsonl")]
    hint = f"\n(did you mean a manifest: {', '.join(manifests)}?)" if manifests else ""
    if not paths:
        raise ValueError(f"no media files ({', '.join(MEDIA_EXTS)}) in folder {folder}; put them "
                         f"there with a <name>.txt caption beside each, or pass a manifest{hint}")
    records, problems = [], []
    for p in paths:
        txt = os.path.splitext(p)[0] + ".txt"
        caption = None
        if os.path.exists(txt):
            with open(txt, encoding="utf-8") as f:  # closed at once: a folder may hold 100,000
                caption = f.read().strip()
        if caption:
            records.append({"media": p, "caption": caption})
        else:
            problems.append(f"{p}: {'empty caption file' if caption == '' else 'no caption file'} "
                            f"{txt}; write its caption there")
    _check(problems, folder, skip_bad, hint)
    if not records:
        raise ValueError(f"no captioned media in {folder}; add a <name>.txt caption per file{hint}")
    return records


# ----------------------------------------------------------------------------- dataset
class CaptionedVideos(torch.utils.data.Dataset):
    """Captioned images/clips from a manifest (.jsonl) or a folder with sidecar captions.

    Item: {"video": float (C, T, H, W) in [-1, 1], "caption": str, "sparse": str ("" if
    absent), "index": int, "media": path, ...other manifest keys}. T = 1 for a still image,
    T = frames for a clip. bad_files lists unreadable files met so far (per process: with
    DataLoader workers each worker keeps its own list; `load_uint8` runs in this one)."""

    def __init__(self, source, frames=16, stride=1, size=32, skip_bad=False, pad=True):
        source = os.fspath(source)
        for name, value in (("frames", frames), ("stride", stride), ("size", size)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not os.path.exists(source):
            raise FileNotFoundError(f"no such manifest or folder: {source}; {TINY_DATA_HINT}, "
                                    "or point at your own .jsonl manifest / captioned folder")
        read = read_folder if os.path.isdir(source) else read_manifest
        self.records = read(source, skip_bad)
        self.source, self.frames, self.stride, self.size = source, frames, stride, size
        self.pad = pad
        self.bad_files = []

    def __len__(self):
        return len(self.records)

    def read(self, i):
        """uint8 (T, H, W, 3) of item i, or None (after one warning) if its file is unreadable."""
        path = self.records[i]["media"]
        if path in self.bad_files:
            return None
        want = 1 if path.lower().endswith(IMAGE_EXTS) else self.frames
        try:
            picked, seen = read_frames(path, want, self.stride, self.size)
        except Exception as e:  # decoders raise OSError, IndexError, EOFError, ... for broken
            self.bad_files.append(path)  # files; the warning keeps the type and the message's
            reason = (str(e).strip().splitlines() or [""])[-1]  # last line (ffmpeg's is long)
            warnings.warn(f"skipping unreadable file {path} ({type(e).__name__}: {reason})")
            return None
        if len(picked) < want:
            if not self.pad:
                raise ValueError(
                    f"{path} has {seen} frames, so stride {self.stride} gives {len(picked)}, but "
                    f"frames={want} expected (needs {(want - 1) * self.stride + 1} frames); use a "
                    "smaller frames/stride, or pad=True to repeat the last frame")
            picked += [picked[-1]] * (want - len(picked))
        return np.stack(picked)  # (T, H, W, 3)

    def meta(self, i):
        """Item i without the video: caption, sparse, index, media and pass-through keys."""
        return {**self.records[i], "sparse": self.records[i].get("sparse", ""), "index": i}

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} items")  # ends `for x in ds`
        for j in [(i + k) % len(self) for k in range(len(self))]:  # bad file -> next good one
            u8 = self.read(j)
            if u8 is not None:
                return {"video": to_float(u8), **self.meta(j)}
        raise OSError(f"every media file of {self.source} is unreadable: {self.report_bad()}")

    def report_bad(self):
        """One line for the end of training: 'skipped N unreadable files: a.gif, b.mp4'."""
        names = ", ".join(self.bad_files[:10]) + (", ..." if len(self.bad_files) > 10 else "")
        return f"skipped {len(self.bad_files)} unreadable files" + (f": {names}" if names else "")


def collate(items):
    """List of items -> {"video": (B, C, T, H, W), other keys: lists}. Use as the
    DataLoader's collate_fn (the default one cannot batch the pass-through `spec` dicts)."""
    shapes = sorted({tuple(it["video"].shape) for it in items})
    if len(shapes) > 1:
        raise ValueError(f"cannot batch videos of different shapes {shapes}: a batch mixes still "
                         "images (T = 1) and clips (T = frames), or sizes differ; keep images and "
                         "clips in separate manifests, or load images with frames=1")
    batch = {"video": torch.stack([it["video"] for it in items])}  # (B, C, T, H, W)
    for key in dict.fromkeys(k for it in items for k in it if k != "video"):
        batch[key] = [it.get(key) for it in items]
    return batch


def load_uint8(dataset, desc="decoding"):
    """Decode the whole dataset once -> (uint8 (N, T, H, W, 3), list of N item dicts without
    "video"). Unreadable files are dropped (and counted in dataset.bad_files)."""
    videos, metas = [], []
    for i in tqdm(range(len(dataset)), desc=desc, unit="file"):
        u8 = dataset.read(i)
        if u8 is not None:
            videos.append(u8)
            metas.append(dataset.meta(i))
    if not videos:
        raise OSError(f"no readable media in {dataset.source}: {dataset.report_bad()}")
    shapes = sorted({v.shape for v in videos})
    if len(shapes) > 1:
        raise ValueError(f"{dataset.source} mixes shapes {shapes} (images give T = 1, clips T = "
                         f"frames); use separate manifests for images and clips")
    return np.stack(videos), metas  # (N, T, H, W, 3)


def to_float(u8):
    """uint8 (..., T, H, W, 3) numpy or tensor -> float tensor (..., C, T, H, W) in [-1, 1]."""
    if isinstance(u8, np.ndarray) and not u8.flags.writeable:
        u8 = u8.copy()  # torch refuses to share memory with read-only arrays
    x = torch.as_tensor(u8)
    if x.dtype != torch.uint8 or x.ndim < 4 or x.shape[-1] != 3:
        raise ValueError(f"to_float expects uint8 (..., T, H, W, 3), got {x.dtype} {list(x.shape)}")
    return x.movedim(-1, -4).float() / 127.5 - 1.0  # (..., C, T, H, W)


def to_uint8(x):
    """Float (..., C, T, H, W) in [-1, 1] -> numpy uint8 (..., T, H, W, 3); clamps outliers."""
    x = torch.as_tensor(x).detach().float().cpu()
    if x.ndim < 4 or x.shape[-4] != 3:
        raise ValueError(f"to_uint8 expects float (..., C=3, T, H, W), got {tuple(x.shape)}")
    x = ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.movedim(-4, -1).numpy()  # (..., T, H, W, 3)


# ----------------------------------------------------------------------------- writing
def save_video(path, u8, fps=8):
    """Write uint8 (T, H, W, 3) as .gif (lossless up to 256 colours), .mp4 (H.264), or
    .png/.jpg when T = 1. Parent folders are created."""
    u8 = np.asarray(u8)
    if u8.dtype != np.uint8 or u8.ndim != 4 or u8.shape[-1] != 3:
        raise ValueError(f"save_video expects uint8 (T, H, W, 3), got {u8.dtype} {u8.shape}; "
                         "convert with to_uint8")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    ext = os.path.splitext(path)[1].lower()
    if ext == ".gif":
        # GIF delays are in 1/100 s: round the frame time to 10 ms, and record it so that
        # `_gif_frames` can undo the merging of identical consecutive frames.
        ms = max(20, 10 * round(100 / fps))
        ims = [Image.fromarray(f) for f in u8]
        ims[0].save(path, save_all=True, append_images=ims[1:], duration=ms, loop=0,
                    comment=f"minivid frame_ms={ms}".encode())
    elif ext in (".png", ".jpg", ".jpeg"):
        if len(u8) != 1:
            raise ValueError(f"{path}: an image holds one frame, got T = {len(u8)}; use .gif/.mp4")
        Image.fromarray(u8[0]).save(path)
    elif ext == ".mp4":
        # H.264 in yuv420p (what every player reads) needs even sides: pad with black.
        u8 = np.pad(u8, ((0, 0), (0, u8.shape[1] % 2), (0, u8.shape[2] % 2), (0, 0)))
        H, W = u8.shape[1:3]
        writer = imageio_ffmpeg.write_frames(path, (W, H), fps=fps, macro_block_size=1)
        writer.send(None)  # start ffmpeg
        for f in u8:
            writer.send(np.ascontiguousarray(f))
        writer.close()
    else:
        raise ValueError(f"{path}: unknown extension; use .gif, .mp4, or .png/.jpg for one frame")


def _wrap(text, font, width, max_lines=8):
    """Greedy word wrap measured in pixels (character counts misjudge proportional fonts)."""
    lines = []
    for word in text.split():
        if lines and font.getlength(lines[-1] + " " + word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [lines[max_lines - 1] + " ..."]
    return lines


def save_grid(path, videos, captions=None, cols=None, fps=8, min_tile=128):
    """Write N clips uint8 (N, T, H, W, 3) as one animated grid (.gif/.mp4; .png if T = 1),
    each tile upscaled (nearest, so pixels stay crisp) to at least `min_tile` pixels wide,
    with its caption wrapped underneath. For previews a person opens."""
    videos = np.asarray(videos)
    if videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        raise ValueError(f"save_grid expects uint8 (N, T, H, W, 3), got {videos.dtype} "
                         f"{videos.shape}; convert with to_uint8")
    N, T, H, W, _ = videos.shape
    scale = max(1, math.ceil(min_tile / W))
    th, tw, gap = H * scale, W * scale, 6
    cols = cols or math.ceil(math.sqrt(N))
    rows = math.ceil(N / cols)
    font = ImageFont.load_default()  # Aileron 10 px with FreeType, else a bitmap font
    line_h = font.getbbox("Ag")[3] + 2
    lines = [_wrap(c, font, tw) for c in (captions or [""] * N)]
    cap_h = line_h * max(map(len, lines)) + (gap if captions else 0)

    # the captions are the same in every frame: draw them once on a base canvas
    size = (cols * (tw + gap) + gap, rows * (th + cap_h + gap) + gap)
    base = Image.new("RGB", size, (24, 24, 24))
    draw = ImageDraw.Draw(base)
    corners = [(gap + (n % cols) * (tw + gap), gap + (n // cols) * (th + cap_h + gap))
               for n in range(N)]  # top-left corner of each tile
    for (x, y), tile_lines in zip(corners, lines):
        for k, text in enumerate(tile_lines):
            draw.text((x, y + th + 2 + k * line_h), text, fill=(230, 230, 230), font=font)
    grid = np.repeat(np.asarray(base)[None], T, axis=0)  # (T, H', W', 3)
    big = videos.repeat(scale, axis=2).repeat(scale, axis=3)  # (N, T, th, tw, 3)
    for (x, y), clip in zip(corners, big):
        grid[:, y:y + th, x:x + tw] = clip
    save_video(path, grid, fps=fps)
