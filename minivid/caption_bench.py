"""Why captions must be dense, measured: the blind-person test and the four-way DiT experiment.

Where it sits: after the captioner (minivid/captioner.py); `python -m minivid.evaluate
captions` prints a table per part and one JSON line.

1. The blind-person test, made exact. The talk asks for captions detailed enough "that a
   blind person could reconstruct the clip". Here that is a procedure: parse the caption
   (minivid/prompt_parse.py), fill what it leaves open the way a blind person would have to,
   by guessing (a random draw under the world's rules, seeded per clip), render the scene with
   minivid.world, and compare with the original clip:
     - states:  attributes the caption states, per clip (a dense caption: ~7 per object + 1);
     - true:    the fraction of them the original clip shows (the scene checker);
     - rebuild: how much of the clip the re-render gets right: the mean of "same background"
                and, per object of the original, the IoU of its pixels (all frames) with the
                re-render's pixels of that colour. 1.0 = rebuilt exactly.
   For four kinds of caption of the same val clips: ground-truth dense, sparse (what users
   type), the captioner's, and title-like (what internet videos come with).
   Plus the captioner's attribute accuracy against the ground truth: correct attributes over
   the ground truth's attributes plus those of any object it made up.
2. The experiment: DiTs trained with the same budget on the same clips captioned four ways,
   each scored on the dense val prompts (adherence, tiny FVD): does the caption kind a model
   trained on decide what it can follow?

    python -m minivid.evaluate captions --captioner runs/captioner/ckpt.pt \\
        --dits dense=runs/captions/dense/ckpt.pt recaptioned=... sparse=... title=...
"""
import numpy as np
from matplotlib.figure import Figure

from minivid import bench, checker, fd
from minivid.captioner import Captioner
from minivid.captions import sparse_caption, title_caption
from minivid.prompt_parse import parse
from minivid.rewrite import template_scene
from minivid.sampling import Pipeline
from minivid.world import Scene, render, render_indices

KINDS = ("dense", "sparse", "captioner", "title")


def rebuild_score(original: Scene, rebuilt: Scene) -> float:
    """Mean of [same background] + [pixel IoU of each original object with the rebuilt
    object of its colour, over all frames]: 1.0 when the re-render is the clip."""
    a, b = render_indices(original), render_indices(rebuilt)        # (T, H, W) each
    scores = [float(original.background == rebuilt.background)]
    colours_b = {o.colour: k for k, o in enumerate(rebuilt.objects, start=1)}
    for k, o in enumerate(original.objects, start=1):
        mine = a == k
        theirs = b == colours_b[o.colour] if o.colour in colours_b else np.zeros_like(mine)
        scores.append(float((mine & theirs).sum() / max((mine | theirs).sum(), 1)))
    return float(np.mean(scores))


def caption_accuracy(caption: str, spec: dict) -> tuple[int, int]:
    """(correct, total): the ground truth's attributes the caption states rightly, over all
    of them plus the attributes of objects the caption made up (6 each)."""
    said, want = parse(caption).stated(), checker.stated(spec)
    parts = checker.score_by_attribute(said, want)
    hits = sum(h for k, (h, _) in parts.items() if k != "position_2")
    total = sum(t for k, (_, t) in parts.items() if k != "position_2")
    made_up = max(0, len(said["objects"]) - len(want["objects"]))
    return hits, total + 6 * made_up


def blind_person(rows: list[dict], captions: dict[str, list[str]], seed: int = 0) -> dict:
    """rows: manifest rows (with "spec"); captions: kind -> one caption per row -> figures."""
    out = {}
    for kind, caps in captions.items():
        states, true, rebuild = [], [], []
        for i, (row, cap) in enumerate(zip(rows, caps)):
            scene = Scene.from_dict(row["spec"])
            said = parse(cap).stated()
            n = (said["background"] is not None) + sum(len(o) for o in said["objects"])
            states.append(n)
            if n:
                h, t = checker.score(checker.detect(render(scene)), said)
                true.append(h / t)
            guess = template_scene(said, np.random.default_rng([seed, i]), scene.frames, scene.res)
            rebuild.append(rebuild_score(scene, guess))
        out[kind] = {"states": float(np.mean(states)),
                     "true": float(np.mean(true)) if true else float("nan"),
                     "stating_something": len(true) / len(caps),
                     "rebuild": float(np.mean(rebuild))}
    return out


def caption_sets(rows, captioner=None, seed: int = 0) -> dict[str, list[str]]:
    """The four kinds of caption of the same clips (the captioner's if one is given)."""
    rng = np.random.default_rng(seed)
    scenes = [Scene.from_dict(r["spec"]) for r in rows]
    out = {"dense": [r["caption"] for r in rows],
           "sparse": [sparse_caption(s, rng) for s in scenes],
           "title": [title_caption(s, rng) for s in scenes]}
    if captioner is not None:
        u8 = np.stack([render(s) for s in scenes])
        out["captioner"] = [c for c, _ in captioner(u8, [s.frames for s in scenes])]
    return out


