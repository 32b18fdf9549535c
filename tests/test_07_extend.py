"""07 Clip extension: long videos clip by clip, conditioned on the history, bounded context.

Concept: a long video is made one clip at a time; each new clip is generated with the history
(clean latent frames) in front of its noisy frames. Feeding the WHOLE history ("full") makes
the DiT's sequence, and its cost, grow with the video; FramePack-style packing ("pack") keeps
the newest frame sharp and older frames ever coarser (their own patch embeddings, 2x and 4x
in time and space), drops the oldest but keeps frame 0 as an anchor: the context is bounded
by a constant. The world needs physics for clips of any length (objects reflect off the
edges, grow and shrink hold their final size, objects can turn at a given frame), so a long
video has a ground truth clip by clip.

    OMP_NUM_THREADS=1 python -m pytest tests/test_07_extend.py -q
"""

import numpy as np
import pytest
import torch

from minivid import captions, extend, history, long_clips, world
from minivid.dit import DiT, DiTConfig, patchify


# 1. Long clips: everything stays in the frame however long the clip, a turn changes the
#    motion at its frame, and a short clip is exactly what it always was (free flight).
def test_01_long_clip_physics():
    rng = np.random.default_rng(0)
    for _ in range(30):
        scene = long_clips.sample_long_scene(rng, clips=8)
        assert scene.frames == 1 + 16 * 8
        for o in scene.objects:
            b = world.bounding_boxes(o, scene.frames, scene.res)
            assert (b[:, :2] >= -1e-6).all() and (b[:, 2:] <= scene.res + 1e-6).all()
        if len(scene.objects) == 2:  # long clips keep the short world's rule: no overlap
            assert not world.overlaps(*scene.objects, scene.frames, scene.res)
    # a right-mover bounces back off the right edge
    o = world.Obj("circle", "red", "small", "left", "right", "fast")
    x, _, _ = world.trajectory(o, 60, 32)
    assert x.max() <= 32 - 4 and x[-1] < x.max()
    assert np.allclose(x[:16], world.trajectory(o, 60, 32, walls=False)[0][:16])
    # grow holds its final size instead of growing out of the frame
    g = world.Obj("square", "blue", "small", "centre", "grow")
    r = world.trajectory(g, 80, 32)[2]
    assert r[-1] == pytest.approx(world.SIZES["small"] * world.GROW) and r[40] == r[79]
    # a turn: right until frame 17, then up from wherever it is
    t = world.Obj("square", "blue", "small", "bottom left", "right", "slow",
                  turns=[[17, "up", "slow"]])
    x, y, _ = world.trajectory(t, 33, 32)
    assert x[17] == x[32] and y[32] < y[17] and x[16] > x[0]
    assert long_clips.motion_at(t, 16) == ("right", "slow") and long_clips.motion_at(t, 17) == ("up", "slow")


# 2. Each clip of a long clip has its own scene and caption; the checker agrees with them on
#    the real pixels (a square path has no reflections, so every clip is unambiguous).
def test_02_clip_captions_match_pixels():
    from minivid.extend_sets import clip_captions, square_path_scene
    from minivid.video_identity import score_per_clip
    rng = np.random.default_rng(1)
    scenes = [square_path_scene(rng) for _ in range(6)]
    videos = np.stack([world.render(s) for s in scenes])
    caps = [clip_captions(s, 4) for s in scenes]
    scores = score_per_clip(videos, caps, 4)
    assert min(scores["adherence"]) == 1.0 and min(scores["identity"]) == 1.0
    parsed = [captions.parse_caption(c)["objects"][0] for c in caps[0]]
    assert "position" in parsed[0] and all("position" not in p for p in parsed[1:])
    assert [p["motion"] for p in parsed] == [scenes[0].objects[0].motion] + \
        [t[1] for t in scenes[0].objects[0].turns]  # continuations leave positions out


