"""Prompt rewriting: what a user types -> the dense description the video model trained on.

Where it sits: before the text encoder. `sample.py --rewrite local` and
`python -m minivid.evaluate rewrite` call `Rewriter(prompt, seed)`:

    raw prompt --LM--> reading --LM--> dense caption --guard--> the rewrite (+ notes)
                 (greedy: what you asked,   (sampled: fills      (the world's rules, and
                  in the world's words)      what you left open)  the caption keeps the reading)

Why: a diffusion model takes its prompt literally. minivid's DiT learned from dense captions
(every object's size, colour, shape, start, motion and speed, and the background), so what
people type is out of its distribution. Production stacks put a language model in front
(Wan's prompt_extend, CogVideoX's convert_demo, HunyuanVideo); here it is a tiny GPT
(minivid/gpt.py) trained from scratch, END TO END: it reads the raw prompt, no rule table
stands between the user and the model. Its training pairs come from a generator of user
language (minivid/user_language.py): synonyms, typos, negation, counts, relations,
sequences, requests the world cannot show.

The parts:
  1. the input: each prompt word is its word id (or <unk>) PLUS hashed character n-grams
     (fastText's trick, https://arxiv.org/abs/1607.04606): "reddish" and "circlular" were
     never seen, but they share n-grams with "red" and "circle". Bytes would carry the same
     information but make a 3-minute model learn to spell; words alone would make every
     typo an <unk>.
  2. the LM writes the READING first, greedily: what the prompt states, in the world's words
     ("small red circle moves still ; note then up ; on black"), then samples the dense
     caption after it. The reading makes the model's understanding visible and checkable,
     and says what the world cannot show ("note at most two").
  3. the guard (minivid/rewrite_check.py) reads the caption (generator language:
     minivid/prompt_parse.py, the checker's parser, never the user's words) and accepts it
     only if it keeps every attribute of the reading and describes a scene the world can
     show; else the next sample; if all fail, the template fills the reading under the
     world's rules.
  4. notes: every "note" of the reading becomes a sentence the user reads; words of the prompt
     the model was never taught are listed; a reading word the LM chose with probability
     < 0.5 is reported as unsure. Nothing is dropped or changed silently.

Baseline (`keyword_rewrite`, no LM): spot the world's own colour, size, shape and background
words, fill everything else from the world's prior. rewrite_bench.py scores both.

Training: `python train_rewriter.py --out runs/rewriter --minutes 4.5`.
Trying:   `python -m minivid.rewrite --ckpt runs/rewriter/ckpt.pt "two circles" "a dog"`.
A real LLM instead: minivid/llm_api.py (an OpenAI-compatible endpoint, the same guard).
"""
import json
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from minivid import captions, checkpoint, user_language
from minivid.captions import dense_caption
from minivid.gpt import GPT, GPTConfig
from minivid.rewrite_check import check, keeps, read_reading, world_problems  # the guard
from minivid.vocab import (BACKGROUNDS, MOTIONS, MOVING, OBJECT_COLOURS, POSITIONS, SHAPES,
                           SIZES, SPEEDS, split_words)
from minivid.scene import Obj, Scene, sample_scene

SPECIALS = ["<pad>", "<bos>", "<sep>", "<say>", "<eos>", "<unk>"]
PAD, BOS, SEP, SAY, EOS, UNK = range(6)
MAX_PROMPT_CHARS = 400   # longer prompts are cut at a word (with a note)
MAX_PROMPT_WORDS = 48    # so prompt + reading + caption fit in the GPT's max_len
GRAMS_PER_WORD = 16      # hashed character n-grams per word (3-, 4- and 5-grams of <word>)

# What each note of the reading tells the user.
NOTE_TEXT = {
    "one colour each": "two objects never share a colour in this world: the second one got "
                       "another colour",
    "at most two": "the world shows at most two objects: two are drawn",
    "black is a background": "black is a background colour only: the object got another colour",
    "no overlap": "objects never overlap or hide each other here: both are drawn side by side",
    "unknown words": "part of the prompt names nothing the world can show; it was left out",
}


