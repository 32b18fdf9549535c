"""05a distillation: a few-step student regressed onto the teacher's ODE, on a 2-D mixture.

Concept: a flow model samples by integrating dx/dt = v(x, t) from noise (t = 1) to data
(t = 0) in ~30 small steps. One BIG Euler step fails: at t = 1 the velocity is
E[noise - x0 | x_1] = x_1 - E[x0], so a single step sends every noise draw to the mean of
the data, between the modes. Step distillation (minivid/distillation.py) records the
teacher's trajectories on a fine grid of K = 16 steps and trains a student u(x_t, t, d) to
predict the AVERAGE velocity of each jump of size d = 1/n the n-step sampler makes:
u* = (x_t - x_{t-d}) / d. Then x_{t-d} = x_t - d u(x_t, t, d) in one call, for n = 1, 2, 4, 8.
Guidance is folded in: the targets come from the guided teacher, so the student needs one
call per step, not two.

The teacher here is exact: the 2-D Gaussian mixture of tests/test_04c_flow.py, whose velocity
is known in closed form, per class (one mixture component = one class label) and
unconditionally (the whole mixture); its CFG-s velocity is v_u + s (v_c - v_u). The students
are small MLPs trained from scratch (there is no teacher network to copy here) for a few
hundred Adam steps; the zero-initialised step-size embedding that lets a real student start
as its teacher is checked on the DiT itself (test 2).
The walkthrough: trajectories and the jump grid -> student = teacher at init -> the mode
collapse of one teacher step vs the distilled student -> one jump of 2d = two jumps of d
-> guidance folded in -> n steps = n calls.

    OMP_NUM_THREADS=1 python -m pytest tests/test_05a_distillation.py -q     # -s: the numbers
"""
import dataclasses

import pytest
import torch
import torch.nn as nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from minivid import distillation, flow
from minivid.dit import DiT, DiTConfig, TimestepEmbedder
from test_04b_dit import C, H, W, make_dit, text_batch
from test_04c_flow import COVS, MEANS, WEIGHTS, gmm_posterior_and_velocity, gmm_velocity

K = 16                      # the teacher's fine grid
STEP_COUNTS = (1, 2, 4, 8)  # the distilled samplers
CFG = 2.0                   # guidance scale, fixed at distillation time


def class_velocities(x, t):
    """Exact velocity of each mixture component alone (= conditioned on its class label).
    x (B, 2), t (B,) -> (B, 3, 2). The math of test_09's docstring with p(k | x) = 1."""
    t = t[:, None, None]                                              # (B, 1, 1)
    A = (1 - t[..., None]) ** 2 * COVS + t[..., None] ** 2 * torch.eye(2, dtype=x.dtype)
    d = x[:, None, :] - (1 - t) * MEANS                               # (B, 3, 2)
    Ainv_d = torch.linalg.solve(A, d[..., None])[..., 0]              # (B, 3, 2)
    return t * Ainv_d - MEANS - (1 - t) * (COVS @ Ainv_d[..., None])[..., 0]


def guided_teacher(label, s=CFG):
    """The CFG-s teacher for classes label (B,): v_u + s (v_c - v_u), as flow.velocity does."""
    def f(x, t):
        v_c = class_velocities(x, t)[torch.arange(len(x)), label]    # (B, 2)
        v_u = gmm_velocity(x, t)
        return v_u + s * (v_c - v_u)
    return f


def mode_stats(x):
    """Fraction of samples per mode (nearest by posterior at t = 0) and the fraction ON a
    mode: within Mahalanobis distance 3 of some component (~99% of true mixture samples)."""
    post, _ = gmm_posterior_and_velocity(x, torch.zeros(len(x), dtype=x.dtype))
    fractions = torch.bincount(post.argmax(1), minlength=3).double() / len(x)
    dev = x[:, None, :] - MEANS                                       # (B, 3, 2)
    maha = (dev * torch.linalg.solve(COVS, dev[..., None])[..., 0]).sum(-1)  # (B, 3)
    return fractions, (maha.min(1).values < 9).double().mean().item()


