"""Device, seeding and the ONE distributed helper shared by every minivid script.

Where it sits: every training / sampling script starts with

    dist = dist_setup(args.device)          # one process, or one of N under torchrun
    seed_all(args.seed)                      # the same init on every rank
    model = Model(cfg).to(dist.device)       # keep this raw handle for saving
    ddp_model = wrap_ddp(model, dist)        # DDP only when world_size > 1
    ...                                      # each step:
    g = step_generator(args.seed, step)      # the step's randomness, for the GLOBAL batch
    noise = torch.randn(global_batch, ..., generator=g)[rank_rows(dist)]   # keep my rows
    dtype = pick_precision(dist.device, args.precision, bf16_pays_on_cpu=...)  # the policy
    with autocast(dist.device, dtype):       # bf16 where it pays, plain fp32 elsewhere
        loss = ddp_model(x, noise)
    print0(f"loss {all_reduce(loss.detach(), dist).item():.4f}")   # at log points only
    dist_cleanup()

The same script runs three ways without a single code change:

    python train_dit.py --device cpu                         # laptop, 1 process
    python train_dit.py                                      # one GPU ("auto" picks cuda)
    torchrun --standalone --nproc_per_node=8 train_dit.py    # 8 GPUs, DDP over NCCL
    torchrun --standalone --nproc_per_node=2 train_dit.py --device cpu   # 2 CPU procs, gloo

torchrun tells each process who it is through environment variables (RANK, LOCAL_RANK,
WORLD_SIZE, MASTER_ADDR, MASTER_PORT); we read them, exactly like nanoGPT / nanochat.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as tdist

# ----------------------------------------------------------------------------- device


def pick_device(name: str = "auto") -> torch.device:
    """Turn "auto" | "cpu" | "cuda" | "cuda:1" into a torch.device.

    "auto" means CUDA when a GPU is visible, else CPU. On CUDA we also allow TF32 for the
    float32 matmuls/convs that run outside autocast: Ampere+ tensor cores then use a 10-bit
    mantissa, ~8x faster, with no measurable effect on training
    (https://pytorch.org/docs/stable/notes/cuda.html#tensorfloat-32-tf32-on-ampere-and-later-devices).
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda'")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {name!r} requested but torch sees no GPU (torch {torch.__version__}); "
                "pass --device cpu, or install a CUDA build of torch")
        if hasattr(torch.backends.cuda.matmul, "fp32_precision"):  # torch >= 2.9
            torch.backends.cuda.matmul.fp32_precision = "tf32"
            torch.backends.cudnn.conv.fp32_precision = "tf32"
        else:  # the older switches, deprecated since 2.9
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
    return device


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX), read from Linux's
    /proc/cpuinfo. Without it torch emulates bf16 on CPU, several times slower than fp32."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:  # not Linux: assume emulated
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_precision(device: torch.device | str, flag: str = "auto",
                   bf16_pays_on_cpu: bool = False) -> torch.dtype:
    """THE precision policy: the dtype autocast runs matmuls in, for one model on one device.

    flag "fp32" / "bf16" forces it; "auto" decides by measurement, not habit:
    - CUDA: bf16. Tensor cores run bf16 many times faster than fp32, and bf16 keeps fp32's
      exponent range, so unlike fp16 it needs no loss scaler.
    - CPU: bf16 only where the caller measured that it pays (`bf16_pays_on_cpu`) AND the CPU
      has bf16 hardware. On this project's CPU (AVX512-BF16) a bf16 matmul runs at ~850
      GFLOP/s against ~205 for fp32 (512-1024 square), yet a whole training step also pays
      for the casts around every op: the VAE trains ~1.6x faster in bf16 (same PSNR), the
      `small` DiT (width 384) 1.84x, but the `tiny` DiT (width 128) only 0.84x: its matmuls
      are too small for the speed-up to beat the casts. So each trainer says which case it
      is in (train_vae.py: yes; train_dit.py: width >= 256).
    Weights and optimizer state stay fp32 either way; only the ops inside autocast change.
    """
    device = torch.device(device)
    if flag not in ("auto", "fp32", "bf16"):
        raise ValueError(f"precision {flag!r}: choose auto, fp32 or bf16")
    if flag == "auto":
        if device.type == "cuda":
            flag = "bf16"
        else:
            flag = "bf16" if bf16_pays_on_cpu and cpu_has_bf16() else "fp32"
    return torch.bfloat16 if flag == "bf16" else torch.float32


