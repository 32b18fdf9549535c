"""Prompt rewriting: what a user types -> the dense description the video model trained on.

Where it sits: before the text encoder. `sample.py --rewrite local` and
`python -m minivid.evaluate rewrite` call `rewrite(prompt, seed)`:

    prompt --parse--> what the user STATED --brief--> LM samples --guard--> dense caption
                      (prompt_parse.py)                (gpt.py)             or the template

Why: a diffusion model takes its prompt literally. minivid's DiT trained on dense captions
only (every object's size, colour, shape, start, motion and speed, and the background), so
"a red circle" is out of its distribution and comes out as a static red circle on brown,
the talk's "a cat on a white background". Production stacks put a language model in front
(Wan's prompt_extend, CogVideoX's convert_demo, LTX-Video, Open-Sora, HunyuanVideo); here it
is a tiny GPT trained from scratch on (brief -> dense caption) pairs made from tiny_data.

The four parts, each small:
  1. brief(stated): the parsed prompt in the world's own words ("red circle moves right
     fast ; on black"). The LM reads this, not the raw text: synonyms, typos and unknown words
     were settled by the parser, so a 3-minute model never meets a word it did not train on.
  2. the LM (minivid/gpt.py) samples a dense caption after the brief, with a temperature and
     a seed: one sparse prompt gives different plausible scenes (it fills what was left open).
  3. the guard (check): parse the sample back and keep it only if it is a complete scene
     the world could show (every attribute stated, colours and start cells distinct, objects
     inside the frame and apart) that keeps EVERY attribute the user stated, with as many
     objects as the user named. A rejected sample is followed by the next one of the batch.
  4. the template (template_scene): if every sample fails, fill the open attributes at
     random under the world's rules and write the caption with the world's own captioner.
     Always valid, never creative; the Rewrite says which of LM or template it came from.

Training: `python train_rewriter.py --data tiny_data --out runs/rewriter --minutes 3`.
Trying:   `python -m minivid.rewrite --ckpt runs/rewriter/ckpt.pt "a red circle" "blue box"`.
A real LLM instead: minivid/llm_api.py (an OpenAI-compatible endpoint, the same guard).
"""
import json
import warnings
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from minivid import captions, checkpoint
from minivid.captions import dense_caption
from minivid.gpt import GPT, GPTConfig
from minivid.prompt_parse import parse
from minivid.vocab import split_words
from minivid.world import (BACKGROUNDS, MOTIONS, MOVING, OBJECT_COLOURS, POSITIONS, SHAPES,
                           SIZES, SPEEDS, Obj, Scene, fits, overlaps, sample_scene)

SPECIALS = ["<pad>", "<bos>", "<sep>", "<eos>"]
PAD, BOS, SEP, EOS = 0, 1, 2, 3
MAX_PROMPT_CHARS = 400   # longer prompts are cut (with a warning): the parser reads them all
KEYS = ("colour", "shape", "size", "position", "motion", "speed")


# ----------------------------------------------------------------------------- 1. the brief
def brief(stated: dict) -> str:
    """What the user stated, in canonical words, one object per clause:
    {"objects": [{"colour": "red", "shape": "circle", "motion": "right"}], "background":
    "black"} -> "red circle moves right ; on black"."""
    parts = []
    for o in stated["objects"]:
        words = [o.get("size"), o.get("colour"), o["shape"]]
        if "position" in o:
            words += ["at", o["position"]]
        if "motion" in o:
            words += ["moves", o["motion"]]
        words.append(o.get("speed"))
        parts.append(" ".join(w for w in words if w))
    if stated["background"]:
        parts.append(f"on {stated['background']}")
    return " ; ".join(parts)


