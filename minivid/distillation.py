"""Step distillation: a student that samples in 1, 2, 4 or 8 network calls instead of ~30.

Where it sits: after train_dit.py (a trained teacher DiT), before sample.py (which then
samples the student in a few steps). distill.py runs the loop; this file is the method,
apart from any network: it takes the teacher and the student as callables.

The method: teacher-trajectory regression with a step-size input ("flow-map" distillation).
Knowledge distillation of the sampler (Luhman & Luhman 2021, https://arxiv.org/abs/2101.02388)
regresses a one-step student onto the end points of the teacher's ODE; giving the student
the step size d as an input, as shortcut models do (Frans et al. 2024,
https://arxiv.org/abs/2410.12557), lets one network take jumps of any size in the distilled
set, so the same weights sample in 1, 2, 4 or 8 steps.

1. Teacher trajectories. Integrate the teacher's GUIDED velocity (classifier-free guidance at
   a scale s fixed now, at distillation time) from noise on the fine grid t_k = 1 - k/K,
   k = 0..K (K a power of two, e.g. 16), keeping x at every grid time: (K+1, B, ...).
2. Targets. A jump of size d = 1/n starting at grid index i (a multiple of K/n, so it is a
   jump the n-step sampler really makes) goes from x_t to x_{t-d}, both recorded. Its
   AVERAGE velocity is u* = (x_t - x_{t-d}) / d; the student predicts u(x_t, t, d) and the
   loss is MSE(u, u*). One student step is then x_{t-d} = x_t - d * u(x_t, t, d).
   (A plain velocity model is the d -> 0 limit: u is the instantaneous v. For a big jump the
   best constant slope differs from v at the start, which is why one Euler step of the
   teacher lands on the average of all data, a blur, and the student does not.)
3. Guidance is folded in: the targets came from the guided teacher, so the student is called
   ONCE per step with the conditional inputs only, no unconditional half.
4. Start from the teacher: the student is the teacher's DiT plus a step-size embedding whose
   last layer is zero (minivid/dit.py, step_input=True), so at step 0 it is exactly the
   teacher's conditional velocity, and only the big-jump correction must be learnt.

Why this method: no Jacobian-vector product (consistency / MeanFlow), no critic (adversarial
or distribution matching), no bootstrapping chain of students (progressive distillation);
the whole loss is one MSE against recorded numbers. The price: teacher trajectories cost K
(Euler) or 2K - 1 (Heun) guided teacher calls per sample, and the student can only be as
good as the teacher's K-step ODE solution.

    loss = distillation.distill_loss(student, traj, step_counts=(1, 2, 4, 8), text=f, text_mask=m)
    x0 = flow.sample(student, noise, dict(text=f, text_mask=m), None, 1.0, steps=2,
                     step=distillation.student_step)                  # exactly 2 DiT calls

    python distill.py --teacher runs/dit/ckpt.pt --out runs/distill          # CPU, tiny
    torchrun --standalone --nproc_per_node 8 distill.py --teacher ... --out ...  # multi-GPU
    OMP_NUM_THREADS=1 python -m pytest tests/test_14_distillation.py -q     # the walkthrough
"""
import torch
import torch.nn.functional as F

from minivid import flow
from minivid.checkpoint import load_state_strict

STEP_KEYS = "d_embed."  # the only weights a student has and its teacher lacks


@torch.no_grad()
def teacher_trajectories(f_teacher, noise, K: int = 16, step=flow.euler_step):
    """Run the teacher's ODE from noise on the fine grid t = 1, 1 - 1/K, ..., 0.

    f_teacher: (x (B, ...), t (B,)) -> guided velocity (B, ...), conditioning bound, e.g.
               lambda x, t: flow.velocity(dit, x, t, cond, uncond, cfg_scale)
    noise:     (B, ...) the start points (t = 1)
    step:      a flow step function on the fine grid (euler_step: K calls; heun_step: 2K - 1)
    returns    (K+1, B, ...) x at every grid time: [0] is the noise, [K] the teacher's sample
    """
    B = noise.shape[0]
    f = lambda x, t: f_teacher(x, t.expand(B))  # noqa: E731  (steps pass t as a 0-dim grid time)
    ts = flow.timesteps(K, device=noise.device)  # (K+1,) uniform: t_k = 1 - k / K
    xs = [noise]
    for t, t_next in zip(ts[:-1], ts[1:]):
        xs.append(step(f, xs[-1], t, t_next))
    return torch.stack(xs)                       # (K+1, B, ...)


