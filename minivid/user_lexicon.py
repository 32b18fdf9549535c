"""The words people use for the tiny world: the lexicon of the generator of user language.

Where it sits: minivid/user_language.py and minivid/user_sentences.py write prompts from
scenes with these words (and the agent's planner, minivid/agent_plan.py, borrows a few
phrasings); minivid/rewrite.py builds the rewriter's vocabulary from them. It is data only
and imports nothing.

What is here:
  - for each value of the world (a colour, background, shape, size, start cell, direction,
    motion, speed), the words people use for it, canonical name first: SYNONYMS such as
    "crimson", "ball", "huge", "upper left", "zooming";
  - requests the world cannot show: things that do not exist (OUT_OF_WORLD, "a dog"),
    colours it does not have (OUT_COLOURS), other languages (FOREIGN);
  - the filler around a request ("please", "make a video of", "4k") and the articles.

Held out, never in training prompts, to measure generalisation (rewrite_bench.py):
  HELD_WORDS  a part of the synonyms: word forms whose letters carry the meaning ("reddish",
              "circular", "leftwards", "speedily"), so a model that reads character n-grams
              can generalise to them; a word whose letters say nothing ("teal" for cyan)
              cannot be learned without seeing it, so none is held out. The writer uses
              them only when asked (user_sentences.Writer, held_words=True).
"""

# value -> the words people use for it (training prompts). The canonical name comes first.
COLOUR = {
    "red": ["red", "crimson", "scarlet", "ruby", "cherry"],
    "orange": ["orange", "tangerine", "amber"],
    "yellow": ["yellow", "golden", "lemon", "gold"],
    "green": ["green", "lime", "emerald"],
    "cyan": ["cyan", "turquoise", "aqua", "teal"],
    "blue": ["blue", "azure", "cobalt", "sapphire"],
    "purple": ["purple", "violet", "lilac", "lavender", "magenta"],
    "white": ["white", "ivory", "snow white"],
}
BACKGROUND = {
    "black": ["black", "dark", "jet black", "pitch black"],
    "grey": ["grey", "gray", "silver", "slate", "ash"],
    "navy": ["navy", "dark blue", "navy blue", "midnight blue"],
    "brown": ["brown", "chocolate", "coffee", "dark brown"],
}
SHAPE = {
    "circle": ["circle", "ball", "dot", "disc", "disk", "sphere", "orb", "round shape"],
    "square": ["square", "box", "block", "cube", "tile"],
    "triangle": ["triangle", "pyramid", "wedge", "triangle shape"],
}
SIZE = {"small": ["small", "little", "tiny", "mini", "lil", "wee"],
        "large": ["large", "big", "huge", "giant", "massive", "enormous"]}
POSITION = {
    "top left": ["top left", "upper left", "top left corner", "top-left"],
    "top": ["top", "top middle", "upper middle", "top centre", "top center"],
    "top right": ["top right", "upper right", "top right corner", "top-right"],
    "left": ["left", "left side", "left edge", "middle left"],
    "centre": ["centre", "center", "middle", "very middle"],
    "right": ["right", "right side", "right edge", "middle right"],
    "bottom left": ["bottom left", "lower left", "bottom left corner", "bottom-left"],
    "bottom": ["bottom", "bottom middle", "lower middle", "bottom centre", "bottom center"],
    "bottom right": ["bottom right", "lower right", "bottom right corner", "bottom-right"],
}
# A direction of travel: how it is said after a verb ("moves ___").
DIRECTION = {
    "left": ["left", "to the left", "leftward", "towards the left"],
    "right": ["right", "to the right", "rightward", "towards the right"],
    "up": ["up", "upward", "towards the top"],
    "down": ["down", "downward", "towards the bottom"],
    "up-left": ["up and left", "up and to the left", "diagonally up-left", "up-left",
                "towards the top left"],
    "up-right": ["up and right", "up and to the right", "diagonally up-right", "up-right",
                 "towards the top right"],
    "down-left": ["down and left", "down and to the left", "diagonally down-left",
                  "down-left", "towards the bottom left"],
    "down-right": ["down and right", "down and to the right", "diagonally down-right",
                   "down-right", "towards the bottom right"],
}
VERBS = ["moves", "goes", "slides", "drifts", "travels", "heads", "glides", "floats",
         "rolls", "zooms", "is moving", "moving", "going", "sliding", "drifting", "heading"]