def sparse_view(spec: dict, rng) -> dict:
    """A training brief's content: some of a scene's attributes, as a user would state them.
    Every object keeps its shape (that is what makes it an object); the other attributes
    are kept with the probabilities below, so the LM learns to copy what is there and to
    fill what is not."""
    keep = {"colour": 0.85, "size": 0.4, "position": 0.4, "motion": 0.5}
    objects = []
    for o in spec["objects"]:
        d = {"shape": o["shape"]}
        d.update({k: o[k] for k, p in keep.items() if rng.random() < p})
        if o["speed"] and rng.random() < (0.5 if "motion" in d else 0.2):
            d["speed"] = o["speed"]
        objects.append(d)
    return {"background": spec["background"] if rng.random() < 0.35 else None,
            "objects": objects}


def build_vocabulary(n: int = 600, seed: int = 0) -> list[str]:
    """SPECIALS + every word the world's captions and the briefs can use, sorted: each
    phrasing table of minivid/captions.py, the canonical attribute names, and the template
    words of n captions of random scenes (images and clips). A function of the world alone,
    so any dataset of the world gives the same vocabulary."""
    words = set()
    for table in (captions.POSITION_WORDS, captions.MOTION_WORDS, captions.SPEED_WORDS,
                  captions.SIZE_WORDS, captions.SHAPE_WORDS, captions.COLOUR_WORDS):
        for phrases in table.values():
            words.update(w for p in phrases for w in split_words(p))
    words.update(split_words(" ".join([*OBJECT_COLOURS, *BACKGROUNDS, *SHAPES, *SIZES,
                                       *POSITIONS, *MOTIONS, *SPEEDS, "at moves on ;"])))
    rng = np.random.default_rng(seed)
    for k in range(n):
        scene = sample_scene(rng, frames=(1, 16)[k % 2])
        words.update(split_words(dense_caption(scene, rng, where=bool(k % 3))))
    return SPECIALS + sorted(words)


def stated_of(spec: dict) -> dict:
    """Everything a scene spec states, in the parser's form (the full brief)."""
    objs = [{k: o[k] for k in KEYS if o.get(k)} for o in spec["objects"]]
    return {"background": spec["background"], "objects": objs}


def encode_pair(vocab_index: dict, brief_text: str, dense: str | None, max_len: int):
    """-> ids [BOS, brief..., SEP, dense..., EOS] (no dense: up to SEP, the sampling prompt)."""
    ids = [BOS] + [vocab_index[w] for w in split_words(brief_text)] + [SEP]
    if dense is not None:
        ids += [vocab_index[w] for w in split_words(dense)] + [EOS]
    if len(ids) > max_len:
        raise ValueError(f"{len(ids)} tokens > max_len {max_len}: raise GPTConfig.max_len")
    return ids


def training_batch(specs, rows, vocab_index, max_len, rng):
    """A batch of (brief -> dense caption) pairs for the scenes `rows`, phrased with `rng`:
    ids (B, L) and targets (B, L), the target -1 (ignored) except on the caption and EOS."""
    seqs, starts = [], []
    for i in rows:
        spec = specs[int(i)]
        ids = encode_pair(vocab_index, brief(sparse_view(spec, rng)),
                          dense_caption(Scene.from_dict(spec), rng), max_len)
        seqs.append(ids)
        starts.append(ids.index(SEP))
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), PAD, dtype=torch.long)                # (B, L)
    target = torch.full((len(seqs), L), -1, dtype=torch.long)              # (B, L)
    for b, (s, k) in enumerate(zip(seqs, starts)):
        ids[b, :len(s)] = torch.tensor(s)
        target[b, k:len(s) - 1] = torch.tensor(s[k + 1:])   # predict each caption word + EOS
    return ids, target


def lm_loss(model, ids, target):
    """Mean cross-entropy of the next word, over caption positions only."""
    logits = model(ids)                                                    # (B, L, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), ignore_index=-1)


