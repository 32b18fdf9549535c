"""04c flow: rectified flow, checked against a velocity field we can write down exactly.

Concept: x_t = (1 - t) x0 + t noise moves a data point (t = 0) in a straight line to noise
(t = 1). The best possible network predicts v(x, t) = E[noise - x0 | x_t = x], and
integrating dx/dt = v from t = 1 to 0 turns noise into data. For a Gaussian mixture target
sum_k w_k N(mu_k, S_k) that expectation has a closed form: given component k, x0 and
noise are jointly Gaussian with x_t, so with A_k = (1 - t)^2 S_k + t^2 I
(the covariance of x_t under component k) and d_k = x - (1 - t) mu_k:

    E[noise | x, k] = t A_k^-1 d_k
    E[x0 | x, k]    = mu_k + (1 - t) S_k A_k^-1 d_k
    p(k | x)        ~ w_k N(x; (1 - t) mu_k, A_k)
    v(x, t)         = sum_k p(k | x) (E[noise | x, k] - E[x0 | x, k])

So the samplers can be tested with no training at all: their samples must have the
mixture's means, covariance and mode weights; Heun must beat Euler at few steps; CFG at
scale 1 must equal the conditional prediction.

    OMP_NUM_THREADS=1 python -m pytest tests/test_04c_flow.py -q
"""
import dataclasses

import pytest
import torch

from minivid import flow
from minivid.dit import PRESETS, DiT

WEIGHTS = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
MEANS = torch.tensor([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]], dtype=torch.float64)
COVS = torch.tensor([[[0.3, 0.1], [0.1, 0.2]],
                     [[0.2, -0.05], [-0.05, 0.4]],
                     [[0.5, 0.0], [0.0, 0.1]]], dtype=torch.float64)


def gmm_posterior_and_velocity(x, t):
    """x (B, 2), t (B,) -> p(k | x_t = x) (B, K) and the exact velocity (B, 2)."""
    t = t[:, None, None]                                              # (B, 1, 1)
    A = (1 - t[..., None]) ** 2 * COVS + t[..., None] ** 2 * torch.eye(2, dtype=x.dtype)
    d = x[:, None, :] - (1 - t) * MEANS                               # (B, K, 2)
    Ainv_d = torch.linalg.solve(A, d[..., None])[..., 0]              # (B, K, 2)
    log_p = WEIGHTS.log() - 0.5 * (d * Ainv_d).sum(-1) - 0.5 * torch.logdet(A)
    post = log_p.softmax(dim=1)                                       # (B, K)
    e_noise = t * Ainv_d
    e_x0 = MEANS + (1 - t) * (COVS @ Ainv_d[..., None])[..., 0]
    return post, (post[..., None] * (e_noise - e_x0)).sum(1)


def gmm_velocity(x, t):
    return gmm_posterior_and_velocity(x, t)[1]


def gmm_sample(n, gen):
    k = torch.multinomial(WEIGHTS, n, replacement=True, generator=gen)
    z = torch.randn(n, 2, 1, dtype=torch.float64, generator=gen)
    return MEANS[k] + (torch.linalg.cholesky(COVS)[k] @ z)[..., 0]


def gmm_stats():
    mean = (WEIGHTS[:, None] * MEANS).sum(0)
    second = (WEIGHTS[:, None, None] * (COVS + MEANS[:, :, None] * MEANS[:, None, :])).sum(0)
    return mean, second - mean[:, None] * mean[None]


# 1. The time convention: t = 0 is data, t = 1 is noise, v = noise - x0 is dx_t/dt, and
#    sampling runs from t = 1 down to t = 0.
def test_01_time_convention():
    x0, noise = torch.randn(4, 3, 2, 8, 8), torch.randn(4, 3, 2, 8, 8)
    assert torch.equal(flow.interpolate(x0, noise, torch.zeros(4)), x0)
    assert torch.equal(flow.interpolate(x0, noise, torch.ones(4)), noise)
    t, dt = torch.full((4,), 0.3, dtype=torch.float64), 1e-6
    x0, noise = x0.double(), noise.double()
    slope = (flow.interpolate(x0, noise, t + dt) - flow.interpolate(x0, noise, t)) / dt
    torch.testing.assert_close(slope, noise - x0)
    ts = flow.timesteps(10)
    assert ts[0] == 1 and ts[-1] == 0 and (ts[1:] < ts[:-1]).all()
    shifted = flow.timesteps(10, shift=3.0)
    assert shifted[0] == 1 and shifted[-1] == 0 and (shifted[1:-1] > ts[1:-1]).all()
    low = flow.timesteps(10, shift=0.5)             # shift < 1: finer steps near t = 0
    assert low[0] == 1 and low[-1] == 0 and (low[1:-1] < ts[1:-1]).all()
    assert low[-2] - low[-1] < ts[-2] - ts[-1] and low[0] - low[1] > ts[0] - ts[1]
    with pytest.raises(ValueError, match="must be > 0"):
        flow.timesteps(10, shift=0.0)
    t = flow.sample_t(10000)
    assert 0 < t.min() and t.max() < 1 and abs(t.mean() - 0.5) < 0.02