# ----------------------------------------------------------------------------- 1. the input
def ngrams(word: str, buckets: int) -> list[int]:
    """Hashed character 3-, 4- and 5-grams of "<word>": ids in 1..buckets-1 (0 = none)."""
    w = f"<{word}>"
    grams = [w[i:i + n] for n in (3, 4, 5) for i in range(len(w) - n + 1)]
    # a word of 8+ letters keeps its first 16: all its 3-grams, some 4-grams, few 5-grams
    return [1 + zlib.crc32(g.encode()) % (buckets - 1) for g in grams[:GRAMS_PER_WORD]]


def build_vocabulary(n: int = 3000, seed: int = 0) -> list[str]:
    """SPECIALS + the words of the readings and dense captions of n generated pairs + the
    training lexicon of user language (never the held-out forms). A function of the world
    and the generator alone."""
    words = set(user_language.lexicon(held=False))
    words |= {w for ws in (user_language.OUT_OF_WORLD, user_language.OUT_COLOURS,
                           user_language.FOREIGN) for t in ws for w in split_words(t)}
    rng = np.random.default_rng(seed)
    for _ in range(n):
        _, reading, scene = user_language.sample_pair(rng, p_typo=0)
        words.update(split_words(reading) + split_words(dense_caption(scene, rng)))
    for table in (captions.POSITION_WORDS, captions.MOTION_WORDS, captions.SPEED_WORDS,
                  captions.SIZE_WORDS, captions.SHAPE_WORDS, captions.COLOUR_WORDS):
        words.update(w for ps in table.values() for p in ps for w in split_words(p))
    return SPECIALS + sorted(words - set(SPECIALS))


def encode(index: dict, prompt: str, reading: str | None = None, caption: str | None = None,
           buckets: int = 0):
    """-> (ids, grams): [BOS, prompt..., SEP, reading..., SAY, caption..., EOS], cut where the
    parts given end; grams: per position a list of n-gram ids (prompt words only)."""
    words = split_words(prompt)[:MAX_PROMPT_WORDS]
    ids = [BOS] + [index.get(w, UNK) for w in words] + [SEP]
    grams = [[]] + [ngrams(w, buckets) if buckets else [] for w in words] + [[]]
    if reading is not None:
        ids += [index[w] for w in split_words(reading)] + [SAY]
    if caption is not None:
        ids += [index[w] for w in split_words(caption)] + [EOS]
    return ids, grams + [[]] * (len(ids) - len(grams))


def pad_batch(rows, max_len):
    """[(ids, grams)] -> ids (B, L) long, grams (B, L, G) long (0 = no n-gram)."""
    L = max(len(ids) for ids, _ in rows)
    if L > max_len:
        raise ValueError(f"{L} tokens > max_len {max_len}: raise GPTConfig.max_len")
    ids = np.full((len(rows), L), PAD, dtype=np.int64)                      # (B, L)
    grams = np.zeros((len(rows), L, GRAMS_PER_WORD), dtype=np.int64)        # (B, L, G)
    for b, (s, g) in enumerate(rows):
        ids[b, :len(s)] = s
        for pos, gs in enumerate(g):
            if gs:
                grams[b, pos, :len(gs)] = gs
    return torch.from_numpy(ids), torch.from_numpy(grams)


def scene_pool(n, seed):
    """n scenes of the world to write prompts about: 4 in 5 from the train split, 1 in 5
    with a held-out colour + shape pair (those are the DiT's compositional test, not the
    rewriter's: it must copy "red triangle" like any other pair). Drawn once, because
    drawing a scene under the world's rules costs more than writing a prompt for it."""
    rng = np.random.default_rng([seed, 7])
    return [sample_scene(rng, "train" if rng.random() < 0.8 else "test", frames=16)
            for _ in range(n)]