# ----------------------------------------------------------------------------- 2. sampling
@torch.no_grad()
def sample_ids(model, prefix: list[int], n: int, temperature: float, seed: int) -> list[list]:
    """n continuations of one prefix, batched, until EOS or max_len: -> n lists of word ids
    (EOS excluded). temperature 0 = greedy; the same seed gives the same samples."""
    device = model.tok_emb.weight.device
    g = torch.Generator().manual_seed(seed)
    ids = torch.tensor([prefix] * n, device=device)                        # (n, l)
    done = torch.zeros(n, dtype=torch.bool, device=device)
    while ids.shape[1] < model.cfg.max_len and not done.all():
        logits = model(ids)[:, -1].float().cpu()                           # (n, V)
        logits[:, [PAD, BOS, SEP]] = -float("inf")
        if temperature == 0:
            nxt = logits.argmax(-1)
        else:
            nxt = torch.multinomial(F.softmax(logits / temperature, -1), 1, generator=g)[:, 0]
        nxt = torch.where(done.cpu(), torch.full_like(nxt, EOS), nxt)
        done |= (nxt == EOS).to(device)
        ids = torch.cat([ids, nxt[:, None].to(device)], 1)
    out = []
    for row in ids[:, len(prefix):].tolist():
        out.append(row[:row.index(EOS)] if EOS in row else row)
    return out


def detokenize(words: list[str]) -> str:
    """Words -> a sentence: "a red circle , which drifts up - left ." -> "A red circle,
    which drifts up-left."."""
    text = " ".join(words)
    for a, b in ((" ,", ","), (" .", "."), (" ;", ";"), (" :", ":"), (" - ", "-")):
        text = text.replace(a, b)
    sentences = [s.strip() for s in text.split(". ")]
    return ". ".join(s[:1].upper() + s[1:] for s in sentences if s)


# ----------------------------------------------------------------------------- 3. the guard
def scene_of(stated: dict, frames: int = 16, res: int = 32) -> Scene | None:
    """A complete parse -> the Scene it describes; None if any attribute is missing."""
    if not stated["background"] or not stated["objects"]:
        return None
    objs = []
    for o in stated["objects"]:
        if any(k not in o for k in KEYS[:5]):
            return None
        objs.append(Obj(o["shape"], o["colour"], o["size"], o["position"], o["motion"],
                        o.get("speed", "")))
    return Scene(stated["background"], objs, frames, res)


def world_problems(scene: Scene) -> list[str]:
    """What makes a scene one the world never shows (and the DiT never saw)."""
    a = scene.objects
    out = [f"the {o.colour} {o.shape}: '{o.motion}' "
           + ("needs a speed" if o.motion in MOVING else "has no speed")
           for o in a if (o.motion in MOVING) != bool(o.speed)]
    if len(a) > 2:
        out.append(f"{len(a)} objects (the world has 1 or 2)")
    if out:          # the geometry below needs a valid motion and speed
        return out
    out = [f"the {o.colour} {o.shape} leaves the frame" for o in a
           if not fits(o, scene.frames, scene.res)]
    if len(a) == 2 and a[0].colour == a[1].colour:
        out.append("two objects of one colour")
    if len(a) == 2 and (a[0].position == a[1].position or overlaps(a[0], a[1], scene.frames,
                                                                   scene.res)):
        out.append("the two objects overlap")
    return out


def check(text: str, stated: dict, frames: int = 16) -> tuple[list[str], Scene | None]:
    """The guard: -> (problems, scene). No problems = the rewrite keeps every attribute the
    user stated, fills all the others, and describes a scene the world could show."""
    got = parse(text)
    scene = scene_of(got.stated(), frames)
    if scene is None:
        return ["incomplete: some attribute is not stated"], None
    want = stated["objects"]
    problems = []
    if want and len(got.objects) != len(want):
        problems.append(f"{len(got.objects)} objects, the prompt names {len(want)}")
    if stated["background"] and got.background != stated["background"]:
        problems.append(f"background {got.background}, the prompt says {stated['background']}")
    # the stated objects in order, or (two objects) in the other order
    orders = [got.objects] + ([got.objects[::-1]] if len(got.objects) == 2 else [])
    best = min(([f"{k} {g.get(k)}, the prompt says {w[k]}" for w, g in zip(want, objs)
                 for k in w if g.get(k) != w[k]] for objs in orders), key=len)
    return problems + best + world_problems(scene), scene


