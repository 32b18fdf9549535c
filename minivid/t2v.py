"""The text-to-video model: a text encoder and a DiT in one container, its training loss, and
what its training stages share.

Where it sits: between the networks (minivid/text.py, minivid/dit.py) and everything that
trains, samples or benchmarks them. train_dit.py and train_extend.py train `FlowLoss`,
evaluate's training-step benchmark times the very same `FlowLoss`, sampling.py and sample.py
rebuild the model from a checkpoint with `load_model`:

    model = build_model(make_config("tiny", vocab, channels=3))  # ModuleDict(text=, dit=)
    loss = FlowLoss(model)(x0, noise, t, ids, mask)              # one training step's loss
    model, ckpt = load_model("runs/dit_video/ckpt.pt")           # EMA weights, eval mode

The stages (train_dit.py --stage image | video, then train_extend.py) train this one model
the same way on other data; the second half of this file is what they share: their flags,
the latent caches and the vocabulary, the model built from --init-from, the optimizer step
over micro-batches, the val loss and the checkpoint's facts. Each script keeps what differs:
its data, its step's random draws, its previews.

Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_04d_train_dit.py -q`
"""
import contextlib
import json
import os
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn as nn

from minivid import flow, user_language
from minivid.checkpoint import check_config, load_checkpoint, load_state_strict
from minivid.common import (autocast, measure_matmul_peak, pick_precision, print0, seed_all,
                            wrap_ddp)
from minivid.dit import PRESETS as DIT_PRESETS, DiT, DiTConfig
from minivid.history import add_context_kernels, init_context_kernels
from minivid.latents import load_latents
from minivid.scene import Scene
from minivid.text import (PAD, PRESETS as TEXT_PRESETS, UNK, TextConfig, TextEncoder,
                          build_vocab)
from minivid.training import EMA, Throughput, adamw, clip_and_step
from minivid.vae import fingerprint, load_vae


def make_config(preset: str, vocab: list[str], channels: int,
                grad_checkpoint: bool = False) -> dict:
    """-> {"text": asdict(TextConfig), "dit": asdict(DiTConfig)}: what a checkpoint stores."""
    text_cfg = replace(TEXT_PRESETS[preset], vocab=vocab)
    dit_cfg = replace(DIT_PRESETS[preset], in_channels=channels, text_dim=text_cfg.dim,
                      grad_checkpoint=grad_checkpoint)
    return {"text": asdict(text_cfg), "dit": asdict(dit_cfg)}


def build_model(config: dict) -> nn.ModuleDict:
    """{"text": asdict(TextConfig), "dit": asdict(DiTConfig)} -> ModuleDict(text=, dit=).

    One container for both networks, so they share one optimizer, one EMA and one
    state_dict ("text.*" and "dit.*" keys) in the checkpoint. A DiT whose config names coarse
    context kernels (clip extension) gets them here (minivid/history.py; keys dit.ctx_embed.*)."""
    text = TextEncoder(TextConfig(**config["text"]))     # first: the same RNG draws as ever
    dit = add_context_kernels(DiT(DiTConfig(**config["dit"])))
    return nn.ModuleDict({"text": text, "dit": dit})


def load_model(path, ema: bool = True) -> tuple[nn.ModuleDict, dict]:
    """Rebuild text encoder + DiT from a "dit" checkpoint alone -> (model in eval mode, ckpt).

    ema=True loads the EMA weights: they average out the last steps' SGD noise and sample
    visibly better than the raw weights."""
    ckpt = load_checkpoint(path, kind="dit")
    model = build_model(ckpt["config"])
    load_state_strict(model, ckpt["ema"]["shadow"] if ema else ckpt["model"], f"DiT ({path})")
    return model.eval(), ckpt


