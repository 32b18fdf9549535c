"""09e The report: every stage's results on one self-contained page (minivid/report.py).

Concept: a run is only useful if someone can look at it. The report reads what each stage
left in runs/ (the evaluation's table as printed, its last-line JSON figures, loss curves,
samples, the agent's trace) and writes one HTML file with every picture inlined as a base64
`data:` URI, so it opens in any browser with nothing else. No browser can be installed here,
so "it renders" is checked the next best way: Python's html.parser reads the whole page,
every non-void tag is closed in order, every <img> decodes back to the exact file it came
from, nothing points outside the page, and the page stays under its size cap. The fake runs/
below has a missing stage, a half-written trace and an evaluation without its JSON line: the
report must say so, never crash.

    OMP_NUM_THREADS=1 python -m pytest tests/test_09e_report.py -q
"""
import base64
import json
import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from minivid import figures, report

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}


class Checker(HTMLParser):
    """Reads a page: non-void tags must close in order; collects <img> srcs, every src/href,
    and the visible text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.imgs, self.urls, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.imgs.append(attrs.get("src", ""))
        self.urls += [attrs[k] for k in ("src", "href") if k in attrs]
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert tag not in VOID, f"</{tag}>: a void element has no end tag"
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(page: str) -> Checker:
    c = Checker()
    c.feed(page)
    c.close()
    assert c.stack == [], f"unclosed tags: {c.stack}"
    c.text = "".join(c.text)
    return c


def gif(path, frames=3, size=32, seed=0):
    rng = np.random.default_rng(seed)
    ims = [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8))
           for _ in range(frames)]
    os.makedirs(os.path.dirname(path), exist_ok=True)
    ims[0].save(path, save_all=True, append_images=ims[1:], duration=100, loop=0)


def png(path, size=(64, 48), seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


FIG = {"eval": "vae", "psnr": 31.25, "fd": {"real": 1.5, "recon": 2.75}, "frames": [1, 5, 9]}
TRACE = [{"tool": "plan", "args": {"prompt": "a red ball"}, "result": {"shots": 2},
          "seconds": 0.1234, "reason": "start with a shot list"},
         {"name": "render_shot", "args": {"shot": 0}, "result": "ok", "seconds": 2.5,
          "reason": "first shot"},                        # minivid/tool_calling.py's "call"
         {"name": "render_shot", "arguments": {"shot": 9}, "error": "no shot 9",
          "reason": None}]                                 # and its "rejected"


@pytest.fixture
def fake(tmp_path):
    """A partial run: data, recaptioning, VAE, a half-finished distillation, the agent;
    no DiT, no rewriting, no extension folders."""
    runs, data = str(tmp_path / "runs"), str(tmp_path / "tiny_data")
    gif(f"{data}/preview.gif")
    write(f"{runs}/data/evaluate.txt", "checker   0.98\n"
          + json.dumps({"eval": "data", "checker": 0.98}) + "\n")
    write(f"{runs}/data/wall_time.txt", "12.4\n")
    write(f"{runs}/vae_t4/evaluate.txt", "VAE <runs/vae_t4> & co\npsnr  31.25\n"
          + json.dumps(FIG) + "\n")
    write(f"{runs}/vae_t4/wall_time.txt", "250")
    png(f"{runs}/vae_t4/loss.png")
    gif(f"{runs}/vae_t4/recon.gif", seed=1)
    gif(f"{runs}/captioner/uncaptioned/000000.gif", seed=2)
    write(f"{runs}/captioner/uncaptioned/captions.jsonl",
          json.dumps({"media": "000000.gif", "caption": "A big red circle."}) + "\n")
    write(f"{runs}/distill/evaluate.txt", "student  1 step ... (stopped before its JSON)\n")
    gif(f"{runs}/agent/film.gif", seed=3)
    write(f"{runs}/agent/plan.json", json.dumps({"shots": [{"prompt": "a red ball"}]}))
    write(f"{runs}/agent/trace.jsonl", "".join(json.dumps(r) + "\n" for r in TRACE)
          + '{"tool": "half-writ')
    return runs, data


def section(page: str, stage) -> str:
    """The HTML of one stage's section: from its heading to the next one."""
    start = page.index(f'<h2 id="s{stage.number}">')
    end = page.find("<h2 ", start + 1)
    return page[start:] if end < 0 else page[start:end]