# 3. A prompt for a continuation clip loses its start positions (the history says where
#    things are); a one-prompt video's later clips also lose the motions.
def test_03_strip_positions():
    text = ("A large red circle that starts on the left and moves quickly to the right; and a "
            "small blue box in the top right corner, which sinks. The background is plain grey.")
    stripped = captions.strip_positions(text)
    parsed, full = captions.parse_caption(stripped), captions.parse_caption(text)
    assert all("position" not in o for o in parsed["objects"])
    for a, b in zip(parsed["objects"], full["objects"]):
        assert {k: v for k, v in b.items() if k != "position"} == a
    assert parsed["background"] == "grey"
    who = captions.parse_caption(captions.strip_motion(stripped))
    assert who == {"background": "grey", "objects": [
        {"colour": "red", "shape": "circle", "size": "large"},
        {"colour": "blue", "shape": "square", "size": "small"}]}
    # the world's other phrasings go too: participles, and a sentence left with its pronoun
    assert captions.strip_motion("A little yellow square, expanding. A big red disc. It slowly "
                                 "moves downward.") == "A little yellow square. A big red disc."
    for seed in range(40):   # no world caption keeps a motion or a speed, nor loses an object
        scene = long_clips.sample_long_scene(np.random.default_rng(seed), "train", 4)
        rng = np.random.default_rng(seed)
        for c in [captions.dense_caption(long_clips.clip_scene(scene, m), rng, m == 0)
                  for m in range(4)]:
            who = captions.parse_caption(captions.strip_motion(captions.strip_positions(c)))
            assert not any("motion" in o or "speed" in o for o in who["objects"]), c
            assert len(who["objects"]) == len(captions.parse_caption(c)["objects"]), c
            assert "It." not in captions.strip_motion(c), c
    # one prompt for a video: later clips lose its start positions and keep its motion (the
    # form most continuation training steps see), or with who_only its motion too; one prompt
    # per clip: each keeps its motion (it steers its clip), only the start positions go
    one = history.clip_prompts([text], 3)[0]
    assert one[0] == text and one[1] == one[2] == stripped
    who = history.clip_prompts([text], 3, who_only=True)[0]
    assert who[0] == text and who[1] == who[2] == captions.strip_motion(stripped)
    per_clip = history.clip_prompts([[text, text, text]], 3)[0]
    assert per_clip[1] == stripped
    with pytest.raises(ValueError, match="one per clip"):
        history.clip_prompts([[text, text]], 3)
    with pytest.raises(ValueError, match="empty prompt"):
        history.clip_prompts([[text, " ", text]], 3)


# 4. Context tokens: the module's formulas are what build_context really makes; full grows
#    with the history, window and pack are bounded (pack by 1.75 S with the coarse anchor,
#    2.5 S with the full-resolution one; positions by the anchor's).
@pytest.mark.parametrize("strategy, anchor", [(s, "coarse") for s in history.STRATEGIES]
                         + [("pack", "full")])
def test_04_context_tokens(strategy, anchor):
    for L in range(0, 70, 3):
        ctx = history.build_context(torch.zeros(1, 3, L, 8, 8), strategy, anchor=anchor)
        tokens = 0 if ctx is None else ctx.tokens(patch=2)
        assert tokens == history.context_tokens(strategy, L, anchor=anchor)
        if ctx is not None and strategy == "pack":
            assert tokens <= (28 if anchor == "coarse" else 40)
            assert min(float(pos.min()) for _, _, pos in ctx.pieces) >= history.ANCHOR_POS
    assert history.context_tokens("full", 61) == 16 * 61


# 5. The packed layout, drawn: which history frame goes where, at what kernel.
def test_05_pack_layout():
    L = 25                                      # after 6 clips: frames 0..24
    past = torch.arange(L).float().view(1, 1, L, 1, 1).expand(1, 3, L, 8, 8)  # frame i = i
    pieces = history.build_context(past, "pack").pieces
    kept = [(k, z[0, 0, :, 0, 0].tolist(), pos.tolist()) for z, k, pos in pieces]
    frames = lambda a, b: [float(f) for f in range(a, b)]  # noqa: E731
    assert kept == [(2, [0.0, 0.0], [-19.0, -19.0]),            # the anchor, past the window
                    (4, frames(6, 22), frames(-18, -2)),        # 16 frames at kernel 4
                    (2, [22.0, 23.0], [-2.0, -1.0]),            # 2 frames at kernel 2
                    (1, [24.0], [0.0])]                         # the newest, full size
    # frames 1..5 are dropped; a short history pads its oldest group by repeating its oldest
    short = history.build_context(past[:, :, :6], "pack").pieces
    assert [(k, z.shape[2]) for z, k, _ in short] == [(4, 4), (2, 2), (1, 1)]
    assert short[0][0][0, 0, :, 0, 0].tolist() == [0.0, 0.0, 1.0, 2.0]
    # The full-resolution anchor (issue 22): frame 0 at kernel 1 in its fixed place from the
    # first continuation on; the kept window walks back over frames 1, 2, ... instead.
    pieces = history.build_context(past[:, :, :5], "pack", anchor="full").pieces
    kept = [(k, z[0, 0, :, 0, 0].tolist(), pos.tolist()) for z, k, pos in pieces]
    assert kept == [(1, [0.0], [-19.0]),                        # frame 0, full size
                    (4, [1.0, 1.0, 1.0, 1.0], [-3.0] * 4),      # frame 1, padded to a group
                    (2, [2.0, 3.0], [-2.0, -1.0]),
                    (1, [4.0], [0.0])]


