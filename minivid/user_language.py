"""How people ask for a tiny-world clip: a generator of user language, and what each prompt
means.

Where it sits: the rewriter's training data (train_rewriter.py, minivid/rewrite.py) and the
mixed-caption DiT (train_dit.py --user-captions). It reads a Scene (minivid/scene.py) and
writes what a person might type to get it, together with the READING: what the prompt
states, in the world's own words (the rewriter's first output, minivid/rewrite.py):

    prompt   "can u make a lil crimson ball thats not moving, on black"
    reading  "small red circle moves still ; on black"
    scene    the clip the prompt was written from (its dense caption is the LM's target)

It imports no parser: it WRITES language from scenes, it never reads any. So the rewriter
learns to read people from examples, and nothing here can be "the parser with extra steps".

What it writes, each with its own probability (`user_prompt`):
  - a random subset of each object's attributes, in one of several sentence STRUCTURES,
    objects in either order, the background first, last or not at all, filler words
    ("please", "make a video of", "4k");
  - SYNONYMS ("crimson", "ball", "huge", "upper left", "zooming"), and typos;
  - negation ("a circle that is not red", "not moving", "not fast"), counts ("two circles, a
    red one and a blue one"), relations ("a square to the left of the circle", "above"),
    sequence ("first it moves right, then up");
  - requests the world cannot show, with the NOTE a good rewrite adds: two objects of one
    colour, three objects, a black object, a white background, "behind", two colours for
    one object, things that do not exist ("a dog"), other languages and gibberish.

The words themselves (synonyms, filler, things the world does not have) are the lexicon,
minivid/user_lexicon.py; this file is the writer that puts them into sentences.

Held out, never in training prompts, to measure generalisation (rewrite_bench.py):
  HELD_WORDS       a part of the synonyms: word forms whose letters carry the meaning
                   ("reddish", "circular", "leftwards", "speedily"): see user_lexicon.py;
  HELD_STRUCTURES  a part of the sentence structures ("the square is red and big, ...").

    python -m minivid.user_language          # prints a few (prompt, reading, caption) triples
"""
import numpy as np

from minivid.scene import Obj, Scene, sample_scene
from minivid.user_lexicon import (ARTICLES, BACKGROUND, COLOUR, DIRECTION, FILLER_AFTER,
                                  FILLER_BEFORE, FOREIGN, HELD_WORDS, OTHER_MOTION,
                                  OUT_COLOURS, OUT_OF_WORLD, POSITION, SHAPE, SIZE, SPEED,
                                  VERBS)
from minivid.vocab import MOVING, OBJECT_COLOURS, POSITIONS


# ----------------------------------------------------------------------------- the reading
def reading(objects, background, notes) -> str:
    """What a prompt states, in the world's words: the rewriter's first output and its
    guard's reference. objects: dicts of stated attributes (+ "not": a colour it is not, "rel":
    (relation, index of the other object)); notes: what the world cannot show.

    {"shape": "circle", "colour": "red", "motion": "right"}, bg "black", notes ["then up"]
    -> "red circle moves right ; note then up ; on black" """
    parts = []
    for o in objects:
        words = [o.get("size"), o.get("colour")]
        if o.get("not"):
            words += ["not", o["not"]]
        words.append(o["shape"])
        if o.get("position"):
            words += ["at", o["position"]]
        if o.get("motion"):
            words += ["moves", o["motion"]]
        words.append(o.get("speed"))
        if o.get("rel"):
            words += [o["rel"][0], str(o["rel"][1] + 1)]
        parts.append(" ".join(w for w in words if w))
    parts += [f"note {n}" for n in notes]
    if background:
        parts.append(f"on {background}")
    return " ; ".join(parts)


