"""Is the learned captioner any good? The blind-person test on clean and damaged held-out
clips, against the zero-parameter rule; its calibration; and DiTs trained on its captions.

Where it sits: after the captioner (minivid/captioner.py); `python -m minivid.evaluate
captions` prints a table per part and one JSON line.

1. The blind-person test, made exact. The talk asks for captions detailed enough "that a
   blind person could reconstruct the clip". Here that is a procedure: parse the caption
   (minivid/prompt_parse.py), fill what it leaves open by guessing (a random draw under the
   world's rules, seeded per clip), render that scene, and compare with the clip's own scene:
     rebuild = the mean of "same background" and, per object of the clip, the pixel IoU (all
               frames) with the re-render's object of its colour. 1.0 = rebuilt exactly.
     accuracy = the clip's attributes the caption states rightly, over all of them plus 6 for
               every object the caption made up.
   The clips are held out (val and compositional test scenes; train_captioner.py never draws
   them), under each footage perturbation separately (minivid/footage.py). The captions:
     learned      the captioner (mean and spread over the checkpoints given: seeds)
     rule         dense_caption(checker.detect(clip)): the scene checker's nearest-palette
                  reading written out; zero parameters, the baseline a learned one must beat
     ground truth the world's own dense caption of the scene
   With --vae, one more condition, "vae": the clean val clips through that VAE's round trip
   (pixels -> latents -> pixels). Every clip the DiT makes reaches pixels through that
   decoder, so this row asks whether a captioner can read generated clips (the restating
   reader of minivid/restate.py has to). It is not footage damage: the perturbed means
   below leave it out.
   Plus: accuracy per attribute on the clean clips (where a captioner goes wrong); distractor
   clips (an off-palette object) named "unknown" by the caption; clips from outside the world
   (held-out test patterns: checkerboards and static) marked as such.
2. Calibration: the learned captioner's confidence against its accuracy, per confidence bin,
   over every clip of part 1.
3. The experiment: DiTs trained on clips captioned different ways, each scored on the dense val
   prompts (adherence, tiny FVD); names NAME@SEED are grouped into a mean and a spread.

    python -m minivid.evaluate captions --captioner runs/captioner/ckpt.pt --n 256 \\
        --plot runs/captioner/blind_person.png
    python -m minivid.evaluate captions --captioner runs/captioner/ckpt.pt --vae runs/vae_t4/ckpt.pt
    python -m minivid.evaluate captions --captioner runs/captioner/ckpt.pt \\
        --dits truth@0=runs/captions/truth/ckpt.pt learned@0=runs/captions/learned/ckpt.pt
"""
import numpy as np
from matplotlib.figure import Figure

from minivid import bench, checker, fd
from minivid.caption_data import FRAMES, OUTSIDE, SIZE, hold, training_batch
from minivid.captioner import Captioner, calibrate, confidence, describe
from minivid.captions import dense_caption
from minivid.data import to_uint8
from minivid.footage import PERTURBATIONS, UNKNOWN_SENTENCE, footage
from minivid.latents import roundtrip
from minivid.prompt_parse import parse
from minivid.rewrite import template_scene
from minivid.sampling import Pipeline
from minivid.scene import Obj, Scene, render_indices
from minivid.vae import load_vae

CONDITIONS = ("exact", "images", "compositional", *PERTURBATIONS)
BINS = np.array([0.0, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0001])    # confidence bins (calibration)
MIN_BIN = 10                                                 # captions for a bin to count


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


def rebuild(caption: str, scene: Scene, seed) -> float:
    """The blind person: parse, guess the rest (seeded), render, compare."""
    guess = template_scene(parse(caption).stated(), np.random.default_rng(seed), scene.frames,
                           scene.res)
    return rebuild_score(scene, guess)


def rule_caption(u8: np.ndarray, still: bool, rng) -> str:
    """The zero-parameter baseline: the scene checker's reading of the pixels (nearest palette
    colour per pixel, boxes, tracks), written as a dense caption."""
    found = checker.detect(u8[:1] if still else u8)
    objs = [Obj(o["shape"], o["colour"], o["size"], o["position"],
                "still" if still else o["motion"], "" if still else o["speed"])
            for o in found["objects"]]
    if not objs:
        return f"A plain {found['background']} background with nothing on it."
    return dense_caption(Scene(found["background"], objs, 1 if still else FRAMES, SIZE), rng)


