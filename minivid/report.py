"""The report: every stage's results on one self-contained HTML page, runs/report.html.

Where it sits: the very end of run_tiny.sh, after every stage has written its run folder. It
reads, it never computes: each evaluation's table exactly as it was printed (the stdout of
`python -m minivid.evaluate ...`, saved with tee as runs/<stage>/evaluate*.txt), the loss
curves, the samples, the long videos, the captions, the agent's film, plan and trace. Stages
come in pipeline order under a summary table: wall time (runs/<stage>/wall_time.txt) and the
headline figures, read from the last line of each evaluate*.txt (one JSON object, bench.py).

Self-contained: every image and GIF is inlined as a base64 `data:` URI, plain CSS sits in a
<style> block, there is no JavaScript and no external resource, so the one file opens in any
browser, offline, mailed or copied anywhere. It never crashes on a partial run: a stage whose
folders are missing says "not run yet"; files that would take the page over --max-mb are
skipped with a note (a link instead), and so are GIFs beyond MAX_GIFS in one folder.

What each stage shows is the STAGES table below: edit the table, not the code, when a stage's
files change. Files are drawn by type: .txt as text, .png/.gif/.jpg as pictures, .mp4 as a
video, .json pretty-printed, .jsonl as a table (an agent trace, or a captions manifest).

    python -m minivid.report                      # runs/ + tiny_data/ -> runs/report.html
    python -m minivid.report --runs runs --data tiny_data --out runs/report.html --max-mb 30
"""
import argparse
import base64
import glob
import html
import json
import os
import re
from dataclasses import dataclass

from PIL import Image


@dataclass(frozen=True)
class Stage:
    number: str
    title: str
    what: str       # one sentence: what this stage does
    folders: tuple  # where its files live: "{runs}/..." or "{data}"
    files: tuple    # glob patterns inside each folder, shown in this order (a file once)


TEXT = ("evaluate*.txt", "*.txt")         # the evaluation's table first, then any other log
PICTURES = ("*.png", "*.gif")

STAGES = (
    Stage("01", "Data", "A tiny captioned world: rendered shapes that move, each clip with a "
          "dense and a sparse caption, and the yardstick (scene checker + tiny FVD) checked on "
          "real clips.", ("{data}", "{runs}/data"), TEXT + PICTURES),
    Stage("02", "Recaptioning", "A captioner that reads pixels writes dense captions for clips "
          "that came without text, scored by the blind-person test against the zero-parameter "
          "rule.", ("{runs}/captioner",), TEXT + PICTURES + ("uncaptioned/captions.jsonl",)),
    Stage("03", "Patch VAE", "A causal video autoencoder squeezes 4x in time and space, so "
          "the DiT works on small latents instead of pixels.", ("{runs}/vae_t4",),
          TEXT + PICTURES),
    Stage("04", "DiT: image first, then video", "A diffusion transformer trained by flow "
          "matching, on images first and then fine-tuned on clips; samples at each step count.",
          ("{runs}/dit_image", "{runs}/dit_video", "{runs}/samples"),
          TEXT + PICTURES + ("*/*.png", "*/*.gif")),
    Stage("05", "Distillation", "A student that samples in 1 to 8 steps with guidance folded "
          "in, beside its teacher; and one-step transfer of a clip to a new caption.",
          ("{runs}/distill",), TEXT + PICTURES + ("samples_1step/*.gif", "transfer_1step/*.gif",
                                                 "*/*.gif")),
    Stage("06", "Prompt rewriting", "A tiny language model rewrites what people type into the "
          "dense descriptions the DiT trained on: the same prompts without and with it.",
          ("{runs}/rewriter", "{runs}/rewrite"),
          TEXT + PICTURES + ("typed/*.gif", "rewritten/*.gif", "*/*.png", "*/*.gif")),
    Stage("07", "Clip extension", "Long videos clip by clip, each clip conditioned on the "
          "history (full, window or packed context).", ("{runs}/extend",),
          TEXT + PICTURES + ("long/*.gif",)),
    Stage("08", "Video agent", "An agent plans a short film shot by shot, calls the tools and "
          "checks its work: the film, its shot list and its trace.", ("{runs}/agent",),
          TEXT + ("film.gif", "*.gif", "*.png", "*.mp4", "plan.json", "*.json", "trace.jsonl",
                  "*.jsonl")),
)

MAX_GIFS = 12           # per folder: a samples folder of 100 GIFs would bury the rest
MAX_ROWS = 50           # rows of a .jsonl table
MAX_FIGURES = 12        # headline figures per evaluation in the summary
MAX_INLINE_VIDEO = 2 * 2**20   # an .mp4 above this is linked, not inlined
MAX_TEXT = 200_000      # characters of one .txt shown
MIME = {".png": "image/png", ".gif": "image/gif", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
        ".webp": "image/webp", ".mp4": "video/mp4", ".webm": "video/webm"}