# ----------------------------------------------------------------------------- writing
class Writer:
    """Draws phrasings from the training lexicon (held=False) or the held-out forms first."""

    def __init__(self, rng, held_words=False):
        self.rng, self.held = rng, held_words

    def pick(self, options):
        return options[int(self.rng.integers(len(options)))]

    def p(self, prob):
        return self.rng.random() < prob

    def word(self, kind, table, value):
        held = HELD_WORDS.get(kind, {}).get(value)
        if self.held and held:
            return self.pick(held)
        return self.pick(table[value])

    def colour(self, c):
        return self.word("colour", COLOUR, c)

    def shape(self, s):
        return self.word("shape", SHAPE, s)

    def size(self, s):
        return self.word("size", SIZE, s)

    def background(self, b):
        return self.word("background", BACKGROUND, b)

    def speed(self, s):
        return self.word("speed", SPEED, s)

    def direction(self, d):
        return self.word("direction", DIRECTION, d)

    def where(self, position):
        """'in the top left', 'at the upper left corner', 'from the middle' ..."""
        place = self.pick(POSITION[position])
        if position == "centre" and self.p(0.5):
            return self.pick(["in the centre", "in the middle", "centred", "at the center"])
        prep = self.pick(["in the", "at the", "on the", "near the", "starting at the",
                          "from the", "starting in the"])
        return f"{prep} {place}"

    def motion(self, motion, speed, participle=False):
        """'moves slowly to the left', 'bouncing fast', 'grows' ..."""
        if motion in DIRECTION:
            verb = self.pick(VERBS)
            if participle and not verb.endswith("ing"):
                verb = self.pick(["moving", "going", "sliding", "drifting", "heading"])
            phrase = f"{verb} {self.direction(motion)}"
        else:
            phrase = self.pick(OTHER_MOTION[motion])[1 if participle else 0]
        if speed:
            adv = self.speed(speed)
            phrase = f"{adv} {phrase}" if (self.p(0.3) and " " not in adv
                                          and not participle) else f"{phrase} {adv}"
        return phrase

    def noun(self, o, stated, negate=None):
        """'little crimson ball', 'non-red circle' (negate: the colour it is not)."""
        words = []
        if "size" in stated:
            words.append(self.size(o.size))
        if "colour" in stated:
            words.append(self.colour(o.colour))
        if negate and self.p(0.3):
            words.append(self.pick(["non-", "non "]) + negate)
        words.append(self.shape(o.shape))
        text = " ".join(words).replace("- ", "-")
        if negate and "non" not in text:
            text += self.pick([f" that is not {negate}", f" that isn't {negate}",
                               f", not {negate}", f" (not {negate})", f" which is not {negate}",
                               f" but not a {negate} one"])
        return text


def typo(word, rng):
    """One typing error in a word: a swap, a dropped, doubled or wrong letter."""
    if len(word) < 4 or not word.isalpha():
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = int(rng.integers(4))
    if kind == 0:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    if kind == 1:
        return word[:i] + word[i + 1:]
    if kind == 2:
        return word[:i] + word[i] + word[i:]
    return word[:i] + "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(26))] + word[i + 1:]


# ----------------------------------------------------------------------------- structures
# One object as a clause. Arguments: writer, article, noun, where (or ""), motion (Obj,
# the stated motion or None, its speed or None). Each returns the clause text.
def _moves(w, o, st):
    return w.motion(o.motion, o.speed if "speed" in st else None)


def _moving(w, o, st):
    return w.motion(o.motion, o.speed if "speed" in st else None, participle=True)


def s_plain(w, art, noun, where, o, st):          # a red circle in the top left moves left
    return " ".join(x for x in (art + noun, where, _moves(w, o, st) if "motion" in st else "")
                    if x)


def s_terse(w, art, noun, where, o, st):          # red ball going left fast top left
    return " ".join(x for x in (noun, _moving(w, o, st) if "motion" in st else "", where) if x)


def s_participle_first(w, art, noun, where, o, st):   # moving left, a red circle near the top
    if "motion" not in st:
        return s_plain(w, art, noun, where, o, st)
    head = _moving(w, o, st)
    return f"{head}, {art}{noun}" + (f" {where}" if where else "")


def s_where_first(w, art, noun, where, o, st):    # in the top left, a red circle that moves left
    if not where:
        return s_that(w, art, noun, where, o, st)
    rest = f" that {_moves(w, o, st)}" if "motion" in st else ""
    return f"{where}, {art}{noun}{rest}"


