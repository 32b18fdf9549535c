"""Train the text-to-video DiT with flow matching: an image model first, then video.

Where it sits: tiny_data -> train_vae.py -> minivid.latents (latent cache) -> THIS -> sample.py.
- `--stage image` trains on the image latents (T = 1). Images are cheap (16 tokens vs 80 for a
  clip) and plentiful, so the model learns the text -> background / colour / shape / size /
  position mapping there, at a fifth of the cost per example.
- `--stage video --init-from <image ckpt>` fine-tunes on clip latents (T = 5 for the t4 VAE).
  Space and text are already learned; frames are told apart by RoPE in self-attention and an
  absolute frame code that is zero for frame 0 (minivid/dit.py), so frame 0 IS the image model
  and video training mostly has to learn motion. Measure the pay-off with
  `python -m minivid.evaluate compare runs/dit_video/ckpt.pt runs/dit_scratch/ckpt.pt`.
- `--stage extend --init-from <video ckpt>` teaches continuation on the long clips (129
  frames, 33 latent frames): each step draws a history of 0..7 clips and a context strategy
  (minivid/extend.py: pack, window or full), the clean history goes in front of the noisy
  next clip, the loss falls on the new clip only. History 0 is an ordinary first clip, so the
  same model still starts videos. Adds the coarse context kernels (initialised from the full
  patch embedding) and trains the clean-frame flag.
One step (the loop below): captions -> TextEncoder; latents x0 and noise mixed at a random time
t -> DiT -> velocity; loss = |v - (noise - x0)|^2 (minivid/flow.py, via minivid/t2v.FlowLoss).
The text encoder trains jointly (one optimizer, one EMA); a tenth of the captions are replaced
by "" so the same network also learns the unconditional velocity that guidance needs.

CPU (tiny preset, 2 cores; image then video, 9 minutes together; V = --vae runs/vae_t4/ckpt.pt
--latents runs/latents):
    python train_dit.py --stage image $V --out runs/dit_image --minutes 4.5
    python train_dit.py --stage video $V --out runs/dit_video --minutes 4.5 \
        --init-from runs/dit_image/ckpt.pt
One GPU:  python train_dit.py --preset small --batch-size 256 --compile ...      (bf16 autocast)
torchrun: torchrun --standalone --nproc_per_node 8 train_dit.py --preset base --batch-size 1024 ...
Resume:   the same command + --resume: the exact same trajectory (bitwise on CPU).
"""
import argparse
import contextlib
import json
import os
from dataclasses import asdict

import numpy as np
import torch
from tqdm import tqdm

from minivid import extend, flow
from minivid.captions import strip_motion
from minivid.checkpoint import (check_config, load_checkpoint, load_state_strict, restore_run,
                                resume_run, save_run)
from minivid.common import (autocast, check_batch, dist_cleanup, dist_setup, measure_matmul_peak,
                            pick_precision, print0, rank_rows, seed_all, step_generator, wrap_ddp)
from minivid.data import save_grid
from minivid.dit import PRESETS as DIT_PRESETS, DiTConfig
from minivid.latents import decode_latents, load_latents
from minivid.sampling import sample_latents
from minivid.t2v import FlowLoss, build_model, make_config
from minivid.text import PAD, build_vocab
from minivid.training import (EMA, LossLog, Meter, NonFiniteGuard, StepBudget, StopFlag,
                              Throughput, adamw, batch_indices, clip_and_step, lr_at, set_lr)
from minivid.vae import fingerprint, load_vae

p = argparse.ArgumentParser(description="Train the text-conditioned DiT on cached VAE latents.",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--stage", choices=["image", "video", "extend"], required=True,
               help="image: train on <latents>/train_images.pt; video: on train_clips.pt; "
               "extend: continue histories of train_long.pt (needs --init-from a video model)")
p.add_argument("--vae", required=True, help="VAE checkpoint the latent cache was made with")
p.add_argument("--latents", default="runs/latents", help="latent cache folder (minivid.latents)")
p.add_argument("--out", default=None, help="run folder (default runs/dit_<stage>)")
p.add_argument("--init-from", default=None, help="start from this DiT checkpoint's EMA weights "
               "(e.g. the image stage's ckpt.pt for the video stage)")
