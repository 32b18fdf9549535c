#!/usr/bin/env bash
# The main job: the whole toy pipeline, stage by stage, on a laptop CPU, then runs/report.html.
#
#   ./run_tiny.sh            every stage for a FIXED number of steps (the same machine gives the
#                            same figures bit for bit, under any load; another CPU model moves
#                            trained ones within their seed spread): 29-40 minutes
#                            on 2 quiet AVX-512 cores, ~57 on 2 AVX2 cores (docs/results.md 9)
#   ./run_tiny.sh --quick    every stage end to end at toy budgets, in a few minutes (what CI
#                            runs: a change that breaks the pipeline fails CI); into runs/quick/
#   ./run_tiny.sh --force    redo every stage, even the finished ones
#
# Stages, in the README's numbering (each is commands you can also type by hand):
#   1 captioned data + the yardstick      5 step distillation
#   2 recaptioning (a learned captioner)  6 prompt rewriting
#   3 patch VAE + the latent cache        7 clip extension
#   4 DiT: image first, then video        8 the video agent (one film + its evaluation)
#   9 the report: runs/report.html, every stage's tables, curves, samples and the film
# A finished stage is skipped when the job runs again (its folder holds .done), so an
# interrupted job goes on from where it stopped; a trainer stopped mid-run continues from its
# last checkpoint (--resume). Each stage prints and saves its wall time (wall_time.txt); its
# output is also in runs/logs/<stage>.log, which a failure names.
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}

QUICK=0 FORCE=0
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run_tiny.sh: unknown flag $arg (use --quick, --force or --help)" >&2; exit 2 ;;
  esac
done

# MINIVID_RUNS=DIR: write everything (the data too) under DIR instead (the tests use it)
if [[ $QUICK == 1 ]]; then   # toy budgets: every stage runs, nothing is good
  R=${MINIVID_RUNS:-runs/quick} D=${MINIVID_RUNS:-runs/quick}/tiny_data
  WORLD=(--n-train-images 128 --n-train-clips 96 --n-eval 24 --n-train-long 24 --n-val-long 4 --long-clips 4 --workers 1)
  VAE=16 IMAGE=10 VIDEO=10 STUDENT=8 TRAJ=16 EXTEND=8 REWRITER=16 CAPTIONER=8 BATCH=(--batch-size 8)
  N=4 PROBE=8 STEPS=(--steps 2 4) CAP_N=8 SAMPLE_STEPS=2 FEW=2 TEACHER=(--teacher-steps 2)
  EXT=(--videos 2 --clips 3 --steps 2) AGENT=(--n 1 --seeds 1 --steps 2) LONG=2
  REWRITE=(--n 3 --seeds 1 --generated 2 --steps 2) FILM=(--steps 2 --candidates 2 --rounds 2)
  CHECK=(--check-prompts 2 --scenes 512) CALIB=(--calibration 64)
else                         # the main job: fixed steps, 29-57 minutes on 2 quiet cores
  R=${MINIVID_RUNS:-runs} D=${MINIVID_RUNS:+$MINIVID_RUNS/}tiny_data
  WORLD=(--n-train-long 1000)
  VAE=2000 IMAGE=1600 VIDEO=750 STUDENT=640 TRAJ=1536 EXTEND=350 REWRITER=640 CAPTIONER=300
  N=96 PROBE=400 STEPS=(--steps 8 32) CAP_N=96 SAMPLE_STEPS=32 FEW=32
  TEACHER=(--teacher-steps 8 1) EXT=(--videos 8 --clips 8 --steps 16) AGENT=(--n 10 --seeds 2)
  LONG=4 REWRITE=(--seeds 2 --generated 48 --steps 16) FILM=() CHECK=() BATCH=() CALIB=()
fi
mkdir -p "$R/logs"

resume() {   # --resume when the run folder holds a checkpoint: a killed trainer goes on
  [[ -f "$1/ckpt.pt" ]] && echo --resume || true
}

stage() {    # stage NUMBER TITLE FOLDER FUNCTION: run it unless done; time it; log it
  local n=$1 title=$2 dir=$3 fn=$4 log="$R/logs/$1.log"
  if [[ -f "$dir/.done" && $FORCE == 0 ]]; then
    echo "== $n. $title: done already ($dir; --force redoes it)"
    return
  fi
  echo "== $n. $title"
  mkdir -p "$dir"
  local t0=$SECONDS rc
  set +e                       # (not `if ! fn`: bash ignores set -e inside an if's condition)
  ( set -e; "$fn" ) > >(tee "$log") 2>&1
  rc=$?
  set -e
  if [[ $rc != 0 ]]; then
    echo "run_tiny.sh: stage $n ($title) FAILED (exit $rc); its output is in $log" >&2
    exit 1
  fi
  echo "$((SECONDS - t0))" > "$dir/wall_time.txt"
  touch "$dir/.done"
  echo "   stage $n took $((SECONDS - t0)) s"
}

