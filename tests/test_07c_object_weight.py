"""07c Weighting the flow loss towards the objects (issue 22: the shape an object is drawn with).

Concept: the flow loss is a mean over every latent cell, and the objects cover ~20% of them;
the flat background takes the rest of the signal. minivid/object_weight.py reads from the
world's scene specs which latent cells an object covers (its pixels pooled the way the causal
4x VAE groups frames) and train_extend.py --object-weight W weighs those cells W, the rest 1,
in a weighted mean (so the loss keeps its scale).

    OMP_NUM_THREADS=1 python -m pytest tests/test_07c_object_weight.py -q -m "slow or not slow"
"""
import numpy as np
import pytest
import torch
from helpers import make_extend_model, run

from minivid import flow, object_weight
from minivid.checkpoint import load_checkpoint
from minivid.scene import Obj, Scene, render_indices


# 1. Pixels -> latent cells: a cell is an object cell when any pixel it encodes is one. Frame 0
#    is latent frame 0 alone; then each latent frame groups 4 frames (1 + 4 k).
def test_01_pool_mask():
    m = np.zeros((9, 32, 32), dtype=bool)          # 9 frames = 1 + 4 * 2: latent frames 3
    m[0, 0:4, 0:4] = True                          # frame 0: the top-left cell only
    m[3, 5, 9] = True                              # frame 3 (latent frame 1): cell (1, 2)
    m[8, 31, 31] = True                            # frame 8 (latent frame 2): the last cell
    cells = object_weight.pool_mask(m, 3, 8, 8)
    assert cells.shape == (3, 8, 8)
    assert cells[0, 0, 0] and cells[0].sum() == 1
    assert cells[1, 1, 2] and cells[1].sum() == 1
    assert cells[2, 7, 7] and cells[2].sum() == 1
    with pytest.raises(ValueError, match="re-make the cache"):
        object_weight.pool_mask(m, 4, 8, 8)        # 8 frames after the first do not split in 3


# 2. A scene's cells: a still object covers the same few cells in every latent frame; a moving
#    one moves across them; the cells follow render_indices exactly.
def test_02_scene_cells():
    still = Scene("navy", [Obj("square", "green", "small", "top left", "still")], 17)
    moving = Scene("navy", [Obj("circle", "red", "large", "left", "right", "fast")], 17)
    cells = object_weight.latent_masks([still, moving], [0, 1], 5, 8, 8)
    assert cells.shape == (2, 1, 5, 8, 8) and cells.dtype == torch.bool
    assert all(torch.equal(cells[0, 0, j], cells[0, 0, 0]) for j in range(5))
    assert 1 <= cells[0, 0, 0].sum() <= 4                     # a small object: a few cells
    cols = [torch.nonzero(cells[1, 0, j].any(0)).flatten() for j in range(5)]
    assert cols[-1].max() > cols[0].max()                     # it moved right
    pix = render_indices(moving) > 0
    assert torch.equal(cells[1, 0, 0], torch.from_numpy(pix[0].reshape(8, 4, 8, 4).any((1, 3))))
    with pytest.raises(ValueError, match="no scene spec"):
        object_weight.latent_masks([still, None], [0, 1], 5, 8, 8)


# 3. The weighted loss: weight 1 everywhere is the plain mean; a weighted mean keeps the scale
#    (the same error everywhere gives the same loss at any weight) and moves the gradient onto
#    the weighted cells.
def test_03_weighted_loss():
    torch.manual_seed(0)
    x0, noise, t = torch.randn(2, 3, 5, 8, 8), torch.randn(2, 3, 5, 8, 8), torch.rand(2)
    lin = torch.nn.Conv3d(3, 3, 1)
    net = lambda x, t: lin(x)                                            # noqa: E731
    cells = torch.zeros(2, 1, 5, 8, 8, dtype=torch.bool)
    cells[:, :, :, 2:4, 2:4] = True
    plain = flow.loss(net, x0, noise, t)
    ones = flow.loss(net, x0, noise, t, weight=object_weight.weights(cells, 1.0))
    assert torch.allclose(plain, ones)
    flat = lambda x, t: (noise - x0) + 0.5                               # noqa: E731
    w = object_weight.weights(cells, 3.0)
    assert w[cells.expand_as(w)].eq(3).all() and w[~cells.expand_as(w)].eq(1).all()
    assert torch.allclose(flow.loss(flat, x0, noise, t, weight=w), torch.tensor(0.25))

    def cells_share(weight):       # the share of the gradient that reaches the object cells
        x = x0.clone().requires_grad_(True)
        flow.loss(lambda x, t: x, x, noise, torch.zeros(2), weight=weight).backward()
        g = x.grad.abs()
        return g[cells.expand_as(g)].sum() / g.sum()
    assert cells_share(w) > 2 * cells_share(None)   # the objects' cells get more of the signal


# 4. train_extend.py --object-weight end to end: the cells are read at the start, the checkpoint
#    says what was trained, a resumed run keeps it; a bad weight names the fix.
@pytest.mark.slow  # real script runs: `-m slow`
def test_04_train_extend_object_weight(tmp_path):
    d = tmp_path
    common = make_extend_model(d)
    r = run("train_extend.py", "--out", d / "ow", "--steps", 2, "--object-weight", 3,
            "--piece-noise", 0.5, "--init-from", d / "extend" / "ckpt.pt", *common)
    assert "object weight 3: objects cover" in r.stdout
    ckpt = load_checkpoint(d / "ow" / "ckpt.pt", kind="dit")
    assert ckpt["extra"]["object_weight"] == 3.0
    r = run("train_extend.py", "--out", d / "ow", "--steps", 4, "--init-from",
            d / "extend" / "ckpt.pt", "--resume", *common)       # no --object-weight: kept
    ckpt = load_checkpoint(d / "ow" / "ckpt.pt", kind="dit")
    assert ckpt["step"] == 4 and ckpt["extra"]["object_weight"] == 3.0
    assert "object weight 3" in r.stdout
    r = run("train_extend.py", "--out", d / "x", "--steps", 1, "--object-weight", 0,
            "--init-from", d / "extend" / "ckpt.pt", *common, check=False)
    assert r.returncode != 0 and "must be > 0" in r.stderr, r.stderr[-500:]