def held_out(data_dir: str, condition: str, n: int, seed: int = 0, vae=None):
    """n held-out scenes under one condition -> (uint8 clips (n, 16, 32, 32, 3), stills,
    scenes, ground-truth captions, distractor flags). exact / a perturbation: val clips;
    images: val still images; compositional: test clips (held-out colour-shape pairs);
    vae: val clips through the VAE `vae`'s round trip."""
    split, kind = {"images": ("val", "images"), "compositional": ("test", "clips")}.get(
        condition, ("val", "clips"))
    rows = bench.rows(data_dir, split, kind, n)
    scenes = [Scene.from_dict(r["spec"]) for r in rows]
    how = condition if condition in PERTURBATIONS else "exact"
    rng = np.random.default_rng([seed, (*CONDITIONS, "vae").index(condition)])
    clips, distractor = footage(scenes, [how] * len(scenes), rng)
    if condition == "vae":
        clips = list(to_uint8(roundtrip(vae, np.stack(clips))))         # (n, 16, 32, 32, 3)
    truth = [r["caption"] + (" " + UNKNOWN_SENTENCE if d else "") for r, d in zip(rows, distractor)]
    return (np.stack([hold(c) for c in clips]), [s.frames == 1 for s in scenes], scenes, truth,
            distractor)