p.add_argument("--resume", action="store_true", help="continue <out>/ckpt.pt exactly")
p.add_argument("--captions", default=None, help="train on these captions instead of the cache's:"
               " a JSONL manifest with one row per train item, in the cache's order (e.g. "
               "`python -m minivid.captioner caption` or `relabel` output; the caption experiment)")
p.add_argument("--preset", default="tiny", choices=list(DIT_PRESETS), help="model size")
p.add_argument("--steps", type=int, default=None, help="optimizer steps (the lr schedule's "
               "length); wins over --minutes")
p.add_argument("--minutes", type=float, default=None, help="wall-clock budget of the loop: "
               "turned into a step count ONCE, from the speed of steps 10-50")
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
p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="autocast "
               "dtype; auto: bf16 on CUDA, and on CPU for width >= 256 only (common.pick_precision)")
p.add_argument("--compile", action="store_true", help="torch.compile the DiT")
p.add_argument("--grad-checkpoint", action="store_true", help="recompute blocks in backward "
               "(less memory, ~1/3 more compute)")
p.add_argument("--log-every", type=int, default=10, help="steps between log points: the only "
               "steps where the ranks meet (one all-reduce) and the host reads the loss")
p.add_argument("--eval-every", type=int, default=100, help="val loss + checkpoint every N steps")
p.add_argument("--sample-every", type=int, default=1000, help="preview GIF every N steps (0: off)")
args = p.parse_args()
args.out = args.out or (f"runs/dit_{args.stage}" if args.stage != "extend" else "runs/extend")
if args.stage == "extend" and not (args.init_from or args.resume):
    p.error("--stage extend continues a video model: pass --init-from runs/dit_video/ckpt.pt")
for name in ("log_every", "eval_every", "batch_size", "grad_accum"):
    if getattr(args, name) < 1:
        p.error(f"--{name.replace('_', '-')} must be >= 1")
# Flags that shape the trajectory: resume with the same ones to continue it exactly.
TRAJECTORY = ["stage", "latents", "captions", "init_from", "preset", "steps", "batch_size", "grad_accum",
              "lr", "warmup", "ema_decay", "caption_dropout", "t_mean", "seed", "precision"]

# ----------------------------------------------------------------------------- setup
dist = dist_setup(args.device)
device = dist.device
ckpt_path = os.path.join(args.out, "ckpt.pt")
resume = resume_run(args, "dit", TRAJECTORY)
if resume is not None:
    if resume["extra"].get("distilled"):
        raise ValueError(f"--resume: {ckpt_path} is a distilled student (distill.py); resume "
                         "it with distill.py --resume, or use another --out")
    if resume["args"]["stage"] != args.stage:
        raise ValueError(f"--resume: {ckpt_path} is a --stage {resume['args']['stage']} run; "
                         "resume it with that stage, or use another --out for "
                         f"--stage {args.stage}")
init = resume or (load_checkpoint(args.init_from, kind="dit") if args.init_from else None)
if args.stage == "extend" and resume is None and init["extra"].get("stage") not in ("video", "extend"):
    raise ValueError(f"--init-from {args.init_from} is a --stage {init['extra'].get('stage')} model; "
                     "clip extension continues a VIDEO model: --init-from runs/dit_video/ckpt.pt")
if init is not None and init["extra"].get("distilled"):
    raise ValueError(f"--init-from {args.init_from}: a distilled student; start from the "
                     "train_dit.py checkpoint it was distilled from")
budget = StepBudget(args.steps, args.minutes, resume and resume["schedule"])

# The latents: (z - shift) / scale has unit variance, which the noise schedule assumes.
vae, _ = load_vae(args.vae)
vae.to(device)
vae_fp = fingerprint(vae)  # a cache encoded by another VAE is refused by load_latents
kind = {"image": "images", "video": "clips", "extend": "long"}[args.stage]
paths = {s: os.path.join(args.latents, f"{s}_{kind}.pt") for s in ("train", "val")}
train = load_latents(paths["train"], vae_fp)
val = load_latents(paths["val"], vae_fp) if os.path.exists(paths["val"]) else None
if init is not None and init["extra"]["vae_fingerprint"] != vae_fp:
    raise ValueError(f"{args.init_from or ckpt_path} was trained on latents of the VAE "
                     f"{init['extra']['vae_fingerprint']}, but --vae {args.vae} is {vae_fp}; "
                     "use the same VAE (and its latent cache) for every stage")
