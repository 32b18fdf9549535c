"""Captions for the tiny world: dense (what a model trains on), sparse (what a user types),
and `parse_caption`, which turns any such text back into the attributes it states.

Where it sits: `minivid.world` calls `dense_caption` / `sparse_caption` for every sample;
`minivid.checker` calls `parse_caption` to know what a prompt asked for, so a generated clip
can be scored against the words alone. It reads a scene's attribute names only (a `Scene` of
minivid/scene.py) and imports just the parser, so the world's writer can import it.

The talk's lesson: captions must be dense, "detailed enough that a blind person could
reconstruct the clip", because a video model takes its prompt literally. A dense caption
here names, for every object, its size, colour, shape, start position, motion and speed, plus
the background; it is written with several phrasings so the text encoder must learn meaning,
not one template. A sparse caption states only some of it ("a red circle").

    python -m minivid.captions           # prints a few scenes with both captions
"""
import re

from minivid.prompt_parse import parse

# Each attribute value has several phrasings; the FIRST is the canonical word. The parser
# matches every phrasing, longest first, so "top left" wins over "left".
POSITION_WORDS = {
    "top left": ["in the top left corner", "near the top left", "at the top left"],
    "top": ["at the top", "near the top edge", "at the top centre"],
    "top right": ["in the top right corner", "near the top right", "at the top right"],
    "left": ["on the left", "at the left edge", "on the left side"],
    "centre": ["in the centre", "in the middle", "at the center"],
    "right": ["on the right", "at the right edge", "on the right side"],
    "bottom left": ["in the bottom left corner", "near the bottom left", "at the bottom left"],
    "bottom": ["at the bottom", "near the bottom edge", "at the bottom centre"],
    "bottom right": ["in the bottom right corner", "near the bottom right",
                     "at the bottom right"],
}
MOTION_WORDS = {
    "still": ["stays still", "does not move", "stays where it is"],
    "left": ["moves to the left", "drifts leftward", "slides left"],
    "right": ["moves to the right", "drifts rightward", "slides right"],
    "up": ["moves upward", "rises", "drifts up"],
    "down": ["moves downward", "sinks", "drifts down"],
    "up-left": ["moves diagonally up and to the left", "drifts up-left"],
    "up-right": ["moves diagonally up and to the right", "drifts up-right"],
    "down-left": ["moves diagonally down and to the left", "drifts down-left"],
    "down-right": ["moves diagonally down and to the right", "drifts down-right"],
    "bounce": ["bounces up and down", "hops like a ball", "bounces"],
    "grow": ["grows larger", "grows", "expands"],
    "shrink": ["shrinks", "gets smaller", "contracts"],
}
SPEED_WORDS = {"slow": ["slowly", "gently"], "fast": ["quickly", "fast", "rapidly"]}
SIZE_WORDS = {"small": ["small", "little", "tiny"], "large": ["large", "big"]}
SHAPE_WORDS = {"circle": ["circle", "disc", "ball"], "square": ["square", "box"],
               "triangle": ["triangle"]}
COLOUR_WORDS = {c: [c] for c in ("red", "orange", "yellow", "green", "cyan", "blue", "purple",
                                 "white")}
COLOUR_WORDS["grey"] = ["grey", "gray"]  # backgrounds only
COLOUR_WORDS["navy"] = ["navy", "dark blue"]
COLOUR_WORDS["brown"] = ["brown"]
COLOUR_WORDS["black"] = ["black"]


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _parts(obj, rng, still_image):
    """The words of one object: (article, noun, place, motion phrase or None)."""
    size, shape = _pick(rng, SIZE_WORDS[obj.size]), _pick(rng, SHAPE_WORDS[obj.shape])
    noun = f"{size} {obj.colour} {shape}"
    art = "an" if noun[0] in "aeiou" else "a"
    place = _pick(rng, POSITION_WORDS[obj.position])
    if still_image:
        return art, noun, place, None
    move = _pick(rng, MOTION_WORDS[obj.motion])
    if obj.speed:
        speed = _pick(rng, SPEED_WORDS[obj.speed])
        move = f"{speed} {move}" if rng.random() < 0.5 else f"{move} {speed}"
    return art, noun, place, move


