"""04b dit: the diffusion transformer that predicts the flow velocity from noisy latents.

Concept: latents (B, C, T, H, W) are cut into 2x2 patches per frame, one token each; the
tokens get an absolute 2-D sin-cos position for space, a relative rotary angle for time in
self-attention, and an absolute frame code that is exactly zero for frame 0; then they pass
through adaLN-Zero blocks (timestep-modulated self-attention, cross-attention to the
caption, MLP) and are turned back into a (B, C, T, H, W) velocity. Because frame 0 gets no
rotation and no code, an image (T = 1) is exactly a 2-D DiT and the same weights take
videos (T = 5); clean conditioning frames are simply more tokens in front of the clip.
The walkthrough: shapes -> identity at init -> invariants (padding, conditioning, RoPE) ->
FLOP formula against torch's counter -> a tiny overfit.

    OMP_NUM_THREADS=1 python -m pytest tests/test_04b_dit.py -q
"""
import dataclasses

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from minivid import flow
from minivid.dit import PRESETS, DiT, DiTBlock, frame_offset, patchify, unpatchify
from minivid.rope import apply_rope, rope_angles
from minivid.text import PRESETS as TEXT_PRESETS, TextEncoder, build_vocab

CAPTION = "A small red circle in the top left corner moves to the right."
C, H, W, DT = 4, 8, 8, 32


def make_dit(randomize=True, **kw):
    """A small DiT. randomize=True nudges every weight so the zero-initialised parts
    (gates, final layer) are live and the invariants below are not trivially true."""
    torch.manual_seed(0)
    cfg = dataclasses.replace(PRESETS["tiny"], in_channels=C, text_dim=DT, dim=64, depth=2,
                              heads=4, **kw)
    model = DiT(cfg)
    if randomize:
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.05 * torch.randn_like(p))
    return model


def text_batch(B, L=6):
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, L, DT, generator=g), torch.ones(B, L, dtype=torch.bool)


# 1. Patchify cuts each frame into 2x2 patches ordered (t, h, w) and unpatchify inverts it.
def test_01_patchify_roundtrip():
    x = torch.randn(2, C, 5, H, W)
    tokens = patchify(x, 2)
    assert tokens.shape == (2, 5 * 4 * 4, C * 2 * 2)
    assert torch.equal(tokens[0, 0], x[0, :, 0, :2, :2].reshape(-1))      # frame 0, top left
    assert torch.equal(tokens[0, 16], x[0, :, 1, :2, :2].reshape(-1))     # frame 1, top left
    assert torch.equal(tokens[0, 1], x[0, :, 0, :2, 2:4].reshape(-1))     # next patch right
    assert torch.equal(unpatchify(tokens, 2, 5, H, W), x)


# 2. adaLN-Zero: an untrained block is exactly the identity, and the untrained model
#    predicts v = 0 (so training starts from the least-wrong constant).
def test_02_adaln_zero_identity():
    model = make_dit(randomize=False)
    block = model.blocks[0]
    assert isinstance(block, DiTBlock)
    h, c = torch.randn(2, 16, 64), torch.randn(2, 64)
    ctx, mask = torch.randn(2, 6, 64), torch.ones(2, 6, dtype=torch.bool)
    assert torch.equal(block(h, c, ctx, mask, None), h)
    text, tmask = text_batch(2)
    v = model(torch.randn(2, C, 3, H, W), torch.rand(2), text, tmask)
    assert torch.equal(v, torch.zeros_like(v))


# 3. The same weights take an image (T = 1) and a video (T = 5); in a video, frames talk to
#    each other (changing frame 0 changes the output at frame 4).
def test_03_image_and_video_same_weights():
    model = make_dit()
    text, mask = text_batch(2)
    t = torch.tensor([0.3, 0.8])
    image = model(torch.randn(2, C, 1, H, W), t, text, mask)
    assert image.shape == (2, C, 1, H, W) and torch.isfinite(image).all()
    x = torch.randn(2, C, 5, H, W)
    video = model(x, t, text, mask)
    assert video.shape == (2, C, 5, H, W)
    x2 = x.clone()
    x2[:, :, 0] += 1
    assert not torch.allclose(model(x2, t, text, mask)[:, :, 4], video[:, :, 4])
    # A different frame size is just a different number of tokens (no position table to resize).
    assert model(torch.randn(1, C, 2, 4, 12), t[:1], text[:1], mask[:1]).shape == (1, C, 2, 4, 12)


# 4. Time RoPE is relative: the attention score between two tokens depends only on how many
#    frames apart they are, so shifting every frame index changes nothing.
def test_04_rope_is_relative():
    q, k = torch.randn(1, 1, 1, 16), torch.randn(1, 1, 1, 16)
    def score(i, j):
        return (apply_rope(q, *rope_angles(torch.tensor([i]), 16))
                * apply_rope(k, *rope_angles(torch.tensor([j]), 16))).sum()
    torch.testing.assert_close(score(3, 1), score(10, 8))
    torch.testing.assert_close(score(0, 0), (q * k).sum())      # frame 0: the identity
    assert not torch.allclose(score(3, 1), score(1, 1))


# 4b. ... and the absolute frame code is zero for frame 0 (an image is the 2-D DiT, exactly)
#     and different for every later frame (so frames can differ even at pure noise, where
#     relative rotations alone cannot say which frame a token is in).
def test_04b_frame_offset():
    code = frame_offset(torch.arange(17), 64)                    # (17, 64)
    assert torch.equal(code[0], torch.zeros(64))
    assert torch.cdist(code, code).add(torch.eye(17)).min() > 0.1


