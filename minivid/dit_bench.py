"""How good is a trained DiT? Adherence, Fréchet distance and speed, at several step counts.

Where it sits: after train_dit.py; `python -m minivid.evaluate dit --ckpt ...` prints
`dit_report` as a table plus one JSON line. For each sampler step count it generates videos
for two prompt sets, the dense captions of
  - val:  tiny_data/val/clips.jsonl, the same kinds of scenes as training;
  - test: tiny_data/test/clips.jsonl, every scene holds a colour+shape pair that training
          NEVER showed (compositional generalisation: "green circle" from "green square" and
          "red circle"),
  - handwritten: prompts/dense_prompts.jsonl, 30 dense prompts written by hand in sentence
          structures of people's own (one sentence per object, the background first or
          alone, participles, anaphora), 4 noise draws each: does the model follow the
          language, or only the world's templates? Beside it, handwritten_generator: the
          world's own captions of the very same scenes, so the gap is the wording alone;
and reports
  - adherence: minivid.checker reads the pixels and counts the stated attributes that hold,
    next to its ceiling: the adherence of the VAE's own reconstructions of the real val media
    (the DiT only makes latents; the VAE decoder draws every pixel);
  - Fréchet distance of the val videos to the real val clips in the tiny-FVD probe's feature
    space (minivid/fd.py), next to the best a DiT could do: the VAE's reconstructions of
    the same val clips the prompts describe (a DiT only makes latents; the decoder draws);
    and next to real train clips vs val, with the same number of clips (the estimate is
    biased by sample size, so only equal sizes compare): two real sets of DIFFERENT scenes,
    which a prompt-following model can beat;
  - training throughput (DiT tokens/s) and MFU of a few timed training steps of the
    checkpoint's config, measured on this machine in the same run.
An image checkpoint (stage image) is scored on the images.jsonl prompts with frames = 1
(no FD: the probe is a video model).

    python -m minivid.evaluate dit --ckpt runs/dit_video/ckpt.pt            # CPU, minutes
    python -m minivid.evaluate compare runs/dit_video/ckpt.pt runs/dit_scratch/ckpt.pt \\
        --out runs/image_first.png          # does the image stage pay off? (step ratio)
"""
import json
import os

import numpy as np
import torch
from matplotlib.figure import Figure

from minivid import bench, checker, fd, flow
from minivid.captions import dense_caption
from minivid.checkpoint import load_checkpoint
from minivid.common import autocast, measure_matmul_peak, pick_precision
from minivid.data import to_uint8
from minivid.latents import roundtrip
from minivid.sampling import Pipeline
from minivid.t2v import FlowLoss, build_model, make_config
from minivid.text import build_vocab
from minivid.training import adamw, clip_and_step
from minivid.world import Obj, Scene, sample_scene

HANDWRITTEN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "prompts", "dense_prompts.jsonl")


