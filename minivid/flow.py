"""Rectified flow (flow matching): the training loss and the samplers, apart from the network.

Time convention, used everywhere in minivid:

    x_t = (1 - t) * x0 + t * noise      t = 0 is data, t = 1 is pure Gaussian noise
    v   = dx_t/dt = noise - x0          the network learns v(x_t, t) = E[noise - x0 | x_t]
    sampling integrates dx/dt = v from t = 1 (noise) down to t = 0 (data)

The path is a straight line between a data point and a noise draw (rectified flow,
https://arxiv.org/abs/2209.03003; flow matching, https://arxiv.org/abs/2210.02747). The
network is any callable `model(x, t, **cond) -> v` with t of shape (B,); `cond` holds what
the network needs besides x and t (for the DiT: text, text_mask and optional clean frames
`cond`, which pass through untouched: they are never noised and never in the loss).

    loss = flow.loss(dit, x0, text=feats, text_mask=mask)                  # one training step
    x0 = flow.sample(dit, torch.randn(shape), dict(text=..., text_mask=...),
                     uncond=dict(text=null, text_mask=null_mask), cfg_scale=2.0, steps=30,
                     step=flow.heun_step)                     # or euler_step, or a student's

This file is all the algorithm there is; the tests (tests/test_04c_flow.py) check it against
the exact velocity field of a Gaussian mixture.
"""
import torch
import torch.nn.functional as F


def _bcast(t, x):
    """Time (B,) -> (B, 1, ..., 1) to broadcast against x (B, ...)."""
    return t.view(-1, *[1] * (x.dim() - 1))


def interpolate(x0, noise, t):
    """The point x_t on the straight path from data x0 (t = 0) to noise (t = 1)."""
    t = _bcast(t, x0)
    return (1 - t) * x0 + t * noise


def sample_t(batch: int, device=None, mean: float = 0.0, std: float = 1.0, generator=None):
    """Training times from the logit-normal distribution, t = sigmoid(N(mean, std)) (SD3,
    https://arxiv.org/abs/2403.03206). Near t = 1 the best prediction is just the data mean
    and near t = 0 the input nearly is the answer; the middle times are where the network
    must decide what the sample will be, so that is where the training signal goes."""
    return torch.sigmoid(mean + std * torch.randn(batch, device=device, generator=generator))


def loss(model, x0, noise=None, t=None, weight=None, **cond):
    """Flow-matching loss: mean squared error between model(x_t, t) and noise - x0.

    x0: (B, ...) clean data (the DiT: latents (B, C, T, H, W)); noise and t (B,) default to
    fresh draws (pass them for reproducible or distillation targets); weight: None (a plain
    mean) or weights broadcastable to x0, e.g. (B, 1, T, H, W), and the mean is weighted:
    sum(w * err) / sum(w) (minivid/object_weight.py); cond goes to the model."""
    noise = torch.randn_like(x0) if noise is None else noise
    t = sample_t(x0.shape[0], x0.device) if t is None else t
    v = model(interpolate(x0, noise, t), t, **cond)
    if weight is None:
        return F.mse_loss(v.float(), (noise - x0).float())
    err = (v.float() - (noise - x0).float()) ** 2
    w = weight.float().expand_as(err)
    return (w * err).sum() / w.sum()


def timesteps(steps: int, shift: float = 1.0, device=None):
    """steps + 1 times from 1 down to 0. shift > 1 spends more steps at high noise:
    t -> shift * t / (1 + (shift - 1) * t) (SD3). With more tokens (bigger frames, more
    frames), the same noise level hides less, because many tokens average the noise out, so
    the coarse layout is decided closer to t = 1 and needs the finer steps there. shift < 1
    does the opposite: finer steps near t = 0, where small shapes' edges are finished."""
    if not shift > 0:
        raise ValueError(f"time shift {shift}: must be > 0 (1 = an even grid)")
    t = torch.linspace(1, 0, steps + 1, device=device)
    return shift * t / (1 + (shift - 1) * t)


def _stack(parts):
    """Stack guidance branches along the batch: tensors, or objects with .cat (a packed
    history, minivid.history.Context)."""
    if torch.is_tensor(parts[0]):
        return torch.cat(parts)
    out = parts[0]
    for part in parts[1:]:
        out = out.cat(part)
    return out


