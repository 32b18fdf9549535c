"""The text-to-video model: a text encoder and a DiT in one container, and its training loss.

Where it sits: between the networks (minivid/text.py, minivid/dit.py) and everything that
trains, samples or benchmarks them. train_dit.py trains `FlowLoss`, evaluate's training-step
benchmark times the very same `FlowLoss`, sampling.py and sample.py rebuild the model from a
checkpoint with `load_model`:

    model = build_model(make_config("tiny", vocab, channels=3))  # ModuleDict(text=, dit=)
    loss = FlowLoss(model)(x0, noise, t, ids, mask)              # one training step's loss
    model, ckpt = load_model("runs/dit_video/ckpt.pt")           # EMA weights, eval mode

Tests: `OMP_NUM_THREADS=1 python -m pytest tests/test_10_train_dit.py -q`
"""
from dataclasses import asdict, replace

import torch.nn as nn

from minivid import flow
from minivid.checkpoint import load_checkpoint, load_state_strict
from minivid.dit import PRESETS as DIT_PRESETS, DiT, DiTConfig
from minivid.text import PRESETS as TEXT_PRESETS, TextConfig, TextEncoder


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
    state_dict ("text.*" and "dit.*" keys) in the checkpoint."""
    return nn.ModuleDict({"text": TextEncoder(TextConfig(**config["text"])),
                          "dit": DiT(DiTConfig(**config["dit"]))})


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

    def forward(self, x0, noise, t, ids, mask, cond=None):
        """x0, noise: (B, C, T, h, w), t: (B,), ids/mask: (B, L), cond: clean history (a
        Context, clip extension) or None -> scalar loss, on the noisy frames only."""
        text = self.model["text"](ids, mask)                           # (B, L, D)
        return flow.loss(self.model["dit"], x0, noise, t, text=text, text_mask=mask, cond=cond)

    def flops(self, batch: int, T: int, h: int, w: int, L: int, context_tokens: int = 0) -> int:
        """Forward + backward FLOPs of one call (the networks count 3x their forward)."""
        return batch * (self.model["dit"].flops(T, h, w, L, Nc=context_tokens)
                        + self.model["text"].flops(L))