def train_speed(config: dict, shape: tuple[int, int, int, int], captions: list[str],
                batch_size: int, device="cpu", steps: int = 8, compile: bool = False,
                precision: str = "auto") -> dict:
    """Time `steps` training steps of a text encoder + DiT built from `config` on random
    latents of `shape` (C, T, h, w): the SAME loss (t2v.FlowLoss), optimizer (training.adamw),
    clipping + step (training.clip_and_step) and precision policy as train_dit.py ->
    tokens/s, samples/s, achieved FLOP/s, peak memory, and MFU against the matmul peak of
    that precision, measured now, on this machine, in this process."""
    device = torch.device(device)
    torch.manual_seed(0)
    model = build_model(config).to(device)
    if compile:
        model["dit"].compile()
    loss_fn = FlowLoss(model)
    dtype = pick_precision(device, precision, bf16_pays_on_cpu=model["dit"].cfg.dim >= 256)
    params = [q for q in model.parameters() if q.requires_grad]
    opt = adamw(params, lr=1e-4)
    C, T, h, w = shape
    B = batch_size
    ids, mask = model["text"].tokenizer((captions * B)[:B])           # (B, L)
    ids, mask, L = ids.to(device), mask.to(device), ids.shape[1]
    x0, noise = torch.randn(2, B, C, T, h, w, device=device)
    t = flow.sample_t(B, device)
    flops = loss_fn.flops(B, T, h, w, L)
    memory = bench.Peak(device)  # CUDA: what the tensors needed; CPU: the process's peak RSS
    memory.reset()
    times = []
    for i in range(steps + 2):  # the first two warm up (allocation, kernel choice, compile)
        t0 = bench.clock()
        with autocast(device, dtype):
            loss = loss_fn(x0, noise, t, ids, mask)
        loss.backward()
        clip_and_step(opt, params)
        opt.zero_grad(set_to_none=True)
        times.append(bench.clock(device) - t0)
    step_s = float(np.median(times[2:]))
    peak_mem = memory.mb()
    peak = measure_matmul_peak(device, dtype)
    S = T * (h // model["dit"].cfg.patch) * (w // model["dit"].cfg.patch)
    return {"precision": str(dtype).replace("torch.", ""),
            "train_tokens_per_s": B * S / step_s, "train_samples_per_s": B / step_s,
            "train_gflops": flops / step_s / 1e9, "peak_gflops": peak / 1e9,
            "mfu": flops / step_s / peak, "train_batch": B, "train_step_s": step_s,
            "peak_mem_mb": peak_mem, "tokens_per_sample": S}


def throughput(preset: str = "tiny", frames: int = 5, latent_hw: int = 8, channels: int = 3,
               batch_size: int = 64, device="cpu", steps: int = 8, compile: bool = False,
               precision: str = "auto") -> dict:
    """Training throughput of a DiT preset with no checkpoint and no data: random weights,
    random latents of (channels, frames, latent_hw, latent_hw), tiny-world-like captions.
    The numbers depend on the shapes, not on what the weights have learned."""
    rng = np.random.default_rng(0)
    texts = [dense_caption(sample_scene(rng, "train", 16), rng) for _ in range(64)]
    config = make_config(preset, build_vocab(texts), channels)
    out = {"preset": preset, "shape": f"{channels}x{frames}x{latent_hw}x{latent_hw}",
           "device": str(device), "compile": compile, "threads": torch.get_num_threads()}
    out.update(train_speed(config, (channels, frames, latent_hw, latent_hw), texts, batch_size,
                           device, steps, compile, precision))
    return out


def _by_attribute(videos, caps, steps) -> dict:
    """Per-attribute accuracy over a set of generated videos: {"val_<attribute>@<steps>": ...}."""
    hits, totals = {}, {}
    for video, caption in zip(videos, caps):
        for key, (h, t) in checker.score_by_attribute(checker.detect(video),
                                                      checker.stated(caption)).items():
            hits[key], totals[key] = hits.get(key, 0) + h, totals.get(key, 0) + t
    return {f"val_{key}@{steps}": hits[key] / totals[key] for key in totals}


def dit_report(ckpt, data_dir="tiny_data", steps_list=(1, 2, 4, 8, 16, 32, 100), n=128,
               cfg=2.0, seed=0, sampler="euler", device="cpu", vae=None) -> dict:
    """Adherence (val, test) and FD vs floor at each step count, plus training speed/MFU."""
    pipe = Pipeline(ckpt, vae, device)
    frames = pipe.ckpt["extra"]["frames"]
    kind = "clips" if frames > 1 else "images"
    prompts = {s: bench.captions(data_dir, s, kind, n) for s in ("val", "test")}
    if kind == "clips" and os.path.exists(HANDWRITTEN):  # dense, in sentences of people's own
        with open(HANDWRITTEN) as f:                     # structures; 4 noise draws each
            rows = ([json.loads(line) for line in f] * 4)[:n]  # (all 120 when n >= 120)
        prompts["handwritten"] = [r["prompt"] for r in rows]
        # ... and the world's own captions of the very same scenes: the gap is the language
        rng = np.random.default_rng(0)
        prompts["handwritten_generator"] = [dense_caption(Scene(r["expect"]["background"], [
            Obj(o["shape"], o["colour"], o["size"], o["position"], o["motion"], o.get("speed", ""))
            for o in r["expect"]["objects"]]), rng) for r in rows]
    out = {"ckpt": str(ckpt), "frames": frames, "cfg": cfg, "sampler": sampler, "n": n}
    real, _ = fd.load_clips(bench.manifest(data_dir, "val", kind), frames=frames)
    if kind == "clips":
        train, specs = fd.load_clips(bench.manifest(data_dir, "train"))
        probe = fd.load_or_train_probe(data_dir, train, specs)
        f_val = fd.features(probe, real)
        # Same number of clips as generated: the FD estimate's bias depends on it.
        out["fd_floor_train_vs_val"] = fd.frechet(fd.features(probe, train[:n]), f_val)
        # ... and what the VAE alone costs: its reconstructions of those train clips.
        out["fd_vae_recon_train_vs_val"] = bench.fvd(
            probe, to_uint8(roundtrip(pipe.vae, train[:n])), f_val)
    # The ceiling: what the checker sees in the VAE's reconstructions of the real val media.
    recon = to_uint8(roundtrip(pipe.vae, real[:n]))
    out["adherence_vae_recon_val"] = bench.adherence(recon, prompts["val"])
    if kind == "clips":  # ... and the FD ceiling: a perfect DiT would emit exactly these
        out["fd_vae_recon_val"] = bench.fvd(probe, recon, f_val)
    for steps in steps_list:
        seconds = 0.0  # sampling alone: the checker and the FD probe are not the model's cost
        for split, caps in prompts.items():
            t0 = bench.clock()
            videos = pipe.generate(caps, frames, steps, cfg, seed, sampler)
            seconds += bench.clock() - t0
            out[f"adherence_{split}@{steps}"] = bench.adherence(videos, caps)
            if split == "val" and steps == steps_list[-1]:  # which attributes fail?
                out.update(_by_attribute(videos, caps, steps))
            if split == "val" and kind == "clips":
                out[f"fd_val@{steps}"] = bench.fvd(probe, videos, f_val)
        out[f"sample_s_per_video@{steps}"] = seconds / sum(map(len, prompts.values()))
    ck = pipe.ckpt  # the training speed of the checkpoint's own config, shapes and batch
    shape = (ck["config"]["dit"]["in_channels"], ck["extra"]["latent_frames"],
             *ck["extra"]["latent_hw"])
    out.update(train_speed(ck["config"], shape, prompts["val"], ck["args"]["batch_size"], device,
                           precision=ck["args"].get("precision", "auto")))
    return out


# ----------------------------------------------------------------------------- compare


def _curve(ckpt):
    """(steps, values) of a run's val loss (fixed noise: smooth), else its train loss."""
    series = ckpt["log"]["series"]
    s = series.get("val") or series["loss"]
    return np.array(s["step"]), np.array(s["value"])


def compare(finetuned, scratch, out_png=None) -> dict:
    """Steps the fine-tuned run needs to reach the scratch run's FINAL loss, as a fraction of
    the scratch run's length (< 1: starting from the image model pays off)."""
    a, b = load_checkpoint(finetuned, kind="dit"), load_checkpoint(scratch, kind="dit")
    (xa, ya), (xb, yb) = _curve(a), _curve(b)
    target = float(yb[-1])
    reached = xa[ya <= target]
    step = int(reached[0]) if len(reached) else None
    result = {"finetuned": str(finetuned), "scratch": str(scratch),
              "scratch_final_loss": target, "scratch_steps": int(b["step"]),
              "finetuned_final_loss": float(ya[-1]), "steps_to_reach": step,
              "step_ratio": None if step is None else step / int(b["step"])}
    if out_png:
        fig = Figure(figsize=(7, 4), dpi=100)
        ax = fig.subplots()
        name = lambda path: os.path.basename(os.path.dirname(os.path.abspath(path)))  # noqa: E731
        ax.plot(xa, ya, label=f"from the image model ({name(finetuned)})")
        ax.plot(xb, yb, label=f"from scratch ({name(scratch)})")
        ax.axhline(target, color="grey", linestyle=":", linewidth=1)
        if step is not None:
            ax.axvline(step, color="grey", linestyle=":", linewidth=1)
            ax.set_title(f"reaches the scratch run's final loss in {result['step_ratio']:.0%} "
                         "of its steps", fontsize=10)
        ax.set_xlabel("step")
        ax.set_ylabel("val flow-matching loss")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        bench.save_figure(fig, out_png, dpi=100)
    return result


# ----------------------------------------------------------------------------- the commands


def add_args(sub) -> None:
    p = bench.command(sub, "dit", run, "adherence, FD vs floor, speed and MFU of a "
                      "text-to-video DiT")
    p.add_argument("--ckpt", required=True, help="DiT checkpoint (train_dit.py output)")
    p.add_argument("--vae", default=None, help="VAE checkpoint (default: the one recorded)")
    p.add_argument("--steps", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 100],
                   help="sampler step counts to score")
    p.add_argument("--sampler", default="euler", choices=["euler", "heun"], help="ODE step")
    bench.shared_args(p, "data", "n", "cfg", "seed", "device")
    t = bench.command(sub, "throughput", run_throughput, "training tokens/s, samples/s, peak "
                      "memory and MFU of a DiT preset on this device (random weights, no data)")
    t.add_argument("--preset", default="tiny", choices=["tiny", "small", "base"], help="DiT size")
    t.add_argument("--batch-size", type=int, default=64, help="examples per step")
    t.add_argument("--frames", type=int, default=5, help="latent frames T' (5: a 16-frame clip "
                   "through a tf=4 VAE; 1: an image)")
    t.add_argument("--latent-hw", type=int, default=8, help="latent height = width (8: 32x32 "
                   "pixels through a patch-4 VAE)")
    t.add_argument("--channels", type=int, default=3, help="latent channels")
    t.add_argument("--steps", type=int, default=8, help="timed steps (after 2 warm-up steps)")
    t.add_argument("--compile", action="store_true", help="torch.compile the DiT first")
    t.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="autocast dtype, as train_dit.py --precision (common.pick_precision)")
    bench.shared_args(t, "device", device="auto")
    c = bench.command(sub, "compare", run_compare, "does the image stage pay off? Steps a video "
                      "run from the image model needs to reach a scratch run's final val loss")
    c.add_argument("finetuned", help="video run started from the image checkpoint")
    c.add_argument("scratch", help="video run of the same length from scratch")
    c.add_argument("--out", default=None, help="PNG with both curves")


