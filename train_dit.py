"""Train the text-to-video DiT with flow matching: an image model first, then video.

Where it sits: tiny_data -> train_vae.py -> minivid.latents (latent cache) -> THIS -> sample.py.
- `--stage image` trains on the image latents (T = 1). Images are cheap (16 tokens vs 80 for a
  clip) and plentiful, so the model learns the text -> background / colour / shape / size /
  position mapping there, at a fifth of the cost per example.
- `--stage video --init-from <image ckpt>` fine-tunes on clip latents (T = 5 for the t4 VAE).
  Space and text are already learned; time enters only through RoPE in self-attention (see
  minivid/dit.py), so video training mostly has to learn motion. Measure the pay-off with
  `python -m minivid.dit_bench compare runs/dit_video/ckpt.pt runs/dit_scratch/ckpt.pt`.
One step: captions -> TextEncoder -> features; latents x0 and noise mixed at a random time t
-> DiT -> velocity; loss = |v - (noise - x0)|^2 (minivid/flow.py). The text encoder trains
jointly (one optimizer, one EMA); a tenth of the captions are replaced by "" so the same
network also learns the unconditional velocity that classifier-free guidance needs.

CPU (tiny preset, 2 cores; image then video, 9 minutes together; V = --vae runs/vae_t4/ckpt.pt
--latents runs/latents):
    python train_dit.py --stage image $V --out runs/dit_image --minutes 4.5       # ~4,200 steps
    python train_dit.py --stage video $V --out runs/dit_video --minutes 4.5 \
        --init-from runs/dit_image/ckpt.pt                                         # ~1,500 steps
One GPU:  python train_dit.py --preset small --batch-size 256 --compile ...      (bf16 autocast)
torchrun: torchrun --standalone --nproc_per_node 8 train_dit.py --preset base --batch-size 1024 ...
Resume:   the same command + --resume: the exact same trajectory (bitwise on CPU).
"""
import argparse
import contextlib
import os
import time
from dataclasses import asdict, replace

import numpy as np
import torch
from tqdm import tqdm

from minivid import flow
from minivid.checkpoint import (check_config, load_checkpoint, load_state_strict,
                                resume_checkpoint, save_checkpoint)
from minivid.common import (all_reduce_mean, autocast, check_batch, dist_cleanup, dist_setup,
                            measure_matmul_peak, print0, rank_rows, seed_all, shard_indices,
                            step_generator, wrap_ddp)
from minivid.data import save_grid
from minivid.dit import PRESETS as DIT_PRESETS
from minivid.latents import load_latents
from minivid.sampling import build_model, decode, sample_latents
from minivid.text import PAD, PRESETS as TEXT_PRESETS, build_vocab
from minivid.training import EMA, LossLog, NonFiniteGuard, StopFlag, lr_at
from minivid.vae import fingerprint, load_vae

p = argparse.ArgumentParser(description="Train the text-conditioned DiT on cached VAE latents.")
p.add_argument("--stage", choices=["image", "video"], required=True,
               help="image: train on <latents>/train_images.pt; video: on train_clips.pt")
p.add_argument("--vae", required=True, help="VAE checkpoint the latent cache was made with")
p.add_argument("--latents", default="runs/latents", help="latent cache folder (minivid.latents)")
p.add_argument("--out", default=None, help="run folder (default runs/dit_<stage>)")
p.add_argument("--init-from", default=None, help="start from this DiT checkpoint's EMA weights "
               "(e.g. the image stage's ckpt.pt for the video stage)")
p.add_argument("--resume", action="store_true", help="continue <out>/ckpt.pt exactly")
p.add_argument("--preset", default="tiny", choices=list(DIT_PRESETS), help="model size")
p.add_argument("--steps", type=int, default=None, help="optimizer steps (the lr schedule's length)")
p.add_argument("--minutes", type=float, default=None, help="wall-clock budget; alone, it sets "
               "--steps from the speed of the first steps")
p.add_argument("--batch-size", type=int, default=32, help="GLOBAL batch, split over ranks. 32 "
               "for the tiny CPU runs: a time budget buys ~1.7x the steps of batch 64, and more "
               "steps won (README)")