def velocity(model, x, t, cond: dict, uncond: dict | None = None, cfg_scale: float = 1.0,
             guides=(), **extra):
    """v at (x, t) with classifier-free guidance (https://arxiv.org/abs/2207.12598):
    v_uncond + s * (v_cond - v_uncond), conditional and unconditional in ONE batched forward.

    s = 1 is the conditional prediction, s = 0 the unconditional one. `uncond` holds what
    differs for the unconditional half (the null caption, padded to the same L); any key it
    lacks is taken from `cond`: clean conditioning frames (`cond=`, clip extension) are the
    history of BOTH halves, only the caption is dropped. uncond=None skips guidance and the
    second half. `extra` goes to the model unchanged for both halves (e.g. a distilled
    student's step size `d`, a tensor (B,) or None).
    guides: more guidance terms, [(alt, w), ...]: + w (v_cond - v_alt) each, where alt says
    what differs from `cond` as uncond does (history guidance: the same caption, a NOISIER
    history, so w > 0 pushes away from what a vaguer history would give; minivid/sampling.py).
    Every branch goes in the same batched forward: 1 + [uncond] + len(guides) times the rows."""
    t = t.expand(x.shape[0]) if t.dim() == 0 else t
    alts = ([uncond] if uncond is not None else []) + [alt for alt, _ in guides]
    if not alts:
        return model(x, t, **cond, **extra)
    n = 1 + len(alts)
    batch = {k: None if v is None else _stack([v] + [a.get(k, v) for a in alts])
             for k, v in cond.items()}
    more = {k: torch.cat([v] * n) if torch.is_tensor(v) and v.dim() > 0 else v
            for k, v in extra.items()}
    vs = model(torch.cat([x] * n), torch.cat([t] * n), **batch, **more).chunk(n)
    v_cond, out = vs[0], vs[0]
    if uncond is not None:
        out = vs[1] + cfg_scale * (v_cond - vs[1])
    for (_, w), v_alt in zip(guides, vs[1 + (uncond is not None):]):
        out = out + w * (v_cond - v_alt)
    return out


# ----------------------------------------------------------------------------- samplers
# A sampler step moves x from time t to t_next (< t). It gets `f(x, t, **extra)`: the
# network's (guided) velocity with everything but x and t already bound, so the same steps
# serve a plain velocity model, a guided DiT, or a distilled student (minivid/distillation.py
# brings its own step). Signature: step(f, x, t, t_next) -> x at t_next.


def euler_step(f, x, t, t_next):
    """x <- x + (t_next - t) * v(x, t): one network call, error ~ 1 / steps."""
    return x + (t_next - t) * f(x, t)


def heun_step(f, x, t, t_next):
    """An Euler step, then the average of the slopes at both ends: second order (error ~
    1 / steps^2), two network calls. The LAST step (t_next = 0) stays a plain Euler step: the
    network never trained at t = 0 exactly (sample_t never draws it), and its slope there
    would only polish a sample that is already data (the EDM sampler does the same,
    https://arxiv.org/abs/2206.00364)."""
    v = f(x, t)
    x_next = x + (t_next - t) * v
    if float(t_next) == 0.0:
        return x_next
    return x + (t_next - t) * (v + f(x_next, t_next)) / 2


STEPS = {"euler": euler_step, "heun": heun_step}


def get_step(name: str):
    """'euler' | 'heun' -> the step function, or a clear error."""
    if name not in STEPS:
        raise ValueError(f"sampler={name!r}: choose one of {sorted(STEPS)}")
    return STEPS[name]


@torch.no_grad()
def sample(model, noise, cond: dict, uncond: dict | None = None, cfg_scale: float = 1.0,
           steps: int = 30, step=euler_step, times=None, shift: float = 1.0, guides=()):
    """Integrate dx/dt = v from t = 1 (x = noise) to t = 0 and return the data sample.

    noise: (B, ...) standard Gaussian, the start point (the DiT: (B, C, T, H, W)).
    step:  a step function (euler_step, heun_step, a student's) or its name.
    times: the time grid, 1-D from 1 down to 0 (default: timesteps(steps, shift)); a custom
           grid (say, more steps at high noise) needs no new code here.
    guides: more guidance terms for `velocity` (history guidance)."""
    step = get_step(step) if isinstance(step, str) else step
    ts = timesteps(steps, shift, noise.device) if times is None else times.to(noise.device)
    if ts.dim() != 1 or len(ts) < 2 or (ts[1:] >= ts[:-1]).any():
        raise ValueError(f"times must be a strictly decreasing 1-D grid with >= 2 entries "
                         f"(from 1 to 0), got {ts.tolist()}")

    def f(x, t, **extra):  # the guided velocity, all conditioning bound
        return velocity(model, x, t, cond, uncond, cfg_scale, guides, **extra)

    x = noise
    for t, t_next in zip(ts[:-1], ts[1:]):
        x = step(f, x, t, t_next)
    return x