PROMPTS=(
  --prompt "A large red circle on the left moves quickly to the right. The background is plain black."
  --prompt "On a plain navy background there is a small yellow square in the centre, which bounces up and down quickly."
  --prompt "A big white triangle at the top left drifts down-right slowly, on a plain grey background."
  --prompt "A little cyan disc in the middle grows; the background is plain brown."
)

stage_1() {  # the tiny captioned world (images + clips, dense/sparse captions), the yardstick
  python -m minivid.world --out "$D" "${WORLD[@]}"
  python -m minivid.evaluate data --data "$D" --probe-steps $PROBE | tee "$R/data/evaluate.txt"
}

stage_2() {  # a captioner that learns to see (pixels -> dense captions), the blind-person test
  python -m minivid.footage --demo "$R/captioner/footage.png"      # the damage it trains on
  python train_captioner.py --data "$D" --out "$R/captioner" --steps $CAPTIONER "${CALIB[@]}" "${BATCH[@]}" $(resume "$R/captioner")
  mkdir -p "$R/captioner/uncaptioned"        # a user's folder: media, no captions at all
  cp "$D"/val/clips/00000[0-5].gif "$D"/val/images/00000[0-1].png "$R/captioner/uncaptioned/"
  python -m minivid.caption_folder caption --ckpt "$R/captioner/ckpt.pt" --data "$R/captioner/uncaptioned" \
      --out "$R/captioner/uncaptioned/captions.jsonl"      # a manifest the trainers read as is
  python -m minivid.evaluate captions --captioner "$R/captioner/ckpt.pt" --data "$D" --n $CAP_N \
      --plot "$R/captioner/blind_person.png" | tee "$R/captioner/evaluate.txt"
}

stage_3() {  # patch VAE, 4x in time (causal, 1 + 4k frames), then the latent cache
  python train_vae.py --preset tiny-t4 --data "$D" --out "$R/vae_t4" --steps $VAE "${BATCH[@]}" $(resume "$R/vae_t4")
  python -m minivid.evaluate vae --ckpt "$R/vae_t4/ckpt.pt" --data "$D" | tee "$R/vae_t4/evaluate.txt"
  python -m minivid.latents --vae "$R/vae_t4/ckpt.pt" --data "$D" --out "$R/latents"
}

stage_4() {  # the DiT: an image model first, then fine-tuned on video; its evaluation; samples
  local lat=(--vae "$R/vae_t4/ckpt.pt" --latents "$R/latents")
  python train_dit.py --stage image "${lat[@]}" --out "$R/dit_image" --steps $IMAGE "${BATCH[@]}" $(resume "$R/dit_image")
  python train_dit.py --stage video "${lat[@]}" --init-from "$R/dit_image/ckpt.pt" \
      --out "$R/dit_video" --steps $VIDEO "${BATCH[@]}" $(resume "$R/dit_video")
  python -m minivid.evaluate dit --ckpt "$R/dit_video/ckpt.pt" --data "$D" --n $N "${STEPS[@]}" \
      | tee "$R/dit_video/evaluate.txt"
  python sample.py --ckpt "$R/dit_video/ckpt.pt" --steps $SAMPLE_STEPS --out "$R/samples" "${PROMPTS[@]}"
}

stage_5() {  # step distillation: a student that samples in 1, 2, 4 or 8 steps, guidance folded in
  python distill.py --teacher "$R/dit_video/ckpt.pt" --out "$R/distill" --steps $STUDENT "${BATCH[@]}" \
      --trajectories $TRAJ $(resume "$R/distill")
  python -m minivid.evaluate distill --teacher "$R/dit_video/ckpt.pt" --student "$R/distill/ckpt.pt" \
      --data "$D" --n $N "${TEACHER[@]}" --gif "$R/distill/transfer.gif" | tee "$R/distill/evaluate.txt"
  python sample.py --ckpt "$R/distill/ckpt.pt" --steps 1 --out "$R/distill/samples_1step" "${PROMPTS[@]}"
  # one-step transfer: val clip 0 re-captioned with a grey background, 1 student call
  python sample.py --ckpt "$R/distill/ckpt.pt" --steps 1 --init "$D/val/clips/000000.gif" \
      --strength 0.5 --out "$R/distill/transfer_1step" \
      --prompt "A tiny purple ball that starts on the left and stays still; and a large white triangle that starts in the top right corner and moves downward quickly. The background is plain grey."
}