# 6. A coarse kernel starts as "average-pool, then the full patch embedding", exactly.
def test_06_coarse_kernel_init():
    torch.manual_seed(0)
    dit = history.add_context_kernels(DiT(DiTConfig(in_channels=3, text_dim=16, dim=32,
                                                    heads=2, depth=1, context_kernels=(2, 4))))
    z = torch.randn(2, 3, 4, 8, 8)
    for k in (2, 4):
        pooled = torch.nn.functional.avg_pool3d(z, k)                 # (2, 3, 4/k, 8/k, 8/k)
        torch.testing.assert_close(dit.ctx_embed[str(k)](history.patchify_coarse(z, 2, k)),
                                   dit.x_embed(patchify(pooled, 2)), atol=1e-5, rtol=1e-5)


# 7. The DiT reads the history: the prediction for the new frames changes with it, and an
#    empty history is no history.
def test_07_dit_reads_context():
    torch.manual_seed(0)
    dit = history.add_context_kernels(DiT(DiTConfig(in_channels=3, text_dim=16, dim=32,
                                                    heads=2, depth=2, context_kernels=(2, 4))))
    dit.eval()
    for q in dit.parameters():  # wake the zero-initialised gates
        torch.nn.init.normal_(q, std=0.05)
    x, t = torch.randn(2, 3, 4, 8, 8), torch.rand(2)
    text, mask = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    h1, h2 = torch.randn(2, 3, 25, 8, 8), torch.randn(2, 3, 25, 8, 8)
    v1 = dit(x, t, text, mask, cond=history.build_context(h1, "pack"))
    v2 = dit(x, t, text, mask, cond=history.build_context(h2, "pack"))
    assert v1.shape == x.shape and not torch.allclose(v1, v2)
    # only the frames pack keeps matter: frames 1..5 of the history are dropped
    h3 = h1.clone()
    h3[:, :, 1:6] = 0
    torch.testing.assert_close(dit(x, t, text, mask, cond=history.build_context(h3, "pack")), v1)
    torch.testing.assert_close(dit(x, t, text, mask, cond=h1[:, :, :0]), dit(x, t, text, mask))
    with pytest.raises(ValueError, match="context_kernels"):
        DiT(DiTConfig(in_channels=3, text_dim=16, dim=32, heads=2, depth=1))(
            x, t, text, mask, cond=history.build_context(h1, "pack"))


# 8. Training draws one layout per step from the step's generator; examples split cleanly.
def test_08_training_layout():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    draws = [extend.training_layout(g1, 8) for _ in range(200)]
    assert draws == [extend.training_layout(g2, 8) for _ in range(200)]
    assert {d[0] for d in draws} == set(range(8)) and {d[1] for d in draws} == set(extend.STRATEGIES)
    z = torch.randn(2, 3, 33, 8, 8)
    past, target = extend.split_example(z, 0)
    assert past.shape[2] == 0 and target.shape[2] == 5
    past, target = extend.split_example(z, 3)
    assert past.shape[2] == 13 and torch.equal(target, z[:, :, 13:17])
    # a step's layout: the same draws from the same generator; its caption rows point at the
    # next clip's caption (rows 0..n*clips-1), or at its who-only version (the second half)
    cache = {"latents": torch.zeros(2, 3, 13, 8, 8), "captions": ["A red box.", "A cat."],
             "clip_captions": [["It moves up.", "It moves left."], ["b", "c"]]}
    rows, clips = extend.long_captions(cache, "long.pt")
    assert clips == 3 and rows[:3] == ["A red box.", "It moves up.", "It moves left."]
    lay = extend.draw_layout(torch.Generator().manual_seed(3), 4, clips, slice(None))
    assert (lay.hc, lay.strategy, lay.window) == extend.training_layout(
        torch.Generator().manual_seed(3), clips) and lay.tau.max() <= history.TRAIN_NOISE
    idx = torch.tensor([1, 0, 1, 0])
    r = lay.caption_rows(idx, slice(None), clips, 2)
    assert torch.equal(r % (2 * clips), idx * clips + lay.hc)
    assert torch.equal(r >= 2 * clips, lay.who_only)