class FlowLoss(nn.Module):
    """Latents + caption ids -> the flow-matching loss. What DDP wraps in train_dit.py, so ONE
    backward all-reduces the gradients of the text encoder and of the DiT together."""

    def __init__(self, model: nn.ModuleDict):
        super().__init__()
        self.model = model

    def forward(self, x0, noise, t, ids, mask, cond=None, weight=None):
        """x0, noise: (B, C, T, h, w), t: (B,), ids/mask: (B, L), cond: clean history (a
        minivid.history.Context, clip extension) or None, weight: None or (B, 1, T, h, w)
        loss weights (flow.loss) -> scalar loss, on the noisy frames only."""
        text = self.model["text"](ids, mask)                           # (B, L, D)
        return flow.loss(self.model["dit"], x0, noise, t, weight=weight, text=text,
                         text_mask=mask, cond=cond)

    def flops(self, batch: int, T: int, h: int, w: int, L: int, context_tokens: int = 0,
              per_token_times: bool = False) -> int:
        """Forward + backward FLOPs of one call (the networks count 3x their forward);
        per_token_times: the context's tokens each have their own time (per-piece noise)."""
        clean_times = context_tokens if per_token_times else 1
        return batch * (self.model["dit"].flops(T, h, w, L, Nc=context_tokens,
                                                clean_times=clean_times)
                        + self.model["text"].flops(L))


# ----------------------------------------------------------------------------- training stages
def add_stage_args(p) -> None:
    """The flags of every training stage of this model (train_dit.py, train_extend.py)."""
    p.add_argument("--vae", required=True, help="VAE checkpoint the latent cache was made with")
    p.add_argument("--latents", default="runs/latents", help="latent cache folder "
                   "(minivid.latents)")
    p.add_argument("--init-from", default=None, help="start from this DiT checkpoint's EMA "
                   "weights (e.g. the image stage's ckpt.pt for the video stage)")
    p.add_argument("--preset", default="tiny", choices=list(DIT_PRESETS), help="model size")
    p.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    p.add_argument("--ema-decay", type=float, default=0.999, help="EMA decay (after its warmup)")
    p.add_argument("--caption-dropout", type=float, default=0.1, help="fraction of captions "
                   "replaced by '' (the null caption that CFG needs)")
    p.add_argument("--word-dropout", type=float, default=0.0, help="fraction of caption words "
                   "replaced by <unk>: the <unk> row learns 'a word I do not know', so an unseen "
                   "word costs little (0.1 for the mixed-caption DiT, README: rewriting)")
    p.add_argument("--user-captions", type=float, default=0.0, help="fraction of training "
                   "captions replaced by what a person might type for that clip "
                   "(minivid/user_language.py: partial, synonyms, typos, negation, relations)")
    p.add_argument("--t-mean", type=float, default=1.0, help="training times t = sigmoid(N(mean, "
                   "1)); > 0 trains more at high noise, where the layout is decided")
    p.add_argument("--compile", action="store_true", help="torch.compile the DiT")
    p.add_argument("--grad-checkpoint", action="store_true", help="recompute blocks in backward "
                   "(less memory, ~1/3 more compute)")
    p.add_argument("--sample-every", type=int, default=1000, help="preview GIF every N steps "
                   "(0: off)")


# Flags that shape a stage's trajectory: resume with the same ones to continue it exactly.
TRAJECTORY = ["latents", "init_from", "preset", "steps", "batch_size", "grad_accum", "lr",
              "warmup", "ema_decay", "caption_dropout", "word_dropout", "user_captions",
              "t_mean", "seed", "precision"]


def load_init(args, resumed: dict | None) -> dict | None:
    """The checkpoint a stage starts from: --resume's own, or --init-from's (a train_dit.py or
    train_extend.py one: a distilled student is refused), or None: from scratch."""
    if resumed is not None or not args.init_from:
        return resumed
    init = load_checkpoint(args.init_from, kind="dit")
    if init["extra"].get("distilled"):
        raise ValueError(f"--init-from {args.init_from}: a distilled student; start from the "
                         "train_dit.py checkpoint it was distilled from")
    return init


@dataclass
class Latents:
    """A stage's latent caches (minivid/latents.py): train, val (None if there is none), their
    paths and the VAE that made them (on the device, to decode previews)."""
    kind: str                # "images", "clips" or "long"
    vae: nn.Module
    fingerprint: str
    paths: dict
    train: dict
    val: dict | None

    def normalised(self, cache: dict, n: int | None = None) -> torch.Tensor:
        """The first n latents of a cache as the DiT sees them: (z - shift) / scale has unit
        variance, which the noise schedule assumes -> float (n, C, T, h, w)."""
        shift, scale = self.train["shift"], self.train["scale"]
        return (cache["latents"][:n].float() - shift) / scale