def autocast(device: torch.device | str, dtype: torch.dtype = torch.float32):
    """Mixed-precision context for `dtype` (from pick_precision); fp32 is a plain no-op."""
    device = torch.device(device)
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_all(seed: int) -> None:
    """Seed python `random`, numpy's global RNG and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)  # numpy only takes 32-bit seeds
    torch.manual_seed(seed)  # also seeds all CUDA devices


def sync_device(device: torch.device) -> None:
    """Wait for queued GPU work; CUDA calls are asynchronous, so timers need this."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_matmul_peak(device: torch.device | str, dtype: torch.dtype | None = None,
                        n: int | None = None, iters: int = 10) -> float:
    """Measure this device's achievable matmul FLOP/s by timing an (n, n) @ (n, n) matmul.

    Used for MFU (model FLOPs utilisation = achieved model FLOP/s / this peak). Measuring in
    the same run, instead of reading a spec sheet, makes MFU honest on any machine: a CPU, a
    throttled laptop GPU or an H100 all get a peak they can actually reach.
    One matmul of two (n, n) matrices costs 2 n^3 FLOPs (a multiply and an add per term).
    Pass the dtype the run computes in (pick_precision): MFU is only meaningful against the
    peak of the precision actually used. Defaults: bf16 with n = 8192 on CUDA, float32 on CPU;
    n = 512 on CPU. We report the best of 3 repeats so one hiccup from another process does not count.
    """
    device = torch.device(device)
    if dtype is None:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    if n is None:
        n = 8192 if device.type == "cuda" else 512
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b  # warm-up: the first call pays for kernel selection / allocation
    best = float("inf")
    for _ in range(3):
        sync_device(device)
        t0 = time.perf_counter()
        for _ in range(iters):
            a @ b
        sync_device(device)
        best = min(best, (time.perf_counter() - t0) / iters)
    return 2 * n**3 / best


# ----------------------------------------------------------------------------- distributed


@dataclass
class Dist:
    """Who this process is. A single process is simply rank 0 of world size 1."""
    rank: int = 0  # global index of this process, 0 .. world_size - 1
    local_rank: int = 0  # index on this machine; picks the GPU (cuda:local_rank)
    world_size: int = 1  # number of processes in total
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """Rank 0: the only process that logs and writes files."""
        return self.rank == 0


def dist_setup(device: str = "auto") -> Dist:
    """Start the process group when launched by torchrun, else return a 1-process Dist.

    torchrun sets RANK, LOCAL_RANK and WORLD_SIZE for every process it starts; plain
    `python script.py` sets none of them, and we fall back to one process. The backend is
    NCCL on CUDA (GPU-to-GPU over NVLink/InfiniBand) and gloo on CPU (plain TCP).
    """
    base = pick_device(device)
    if "RANK" not in os.environ:
        return Dist(device=base)
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    world_size = int(os.environ["WORLD_SIZE"])
    if base.type == "cuda":
        # One GPU per process; set_device makes plain "cuda" mean this process's GPU.
        base = torch.device("cuda", local_rank)
        torch.cuda.set_device(base)
        backend = "nccl"
    else:
        backend = "gloo"
    if not tdist.is_initialized():
        # init_method defaults to "env://": MASTER_ADDR / MASTER_PORT from the environment.
        tdist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                 device_id=base if backend == "nccl" else None)
    return Dist(rank=rank, local_rank=local_rank, world_size=world_size, device=base)


def dist_cleanup() -> None:
    """Tear down the process group (if any) and end the process; call it as the very last
    line of a script (a single process simply returns).

    The barrier first lets every rank arrive: a rank that tears down its connections while
    another still uses them can make gloo abort the other process at exit. Then a distributed
    process leaves with os._exit(0), after flushing its output: torch's C++ teardown of the
    process group at interpreter exit can abort a process whose work is all done and written
    ("terminate called without an active exception", seen about once in ten 2-process runs
    on a busy 2-core machine), and torchrun would then report the whole run as failed."""
    if tdist.is_initialized():
        tdist.barrier()
        tdist.destroy_process_group()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def print0(*args, **kwargs) -> None:
    """print() on rank 0 only, so an 8-GPU run does not print every line 8 times."""
    if int(os.environ.get("RANK", 0)) == 0:
        print(*args, **kwargs)


def all_reduce(value, dist: Dist, op: str = "mean"):
    """Combine a float or a tensor over all ranks ("mean", "sum" or "max"); returns the same
    kind it was given.

    Every rank must call this at the same point (it is a collective: it blocks until all
    ranks arrive), so the loops call it only at log points (training.Meter). With one process
    it returns `value` unchanged and costs nothing.
    """
    if op not in ("mean", "sum", "max"):
        raise ValueError(f"op {op!r}: choose mean, sum or max")
    if dist.world_size == 1:
        return value
    is_tensor = torch.is_tensor(value)
    # float64 so a sum of many ranks loses nothing; NCCL needs the tensor on the GPU.
    # copy=True: all_reduce works in place and must never touch the caller's tensor.
    t = torch.as_tensor(value).detach().to(dist.device, torch.float64, copy=True)
    tdist.all_reduce(t, op=tdist.ReduceOp.MAX if op == "max" else tdist.ReduceOp.SUM)
    if op == "mean":
        t /= dist.world_size
    if is_tensor:
        return t.to(value.device, value.dtype)
    return t.item()