def s_that(w, art, noun, where, o, st):           # a red circle that starts ... and moves left
    out = art + noun
    if where and "motion" in st:
        return f"{out} that starts {where} and {_moves(w, o, st)}"
    if "motion" in st:
        return f"{out} that {_moves(w, o, st)}"
    return f"{out} {where}".strip()


def s_there_is(w, art, noun, where, o, st):       # there is a red circle at the top. it moves left
    out = f"there is {art}{noun}" + (f" {where}" if where else "")
    return out + (f". it {_moves(w, o, st)}" if "motion" in st else "")


def s_with(w, art, noun, where, o, st):           # a red circle, moving left, in the top left
    parts = [art + noun] + ([_moving(w, o, st)] if "motion" in st else []) + \
        ([where] if where else [])
    return ", ".join(parts)


# held out: predicates ("the circle is red and small, it moves left") and key: value lists
def s_predicate(w, art, noun, where, o, st):
    preds = [x for x in ([w.colour(o.colour)] if "colour" in st else []) +
             ([w.size(o.size)] if "size" in st else [])]
    out = f"the {w.shape(o.shape)}"
    out += f" is {' and '.join(preds)}" if preds else ""
    if "motion" in st:
        out += f"{',' if preds else ''} it {_moves(w, o, st)}"
    return out + (f", {where}" if where else "")


def s_fields(w, art, noun, where, o, st):
    fields = [f"shape: {w.shape(o.shape)}"]
    if "colour" in st:
        fields.append(f"colour: {w.colour(o.colour)}")
    if "size" in st:
        fields.append(f"size: {w.size(o.size)}")
    if where:
        fields.append(f"position: {w.pick(POSITION[o.position])}")
    if "motion" in st:
        fields.append(f"motion: {_moving(w, o, st)}")
    return ", ".join(fields)


STRUCTURES = [s_plain, s_terse, s_participle_first, s_where_first, s_that, s_there_is, s_with]
HELD_STRUCTURES = [s_predicate, s_fields]
JOINS = [" and ", ", and ", ". ", "; ", ", plus ", " and also ", ". also "]


# ----------------------------------------------------------------------------- prompts
SPECIALS = ("negation", "negation", "negation", "count", "count", "relation", "relation",
            "relation", "relation", "sequence", "sequence", "same_colour", "three",
            "black_object", "bad_background", "behind", "two_colours", "unknown", "foreign")
TRUE_TO_THE_SCENE = ("negation", "relation")   # specials that never change the scene