if args.captions:  # the same clips, captioned another way (README: the caption experiment)
    if args.stage == "extend":
        raise ValueError("--captions applies to the image and video stages, not extend")
    with open(args.captions) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    source = train.get("source", "")
    if os.path.exists(source):  # the same media, in the same order, or the pairs are wrong
        with open(source) as f:
            media = [json.loads(line)["media"] for line in f if line.strip()]
        mine = [os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(args.captions)),
                                              r["media"])) for r in rows]
        theirs = [os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(source)), m))
                  for m in media]
        if mine != theirs:
            raise ValueError(f"--captions {args.captions}: its media do not match the cache's "
                             f"source {source} row by row; caption that manifest "
                             f"(python -m minivid.captioner caption --data {source} ...)")
    if len(rows) != len(train["captions"]):
        raise ValueError(f"--captions {args.captions} has {len(rows)} rows, the cache "
                         f"{paths['train']} {len(train['captions'])}")
    train["captions"] = [r["caption"] for r in rows]
shift, scale = train["shift"], train["scale"]
X = ((train["latents"].float() - shift) / scale)                      # (N, C, T, h, w)
N, C, T, h, w = X.shape
EXTEND = args.stage == "extend"
if EXTEND:  # caption of clip m of long clip i at row i * CLIPS + m (clip 0: with positions)
    CLIPS = (T - 1) // extend.NEW
    if (T - 1) % extend.NEW or CLIPS < 2:
        raise ValueError(f"{paths['train']}: long clips of {T} latent frames; extension needs "
                         "1 + 4 k with k >= 2 (make them with python -m minivid.world)")
    bad = [i for i, r in enumerate(train["clip_captions"]) if len(r) != CLIPS - 1]
    if bad:
        raise ValueError(f"{paths['train']}: long clip {bad[0]} has {len(train['clip_captions'][bad[0]])}"
                         f" per-clip captions, expected {CLIPS - 1} (one per continuation clip); "
                         "make long clips with python -m minivid.world, which writes them")
    long_captions = [c for first, rest in zip(train["captions"], train["clip_captions"])
                     for c in [first, *rest]]
    # ... and at row N * CLIPS + i * CLIPS + m the same caption without motions: who is in the
    # clip only, the history decides how they move (what a one-prompt long video gives later
    # clips, minivid/extend.clip_prompts)
    long_captions += [strip_motion(c) for c in long_captions]

# The model: text encoder + DiT in one ModuleDict (one optimizer, one EMA, one state_dict).
# The vocabulary comes from the image AND clip captions, so that the video stage, which
# inherits the image stage's text encoder, already has words for motion and speed.
if init is not None:
    vocab = init["config"]["text"]["vocab"]
else:
    captions = list(train["captions"])
    other = os.path.join(args.latents, "train_clips.pt" if kind == "images" else "train_images.pt")
    if os.path.exists(other) and not args.captions:  # other captions: only their own words
        captions += load_latents(other, vae_fp)["captions"]
    vocab = build_vocab(captions)
config = make_config(args.preset, vocab, C, args.grad_checkpoint)
if EXTEND:  # FramePack-style coarse kernels for old history (new weights, see below)
    config["dit"]["context_kernels"] = tuple(k for k, _ in extend.PACK if k > 1)
if init is not None:  # e.g. a "small" checkpoint into a "tiny" run: name every differing field
    saved = init["config"]
    check_config(saved["text"], config["text"], "text encoder")
    saved_dit = asdict(DiTConfig(**saved["dit"]))  # fields added since it was saved: defaults
    if EXTEND:  # a video model gains the coarse kernels here; anything else must match
        saved_dit["context_kernels"] = config["dit"]["context_kernels"]
    check_config({**saved_dit, "grad_checkpoint": args.grad_checkpoint}, config["dit"], "DiT")
