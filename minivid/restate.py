"""Restating who is in a long video from what its first clip shows: a captioner as the video's
memory of its cast.

Why (docs/results.md 7, "Where the continuation reads who is in the video"): at the main job's
scale the continuation reads WHERE things are from its history and WHO they are from its text.
Clip 1 draws fewer than half of its objects exactly as asked (a square for a circle, small for
large); the later clips then follow the text, redraw the object as asked, and the video
changes who is in it. Restating mends the text rather than the model: after clip 1, a
captioner reads what the clip shows, and that description becomes the prompt of every later
clip (its start positions stripped, as for any later clip: history.clip_prompts). Text and
history then agree about who is there.

Two readers of clip 1, the learned one and the simplest rule that does the same job:
  captioner  the learned captioner of stage 2 (minivid/captioner.py): pixels -> a dense caption;
             a clip it calls outside the world keeps the user's prompt
  rule       dense_caption(checker.detect(clip)): the scene checker's nearest-palette reading,
             written out (caption_bench.rule_caption). Zero parameters; NOTE it is the same
             detector evaluate extend scores identity with, so its figures read the metric's
             own eyes: the learned captioner is the honest one to quote

What the later clips take from the reading (take): "all", its whole caption (the default),
or "who": which objects are there (colour, shape) and on what background, each keeping the
size and motion the prompt gave it (cast_text).

    restate = Restater.load("runs/captioner/ckpt.pt")       # or Restater.rule()
    videos = pipe.extend(["A large red circle ..."], clips=16, restate=restate)
    python sample.py --ckpt runs/extend/ckpt.pt --extend 8 --restate captioner --prompt "..."
    python -m minivid.evaluate extend ... --restate captioner     # measured: docs/results.md 7

The price: the later clips now follow clip 1, mistakes included, so they match the user's
prompt less (static adherence falls) while they keep more of who is in the video. The reader
must be good: the main job's 300-step captioner misreads colours and shapes and LOSES
identity; a 2,400-step one (train_captioner.py --steps 2400) is what docs/results.md 7 used.
Even one trained on VAE round trips (--vae), which reads decoded real clips almost perfectly,
loses identity as the reader: the DiT's ambiguous objects are not decoded real ones.
Only one-prompt videos are restated: a video with one prompt per clip is steered clip by clip
by its user, and keeps that text.
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_07d_restate.py -q`
"""
import os

import numpy as np

from minivid.caption_bench import rule_caption
from minivid.caption_data import FRAMES, OUTSIDE
from minivid.captioner import Captioner
from minivid.captions import dense_caption, parse_caption
from minivid.scene import Obj, Scene

READERS = ("none", "captioner", "rule")
TAKES = ("all", "who")   # what the later clips take from the reading (all of it / cast_text)


def cast_text(prompt: str, reading: str, seed: int = 0) -> str:
    """Who from the reading, how big and how it moves from the prompt.

    The reading says which objects clip 1 shows (colour, shape) and on what background; each
    object's size and motion come from the prompt's object of the same colour (a reader's
    size and motion of a flawed 16-frame clip are its least reliable parts), the reading's
    own where the prompt has no such object. When that cast is the prompt's own (every object
    drawn as asked), the prompt is kept word for word. -> a dense caption (captions.
    dense_caption, no start positions: a later clip's text), or the prompt when the reading
    names nothing."""
    asked, seen = parse_caption(prompt), parse_caption(reading)
    if not seen["objects"] or not seen.get("background"):
        return prompt
    by_colour = {o["colour"]: o for o in asked["objects"] if "colour" in o}
    cast = []
    for o in seen["objects"]:
        if not {"colour", "shape"} <= set(o):
            continue
        mine = by_colour.get(o["colour"], o)
        motion = mine.get("motion", "still")
        cast.append(Obj(o["shape"], o["colour"], mine.get("size", o.get("size", "medium")),
                        o.get("position", "centre"), motion,
                        "" if motion == "still" else mine.get("speed", "slow")))
    same = sorted((o.colour, o.shape, o.size) for o in cast) == sorted(
        (o.get("colour"), o.get("shape"), o.get("size")) for o in asked["objects"])
    if not cast or (same and seen["background"] == asked.get("background")):
        return prompt
    return dense_caption(Scene(seen["background"], cast, FRAMES), np.random.default_rng(seed),
                         where=False)