def load_stage_latents(args, kind: str, init: dict | None, device) -> Latents:
    """--vae and <--latents>/{train,val}_<kind>.pt; a cache of another VAE is refused, and so
    is an --init-from model trained on another VAE's latents."""
    vae, _ = load_vae(args.vae)
    vae_fp = fingerprint(vae.to(device))  # a cache encoded by another VAE is refused below
    paths = {s: os.path.join(args.latents, f"{s}_{kind}.pt") for s in ("train", "val")}
    train = load_latents(paths["train"], vae_fp)
    val = load_latents(paths["val"], vae_fp) if os.path.exists(paths["val"]) else None
    if init is not None and init["extra"]["vae_fingerprint"] != vae_fp:
        raise ValueError(f"{args.init_from or 'the --resume checkpoint'} was trained on latents "
                         f"of the VAE {init['extra']['vae_fingerprint']}, but --vae {args.vae} is "
                         f"{vae_fp}; use the same VAE (and its latent cache) for every stage")
    return Latents(kind, vae, vae_fp, paths, train, val)


def read_captions(path: str, cache: dict, cache_path: str) -> list[str]:
    """--captions: the cache's train items captioned another way (README: the caption
    experiment), a JSONL manifest with one row per item, in the cache's order."""
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    source = cache.get("source", "")
    if os.path.exists(source):  # the same media, in the same order, or the pairs are wrong
        with open(source) as f:
            media = [json.loads(line)["media"] for line in f if line.strip()]
        mine = [os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(path)),
                                              r["media"])) for r in rows]
        theirs = [os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(source)), m))
                  for m in media]
        if mine != theirs:
            raise ValueError(f"--captions {path}: its media do not match the cache's source "
                             f"{source} row by row; caption that manifest "
                             f"(python -m minivid.caption_folder caption --data {source} ...)")
    if len(rows) != len(cache["captions"]):
        raise ValueError(f"--captions {path} has {len(rows)} rows, the cache {cache_path} "
                         f"{len(cache['captions'])}")
    return [r["caption"] for r in rows]


def stage_config(args, lat: Latents, init: dict | None, own_captions: bool = False,
                 context_kernels: tuple = ()) -> dict:
    """The model's config: --init-from's (or --resume's), checked against --preset, or a new
    one. A new vocabulary comes from the image AND clip captions, so the video stage, which
    inherits the image stage's text encoder, already has words for motion and speed (with
    own_captions, --captions: from those alone). context_kernels: the coarse kernels of clip
    extension, which a video model gains here (anything else must match)."""
    if init is not None:
        vocab = init["config"]["text"]["vocab"]
    else:
        captions = list(lat.train["captions"])
        other = os.path.join(args.latents, "train_clips.pt" if lat.kind == "images"
                             else "train_images.pt")
        if os.path.exists(other) and not own_captions:  # other captions: only their own words
            captions += load_latents(other, lat.fingerprint)["captions"]
        if getattr(args, "user_captions", 0):   # the words people use get rows of their own
            captions += sorted(user_language.lexicon(held=False))
        vocab = build_vocab(captions)
    config = make_config(args.preset, vocab, lat.train["latents"].shape[1], args.grad_checkpoint)
    config["dit"]["context_kernels"] = tuple(context_kernels)
    if init is not None:  # e.g. a "small" checkpoint into a "tiny" run: name every differing field
        check_config(init["config"]["text"], config["text"], "text encoder")
        saved = asdict(DiTConfig(**init["config"]["dit"]))  # fields added since: defaults
        saved["grad_checkpoint"] = args.grad_checkpoint
        if context_kernels:  # a video model gains them: only they may differ
            saved["context_kernels"] = config["dit"]["context_kernels"]
        check_config(saved, config["dit"], "DiT")
    return config


@dataclass
class Stage:
    """What a training stage optimises (build_stage): the raw model (saved, EMA'd, sampled
    from), its trainable parameters, optimizer and EMA, the FlowLoss that DDP wraps, and the
    autocast dtype."""
    model: nn.ModuleDict
    params: list
    opt: torch.optim.Optimizer
    ema: EMA
    loss: FlowLoss
    ddp: nn.Module
    dtype: torch.dtype