def training_batch(n, index, cfg, rng, word_dropout=0.1, p_caption=0.3, pool=None):
    """n fresh (prompt -> reading, caption) pairs from the generator of user language:
    ids (B, L), grams (B, L, G), targets (B, L): -1 (ignored) on the prompt, the next word on
    the reading and the caption. word_dropout: prompt words whose id becomes <unk> (their
    n-grams stay), so the model learns to read a word it has no id for. p_caption: the
    share of pairs that go on to the caption; the others end after the reading. Reading
    is the hard part and the caption is two thirds of the tokens: measured at 616 steps,
    every pair with its caption read 33% of held-back prompts exactly. pool: the scenes to
    draw from (scene_pool), else fresh ones."""
    rows, starts = [], []
    for _ in range(n):
        base = pool[int(rng.integers(len(pool)))] if pool else scene_pool(1, int(rng.integers(1 << 30)))[0]
        prompt, reading, scene = user_language.user_prompt(base, rng)
        caption = dense_caption(scene, rng) if rng.random() < p_caption else None
        ids, grams = encode(index, prompt, reading, caption, cfg.grams)
        sep = ids.index(SEP)
        ids = [UNK if 0 < i < sep and rng.random() < word_dropout else t
               for i, t in enumerate(ids)]
        rows.append((ids, grams))
        starts.append(sep)
    ids, grams = pad_batch(rows, cfg.max_len)
    target = torch.full_like(ids, -1)                                       # (B, L)
    for b, ((s, _), k) in enumerate(zip(rows, starts)):
        target[b, k:len(s) - 1] = torch.tensor(s[k + 1:])
    return ids, grams, target


def lm_loss(model, ids, grams, target, reduction="mean"):
    """Cross-entropy of the next word over the reading and caption positions (their mean, or
    with reduction="sum" their sum)."""
    logits = model(ids, grams)                                              # (B, L, V)
    return F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(), ignore_index=-1,
                           reduction=reduction)


def length_groups(ids, grams, target):
    """Split a batch into the pairs that end after the reading and those that go on to the
    caption, each cut to its own longest row: [(ids, grams, target), ...] (empty groups left
    out). Two thirds of the pairs are ~45 tokens long, so this halves the work of a step."""
    has_caption = (ids == EOS).any(1)                                       # (B,)
    out = []
    for keep in (~has_caption, has_caption):
        if keep.any():
            L = int((ids[keep] != PAD).sum(1).max())
            out.append((ids[keep, :L], grams[keep, :L], target[keep, :L]))
    return out


# ----------------------------------------------------------------------------- 2. decoding
@torch.no_grad()
def decode(model, ids: list, grams: list, n: int, temperature: float, seed: int, stop: int,
           banned=(PAD, BOS, SEP, UNK)):
    """n continuations of one prefix, batched, until `stop` or max_len -> (rows of new ids
    without `stop`, rows of each chosen id's probability). temperature 0 = greedy."""
    cfg = model.cfg
    device = model.tok_emb.weight.device
    g = torch.Generator().manual_seed(seed)
    x = torch.tensor([ids] * n, device=device)                              # (n, l)
    _, gr = pad_batch([(ids, grams)], cfg.max_len)
    gr = torch.cat([gr, torch.zeros(1, cfg.max_len - gr.shape[1], GRAMS_PER_WORD,
                                    dtype=torch.long)], 1).expand(n, -1, -1).to(device)
    done = torch.zeros(n, dtype=torch.bool)
    probs = []
    while x.shape[1] < cfg.max_len and not done.all():
        logits = model(x, gr[:, :x.shape[1]])[:, -1].float().cpu()          # (n, V)
        logits[:, list(banned)] = -float("inf")
        p = F.softmax(logits / max(temperature, 1e-6), -1)
        nxt = logits.argmax(-1) if temperature == 0 else torch.multinomial(p, 1, generator=g)[:, 0]
        probs.append(F.softmax(logits, -1).gather(1, nxt[:, None])[:, 0])
        nxt = torch.where(done, torch.full_like(nxt, stop), nxt)
        done |= nxt == stop
        x = torch.cat([x, nxt[:, None].to(device)], 1)
    rows = x[:, len(ids):].tolist()
    probs = torch.stack(probs, 1).tolist() if probs else [[] for _ in rows]
    out = []
    for row, pr in zip(rows, probs):
        k = row.index(stop) if stop in row else len(row)
        out.append((row[:k], pr[:k]))
    return out


