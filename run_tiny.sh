#!/usr/bin/env bash
# The toy pipeline, end to end, on a laptop CPU: tiny data -> yardstick check -> ...
# Each stage is one command you can also run by hand; outputs land in tiny_data/ and runs/.
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

echo "== 1. the tiny captioned world (images + clips, dense/sparse captions, preview.gif)"
python -m minivid.world --out tiny_data

echo "== 2. the yardstick: scene checker + tiny FVD on real clips"
python -m minivid.evaluate data --data tiny_data
