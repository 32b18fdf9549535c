"""The main job's figures, frozen and compared: does my run give the README's numbers?

Every stage of `run_tiny.sh` ends with an `evaluate` command whose last printed line is a JSON
object of figures (runs/<stage>/evaluate.txt). The main job trains for fixed step counts with
fixed seeds, so two runs of it on the same machine, under any load, print the same figures
bit for bit; only the wall time differs. On ANOTHER CPU model (other SIMD kernels, so other
float rounding) training amplifies the last-bit differences, and the trained figures move by
about their spread over seeds (measured, docs/results.md section 9: the data figures stay
equal, the VAE moved 0.6 dB, adherence up to 0.04): `compare` says which machine each side
was measured on, so a reader can tell the two cases apart. This module turns that into a
check a reader can run:

    python -m minivid.figures save runs docs/main_job_figures.json      # freeze a run's figures
    python -m minivid.figures compare docs/main_job_figures.json runs   # my run vs the README's

`compare` prints one row per figure that moved and a summary; its last line is JSON. Timings
(seconds, ms, tokens/s, MFU) are left out: they are the one thing that should differ.
Tolerances, per figure: 0.3 dB for PSNR, 0.01 for a fraction (adherence, identity, accuracy:
any value in [0, 1]), 2% of the value for anything else (FVD, losses).
"""
import argparse
import json
import math
import os
import re
import sys

# the stage folders under runs/ whose evaluate.txt holds the figures, in pipeline order
STAGES = ("data", "captioner", "vae_t4", "dit_video", "distill", "rewrite", "extend", "agent")
# keys that are times or names, not results: they may (and should) differ between runs
NOT_A_FIGURE = re.compile(r"(^|_)(s|ms|mb|seconds|time|tok_s|tokens_per_s|mfu|ckpt|path|film|trace|"
                          r"device|precision|workers|threads)($|_)|per_s|s_per|peak|gflop", re.I)
PSNR_DB, FRACTION, RELATIVE = 0.3, 0.01, 0.02
MACHINE = "_machine"     # the frozen file's record of where its figures were measured


def machine() -> dict:
    """Where figures are measured: the CPU model, the SIMD level torch's kernels use, the
    thread count and the torch version (what decides the float rounding of a CPU run)."""
    import platform

    import torch
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "simd": torch.backends.cpu.get_cpu_capability(),
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def last_json(path: str) -> dict:
    """The last non-empty line of an evaluation's output, parsed ({} when it is not JSON)."""
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [line for line in f.read().splitlines() if line.strip()]
    try:
        fig = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        return {}
    return fig if isinstance(fig, dict) else {}


def flatten(fig: dict, prefix: str = "") -> dict[str, float]:
    """{"planner": {"rule": {"count": 0.5}}, "per_clip": [{"id": 1.0}]} ->
    {"planner.rule.count": 0.5, "per_clip.0.id": 1.0}: numbers only."""
    out = {}
    for key, value in fig.items():
        name = f"{prefix}{key}"
        if isinstance(value, list):
            value = {str(i): v for i, v in enumerate(value)}
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if not NOT_A_FIGURE.search(str(key)):
                out[name] = float(value)
    return out


def collect(runs_dir: str) -> dict[str, dict[str, float]]:
    """{stage: {figure: value}} from runs_dir/<stage>/evaluate.txt (a stage not run: absent)."""
    found = {}
    for stage in STAGES:
        fig = flatten(last_json(os.path.join(runs_dir, stage, "evaluate.txt")))
        if fig:
            found[stage] = fig
    return found


def tolerance(name: str, ref: float) -> float:
    """How far a figure may move between two runs and still count as the same."""
    if "psnr" in name.lower():
        return PSNR_DB
    if 0.0 <= ref <= 1.0:
        return FRACTION
    return RELATIVE * abs(ref)