def detokenize(words: list[str]) -> str:
    """Words -> a sentence: "a red circle , which drifts up - left ." -> "A red circle,
    which drifts up-left."."""
    text = " ".join(words)
    for a, b in ((" ,", ","), (" .", "."), (" ;", ";"), (" :", ":"), (" - ", "-")):
        text = text.replace(a, b)
    sentences = [s.strip() for s in text.split(". ")]
    return ". ".join(s[:1].upper() + s[1:] for s in sentences if s)


# ----------------------------------------------------------------------------- 3. template
def template_scene(read: dict, rng, frames: int = 16, res: int = 32, tries: int = 500) -> Scene:
    """Fill every open attribute of a reading at random under the world's rules (distinct
    colours and cells, inside the frame, apart, the negations and relations kept); the stated
    ones are kept as they are. If the stated attributes themselves break a rule, the last
    draw is returned anyway: the user's words win over plausibility."""
    want = read["objects"] or [{} for _ in range(1 if rng.random() < 0.6 else 2)]
    for _ in range(tries):
        colours = [c for c in OBJECT_COLOURS if c not in {o.get("colour") for o in want}]
        objs = []
        for o in want:
            ok = [c for c in colours if c != o.get("not")] or colours
            colour = o.get("colour") or str(rng.choice(ok))
            if colour in colours:
                colours.remove(colour)
            motion = o.get("motion") or ("still" if frames == 1 else str(rng.choice(MOTIONS)))
            speed = o.get("speed") or str(rng.choice(list(SPEEDS)))
            objs.append(Obj(o.get("shape") or str(rng.choice(SHAPES)), colour,
                            o.get("size") or str(rng.choice(list(SIZES))),
                            o.get("position") or str(rng.choice(list(POSITIONS))), motion,
                            speed if motion in MOVING else ""))
        scene = Scene(read["background"] or str(rng.choice(list(BACKGROUNDS))), objs,
                      frames, res)
        if not world_problems(scene) and not keeps(objs, want):
            break
    return scene


def keyword_reading(prompt: str) -> dict:
    """The simplest rule that does the rewriter's job (the baseline, no LM): the world's own
    words, spotted one by one. Each shape word (circle, square, triangle) is an object, the
    colour and size words right before it are its own, a background word anywhere is the
    background. Motion, position, negation, counts, relations: not read."""
    words = split_words(prompt)
    out = {"background": None, "objects": [], "notes": [], "bad": []}
    for i, w in enumerate(words):
        if w in SHAPES:
            o = {"shape": w}
            for prev in reversed(words[max(0, i - 2):i]):
                if prev in OBJECT_COLOURS:
                    o.setdefault("colour", prev)
                elif prev in SIZES:
                    o.setdefault("size", prev)
            out["objects"].append(o)
        elif w in BACKGROUNDS and out["background"] is None:
            out["background"] = w
    out["objects"] = out["objects"][:2]
    return out


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
    source: str                  # "local" (the LM) | "openai" | "template" | "keywords"
    tries: int                   # samples looked at before one passed the guard
    reading: str                 # what the LM read in the prompt (the world's words)
    scene: dict                  # the whole scene the rewrite describes (Scene.to_dict())
    notes: list = field(default_factory=list)      # what the world cannot show, and why
    unknown: list = field(default_factory=list)    # prompt words the LM was never taught
    unsure: list = field(default_factory=list)     # reading words chosen with p < 0.5
    rejected: list = field(default_factory=list)   # (sample, problems) the guard refused
    warnings: list = field(default_factory=list)   # everything the user should read