def run(args) -> dict:
    bench.need(args.ckpt, "Train one first: python train_dit.py --stage image ... (see its "
               "docstring)")
    bench.need_data(args.data)
    fig = dit_report(args.ckpt, args.data, steps_list=args.steps, n=args.n, cfg=args.cfg,
                     seed=args.seed, sampler=args.sampler, device=args.device, vae=args.vae)
    bench.print_table(f"DiT {args.ckpt} ({args.n} prompts per set, cfg {args.cfg}, "
                      f"{args.sampler})", fig.items())
    bench.print_json("dit", fig)
    return fig


def run_throughput(args) -> dict:
    fig = throughput(args.preset, args.frames, args.latent_hw, args.channels, args.batch_size,
                     args.device, args.steps, args.compile, args.precision)
    bench.print_table(f"DiT training throughput, preset {args.preset}, batch "
                      f"{args.batch_size}", fig.items())
    bench.print_json("throughput", fig)
    return fig


def run_compare(args) -> dict:
    for path in (args.finetuned, args.scratch):
        bench.need(path, "Train both runs first (README, DiT section: the image-first control)")
    fig = compare(args.finetuned, args.scratch, args.out)
    bench.print_table("image first vs from scratch (val loss curves)", fig.items())
    ratio = "never" if fig["step_ratio"] is None else f"{fig['step_ratio']:.0%} of the steps"
    print(f"from the image model: reaches the scratch run's final val loss "
          f"{fig['scratch_final_loss']:.4f} at step {fig['steps_to_reach']} ({ratio})")
    bench.print_json("compare", fig)
    return fig