seed_all(args.seed)  # same init on every rank (DDP would broadcast rank 0's anyway)
model = build_model(config).to(device)  # the raw handle: saved, EMA'd, sampled from
# The clean-frame flag is only used with conditioning frames (clip extension): frozen in the
# image and video stages, because DDP requires every trainable parameter to get a gradient.
model["dit"].clean.requires_grad_(EXTEND)
params = [q for q in model.parameters() if q.requires_grad]
opt = adamw(params, args.lr, betas=(0.9, 0.99))
ema, log, guard, meter = EMA(model, args.ema_decay), LossLog(), NonFiniteGuard(), Meter()
step = 0
if resume:
    step = restore_run(resume, model, opt, log, ema)
elif init is not None:  # fine-tune from the EMA weights: that is the model we evaluated
    weights = dict(init["ema"]["shadow"])
    new = [k for k in model.state_dict() if k not in weights and ".ctx_embed." in k]
    if EXTEND and new:  # a video model has no coarse kernels yet: start them from x_embed
        weights.update({k: model.state_dict()[k] for k in new})
    load_state_strict(model, weights, "DiT")
    if EXTEND and new:
        model["dit"].init_context_kernels()
    ema = EMA(model, args.ema_decay)
if args.compile:
    model["dit"].compile()  # in place: state_dict keys stay free of "_orig_mod."
loss_fn = FlowLoss(model)
ddp = wrap_ddp(loss_fn, dist, find_unused=EXTEND)
dtype = pick_precision(device, args.precision, bf16_pays_on_cpu=model["dit"].cfg.dim >= 256)
peak = measure_matmul_peak(device, dtype)  # same run, same precision: an honest MFU denominator

# Tokenize every caption once; a batch is then cut to its longest caption.
ids_all, mask_all = model["text"].tokenizer(long_captions if EXTEND else list(train["captions"]))
B = check_batch(args.batch_size, dist)  # per-rank batch
if B % args.grad_accum:
    raise ValueError(f"per-rank batch {B} does not split into --grad-accum {args.grad_accum}")

# Validation: fixed examples, noise and times (own generator), so the curve is smooth and
# comparable between runs (used by `evaluate compare`).
if val is not None:
    g = torch.Generator().manual_seed(1234)
    n_val = min(128, len(val["captions"]))
    val_x = ((val["latents"][:n_val].float() - shift) / scale).to(device)
    val_noise = torch.randn(val_x.shape, generator=g).to(device)
    val_t = torch.sigmoid(args.t_mean + torch.randn(n_val, generator=g)).to(device)
    val_caps = list(val["captions"][:n_val])
    if EXTEND:  # every history length once per CLIPS examples, packed, the next clip's caption
        val_hc = [i % CLIPS for i in range(n_val)]
        val_caps = [([c] + r)[hc] for c, r, hc in zip(val_caps, val["clip_captions"], val_hc)]
        val_hist_noise = torch.randn(val_x.shape, generator=g).to(device)
    val_ids, val_mask = (v.to(device) for v in model["text"].tokenizer(val_caps))


@torch.no_grad()
def val_loss():
    if EXTEND:  # one batch per history length (one shape per batch)
        total = 0.0
        for hc in range(CLIPS):
            s = torch.tensor([i for i in range(n_val) if val_hc[i] == hc], dtype=torch.long)
            if len(s) == 0:  # fewer val clips than history lengths
                continue
            history, x0 = extend.split_example(val_x[s], hc)
            tau = torch.full((len(s),), extend.SAMPLE_NOISE, device=device)  # as sampling does
            history = extend.noise_history(history, tau,
                                           noise=val_hist_noise[s][:, :, :history.shape[2]])
            ctx = extend.build_context(history, "pack", t=tau)
            with autocast(device, dtype):
                total += loss_fn(x0, val_noise[s][:, :, :x0.shape[2]], val_t[s], val_ids[s],
                                 val_mask[s], cond=ctx).item() * len(s)
        return total / n_val
    total = 0.0
    for i in range(0, n_val, 64):
        s = slice(i, i + 64)
        with autocast(device, dtype):
            total += loss_fn(val_x[s], val_noise[s], val_t[s], val_ids[s], val_mask[s]).item() \
                * len(val_x[s])
    return total / n_val


