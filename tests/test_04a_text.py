"""04a text: captions -> word ids -> text features for the DiT's cross-attention.

Concept: the tokenizer splits a caption into lower-cased words and punctuation and looks
each up in a vocabulary built from the training captions (build_vocab); anything unknown
becomes <unk>, so every string tokenizes. Each caption starts with <bos>; the empty caption
(<bos> alone, allowed only with allow_empty=True) is the null caption that classifier-free
guidance compares against. The encoder is a small transformer whose output at real tokens
must not depend on how much padding the batch needed. Its Block is also the rewriter's GPT
(minivid/gpt.py) with causal=True: one layer, one init, one FLOP formula for both.

    OMP_NUM_THREADS=1 python -m pytest tests/test_04a_text.py -q
"""
import dataclasses
import warnings

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from minivid.gpt import GPT, GPTConfig
from minivid.rope import rope_angles
from minivid.text import (BOS, PAD, PRESETS, SPECIALS, UNK, Block, TextEncoder, Tokenizer,
                          build_vocab)

CAPTIONS = ["A small red circle moves to the left.",
            "On a plain black background: a big blue square, which stays still.",
            "A tiny green triangle rises slowly."]


def make_encoder(max_len=64):
    torch.manual_seed(0)
    cfg = dataclasses.replace(PRESETS["tiny"], vocab=build_vocab(CAPTIONS), max_len=max_len,
                              dim=32, depth=2, heads=4)
    return TextEncoder(cfg)


# 1. The vocabulary: specials first, then words by frequency; punctuation is split off.
def test_01_build_vocab():
    vocab = build_vocab(CAPTIONS + ["Red, red RED!"], max_size=10)
    assert vocab[:3] == SPECIALS and len(vocab) == 10
    assert vocab[3] == "a" and "red" in vocab and "," in vocab  # most frequent words first
    assert build_vocab(CAPTIONS) == build_vocab(list(CAPTIONS))  # deterministic


# 2. Any string tokenizes: known words map to their ids, the rest (non-ASCII too) to <unk>.
def test_02_any_string():
    tok = Tokenizer(build_vocab(CAPTIONS), max_len=64)
    ids = tok.encode("A RED circle, moves left!")
    assert ids[0] == BOS and tok.decode(ids) == "a red circle , moves left <unk>"
    for text in ["Un cercle rouge très petit", "日本語のキャプション", "🎈🎈 a 🎈", "\t\n a \u200b"]:
        ids = tok.encode(text)
        assert ids[0] == BOS and len(ids) >= 2 and all(0 <= i < len(tok.vocab) for i in ids)
    assert tok.encode("café") == [BOS, UNK]                   # one word, not bytes


# 3. A long prompt is truncated to max_len with a warning that says what to do.
def test_03_long_prompt_truncated():
    tok = Tokenizer(build_vocab(CAPTIONS), max_len=16)
    with pytest.warns(UserWarning, match="truncated"):
        ids = tok.encode(" ".join(["red circle"] * 1000))
    assert len(ids) == 16 and ids[0] == BOS


# 4. The empty prompt is an error, unless we are making the null caption on purpose.
def test_04_empty_prompt():
    tok = Tokenizer(build_vocab(CAPTIONS), max_len=16)
    for text in ["", "   ", "\n"]:
        with pytest.raises(ValueError, match="empty prompt"):
            tok.encode(text)
    assert tok.encode("", allow_empty=True) == [BOS]
    with pytest.raises(TypeError, match="list of captions"):
        tok("a red circle")
    with pytest.raises(ValueError, match="build_vocab"):
        Tokenizer(["red", "circle"], max_len=16)