def compare(ref: dict, mine: dict) -> dict:
    """Figure by figure. Returns {"rows": [(stage, name, ref, mine, tol)] for figures that
    moved at all, "same": n exactly equal, "within": n moved but inside tolerance,
    "outside": [stage/name, ...], "missing": [stage or stage/name absent from mine]}."""
    rows, same, within, outside, missing = [], 0, 0, [], []
    for stage, figs in ref.items():
        if stage not in mine:
            missing.append(stage)
            continue
        for name, r in figs.items():
            if name not in mine[stage]:
                missing.append(f"{stage}/{name}")
                continue
            m = mine[stage][name]
            if m == r or (math.isnan(m) and math.isnan(r)):
                same += 1
                continue
            tol = tolerance(name, r)
            rows.append((stage, name, r, m, tol))
            if abs(m - r) <= tol:
                within += 1
            else:
                outside.append(f"{stage}/{name}")
    return {"rows": rows, "same": same, "within": within, "outside": outside, "missing": missing}


def save(runs_dir: str, out: str) -> dict:
    figs = collect(runs_dir)
    if not figs:
        raise SystemExit(f"figures: no evaluate.txt with a JSON last line under {runs_dir}/"
                         f"<stage>/ (stages: {', '.join(STAGES)}); run `bash run_tiny.sh` first")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out + ".tmp", "w", encoding="utf-8") as f:
        json.dump({**figs, MACHINE: machine()}, f, indent=1, sort_keys=True)
    os.replace(out + ".tmp", out)
    print(f"froze {sum(map(len, figs.values()))} figures of {len(figs)} stages into {out}")
    return figs


def load(path: str) -> dict:
    """A frozen file (from `save`) or a runs folder."""
    if os.path.isdir(path):
        return collect(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise SystemExit(f"figures: cannot read {path} ({e}); give a runs folder or a file "
                         f"written by `python -m minivid.figures save`") from None


def report(result: dict, ref_name: str, mine_name: str, ref_machine=None, my_machine=None) -> str:
    lines = [f"figures of {mine_name} against {ref_name} (tolerance: {PSNR_DB} dB PSNR, "
             f"{FRACTION} for fractions, {RELATIVE:.0%} otherwise)"]
    if ref_machine:
        lines.append(f"reference measured on: {ref_machine}")
        lines.append(f"this machine:          {my_machine}")
    if result["rows"]:
        lines.append(f"{'stage':<10} {'figure':<44} {'reference':>11} {'this run':>11}  ok")
        for stage, name, r, m, tol in result["rows"]:
            ok = "yes" if abs(m - r) <= tol else "NO"
            lines.append(f"{stage:<10} {name[:44]:<44} {r:>11.4g} {m:>11.4g}  {ok}")
    lines.append(f"{result['same']} figures equal, {result['within']} moved within tolerance, "
                 f"{len(result['outside'])} outside, {len(result['missing'])} missing")
    if result["outside"] and ref_machine and ref_machine != my_machine:
        lines.append("another machine: trained figures move by about their seed spread there "
                     "(float rounding differs, training amplifies it); the data figures should "
                     "still be equal. Same machine and still outside: something changed.")
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description="Freeze a main-job run's figures, or compare a run "
                                "with frozen figures.",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("save", help="write a run's figures to a JSON file")
    s.add_argument("runs", help="the runs folder of a finished `bash run_tiny.sh`")
    s.add_argument("out", help="the JSON file to write")
    c = sub.add_parser("compare", help="a run against frozen figures (or another run)")
    c.add_argument("reference", help="a file from `save` (docs/main_job_figures.json) or a runs "
                   "folder")
    c.add_argument("runs", nargs="?", default="runs", help="the run to check")
    args = p.parse_args(argv)
    if args.cmd == "save":
        return save(args.runs, args.out)
    ref, mine = load(args.reference), load(args.runs)
    ref_machine = ref.pop(MACHINE, None)     # (a runs folder has none: it was made here)
    mine.pop(MACHINE, None)
    if not mine:
        raise SystemExit(f"figures: {args.runs} holds no stage's evaluate.txt; run `bash "
                         f"run_tiny.sh` first (or give the runs folder it wrote)")
    result = compare(ref, mine)
    print(report(result, args.reference, args.runs, ref_machine, machine()))
    summary = {"eval": "figures", "reference": args.reference, "runs": args.runs,
               "same": result["same"], "within": result["within"],
               "outside": result["outside"], "missing": result["missing"]}
    print(json.dumps(summary))
    if result["outside"]:
        sys.exit(1)
    return summary


if __name__ == "__main__":
    main()