class MLPStudent(nn.Module):
    """u(x, t, d, label): x, t, the step size d and an optional class label, each embedded
    and summed, then an MLP. As in the DiT, the d embedding's last layer starts at zero."""

    def __init__(self, classes=0, width=128):
        super().__init__()
        self.x_in = nn.Linear(2, width)
        self.t_embed = TimestepEmbedder(width, freq_dim=64)
        self.d_embed = TimestepEmbedder(width, freq_dim=64)
        nn.init.zeros_(self.d_embed.mlp[2].weight), nn.init.zeros_(self.d_embed.mlp[2].bias)
        self.label = nn.Embedding(classes, width) if classes else None
        self.body = nn.Sequential(nn.SiLU(), nn.Linear(width, width), nn.SiLU(),
                                  nn.Linear(width, width), nn.SiLU(), nn.Linear(width, 2))

    def forward(self, x, t, label=None, d=None):
        h = self.x_in(x) + self.t_embed(t)                                # (B, width)
        if label is not None:
            h = h + self.label(label)
        if d is not None:
            h = h + self.d_embed(d)
        return self.body(h)                                               # (B, 2)


def distill(f_teacher_for, classes=0, step_counts=STEP_COUNTS, steps=600, batch=512,
            pool=16384, seed=0):
    """Record a pool of teacher trajectories (Heun on the fine grid), then fit a student to
    random jumps from it with distillation.distill_loss."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    noise = torch.randn(pool, 2, dtype=torch.float64, generator=gen)
    label = torch.randint(classes, (pool,), generator=gen) if classes else None
    traj = distillation.teacher_trajectories(f_teacher_for(label), noise, K, flow.heun_step)
    traj = traj.float()                                                   # (K+1, pool, 2)
    student = MLPStudent(classes)
    opt = torch.optim.Adam(student.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        rows = torch.randint(pool, (batch,), generator=gen)
        cond = {} if label is None else {"label": label[rows]}
        n, i = distillation.pick_segments(K, step_counts, batch, gen)  # a jump per example
        loss = distillation.distill_loss(student, traj[:, rows], n, i, **cond)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return student.eval()


@pytest.fixture(scope="module")
def uncond_student():
    return distill(lambda label: gmm_velocity)


@pytest.fixture(scope="module")
def cfg_student():
    # also n = K = 16: the smallest jump, the teacher's own fine step (test 5 looks there)
    return distill(guided_teacher, classes=3, step_counts=STEP_COUNTS + (K,), seed=1)


def held_out(n=4000, seed=7, classes=False):
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, 2, generator=gen)
    return noise, torch.randint(3, (n,), generator=gen) if classes else None


def run_student(student, noise, n, **cond):
    with torch.no_grad():
        return flow.sample(student, noise, cond, None, 1.0, steps=n,
                           step=distillation.student_step).double()


# 1. The teacher's trajectories start at the noise and end on the data (mode fractions
#    within 0.03 of the weights, as the 16-step Heun sampler of test_09 does); the jumps
#    picked for training are exactly the ones the n-step samplers make; the target u* is the
#    slope that carries x_t onto the recorded x_{t-d}.
def test_01_trajectories_and_jump_grid():
    x, t = torch.randn(64, 2, dtype=torch.float64), torch.rand(64, dtype=torch.float64)
    post, v = gmm_posterior_and_velocity(x, t)                   # per-class math, checked
    torch.testing.assert_close((post[..., None] * class_velocities(x, t)).sum(1), v)

    calls = []
    def counted(x, t):
        calls.append(t.shape)
        return gmm_velocity(x, t)
    noise = torch.randn(4000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    traj = distillation.teacher_trajectories(counted, noise, K)   # Euler by default
    assert traj.shape == (K + 1, 4000, 2) and torch.equal(traj[0], noise)
    assert calls == [(4000,)] * K                                 # t arrives as (B,)
    traj = distillation.teacher_trajectories(gmm_velocity, noise, K, flow.heun_step)
    fractions, _ = mode_stats(traj[-1])
    torch.testing.assert_close(fractions, WEIGHTS, atol=0.03, rtol=0)

    gen = torch.Generator().manual_seed(1)
    n, i = distillation.pick_segments(K, STEP_COUNTS, 4000, gen)
    assert set(n.tolist()) == set(STEP_COUNTS)
    assert ((i % (K // n)) == 0).all() and (i + K // n <= K).all()
    for m in STEP_COUNTS:                                        # every jump of every sampler
        assert set(i[n == m].tolist()) == set(range(0, K, K // m))
    x_t, t, d, u = distillation.segment_targets(traj, n, i)
    torch.testing.assert_close(t, 1 - i.double() / K)
    torch.testing.assert_close(x_t - d[:, None] * u, traj[i + K // n, torch.arange(4000)])
    with pytest.raises(ValueError, match="divide K"):
        distillation.pick_segments(K, (1, 3), 8)


# 2. The student starts as the teacher: a DiT built with step_input=True and loaded with the
#    teacher's weights gives EXACTLY (torch.equal) the teacher's output for any step size d,
#    because the d embedding's last layer is zero; yet that layer gets a gradient, so
#    training wakes it up. A teacher given d, or mismatched weights, is refused, and a failed
#    load changes nothing. The FLOP formula counts the step-size MLP.
def test_02_student_starts_as_teacher():
    teacher = make_dit()                                           # random, all weights live
    student = DiT(DiTConfig(**distillation.student_config(dataclasses.asdict(teacher.cfg))))
    distillation.load_teacher(student, teacher.state_dict())
    text, mask = text_batch(3)
    x, t, frames = torch.randn(3, C, 2, H, W), torch.rand(3), torch.randn(3, C, 1, H, W)
    v = teacher(x, t, text, mask, cond=frames)
    for d in (torch.rand(3), torch.tensor([1.0, 0.5, 0.125]), None):
        assert torch.equal(student(x, t, text, mask, cond=frames, d=d), v)
    student(x, t, text, mask, d=torch.rand(3)).square().sum().backward()
    assert student.d_embed.mlp[2].weight.grad.abs().sum() > 0

    with pytest.raises(ValueError, match="step_input=True"):
        teacher(x, t, text, mask, d=torch.rand(3))
    with pytest.raises(ValueError, match=r"\(3,\)"):
        student(x, t, text, mask, d=torch.rand(1))
    before = {k: v.clone() for k, v in student.state_dict().items()}
    broken = {k: v for k, v in teacher.state_dict().items() if k != "final.bias"}
    with pytest.raises(ValueError, match="nothing was loaded"):
        distillation.load_teacher(student, {k: v + 1 for k, v in broken.items()})
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())
    with pytest.raises(ValueError, match="student checkpoint"):
        distillation.load_teacher(student, student.state_dict())

    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        student(torch.randn(1, C, 3, H, W), torch.rand(1), *text_batch(1, L=7), d=torch.rand(1))
    assert student.flops(T=3, H=H, W=W, L=7) == 3 * counter.get_total_flops()
    # The MLP students below share the property: untrained, d changes nothing.
    mlp, x2, t2 = MLPStudent(), torch.randn(5, 2), torch.rand(5)
    assert torch.equal(mlp(x2, t2, d=torch.rand(5)), mlp(x2, t2))


# 3. The point of distillation. One Euler step of the EXACT teacher sends every sample to
#    the mean of the mixture: no sample lies on a mode (Mahalanobis < 3) and the mode
#    fractions are wrong ([1, 0, 0]); two Euler steps are still off (0.68 / 0.19 / 0.13, 77%
#    on a mode). The distilled student, in 1 and in 2 calls, puts each mode's weight within
#    0.05 of the mixture's (measured max error ~0.02 over 4 training seeds) and > 85% of its
#    samples on a mode (measured 0.92 and 0.94; true samples 0.99; the misses are the noise
#    draws near a basin boundary, where the one-jump map is steepest).
def test_03_one_step_student_keeps_the_modes(uncond_student):
    noise, _ = held_out()
    euler1 = flow.sample(gmm_velocity, noise.double(), {}, steps=1)
    torch.testing.assert_close(euler1, (WEIGHTS[:, None] * MEANS).sum(0).expand(4000, 2))
    fractions, on_mode = mode_stats(euler1)
    assert on_mode == 0 and (fractions - WEIGHTS).abs().max() > 0.3
    fractions, on_mode = mode_stats(flow.sample(gmm_velocity, noise.double(), {}, steps=2))
    print(f"\nteacher, 2 Euler steps: fractions {fractions.numpy().round(3)}, on a mode {on_mode}")
    assert (fractions - WEIGHTS).abs().max() > 0.1
    for n in (1, 2):
        fractions, on_mode = mode_stats(run_student(uncond_student, noise, n))
        print(f"student, {n} step(s): fractions {fractions.numpy().round(3)}, on a mode {on_mode}")
        torch.testing.assert_close(fractions, WEIGHTS, atol=0.05, rtol=0)
        assert on_mode > 0.85


# 4. The core identity of a flow map: one jump of 2d lands where two jumps of d land, and
#    both land on the teacher's trajectory. Checked for d = 1/4 from t = 1 and from t = 1/2
#    on held-out noise; errors are mean distances relative to the mean length of the 2d
#    jump, tolerance 0.15 (measured 0.04 to 0.07); a 2d Euler step of the exact teacher
#    misses by 1.67 (from t = 1) and 0.29 (from t = 1/2), asserted > 2x the student's.
def test_04_one_jump_of_2d_is_two_jumps_of_d(uncond_student):
    noise, _ = held_out(2000, seed=8)
    traj = distillation.teacher_trajectories(gmm_velocity, noise.double(), K, flow.heun_step)
    traj = traj.float()
    d = 0.25
    for i in (0, K // 2):
        x, t = traj[i], torch.full((2000,), 1 - i / K)
        ref = traj[i + int(2 * d * K)]                                   # teacher at t - 2d
        def jump(x, t, d):
            return x - d * uncond_student(x, t, d=torch.full_like(t, d))
        with torch.no_grad():
            one = jump(x, t, 2 * d)
            two = jump(jump(x, t, d), t - d, d)
            euler = x - 2 * d * gmm_velocity(x.double(), t.double()).float()
        scale = (x - ref).norm(dim=1).mean()
        err = {k: ((a - b).norm(dim=1).mean() / scale).item() for k, (a, b) in
               {"one-two": (one, two), "one-teacher": (one, ref), "two-teacher": (two, ref),
                "euler-teacher": (euler, ref)}.items()}
        print(f"\nfrom t = {1 - i / K}: relative errors", {k: round(v, 3) for k, v in err.items()})
        assert max(err["one-two"], err["one-teacher"], err["two-teacher"]) < 0.15
        assert err["euler-teacher"] > 2 * err["one-teacher"]


# 5. Guidance folded in: the student distilled from the CFG-2 teacher, called ONCE per step
#    with the class label only, predicts at the smallest distilled jump (d = 1/16, the
#    teacher's fine step) the guided velocity v_u + 2 (v_c - v_u) at every grid time on the
#    teacher's trajectories: relative error < 0.1 (measured ~0.07, of which ~0.055 is the gap
#    between a jump's average slope and the slope at its start, which even a perfect student
#    keeps at d = 1/16), and clearly not the plain conditional v_c (error > 0.3, ~0.37).
#    Its 1- and 2-step samples land near the guided teacher's (mean distance < 0.05 x the
#    mean norm of the samples; measured 0.011 and 0.008).
def test_05_guidance_folded_in(cfg_student):
    noise, label = held_out(2000, seed=9, classes=True)
    traj = distillation.teacher_trajectories(guided_teacher(label), noise.double(), K,
                                             flow.heun_step)             # (K+1, 2000, 2)
    x = traj[:K].reshape(-1, 2)                                           # (K * 2000, 2)
    t = flow.timesteps(K)[:K].double().repeat_interleave(2000)            # (K * 2000,)
    labels = label.repeat(K)
    with torch.no_grad():
        u = cfg_student(x.float(), t.float(), label=labels, d=torch.full((len(t),), 1 / K))
    v_s = guided_teacher(labels)(x, t).float()
    v_c = class_velocities(x, t)[torch.arange(len(t)), labels].float()
    rel = lambda a, b: ((a - b).norm(dim=1).mean() / b.norm(dim=1).mean()).item()  # noqa: E731
    print(f"\nd = 1/16: error vs guided {rel(u, v_s):.3f}, vs conditional {rel(u, v_c):.3f}")
    assert rel(u, v_s) < 0.1 and rel(u, v_c) > 0.3

    calls = []
    def counted(x, t, **kw):
        calls.append(len(x))
        return cfg_student(x, t, **kw)
    for n in (1, 2):
        calls.clear()
        x = run_student(counted, noise, n, label=label)
        assert calls == [2000] * n                                     # no unconditional half
        err = ((x - traj[-1]).norm(dim=1).mean() / traj[-1].norm(dim=1).mean()).item()
        print(f"{n} step(s): relative distance to the guided teacher's samples {err:.3f}")
        assert err < 0.05


# 6. flow.sample with distillation.student_step: n steps are exactly n network calls, each
#    told its jump d = 1/n and its start time on the n-step grid.
def test_06_n_steps_n_calls():
    student, seen = MLPStudent(), []
    def counted(x, t, d=None):
        seen.append((t[0].item(), d[0].item(), d.shape))
        return student(x, t, d=d)
    for n in STEP_COUNTS:
        seen.clear()
        run_student(counted, torch.randn(5, 2), n)
        assert [s[0] for s in seen] == pytest.approx([1 - k / n for k in range(n)])
        assert all(s[1] == pytest.approx(1 / n) and s[2] == (5,) for s in seen)