p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (AdamW)")
p.add_argument("--warmup", type=int, default=100, help="linear lr warmup steps")
p.add_argument("--ema-decay", type=float, default=0.999, help="EMA decay (after its warmup)")
p.add_argument("--caption-dropout", type=float, default=0.1, help="fraction of captions "
               "replaced by '' (the null caption that CFG needs)")
p.add_argument("--t-mean", type=float, default=1.0, help="training times t = sigmoid(N(mean, "
               "1)); > 0 trains more at high noise, where the layout is decided")
p.add_argument("--seed", type=int, default=0, help="seeds init, data order and noise")
p.add_argument("--device", default="auto", help="auto | cpu | cuda")
p.add_argument("--compile", action="store_true", help="torch.compile the DiT")
p.add_argument("--grad-checkpoint", action="store_true", help="recompute blocks in backward")
p.add_argument("--eval-every", type=int, default=100, help="val loss + checkpoint every N steps")
p.add_argument("--sample-every", type=int, default=1000, help="preview GIF every N steps (0: off)")
args = p.parse_args()
args.out = args.out or f"runs/dit_{args.stage}"
if args.steps is None and args.minutes is None:
    p.error("give --steps and/or --minutes")
# Flags that shape the trajectory: resume with the same ones to continue it exactly.
TRAJECTORY = ["stage", "latents", "init_from", "preset", "steps", "batch_size", "grad_accum",
              "lr", "warmup", "ema_decay", "caption_dropout", "t_mean", "seed"]

# ----------------------------------------------------------------------------- setup
dist = dist_setup(args.device)
device = dist.device
ckpt_path = os.path.join(args.out, "ckpt.pt")
resume = None
if args.resume:
    resume = resume_checkpoint(args.out, kind="dit")
    if resume["args"]["stage"] != args.stage:
        raise ValueError(f"--resume: {ckpt_path} is a --stage {resume['args']['stage']} run; "
                         "resume it with that stage, or use another --out for "
                         f"--stage {args.stage}")
    changed = [f"--{k.replace('_', '-')} {resume['args'].get(k)!r} -> {getattr(args, k)!r}"
               for k in TRAJECTORY if resume["args"].get(k) != getattr(args, k)]
    if changed:  # allowed (e.g. a lower --lr after a divergence), but say what it means
        print0("warning: --resume with changed flags (" + ", ".join(changed) + "): the run "
               "continues, but no longer on the exact trajectory of the original")
init = resume or (load_checkpoint(args.init_from, kind="dit") if args.init_from else None)

# The latents: (z - shift) / scale has unit variance, which the noise schedule assumes.
vae, _ = load_vae(args.vae)
vae.to(device)
vae_fp = fingerprint(vae)  # a cache encoded by another VAE is refused by load_latents
kind = "images" if args.stage == "image" else "clips"
paths = {s: os.path.join(args.latents, f"{s}_{kind}.pt") for s in ("train", "val")}
train = load_latents(paths["train"], vae_fp)
val = load_latents(paths["val"], vae_fp) if os.path.exists(paths["val"]) else None
if init is not None and init["extra"]["vae_fingerprint"] != vae_fp:
    raise ValueError(f"{args.init_from or ckpt_path} was trained on latents of the VAE "
                     f"{init['extra']['vae_fingerprint']}, but --vae {args.vae} is {vae_fp}; "
                     "use the same VAE (and its latent cache) for every stage")
shift, scale = train["shift"], train["scale"]
X = ((train["latents"].float() - shift) / scale)                      # (N, C, T, h, w)
N, C, T, h, w = X.shape

# The model: text encoder + DiT in one ModuleDict (one optimizer, one EMA, one state_dict).
# The vocabulary comes from the image AND clip captions, so that the video stage, which
# inherits the image stage's text encoder, already has words for motion and speed.
if init is not None:
    vocab = init["config"]["text"]["vocab"]
else:
    captions = list(train["captions"])
    other = os.path.join(args.latents, "train_clips.pt" if kind == "images" else "train_images.pt")
    if os.path.exists(other):
        captions += load_latents(other, vae_fp)["captions"]
    vocab = build_vocab(captions)