# ----------------------------------------------------------------------------- 4. template
def template_scene(stated: dict, rng, frames: int = 16, res: int = 32,
                   tries: int = 500) -> Scene:
    """Fill every open attribute at random under the world's rules (distinct colours and
    cells, inside the frame, apart); the stated ones are kept as they are. If the stated
    attributes themselves break a rule (a large ball in a corner moving out of it), the
    last draw is returned anyway: the user's words win over plausibility."""
    want = stated["objects"] or [{} for _ in range(1 if rng.random() < 0.6 else 2)]
    for _ in range(tries):
        colours = [c for c in OBJECT_COLOURS if c not in {o.get("colour") for o in want}]
        objs = []
        for o in want:
            colour = o.get("colour") or str(rng.choice(colours))
            if colour in colours:
                colours.remove(colour)
            motion = o.get("motion") or ("still" if frames == 1 else str(rng.choice(MOTIONS)))
            speed = o.get("speed") or str(rng.choice(list(SPEEDS)))
            objs.append(Obj(o.get("shape") or str(rng.choice(SHAPES)), colour,
                            o.get("size") or str(rng.choice(list(SIZES))),
                            o.get("position") or str(rng.choice(list(POSITIONS))), motion,
                            speed if motion in MOVING else ""))
        scene = Scene(stated["background"] or str(rng.choice(list(BACKGROUNDS))), objs,
                      frames, res)
        if not world_problems(scene):
            break
    return scene


def prompt_seed(seed: int, text: str) -> int:
    """The random stream of one (seed, prompt): reproducible, and different prompts with
    the same seed do not fill their gaps the same way (one batch is not all "bottom right")."""
    mixed = np.random.SeedSequence([seed, zlib.crc32(text.encode())]).generate_state(1)[0]
    return int(mixed)


# ----------------------------------------------------------------------------- the interface
@dataclass
class Rewrite:
    prompt: str                  # what the user typed (cut to MAX_PROMPT_CHARS)
    text: str                    # the dense caption to generate from
    source: str                  # "local" (the tiny LM) | "openai" (an endpoint) | "template"
    tries: int                   # samples looked at before one passed the guard
    stated: dict                 # what the prompt states (prompt_parse)
    scene: dict                  # the whole scene the rewrite describes (Scene.to_dict())
    unknown: list = field(default_factory=list)    # words left out: not in the world
    fixed: dict = field(default_factory=dict)      # typos read as world words
    rejected: list = field(default_factory=list)   # (sample, problems) the guard refused
    warnings: list = field(default_factory=list)


def read_prompt(prompt) -> tuple[str, list[str]]:
    """Check a user prompt: -> (prompt, warnings). Empty prompts are an error; very long
    ones are cut at a word boundary."""
    if not isinstance(prompt, str):
        raise TypeError(f"a prompt must be a str, got {type(prompt).__name__}")
    text = " ".join(prompt.split())
    if not text:
        raise ValueError("empty prompt: say what should be in the video, e.g. 'a red circle "
                         "moving to the left'")
    notes = []
    if len(text) > MAX_PROMPT_CHARS:
        cut = text[:MAX_PROMPT_CHARS].rsplit(" ", 1)[0]
        notes.append(f"prompt of {len(text)} characters cut to {len(cut)} "
                     f"(MAX_PROMPT_CHARS = {MAX_PROMPT_CHARS})")
        warnings.warn(notes[-1])
        text = cut
    return text, notes


def finish(prompt, text, source, tries, parsed, scene, rejected, notes) -> Rewrite:
    if parsed.unknown:
        notes.append("left out (not in the tiny world): " + ", ".join(parsed.unknown))
    if not parsed.objects:
        notes.append("the prompt names no object the world knows (circle, square, "
                     "triangle): the scene is made up")
    return Rewrite(prompt, text, source, tries, parsed.stated(), scene.to_dict(),
                   parsed.unknown, parsed.fixed, rejected, notes)


