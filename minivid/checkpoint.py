"""The ONE checkpoint format: save atomically, load safely, fail with a clear message.

Where it sits: every trainer calls `save_checkpoint` every few hundred steps (rank 0 only)
and on exit; `sample.py`, the evaluators and `--resume` call `load_checkpoint`, then rebuild
the model from `ckpt["config"]` alone (no flags needed). A checkpoint is a plain dict:

    {"format": 1,                  # int version, written by save_checkpoint
     "kind": "dit",                # "vae" | "dit" | "probe" | "rewriter" (cache: "latents")
     "config": asdict(cfg),        # rebuild with Model(Config(**ckpt["config"]))
     "model": raw.state_dict(),    # the unwrapped, uncompiled model (no "module." prefix)
     "ema": ema.state_dict(), "optimizer": opt.state_dict(), "step": 1200,
     "args": vars(args),           # the command-line flags, for the record
     "data": {"epoch": 3, "position": 512}, "extra": {...}}   # plain types only

Three ideas make it robust:
1. Atomic save. torch.save writes for a while; a crash, SIGKILL or a full disk in the middle
   would leave half a file. We write to a temp file in the same folder, fsync it, then
   `os.replace` it over the old name: a rename within one filesystem is atomic, so the path
   always holds either the old complete checkpoint or the new complete one, never a mix.
2. Safe load. A .pt file is a pickle, and unpickling can run any code the file asks for.
   `torch.load(weights_only=True)` only rebuilds tensors and plain values (dict, list, str,
   numbers) and refuses anything else. So we only ever *save* such types (checked below).
3. Clear errors. Every failure names the file, what is wrong, and what to do.

The training scripts save and resume through save_run / restore_run / resume_run (bottom):
the same layout for every trainer.

Run its tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_09a_checkpoint.py -q`
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path

import torch

from minivid.common import print0

FORMAT = 1  # bump when the layout of the dict changes, and say how to convert old files

# Which script makes a checkpoint of each kind: used in "train one first" hints.
_MADE_BY = {"vae": "python train_vae.py", "dit": "python train_dit.py",
            "latents": "python -m minivid.latents", "rewriter": "python train_rewriter.py",
            "captioner": "python train_captioner.py"}
# Where the README's commands put each kind: the example in a wrong-kind error.
_EXAMPLE = {"vae": "runs/vae_t4/ckpt.pt", "dit": "runs/dit_video/ckpt.pt",
            "latents": "runs/latents/train_clips.pt", "rewriter": "runs/rewriter/ckpt.pt",
            "captioner": "runs/captioner/ckpt.pt"}

# ----------------------------------------------------------------------------- save


def _check_safe(obj, where: str) -> None:
    """Raise TypeError if `obj` holds anything torch.load(weights_only=True) would refuse.

    Catching it here, at save time, beats discovering it at resume time days later. Exact
    type checks on purpose: np.float64 *is* a float subclass but pickles as a numpy object.
    """
    if isinstance(obj, torch.Tensor) or type(obj) in (str, int, float, bool, type(None),
                                                      torch.dtype, torch.device, torch.Size):
        return
    if type(obj) in (dict, OrderedDict):
        for key, value in obj.items():
            if type(key) not in (str, int):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; "
                                "checkpoint dict keys must be str or int")
            _check_safe(value, f"{where}[{key!r}]")
        return
    if type(obj) in (list, tuple):
        for i, value in enumerate(obj):
            _check_safe(value, f"{where}[{i}]")
        return
    raise TypeError(
        f"{where} is a {type(obj).__module__}.{type(obj).__name__}, which "
        "torch.load(weights_only=True) cannot read back; store plain types instead: "
        "float(x) / int(x) for numpy scalars, torch.from_numpy(a) for arrays, str(p) for "
        "paths, vars(args) for an argparse Namespace, dataclasses.asdict(cfg) for configs")


def save_checkpoint(path: str | os.PathLike, ckpt: dict) -> None:
    """Write `ckpt` to `path` atomically (temp file in the same folder + os.replace).

    Adds `ckpt["format"] = FORMAT`. Call it on rank 0 only. The folder is created if needed.
    """
    path = Path(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("kind"), str):
        raise ValueError("a checkpoint is a dict with a 'kind' string ('vae', 'dit', ...)")
    ckpt = {**ckpt, "format": FORMAT}
    _check_safe(ckpt, "ckpt")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same folder => same filesystem => os.replace is a true atomic rename. The pid keeps
    # two processes that (wrongly) save at once from writing into the same temp file.
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(ckpt, f)
            f.flush()  # python's buffer -> the OS
            os.fsync(f.fileno())  # the OS's cache -> the disk, before the rename
        os.replace(tmp, path)
    except BaseException:  # includes KeyboardInterrupt: never leave the temp file behind
        tmp.unlink(missing_ok=True)
        raise
    # fsync the folder too, so the rename itself survives a power cut (POSIX only).
    if hasattr(os, "O_DIRECTORY"):
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ----------------------------------------------------------------------------- load


def load_checkpoint(path: str | os.PathLike, kind: str | None = None) -> dict:
    """Load a checkpoint onto the CPU, safely; optionally require `ckpt["kind"] == kind`.

    Raises FileNotFoundError (no such file) or ValueError (truncated/corrupt, unsafe
    pickle, not a minivid checkpoint, unknown format, wrong kind), each naming the file
    and the fix. Move tensors to the device after loading (model.to(device) does it).
    """
    path = Path(path)
    made_by = _MADE_BY.get(kind, "the script that makes it")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; pass the checkpoint file inside it, "
                                f"e.g. {path / 'ckpt.pt'}")
    if not path.exists():
        raise FileNotFoundError(f"checkpoint {path} does not exist; check the path (runs save "
                                f"<out>/ckpt.pt) or train one first with {made_by}")
    try:
        # map_location="cpu": a checkpoint saved on cuda:3 loads on a laptop.
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"GLOBAL ([\w.]+)", str(e))
        if found is None and not zipfile.is_zipfile(path) and _starts_like_pickle(path):
            # Not torch.save's zip layout but a bare pickle (pickle.dump): it may hold any
            # object, and loading one can run code. Not "corrupt": made by other means.
            raise ValueError(
                f"refused to load {path}: it is a bare Python pickle (written by pickle.dump, "
                "not torch.save), which can run arbitrary code when loaded, so "
                "torch.load(weights_only=True) rejected it. minivid checkpoints are written "
                "by minivid.checkpoint.save_checkpoint; if you trust this file's source, load "
                "it yourself and re-save its tensors with save_checkpoint") from None
        if found is None:  # the unpickler choked on garbage bytes, not on a code object
            raise ValueError(_corrupt(path, "unreadable pickle data")) from e
        raise ValueError(
            f"refused to load {path}: it contains a pickled Python object "
            f"({found.group(1)}), not only tensors and plain values, and loading it could "
            "run arbitrary code, so torch.load(weights_only=True) blocked it. "
            "save_checkpoint never writes such objects: this file was made some other way "
            "or tampered with. Do not load it unless you trust its source; if you do, "
            "re-save its tensors with minivid.checkpoint.save_checkpoint") from None
    except Exception as e:  # truncated zip, empty file, bad bytes, ...
        first = str(e).strip().split(". ")[0][:120] or "file ends early"
        raise ValueError(_corrupt(path, f"{type(e).__name__}: {first}")) from e

    if not isinstance(ckpt, dict) or "format" not in ckpt or "kind" not in ckpt:
        raise ValueError(f"{path} is not a minivid checkpoint (expected a dict with 'format' "
                         f"and 'kind' keys, got {type(ckpt).__name__}); minivid reads only "
                         "files written by minivid.checkpoint.save_checkpoint")
    if ckpt["format"] != FORMAT:
        newer = isinstance(ckpt["format"], int) and ckpt["format"] > FORMAT
        fix = ("update minivid (git pull)" if newer else
               "retrain, or load it with the minivid version that wrote it and convert it")
        raise ValueError(f"{path} has checkpoint format {ckpt['format']!r} but this code reads "
                         f"format {FORMAT}; {fix}")
    if kind is not None and ckpt["kind"] != kind:
        raise ValueError(f"{path} is a {ckpt['kind']!r} checkpoint but a {kind!r} checkpoint "
                         f"is needed here; pass the {kind} file instead (made by "
                         f"{made_by}, e.g. {_EXAMPLE.get(kind, 'runs/<run>/ckpt.pt')})")
    return ckpt



def _starts_like_pickle(path: Path) -> bool:
    """A pickle of protocol 2+ starts with the PROTO opcode 0x80 and its version byte."""
    with open(path, "rb") as f:
        head = f.read(2)
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def _corrupt(path: Path, detail: str) -> str:
    return (f"{path} is truncated or corrupt ({detail}); it was "
            "probably cut off by a crash or an incomplete copy (save_checkpoint itself never "
            "leaves half a file). Copy it again or use an earlier checkpoint")


# ----------------------------------------------------------------------------- checks


def _plain(value):
    """Compare lists and tuples alike: a config may have gone through JSON on the way."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def check_config(saved: dict, expected: dict, what: str) -> None:
    """Raise ValueError listing every field where `saved` and `expected` differ.

    e.g. resuming a "tiny" DiT run with --preset small, or a latent cache built with a VAE
    config other than the VAE checkpoint's. `what` names the thing ("DiT", "VAE", ...).
    """
    missing = object()
    lines = []
    for key in list(expected) + [k for k in saved if k not in expected]:
        a, b = saved.get(key, missing), expected.get(key, missing)
        if a is missing or b is missing or _plain(a) != _plain(b):
            a_txt = "<missing>" if a is missing else repr(a)
            b_txt = "<missing>" if b is missing else repr(b)
            lines.append(f"  {key}: checkpoint has {a_txt}, expected {b_txt}")
    if lines:
        raise ValueError(f"{what} config in the checkpoint differs from the one requested:\n"
                         + "\n".join(lines) + "\nrebuild the model from the checkpoint's own "
                         "config (drop the conflicting flags) or start a fresh run in a new --out")