def save():
    save_run(ckpt_path, dist, kind="dit", config=config, model=model, opt=opt, step=step,
             args=args, log=log, budget=budget, ema=ema, extra={
                 "vae": os.path.abspath(args.vae), "vae_fingerprint": vae_fp,
                 "latents": {k: os.path.abspath(v) for k, v in paths.items()},
                 "latent_shift": shift, "latent_scale": scale, "latent_hw": [h, w],
                 "latent_frames": extend.FIRST if EXTEND else T, "stage": args.stage,
                 "captions": os.path.abspath(args.captions) if args.captions else "cache",
                 # an extension model's own clips are ordinary 16-frame clips (1 + 4 latents
                 # at a time after the first); it trained on long clips of long_frames
                 "frames": 16 if EXTEND else int(train["frames"]),
                 **({"long_frames": int(train["frames"])} if EXTEND else {})})


def preview():
    ema_model = build_model(config).to(device)
    ema.copy_to(ema_model)
    prompts = list(val["captions"][:8])
    if EXTEND:  # 4 long videos of 4 clips, packed history, one prompt each
        prompts = prompts[:4]
        z = extend.extend(ema_model.eval(), prompts, 4, "pack", steps=30, latent_hw=(h, w))
        videos = decode_latents(vae, z * scale + shift, extend.frames_of(4))
        save_grid(os.path.join(args.out, f"samples_{step:06d}.gif"), videos, prompts)
        return
    z = sample_latents(ema_model.eval(), prompts, (C, T, h, w), steps=30, cfg=2.0)
    videos = decode_latents(vae, z * scale + shift, int(train["frames"]))
    save_grid(os.path.join(args.out, f"samples_{step:06d}.gif"), videos, prompts)


