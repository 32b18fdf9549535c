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

The generator has three files, from words to prompts:
  minivid/user_lexicon.py    the words (synonyms, filler, things the world does not have);
  minivid/user_sentences.py  HOW a thing is said: a phrase for each value, the sentence
                             structures of one object, the phrases of the special requests,
                             typos;
  this file                  WHAT a prompt says: which attributes of which objects, which
                             special request, the scene that answers it, and its reading.

Held out, never in training prompts, to measure generalisation (rewrite_bench.py):
  HELD_WORDS       a part of the synonyms: word forms whose letters carry the meaning
                   ("reddish", "circular", "leftwards", "speedily"): see user_lexicon.py;
  HELD_STRUCTURES  a part of the sentence structures ("the square is red and big, ..."):
                   see user_sentences.py.

    python -m minivid.user_language          # prints a few (prompt, reading, caption) triples
"""
import numpy as np

from minivid.scene import Obj, Scene, sample_scene
from minivid.user_lexicon import (ARTICLES, BACKGROUND, COLOUR, DIRECTION, FILLER_AFTER,
                                  FILLER_BEFORE, FILLER_CLAUSE, FOREIGN, HELD_WORDS,
                                  OTHER_MOTION, OUT_COLOURS, OUT_OF_WORLD, POSITION, SHAPE, SIZE,
                                  SPEED, VERBS)
from minivid.user_sentences import (HELD_STRUCTURES, JOINS, REL_WORDS, STRUCTURES, Writer,
                                    an_before_vowels, count_phrase, opens_with_a_clause, plural,
                                    relation_phrase, s_terse, sequence_phrase, typo,
                                    with_background)
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
        clauses = [count_phrase(w, objs, stated)]
    elif isinstance(special, tuple) and special[0] == "relation":
        clauses = [relation_phrase(w, objs, stated, special[1])]
    elif isinstance(special, tuple) and special[0] == "sequence":
        clauses[0] = sequence_phrase(w, objs[0], stated[0], special[1])
    elif special == "same_colour":
        clauses = [f"{w.pick(['two', '2', 'a pair of'])} {w.colour(objs[0].colour)} "
                   f"{plural(w.shape(objs[0].shape))}"]
    elif special == "three":
        clauses = [f"{w.pick(['three', '3', 'four', 'five', 'lots of', 'many'])} "
                   f"{plural(w.shape(objs[0].shape))}"]
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
            clauses.append(f"{w.pick(['a ', 'a ', 'with a '])}{thing}")
    elif special == "foreign":
        clauses = [" ".join(w.pick(FOREIGN) for _ in range(int(rng.integers(2, 7))))]
        read, bg_stated = [], False

    # the filler ("a video of ...") goes on the objects, then the background before or after
    # them: "on navy, make a video of a red ball", never "a video of on navy, a red ball"
    text = w.pick(JOINS).join(clauses)
    text = w.pick(FILLER_CLAUSE if opens_with_a_clause(text) else FILLER_BEFORE) + text
    if bg_stated:
        text = with_background(w, text, scene.background)
    elif special == "bad_background":
        text = with_background(w, text, None, notes[-1].split(" is ")[0])
    text = an_before_vowels(w, text + w.pick(FILLER_AFTER))
    if p_typo:
        text = " ".join(typo(t, rng) if rng.random() < p_typo else t for t in text.split(" "))
    if w.p(0.25):
        text = text[0].upper() + text[1:]
    if w.p(0.3):
        text += w.pick([".", "!", ""])
    out = Scene(scene.background, objs, scene.frames, scene.res)
    return text, reading(read, scene.background if bg_stated else None, notes), out


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
    texts += [plural(p) for ps in SHAPE.values() for p in ps]
    if held:
        texts += [p for table in HELD_WORDS.values() for ps in table.values() for p in ps]
    return {t for text in texts for t in split_words(text)}


if __name__ == "__main__":
    from minivid.captions import dense_caption

    rng = np.random.default_rng(0)
    for i in range(12):
        prompt, read, scene = sample_pair(rng, held_words=i >= 9, held_structures=i >= 10)
        print(f"prompt : {prompt}\nreading: {read}\ncaption: {dense_caption(scene, rng)}\n")