def _object_phrase(obj, rng, still_image, where=True):
    """'a small red circle in the top left corner that moves slowly to the right'."""
    art, noun, place, move = _parts(obj, rng, still_image)
    if still_image:
        return f"{art} {noun} {place}"
    if not where:  # a continuation clip: where things are is the history's business
        return f"{art} {noun} that {move}" if rng.random() < 0.5 else f"{art} {noun}, which {move}"
    if rng.random() < 0.5:
        return f"{art} {noun} that starts {place} and {move}"
    return f"{art} {noun} {place}, which {move}"


# A motion phrase as a participle: "moves to the left" -> "moving to the left".
_ING = {"moves": "moving", "drifts": "drifting", "slides": "sliding", "rises": "rising",
        "sinks": "sinking", "stays": "staying", "bounces": "bouncing", "hops": "hopping",
        "grows": "growing", "expands": "expanding", "shrinks": "shrinking", "gets": "getting",
        "contracts": "contracting", "does not move": "not moving"}


def _participle(move):
    if move.endswith("does not move"):
        return move.replace("does not move", "not moving")
    return " ".join(_ING.get(w, w) for w in move.split(" "))


def _cap(text):
    return text[0].upper() + text[1:]


def _object_sentences(obj, rng, still_image, where=True):
    """The same object in sentences of its own: 'A small red circle starts in the top left
    corner. It moves slowly to the right.' or 'In the top left corner, a small red circle
    moves slowly to the right.'"""
    art, noun, place, move = _parts(obj, rng, still_image)
    if still_image:
        return _cap(f"{art} {noun} is {place}.") if rng.random() < 0.5 else \
            f"{_cap(place)}, there is {art} {noun}."
    if not where:
        return _cap(f"{art} {noun} {move}.")
    style = int(rng.integers(3))
    if style == 0:
        return _cap(f"{art} {noun} starts {place}. It {move}.")
    if style == 1:
        return f"{_cap(place)}, {art} {noun} {move}."
    return _cap(f"{art} {noun} {place}, {_participle(move)}.")


def dense_caption(scene, rng, where=True):
    """Everything visible, in one of several structures and phrasings. `rng`: a numpy
    Generator. where=False leaves out the start positions (continuation clips).

    Six structures, so a text encoder trained on them learns the language, not a template
    (a DiT trained on the first three alone scored 0.79 on hand-written dense prompts in new
    structures against 0.90 on its own captions): the scene in one sentence with the
    background first, in the middle or last; the background alone first; one sentence (or
    two) per object; participles ("..., moving slowly to the right")."""
    still = scene.frames == 1
    bg = None
    style = int(rng.integers(6))
    if style < 3:
        objs = [_object_phrase(o, rng, still, where) for o in scene.objects]
        things = objs[0] if len(objs) == 1 else f"{objs[0]}; and {objs[1]}"
        bg = _pick(rng, COLOUR_WORDS[scene.background])
        kind = "A still image" if still else "A short clip"
        if style == 0:
            return f"{kind} on a plain {bg} background: {things}."
        if style == 1:
            return f"On a plain {bg} background there is {things}."
        return f"{_cap(things)}. The background is plain {bg}."
    sentences = " ".join(_object_sentences(o, rng, still, where) for o in scene.objects)
    bg = _pick(rng, COLOUR_WORDS[scene.background])
    if style == 3:
        return f"Plain {bg} background. {sentences}"
    if style == 4:
        return f"{sentences} Background: plain {bg}."
    return f"{sentences} All on a plain {bg} background."


def sparse_caption(scene, rng):
    """What a user would type: colour + shape, sometimes the motion ('red circle moving right')."""
    parts = []
    for o in scene.objects:
        noun = f"{o.colour} {o.shape}"
        if scene.frames > 1 and rng.random() < 0.4:
            noun += " " + _pick(rng, MOTION_WORDS[o.motion])
        parts.append(noun)
    text = " and ".join(parts)
    return ("a " + text) if rng.random() < 0.5 else text


# What videos come with on the internet: titles that rarely say what is seen.
TITLES = ["my video", "untitled", "clip {n}", "so satisfying", "watch till the end",
          "best moments", "vlog day {n}", "relaxing loop", "new edit", "wait for it",
          "shapes", "fun little animation", "IMG_{n}", "final_final_v{n}", "mood",
          "{colour} vibes", "the {colour} one", "look at this {shape}"]