# ----------------------------------------------------------------------------- train
S = T * (h // model["dit"].cfg.patch) * (w // model["dit"].cfg.patch)  # DiT tokens per example
print0(f"{args.stage} stage: {N} examples of {tuple(X.shape[1:])} latents ({S} tokens), "
       f"{sum(q.numel() for q in params) / 1e6:.2f}M params, world size {dist.world_size}, "
       f"batch {args.batch_size}, {dtype}, peak matmul {peak / 1e9:.1f} GFLOP/s on {device}")
if step == 0 and val is not None and dist.is_main:
    log.append(0, val=val_loss())  # where the curve starts: init (or the --init-from model)
budget.start(step)
speed = Throughput(peak, dist.world_size)
bar = tqdm(total=budget.total, initial=step, disable=not dist.is_main, desc=args.stage)
stopping = False
with StopFlag() as stop:
    while budget.total is None or step < budget.total:
        lr = lr_at(step, args.warmup, budget.total, args.lr)
        set_lr(opt, lr)
        idx = batch_indices(N, args.batch_size, step, args.seed, dist)   # (B,) this rank's examples
        # The step's randomness, drawn for the GLOBAL batch from a generator seeded by (seed,
        # step); this rank keeps its rows. So 1 process and N take the same trajectory, and a
        # resumed run draws exactly what the uninterrupted one did (minivid/common.py).
        g_cpu = step_generator(args.seed, step)
        g_dev = step_generator(args.seed, step, device, stream=1)
        mine = rank_rows(dist)
        if EXTEND:  # this step's history length and context strategy (the whole batch's)
            hc, strategy, window = extend.training_layout(g_cpu, CLIPS)
            T_new = extend.FIRST if hc == 0 else extend.NEW
            who_only = (torch.rand(args.batch_size, generator=g_cpu) < extend.P_WHO_ONLY)[mine]
            who_only &= hc > 0
            tau = (extend.TRAIN_NOISE * torch.rand(args.batch_size, generator=g_cpu))[mine]
        drop = (torch.rand(args.batch_size, generator=g_cpu) < args.caption_dropout)[mine]
        t = flow.sample_t(args.batch_size, mean=args.t_mean, generator=g_cpu)[mine]
        noise = torch.randn((args.batch_size, C, T_new if EXTEND else T, h, w), generator=g_dev,
                            device=device)[mine]
        if EXTEND:  # the noise that moves the history to its time tau (augmentation)
            L_hist = 0 if hc == 0 else 1 + extend.NEW * hc
            hist_noise = torch.randn((args.batch_size, C, L_hist, h, w), generator=g_dev,
                                     device=device)[mine]
        loss_sum = 0.0
        for k, micro in enumerate(torch.arange(B).chunk(args.grad_accum)):
            rows = idx[micro]
            if EXTEND:  # the caption of the new clip, with or without its motions
                rows = idx[micro] * CLIPS + hc + N * CLIPS * who_only[micro].long()
            ids, mask = ids_all[rows].clone(), mask_all[rows].clone()             # (b, Lmax)
            ids[drop[micro], 1:], mask[drop[micro], 1:] = PAD, False  # "": <bos> alone
            L = int(mask.sum(1).max())  # cut to the longest caption (CPU tensors: no sync)
            if args.compile:  # few distinct shapes, few recompilations: L up to a multiple of 8
                L = min(-(-L // 8) * 8, ids.shape[1])
            # DDP all-reduces the gradients in backward; with accumulation only the last
            # micro-batch's backward needs to (no_sync skips it for the others).
            last = k == args.grad_accum - 1 or dist.world_size == 1
            x0, ctx = X[idx[micro]].to(device), None
            if EXTEND:  # the history as the strategy packs it; x0 = the clip after it
                history, x0 = extend.split_example(x0, hc)
                history = extend.noise_history(history, tau[micro].to(device),
                                               noise=hist_noise[micro])
                ctx = extend.build_context(history, strategy, window, tau[micro].to(device))
            with contextlib.nullcontext() if last else ddp.no_sync():
                with autocast(device, dtype):
                    loss = ddp(x0, noise[micro], t[micro].to(device), ids[:, :L].to(device),
                               mask[:, :L].to(device), cond=ctx) / args.grad_accum
                loss.backward()
            loss_sum += loss.detach()
            Nc = 0 if ctx is None else ctx.tokens(model["dit"].cfg.patch)
            Tx = x0.shape[2]
            speed.add(loss_fn.flops(len(micro), Tx, h, w, L, Nc), len(micro) * (Nc + S // T * Tx))
        grad_norm = clip_and_step(opt, params)  # a non-finite step is skipped, on the device
        opt.zero_grad(set_to_none=True)
        ema.update(model, step)
        meter.add(step, loss=loss_sum, grad_norm=grad_norm)
        step += 1
        bar.update()
        if budget.plan(step, dist):  # --minutes alone: the step count is fixed now, once
            bar.total = budget.total
        every = (args.log_every, args.eval_every, args.sample_every)
        if step != budget.total and not any(k and step % k == 0 for k in every):
            continue
        # ------------------------------------------------------------- a log point
        logged, flags = meter.sync(dist, stop=bool(stop))  # the interval's one all-reduce
        guard.check(logged)  # too many skipped steps in a row: a clear error
        log.extend(logged.pop("steps"), **logged)
        rate = speed.lap()
        bar.set_postfix(loss=f"{logged['loss'][-1]:.4f}", lr=f"{lr:.2e}",
                        tok_s=f"{rate['tokens_per_s']:.0f}", mfu=f"{rate['mfu']:.0%}")
        stopping, done = flags["stop"], step == budget.total
        # A skipped (non-finite) step left the weights untouched, so the last step and a stop
        # always save; a periodic save waits for a good step (the guard raises if none comes).
        if done or stopping or (step % args.eval_every == 0 and guard.in_a_row == 0):
            if val is not None and dist.is_main:
                log.append(step, val=val_loss())
            save()
        if dist.is_main and val is not None and args.sample_every and \
                (step % args.sample_every == 0 or done):
            preview()
        speed.restart()
        if stopping:
            break
bar.close()
if stopping:
    print0(stop.saved_message(ckpt_path, step))
rate = speed.report()
print0(f"done: step {step}/{budget.total}, {guard.skipped} skipped steps; train loss (last 50) "
       f"{np.mean(log.series['loss']['value'][-50:]):.4f}; {rate['tokens_per_s']:.0f} tokens/s, "
       f"{rate['gflops']:.1f} GFLOP/s, MFU {rate['mfu']:.1%} of the measured "
       f"{peak / 1e9:.1f} GFLOP/s {dtype} matmul peak")
dist_cleanup()