# Motions without a direction, as a whole phrase (3rd person, participle).
OTHER_MOTION = {
    "still": [("stays still", "staying still"), ("doesn't move", "not moving"),
              ("is not moving", "not moving"), ("stays put", "staying put"),
              ("is stationary", "stationary"), ("is motionless", "motionless"),
              ("sits still", "sitting still"), ("does not move", "without moving")],
    "bounce": [("bounces", "bouncing"), ("hops", "hopping"), ("jumps", "jumping"),
               ("bounces up and down", "bouncing up and down"), ("is bouncing", "bouncing")],
    "grow": [("grows", "growing"), ("expands", "expanding"), ("gets bigger", "getting bigger"),
             ("swells", "swelling"), ("inflates", "inflating"), ("grows larger", "growing")],
    "shrink": [("shrinks", "shrinking"), ("gets smaller", "getting smaller"),
               ("contracts", "contracting"), ("deflates", "deflating")],
}
SPEED = {"slow": ["slowly", "slow", "gently", "leisurely", "lazily", "at a slow pace"],
         "fast": ["fast", "quickly", "rapidly", "swiftly", "at high speed", "really fast"]}

# Held-out word forms: never in a training prompt (see the module docstring).
HELD_WORDS = {
    "colour": {"red": ["reddish"], "blue": ["bluish", "blueish"], "green": ["greenish"],
               "yellow": ["yellowish"], "purple": ["purplish"], "orange": ["orangey"],
               "white": ["whitish"]},
    "background": {"grey": ["greyish", "grayish"], "brown": ["brownish"],
                   "black": ["blackish"]},
    "shape": {"circle": ["circular shape", "circlular thing", "round thing"],
              "square": ["squarish thing", "squared shape"],
              "triangle": ["triangular shape", "triangular thing"]},
    # not "smaller" / "bigger": training prompts say "gets smaller" (shrink), "gets bigger"
    "size": {"small": ["smallish"], "large": ["largish", "biggish"]},
    "direction": {"left": ["leftwards"], "right": ["rightwards"], "up": ["upwards"],
                  "down": ["downwards"]},
    "speed": {"slow": ["slowish", "slowly-ish"], "fast": ["speedily", "quick"]},
}
# Things people ask for that the world does not have.
OUT_OF_WORLD = ["dog", "cat", "tree", "car", "house", "person", "bird", "star", "heart",
                "flower", "sun", "fish", "robot", "cloud"]
OUT_COLOURS = ["pink", "rose", "beige", "maroon", "olive", "pink"]
FOREIGN = ["un", "cercle", "rouge", "qui", "bouge", "ein", "roter", "kreis", "der", "sich",
           "bewegt", "una", "pelota", "azul", "que", "se", "mueve", "rápido", "赤い", "円"]
FILLER_BEFORE = ["", "", "", "", "a video of ", "make a video of ", "i want ", "show me ",
                 "can you make ", "generate ", "please make ", "a clip of ", "animation of ",
                 "create a video with ", "i'd like "]
# The filler before a request that opens with a clause ("there is a ...", "moving left, a ...")
FILLER_CLAUSE = ["", "", "a video where ", "make a video where ", "show me a clip where ",
                 "i want a video where "]
FILLER_AFTER = ["", "", "", "", " please", ", thanks", " in 4k", ", cinematic", " pls",
                ", looks cool", " for my project"]
ARTICLES = ["a ", "a ", "one ", "the ", ""]