def dit_scores(ckpt, data_dir, n, steps, cfg, probe, real_features) -> dict:
    """A DiT on the dense val prompts: adherence and tiny FVD."""
    prompts = bench.captions(data_dir, "val", n=n)
    pipe = Pipeline(ckpt)
    videos = pipe.generate(prompts, pipe.ckpt["extra"]["frames"], steps, cfg, seed=0)
    return {"adherence": bench.adherence(videos, prompts),
            "fvd": bench.fvd(probe, videos, real_features)}


def captions_report(data_dir="tiny_data", captioner_ckpt=None, dits=None, n=128, steps=32,
                    cfg=2.0) -> dict:
    captioner = Captioner.load(captioner_ckpt) if captioner_ckpt else None
    out = {"n": n}
    for split in ("val", "test"):
        rows = bench.rows(data_dir, split, n=n)
        sets = caption_sets(rows, captioner)
        if split == "val":
            out["blind_person"] = blind_person(rows, sets)
            out["examples"] = {k: v[:3] for k, v in sets.items()}
        if captioner is not None:
            hits = [caption_accuracy(c, r["spec"]) for c, r in zip(sets["captioner"], rows)]
            out[f"captioner_accuracy_{split}"] = sum(h for h, _ in hits) / sum(t for _, t in hits)
    if captioner is not None:
        bp = out["blind_person"]
        out["captioner_rebuild_vs_dense"] = bp["captioner"]["rebuild"] / bp["dense"]["rebuild"]
    if dits:
        probe = fd.load_or_train_probe(data_dir)
        real = bench.real_features(probe, data_dir)
        out["dits"] = {name: dit_scores(path, data_dir, n, steps, cfg, probe, real)
                       for name, path in dits.items()}
    return out


def plot(fig: dict, path: str) -> str:
    """Left: the blind-person test per caption kind; right: the DiTs trained on each kind."""
    panels = 2 if fig.get("dits") else 1
    f = Figure(figsize=(5.5 * panels, 3.8))
    axes = f.subplots(1, panels, squeeze=False)
    bp = fig["blind_person"]
    kinds = [k for k in KINDS if k in bp]
    ax = axes[0, 0]
    x = np.arange(len(kinds))
    ax.bar(x - 0.2, [bp[k]["rebuild"] for k in kinds], 0.4, label="rebuild from caption")
    ax.bar(x + 0.2, [np.nan_to_num(bp[k]["true"]) for k in kinds], 0.4, label="true (of stated)")
    ax.set_xticks(x, kinds)
    ax.set_ylim(0, 1.05)
    ax.set_title("the blind-person test (val clips)")
    ax.legend(fontsize=8)
    if panels == 2:
        ax = axes[0, 1]
        names = list(fig["dits"])
        ax.bar(names, [fig["dits"][k]["adherence"] for k in names])
        for i, k in enumerate(names):
            ax.text(i, fig["dits"][k]["adherence"] + 0.01, f"FVD {fig['dits'][k]['fvd']:.0f}",
                    ha="center", fontsize=8)
        ax.set_ylim(0, 1.05)
        ax.set_title("DiT trained on each kind: adherence to dense val prompts")
    return bench.save_figure(f, path)


# ----------------------------------------------------------------------------- the command


def add_args(sub) -> None:
    p = bench.command(sub, "captions", run, "why captions must be dense: the blind-person test "
                      "(dense, sparse, captioner, title-like captions) and DiTs trained on each "
                      "kind")
    p.add_argument("--captioner", default=None, help="train_captioner.py output")
    p.add_argument("--dits", nargs="*", default=None, metavar="NAME=CKPT", help="DiTs trained on "
                   "each caption kind, e.g. dense=runs/captions/dense/ckpt.pt")
    bench.shared_args(p, "data", "n", "steps", "cfg", "plot",
                      help={"n": "val clips / prompts",
                            "plot": "PNG: blind-person test and the DiTs"})


def run(args) -> dict:
    bench.need_data(args.data)
    if args.captioner:
        bench.need(args.captioner, "Train it first: python train_captioner.py --minutes 3")
    dits = {}
    for item in args.dits or []:
        name, _, path = item.partition("=")
        if not path:
            args.error(f"--dits {item!r}: write name=path, e.g. "
                       "dense=runs/captions/dense/ckpt.pt")
        bench.need(path, "Train it first (README: the caption experiment)")
        dits[name] = path
    fig = captions_report(args.data, args.captioner, dits, args.n, args.steps, args.cfg)
    bench.print_columns(f"the blind-person test on {args.n} val clips: parse the caption, guess "
                        "what it leaves open, render, compare",
                        ["caption", "states", "true", "rebuild"],
                        [(kind, [f"{r['states']:.2f}", f"{r['true']:.3f}", f"{r['rebuild']:.3f}"])
                         for kind, r in fig["blind_person"].items()])
    for kind, caps in fig.pop("examples").items():
        print(f"  {kind}: {caps[0]}")
    rows = [(k, v) for k, v in fig.items() if k.startswith("captioner_")]
    if rows:
        bench.print_table("the captioner", rows)
    if dits:
        bench.print_table(f"DiTs trained on each caption kind, scored on {args.n} dense val "
                          "prompts (adherence / tiny FVD)",
                          [(k, f"{v['adherence']:.3f} / {v['fvd']:.1f}")
                           for k, v in fig["dits"].items()])
    if args.plot:
        print(f"wrote {plot(fig, args.plot)}")
    bench.print_json("captions", fig)
    return fig
