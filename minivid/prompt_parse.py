"""Reading captions: any dense or sparse caption -> the tiny-world attributes it states.

Where it sits: under the scene checker (`minivid.checker.stated` scores a clip against what
its caption says), the rewriter's guard (`minivid.rewrite`: does the LM's dense caption keep
its own reading?) and `minivid.captions.parse_caption`, which is this parser. It is NOT on
the path from a user to the model any more: the rewriter's LM reads what people type
(minivid/rewrite.py), and this parser only reads generator language, the captions the world
and the LM write. It was built to read people too, and the list of phrasings it gets wrong
is why that job moved to a learned model (README: prompt rewriting).

Why a parser and not a regex per phrasing: the world writes captions in a handful of
templates, but people do not. They write one sentence per object, the background first or on
its own ("Background: plain black."), participles ("a blue square moving up"), adverbs in
the middle ("moves quickly to the right"), synonyms ("gray", "cube", "huge"), typos
("yelow sqaure") and words the world never uses ("a fluffy red ball"). This file reads all
of it in three passes, each a few lines you can check by hand:

  1. words    -> the text is cut into words by minivid.vocab.split_words (the one splitter
                 the text encoder and the rewriter use too), and
                 each word becomes a (kind, value) token: ("colour", "red"), ("go", None),
                 ("dir", "left"), ("where", None) ... through WORDS, a table of synonyms; a
                 word not in it gets the nearest table word within one or two typing errors
                 (the first letter must match, so "tall" never becomes "ball"); common
                 English words ("the", "with", "please") are skipped; the rest is UNKNOWN,
                 dropped from the parse and reported.
  2. objects  -> every shape word is an object; the colour and size words just before it
                 (or a colour just after it: "a circle, red") are its own.
  3. details  -> the words after an object, up to the next object, describe it. A direction
                 is a START POSITION after "on / in / at / near / from / starts" ("on the
                 left") and a MOTION after a motion verb or "to / towards" ("moves to the
                 left", "heading left"). Words before the first object of a sentence belong to
                 that object ("Moving up, a red square"); a sentence with no object ("It
                 moves left.") describes the object before it. A background colour (black,
                 grey, navy, brown) anywhere is the background: the palettes are disjoint.

    python -m minivid.prompt_parse "a yelow sqaure moving quickly to the right on plain navy"
"""
import re
from dataclasses import dataclass, field

from minivid.vocab import BACKGROUNDS, OBJECT_COLOURS, split_words

# ----------------------------------------------------------------------------- 1. words
# word -> (kind, value). Kinds: colour, bg, size, shape, speed, go (a motion verb, direction
# follows), motion (a motion with no direction: bounce, grow, shrink, still, or up/down for
# "rises" / "sinks"), cmp (larger / smaller: a size before a noun, grow / shrink after it),
# dir (left, right, up, down, top, bottom, centre), to (direction of travel follows),
# at (a start position follows), stay, not, like ("hops like a ball": not an object),
# bgword ("background"), end (a sentence boundary), sep (a clause boundary), and.
WORDS = {}


def _add(kind, value, *words):
    for w in words:
        WORDS[w] = (kind, value)


for _c in OBJECT_COLOURS:
    _add("colour", _c, _c)
_add("colour", "red", "crimson", "scarlet", "ruby")
_add("colour", "orange", "amber", "tangerine")
_add("colour", "yellow", "golden", "gold", "lemon")
_add("colour", "green", "lime", "emerald")
_add("colour", "cyan", "turquoise", "teal", "aqua")
_add("colour", "blue", "azure", "cobalt")
_add("colour", "purple", "violet", "lilac", "magenta", "lavender")
_add("colour", "white", "snowy")
for _c in BACKGROUNDS:
    _add("bg", _c, _c)
_add("bg", "grey", "gray", "silver", "charcoal")
_add("bg", "brown", "beige", "tan", "chocolate")
_add("size", "small", "small", "little", "tiny", "mini", "smallish", "wee")
_add("size", "large", "large", "big", "huge", "giant", "massive", "biggish", "largish")
_add("shape", "circle", "circle", "disc", "disk", "ball", "dot", "sphere", "orb", "round")
_add("shape", "square", "square", "box", "cube", "block")
_add("shape", "triangle", "triangle", "wedge", "pyramid")
_add("speed", "fast", "fast", "quickly", "quick", "rapidly", "rapid", "swiftly", "swift",
     "speedily", "speedy", "briskly", "hurriedly")