def user_prompt(scene: Scene, rng, held_words=False, held_structures=False,
                p_typo=0.05, p_special=0.45, specials=SPECIALS):
    """-> (prompt, reading, scene): what a person might type for (something like) `scene`,
    what it states in the world's words, and the scene a right rewrite describes (the input
    scene, re-ordered and adjusted to the prompt: objects in the order the prompt names them).

    held_words / held_structures: draw from the held-out synonyms / structures (evaluation
    only). p_special: the chance of a negation, count, relation, sequence or impossible
    request."""
    w = Writer(rng, held_words)
    objs = [Obj(**vars(o)) for o in scene.objects]
    if len(objs) == 2 and w.p(0.5):
        objs = objs[::-1]
    # what the user states, per object (the shape is almost always said)
    stated = []
    for o in objs:
        st = {"shape"}
        st |= {k for k, p in (("colour", 0.85), ("size", 0.4), ("position", 0.4),
                              ("motion", 0.55 if scene.frames > 1 else 0)) if w.p(p)}
        if "motion" in st and o.motion in MOVING and w.p(0.5):
            st.add("speed")
        stated.append(st)
    read = [{k: getattr(o, k) for k in st} for o, st in zip(objs, stated)]
    bg_stated = w.p(0.45)
    notes, extra, negate, special = [], None, {}, None
    if w.p(p_special):
        special = w.pick([s for s in specials if scene.frames > 1 or s not in
                          ("sequence", "count") or specials is TRUE_TO_THE_SCENE])
    structure = w.pick(HELD_STRUCTURES if held_structures else STRUCTURES)

    # --- the special requests rewrite `read`, `notes` and sometimes the scene
    if special == "negation":
        k = int(rng.integers(len(objs)))
        o, r = objs[k], read[k]
        kind = w.pick(["colour", "colour", "still", "speed", "size"] if scene.frames > 1
                      else ["colour", "size"])
        if kind == "colour":
            other = w.pick([c for c in OBJECT_COLOURS if c != o.colour])
            r.pop("colour", None)
            stated[k].discard("colour")
            r["not"], negate[k] = other, other
        elif kind == "still" and o.motion == "still":
            r["motion"] = "still"
            extra = (k, w.pick(["not moving", "that doesn't move", "that does not move",
                                "that isn't moving", "not moving at all"]))
            stated[k].discard("motion")
        elif kind == "speed" and o.speed:
            r["speed"], r["motion"] = o.speed, o.motion
            stated[k] |= {"motion"}
            stated[k].discard("speed")
            opp = "fast" if o.speed == "slow" else "slow"
            extra = (k, w.pick([f"but not {w.speed(opp)}", f"not too {w.speed(opp)}",
                                f"and not {w.speed(opp)}"]))
        else:   # size
            r["size"] = o.size
            stated[k].discard("size")
            opp = "small" if o.size == "large" else "large"
            extra = (k, w.pick([f"(not {w.size(opp)})", f"that is not {w.size(opp)}",
                                f", not {w.size(opp)}"]))
    elif special == "count" and len(objs) == 2:
        objs[1].shape = objs[0].shape
        for r in read:
            r["shape"] = objs[0].shape
    elif special == "relation" and len(objs) == 2:
        rel = _relation(objs, rng)
        if rel:
            for r, st in zip(read, stated):
                r.pop("position", None)
                st.discard("position")
            read[0]["rel"] = (rel, 1)
            special = ("relation", rel)
    elif special == "sequence" and objs[0].motion in MOVING:
        then = w.pick([m for m in ("left", "right", "up", "down", "bounce")
                       if m != objs[0].motion])
        read[0]["motion"] = objs[0].motion
        stated[0] |= {"motion"}
        notes.append(f"then {then}")
        special = ("sequence", then)
    elif special == "same_colour":
        objs = _two_of_a_shape(objs, rng, scene)
        stated = [{"shape", "colour"}, {"shape"}]
        read = [{"shape": objs[0].shape, "colour": objs[0].colour}, {"shape": objs[1].shape}]
        notes.append("one colour each")
    elif special == "three":
        objs = _two_of_a_shape(objs, rng, scene)
        stated = [{"shape"}, {"shape"}]
        read = [{"shape": objs[0].shape}, {"shape": objs[1].shape}]
        notes.append("at most two")
    elif special == "black_object":
        stated[0].discard("colour")
        read[0].pop("colour", None)
        notes.append("black is a background")
    elif special == "bad_background":
        bg_stated = False
        notes.append(f"{w.pick(['white', 'white', 'red', 'yellow', 'green'])} is not a background")
    elif special == "behind" and len(objs) == 2:
        for r, st in zip(read, stated):
            r.pop("position", None)
            st.discard("position")
        notes.append("no overlap")
    elif special == "two_colours":
        other = w.pick([c for c in OBJECT_COLOURS if c != objs[0].colour])
        stated[0].add("colour")
        read[0]["colour"] = objs[0].colour
        notes.append(f"also {other}")
        special = ("two_colours", other)
    elif special in ("unknown", "foreign"):
        notes.append("unknown words")
    else:
        special = None if special in ("count", "relation", "sequence", "behind") else special

    # --- write the object clauses
    clauses = []
    for k, (o, st) in enumerate(zip(objs, stated)):
        art = w.pick(ARTICLES)
        noun = w.noun(o, st, negate.get(k))
        if special == "black_object" and k == 0:
            noun = " ".join(([w.size(o.size)] if "size" in st else [])
                            + [w.pick(["black", "black", "jet black"]), w.shape(o.shape)])
        if isinstance(special, tuple) and special[0] == "two_colours" and k == 0:
            first, second = (o.colour, special[1]) if w.p(0.5) else (special[1], o.colour)
            if first != o.colour:
                notes[-1] = f"also {first}"
                read[0]["colour"] = second
                objs[0].colour = second
            noun = f"{w.colour(first)} {w.colour(second)} {w.shape(o.shape)}"
        where = w.where(o.position) if "position" in st else ""
        clause = structure(w, art, noun, where, o, st)
        if extra and extra[0] == k:
            clause = f"{art}{noun} {extra[1]}" if structure in (s_terse,) else f"{clause} {extra[1]}"
        clauses.append(clause)

    if special == "count":
        clauses = [_count_phrase(w, objs, stated)]
    elif isinstance(special, tuple) and special[0] == "relation":
        clauses = [_relation_phrase(w, objs, stated, special[1])]
    elif isinstance(special, tuple) and special[0] == "sequence":
        clauses[0] = _sequence_phrase(w, objs[0], stated[0], special[1])
    elif special == "same_colour":
        clauses = [f"{w.pick(['two', '2', 'a pair of'])} {w.colour(objs[0].colour)} "
                   f"{_plural(w.shape(objs[0].shape))}"]
    elif special == "three":
        clauses = [f"{w.pick(['three', '3', 'four', 'five', 'lots of', 'many'])} "
                   f"{_plural(w.shape(objs[0].shape))}"]
    elif special == "behind":
        a = f"{w.pick(ARTICLES)}{w.noun(objs[0], stated[0])}"
        b = f"{w.pick(['a ', 'the '])}{w.noun(objs[1], stated[1])}"
        clauses = [f"{a} {w.pick(['behind', 'in front of', 'hidden behind', 'on top of'])} {b}"]
    elif special == "unknown":
        thing = w.pick(OUT_OF_WORLD + [f"{w.pick(OUT_COLOURS)} {w.shape(objs[0].shape)}"])
        if thing.endswith(w.shape(objs[0].shape)) and len(thing.split()) == 2:
            clauses[0] = f"{w.pick(ARTICLES)}{thing}"
            read[0].pop("colour", None)
        else:
            clauses.append(f"{w.pick(['a ', 'and a ', 'with a '])}{thing}")
    elif special == "foreign":
        clauses = [" ".join(w.pick(FOREIGN) for _ in range(int(rng.integers(2, 7))))]
        read, bg_stated = [], False

    text = w.pick(JOINS).join(clauses)
    if bg_stated:
        text = _with_background(w, text, scene.background)
    elif special == "bad_background":
        text = _with_background(w, text, None, notes[-1].split(" is ")[0])
    text = w.pick(FILLER_BEFORE) + text + w.pick(FILLER_AFTER)
    if p_typo:
        text = " ".join(typo(t, rng) if rng.random() < p_typo else t for t in text.split(" "))
    if w.p(0.25):
        text = text[0].upper() + text[1:]
    if w.p(0.3):
        text += w.pick([".", "!", ""])
    out = Scene(scene.background, objs, scene.frames, scene.res)
    return text, reading(read, scene.background if bg_stated else None, notes), out


