"""The tiny world's vocabulary: every attribute name a scene can use and what it means in
pixels, and the one rule that cuts any text into words.

Where it sits: at the bottom of the import order. It imports nothing from minivid, so every
file that only needs the names can read them without pulling in the rest:

    vocab <- prompt_parse <- captions             (words: what a scene is called)
    vocab <- scene <- long_clips                  (physics: how a scene moves and looks)
    vocab, scene, captions, long_clips <- world   (the dataset writer)
    vocab <- text <- gpt                          (split_words: the tokenizers' words)

The keys of each table are the world's words ("red", "top left", "bounce"); the values are
what the renderer makes of them (an RGB colour, a cell, a velocity).
"""
import re
import unicodedata

# Object colours and background colours are far apart in RGB, so a pixel's nearest palette
# entry is unambiguous even in a blurry generated clip.
OBJECT_COLOURS = {
    "red": (230, 40, 40), "orange": (255, 150, 20), "yellow": (245, 230, 40),
    "green": (40, 200, 60), "cyan": (40, 220, 230), "blue": (50, 80, 245),
    "purple": (170, 60, 220), "white": (245, 245, 245),
}
BACKGROUNDS = {
    "black": (0, 0, 0), "grey": (110, 110, 110), "navy": (20, 25, 90), "brown": (95, 60, 30),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 4.0, "large": 7.0}  # radius in pixels at 32x32 (scaled with resolution)
# 3x3 grid of named start positions: (x, y) as fractions of the frame.
POSITIONS = {
    "top left": (0.22, 0.22), "top": (0.5, 0.22), "top right": (0.78, 0.22),
    "left": (0.22, 0.5), "centre": (0.5, 0.5), "right": (0.78, 0.5),
    "bottom left": (0.22, 0.78), "bottom": (0.5, 0.78), "bottom right": (0.78, 0.78),
}
# Direction of travel per frame, image coordinates (y grows downwards).
DIRECTIONS = {
    "left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1),
    "up-left": (-1, -1), "up-right": (1, -1), "down-left": (-1, 1), "down-right": (1, 1),
}
MOTIONS = ("still", *DIRECTIONS, "bounce", "grow", "shrink")
SPEEDS = {"slow": 0.5, "fast": 1.0}  # pixels per frame at 32x32 along each moving axis
MOVING = (*DIRECTIONS, "bounce")     # motions that have a speed
BOUNCE_HEIGHT = 8.0                  # pixels at 32x32
GROW, SHRINK = 1.6, 0.55             # final radius / start radius
GROW_FRAMES = 15                     # frames a grow / shrink takes (a 16-frame clip's length)


def split_words(text: str) -> list[str]:
    """Lower-cased words and single punctuation marks: "A red, big Box." -> a red , big box .

    The one word splitter of minivid: the text encoder's tokenizer (minivid/text.py), the
    rewriter's GPT (minivid/rewrite.py) and the prompt parser (minivid/prompt_parse.py) all
    see the same words. Unicode is NFKC-normalised and `\\w` matches letters of every
    script, so "Café" and "日本" are words like any other; "doesn't" is doesn ' t (the "not"
    survives), and "IMG_42" is one word."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.findall(r"\w+|[^\w\s]", text)