_add("speed", "slow", "slow", "slowly", "gently", "gentle", "leisurely", "lazily", "steadily")
_add("go", None, "moves", "move", "moving", "moved", "drifts", "drift", "drifting", "slides",
     "slide", "sliding", "glides", "glide", "gliding", "travels", "travel", "travelling",
     "traveling", "heads", "head", "heading", "goes", "go", "going", "runs", "run", "running",
     "floats", "float", "floating", "flies", "fly", "flying", "rolls", "roll", "rolling",
     "shifts", "shift", "shifting", "zooms", "zooming", "races", "racing", "darts", "darting",
     "crawls", "crawling", "walks", "walking", "scrolls", "scrolling", "sails", "sailing")
_add("motion", "up", "rises", "rise", "rising", "climbs", "climb", "climbing", "ascends",
     "ascend", "ascending", "lifts", "lifting")
_add("motion", "down", "sinks", "sink", "sinking", "falls", "fall", "falling", "drops",
     "drop", "dropping", "descends", "descend", "descending")
_add("motion", "bounce", "bounces", "bounce", "bouncing", "hops", "hop", "hopping", "jumps",
     "jump", "jumping", "bobs", "bobbing")
_add("motion", "grow", "grows", "grow", "growing", "expands", "expand", "expanding",
     "enlarges", "swells", "swelling", "inflates", "inflating")
_add("motion", "shrink", "shrinks", "shrink", "shrinking", "contracts", "contract",
     "contracting", "deflates", "deflating", "dwindles")
_add("motion", "still", "still", "stationary", "motionless", "static", "unmoving", "frozen",
     "immobile")
_add("cmp", "large", "larger", "bigger")
_add("cmp", "small", "smaller")
_add("dir", "left", "left", "leftward", "leftwards", "west")
_add("dir", "right", "right", "rightward", "rightwards", "east")
_add("dir", "up", "up", "upward", "upwards", "north")
_add("dir", "down", "down", "downward", "downwards", "south")
_add("dir", "top", "top", "upper")
_add("dir", "bottom", "bottom", "lower")
_add("dir", "centre", "centre", "center", "middle", "central", "centered", "centred")
_add("to", None, "to", "towards", "toward", "into")
_add("at", None, "on", "in", "at", "near", "from", "starts", "start", "starting", "begins",
     "begin", "beginning", "placed", "located", "positioned", "by", "sits", "sitting")
_add("stay", None, "stays", "stay", "staying", "remains", "remain", "remaining", "rests",
     "resting")
_add("not", None, "not", "doesn", "dont", "don", "never", "no", "without", "isn")
_add("like", None, "like")
_add("bgword", None, "background", "backdrop", "bg", "backgrounds")
_add("and", None, "and", "then", "while", "plus", "&")
_add("end", None, ".", "!", "?", ";")
_add("sep", None, ",", ":", "(", ")", "—", "–", "/")
# Words that fix a word's meaning together: "dark blue" is the navy background, not a blue
# object on a black one; "a still image" is a picture, not something that stays still.
BIGRAMS = {("dark", "blue"): ("bg", "navy"), ("navy", "blue"): ("bg", "navy"),
           ("still", "image"): None, ("still", "picture"): None, ("still", "frame"): None,
           ("still", "photo"): None, ("gets", "larger"): ("motion", "grow"),
           ("gets", "bigger"): ("motion", "grow"), ("gets", "smaller"): ("motion", "shrink"),
           ("getting", "larger"): ("motion", "grow"), ("getting", "bigger"): ("motion", "grow"),
           ("getting", "smaller"): ("motion", "shrink"),
           ("becomes", "larger"): ("motion", "grow"), ("becomes", "smaller"): ("motion", "shrink")}
# Common words that carry no tiny-world attribute: skipped quietly, never typo-corrected.
COMMON = set("""a an the is are was be been being there here this that these those which who
whom it its itself diagonally diagonal they them their one ones some any each both with of or but as so very
really quite fairly rather just also too same till until against another other clip video image picture photo
frame scene shot short long movie animation gif plain solid flat simple single coloured
colored colour color shape object thing something someone we you i me my our your please
make create generate draw render show shows showing shown see seen let us want would like
could should can will has have having had does do did doing done across over around along
through about above below under behind screen canvas view edge side corner corners place spot
area part half way where whole entire all full fully completely slightly bit little lot more
most again keep keeps kept what when how then than if only still each every single pure
dark light bright vivid pale deep nice pretty cute cool lovely""".split()) - set(WORDS)
# Typos are read only as words that carry an attribute, never as "start" or "to".
_TYPO_TARGETS = sorted(w for w, (kind, _) in WORDS.items() if w.isalpha() and len(w) >= 3
                       and kind in ("colour", "bg", "size", "shape", "speed", "go", "motion",
                                    "cmp", "dir", "bgword"))


