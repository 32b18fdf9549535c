"""Is the yardstick itself right? The scene checker and tiny FVD on real tiny-world clips.

Where it sits: after `python -m minivid.world`, before anything is generated.
`python -m minivid.evaluate data` prints `data_report` as a table plus one JSON line:
  - the scene checker's adherence on real val clips (must be ~1) and on captions swapped with
    another clip's (must be low: the checker really looks at the pixels);
  - the Fréchet distance (tiny FVD, minivid/fd.py) of val against train (the real-vs-real
    floor), against val with its frames shuffled and against noise (both must be far);
  - the probe's accuracy per head on val (it must have learnt the attributes).

    python -m minivid.evaluate data --data tiny_data      # trains the probe once (~1 min)
"""
import numpy as np

from minivid import bench, fd


def data_report(data_dir: str, probe_steps: int = 500) -> tuple[dict, dict]:
    """-> (figures, probe accuracy per head on val) for the tiny world in data_dir."""
    val, val_specs = fd.load_clips(bench.manifest(data_dir, "val"))
    caps = bench.captions(data_dir, "val")
    n = len(val)
    swapped = [caps[(i + n // 2) % n] for i in range(n)]   # another clip's caption
    train, train_specs = fd.load_clips(bench.manifest(data_dir, "train"))
    probe = fd.load_or_train_probe(data_dir, train, train_specs, steps=probe_steps)
    acc = fd.accuracy(probe, val, val_specs)
    rng = np.random.default_rng(0)
    f_val = fd.features(probe, val)
    f_train = fd.features(probe, train)  # all of train: less estimator bias than 512
    shuffled = np.stack([v[rng.permutation(len(v))] for v in val])  # same frames, wrong order
    noise = rng.integers(0, 256, val.shape, dtype=np.uint8)
    return {
        "adherence_real_val": bench.adherence(val, caps),
        "adherence_swapped_captions": bench.adherence(val, swapped),
        "fd_val_vs_train": fd.frechet(f_val, f_train),
        "fd_val_vs_shuffled_frames": bench.fvd(probe, shuffled, f_val),
        "fd_val_vs_noise": bench.fvd(probe, noise, f_val),
        "probe_val_accuracy_mean": float(np.mean(list(acc.values()))),
        "val_clips": n,
    }, acc


# ----------------------------------------------------------------------------- the command


def add_args(sub) -> None:
    p = bench.command(sub, "data", run, "check the yardsticks (checker, tiny FVD) on real data")
    bench.shared_args(p, "data")
    p.add_argument("--probe-steps", type=int, default=500, help="FD probe training steps")


def run(args) -> dict:
    bench.need_data(args.data, "train")
    bench.need_data(args.data, "val")
    fig, acc = data_report(args.data, args.probe_steps)
    bench.print_table(f"yardstick on {args.data} (val clips: {fig['val_clips']})", fig.items())
    bench.print_table("probe accuracy per head (val)", acc.items())
    bench.print_json("data", fig)
    return fig
