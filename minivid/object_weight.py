"""Weighting the flow loss towards the objects: where the drawing goes wrong (issue 22).

Where it sits: inside train_extend.py (--object-weight). Counting how long videos lose who is
in them (video_identity.losses; docs/results.md 7) leaves SHAPE as the largest loss: a kept
object drawn as another shape (a square with rounded corners read as a disc) in ~10-12% of
object-clips, even from a perfect real history, and prompt-only videos lose shape too. So it is
the drawing of fine detail, not memory. The flow loss is a mean over every latent cell (8 x 8
cells of 4 x 4 pixels a latent frame, each grouping 4 frames), and the objects cover ~20% of
them in the long train clips: the flat background, the easiest thing in the frame, gets ~80%
of the weight of the training signal. This file gives each latent cell an object covers the
weight W and the rest 1, so more of the signal falls where the shapes are:

    for each long clip (its scene spec from the world):
        object pixels  m = render_indices(scene) > 0                   (F, H, W) bool
        latent cells   M[j, y, x] = any m over the pixels the cell encodes
                       (frame 0 -> latent frame 0; frames 4j - 3 .. 4j -> latent frame j,
                        the causal 4x VAE's grouping; a block of H / h x W / w pixels)
    the loss           sum(w * (v - (noise - x0))^2) / sum(w),  w = 1 + (W - 1) M

The mean is taken over the weights, so the loss keeps its scale (and the val loss, unweighted,
stays comparable with every other run); what changes is the share of the weight: with ~20% of
cells covered, W = 3 gives the objects ~43% of it instead of ~20%. The target of the clip to
learn is always real (a damaged history's too), so its cells come from the real scene.

    python train_extend.py ... --piece-noise 0.5 --damage 0.5 --object-weight 3
Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_07c_object_weight.py -q -m "slow or not slow"`
"""
import numpy as np
import torch

from minivid.scene import render_indices


def pool_mask(mask: np.ndarray, T: int, h: int, w: int) -> np.ndarray:
    """Object pixels (F, H, W) bool -> latent cells (T, h, w) bool: a cell is an object cell
    when any pixel it encodes is. Time: frame 0 alone, then groups of (F - 1) / (T - 1) frames
    (the causal VAE's 1 + 4 k layout; 1 per frame for a frame-by-frame VAE)."""
    F, H, W = mask.shape
    if H % h or W % w or (T > 1 and (F - 1) % (T - 1)):
        raise ValueError(f"object masks of {F} frames of {H}x{W} do not pool onto {T} latent "
                         f"frames of {h}x{w}: the latents were made from other videos; "
                         "re-make the cache with python -m minivid.latents")
    cells = mask.reshape(F, h, H // h, w, W // w).any(axis=(2, 4))     # (F, h, w)
    if T == 1:
        return cells[:1]
    g = (F - 1) // (T - 1)
    rest = cells[1:].reshape(T - 1, g, h, w).any(axis=1)              # (T - 1, h, w)
    return np.concatenate([cells[:1], rest])


def latent_masks(scenes, rows, T: int, h: int, w: int) -> torch.Tensor:
    """Scenes (t2v.cache_scenes of the cache) of long clips `rows` -> (V, 1, T, h, w) bool:
    the latent cells their objects cover, frame by frame."""
    out = []
    for i in rows:
        scene = scenes[int(i)]
        if scene is None:
            raise ValueError(f"long clip {int(i)} has no scene spec (footage of your own?): "
                             "--object-weight reads where the objects are from the world's "
                             "scenes; train without it")
        out.append(pool_mask(render_indices(scene) > 0, T, h, w))
    return torch.from_numpy(np.stack(out))[:, None]


def weights(mask: torch.Tensor, weight: float) -> torch.Tensor:
    """Object cells (B, 1, T, h, w) bool -> the loss weights: `weight` on them, 1 elsewhere."""
    return 1.0 + (weight - 1.0) * mask.float()
