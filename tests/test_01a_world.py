"""01a The tiny captioned world.

Concept: every model in minivid learns from, and is judged on, a synthetic world that is
rich enough to need text and motion (shapes, colours, sizes, start cells, 12 motions, 2
speeds, backgrounds, 1-2 objects) and simple enough to check exactly. Each sample carries a
dense caption (everything visible), a sparse caption (what a user types) and the scene spec
(ground truth). A held-out test split holds colour+shape pairs never seen in training.
The world is a few small files imported one way: its words (vocab.py) <- the parser and the
captions; vocab <- its scenes, physics and pixels (scene.py) <- long clips; all of them <- the
dataset writer (world.py), which re-exports their names.

Run: python -m pytest tests/test_01a_world.py -q
"""
import json
import os
import subprocess
import sys

import numpy as np

from minivid import captions, world
from minivid.checker import stated


def _small(out, seed=0, res=32):
    sizes = {("train", "images"): 20, ("train", "clips"): 20, ("test", "clips"): 10}
    return world.generate(str(out), sizes, seed=seed, res=res, workers=1)


# 1. Shapes: a scene renders to uint8 (T, H, W, 3); an image is a scene with one frame.
def test_1_render_shapes():
    rng = np.random.default_rng(0)
    clip = world.render(world.sample_scene(rng, frames=16, res=32))
    image = world.render(world.sample_scene(rng, frames=1, res=32))
    assert clip.shape == (16, 32, 32, 3) and clip.dtype == np.uint8
    assert image.shape == (1, 32, 32, 3)
    assert world.render(world.sample_scene(rng, frames=16, res=64)).shape == (16, 64, 64, 3)


# 2. The vocabulary is as rich as promised.
def test_2_vocabulary():
    assert len(world.OBJECT_COLOURS) >= 6 and len(world.BACKGROUNDS) >= 3
    assert {"circle", "square", "triangle"} <= set(world.SHAPES)
    assert {"left", "right", "up", "down", "up-right", "bounce", "still", "grow",
            "shrink"} <= set(world.MOTIONS)
    assert len(world.SIZES) >= 2 and len(world.SPEEDS) >= 2


# 3. Generation is deterministic: the same seed writes byte-identical manifests and media,
#    whatever the worker count; another seed writes different ones.
def test_3_deterministic(tmp_path):
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    _small(a)
    world.generate(str(b), {("train", "images"): 20, ("train", "clips"): 20,
                            ("test", "clips"): 10}, seed=0, workers=2)
    _small(c, seed=1)
    for rel in ("train/images.jsonl", "train/clips.jsonl", "test/clips.jsonl",
                "train/clips/000003.gif", "train/images/000007.png"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert (a / "train/clips.jsonl").read_bytes() != (c / "train/clips.jsonl").read_bytes()


# 4. Captions agree with the spec: parsing the dense caption gives back every attribute of
#    the scene, over many random scenes and all phrasings; the sparse one names colour+shape.
def test_4_captions_agree_with_spec():
    rng = np.random.default_rng(1)
    phrasings = set()
    for i in range(600):
        scene = world.sample_scene(rng, "train", frames=1 if i % 4 == 0 else 16)
        dense = captions.dense_caption(scene, rng)
        phrasings.add(dense.split()[0] + dense.split()[-1])
        assert captions.parse_caption(dense) == stated(scene), dense
        sparse = captions.parse_caption(captions.sparse_caption(scene, rng))
        assert [(o["colour"], o["shape"]) for o in sparse["objects"]] == \
            [(o.colour, o.shape) for o in scene.objects]
    assert len(phrasings) >= 3  # several phrasings, not one template


# 5. Scenes obey the world's rules: objects stay in frame, two objects never share a colour
#    or overlap, and the compositional split is really held out.
def test_5_scene_rules():
    rng = np.random.default_rng(2)
    for split in ("train", "val", "test"):
        for _ in range(300):
            s = world.sample_scene(rng, split)
            pairs = {(o.colour, o.shape) for o in s.objects}
            if split == "test":
                assert pairs & world.HELD_OUT
            else:
                assert not pairs & world.HELD_OUT
            for o in s.objects:
                assert world.fits(o, s.frames, s.res)
            if len(s.objects) == 2:
                a, b = s.objects
                assert a.colour != b.colour and not world.overlaps(a, b, s.frames, s.res)


# 6. The files on disk hold exactly the rendered pixels (lossless PNG / palette GIF), in the
#    same manifest + media layout a user's own data uses.
def test_6_files_are_exact(tmp_path):
    from minivid.data import CaptionedVideos

    _small(tmp_path, res=64)
    rows = [json.loads(line) for line in open(tmp_path / "train" / "clips.jsonl")]
    assert {"media", "caption", "sparse", "spec"} <= set(rows[0])
    ds = CaptionedVideos(str(tmp_path / "train" / "clips.jsonl"), frames=16, size=64)
    for i in range(len(rows)):
        want = world.render(world.Scene.from_dict(rows[i]["spec"]))
        got = ((ds[i]["video"].permute(1, 2, 3, 0) + 1) * 127.5).round().byte().numpy()
        assert np.array_equal(got, want), rows[i]["media"]
    assert os.path.exists(tmp_path / "train" / "images" / "000000.png")


# 7. Imports flow one way: each part of the world imports on its own in a fresh process and
#    loads only the parts below it; vocab.py, at the bottom, loads nothing else of minivid.
def test_7_imports_flow_one_way():
    code = ("import importlib, sys; importlib.import_module(sys.argv[1]); "
            "print(*sorted(m[8:] for m in sys.modules if m.startswith('minivid.')))")
    loaded = {}
    for mod in ("vocab", "prompt_parse", "captions", "scene", "long_clips", "world"):
        out = subprocess.run([sys.executable, "-c", code, f"minivid.{mod}"], check=True,
                             capture_output=True, text=True)
        loaded[mod] = set(out.stdout.split())
    assert loaded["vocab"] == {"vocab"}
    assert loaded["captions"] == {"vocab", "prompt_parse", "captions"}
    assert loaded["long_clips"] == {"vocab", "scene", "long_clips"}
    assert loaded["world"] == {"vocab", "prompt_parse", "captions", "scene", "long_clips", "world"}