def _plural(noun):
    if noun.endswith(("x", "s", "sh")):
        return noun + "es"
    return noun + "s"


def _two_of_a_shape(objs, rng, scene):
    """Two objects of one shape (the first's), from the scene's objects or a new draw."""
    if len(objs) == 1:
        two = sample_scene(rng, "train", scene.frames, scene.res, n_objects=2).objects
        objs = two
    objs[1].shape = objs[0].shape
    return objs


def _relation(objs, rng):
    """A relation true between the two objects' start cells, or None."""
    (xa, ya), (xb, yb) = POSITIONS[objs[0].position], POSITIONS[objs[1].position]
    options = [r for r, ok in (("left of", xa < xb), ("right of", xa > xb), ("above", ya < yb),
                               ("below", ya > yb)) if ok]
    return options[int(rng.integers(len(options)))] if options else None


REL_WORDS = {"left of": ["to the left of", "left of", "on the left of"],
             "right of": ["to the right of", "right of", "on the right of"],
             "above": ["above", "over", "higher than"],
             "below": ["below", "under", "beneath", "lower than"]}


def _relation_phrase(w, objs, stated, rel):
    a = f"{w.pick(ARTICLES)}{w.noun(objs[0], stated[0])}"
    b = f"{w.pick(['a ', 'the ', ''])}{w.noun(objs[1], stated[1])}"
    text = f"{a} {w.pick(REL_WORDS[rel])} {b}"
    moves = [f"the {w.shape(o.shape)} {_moves(w, o, st)}" for o, st in zip(objs, stated)
             if "motion" in st]
    return ", ".join([text] + moves)