def _distance(a: str, b: str) -> int:
    """Edit distance with adjacent swaps ("sqaure" -> "square" is 1: a typing error)."""
    d = [[i + j if i * j == 0 else 0 for j in range(len(b) + 1)] for i in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[-1][-1]


def correct(word: str) -> str | None:
    """The attribute word a typo stands for: one error for words of 4-8 letters, two from 9
    on, the first letter kept; the closest wins (ties: alphabetical). None if there is none.
    ("spinning" is two errors from "sinking": too far, so it stays an unknown word.)"""
    if len(word) < 4 or not word.isalpha() or word in COMMON:
        return None
    budget = 1 if len(word) < 9 else 2
    best = min(((_distance(word, w), w) for w in _TYPO_TARGETS
                if w[0] == word[0] and abs(len(w) - len(word)) <= budget), default=None)
    return best[1] if best and best[0] <= budget else None


@dataclass
class Parsed:
    """What a prompt states, in the shape the checker uses, and what it could not read."""
    background: str | None = None
    objects: list = field(default_factory=list)   # dicts: colour, shape, size, position, ...
    unknown: list = field(default_factory=list)   # words outside the world's vocabulary
    fixed: dict = field(default_factory=dict)     # typo -> the word it was read as

    def stated(self) -> dict:
        return {"background": self.background, "objects": [dict(o) for o in self.objects]}


def tokens(text: str, parsed: Parsed) -> list[tuple]:
    """Pass 1: words -> (kind, value) tokens, filling parsed.unknown and parsed.fixed."""
    words, out, i = split_words(text), [], 0
    while i < len(words):
        w = words[i]
        pair = tuple(words[i:i + 2])
        if pair in BIGRAMS:
            if BIGRAMS[pair] is not None:
                out.append(BIGRAMS[pair])
            i += 2
            continue
        if w not in WORDS and w not in COMMON and w.endswith("s") and w[:-1] in WORDS:
            w = w[:-1]                                            # plurals: "circles"
        if w in WORDS:
            out.append(WORDS[w])
        elif w in COMMON or w.isdigit() or w in ("'", "’", "t", "-"):  # doesn ' t; up - left
            pass
        elif (fix := correct(w)) is not None:
            parsed.fixed[w] = fix
            out.append(WORDS[fix])
        elif len(w) >= 2 and re.search(r"[^\W\d_]", w):        # a word, not a mark: "IMG_42"
            parsed.unknown.append(w)
        i += 1
    return out


# ----------------------------------------------------------------------------- 2. objects
def _objects(toks: list[tuple]) -> list[tuple[int, int, dict]]:
    """Pass 2: every shape token is an object -> [(first token, shape token, object dict)];
    its colour and size are the adjectives right before it (commas allowed between)."""
    found = []
    for k, (kind, value) in enumerate(toks):
        if kind != "shape":
            continue
        if found and k > 0 and toks[k - 1][0] == "like":     # "hops like a ball"
            continue
        obj, j = {"shape": value}, k - 1
        while j >= 0 and toks[j][0] in ("colour", "size", "cmp", "sep") and \
                (not found or j > found[-1][1]):
            kind_j, value_j = toks[j]
            if kind_j == "colour":
                obj.setdefault("colour", value_j)
            elif kind_j in ("size", "cmp"):
                obj.setdefault("size", value_j)
            j -= 1
        found.append((j + 1, k, obj))
    return found


# ----------------------------------------------------------------------------- 3. details
def _position(dirs: list[str]) -> str | None:
    """Direction words after on/in/at -> a start cell: [top, left] -> "top left"."""
    vert = next((d for d in dirs if d in ("top", "bottom", "up", "down")), None)
    vert = {"up": "top", "down": "bottom"}.get(vert, vert)
    hor = next((d for d in dirs if d in ("left", "right")), None)
    if vert and hor:
        return f"{vert} {hor}"
    return vert or hor or ("centre" if "centre" in dirs else None)


def _motion(dirs: list[str]) -> str | None:
    """Direction words after a motion verb -> a motion: [up, left] -> "up-left"."""
    vert = next((d for d in dirs if d in ("top", "bottom", "up", "down")), None)
    vert = {"top": "up", "bottom": "down"}.get(vert, vert)
    hor = next((d for d in dirs if d in ("left", "right")), None)
    if vert and hor:
        return f"{vert}-{hor}"
    return vert or hor


def describe(obj: dict, toks: list[tuple]) -> None:
    """Read the detail tokens of one object into it (the first statement of each wins)."""
    mode, dirs, negated = None, [], False

    def flush():
        nonlocal dirs
        if dirs:
            value = _motion(dirs) if mode == "go" else _position(dirs)
            key = "motion" if mode == "go" else "position"
            if value:
                obj.setdefault(key, value)
        dirs = []

    for k, (kind, value) in enumerate(toks):
        nxt = toks[k + 1][0] if k + 1 < len(toks) else None
        if kind == "dir":
            if mode is None:  # bare: up/down travel ("a ball up"), left/right/top are places
                mode = "go" if value in ("up", "down") else "at"
            if mode != "done":
                dirs.append(value)
            continue
        if kind == "and" and mode == "go" and nxt in ("dir", "to"):
            continue                                   # "diagonally up and to the left"
        if kind == "to" and mode == "go":
            continue
        flush()
        if kind == "speed":
            obj.setdefault("speed", value)
        elif kind == "go":
            mode = "go"
            if negated:                                # "does not move"
                obj.setdefault("motion", "still")
                mode = "done"
        elif kind == "to":
            mode = "go"                                # "from the left to the right"
        elif kind == "at":
            mode = "at"
        elif kind == "stay":
            obj.setdefault("motion", "still")
            mode = "at"                                # "stays on the left": still, there
        elif kind == "motion" or (kind == "cmp"):
            motion = value if kind == "motion" else ("grow" if value == "large" else "shrink")
            if value in ("up", "down") and kind == "motion":
                mode, dirs = "go", [value]             # "rises", "sinks"
                continue
            obj.setdefault("motion", motion)
            mode = "done"                              # "bounces up and down" stays a bounce
        elif kind == "colour" and "colour" not in obj:
            obj["colour"] = value                      # "a circle, red"
        elif kind == "size" and "size" not in obj:
            obj["size"] = value                        # "a circle, quite big"
        elif kind in ("end", "sep", "and", "bgword", "bg"):
            mode = None if kind != "bg" else mode
        negated = kind == "not"
    flush()


def parse(text: str) -> Parsed:
    """Any prompt -> Parsed (background, objects, unknown words, typo fixes)."""
    if not isinstance(text, str):
        raise TypeError(f"a prompt must be a str, got {type(text).__name__}")
    parsed = Parsed()
    toks = tokens(text, parsed)
    parsed.background = next((v for k, v in toks if k == "bg"), None)
    found = _objects(toks)
    ends = [k for k, (kind, _) in enumerate(toks) if kind == "end"]

    def region(n):
        """Where object n's words start: its adjectives, or, when it is the first object of
        its sentence, the sentence's first word (never before the previous object's noun)."""
        start, noun, _ = found[n]
        begin = max([e + 1 for e in ends if e < noun] + [0])
        if n > 0 and found[n - 1][1] >= begin:   # not the first object of its sentence
            return start
        return min(begin, start)

    for n, (_, noun, obj) in enumerate(found):
        stop = region(n + 1) if n + 1 < len(found) else len(toks)
        # "An orange ball on the right. The ball sinks.": a bare shape word that names an
        # earlier object's shape is that object again, not a new one.
        same = [o for o in parsed.objects if o["shape"] == obj["shape"]]
        if len(obj) == 1 and same:
            obj = same[-1]
        else:
            parsed.objects.append(obj)
        describe(obj, toks[region(n):noun] + [("end", None)] + toks[noun + 1:stop])
    for obj in parsed.objects:
        if obj.get("motion") in ("still", "grow", "shrink"):
            obj.pop("speed", None)   # a speed means nothing for these
    return parsed


if __name__ == "__main__":
    import sys

    for prompt in sys.argv[1:] or ["a yelow sqaure moving quickly to the right on plain navy",
                                   "Background: plain black. A huge white cube. It rises slowly."]:
        p = parse(prompt)
        print(prompt, "\n  ->", p.stated(), "\n  unknown:", p.unknown, " fixed:", p.fixed)