# 1. The page parses: every non-void tag closes in order, it has a title and its CSS inline.
def test_01_page_parses(fake):
    page = report.build_report(*fake)
    c = parse(page)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "<script" not in page and "minivid report" in c.text


# 2. Every stage appears, in pipeline order; a stage with no folder says "not run yet",
#    a stage that ran does not, and a half-written evaluation does not crash the page.
def test_02_every_stage_in_order(fake):
    page = report.build_report(*fake)
    where = [page.index(f'<h2 id="s{s.number}">{s.number} {s.title}') for s in report.STAGES]
    assert where == sorted(where)
    missing = {"04", "06", "07"}
    for s in report.STAGES:
        assert ("not run yet" in section(page, s)) == (s.number in missing), s.title
    assert "stopped before its JSON" in section(page, report.STAGES[4])


# 3. Every picture is inline: a data: URI that decodes to the very bytes of its file, and
#    each file on disk that should show does (the captions' clip drawn beside its caption).
def test_03_images_inline_exact(fake):
    runs, data = fake
    c = parse(report.build_report(runs, data))
    shown = set()
    for src in c.imgs:
        head, b64 = src.split(",", 1)
        assert head.startswith("data:image/") and head.endswith(";base64"), head
        shown.add(base64.b64decode(b64))
    files = [f"{data}/preview.gif", f"{runs}/vae_t4/loss.png", f"{runs}/vae_t4/recon.gif",
             f"{runs}/captioner/uncaptioned/000000.gif", f"{runs}/agent/film.gif"]
    expected = set()
    for f in files:
        with open(f, "rb") as fh:
            expected.add(fh.read())
    assert shown == expected


# 4. The figures: the summary shows the wall time and the last JSON line flattened one level
#    (fd.real), the table text is escaped (its "<runs/vae_t4>" is text, not a tag), plan.json
#    is pretty-printed and the trace is a table with its tools, seconds and reasons (rows
#    written as tool/args/result or as minivid/tool_calling.py's name/arguments/error).
def test_04_figures_text_and_trace(fake):
    page = report.build_report(*fake)
    summary = page[:page.index('<h2 id="s01">')]
    for want in ("psnr = 31.25", "fd.real = 1.5", "fd.recon = 2.75", "frames = [1,5,9]",
                 "checker = 0.98", "4m 10s", "12s", "no JSON line"):
        assert want in summary, want
    c = parse(page)
    assert "VAE <runs/vae_t4> & co" in c.text
    assert '"shots": [' in c.text
    agent = section(page, report.STAGES[7])
    for want in ("render_shot", "0.12", "2.50", "start with a shot list", "{&quot;shot&quot;:0}",
                 "{&quot;shot&quot;:9}", "no shot 9"):
        assert want in agent, want
    assert "half-writ" not in agent


# 5. Self-contained and capped: no src/href leaves the page, and a folder over the caps
#    (a big picture, more GIFs than MAX_GIFS) is cut with a note, the page under --max-mb.
def test_05_self_contained_and_capped(fake):
    runs, data = fake
    png(f"{runs}/samples/big.png", size=(256, 256))            # ~200 KB of noise
    for i in range(report.MAX_GIFS + 3):
        gif(f"{runs}/samples/{i:02d}.gif", frames=1, size=8, seed=i)
    page = report.build_report(runs, data, max_mb=0.15)
    c = parse(page)
    assert not any(u.startswith(("http:", "https:", "//")) for u in c.urls)
    assert "http://" not in page and "https://" not in page
    assert all(s.startswith("data:") for s in c.imgs)
    assert "big.png" in page and "size cap" in page and 'href="samples/big.png"' in page
    assert f"first {report.MAX_GIFS} of {report.MAX_GIFS + 3} GIFs" in page
    assert len(page.encode()) < 0.15 * 2**20