# 5. Clean conditioning frames: the output covers only the noisy frames, cond=None equals
#    zero conditioning frames, each sample's output depends on its own conditioning only,
#    and the conditioning is read (gradients reach it) but never changed.
def test_05_clean_conditioning_frames():
    model = make_dit()
    text, mask = text_batch(2)
    t = torch.tensor([0.5, 0.5])
    x, cond = torch.randn(2, C, 3, H, W), torch.randn(2, C, 2, H, W, requires_grad=True)
    before = cond.detach().clone()
    base = model(x, t, text, mask)
    v = model(x, t, text, mask, cond=cond)
    assert torch.equal(cond, before)
    assert v.shape == x.shape
    # what the DiT makes of the frames: clean tokens + their frame positions (-1, 0), which
    # can also come embedded elsewhere (a packed history, minivid/history.py) as a Prefix
    pre = model.prefix(cond, x.shape)
    assert pre.tokens.shape == (2, 2 * 16, 64) and pre.frame.unique().tolist() == [-1.0, 0.0]
    assert torch.equal(model(x, t, text, mask, cond=pre), v)
    torch.testing.assert_close(model(x, t, text, mask, cond=cond[:, :, :0]), base)
    assert not torch.allclose(v, base)
    cond2 = cond.detach().clone()
    cond2[1] += 1                                                # change sample 1's frames only
    v2 = model(x, t, text, mask, cond=cond2)
    torch.testing.assert_close(v2[0], v[0].detach())
    assert not torch.allclose(v2[1], v[1].detach())
    v.square().sum().backward()
    assert cond.grad.abs().sum() > 0


# 6. The text padding mask works: padding the caption with junk changes nothing.
def test_06_text_padding_is_ignored():
    model = make_dit()
    text, mask = text_batch(2, L=4)
    x, t = torch.randn(2, C, 2, H, W), torch.rand(2)
    padded = torch.cat([text, 100 * torch.randn(2, 3, DT)], 1)
    pmask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.bool)], 1)
    torch.testing.assert_close(model(x, t, padded, pmask), model(x, t, text, mask))


# 7. Bad inputs are refused with a message that says what was expected.
def test_07_bad_inputs():
    model = make_dit()
    text, mask = text_batch(1)
    x, t = torch.randn(1, C, 2, H, W), torch.rand(1)
    with pytest.raises(ValueError, match="divisible by patch"):
        model(torch.randn(1, C, 2, 7, W), t, text, mask)
    with pytest.raises(ValueError, match=f"expected C = {C}"):
        model(torch.randn(1, C + 1, 2, H, W), t, text, mask)
    with pytest.raises(ValueError, match="must match x"):
        model(x, t, text, mask, cond=torch.randn(1, C, 1, H, W + 2))
    with pytest.raises(ValueError, match="text_dim"):
        model(x, t, torch.randn(1, 6, DT + 1), mask)


# 8. The FLOP formula (used for MFU) matches torch's FLOP counter on a forward pass.
def test_08_flops_formula():
    model = make_dit()
    text, mask = text_batch(1, L=7)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, C, 3, H, W), torch.rand(1), text, mask,
              cond=torch.randn(1, C, 2, H, W))
    assert model.flops(T=3, H=H, W=W, L=7, Tc=2) == 3 * counter.get_total_flops()
    # a history whose tokens each have their own time (per-piece noise) runs the clean
    # tokens' adaLN once per token instead of once per sample: the formula's clean_times
    pre = model.prefix(torch.randn(1, C, 2, H, W), (1, C, 3, H, W))
    Nc, counts = pre.tokens.shape[1], []
    for t_clean in (torch.rand(1), torch.rand(1, Nc)):
        pre.t = t_clean
        with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            model(torch.randn(1, C, 3, H, W), torch.rand(1), text, mask, cond=pre)
        counts.append(counter.get_total_flops())
    formula = [model.flops(T=3, H=H, W=W, L=7, Tc=2, clean_times=k) for k in (1, Nc)]
    assert formula[1] - formula[0] == 3 * (counts[1] - counts[0]) > 0


# 9. Activation checkpointing recomputes blocks in the backward: same gradients, less memory.
def test_09_grad_checkpoint_same_gradients():
    grads = []
    for flag in (False, True):
        model = make_dit(grad_checkpoint=flag)
        text, mask = text_batch(2)
        model(torch.randn(2, C, 2, H, W, generator=torch.Generator().manual_seed(2)),
              torch.full((2,), 0.4), text, mask).square().mean().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()
                                if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1])


# 10. Overfit: a tiny DiT + text encoder learn one captioned 5-frame clip; the flow-matching
#     loss falls several-fold in 150 steps (a few seconds on one CPU thread).
def test_10_overfit_one_clip():
    torch.manual_seed(0)
    tcfg = dataclasses.replace(TEXT_PRESETS["tiny"], vocab=build_vocab([CAPTION]), dim=DT,
                               depth=1, heads=2)
    text_encoder = TextEncoder(tcfg)
    model = make_dit(randomize=False)
    ids, mask = text_encoder.tokenizer([CAPTION] * 8)
    x0 = torch.randn(1, C, 5, H, W).expand(8, -1, -1, -1, -1)
    params = list(model.parameters()) + list(text_encoder.parameters())
    opt = torch.optim.AdamW(params, lr=3e-3)
    losses = []
    for step in range(150):
        loss = flow.loss(model, x0, text=text_encoder(ids, mask), text_mask=mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.3 * first, (first, last)
    assert all(p.grad is not None for p in text_encoder.parameters())