def title_caption(scene, rng):
    """A title-like caption, as a video's file name or upload title: a few words that rarely
    describe the clip. A sixth of the templates name a colour or a shape, true or not."""
    template = _pick(rng, TITLES)
    colour = _pick(rng, [o.colour for o in scene.objects] + ["pink", "gold"])
    return template.format(n=int(rng.integers(1, 100)), colour=colour,
                           shape=_pick(rng, ["circle", "square", "thing", "shape"]))


def strip_positions(text):
    """A prompt for a continuation clip: the same words without the start positions, which
    would contradict the history ("starts on the left" is false for clip 5). Removes the
    world's position phrases and the "starts ... and" around them; other text is kept."""
    pos = _POS.pattern[3:-3]
    out = re.sub(r"\bstarts\s+(?:" + pos + r")\s+and\s+", "", text, flags=re.IGNORECASE)
    out = re.sub(r"\s+starts\s+(?:" + pos + r")(?=\.)", "", out, flags=re.IGNORECASE)
    # "In the top left corner, a red circle ..." -> "A red circle ..."
    out = re.sub(r"(^|\.\s+)(?:" + pos + r"),\s*(?:there is\s+)?(\w)",
                 lambda m: m.group(1) + m.group(2).upper(), out, flags=re.IGNORECASE)
    out = re.sub(r"\s*\b(?:" + pos + r")\b", "", out, flags=re.IGNORECASE)
    return " ".join(out.replace(" ,", ",").replace(",,", ",").replace(", .", ".").split())


def strip_motion(text):
    """The same words without how things move (motions and speeds): a prompt that states who
    is in the video and leaves the motion to the history, so a continuation clip is never
    told "moves right" after the object bounced off the right edge. Removes the world's
    motion and speed phrases, as verbs ("moves to the left") and as participles ("..., moving
    to the left"), the "that" / ", which" before them, and a sentence left with its pronoun
    alone ("It moves down." -> "It." -> gone)."""
    speed = _SPEED.pattern[3:-3]
    phrases = {q for ps in MOTION_WORDS.values() for p in ps for q in (p, _participle(p))}
    # a motion phrase, or one with the speed inside it as people write ("moves quickly to
    # the right"), with an optional speed before or after; longest first
    inside = [re.escape(p.split(" ", 1)[0]) + r"\s+(?:" + speed + r")\s+" + re.escape(p.split(" ", 1)[1])
              for p in phrases if " " in p]
    plain = [re.escape(p) for p in sorted(phrases, key=len, reverse=True)]
    move = (r"(?:(?:" + speed + r")\s+)?(?:" + "|".join(inside + plain) + r")(?:\s+(?:" +
            speed + r"))?")
    out = re.sub(r"(?:\s*,\s*which|\s+that)\s+" + move + r"\b", "", text, flags=re.IGNORECASE)
    out = re.sub(r"\s*\b" + move + r"\b", "", out, flags=re.IGNORECASE)
    out = re.sub(r"\s*,\s*(?=[.;]|$)", "", out)                  # "a red disc, ." -> "a red disc."
    out = re.sub(r"(^|[.;!?]\s*)It\s*[.;]", r"\1", out)           # "It." with nothing left
    return " ".join(out.replace(" ,", ",").replace(" .", ".").replace(" ;", ";").split())


# ----------------------------------------------------------------------------- phrases
def _alternatives(table):
    """Regex alternation of every phrasing of a table, longest first (strip_* above)."""
    pairs = sorted((p for ps in table.values() for p in ps), key=lambda p: -len(p))
    return re.compile(r"\b(" + "|".join(re.escape(p) for p in pairs) + r")\b")


_POS, _MOVE, _SPEED = (_alternatives(t) for t in (POSITION_WORDS, MOTION_WORDS, SPEED_WORDS))


def parse_caption(text):
    """The attributes a caption states, as {"background": str|None, "objects": [dict]}.

    Each object dict holds only the keys the text mentions (shape always; colour, size,
    position, motion, speed when stated). Any text works, not only the world's own
    templates: the parser is minivid/prompt_parse.py (synonyms, typos, new sentence
    structures; words outside the world's vocabulary are ignored)."""
    return parse(text).stated()


if __name__ == "__main__":
    import numpy as np

    from minivid.scene import sample_scene

    rng = np.random.default_rng(0)
    for frames in (16, 16, 16, 1):
        s = sample_scene(rng, "train", frames=frames)
        print("dense :", dense_caption(s, rng))
        print("sparse:", sparse_caption(s, rng))
        print("parsed:", parse_caption(dense_caption(s, rng)), "\n")