def wrap_ddp(model: torch.nn.Module, dist: Dist, find_unused: bool = False) -> torch.nn.Module:
    """Wrap in DistributedDataParallel when world_size > 1; otherwise return `model` itself.

    DDP all-reduces gradients during backward so every rank takes the same step. Keep the
    raw `model` handle: save `model.state_dict()` (keys without the "module." prefix DDP
    adds), so checkpoints load the same whether they came from 1 or 64 processes.
    find_unused: some steps leave some parameters out (clip extension: a step without coarse
    history tokens never touches their embeddings); DDP then looks for them every step.
    """
    if dist.world_size == 1:
        return model
    from torch.nn.parallel import DistributedDataParallel as DDP
    for q in model.parameters():
        if q.requires_grad:
            q.register_hook(_standard_strides)
    device_ids = [dist.local_rank] if dist.device.type == "cuda" else None
    return DDP(model, device_ids=device_ids, gradient_as_bucket_view=True,
               find_unused_parameters=find_unused)


def _standard_strides(grad: torch.Tensor) -> torch.Tensor:
    """The same gradient, viewed with the standard row-major strides (free: no copy).

    Some CPU kernels (oneDNN's weight gradients of 1x1 and depthwise convs) return contiguous
    gradients whose strides differ from the weight's in dimensions of size 1, e.g. (256, 1,
    256, 256) for a (1024, 256, 1, 1) weight: the same numbers in the same order, since a
    size-1 dimension is never stepped along. DDP compares strides exactly, then copies every
    such gradient into its bucket and warns "Grad strides do not match bucket view strides"
    on every step. Re-viewing it first costs nothing and keeps the gradient a bucket view.
    """
    if not grad.is_contiguous():
        return grad
    strides, step = [], 1
    for size in reversed(grad.shape):
        strides.insert(0, step)
        step *= size
    return grad if list(grad.stride()) == strides else grad.as_strided(grad.shape, strides)


def check_batch(global_batch: int, dist: Dist) -> int:
    """Check the global batch splits evenly over ranks; return the per-rank batch.

    We keep the *global* batch as the flag (`--batch-size`), so the optimisation is the same on
    1 or 8 processes; each rank then takes global_batch / world_size examples per step.
    """
    if global_batch < 1 or global_batch % dist.world_size != 0:
        ws = dist.world_size
        fix = max(ws, round(global_batch / ws) * ws)
        raise ValueError(
            f"global batch {global_batch} does not split over world size {ws}; "
            f"pass a batch that is a multiple of {ws}, e.g. --batch-size {fix}, "
            f"or launch with a --nproc_per_node that divides {global_batch}")
    return global_batch // dist.world_size


def step_generator(seed: int, step: int, device: torch.device | str = "cpu",
                   stream: int = 0) -> torch.Generator:
    """A random generator seeded by (seed, step, stream): all the randomness of one step.

    The trick that makes runs reproducible across process counts and restarts. Every rank
    draws the noise, times and dropout of the WHOLE global batch from this generator, then
    keeps its own rows with rank_rows (the same rows training.batch_indices gives it data for). So
    example i of step s gets the same numbers whether 1 or 8 processes share the batch, and
    a resumed run continues the exact trajectory without restoring any RNG state: step s
    draws what it would have drawn anyway. The price, drawing world_size times more random
    numbers than a rank uses, is small next to the model's forward pass.
    `stream` separates independent draws of one step (say, CPU-side indices and on-device
    noise); the three numbers are mixed by numpy's SeedSequence, so nearby seeds and steps
    still give unrelated streams. Note that a CUDA generator draws other numbers than a CPU
    one with the same seed: runs are reproducible per device type.
    """
    mixed = np.random.SeedSequence([seed, step, stream]).generate_state(1, np.uint64)[0]
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(mixed))
    return g


def rank_rows(dist: Dist) -> slice:
    """This rank's rows of a tensor drawn for the whole global batch: rows rank, rank + W, ...

    It matches training.batch_indices, which deals the global batch out in the same way: the
    j-th example of rank r is example r + j * world_size of the global batch.
    """
    return slice(dist.rank, None, dist.world_size)