# 2. Straight paths: if the data is a single point, the exact velocity is (x - x0) / t and
#    one Euler step from any noise lands exactly on it.
def test_02_one_point_one_step():
    x0 = torch.tensor([1.5, -0.5])
    out = flow.sample(lambda x, t: (x - x0) / t[:, None], torch.randn(5, 2), {}, steps=1)
    torch.testing.assert_close(out, x0.expand(5, 2))


# 3. The loss: the exact GMM velocity scores lower than any rescaled version of it, and a
#    model that knows the noise scores zero.
def test_03_loss_minimised_by_true_velocity():
    gen = torch.Generator().manual_seed(0)
    x0 = gmm_sample(20000, gen)
    noise = torch.randn(x0.shape, dtype=x0.dtype, generator=gen)
    t = flow.sample_t(20000).double()
    best = flow.loss(gmm_velocity, x0, noise, t)
    for s in (0.9, 1.1):
        assert flow.loss(lambda x, t: s * gmm_velocity(x, t), x0, noise, t) > best
    assert flow.loss(lambda x, t: noise - x0, x0, noise, t) == 0


# 4. The sampler with the exact velocity recovers the mixture: mean, covariance and the
#    fraction of samples in each mode.
@pytest.mark.parametrize("sampler,steps", [("euler", 100), ("heun", 20)])
def test_04_sampler_recovers_gmm(sampler, steps):
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(4000, 2, dtype=torch.float64, generator=gen)
    x = flow.sample(gmm_velocity, noise, {}, steps=steps, step=sampler)
    mean, cov = gmm_stats()
    torch.testing.assert_close(x.mean(0), mean, atol=0.08, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.15, rtol=0.05)
    post, _ = gmm_posterior_and_velocity(x, torch.zeros(len(x), dtype=x.dtype))
    fractions = torch.bincount(post.argmax(1), minlength=3).double() / len(x)
    torch.testing.assert_close(fractions, WEIGHTS, atol=0.03, rtol=0)