def pick_segments(K: int, step_counts, B: int, generator=None, device=None):
    """For each of B examples: a step count n from step_counts and a start index i on the
    fine grid that the n-step sampler visits (a multiple of K/n). The jump runs from grid
    index i (t = 1 - i/K) to i + K/n (t - d, d = 1/n).

    returns n (B,) long, i (B,) long"""
    counts = torch.tensor(step_counts, device=device)
    if (K % counts).any():
        raise ValueError(f"step_counts {list(step_counts)} must all divide K = {K}; use "
                         "powers of two up to K (e.g. K = 16, step counts 1, 2, 4, 8)")
    n = counts[torch.randint(len(counts), (B,), generator=generator).to(device)]  # (B,)
    # which of the n jumps: uniform in 0..n-1, drawn as floor(n * U) so one draw serves all n
    which = (torch.rand(B, generator=generator).to(device) * n).long()           # (B,)
    return n, which * (K // n)


def segment_targets(traj, n, i):
    """The recorded jumps: start point, time, step size and average-velocity target.

    traj: (K+1, B, ...) from teacher_trajectories; n, i: (B,) from pick_segments
    returns x_t (B, ...), t (B,), d (B,), u* = (x_t - x_{t-d}) / d (B, ...)"""
    K, B = traj.shape[0] - 1, traj.shape[1]
    rows = torch.arange(B, device=traj.device)
    x_t, x_next = traj[i, rows], traj[i + K // n, rows]                   # (B, ...) each
    t, d = 1 - i.to(traj.dtype) / K, 1 / n.to(traj.dtype)                # (B,) each
    return x_t, t, d, (x_t - x_next) / d.view(-1, *[1] * (x_t.dim() - 1))


def distill_loss(student, traj, step_counts=(1, 2, 4, 8), generator=None, **cond):
    """MSE between the student's average velocity u(x_t, t, d) and the teacher's, u*, on one
    random jump per example. cond: the CONDITIONAL inputs only (B rows, e.g. text and
    text_mask); guidance is already in the targets.

    traj: (K+1, B, ...) teacher trajectories; returns a scalar loss."""
    n, i = pick_segments(traj.shape[0] - 1, step_counts, traj.shape[1], generator, traj.device)
    x_t, t, d, target = segment_targets(traj, n, i)
    u = student(x_t, t, d=d, **cond)
    return F.mse_loss(u.float(), target.float())


def student_step(f, x, t, t_next):
    """One student jump for flow.sample: x + (t_next - t) * u(x, t, d = t - t_next).
    One network call; give flow.sample uncond=None (guidance is in the student)."""
    return x + (t_next - t) * f(x, t, d=(t - t_next).expand(x.shape[0]))


def student_config(teacher_config: dict) -> dict:
    """The student's DiT config: the teacher's, plus the step-size input."""
    return {**teacher_config, "step_input": True}


def load_teacher(student: torch.nn.Module, teacher_state: dict) -> None:
    """Copy a teacher's weights into a freshly built student, all or nothing.

    Every student weight must come from the teacher except the step-size embedding
    (STEP_KEYS), which keeps its zero-initialised last layer, so the student starts as the
    teacher exactly. Any other mismatch raises (minivid.checkpoint.load_state_strict) and
    leaves the student untouched."""
    if any(k.startswith(STEP_KEYS) for k in teacher_state):
        raise ValueError("the teacher weights already have a step-size embedding (d_embed): "
                         "that is a student checkpoint; give the teacher's (train_dit.py) "
                         "checkpoint, or load a student with checkpoint.load_state_strict")
    own = {k: v for k, v in student.state_dict().items() if k.startswith(STEP_KEYS)}
    if not own:
        raise ValueError("the student has no step-size embedding; build it from "
                         "student_config(teacher_config) (DiTConfig.step_input=True)")
    load_state_strict(student, {**teacher_state, **own}, "teacher")
