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

An extension teacher (train_extend.py: clip N+1 given the packed history of clips 1..N,
minivid/extend.py) is distilled on continuations: `Continuations` lays its bank out over the
long train clips and every history length, and gives each trajectory the history it continues.

    n, i = distillation.pick_segments(K, (1, 2, 4, 8), B)               # a jump per example
    loss = distillation.distill_loss(student, traj, n, i, text=f, text_mask=m)
    x0 = flow.sample(student, noise, dict(text=f, text_mask=m), None, 1.0, steps=2,
                     step=distillation.student_step)                  # exactly 2 DiT calls

    python distill.py --teacher runs/dit/ckpt.pt --out runs/distill          # CPU, tiny
    torchrun --standalone --nproc_per_node 8 distill.py --teacher ... --out ...  # multi-GPU
    OMP_NUM_THREADS=1 python -m pytest tests/test_05a_distillation.py -q     # the walkthrough
"""
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from minivid import extend, flow
from minivid.captions import strip_motion
from minivid.checkpoint import load_state_strict
from minivid.history import Context, noised_context

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


def distill_loss(student, traj, n, i, device=None, **inputs):
    """MSE between the student's average velocity u(x_t, t, d) and the teacher's,
    u* = (x_t - x_{t-d}) / d, on the jumps (n, i) of pick_segments, one per example.

    traj:   (K+1, B, ...) teacher trajectories; n, i: (B,) from pick_segments
    device: where the student runs (the trajectories may stay on the host: only the B picked
            jumps move); None: traj's device
    inputs: the CONDITIONAL inputs only (B rows, e.g. text and text_mask); guidance is
            already in the targets
    returns a scalar loss"""
    x_t, t, d, target = (a.to(device) for a in segment_targets(traj, n, i))
    u = student(x_t, t, d=d, **inputs)
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


# ----------------------------------------------------------------------------- the bank
# distill.py records the trajectories ONCE, for N train captions, before training: the bank.
def bank_noise(seed: int, shape, stream: int | None = None) -> torch.Tensor:
    """The bank's start points (host), from its own stream mixed from (seed, "bank"[, stream]):
    NOT torch.manual_seed(seed), which is what sampling and `evaluate` draw their noise from,
    so evaluation never starts from a noise tensor the student was trained on."""
    entropy = [seed, 0xBA4C] + ([] if stream is None else [stream])
    bank_seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])
    return torch.randn(shape, generator=torch.Generator().manual_seed(bank_seed))


@torch.no_grad()
def teacher_bank(teacher, ids, mask, noise, K: int, cfg: float, context=None, batch: int = 64,
                 desc: str = "teacher trajectories", progress: bool = True) -> torch.Tensor:
    """The GUIDED teacher's trajectories for N captions, `batch` at a time, kept on the host.

    teacher:   {"text": TextEncoder, "dit": DiT}, eval mode, on its device
    ids, mask: (N, L) the tokenized captions; noise: (N, C, T, h, w) the start points
    cfg:       the guidance scale folded into the student (the null caption is the other half)
    context:   None, or rows (a slice of 0..N-1) -> the history those rows continue (a
               Context on the device: an extension teacher; it conditions both halves)
    returns    (K+1, N, C, T, h, w)"""
    device = next(teacher["dit"].parameters()).device
    parts = []
    for s in tqdm(range(0, len(ids), batch), desc=desc, disable=not progress):
        r = slice(s, s + batch)
        m = mask[r].to(device)
        text = teacher["text"](ids[r].to(device), m)                          # (B, L, D)
        null, null_mask = teacher["text"].encode([""] * len(m), allow_empty=True,
                                                 length=m.shape[1])
        cond, uncond = dict(text=text, text_mask=m), dict(text=null, text_mask=null_mask)
        if context is not None:
            cond["cond"] = context(r)
        f = lambda x, t: flow.velocity(teacher["dit"], x, t, cond, uncond, cfg)  # noqa: E731
        parts.append(teacher_trajectories(f, noise[r].to(device), K).cpu())  # (K+1, B, ...)
    return torch.cat(parts, dim=1)


# ----------------------------------------------------------------------------- continuations
@dataclass
class Continuations:
    """An extension teacher's bank layout: trajectory j makes the clip after `hc[j]` clips of
    long train clip `clip[j]`, from the caption `captions[j]` (that clip's own).

    history: (M, C, 1 + 4 clips, h, w) the long clips' clean latents, and `noise` (same
             shape, drawn once): each context is noised to `tau` (M,) as sampling noises
             every history (extend.SAMPLE_NOISE; history.noised_context)
    clip, hc: (N,) long clip and history length (0 .. clips - 1) of each trajectory"""
    history: torch.Tensor
    noise: torch.Tensor
    tau: torch.Tensor
    clip: torch.Tensor
    hc: torch.Tensor
    captions: list[str]
    anchor: str = "coarse"     # where pack puts frame 0, as the teacher was trained
    per_piece: bool = False    # the teacher's history noise is per piece, the anchor clean

    @property
    def clips(self) -> int:
        """Clips per long clip: the history lengths are 0 .. clips - 1."""
        return (self.history.shape[2] - 1) // extend.NEW

    def rows(self, hc: int) -> torch.Tensor:
        """(N / clips,) the trajectories with hc clips of history: the bank of that length."""
        return torch.nonzero(self.hc == hc)[:, 0]

    def frames(self, hc: int) -> int:
        """Latent frames the teacher makes after hc clips: a first clip 5, a later one 4."""
        return extend.FIRST if hc == 0 else extend.NEW

    def context(self, rows, hc: int, device=None) -> Context | None:
        """The packed history of trajectories `rows`, all with hc clips of it (None: hc = 0)."""
        m = self.clip[rows]
        history, _ = extend.split_example(self.history[m], hc)          # (B, C, L, h, w)
        noise = self.noise[m][:, :, :history.shape[2]]
        tau = self.tau[m][0].item() if self.per_piece else self.tau[m]  # per piece: a float
        ctx = noised_context(history, noise, tau, "pack", anchor=self.anchor,
                             per_piece=self.per_piece)
        return None if ctx is None else ctx.to(device)


def continuations(cache: dict, order, n: int, seed: int, shift: float,
                  scale: float, anchor: str = "coarse", per_piece: bool = False) -> Continuations:
    """Lay n trajectories over the long clips of a latent cache (with clip_captions), taken in
    `order`: trajectory j continues long clip order[j // clips] after j % clips clips, so every
    history length gets n / clips of them. shift, scale: the teacher's latent normalisation."""
    history = (cache["latents"].float() - shift) / scale                  # (M, C, T, h, w) clean
    tau = torch.full((len(history),), extend.SAMPLE_NOISE)  # drawn once, like a sampled history
    noise = torch.randn(history.shape, generator=torch.Generator().manual_seed(seed + 1))
    clips = (history.shape[2] - 1) // extend.NEW
    if any(len(r) != clips - 1 for r in cache["clip_captions"]):
        raise ValueError("the latent cache has long clips without one caption per continuation "
                         "clip (clip_captions); make them with python -m minivid.world")
    clip = torch.tensor([order[(j // clips) % len(order)] for j in range(n)])  # (n,)
    hc = torch.arange(n) % clips                                               # (n,)
    captions = [([cache["captions"][i]] + cache["clip_captions"][i])[k]
                for i, k in zip(clip.tolist(), hc.tolist())]
    # a share of the continuations get the caption without motions (who is in it only), as in
    # train_extend.py: what one-prompt long videos give their later clips
    who_only = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < extend.P_WHO_ONLY
    captions = [strip_motion(c) if w and k else c
                for c, w, k in zip(captions, who_only.tolist(), hc.tolist())]
    return Continuations(history, noise, tau, clip, hc, captions, anchor, per_piece)