# 5. Heun (two slopes per step) is far more accurate than Euler at the same few steps, and
#    even at the same number of network calls; the reference is a 400-step Heun solve of
#    the same ODE from the same noise.
def test_05_heun_beats_euler():
    noise = torch.randn(500, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    ref = flow.sample(gmm_velocity, noise, {}, steps=400, step="heun")
    err = {(s, n): (flow.sample(gmm_velocity, noise, {}, steps=n, step=s) - ref)
           .norm(dim=1).mean().item() for s in ("euler", "heun") for n in (8, 16)}
    assert err["heun", 8] < 0.2 * err["euler", 8]
    assert err["heun", 8] < 0.2 * err["euler", 16]               # both 16 network calls
    # Orders of accuracy: doubling the steps halves Euler's error (first order) and cuts
    # Heun's by ~4x (second order).
    assert 1.7 < err["euler", 8] / err["euler", 16] < 2.5
    assert err["heun", 8] / err["heun", 16] > 3
    with pytest.raises(ValueError, match="euler"):
        flow.sample(gmm_velocity, noise, {}, step="rk4")


# 6. Classifier-free guidance on the DiT, batched as ONE forward: scale 1 is the conditional
#    prediction, scale 0 the unconditional one, and the clean conditioning frames go to both
#    halves untouched. History guidance adds a third branch to the same forward.
def test_06_cfg():
    torch.manual_seed(0)
    model = DiT(dataclasses.replace(PRESETS["tiny"], in_channels=4, text_dim=16, dim=32,
                                    depth=1, heads=2))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    calls = []
    def counted(x, t, **kw):
        calls.append(x.shape[0])
        return model(x, t, **kw)
    x, t = torch.randn(2, 4, 2, 8, 8), torch.tensor([0.7, 0.7])
    frames = torch.randn(2, 4, 1, 8, 8)
    cond = dict(text=torch.randn(2, 5, 16), text_mask=torch.ones(2, 5, dtype=torch.bool),
                cond=frames)
    null_mask = torch.zeros(2, 5, dtype=torch.bool)
    null_mask[:, 0] = True                                       # the null caption: <bos> only
    uncond = dict(text=torch.randn(2, 5, 16), text_mask=null_mask, cond=frames)
    with torch.no_grad():
        v_cond, v_uncond = model(x, t, **cond), model(x, t, **uncond)
        v1 = flow.velocity(counted, x, t, cond, uncond, cfg_scale=1.0)
        v0 = flow.velocity(counted, x, t, cond, uncond, cfg_scale=0.0)
        v3 = flow.velocity(counted, x, t, cond, uncond, cfg_scale=3.0)
    assert calls == [4, 4, 4]                                    # one batched forward each
    torch.testing.assert_close(v1, v_cond, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v0, v_uncond, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v3, v_uncond + 3 * (v_cond - v_uncond), atol=1e-5, rtol=1e-5)
    out = flow.sample(model, torch.randn(2, 4, 2, 8, 8), cond, uncond, cfg_scale=2.0, steps=2)
    assert out.shape == (2, 4, 2, 8, 8) and torch.isfinite(out).all()

    # history guidance: a third branch, the same caption with other (vaguer) frames, in the
    # same batched forward: v = v_uncond + s (v_cond - v_uncond) + w (v_cond - v_weak)
    weak = dict(cond=0.5 * frames + 0.5 * torch.randn_like(frames))
    calls.clear()
    with torch.no_grad():
        v_weak = model(x, t, **{**cond, **weak})
        v = flow.velocity(counted, x, t, cond, uncond, 2.0, guides=[(weak, 1.5)])
        v_no_cfg = flow.velocity(counted, x, t, cond, None, 1.0, guides=[(weak, 1.5)])
    assert calls == [6, 4]
    torch.testing.assert_close(v, v_uncond + 2 * (v_cond - v_uncond) + 1.5 * (v_cond - v_weak),
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v_no_cfg, v_cond + 1.5 * (v_cond - v_weak), atol=1e-5, rtol=1e-5)


# 7. Training with clean conditioning frames: they reach the model as given (never noised)
#    while the noisy frames are x_t.
def test_07_loss_passes_clean_frames_through():
    seen = {}
    def model(x, t, cond):
        seen.update(x=x, cond=cond)
        return torch.zeros_like(x)
    x0, frames = torch.randn(2, 4, 3, 8, 8), torch.randn(2, 4, 1, 8, 8)
    noise, t = torch.randn_like(x0), torch.tensor([0.25, 0.75])
    flow.loss(model, x0, noise, t, cond=frames)
    assert seen["cond"] is frames
    torch.testing.assert_close(seen["x"], flow.interpolate(x0, noise, t))


# 8. The sampler interface: a custom time grid and a custom step function plug in without
#    touching flow.py; Heun makes 2n - 1 calls, because its last step (to t = 0, where the
#    network never trained) is a plain Euler step; clean conditioning frames given only in
#    `cond` condition BOTH guidance halves (only the caption differs).
def test_08_sampler_interface():
    seen = []
    def model(x, t, **kw):
        seen.append((float(t[0]), x.shape[0], kw.get("cond")))
        return torch.zeros_like(x)
    x = torch.randn(3, 2)
    flow.sample(model, x, {}, steps=4, step="heun")
    assert len(seen) == 2 * 4 - 1 and all(t > 0 for t, _, _ in seen)

    grid = torch.tensor([1.0, 0.9, 0.5, 0.0])
    taken = []
    def my_step(f, x, t, t_next):  # e.g. a distilled student's step
        taken.append((float(t), float(t_next)))
        return x + (t_next - t) * f(x, t)
    flow.sample(model, x, {}, step=my_step, times=grid)
    assert taken == [(1.0, pytest.approx(0.9)), (pytest.approx(0.9), 0.5), (0.5, 0.0)]
    with pytest.raises(ValueError, match="strictly decreasing"):
        flow.sample(model, x, {}, times=torch.tensor([1.0, 1.0, 0.0]))

    seen.clear()
    frames = torch.randn(3, 4)
    flow.velocity(model, x, torch.tensor(0.5), dict(text=torch.ones(3, 1), cond=frames),
                  dict(text=torch.zeros(3, 1)), cfg_scale=2.0)
    (_, batch, both), = seen
    assert batch == 6 and torch.equal(both, torch.cat([frames, frames]))