def build_stage(args, run, config: dict, init: dict | None, extra: dict,
                history: bool = False) -> Stage:
    """Build the model, start it from --init-from's EMA weights (that is the model we
    evaluated) or --resume's checkpoint (run.attach), and wrap it for training. history: clip
    extension (the clean-frame flag trains; new coarse kernels start from the patch embedding,
    history.init_context_kernels). Sets run.speed, the tokens/s and MFU counter."""
    device = run.dist.device
    seed_all(args.seed)  # same init on every rank (DDP would broadcast rank 0's anyway)
    model = build_model(config).to(device)
    # The clean-frame flag is only used with conditioning frames (clip extension): frozen in the
    # image and video stages, because DDP requires every trainable parameter to get a gradient.
    model["dit"].clean.requires_grad_(history)
    params = [q for q in model.parameters() if q.requires_grad]
    opt = adamw(params, args.lr, betas=(0.9, 0.99))
    if init is not None and run.resumed is None:
        weights = dict(init["ema"]["shadow"])
        new = [k for k in model.state_dict() if k not in weights and ".ctx_embed." in k]
        weights.update({k: model.state_dict()[k] for k in new})  # a video model has none yet
        load_state_strict(model, weights, "DiT")
        if new:
            init_context_kernels(model["dit"])
    ema = EMA(model, args.ema_decay)
    run.attach(model, opt, config=config, ema=ema, extra=extra)  # --resume: all of it back
    if args.compile:
        model["dit"].compile()  # in place: state_dict keys stay free of "_orig_mod."
    loss = FlowLoss(model)
    ddp = wrap_ddp(loss, run.dist, find_unused=history)
    dtype = pick_precision(device, args.precision, bf16_pays_on_cpu=model["dit"].cfg.dim >= 256)
    peak = measure_matmul_peak(device, dtype)  # same run, same precision: an honest MFU
    run.speed = Throughput(peak, run.dist.world_size)
    print0(f"{sum(q.numel() for q in params) / 1e6:.2f}M params, world size "
           f"{run.dist.world_size}, batch {args.batch_size}, {dtype}, peak matmul "
           f"{peak / 1e9:.1f} GFLOP/s on {device}")
    return Stage(model, params, opt, ema, loss, ddp, dtype)


def stage_extra(args, lat: Latents, stage: str, latent_frames: int, frames: int,
                captions: str | None = None, **more) -> dict:
    """The facts a stage's checkpoint carries besides weights: what sampling, the next stage
    and the benchmarks need to use it (the VAE, the latent normalisation and shape)."""
    return {"vae": os.path.abspath(args.vae), "vae_fingerprint": lat.fingerprint,
            "latents": {k: os.path.abspath(v) for k, v in lat.paths.items()},
            "latent_shift": lat.train["shift"], "latent_scale": lat.train["scale"],
            "latent_hw": list(lat.train["latents"].shape[3:]), "latent_frames": latent_frames,
            "stage": stage, "captions": os.path.abspath(captions) if captions else "cache",
            "frames": frames, **more}


def cache_scenes(specs) -> list:
    """The latent cache's scene specs (JSON strings, "" for media without one) -> Scenes or
    None, parsed once at start-up, not on every step."""
    return [Scene.from_dict(json.loads(s)) if s else None for s in specs]


def user_captions(tokenizer, tokens, rows, use, scenes, rng):
    """The tokenized captions of `rows`, those with `use` rewritten as a person might ask for
    the same clip (minivid/user_language.py, only requests true to the clip) -> (ids, mask),
    (b, L) each. scenes: cache_scenes(...); a row without a scene keeps its caption."""
    ids, mask = tokens[0][rows].clone(), tokens[1][rows].clone()            # (b, Lmax)
    for b, i in enumerate(rows.tolist()):
        if use[b] and scenes[i] is not None:
            text = user_language.user_prompt(scenes[i], rng, p_special=0.2,
                                             specials=user_language.TRUE_TO_THE_SCENE)[0]
            row = tokenizer.encode(text)[:ids.shape[1]]
            ids[b], mask[b] = PAD, False
            ids[b, :len(row)], mask[b, :len(row)] = torch.tensor(row), True
    return ids, mask


def word_dropout(ids, mask, p: float, generator):
    """Each real word (not <bos>, not padding) becomes <unk> with probability p."""
    hit = (torch.rand(ids.shape, generator=generator) < p) & mask
    hit[:, 0] = False
    return torch.where(hit, torch.full_like(ids, UNK), ids)


