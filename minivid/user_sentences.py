"""How a person phrases a request: the words, clauses and sentences of the generator of user
language, with the typos.

Where it sits: minivid/user_language.py decides WHAT a prompt says (which attributes of which
objects, which special request) and what it means; this file decides HOW it is said, drawing
its words from the lexicon, minivid/user_lexicon.py. Nothing here looks at a whole scene or
writes a reading, and nothing here reads language: it only writes it.

What is here, smallest first:
  - the WRITER: one phrase for one value ("crimson", "at the upper left", "zooms left
    slowly", "little ball that is not red"), from the training synonyms or, when asked,
    the held-out forms (HELD_WORDS, user_lexicon.py);
  - the sentence STRUCTURES: one object as a clause, in one of several orders ("a red circle
    in the top left moves left", "moving left, a red circle", "there is a red circle. it
    moves left"), and the JOINS between clauses; the phrases of the special requests (a
    count, a relation, a sequence, the background);
  - `typo`: a typing error in a word.

Held out, never in training prompts, to measure generalisation (rewrite_bench.py):
  HELD_STRUCTURES  a part of the sentence structures ("the square is red and big, ...",
                   "shape: square, colour: red").

    python -m minivid.user_language          # prints a few prompts written with these
"""
import re

from minivid.user_lexicon import (ARTICLES, BACKGROUND, COLOUR, DIRECTION, HELD_WORDS,
                                  OTHER_MOTION, POSITION, SHAPE, SIZE, SPEED, VERBS)


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


def opens_with_a_clause(text):
    """Does `text` open with a clause ('there is ...', 'moving left, a ...', 'in the top left
    ...') rather than with a thing ('a red ball ...')? Then 'a video of' cannot go before it.
    Not a parser: it looks only at the first word of a text this file has just written."""
    first = text.split(" ", 1)[0].lower()
    return first in ("there", "first", "in", "at", "on", "from", "near", "is") or \
        first.rstrip(",").endswith("ing") or first.endswith(",")


def an_before_vowels(w, text):
    """'a orange ball' -> 'an orange ball' in most prompts; some people never bother."""
    return re.sub(r"\b([Aa]) (?=[aeioAEIO])", r"\1n ", text) if w.p(0.8) else text


# ----------------------------------------------------------------------------- special phrases
# The phrases of the special requests (minivid/user_language.py decides when): a count, a
# relation between the two objects, a sequence of motions, and the background.
def plural(noun):
    """'circle' -> 'circles', 'box' -> 'boxes'."""
    if noun.endswith(("x", "s", "sh")):
        return noun + "es"
    return noun + "s"


REL_WORDS = {"left of": ["to the left of", "left of", "on the left of"],
             "right of": ["to the right of", "right of", "on the right of"],
             "above": ["above", "over", "higher than"],
             "below": ["below", "under", "beneath", "lower than"]}


def relation_phrase(w, objs, stated, rel):
    """'a red square to the left of the circle, the circle moves up'."""
    a = f"{w.pick(ARTICLES)}{w.noun(objs[0], stated[0])}"
    b = f"{w.pick(['a ', 'the ', ''])}{w.noun(objs[1], stated[1])}"
    text = f"{a} {w.pick(REL_WORDS[rel])} {b}"
    moves = [f"the {w.shape(o.shape)} {_moves(w, o, st)}" for o, st in zip(objs, stated)
             if "motion" in st]
    return ", ".join([text] + moves)


def count_phrase(w, objs, stated):
    """'two circles, one red one and the other blue one' (two objects of one shape)."""
    shape = plural(w.shape(objs[0].shape))
    head = f"{w.pick(['two', '2', 'a pair of'])} {shape}"
    articles, rests = [], []          # "a" + " red one moving left": the article apart
    for o, st in zip(objs, stated):
        desc = " ".join(x for x in ([w.size(o.size)] if "size" in st else []) +
                        ([w.colour(o.colour)] if "colour" in st else []))
        article, rest = (w.pick(["one", "a"]), f" {desc} one") if desc else ("one", "")
        if "motion" in st:
            rest += f" {_moving(w, o, st)}"
        if "position" in st:
            rest += f" {w.where(o.position)}"
        articles.append(article)
        rests.append(rest)
    if not any(rests):
        return head
    first, second = articles[0] + rests[0], articles[1] + rests[1]
    # the second one is "the other": "one red one and the other blue one", never "a the other"
    return f"{head}, {first} and the other{rests[1]}" if w.p(0.5) \
        else f"{head}: {first}, {second}"


def sequence_phrase(w, o, st, then):
    """'first a red circle moves right, then it goes up' (`then`: the second motion)."""
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


def with_background(w, text, bg, word=None):
    """`text` with the background said before or after it ('... on a navy background');
    word: a colour word to say instead of background `bg`'s (one the world lacks)."""
    colour = word or w.background(bg)
    form = w.pick(["on {c}", "on a {c} background", "{c} background", "against a {c} backdrop",
                   "the background is {c}", "background: {c}", "with a {c} background",
                   "on plain {c}", "{c} bg", "over a {c} background"]).format(c=colour)
    if w.p(0.35):
        return f"{form}, {text}" if w.p(0.5) else f"{form}. {text}"
    return f"{text} {form}" if form.startswith(("on", "against", "over", "with")) \
        else f"{text}, {form}"