# 5. A batch pads to its longest caption (or to `length`); mask is True on real tokens.
def test_05_batch_and_mask():
    tok = Tokenizer(build_vocab(CAPTIONS), max_len=64)
    ids, mask = tok(CAPTIONS)
    lengths = [len(tok.encode(c)) for c in CAPTIONS]
    assert ids.shape == mask.shape == (3, max(lengths)) and mask.dtype == torch.bool
    assert mask.sum(1).tolist() == lengths and (ids[~mask] == PAD).all()
    null_ids, null_mask = tok([""] * 3, allow_empty=True, length=ids.shape[1])
    assert null_ids.shape == ids.shape and null_mask.sum().item() == 3


# 6. Encoder shapes; features at real tokens do not depend on the batch's padding, and the
#    null caption gives finite features (its <bos> is a real token to attend to).
def test_06_encoder_shapes_and_padding():
    enc = make_encoder().eval()
    feats, mask = enc.encode(CAPTIONS)
    assert feats.shape == (3, mask.shape[1], 32)
    alone, m0 = enc.encode(CAPTIONS[:1])
    torch.testing.assert_close(feats[0, :m0.shape[1]], alone[0], atol=1e-5, rtol=1e-5)
    assert (feats[~mask] == 0).all()
    null, null_mask = enc.encode([""], allow_empty=True)
    assert null.shape == (1, 1, 32) and null_mask.all() and torch.isfinite(null).all()


# 7. The vocabulary lives in the config, so a saved config alone rebuilds the same encoder.
def test_07_config_roundtrip():
    enc = make_encoder()
    cfg = dataclasses.asdict(enc.cfg)
    enc2 = type(enc)(type(enc.cfg)(**cfg))
    enc2.load_state_dict(enc.state_dict())
    ids, mask = enc.tokenizer(CAPTIONS)
    torch.testing.assert_close(enc2(ids, mask), enc(ids, mask))
    with pytest.raises(ValueError, match="vocab is empty"):
        TextEncoder(PRESETS["tiny"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # normal captions do not warn
        enc.encode(CAPTIONS)


# 8. The FLOP formula used for MFU matches torch's FLOP counter (forward x 3 for training).
def test_08_flops_formula():
    enc = make_encoder()
    ids, mask = enc.tokenizer(CAPTIONS)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        enc(ids, mask)
    assert len(CAPTIONS) * enc.flops(ids.shape[1]) == 3 * counter.get_total_flops()


# 9. One Block for both transformers: the text encoder's sees the whole caption; the GPT's
#    (causal=True) lets word l see words 0..l only. Both keep the parameter names their old
#    checkpoints hold, and the shared FLOP formula matches torch's counter for the GPT too.
def test_09_one_block_causal_or_not():
    torch.manual_seed(0)
    rope = rope_angles(torch.arange(6), 8)
    x = torch.randn(2, 6, 32)                                    # (B, L, D)
    y = x.clone()
    y[:, 4] = torch.randn(2, 32)                                 # change word 4
    for causal in (False, True):
        block = Block(32, 4, causal=causal)
        same_past = torch.allclose(block(x, rope)[:, :4], block(y, rope)[:, :4], atol=1e-6)
        assert same_past == causal
    # grams=0: no character n-gram table (the rewriter's adds gram_emb.weight, minivid/gpt.py)
    gpt = GPT(GPTConfig(vocab=["<pad>", "a", "red", "circle"], dim=32, depth=2, heads=4, grams=0))
    layer = ["norm1.weight", "norm1.bias", "norm2.weight", "norm2.bias", "qkv.weight",
             "qkv.bias", "proj.weight", "proj.bias", "mlp.0.weight", "mlp.0.bias",
             "mlp.2.weight", "mlp.2.bias"]
    names = ["tok_emb.weight", *(f"blocks.{i}.{k}" for i in range(2) for k in layer),
             "norm.weight", "norm.bias"]
    assert list(make_encoder().state_dict()) == list(gpt.state_dict()) == names
    ids = torch.randint(0, 4, (3, 10))                           # (B, L)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        gpt(ids)
    assert len(ids) * gpt.flops(10) == 3 * counter.get_total_flops()
