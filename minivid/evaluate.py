"""The evaluation commands: every figure in the README comes from one of these.

Where it sits: the end of every stage. Each command prints a readable table and, last, one
JSON line with its figures (easy to grep, diff and plot). This file only dispatches: each
command, its flags and its report live in the module named beside it, on the shared helpers
of minivid/bench.py (manifests, checker and tiny-FVD scores, timing, tables, the JSON line).

    python -m minivid.evaluate data            # data_bench.py: is the yardstick itself right?
    python -m minivid.evaluate vae --ckpt runs/vae_t4/ckpt.pt                      # vae_bench.py
    python -m minivid.evaluate dit --ckpt runs/dit_video/ckpt.pt                   # dit_bench.py
    python -m minivid.evaluate throughput --preset tiny  # dit_bench.py: training speed / MFU
    python -m minivid.evaluate compare runs/dit_video/ckpt.pt runs/dit_scratch/ckpt.pt  # ditto
    python -m minivid.evaluate distill --teacher runs/dit_video/ckpt.pt \\
        --student runs/distill/ckpt.pt                                         # distill_bench.py
    python -m minivid.evaluate extend --ckpt runs/extend/ckpt.pt \\
        --plot runs/extend/extend.png                                           # extend_bench.py
    python -m minivid.evaluate rewrite --ckpt runs/dit_video/ckpt.pt \\
        --rewriter runs/rewriter/ckpt.pt                                       # rewrite_bench.py
    python -m minivid.evaluate captions --captioner runs/captioner/ckpt.pt \\
        --dits truth@0=... learned@0=...                                       # caption_bench.py
    python -m minivid.evaluate agent --ckpt runs/extend/ckpt.pt \\
        --rewriter runs/rewriter/ckpt.pt                                         # agent_bench.py

Add `--help` after a command for its flags; --data, --n, --steps, --cfg, --seed, --device,
--gif and --plot mean the same in every command that has them (bench.SHARED).
"""
import argparse

from minivid import (agent_bench, caption_bench, data_bench, dit_bench, distill_bench,
                     extend_bench, rewrite_bench, vae_bench)

BENCHES = (data_bench, caption_bench, vae_bench, dit_bench, distill_bench, rewrite_bench,
           extend_bench, agent_bench)


def main(argv=None) -> dict:
    """Parse `argv` (default: the command line), run the command -> its figures."""
    p = argparse.ArgumentParser(description="minivid evaluations: each prints a table, then "
                                "one JSON line of figures.")
    sub = p.add_subparsers(dest="what", required=True)
    for bench in BENCHES:
        bench.add_args(sub)   # its subcommand(s): data; vae; dit, throughput, compare; ...
    args = p.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    main()