stage_6() {  # prompt rewriting: a tiny LM reads what people type and writes dense descriptions
  python train_rewriter.py --out "$R/rewriter" --steps $REWRITER "${BATCH[@]}" "${CHECK[@]}" $(resume "$R/rewriter")
  python -m minivid.rewrite --ckpt "$R/rewriter/ckpt.pt" "two red circles" "a circle that is not red" \
      "a dog" | tee "$R/rewriter/rewrites.txt"
  python -m minivid.evaluate rewrite --rewriter "$R/rewriter/ckpt.pt" --ckpt "$R/dit_video/ckpt.pt" \
      "${REWRITE[@]}" --plot "$R/rewrite/rewrite.png" | tee "$R/rewrite/evaluate.txt"
  local sparse=(--prompt "a red circle" --prompt "a small blue square to the left of the big yellow circle"
                --prompt "Background: plain black. A huge yelow ball. It sinks slowly.")
  python sample.py --ckpt "$R/dit_video/ckpt.pt" --steps $FEW --out "$R/rewrite/typed" "${sparse[@]}"
  python sample.py --ckpt "$R/dit_video/ckpt.pt" --steps $FEW --rewrite local \
      --rewriter "$R/rewriter/ckpt.pt" --out "$R/rewrite/rewritten" "${sparse[@]}"
}

stage_7() {  # clip extension: long videos clip by clip, the history as context (full/window/pack)
  # --piece-noise 0.5: each packed piece of the history at its own noise level, the anchor
  # (frame 0) clean (Diffusion Forcing; identity over 16 clips +0.03 in 2 seeds, docs/results.md 7)
  # --damage 0.5: half of the multi-clip steps continue a history in which one object fades,
  # is recoloured, reshaped or resized, and learn the real next clip (minivid/damage.py;
  # at these 350 steps identity over 16 clips 0.72 -> 0.77 in 3 seeds, docs/results.md 7)
  python train_extend.py --vae "$R/vae_t4/ckpt.pt" --latents "$R/latents" --piece-noise 0.5 --damage 0.5 \
      --init-from "$R/dit_video/ckpt.pt" --out "$R/extend" --steps $EXTEND "${BATCH[@]}" $(resume "$R/extend")
  python -m minivid.evaluate extend --ckpt "$R/extend/ckpt.pt" --data "$D" "${EXT[@]}" \
      --plot "$R/extend/extend.png" --gif "$R/extend/strategies.gif" | tee "$R/extend/evaluate.txt"
  for context in full window pack; do
    python sample.py --ckpt "$R/extend/ckpt.pt" --extend $LONG --context "$context" --steps $FEW \
        --out "$R/extend/long" --prompt "A large red circle that starts on the left and moves quickly to the right. The background is plain black."
  done
}

stage_8() {  # the video agent: plan, generate, check, retry, stitch; one film, then the bench
  python -m minivid.agent "a red ball rolls right, then it moves up slowly; cut to a small white square that bounces. about 12 seconds" \
      --ckpt "$R/extend/ckpt.pt" --rewriter "$R/rewriter/ckpt.pt" --out "$R/agent/film.mp4" "${FILM[@]}"
  python -m minivid.evaluate agent --ckpt "$R/extend/ckpt.pt" --rewriter "$R/rewriter/ckpt.pt" \
      "${AGENT[@]}" | tee "$R/agent/evaluate.txt"
}

START=$SECONDS
stage 1 "the tiny captioned world + the yardstick (checker, tiny FVD)" "$R/data" stage_1
stage 2 "recaptioning: a captioner that learns to see" "$R/captioner" stage_2
stage 3 "patch VAE (4x in time, causal) + the latent cache" "$R/vae_t4" stage_3
stage 4 "DiT: image first, then video; adherence + tiny FVD; samples" "$R/dit_video" stage_4
stage 5 "step distillation: 1-8 step student" "$R/distill" stage_5
stage 6 "prompt rewriting: a tiny LM reads what people type" "$R/rewrite" stage_6
stage 7 "clip extension: long videos with a bounded context" "$R/extend" stage_7
stage 8 "the video agent: a film from one request" "$R/agent" stage_8
echo "== 9. the report"
python -m minivid.report --runs "$R" --data "$D" --out "$R/report.html"
if [[ $QUICK == 0 ]]; then   # your figures against the README's (fixed steps: they should match)
  python -m minivid.figures compare docs/main_job_figures.json "$R" > "$R/figures_vs_readme.txt" \
    && echo "your figures match the README's: $(tail -n 2 "$R/figures_vs_readme.txt" | head -n 1)" \
    || echo "SOME FIGURES DIFFER from the README's: see $R/figures_vs_readme.txt"
fi
echo "done in $((SECONDS - START)) s: open $R/report.html (every stage's tables, curves, samples, the film)"