# 6. Nothing run yet (an empty folder, or none at all) still gives a valid page that says so.
def test_06_empty_runs(tmp_path):
    for runs in (tmp_path, tmp_path / "nowhere"):
        page = report.build_report(str(runs), str(tmp_path / "no_data"))
        c = parse(page)
        assert c.imgs == []
        assert c.text.count("not run yet") == 2 * len(report.STAGES)   # summary + section


# 7. The command: writes the page atomically (no temp file left), prints its path and size,
#    and --help shows the defaults.
def test_07_command(fake, tmp_path, capsys):
    runs, data = fake
    out = str(tmp_path / "out" / "report.html")
    assert report.main(["--runs", runs, "--data", data, "--out", out]) == out
    assert out in capsys.readouterr().out
    assert os.listdir(tmp_path / "out") == ["report.html"]
    with open(out, encoding="utf-8") as f:
        parse(f.read())
    with pytest.raises(SystemExit):
        report.main(["--help"])
    assert "(default: runs/report.html)" in capsys.readouterr().out


# 8. The figures a reader checks (minivid/figures.py): a run's figures are frozen into one
#    JSON file; another run is compared figure by figure. Equal figures pass; a PSNR 0.2 dB
#    off passes (0.3 dB allowed), an adherence 0.02 off fails (0.01 allowed) and exits 1;
#    timings never count; a stage the run lacks is named, so is a file that is not figures.
def test_08_figures_frozen_and_compared(tmp_path, capsys):
    def run_folder(name, psnr, adherence, seconds):
        runs = tmp_path / name
        write(f"{runs}/vae_t4/evaluate.txt", "table\n" + json.dumps(
            {"eval": "vae", "psnr_clips": psnr, "threads": 2, "ckpt": "a/b.pt"}) + "\n")
        write(f"{runs}/dit_video/evaluate.txt", json.dumps(
            {"eval": "dit", "adherence_val@32": adherence, "sample_s_per_video@32": seconds,
             "per_clip": [{"identity": 0.9, "ms": seconds}]}) + "\n")
        return str(runs)

    ref = run_folder("ref", 30.8, 0.761, 0.5)
    frozen = str(tmp_path / "figures.json")
    figures.main(["save", ref, frozen])
    saved = json.load(open(frozen))
    assert set(saved.pop("_machine")) == {"cpu", "simd", "threads", "torch"}   # where it ran
    assert saved == {"vae_t4": {"psnr_clips": 30.8},
                     "dit_video": {"adherence_val@32": 0.761, "per_clip.0.identity": 0.9}}
    same = figures.main(["compare", frozen, run_folder("same", 30.8, 0.761, 9.9)])
    assert (same["same"], same["within"], same["outside"]) == (3, 0, [])
    near = figures.main(["compare", frozen, run_folder("near", 31.0, 0.765, 0.5)])
    assert (near["same"], near["within"], near["outside"]) == (1, 2, [])
    with pytest.raises(SystemExit) as e:
        figures.main(["compare", frozen, run_folder("far", 30.8, 0.781, 0.5)])
    out = capsys.readouterr().out
    assert e.value.code == 1 and "dit_video/adherence_val@32" in out and "another machine" not in out
    # frozen on another CPU model: the report says so, and what that means for the figures
    json.dump({**json.load(open(frozen)), "_machine": {"cpu": "another CPU"}}, open(frozen, "w"))
    with pytest.raises(SystemExit):
        figures.main(["compare", frozen, run_folder("far2", 30.8, 0.781, 0.5)])
    out = capsys.readouterr().out
    assert "reference measured on: {'cpu': 'another CPU'}" in out and "another machine" in out
    (tmp_path / "part" / "vae_t4").mkdir(parents=True)
    part = run_folder("part", 30.8, 0.761, 0.5)
    os.remove(f"{part}/dit_video/evaluate.txt")
    assert figures.main(["compare", frozen, part])["missing"] == ["dit_video"]
    for bad, why in ((str(tmp_path / "empty"), "run `bash run_tiny.sh` first"),
                     (str(tmp_path / "ref" / "vae_t4" / "evaluate.txt"), "cannot read")):
        os.makedirs(tmp_path / "empty", exist_ok=True)
        with pytest.raises(SystemExit, match=re.escape(why)):
            figures.main(["compare", bad, ref] if why == "cannot read" else ["compare", frozen, bad])