CSS = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; }
h2 { border-bottom: 2px solid #ccc; padding-bottom: .2rem; margin-top: 2.5rem; }
h3 { color: #555; margin-bottom: .3rem; }
.what { font-style: italic; color: #555; }
.missing { color: #a33; font-weight: bold; }
.note { color: #777; font-size: .9rem; }
pre { background: #f5f5f5; padding: .6rem; overflow-x: auto; font-size: .8rem; }
table { border-collapse: collapse; font-size: .85rem; margin: .5rem 0; }
td, th { border: 1px solid #ddd; padding: .2rem .4rem; vertical-align: top; text-align: left; }
figure { display: inline-block; margin: .3rem; vertical-align: top; }
figcaption { font-size: .75rem; color: #666; max-width: 16rem; overflow-wrap: anywhere; }
img { max-width: 100%; }
img.px { image-rendering: pixelated; }
code { background: #eef; padding: 0 .2rem; margin-right: .3rem; }
"""


class Budget:
    """Bytes the page may still inline: a file that does not fit is linked with a note."""

    def __init__(self, max_bytes: int):
        self.left = max_bytes

    def take(self, n: int) -> bool:
        if n > self.left:
            return False
        self.left -= n
        return True


# ---------------------------------------------------------------- reading what a run left

def last_json(text: str) -> dict:
    """The figures of one evaluation: its last non-empty line, a JSON object ({} if not)."""
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        fig = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}
    return fig if isinstance(fig, dict) else {}


def short(value, width: int = 60) -> str:
    """One value in a cell: floats to 4 digits, anything else as compact JSON, cut at `width`."""
    if value is None:
        s = ""
    elif isinstance(value, float):
        s = f"{value:.4g}"
    elif isinstance(value, str):
        s = value
    else:
        s = json.dumps(value, separators=(",", ":"), default=str)
    return s if len(s) <= width else s[:width - 1] + "…"


def headline(fig: dict) -> list[tuple[str, str]]:
    """(key, value) pairs of one evaluation's figures, nested dicts flattened one level."""
    pairs = []
    for k, v in fig.items():
        if k == "eval":
            continue                         # the evaluation's name: the row's label instead
        if isinstance(v, dict):
            pairs += [(f"{k}.{k2}", short(v2, 40)) for k2, v2 in v.items()]
        else:
            pairs.append((k, short(v, 40)))
    return pairs


def wall_seconds(folder: str):
    """The seconds run_tiny.sh wrote to <folder>/wall_time.txt (the first number), or None."""
    try:
        with open(os.path.join(folder, "wall_time.txt")) as f:
            m = re.search(r"\d+(\.\d+)?", f.read())
    except OSError:
        return None
    return float(m.group()) if m else None


def duration(seconds) -> str:
    if seconds is None:
        return "-"
    m, s = divmod(round(seconds), 60)
    return f"{m}m {s:02d}s" if m else f"{s}s"


def stage_files(folder: str, patterns) -> list[str]:
    """The files of one folder matching the stage's patterns, in pattern order, each once."""
    seen, files = set(), []
    for pattern in patterns:
        for path in sorted(glob.glob(os.path.join(glob.escape(folder), pattern))):
            if os.path.isfile(path) and path not in seen and \
                    os.path.basename(path) != "wall_time.txt":
                seen.add(path)
                files.append(path)
    return files


# ---------------------------------------------------------------- drawing one file

def data_uri(path: str, budget: Budget):
    """The file as a `data:` URI, or None when it would take the page over its cap."""
    with open(path, "rb") as f:
        raw = f.read()
    if not budget.take(4 * (len(raw) + 2) // 3 + 40):    # base64 costs 4 chars per 3 bytes
        return None
    mime = MIME[os.path.splitext(path)[1].lower()]
    return f"data:{mime};base64,{base64.b64encode(raw).decode('ascii')}"


def skipped(path: str, link_from: str, why: str) -> str:
    rel = html.escape(os.path.relpath(path, link_from))
    return f'<p class="note">{html.escape(path)}: {why}; open <a href="{rel}">{rel}</a></p>'


def picture(path: str, budget: Budget, link_from: str, label: str) -> str:
    """An <img> figure. Tiny frames (32x32 px) are drawn 4-6x larger, pixels kept sharp."""
    uri = data_uri(path, budget)
    if uri is None:
        return skipped(path, link_from, f"{os.path.getsize(path) / 2**20:.1f} MB would take "
                       "the page over its size cap")
    size = ""
    try:
        with Image.open(path) as im:
            w, h = im.size
        if w < 160:
            k = max(1, 192 // w)
            size = f' class="px" width="{w * k}" height="{h * k}"'
    except (OSError, ValueError, ZeroDivisionError):
        pass                                 # unreadable by PIL: let the browser try
    return (f'<figure><img src="{uri}" alt="{html.escape(label)}"{size}>'
            f"<figcaption>{html.escape(label)}</figcaption></figure>")


def video(path: str, budget: Budget, link_from: str, label: str) -> str:
    if os.path.getsize(path) > MAX_INLINE_VIDEO:
        return skipped(path, link_from, "too big to inline (over 2 MB)")
    uri = data_uri(path, budget)
    if uri is None:
        return skipped(path, link_from, "would take the page over its size cap")
    return (f'<figure><video controls loop src="{uri}"></video>'
            f"<figcaption>{html.escape(label)}</figcaption></figure>")


def text(path: str, budget: Budget) -> str:
    with open(path, errors="replace") as f:
        s = f.read()
    note = ""
    if len(s) > MAX_TEXT:
        s, note = s[:MAX_TEXT], f'<p class="note">first {MAX_TEXT} characters shown</p>'
    if path.endswith(".json"):
        try:
            s = json.dumps(json.loads(s), indent=2)
        except json.JSONDecodeError:
            pass                             # a half-written file: shown as it is
    if not budget.take(len(s)):
        return f'<p class="note">{html.escape(path)}: skipped, the page is at its size cap</p>'
    return f"<pre>{html.escape(s)}</pre>{note}"


# A trace's columns, each read from the first key a row has: minivid/tool_calling.py's events
# say name/args/result ("call") or name/arguments/error ("rejected").
TRACE = {"tool": ("tool", "name"), "args": ("args", "arguments"), "result": ("result", "error"),
         "seconds": ("seconds",), "reason": ("reason",)}


def jsonl_table(path: str, budget: Budget, link_from: str) -> str:
    """A .jsonl file as a table: an agent's trace (tool, args, result, seconds, reason), or a
    captions manifest with each `media` drawn beside its caption, or any rows' first keys."""
    rows = []
    with open(path, errors="replace") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue                     # a half-written last line
            if isinstance(row, dict):
                rows.append(row)
    if not rows:
        return f'<p class="note">{html.escape(path)}: no rows</p>'
    trace = any(k in rows[0] for k in ("tool", "name")) and "caption" not in rows[0]
    keys = TRACE if trace else {k: (k,) for k in list(rows[0])[:6]}
    columns = list(keys)
    out = ["<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in columns) + "</tr>"]
    for row in rows[:MAX_ROWS]:
        cells = []
        for c in columns:
            value = next((row[k] for k in keys[c] if k in row), "")
            media = os.path.join(os.path.dirname(path), str(value))
            if c == "media" and os.path.splitext(media)[1].lower() in MIME and \
                    os.path.isfile(media) and not media.endswith((".mp4", ".webm")):
                cells.append(picture(media, budget, link_from, str(value)))
            elif c == "seconds" and isinstance(value, (int, float)):
                cells.append(f"{value:.2f}")
            else:
                cells.append(html.escape(short(value, 300 if c == "caption" else 120)))
        out.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    out.append("</table>")
    if len(rows) > MAX_ROWS:
        out.append(f'<p class="note">first {MAX_ROWS} of {len(rows)} rows shown</p>')
    return "\n".join(out)


def show(path: str, folder: str, budget: Budget, link_from: str) -> str:
    """One file, drawn by its type."""
    label = os.path.relpath(path, folder)
    ext = os.path.splitext(path)[1].lower()
    if ext in (".txt", ".json"):
        return f"<h4>{html.escape(label)}</h4>{text(path, budget)}"
    if ext == ".jsonl":
        return f"<h4>{html.escape(label)}</h4>{jsonl_table(path, budget, link_from)}"
    if ext in (".mp4", ".webm"):
        return video(path, budget, link_from, label)
    if ext in MIME:
        return picture(path, budget, link_from, label)
    return ""


# ---------------------------------------------------------------- the page

def stage_folders(stage: Stage, runs_dir: str, data_dir: str) -> list[str]:
    return [f.format(runs=runs_dir, data=data_dir) for f in stage.folders]


def stage_section(stage: Stage, runs_dir: str, data_dir: str, budget: Budget,
                  link_from: str) -> str:
    out = [f'<h2 id="s{stage.number}">{stage.number} {html.escape(stage.title)}</h2>',
           f'<p class="what">{html.escape(stage.what)}</p>']
    folders = stage_folders(stage, runs_dir, data_dir)
    if not any(os.path.isdir(f) for f in folders):
        names = ", ".join(folders)
        return "\n".join(out + [f'<p class="missing">not run yet ({html.escape(names)} '
                                "missing)</p>"])
    for folder in folders:
        out.append(f"<h3>{html.escape(folder)}</h3>")
        if not os.path.isdir(folder):
            out.append('<p class="missing">not run yet</p>')
            continue
        seconds = wall_seconds(folder)
        if seconds is not None:
            out.append(f'<p class="note">wall time: {duration(seconds)}</p>')
        files = stage_files(folder, stage.files)
        if not files:
            out.append('<p class="note">nothing to show yet</p>')
        gifs = {}                            # folder -> GIFs seen, for the MAX_GIFS cap
        for path in files:
            if path.lower().endswith(".gif"):
                here = os.path.dirname(path)
                gifs[here] = gifs.get(here, 0) + 1
                if gifs[here] > MAX_GIFS:
                    continue
            out.append(show(path, folder, budget, link_from))
        for here, n in gifs.items():
            if n > MAX_GIFS:
                out.append(f'<p class="note">{html.escape(here)}: first {MAX_GIFS} of {n} GIFs '
                           "shown</p>")
    return "\n".join(out)


def summary(runs_dir: str, data_dir: str) -> str:
    """One row per stage: wall time, and each evaluation's headline figures."""
    out = ["<table><tr><th>stage</th><th>wall time</th><th>headline figures</th></tr>"]
    for stage in STAGES:
        folders = [f for f in stage_folders(stage, runs_dir, data_dir) if os.path.isdir(f)]
        times = [s for s in map(wall_seconds, folders) if s is not None]
        figures = []
        for folder in folders:
            for path in sorted(glob.glob(os.path.join(glob.escape(folder), "evaluate*.txt"))):
                with open(path, errors="replace") as f:
                    fig = last_json(f.read())
                pairs = headline(fig)
                items = "".join(f"<code>{html.escape(k)} = {html.escape(v)}</code> "
                                for k, v in pairs[:MAX_FIGURES])
                more = f" (+{len(pairs) - MAX_FIGURES} more)" if len(pairs) > MAX_FIGURES else ""
                name = html.escape(str(fig.get("eval", os.path.basename(path))))
                figures.append(f"<b>{name}</b>: {items or '(no JSON line)'}{more}")
        status = "<br>".join(figures) or ("no evaluation yet" if folders else
                                          '<span class="missing">not run yet</span>')
        wall = duration(sum(times) if times else None)
        out.append(f'<tr><td><a href="#s{stage.number}">{stage.number} '
                   f"{html.escape(stage.title)}</a></td><td>{wall}</td><td>{status}</td></tr>")
    return "\n".join(out + ["</table>"])


def build_report(runs_dir: str = "runs", data_dir: str = "tiny_data", max_mb: float = 30,
                 link_from: str | None = None) -> str:
    """The whole page as one HTML string. Files beyond `max_mb` of inlined bytes are linked
    (relative to `link_from`, the report's folder; default `runs_dir`) instead of inlined."""
    max_bytes = int(max_mb * 2**20)
    budget = Budget(max_bytes - min(256 * 2**10, max_bytes // 4))   # room for the markup
    link_from = link_from or runs_dir
    sections = [stage_section(s, runs_dir, data_dir, budget, link_from) for s in STAGES]
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        "<title>minivid report</title>", f"<style>{CSS}</style>", "</head>", "<body>",
        "<h1>minivid report</h1>",
        f'<p class="note">runs: {html.escape(runs_dir)}, data: {html.escape(data_dir)}. '
        "Each evaluation's table is shown as it printed it; the headline figures are its "
        "last line (one JSON object).</p>",
        summary(runs_dir, data_dir), *sections, "</body>", "</html>", ""])


def write_report(runs_dir: str = "runs", data_dir: str = "tiny_data",
                 out: str = "runs/report.html", max_mb: float = 30) -> str:
    """Build the page and write it atomically (a temp file beside it, then os.replace) -> out."""
    folder = os.path.dirname(os.path.abspath(out))
    os.makedirs(folder, exist_ok=True)
    page = build_report(runs_dir, data_dir, max_mb, link_from=os.path.dirname(out) or ".")
    tmp = f"{out}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
    os.replace(tmp, out)                     # a reader never sees half a page
    return out


def main(argv=None) -> str:
    p = argparse.ArgumentParser(description="One self-contained HTML page with every stage's "
                                "results.", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--runs", default="runs", help="the run folders (runs/<stage>/)")
    p.add_argument("--data", default="tiny_data", help="the tiny-world folder (preview.gif)")
    p.add_argument("--out", default="runs/report.html", help="the page to write")
    p.add_argument("--max-mb", type=float, default=30, help="cap on the page's size: files "
                   "beyond it are linked instead of inlined")
    args = p.parse_args(argv)
    path = write_report(args.runs, args.data, args.out, args.max_mb)
    print(f"wrote {path} ({os.path.getsize(path) / 2**20:.2f} MB)")
    return path


if __name__ == "__main__":
    main()