def _count_phrase(w, objs, stated):
    shape = _plural(w.shape(objs[0].shape))
    head = f"{w.pick(['two', '2', 'a pair of'])} {shape}"
    ones = []
    for o, st in zip(objs, stated):
        desc = " ".join(x for x in ([w.size(o.size)] if "size" in st else []) +
                        ([w.colour(o.colour)] if "colour" in st else []))
        one = f"{w.pick(['one', 'a'])} {desc} one".replace("  ", " ") if desc else "one"
        if "motion" in st:
            one += f" {_moving(w, o, st)}"
        if "position" in st:
            one += f" {w.where(o.position)}"
        ones.append(one)
    if all(x == "one" for x in ones):
        return head
    return f"{head}, {ones[0]} and {ones[1].replace('one', 'the other', 1)}" \
        if w.p(0.5) else f"{head}: {ones[0]}, {ones[1]}"


def _sequence_phrase(w, o, st, then):
    noun = f"{w.pick(ARTICLES)}{w.noun(o, st)}"
    first = _moves(w, o, st | {"motion"})
    second = w.direction(then) if then in DIRECTION else w.pick(OTHER_MOTION[then])[0]
    second_verb = f"{w.pick(['moves', 'goes', 'heads'])} {second}" if then in DIRECTION else second
    form = int(w.rng.integers(4))
    if form == 0:
        return f"first {noun} {first}, then it {second_verb}"
    if form == 1:
        return f"{noun} first {first} and then {second_verb}"
    if form == 2:
        return f"{noun} {first}, after that it {second_verb}"
    return f"{noun} {first} then {second}"


def _with_background(w, text, bg, word=None):
    colour = word or w.background(bg)
    form = w.pick(["on {c}", "on a {c} background", "{c} background", "against a {c} backdrop",
                   "the background is {c}", "background: {c}", "with a {c} background",
                   "on plain {c}", "{c} bg", "over a {c} background"]).format(c=colour)
    if w.p(0.35):
        return f"{form}, {text}" if w.p(0.5) else f"{form}. {text}"
    return f"{text} {form}" if form.startswith(("on", "against", "over", "with")) \
        else f"{text}, {form}"


def sample_pair(rng, held_words=False, held_structures=False, **kw):
    """One training (or held-out evaluation) example from a fresh train-split scene:
    -> (prompt, reading, scene)."""
    scene = sample_scene(rng, "train", frames=16)
    return user_prompt(scene, rng, held_words, held_structures, **kw)


def lexicon(held=True) -> set:
    """Every word the generator can write (held=True: with the held-out forms): what a
    rewriter may call 'a word of the world's users'; anything else is reported as unknown."""
    from minivid.vocab import split_words
    texts = []
    for table in (COLOUR, BACKGROUND, SHAPE, SIZE, POSITION, DIRECTION, SPEED):
        texts += [p for ps in table.values() for p in ps]
    texts += VERBS + [p for ps in OTHER_MOTION.values() for pair in ps for p in pair]
    texts += FILLER_BEFORE + FILLER_AFTER + ARTICLES + JOINS
    texts += [p for ps in REL_WORDS.values() for p in ps]
    texts += ["not", "non", "isn't", "that", "which", "is", "but", "one", "the other", "two",
              "2", "a pair of", "first", "then", "after that", "it", "there", "starts", "and",
              "shape", "colour", "size", "position", "motion", "too", "at all"]
    texts += [_plural(p) for ps in SHAPE.values() for p in ps]
    if held:
        texts += [p for table in HELD_WORDS.values() for ps in table.values() for p in ps]
    return {t for text in texts for t in split_words(text)}


if __name__ == "__main__":
    from minivid.captions import dense_caption

    rng = np.random.default_rng(0)
    for i in range(12):
        prompt, read, scene = sample_pair(rng, held_words=i >= 9, held_structures=i >= 10)
        print(f"prompt : {prompt}\nreading: {read}\ncaption: {dense_caption(scene, rng)}\n")