def load_state_strict(model: torch.nn.Module, state_dict: dict, what: str) -> None:
    """model.load_state_dict(state_dict, strict=True), but all-or-nothing, with clear errors.

    torch's own strict load reports mismatches only after copying every tensor that did
    fit, leaving a half-loaded model behind. We compare names and shapes first and change
    nothing unless everything matches.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    wrong = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
             for k, v in state_dict.items()
             if k in own and hasattr(v, "shape") and tuple(v.shape) != tuple(own[k].shape)]
    if not (missing or unexpected or wrong):
        model.load_state_dict(state_dict, strict=True)
        return

    def listing(title, items):
        more = f"\n    ... and {len(items) - 5} more" if len(items) > 5 else ""
        return f"\n  {title} ({len(items)}):\n    " + "\n    ".join(items[:5]) + more

    msg = f"{what} weights do not fit the model (nothing was loaded):"
    if missing:
        msg += listing("in the model but not the checkpoint", missing)
    if unexpected:
        msg += listing("in the checkpoint but not the model", unexpected)
    if wrong:
        msg += listing("different shapes", wrong)
    if unexpected and all(k.startswith("module.") for k in unexpected):
        msg += ("\nthe keys start with 'module.': it was saved from the DDP wrapper; "
                "save the raw model's state_dict (see minivid.common.wrap_ddp)")
    elif unexpected and all(k.startswith("_orig_mod.") for k in unexpected):
        msg += ("\nthe keys start with '_orig_mod.': it was saved from a torch.compile'd "
                "model; save the raw, uncompiled model's state_dict")
    else:
        msg += ("\nthe checkpoint was made with another config; rebuild the model from "
                "ckpt['config'] instead of flags")
    raise ValueError(msg)


# ----------------------------------------------------------------------------- training runs


def save_run(path: str, dist, *, kind: str, config: dict, model: torch.nn.Module,
             opt: torch.optim.Optimizer, step: int, args, log, budget,
             ema=None, extra: dict | None = None, trainer: str = "") -> None:
    """Every trainer's checkpoint, in the one format (minivid/checkpoint.py), rank 0 only;
    also redraws loss.png beside it. No RNG state and no data position: a step's data
    (batch_indices) and randomness (common.step_generator) are functions of (seed, step).
    `trainer` names the command that wrote it: --resume with another trainer is refused."""
    if not dist.is_main:
        return
    save_checkpoint(path, {
        "kind": kind, "trainer": trainer, "config": config, "model": model.state_dict(),
        "ema": None if ema is None else ema.state_dict(), "optimizer": opt.state_dict(),
        "step": step, "args": vars(args), "log": log.state_dict(),
        "schedule": budget.state_dict(), "extra": extra or {}})
    log.plot(os.path.join(os.path.dirname(path), "loss.png"))


def trainer_of(ckpt: dict) -> str:
    """The command that wrote a run checkpoint; older files (no "trainer" key) by their kind."""
    if ckpt.get("trainer"):
        return ckpt["trainer"]
    if ckpt["kind"] == "dit":
        if ckpt.get("extra", {}).get("distilled"):
            return "distill.py"
        stage = (ckpt.get("args") or {}).get("stage", "video")
        return "train_extend.py" if stage == "extend" else f"train_dit.py --stage {stage}"
    return {"vae": "train_vae.py", "rewriter": "train_rewriter.py",
            "captioner": "train_captioner.py", "probe": "the FD probe (minivid/fd.py)"
            }.get(ckpt["kind"], ckpt["kind"])


def restore_run(ckpt: dict, model, opt, log, ema=None) -> int:
    """Load a save_run checkpoint into fresh objects (all-or-nothing); -> the step to go on at."""
    load_state_strict(model, ckpt["model"], ckpt["kind"])
    opt.load_state_dict(ckpt["optimizer"])
    log.load_state_dict(ckpt["log"])
    if ema is not None:
        ema.load_state_dict(ckpt["ema"])
    return ckpt["step"]


def resume_run(args, kind: str, trajectory: list[str], trainer: str = "") -> dict | None:
    """With --resume: the checkpoint <args.out>/ckpt.pt (a clear error if there is none, or if
    another trainer wrote it), after warning about changed trajectory flags; without: None."""
    if not args.resume:
        return None
    path = os.path.join(args.out, "ckpt.pt")
    if not os.path.exists(path):
        raise FileNotFoundError(f"--resume: no checkpoint at {path}; drop --resume to start "
                                "a new run, or point --out at the run folder to continue")
    ckpt = load_checkpoint(path)
    wrote = trainer_of(ckpt)
    if trainer and wrote != trainer:
        raise ValueError(f"--resume: {path} was written by {wrote}, not {trainer}; resume it "
                         f"with `python {wrote} --out {args.out} --resume`, or give this run "
                         "another --out")
    if ckpt["kind"] != kind:   # same trainer name, other kind: a hand-edited file
        raise ValueError(f"--resume: {path} is a {ckpt['kind']!r} checkpoint, {trainer or kind}"
                         f" writes {kind!r} ones; give this run another --out")
    warn_changed_flags(ckpt["args"], args, trajectory)
    return ckpt


def warn_changed_flags(saved_args: dict, args, names: list[str]) -> None:
    """--resume with flags that shape the trajectory changed: allowed (e.g. a lower --lr after a
    divergence), but say that the run no longer follows the original one exactly."""
    changed = [f"--{k.replace('_', '-')} {saved_args.get(k)!r} -> {getattr(args, k)!r}"
               for k in names if saved_args.get(k) != getattr(args, k)]
    if changed:
        print0("warning: --resume with changed flags (" + ", ".join(changed) + "): the run "
               "continues, but no longer on the exact trajectory of the original")