def read_prompt(prompt) -> tuple[str, list[str]]:
    """Check a user prompt: -> (prompt, warnings). Empty prompts are an error; very long
    ones are cut at a word boundary."""
    if not isinstance(prompt, str):
        raise TypeError(f"a prompt must be a str, got {type(prompt).__name__}")
    text = " ".join(prompt.split())
    if not split_words(text):
        raise ValueError("empty prompt: say what should be in the video, e.g. 'a red circle "
                         "moving to the left'")
    notes = []
    if len(text) > MAX_PROMPT_CHARS:
        cut = text[:MAX_PROMPT_CHARS].rsplit(" ", 1)[0]
        notes.append(f"prompt of {len(text)} characters cut to {len(cut)} "
                     f"(MAX_PROMPT_CHARS = {MAX_PROMPT_CHARS}): the rest was not read")
        text = cut
    if len(split_words(text)) > MAX_PROMPT_WORDS:
        notes.append(f"only the first {MAX_PROMPT_WORDS} words were read "
                     f"(MAX_PROMPT_WORDS); say the important things first")
    return text, notes


def note_sentences(read: dict) -> list[str]:
    """The reading's notes as sentences a user reads."""
    out = []
    for n in read["notes"]:
        if n in NOTE_TEXT:
            out.append(NOTE_TEXT[n])
        elif n.startswith("then "):
            out.append(f"a 16-frame clip shows one motion per object: 'then {n[5:]}' needs a "
                       "second clip (sample.py --extend)")
        elif n.startswith("also "):
            out.append(f"one object, two colours: '{n[5:]}' was dropped")
        elif n.endswith(" is not a background"):
            out.append(f"{n.split()[0]} is not a background colour here (black, grey, navy, "
                       "brown): the background is drawn from those")
        else:
            out.append(f"note: {n}")
    if read["bad"]:
        out.append("parts of the reading were malformed and ignored: " + "; ".join(read["bad"]))
    return out


def finish(prompt, caption, source, tries, reading_text, read, scene, rejected, notes,
           unknown=(), unsure=()) -> Rewrite:
    notes = note_sentences(read) + list(notes)
    if unknown:
        notes.append("words the rewriter never learned (read from their letters, or ignored): "
                     + ", ".join(unknown))
    if unsure:
        notes.append("unsure how to read: " + ", ".join(unsure) + " (check the reading)")
    problems = world_problems(scene)
    if problems:
        notes.append("the stated scene breaks the world's rules: " + "; ".join(problems))
    return Rewrite(prompt, caption, source, tries, reading_text, scene.to_dict(),
                   list(read["notes"]), list(unknown), list(unsure), list(rejected), notes)


def by_template(prompt: str, read: dict, reading_text: str, seed: int, frames: int = 16,
                source: str = "template", rejected=(), notes=(), tries: int = 0, **kw):
    """The fallback: the world's own captioner on a scene filled in from the reading."""
    rng = np.random.default_rng(prompt_seed(seed, prompt))
    scene = template_scene(read, rng, frames)
    return finish(prompt, dense_caption(scene, rng), source, tries, reading_text, read, scene,
                  rejected, notes, **kw)


def keyword_rewrite(prompt: str, seed: int = 0, frames: int = 16) -> Rewrite:
    """The baseline rewriter (no LM): keyword_reading + the template."""
    text, notes = read_prompt(prompt)
    return by_template(text, keyword_reading(text), "", seed, frames, "keywords", notes=notes)