def test_patterns(n: int, seed: int = 0) -> np.ndarray:
    """Clips from outside the world, of kinds the captioner never trained on: moving
    checkerboards in two random colours, and colour static. -> uint8 (n, 16, 32, 32, 3)"""
    rng = np.random.default_rng([seed, 99])
    out = []
    for i in range(n):
        if i % 2 == 0:
            a, b, cell = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3), int(rng.integers(2, 8))
            ys, xs = np.mgrid[0:SIZE, 0:SIZE]
            frames = [np.where((((xs + t) // cell + ys // cell) % 2)[..., None] == 0, a, b)
                      for t in range(FRAMES)]
            out.append(np.stack(frames))
        else:
            out.append(rng.uniform(0, 255, (FRAMES, SIZE, SIZE, 3)))
    return np.stack(out).astype(np.uint8)


def score(captions: list[str], scenes, seed: int = 0) -> dict:
    """Mean rebuild and attribute accuracy of captions of these scenes."""
    hits = [caption_accuracy(c, s.to_dict()) for c, s in zip(captions, scenes)]
    return {"rebuild": float(np.mean([rebuild(c, s, [seed, i])
                                      for i, (c, s) in enumerate(zip(captions, scenes))])),
            "accuracy": sum(h for h, _ in hits) / sum(t for _, t in hits)}


def by_attribute(captions: list[str], scenes) -> dict:
    """{attribute: accuracy} over the scenes' stated attributes (checker.score_by_attribute):
    where a captioner goes wrong. "position_2" is the start cell in two-object scenes."""
    total = {}
    for c, s in zip(captions, scenes):
        for k, (h, t) in checker.score_by_attribute(parse(c).stated(),
                                                    checker.stated(s.to_dict())).items():
            a, b = total.get(k, (0, 0))
            total[k] = (a + h, b + t)
    return {k: h / t for k, (h, t) in total.items() if t}


def captions_report(data_dir="tiny_data", captioners=(), dits=None, n=128, steps=32,
                    cfg=2.0, vae: str | None = None) -> dict:
    models = [Captioner.load(path) for path in captioners]
    decoder = load_vae(vae)[0] if vae else None
    out = {"n": n, "captioners": len(models), "conditions": {}}
    calib = []                                             # (confidence, accuracy) per caption
    for condition in CONDITIONS + (("vae",) if vae else ()):
        u8, stills, scenes, truth, distractor = held_out(data_dir, condition, n, vae=decoder)
        rng = np.random.default_rng(0)
        rule = [rule_caption(c, s, rng) for c, s in zip(u8, stills)]
        row = {"truth": score(truth, scenes), "rule": score(rule, scenes)}
        learned = []
        for model in models:
            said = model(u8, [1 if s else FRAMES for s in stills])
            learned.append(score([c for c, _ in said], scenes))
            calib += [(conf, h / t) for (c, conf), s in zip(said, scenes)
                      for h, t in [caption_accuracy(c, s.to_dict())]]
            if condition == "distractor":
                flagged = [UNKNOWN_SENTENCE in c for (c, _), d in zip(said, distractor) if d]
                learned[-1]["unknown_named"] = float(np.mean(flagged))
            if condition == "exact":
                out.setdefault("by_attribute", []).append(by_attribute([c for c, _ in said],
                                                                       scenes))
            if model is models[0]:
                out.setdefault("examples", {})[condition] = {
                    "truth": truth[0], "rule": rule_caption(u8[0], stills[0], rng),
                    "learned": said[0][0], "confidence": round(said[0][1], 3)}
        if condition == "exact":
            out["by_attribute_rule"] = by_attribute(rule, scenes)
        if learned:
            for key in learned[0]:
                values = [m[key] for m in learned]
                row[f"learned_{key}"] = float(np.mean(values))
                row[f"learned_{key}_std"] = float(np.std(values))
        out["conditions"][condition] = row
    if models:
        patterns = test_patterns(n)
        marked = [[c == OUTSIDE for c, _ in m(patterns)] for m in models]
        out["outside_marked"] = float(np.mean(marked))
        out["outside_rule_objects"] = float(np.mean([len(checker.detect(p)["objects"]) > 0
                                                     for p in patterns]))
        out["calibration"] = calibration(calib)
        out["by_attribute"] = {k: float(np.mean([m[k] for m in out["by_attribute"]]))
                               for k in out["by_attribute"][0]}
        rows = out["conditions"]
        out["clean_rebuild_vs_truth"] = rows["exact"]["learned_rebuild"] / rows["exact"]["truth"]["rebuild"]
        damaged = [rows[c] for c in PERTURBATIONS]
        out["perturbed_learned_mean"] = float(np.mean([r["learned_rebuild"] for r in damaged]))
        out["perturbed_rule_mean"] = float(np.mean([r["rule"]["rebuild"] for r in damaged]))
        out["perturbed_learned_min"] = float(min(r["learned_rebuild"] for r in damaged))
    if dits:
        probe = fd.load_or_train_probe(data_dir)
        real = bench.real_features(probe, data_dir)
        runs = {name: dit_scores(path, data_dir, n, steps, cfg, probe, real)
                for name, path in dits.items()}
        out["dits"] = runs
        groups = {}
        for name, r in runs.items():
            groups.setdefault(name.split("@")[0], []).append(r)
        out["dit_groups"] = {g: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}
                             | {f"{k}_spread": float(np.ptp([r[k] for r in rs])) for k in rs[0]}
                             | {"runs": len(rs)} for g, rs in groups.items()}
    return out


OUTSIDE_QUANTILE = 0.99   # in-world clips of the calibration set below the outside line


def fit_confidence(model, rng, n: int, held: set) -> dict:
    """The captioner's confidence, fitted after training on n fresh clips of its training
    mixture (never a held-out scene): Platt (a, b, c) from (mean, min) word log-probabilities to
    the fraction of attributes right, and `outside`, the P(outside) that only 1% of these
    in-world clips exceed (OUTSIDE_QUANTILE: the price is 1% of world clips marked outside).
    -> {"platt", "outside", "clips", "accuracy", "confidence"}"""
    u8, _, stills, specs = training_batch(rng, n, held)
    keep = [i for i, s in enumerate(specs) if s is not None]            # world clips only
    said = describe(model, u8[keep], [stills[i] for i in keep])
    accuracy = [h / t for (text, _, _), i in zip(said, keep)
                for h, t in [caption_accuracy(text, specs[i])]]
    platt = calibrate([f for _, f, _ in said], accuracy)
    conf = [confidence(f, platt) for _, f, _ in said]
    outside = float(np.quantile([p for _, _, p in said], OUTSIDE_QUANTILE))
    return {"platt": platt, "outside": outside, "clips": len(keep),
            "accuracy": float(np.mean(accuracy)), "confidence": float(np.mean(conf))}


def calibration(pairs) -> dict:
    """Per confidence bin: captions, mean confidence, mean accuracy; the largest gap over bins
    with >= MIN_BIN captions (a bin of 10 can set it alone), and the expected calibration
    error (ece): every bin's gap weighted by its share of the captions (steadier: a bin of 10
    captions out of 4,000 moves it by at most 0.0025)."""
    conf, acc = np.array([c for c, _ in pairs]), np.array([a for _, a in pairs])
    bins = []
    for lo, hi in zip(BINS[:-1], BINS[1:]):
        m = (conf >= lo) & (conf < hi)
        if m.any():
            bins.append({"bin": f"{lo:.2f}-{min(hi, 1):.2f}", "captions": int(m.sum()),
                         "confidence": float(conf[m].mean()), "accuracy": float(acc[m].mean())})
    gaps = [abs(b["confidence"] - b["accuracy"]) for b in bins]
    return {"bins": bins,
            "max_gap": max((g for g, b in zip(gaps, bins) if b["captions"] >= MIN_BIN),
                           default=float("nan")),
            "ece": sum(g * b["captions"] for g, b in zip(gaps, bins)) / max(len(conf), 1)}


def dit_scores(ckpt, data_dir, n, steps, cfg, probe, real_features) -> dict:
    """A DiT on the dense val prompts: adherence and tiny FVD."""
    prompts = bench.captions(data_dir, "val", n=n)
    pipe = Pipeline(ckpt)
    videos = pipe.generate(prompts, pipe.ckpt["extra"]["frames"], steps, cfg, seed=0)
    return {"adherence": bench.adherence(videos, prompts),
            "fvd": bench.fvd(probe, videos, real_features)}


def plot(fig: dict, path: str) -> str:
    """Left: rebuild per condition for truth, rule and learned; middle: accuracy per attribute
    on clean clips; right: calibration."""
    f = Figure(figsize=(16, 3.8))
    ax, ax3, ax2 = f.subplots(1, 3, gridspec_kw={"width_ratios": [2.2, 1.2, 1]})
    rows = fig["conditions"]
    names = list(rows)
    x = np.arange(len(names))
    ax.bar(x - 0.27, [rows[c]["truth"]["rebuild"] for c in names], 0.27, label="ground truth")
    ax.bar(x, [rows[c]["rule"]["rebuild"] for c in names], 0.27, label="rule (checker.detect)")
    if "learned_rebuild" in rows[names[0]]:
        ax.bar(x + 0.27, [rows[c]["learned_rebuild"] for c in names], 0.27,
               yerr=[rows[c]["learned_rebuild_std"] for c in names], label="learned captioner")
    ax.set_xticks(x, names, rotation=30, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("blind-person rebuild")
    ax.set_title("held-out clips, clean and damaged")
    ax.legend(fontsize=8, loc="lower left")
    attrs = list(fig.get("by_attribute", {}))
    xa = np.arange(len(attrs))
    ax3.bar(xa - 0.2, [fig["by_attribute_rule"].get(k, 0) for k in attrs], 0.4, label="rule",
            color="C1")
    ax3.bar(xa + 0.2, [fig["by_attribute"][k] for k in attrs], 0.4, label="learned", color="C2")
    ax3.set_xticks(xa, attrs, rotation=30, fontsize=8)
    ax3.set_ylim(0, 1.05)
    ax3.set_title("clean clips: accuracy per attribute")
    bins = fig.get("calibration", {}).get("bins", [])
    full = [b for b in bins if b["captions"] >= MIN_BIN]
    ax2.plot([0, 1], [0, 1], "k--", lw=0.8)
    ax2.scatter([b["confidence"] for b in full], [b["accuracy"] for b in full],
                s=[10 + b["captions"] / 10 for b in full])
    ax2.set_xlim(0, 1.02), ax2.set_ylim(0, 1.02)
    ax2.set_xlabel("confidence (bin mean)"), ax2.set_ylabel("accuracy (bin mean)")
    ax2.set_title("calibration (dot size: captions)")
    return bench.save_figure(f, path)


# ----------------------------------------------------------------------------- the command


def add_args(sub) -> None:
    p = bench.command(sub, "captions", run, "the blind-person test of the learned captioner vs "
                      "the rule and the ground truth, on clean and damaged held-out clips; its "
                      "calibration; DiTs trained on differently captioned clips")
    p.add_argument("--captioner", nargs="*", default=[], help="train_captioner.py outputs "
                   "(several: seeds, reported as mean and spread)")
    p.add_argument("--dits", nargs="*", default=None, metavar="NAME@SEED=CKPT", help="DiTs "
                   "trained on each caption kind, e.g. truth@0=runs/captions/truth/ckpt.pt")
    p.add_argument("--vae", default=None, help="a VAE checkpoint: adds the condition 'vae', "
                   "the clean val clips through its round trip (can a captioner read the clips "
                   "the DiT's decoder draws?)")
    bench.shared_args(p, "data", "n", "steps", "cfg", "plot",
                      help={"n": "held-out clips per condition / val prompts per DiT",
                            "plot": "PNG: blind-person test and calibration"})


def run(args) -> dict:
    bench.need_data(args.data)
    for path in args.captioner:
        bench.need(path, "Train it first: python train_captioner.py --steps 1000")
    dits = {}
    for item in args.dits or []:
        name, _, path = item.partition("=")
        if not path:
            args.error(f"--dits {item!r}: write name=path, e.g. truth@0=runs/captions/truth/ckpt.pt")
        bench.need(path, "Train it first (README: the caption experiment)")
        dits[name] = path
    if args.vae:
        bench.need(args.vae, "Train it first: python train_vae.py --preset tiny-t4 --out runs/vae_t4")
    fig = captions_report(args.data, args.captioner, dits, args.n, args.steps, args.cfg, args.vae)
    learned = "learned_rebuild" in next(iter(fig["conditions"].values()))
    header = ["condition", "truth", "rule", "rule acc"] + (["learned", "+-", "learned acc"]
                                                           if learned else [])
    bench.print_columns(f"the blind-person test, {args.n} held-out clips per condition: rebuild "
                        "(parse the caption, guess the rest, render, compare) and attribute "
                        "accuracy", header,
                        [(c, [f"{r['truth']['rebuild']:.3f}", f"{r['rule']['rebuild']:.3f}",
                              f"{r['rule']['accuracy']:.3f}"]
                          + ([f"{r['learned_rebuild']:.3f}", f"{r['learned_rebuild_std']:.3f}",
                              f"{r['learned_accuracy']:.3f}"] if learned else []))
                         for c, r in fig["conditions"].items()])
    if learned:
        for c, ex in fig["examples"].items():
            print(f"  [{c}] learned ({ex['confidence']:.2f}): {ex['learned']}\n"
                  f"  [{c}] rule: {ex['rule']}")
        bench.print_columns("where it goes wrong: accuracy per attribute, clean held-out clips "
                            "(position_2: the start cell in two-object scenes)",
                            ["attribute", "rule", "learned"],
                            [(k, [f"{fig['by_attribute_rule'].get(k, float('nan')):.3f}",
                                  f"{v:.3f}"]) for k, v in fig["by_attribute"].items()])
        bench.print_columns("calibration: confidence vs accuracy per bin", ["bin", "captions",
                            "confidence", "accuracy"],
                            [(b["bin"], [b["captions"], f"{b['confidence']:.3f}",
                                         f"{b['accuracy']:.3f}"])
                             for b in fig["calibration"]["bins"]])
        bench.print_table("summary", [
            ("clean rebuild, learned / truth", fig["clean_rebuild_vs_truth"]),
            ("perturbed rebuild, learned (mean)", fig["perturbed_learned_mean"]),
            ("perturbed rebuild, rule (mean)", fig["perturbed_rule_mean"]),
            ("perturbed rebuild, learned (worst)", fig["perturbed_learned_min"]),
            ("distractors named unknown", fig["conditions"]["distractor"]["learned_unknown_named"]),
            ("test patterns marked outside the world", fig["outside_marked"]),
            ("test patterns where the rule finds objects", fig["outside_rule_objects"]),
            ("calibration: largest gap (bins >= 10)", fig["calibration"]["max_gap"]),
            ("calibration: expected error (all bins, by share)", fig["calibration"]["ece"])])
    if dits:
        bench.print_columns(f"DiTs scored on {args.n} dense val prompts", ["DiT", "runs",
                            "adherence", "spread", "tiny FVD"],
                            [(g, [r["runs"], f"{r['adherence']:.3f}",
                                  f"{r['adherence_spread']:.3f}", f"{r['fvd']:.1f}"])
                             for g, r in fig["dit_groups"].items()])
    if args.plot:
        print(f"wrote {plot(fig, args.plot)}")
    bench.print_json("captions", fig)
    return fig