class Restater:
    """restate(prompts, first_clips) -> the prompts the later clips get.

    read: uint8 clips (N, 16, H, W, 3) -> N captions, None where the reader has nothing to say
    (then the user's prompt stays). name: which reader ("captioner", "rule"). take: "who" =
    cast_text (who from the reading, sizes and motions from the prompt), "all" = the whole
    reading."""

    def __init__(self, read, name: str, take: str = "all"):
        if take not in TAKES:
            raise ValueError(f"take {take!r}: one of {TAKES}")
        self.read, self.name, self.take = read, name, take
        self.last = []           # the prompts the last call gave

    @classmethod
    def load(cls, path: str, take: str = "all") -> "Restater":
        """The learned captioner of stage 2 (train_captioner.py) as the reader."""
        cap = Captioner.load(path)
        return cls(lambda u8: [None if text == OUTSIDE else text for text, _ in cap(u8)],
                   "captioner", take)

    @classmethod
    def rule(cls, seed: int = 0, take: str = "all") -> "Restater":
        """The scene checker's reading, written out (zero parameters; seeded phrasing)."""
        return cls(lambda u8: [rule_caption(v, False, np.random.default_rng(seed + i))
                               for i, v in enumerate(u8)], "rule", take)

    def __call__(self, prompts, first):
        """prompts: one per video (a string, or a list of per-clip prompts: kept as they are);
        first: uint8 (N, >= 16, H, W, 3), each video's first clip as made -> new prompts."""
        if len(first) != len(prompts) or first.ndim != 5 or first.shape[1] < FRAMES:
            raise ValueError(f"first clips {tuple(first.shape)} for {len(prompts)} prompts: "
                             f"expected uint8 (N, >= {FRAMES}, H, W, 3), one clip per prompt")
        read = self.read(np.ascontiguousarray(first[:, :FRAMES]))
        out = []
        for i, (p, caption) in enumerate(zip(prompts, read)):
            if not isinstance(p, str) or caption is None or not caption.strip():
                out.append(p)                        # steered clip by clip, or nothing read
                continue
            out.append(caption if self.take == "all" else cast_text(p, caption, i))
        self.last = out
        return out


def add_args(p) -> None:
    """The flags sample.py and evaluate extend share: --restate, --captioner, --restate-take."""
    p.add_argument("--restate", default="none", choices=READERS, help="one-prompt long "
                   "videos: after clip 1, a reader describes what it shows and that text is "
                   "every later clip's prompt (minivid/restate.py): captioner = the learned one "
                   "(--captioner), rule = the scene checker (the metric's own detector)")
    p.add_argument("--captioner", default="runs/captioner/ckpt.pt", help="with --restate "
                   "captioner: its checkpoint (train_captioner.py)")
    p.add_argument("--restate-take", default="all", choices=TAKES, help="with --restate: all = "
                   "the reading's whole caption (its positions stripped); who = the reading says "
                   "which objects (colour, shape), the prompt keeps their sizes and motions "
                   "(cast_text)")


def missing_reader(reader: str, captioner: str | None) -> str | None:
    """What is wrong with --restate / --captioner before anything is loaded (None: nothing).
    sample.py and evaluate extend both print it, so both say the same thing and the fix."""
    if reader == "captioner" and not (captioner and os.path.exists(captioner)):
        return (f"--captioner {captioner} not found; train one first: python train_captioner.py "
                "--data tiny_data --out runs/captioner (README, recaptioning), or pass "
                "--restate rule")
    return None


def restater(reader: str, captioner: str | None = None, seed: int = 0,
             take: str = "all") -> Restater | None:
    """The --restate flag's reader (and --restate-take) -> a Restater, or None for "none"."""
    if reader not in READERS:
        raise ValueError(f"restate reader {reader!r}: one of {READERS}")
    if reader == "none":
        return None
    if reader == "rule":
        return Restater.rule(seed, take)
    return Restater.load(captioner, take)