# 8b. Per-piece noise levels (Diffusion Forcing, issue 22): the history is packed, then each
#     piece goes to its own flow time and the DiT is told each token's; the anchor stays
#     exactly clean. With every piece at one time it is the one-time path, to float error.
def test_08b_per_piece_noise():
    torch.manual_seed(0)
    h, n = torch.randn(2, 3, 9, 8, 8), torch.randn(2, 3, 9, 8, 8)
    pack = lambda z, a="full": history.build_context(z, "pack", anchor=a)  # noqa: E731
    tau = torch.tensor([[0.9, 0.1, 0.2, 0.3], [0.9, 0.4, 0.5, 0.6]])
    ctx = history.noise_pieces(pack(h), pack(n), tau)
    assert ctx.anchored and ctx.t.shape == (2, 4) and (ctx.t[:, 0] == 0).all()
    assert torch.equal(ctx.pieces[0][0], h[:, :, :1])              # the anchor: frame 0, clean
    for i, ((z, _, _), (zc, _, _), (zn, _, _)) in enumerate(zip(ctx.pieces, pack(h).pieces,
                                                                 pack(n).pieces)):
        ti = ctx.t[:, i].view(-1, 1, 1, 1, 1)
        torch.testing.assert_close(z, (1 - ti) * zc + ti * zn)
    dit = history.add_context_kernels(DiT(DiTConfig(in_channels=3, text_dim=16, dim=32,
                                                    heads=2, depth=2, context_kernels=(2, 4))))
    for q in dit.parameters():  # wake the zero-initialised gates
        torch.nn.init.normal_(q, std=0.05)
    pre = ctx.prefix(dit, (2, 3, 4, 8, 8))
    assert pre.t.shape == (2, pre.tokens.shape[1]) and (pre.t[:, :16] == 0).all()  # anchor: S
    x, t = torch.randn(2, 3, 4, 8, 8), torch.rand(2)
    text, mask = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    one = history.Context(pack(h, "coarse").pieces, torch.full((2,), 0.3))  # no anchor yet
    per = history.noise_pieces(pack(h, "coarse"), pack(h, "coarse"), 0.0)   # t (B, P) ...
    per.t = torch.full_like(per.t, 0.3)                                     # ... all at 0.3
    torch.testing.assert_close(dit.eval()(x, t, text, mask, cond=per),
                               dit(x, t, text, mask, cond=one), atol=1e-5, rtol=1e-5)
    per.t[:, -1] = 0.0                        # one piece's time changed: the prediction moves
    assert not torch.allclose(dit(x, t, text, mask, cond=per), dit(x, t, text, mask, cond=one))
    assert history.noise_pieces(None, None, 0.2) is None      # a first clip: no history
    with pytest.raises(ValueError, match="one time per piece"):
        history.noise_pieces(pack(h), pack(n), torch.rand(2))  # (B,): not one per piece
    # training draws one time per piece, up to --piece-noise, and leaves the anchor clean
    lay = extend.draw_layout(torch.Generator().manual_seed(3), 2, 4, slice(None), "full", 0.5)
    assert lay.piece_noise and lay.tau.shape == (2, extend.MAX_PIECES) and lay.tau.max() <= 0.5
    lay.hc, lay.strategy = 2, "pack"
    x0, c = lay.example(torch.randn(2, 3, 17, 8, 8), torch.randn(2, 3, 9, 8, 8), slice(None))
    assert x0.shape[2] == 4 and c.anchored and (c.t[:, 0] == 0).all() and (c.t[:, 1:] > 0).all()
    lay.hc = 0                                # a first clip: no history, no context
    x0, c = lay.example(torch.randn(2, 3, 17, 8, 8), torch.randn(2, 3, 0, 8, 8), slice(None))
    assert x0.shape[2] == 5 and c is None