def caption_batch(tokens, rows, drop, compile: bool, device) -> dict:
    """Caption ids of `rows` of the tokenized captions tokens = (ids (M, Lmax), mask), those
    with `drop` replaced by the null caption "" (<bos> alone), cut to the batch's longest
    caption (with --compile: up to a multiple of 8, few shapes, few recompilations)
    -> {"ids": (b, L), "mask": (b, L)} on the device."""
    ids, mask = tokens[0][rows].clone(), tokens[1][rows].clone()           # (b, Lmax)
    ids[drop, 1:], mask[drop, 1:] = PAD, False
    L = int(mask.sum(1).max())  # CPU tensors: no sync
    if compile:
        L = min(-(-L // 8) * 8, ids.shape[1])
    return {"ids": ids[:, :L].to(device), "mask": mask[:, :L].to(device)}


def train_step(run, stage: Stage, micro_batches: list[dict], val_batches=()) -> None:
    """One optimizer step: forward + backward of each micro-batch (FlowLoss's arguments:
    x0, noise, t, ids, mask [, cond, weight]), the gradient clipped and applied (a non-finite step is
    skipped, on the device), the EMA moved, the step recorded (run.record); when a checkpoint
    follows (run.saving), the loss over the val batches is logged too."""
    loss = 0.0
    for k, b in enumerate(micro_batches):
        # DDP all-reduces the gradients in backward; with accumulation only the last
        # micro-batch's backward needs to (no_sync skips it for the others).
        last = k == len(micro_batches) - 1 or run.dist.world_size == 1
        with contextlib.nullcontext() if last else stage.ddp.no_sync():
            with autocast(run.dist.device, stage.dtype):
                part = stage.ddp(**b) / len(micro_batches)
            part.backward()
        loss += part.detach()
        n, _, T, h, w = b["x0"].shape
        p, L, cond = stage.model["dit"].cfg.patch, b["ids"].shape[1], b.get("cond")
        Nc = 0 if cond is None else cond.tokens(p)                   # clean tokens in front
        own = cond is not None and cond.t is not None and cond.t.dim() == 2   # per-piece times
        run.speed.add(stage.loss.flops(n, T, h, w, L, Nc, own), n * (Nc + T * (h // p) * (w // p)))
    grad_norm = clip_and_step(stage.opt, stage.params)
    stage.opt.zero_grad(set_to_none=True)
    stage.ema.update(stage.model, run.step)
    run.record(loss=loss, grad_norm=grad_norm)
    if run.saving and val_batches and run.dist.is_main:
        run.log.append(run.step, val=mean_loss(stage, val_batches))


def val_draws(x, t_mean: float):
    """Fixed noise and times for the val latents x (n, C, T, h, w), from their own generator,
    so the val curve is smooth and comparable between runs (evaluate compare reads it)
    -> (noise like x, t (n,), the generator: train_extend.py draws on from it)."""
    g = torch.Generator().manual_seed(1234)
    noise = torch.randn(x.shape, generator=g).to(x.device)
    t = torch.sigmoid(t_mean + torch.randn(len(x), generator=g)).to(x.device)
    return noise, t, g


@torch.no_grad()
def mean_loss(stage: Stage, batches: list[dict]) -> float:
    """The flow loss over fixed val batches (FlowLoss's arguments each), example-weighted."""
    total = n = 0
    for b in batches:
        with autocast(next(stage.model.parameters()).device, stage.dtype):
            total += stage.loss(**b).item() * len(b["x0"])
        n += len(b["x0"])
    return total / n


def summary(run, stage: Stage) -> str:
    """The end-of-run line: the last 50 steps' train loss and the speed of the steps."""
    rate = run.speed.report()
    return (f"train loss (last 50) {np.mean(run.log.series['loss']['value'][-50:]):.4f}; "
            f"{rate['tokens_per_s']:.0f} tokens/s, {rate['gflops']:.1f} GFLOP/s, MFU "
            f"{rate['mfu']:.1%} of the measured {stage.dtype} matmul peak")


def ema_model(config: dict, stage: Stage) -> nn.ModuleDict:
    """A copy of the model with the EMA weights, in eval mode: what previews sample from."""
    model = build_model(config).to(next(stage.model.parameters()).device)
    stage.ema.copy_to(model)
    return model.eval()