class Rewriter:
    """The local rewriter: a trained GPT + the guard + the template.

    rw = Rewriter.load("runs/rewriter/ckpt.pt")      # or Rewriter(gpt) for a model in memory
    r = rw("a red circle", seed=0)   # r.text, r.reading, r.notes, r.source ..."""

    def __init__(self, model: GPT, temperature: float = 0.8, tries: int = 8):
        if temperature < 0 or tries < 1:
            raise ValueError(f"temperature {temperature} must be >= 0 and tries {tries} >= 1")
        self.model = model.eval()
        self.vocab = model.cfg.vocab
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.known = user_language.lexicon(held=True) | set(self.vocab)
        self.temperature, self.tries, self.frames = temperature, tries, 16

    @classmethod
    def load(cls, ckpt_path, temperature: float = 0.8, tries: int = 8, device: str = "cpu"):
        """A train_rewriter.py checkpoint (its EMA weights) -> Rewriter."""
        ckpt = checkpoint.load_checkpoint(ckpt_path, kind="rewriter")
        if not ckpt["config"].get("grams"):
            raise ValueError(f"{ckpt_path}: a rewriter from before the LM read raw prompts "
                             "(it reads parsed briefs). Retrain: python train_rewriter.py "
                             "--out runs/rewriter")
        model = GPT(GPTConfig(**ckpt["config"]))
        checkpoint.load_state_strict(model, ckpt["ema"]["shadow"], f"rewriter ({ckpt_path})")
        return cls(model.to(device), temperature, tries)

    def read(self, prompt: str) -> tuple[str, list, list]:
        """The LM's reading of a prompt, greedy: -> (reading text, reading ids, unsure words)."""
        ids, grams = encode(self.index, prompt, buckets=self.model.cfg.grams)
        (row, probs), = decode(self.model, ids, grams, 1, 0.0, 0, stop=SAY,
                               banned=(PAD, BOS, SEP, UNK, EOS))
        words = [self.vocab[i] for i in row]
        unsure = [f"{w} ({p:.2f})" for w, p in zip(words, probs)
                  if p < 0.5 and w[0].isalnum()][:5]
        return " ".join(words).replace(" - ", "-"), row, unsure     # "up - left": "up-left"

    def samples(self, prompt: str, n: int, seed: int) -> tuple[str, list[str], list]:
        """-> (reading, n sampled captions after it, unsure reading words); no guard."""
        reading, row, unsure = self.read(prompt)
        ids, grams = encode(self.index, prompt, buckets=self.model.cfg.grams)
        if len(ids) + len(row) + 1 >= self.model.cfg.max_len:   # the reading never ended:
            return reading, [""] * n, unsure                     # no room for a caption
        rows = decode(self.model, ids + row + [SAY], grams, n, self.temperature,
                      prompt_seed(seed, prompt), stop=EOS)
        return reading, [detokenize([self.vocab[i] for i in r]) for r, _ in rows], unsure

    def __call__(self, prompt: str, seed: int = 0) -> Rewrite:
        text, notes = read_prompt(prompt)
        reading, captions_, unsure = self.samples(text, self.tries, seed)
        read = read_reading(reading)
        unknown = [w for w in dict.fromkeys(split_words(text)[:MAX_PROMPT_WORDS])
                   if w not in self.known and any(c.isalpha() for c in w)]
        if not read["objects"] and "unknown words" not in read["notes"]:
            notes.append("the rewriter read no object in the prompt: the scene is made up")
        rejected = []
        for k, caption in enumerate(captions_, start=1):
            problems, scene = check(caption, read, self.frames)
            if not problems:
                return finish(text, caption, "local", k, reading, read, scene, rejected, notes,
                              unknown, unsure)
            rejected.append((caption, problems))
        notes.append(f"all {self.tries} LM samples failed the guard; the template filled "
                     "the reading")
        return by_template(text, read, reading, seed, self.frames, "template", rejected, notes,
                           self.tries, unknown=unknown, unsure=unsure)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="Rewrite prompts with a trained rewriter; prints "
                                 "each rewrite, its reading, notes and where it came from.",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("prompts", nargs="+", help="prompts as people type them, e.g. 'a red circle'")
    ap.add_argument("--ckpt", default="runs/rewriter/ckpt.pt", help="train_rewriter.py output")
    ap.add_argument("--seeds", type=int, default=2, help="rewrites per prompt (seeds 0..n-1)")
    ap.add_argument("--temperature", type=float, default=0.8, help="LM sampling temperature")
    a = ap.parse_args()
    rw = Rewriter.load(a.ckpt, a.temperature)
    for p in a.prompts:
        for s in range(a.seeds):
            r = rw(p, seed=s)
            print(json.dumps({"prompt": p, "seed": s, "reading": r.reading, "rewrite": r.text,
                              "source": r.source, "tries": r.tries, "notes": r.warnings}))