# 8b2. History guidance's weaker branch (sampling.sample_long's guide_on): "history" is the
#      whole history at the guidance time; "anchor" is the history as sampled with ONLY the
#      anchor (frame 0) moved to the guidance time, in the same layout (one batched forward).
def test_08b2_vaguer_context():
    torch.manual_seed(0)
    h, n = torch.randn(2, 3, 9, 8, 8), torch.randn(2, 3, 9, 8, 8)
    args = ("pack", 4, "full", True)                       # strategy, window, anchor, per piece
    sampled = history.noised_context(h, n, 0.05, *args)
    vague = history.vaguer_context(h, n, 0.05, 0.5, "history", *args)
    assert torch.equal(vague.t, history.noised_context(h, n, 0.5, *args).t)
    weak = history.vaguer_context(h, n, 0.05, 0.5, "anchor", *args)
    assert weak.anchored and len(weak.pieces) == len(sampled.pieces)
    assert torch.equal(weak.t[:, 1:], sampled.t[:, 1:]) and (weak.t[:, 0] == 0.5).all()
    for (zw, kw, pw), (zs, ks, ps) in list(zip(weak.pieces, sampled.pieces))[1:]:
        assert torch.equal(zw, zs) and kw == ks and torch.equal(pw, ps)   # the rest: as sampled
    torch.testing.assert_close(weak.pieces[0][0], 0.5 * h[:, :, :1] + 0.5 * n[:, :, :1])
    one_time = history.vaguer_context(h, n, 0.05, 0.5, "anchor", "pack", 4, "full", False)
    assert one_time.t.shape == (2, len(one_time.pieces)) and (one_time.t[:, 1:] == 0.05).all()
    both = history.noised_context(h, n, 0.05, "pack", 4, "full", False).cat(one_time)
    assert both.t.shape == (4, len(one_time.pieces))   # (B,) and (B, P) batch as per piece
    assert history.vaguer_context(h, n, 0.05, 0.5, "anchor", "window", 4, "full", True) is None
    assert history.vaguer_context(h[:, :, :0], n[:, :, :0], 0.05, 0.5, "anchor", *args) is None
    with pytest.raises(ValueError, match="choose one of"):
        history.check_history_guidance(1.0, 0.5, "the text")


# 8c. Training on its own continuations (issue 22, part 4): a rollout step's history has
#     the bank's clips 1 .. hc-1 (the model's own) and the real clip 0; the clip it learns is
#     the REAL next one. A per-piece teacher's distillation contexts are per piece too, the
#     anchor clean; the one-time contexts are bitwise what noise_history + build_context give.
def test_08c_rollouts_and_per_piece_bank():
    from minivid import distillation, rollouts
    real, own = torch.randn(2, 3, 17, 8, 8), torch.randn(2, 3, 17, 8, 8)
    assert rollouts.clip_frames(0) == slice(0, 5) and rollouts.clip_frames(2) == slice(9, 13)
    z = rollouts.with_own_history(real, own, hc=3)                   # history: frames 0 .. 12
    assert torch.equal(z[:, :, :5], real[:, :, :5])                  # clip 0 (the anchor) real
    assert torch.equal(z[:, :, 5:13], own[:, :, 5:13])               # clips 1, 2: its own
    past, x0 = extend.split_example(z, 3)
    assert torch.equal(x0, real[:, :, 13:17]) and torch.equal(past, z[:, :, :13])
    cache = {"latents": torch.randn(4, 3, 17, 8, 8), "captions": ["a"] * 4,
             "clip_captions": [["b", "c", "d"]] * 4}
    one = distillation.continuations(cache, range(4), 8, 0, 0.0, 1.0, "full")
    per = distillation.continuations(cache, range(4), 8, 0, 0.0, 1.0, "full", per_piece=True)
    rows = one.rows(2)
    ctx = one.context(rows, 2)
    hist = extend.split_example(one.history[one.clip[rows]], 2)[0]
    want = history.build_context(history.noise_history(hist, one.tau[one.clip[rows]], noise=(
        one.noise[one.clip[rows]][:, :, :9])), "pack", t=one.tau[one.clip[rows]], anchor="full")
    assert all(torch.equal(a[0], b[0]) for a, b in zip(ctx.pieces, want.pieces))
    c = per.context(rows, 2)
    assert c.t.dim() == 2 and (c.t[:, 0] == 0).all() and torch.allclose(
        c.t[:, 1:], torch.tensor(history.SAMPLE_NOISE))
    assert torch.equal(c.pieces[0][0], hist[:, :, :1])               # the anchor: exactly clean