def by_template(prompt: str, seed: int, frames: int = 16, rejected=(), notes=(),
                tries: int = 0) -> Rewrite:
    """The deterministic fallback: the world's own captioner on a template-filled scene."""
    text, notes = read_prompt(prompt)[0], list(notes)
    parsed = parse(text)
    rng = np.random.default_rng(prompt_seed(seed, text))
    scene = template_scene(parsed.stated(), rng, frames)
    problems = world_problems(scene)
    if problems:
        notes.append("the stated scene breaks the world's rules: " + "; ".join(problems))
    return finish(text, dense_caption(scene, rng), "template", tries, parsed, scene,
                  list(rejected), notes)


class Rewriter:
    """The local rewriter: a trained GPT + the guard + the template.

    rw = Rewriter.load("runs/rewriter/ckpt.pt")      # or Rewriter(gpt) for a model in memory
    r = rw("a red circle", seed=0)   # r.text, r.source ("local" | "template"), r.stated ..."""

    def __init__(self, model: GPT, temperature: float = 0.8, tries: int = 8):
        if temperature < 0 or tries < 1:
            raise ValueError(f"temperature {temperature} must be >= 0 and tries {tries} >= 1")
        self.model = model.eval()
        self.vocab = model.cfg.vocab
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.temperature, self.tries, self.frames = temperature, tries, 16

    @classmethod
    def load(cls, ckpt_path, temperature: float = 0.8, tries: int = 8, device: str = "cpu"):
        """A train_rewriter.py checkpoint (its EMA weights) -> Rewriter."""
        ckpt = checkpoint.load_checkpoint(ckpt_path, kind="rewriter")
        model = GPT(GPTConfig(**ckpt["config"]))
        checkpoint.load_state_strict(model, ckpt["ema"]["shadow"], f"rewriter ({ckpt_path})")
        return cls(model.to(device), temperature, tries)

    def samples(self, stated: dict, n: int, seed: int) -> list[str]:
        """n raw LM rewrites of a brief (no guard)."""
        prefix = encode_pair(self.index, brief(stated), None, self.model.cfg.max_len)
        rows = sample_ids(self.model, prefix, n, self.temperature, prompt_seed(seed, brief(stated)))
        return [detokenize([self.vocab[i] for i in row]) for row in rows]

    def __call__(self, prompt: str, seed: int = 0) -> Rewrite:
        text, notes = read_prompt(prompt)
        parsed = parse(text)
        stated = parsed.stated()
        rejected = []
        for k, sample in enumerate(self.samples(stated, self.tries, seed), start=1):
            problems, scene = check(sample, stated, self.frames)
            if not problems:
                return finish(text, sample, "local", k, parsed, scene, rejected, notes)
            rejected.append((sample, problems))
        notes.append(f"all {self.tries} LM samples failed the guard; template used")
        return by_template(text, seed, self.frames, rejected, notes, self.tries)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Rewrite prompts with a trained rewriter; prints "
                                 "each rewrite, where it came from and the guard's verdicts.",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("prompts", nargs="+", help="sparse prompts, e.g. 'a red circle'")
    ap.add_argument("--ckpt", default="runs/rewriter/ckpt.pt", help="train_rewriter.py output")
    ap.add_argument("--seeds", type=int, default=2, help="rewrites per prompt (seeds 0..n-1)")
    ap.add_argument("--temperature", type=float, default=0.8, help="LM sampling temperature")
    a = ap.parse_args()
    rw = Rewriter.load(a.ckpt, a.temperature)
    for p in a.prompts:
        for s in range(a.seeds):
            r = rw(p, seed=s)
            print(json.dumps({"prompt": p, "seed": s, "rewrite": r.text, "source": r.source,
                              "tries": r.tries, "unknown": r.unknown, "fixed": r.fixed,
                              "warnings": r.warnings}))
