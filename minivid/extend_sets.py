"""The scenes clip extension is scored on: `python -m minivid.evaluate extend` draws them here.

Where it sits: minivid/extend_bench.py makes long videos of these scenes and scores them
(minivid/video_identity.py); notebooks/07 draws them. Three sets, all made by the world
(minivid/world.py, minivid/long_clips.py), so each has a ground truth clip by clip:
  - eval_scenes: the val long clips (tiny_data/val/long.jsonl) in which nothing grows or
    shrinks (their size changes on purpose), after the first `skip` of them: the pilot set a
    sampling dial is tuned on is the first 16, the held-out set the ones after it;
  - clip_captions: each clip's own dense caption, for one prompt per clip;
  - square_path_scene: one object going round a square, one side per clip (4 clips), for
    the four-prompt video;
and real_videos renders any of them: the truth the generated videos are held against.
"""
import json

import numpy as np

from minivid import bench
from minivid.captions import dense_caption
from minivid.long_clips import CLIP, clip_scene, clip_start
from minivid.world import Obj, Scene, render, sample_scene


def eval_scenes(data_dir: str, n: int, skip: int = 0) -> list[Scene]:
    """The first n val long scenes in which nothing grows or shrinks, after the first `skip`
    such scenes (those a sampling setting was tuned on, say: held out means held out)."""
    out = []
    with open(bench.manifest(data_dir, "val", "long")) as f:
        for line in f:
            scene = Scene.from_dict(json.loads(line)["spec"])
            motions = [o.motion for o in scene.objects] + \
                [t[1] for o in scene.objects for t in o.turns]
            if not {"grow", "shrink"} & set(motions):
                out.append(scene)
            if len(out) == skip + n:
                break
    return out[skip:]


def square_path_scene(rng, res: int = 32) -> Scene:
    """One object going round a square, one side per clip: 4 clips (65 frames). Starts in a
    corner, turns left or right at each clip start; 16 px a side at fast speed, 8 at slow, so
    it never reaches an edge (no reflections: each clip's motion is unambiguous)."""
    base = sample_scene(rng, "val", frames=CLIP, res=res)
    o = base.objects[0]
    corner = str(rng.choice(["bottom left", "bottom right", "top left", "top right"]))
    # Directions round the square from each corner, counter-clockwise on screen; reversed
    # for clockwise.
    ccw = {"bottom left": ["right", "up", "left", "down"],
           "bottom right": ["up", "left", "down", "right"],
           "top right": ["left", "down", "right", "up"],
           "top left": ["down", "right", "up", "left"]}[corner]
    # Clockwise from the same corner: the same sides in reverse order, each walked backwards.
    flip = {"right": "left", "left": "right", "up": "down", "down": "up"}
    path = ccw if rng.random() < 0.5 else [flip[d] for d in ccw[::-1]]
    speed = str(rng.choice(["slow", "fast"]))
    obj = Obj(o.shape, o.colour, o.size, corner, path[0], speed,
              turns=[[clip_start(m), path[m], speed] for m in range(1, 4)])
    return Scene(base.background, [obj], frames=1 + 4 * CLIP, res=res)


def clip_captions(scene: Scene, clips: int, seed: int = 0) -> list[str]:
    """The dense caption of each clip (as the world writes them: the first with positions)."""
    rng = np.random.default_rng(seed)
    return [dense_caption(clip_scene(scene, m), rng, where=m == 0) for m in range(clips)]


def real_videos(scenes) -> np.ndarray:
    """Scenes of one length -> their videos as the world renders them, uint8 (N, T, H, W, 3)."""
    return np.stack([render(s) for s in scenes])