text_cfg = replace(TEXT_PRESETS[args.preset], vocab=vocab)
dit_cfg = replace(DIT_PRESETS[args.preset], in_channels=C, text_dim=text_cfg.dim,
                  grad_checkpoint=args.grad_checkpoint)
config = {"text": asdict(text_cfg), "dit": asdict(dit_cfg)}
if init is not None:  # e.g. a "small" checkpoint into a "tiny" run: name every differing field
    saved = init["config"]
    check_config(saved["text"], config["text"], "text encoder")
    check_config({**saved["dit"], "grad_checkpoint": args.grad_checkpoint}, config["dit"], "DiT")
seed_all(args.seed)  # same init on every rank (DDP would broadcast rank 0's anyway)
model = build_model(config).to(device)  # the raw handle: saved, EMA'd, sampled from
# The clean-frame flag is only used with conditioning frames (clip extension); frozen here,
# because DDP requires every trainable parameter to receive a gradient in every step.
model["dit"].clean.requires_grad_(False)
if init is not None:  # fine-tune from the EMA weights: that is the model we evaluated
    load_state_strict(model, init["model"] if resume else init["ema"]["shadow"], "DiT")
params = [q for q in model.parameters() if q.requires_grad]
opt = torch.optim.AdamW(params, lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
ema, log, guard = EMA(model, args.ema_decay), LossLog(), NonFiniteGuard()
step, epoch, position = 0, 0, 0  # position: examples of this epoch consumed, over all ranks
if resume:
    opt.load_state_dict(resume["optimizer"])
    ema.load_state_dict(resume["ema"])
    log.load_state_dict(resume["log"])
    step, epoch, position = resume["step"], resume["data"]["epoch"], resume["data"]["position"]
if args.compile:
    model["dit"].compile()  # in place: state_dict keys stay free of "_orig_mod."


class FlowLoss(torch.nn.Module):
    """What DDP wraps: latents + caption ids -> loss, so ONE backward all-reduces the
    gradients of the text encoder and of the DiT together."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x0, noise, t, ids, mask):
        """x0, noise: (B, C, T, h, w), t: (B,), ids/mask: (B, L) -> flow-matching loss."""
        text = self.model["text"](ids, mask)                           # (B, L, D)
        return flow.loss(self.model["dit"], x0, noise, t, text=text, text_mask=mask)


ddp = wrap_ddp(FlowLoss(model), dist)

# Tokenize every caption once; a batch is then cut to its longest caption.
ids_all, mask_all = model["text"].tokenizer(list(train["captions"]))  # (N, Lmax)
B = check_batch(args.batch_size, dist)  # per-rank batch
if B % args.grad_accum:
    raise ValueError(f"per-rank batch {B} does not split into --grad-accum {args.grad_accum}")
total = args.steps or (resume["schedule"]["total"] if resume else None)
peak = measure_matmul_peak(device)  # same run, same machine: an honest MFU denominator

# Validation: fixed examples, noise and times (own generator), so the curve is smooth and
# comparable between runs (used by `dit_bench compare`).
if val is not None:
    g = torch.Generator().manual_seed(1234)
    n_val = min(128, len(val["captions"]))
    val_x = ((val["latents"][:n_val].float() - shift) / scale).to(device)
    val_noise = torch.randn(val_x.shape, generator=g).to(device)
    val_t = torch.sigmoid(args.t_mean + torch.randn(n_val, generator=g)).to(device)
    val_ids, val_mask = model["text"].tokenizer(list(val["captions"][:n_val]))
    val_ids, val_mask = val_ids.to(device), val_mask.to(device)
    preview_prompts = list(val["captions"][:8])


@torch.no_grad()
def val_loss():
    total_loss = 0.0
    for i in range(0, n_val, 64):
        s = slice(i, i + 64)
        with autocast(device):
            text = model["text"](val_ids[s], val_mask[s])
            loss = flow.loss(model["dit"], val_x[s], val_noise[s], val_t[s], text=text,
                             text_mask=val_mask[s])
        total_loss += loss.item() * len(val_x[s])
    return total_loss / n_val


def save():
    """Rank 0 writes. No RNG state is saved: a step's randomness is a function of (seed, step)
    (see the loop), so a resumed run draws the same numbers from the step it resumes at."""
    if dist.is_main:
        save_checkpoint(ckpt_path, {
            "kind": "dit", "config": config, "model": model.state_dict(), "ema": ema.state_dict(),
            "optimizer": opt.state_dict(), "step": step, "args": vars(args),
            "data": {"epoch": epoch, "position": position}, "log": log.state_dict(),
            "schedule": {"total": total, "warmup": args.warmup, "lr": args.lr},
            "extra": {"vae": os.path.abspath(args.vae), "vae_fingerprint": vae_fp,
                      "latents": {k: os.path.abspath(v) for k, v in paths.items()},
                      "latent_shift": shift, "latent_scale": scale, "latent_hw": [h, w],
                      "latent_frames": T,
                      "frames": int(train["frames"]), "stage": args.stage}})
        log.plot(os.path.join(args.out, "loss.png"))


def preview():
    ema_model = build_model(config).to(device)
    ema.copy_to(ema_model)
    z = sample_latents(ema_model.eval(), preview_prompts, (C, T, h, w), steps=30, cfg=2.0)
    videos = decode(vae, z, shift, scale, int(train["frames"]))
    save_grid(os.path.join(args.out, f"samples_{step:06d}.gif"), videos, preview_prompts)


# ----------------------------------------------------------------------------- train
S = T * (h // dit_cfg.patch) * (w // dit_cfg.patch)  # DiT tokens per example
print0(f"{args.stage} stage: {N} examples of {tuple(X.shape[1:])} latents ({S} tokens), "
       f"{sum(q.numel() for q in params) / 1e6:.2f}M params, world size {dist.world_size}, "
       f"batch {args.batch_size}, peak matmul {peak / 1e9:.1f} GFLOP/s on {device}")
if step == 0 and val is not None and dist.is_main:
    log.append(0, val=val_loss())  # where the curve starts: init (or the --init-from model)
start, t_start = step, time.perf_counter()
tok_s = mfu = 0.0
stopping = False
timed = {"seconds": 0.0, "flops": 0.0, "tokens": 0}  # steps after the first 3 of this process
bar = tqdm(total=total, initial=step, disable=not dist.is_main, desc=args.stage)
with StopFlag() as stop:
    while total is None or step < total:
        t0 = time.perf_counter()
        lr = lr_at(step, args.warmup, total or 10**9, args.lr)
        for group in opt.param_groups:
            group["lr"] = lr
        order = shard_indices(N, dist, epoch, args.seed)  # a function of (seed, epoch) only
        if position // dist.world_size + B > len(order):  # epoch done: next permutation
            epoch, position = epoch + 1, 0
            order = shard_indices(N, dist, epoch, args.seed)
        idx = torch.tensor(order[position // dist.world_size:][:B])  # (B,) this rank's examples
        position += B * dist.world_size
        # The step's randomness, drawn for the GLOBAL batch from a generator seeded by (seed,
        # step); this rank keeps its rows. So 1 process and N take the same trajectory, and a
        # resumed run draws exactly what the uninterrupted one did (minivid.common).
        g_cpu = step_generator(args.seed, step)
        g_dev = step_generator(args.seed, step, device, stream=1)
        mine = rank_rows(dist)
        drop_all = torch.rand(args.batch_size, generator=g_cpu) < args.caption_dropout
        t_all = flow.sample_t(args.batch_size, mean=args.t_mean, generator=g_cpu)
        noise_all = torch.randn((args.batch_size, C, T, h, w), generator=g_dev, device=device)
        rand = [r.chunk(args.grad_accum) for r in (drop_all[mine], t_all[mine], noise_all[mine])]
        flops, loss_sum = 0.0, 0.0
        for k, (micro, drop, t, noise) in enumerate(zip(idx.chunk(args.grad_accum), *rand)):
            ids, mask = ids_all[micro].clone(), mask_all[micro].clone()   # (b, Lmax)
            ids[drop, 1:], mask[drop, 1:] = PAD, False  # dropped caption -> "": <bos> alone
            L = int(mask.sum(1).max())
            if args.compile:  # few distinct shapes, few recompilations: L up to a multiple of 8
                L = min(-(-L // 8) * 8, ids.shape[1])
            ids, mask = ids[:, :L].to(device), mask[:, :L].to(device)  # (b, L)
            # DDP all-reduces the gradients in backward; with accumulation only the last
            # micro-batch's backward needs to (no_sync skips it for the others).
            last = k == args.grad_accum - 1 or dist.world_size == 1
            with contextlib.nullcontext() if last else ddp.no_sync():
                with autocast(device):
                    loss = ddp(X[micro].to(device), noise, t.to(device), ids, mask)
                    loss = loss / args.grad_accum
                loss.backward()
            loss_sum += loss.detach()
            flops += len(micro) * (model["dit"].flops(T, h, w, L) + model["text"].flops(L))
        loss = all_reduce_mean(loss_sum, dist)  # every rank gets the same verdict below
        if guard.check(loss, step):
            # Clip the gradient norm at 1: one rare huge gradient cannot throw the weights far.
            grad_norm = torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
            # EMA warmup (as in timm / TF): early weights move fast, and a 0.999 average
            # would still hold much of the random init after a short run.
            ema.decay = min(args.ema_decay, (1 + step) / (10 + step))
            ema.update(model)
            log.append(step, loss=loss, grad_norm=grad_norm)
        opt.zero_grad(set_to_none=True)
        step += 1
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step - start > 3:
            timed["seconds"] += time.perf_counter() - t0
            timed["flops"] += all_reduce_mean(flops, dist) * dist.world_size
            timed["tokens"] += S * args.batch_size
        if step - start == 5:
            t_5 = time.perf_counter()  # the first steps are slow (allocation): time from here
        if total is None and step - start == max(args.warmup, 20):
            # --minutes alone: fix the schedule's length from the speed so far. At the end of
            # the warmup, because the warmup's lr does not depend on the length; 7% spare for
            # the val losses, previews and checkpoints on the way (they took ~5% in the
            # tiny runs: with 3% the budget ran out first and the lr never finished decaying).
            per_step = all_reduce_mean((time.perf_counter() - t_5) / (step - start - 5), dist)
            left = args.minutes * 60 - (time.perf_counter() - t_start)
            total = max(step + 1, step + int(0.93 * left / per_step))
            bar.total = total
        tok_s = timed["tokens"] / max(timed["seconds"], 1e-9)
        mfu = timed["flops"] / max(timed["seconds"], 1e-9) / (peak * dist.world_size)
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss):.4f}", lr=f"{lr:.2e}", tok_s=f"{tok_s:.0f}",
                        mfu=f"{mfu:.0%}")
        # Both collectives, so every rank takes the same branch (or one would wait forever).
        stopping = stop.should_stop(dist)
        out_of_time = bool(args.minutes) and all_reduce_mean(
            float(time.perf_counter() - t_start > args.minutes * 60), dist) > 0
        done = step == total or out_of_time
        periodic = (step % args.eval_every == 0 or done) and guard.in_a_row == 0
        if periodic and val is not None and dist.is_main:
            log.append(step, val=val_loss())
        if periodic or stopping:  # never mid-divergence: that keeps the last good checkpoint
            save()
        if dist.is_main and val is not None and args.sample_every and \
                (step % args.sample_every == 0 or done):
            preview()
        if stopping or out_of_time:
            break
bar.close()
if stopping:
    print0(f"{stop.signal or 'stop signal'}: saved {ckpt_path} at step {step}; "
           "continue with the same command + --resume")
minutes = (time.perf_counter() - t_start) / 60
print0(f"done: step {step}/{total} in {minutes:.2f} min, {guard.skipped} skipped steps; "
       f"train loss (last 50) {np.mean(log.series['loss']['value'][-50:]):.4f}; "
       f"{tok_s:.0f} tokens/s, {timed['flops'] / max(timed['seconds'], 1e-9) / 1e9:.1f} "
       f"GFLOP/s, MFU {mfu:.1%} of the measured {peak / 1e9:.1f} GFLOP/s matmul peak")
dist_cleanup()
