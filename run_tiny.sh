#!/usr/bin/env bash
# The toy pipeline, end to end, on a laptop CPU (45 minutes measured on 2 quiet cores):
# tiny data -> yardstick check -> patch VAE -> latent cache -> image DiT -> video DiT -> samples
# -> step distillation (a 1-8 step student) -> its evaluation, samples and one-step transfer
# -> clip extension (continue a history; full vs window vs packed context), evaluated
# -> prompt rewriting (a tiny LM reads what users type, writes dense descriptions), evaluated
#    against hand-written expectations, beside a DiT trained on user language too
# -> recaptioning (a captioner that reads pixels, for clips without text), the blind-person test
#    on clean and footage-like clips against the zero-parameter rule.
# Each stage is one command you can also run by hand; outputs land in tiny_data/ and runs/.
set -euo pipefail
cd "$(dirname "$0")"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(nproc)}
PROMPTS=(
  --prompt "A large red circle on the left moves quickly to the right. The background is plain black."
  --prompt "On a plain navy background there is a small yellow square in the centre, which bounces up and down quickly."
  --prompt "A big white triangle at the top left drifts down-right slowly, on a plain grey background."
  --prompt "A little cyan disc in the middle grows; the background is plain brown."
)

echo "== 1. the tiny captioned world (images + clips, dense/sparse captions, preview.gif)"
python -m minivid.world --out tiny_data

echo "== 2. the yardstick: scene checker + tiny FVD on real clips"
python -m minivid.evaluate data --data tiny_data

echo "== 3. patch VAE, 4x in time (causal, 1 + 4k frames), ~4 minutes"
python train_vae.py --preset tiny-t4 --out runs/vae_t4
python -m minivid.evaluate vae --ckpt runs/vae_t4/ckpt.pt

echo "== 4. encode the data once into a latent cache"
python -m minivid.latents --vae runs/vae_t4/ckpt.pt --data tiny_data --out runs/latents

echo "== 5. DiT: the image model first, then fine-tune it on video"
python train_dit.py --stage image --vae runs/vae_t4/ckpt.pt --latents runs/latents \
    --out runs/dit_image --minutes 4.5
python train_dit.py --stage video --vae runs/vae_t4/ckpt.pt --latents runs/latents \
    --init-from runs/dit_image/ckpt.pt --out runs/dit_video --minutes 4.5

echo "== 6. how good is it? adherence + tiny FVD at 8, 32, 100 sampler steps; speed and MFU"
python -m minivid.evaluate dit --ckpt runs/dit_video/ckpt.pt --steps 8 32 100

echo "== 7. samples (GIFs + a captioned grid), the teacher at 100 guided steps"
python sample.py --ckpt runs/dit_video/ckpt.pt --out runs/samples "${PROMPTS[@]}"

echo "== 8. step distillation: a student that samples in 1, 2, 4 or 8 steps, guidance folded in"
python distill.py --teacher runs/dit_video/ckpt.pt --out runs/distill --minutes 6
python -m minivid.evaluate distill --teacher runs/dit_video/ckpt.pt \
    --student runs/distill/ckpt.pt --gif runs/distill/transfer.gif
python sample.py --ckpt runs/distill/ckpt.pt --steps 1 --out runs/distill/samples_1step "${PROMPTS[@]}"
# one-step transfer: val clip 0 (navy background) re-captioned with a grey one, 1 student call
python sample.py --ckpt runs/distill/ckpt.pt --steps 1 --init tiny_data/val/clips/000000.gif \
    --strength 0.5 --out runs/distill/transfer_1step \
    --prompt "A tiny purple ball that starts on the left and stays still; and a large white triangle that starts in the top right corner and moves downward quickly. The background is plain grey."
echo "== 9. clip extension: long videos clip by clip, the history as context (full / window / pack)"
python train_extend.py --vae runs/vae_t4/ckpt.pt --latents runs/latents \
    --init-from runs/dit_video/ckpt.pt --out runs/extend --minutes 5
python -m minivid.evaluate extend --ckpt runs/extend/ckpt.pt --videos 8 --clips 8 --steps 16 \
    --plot runs/extend/extend.png --gif runs/extend/strategies.gif
for context in full window pack; do
  python sample.py --ckpt runs/extend/ckpt.pt --extend 8 --context "$context" --steps 32 \
      --out runs/extend/long --prompt "A large red circle that starts on the left and moves quickly to the right. The background is plain black."
done
echo "== 10. prompt rewriting: a 5-minute GPT reads what people type; the fair bench on a frozen set"
python train_rewriter.py --out runs/rewriter --steps 1400
python -m minivid.rewrite --ckpt runs/rewriter/ckpt.pt "two red circles" "a circle that is not red" "a dog"
# the fair 'without a rewriter': a DiT that trained on user language too (word dropout, mixed captions)
MIXED=(--vae runs/vae_t4/ckpt.pt --latents runs/latents --word-dropout 0.1 --user-captions 0.3)
python train_dit.py --stage image "${MIXED[@]}" --out runs/rewrite/dit_mixed_image --steps 3764
python train_dit.py --stage video "${MIXED[@]}" --init-from runs/rewrite/dit_mixed_image/ckpt.pt \
    --out runs/rewrite/dit_mixed --steps 1597
python -m minivid.evaluate rewrite --rewriter runs/rewriter/ckpt.pt --ckpt runs/dit_video/ckpt.pt \
    --mixed runs/rewrite/dit_mixed/ckpt.pt --seeds 3 --plot runs/rewrite/rewrite.png
SPARSE=(--prompt "a red circle" --prompt "a small blue square to the left of the big yellow circle"
        --prompt "Background: plain black. A huge yelow ball. It sinks slowly.")
python sample.py --ckpt runs/dit_video/ckpt.pt --steps 32 --out runs/rewrite/typed "${SPARSE[@]}"
python sample.py --ckpt runs/dit_video/ckpt.pt --steps 32 --rewrite local \
    --out runs/rewrite/rewritten "${SPARSE[@]}"
echo "== 11. recaptioning: a captioner that learns to see (pixels -> dense captions); the blind-person test"
python -m minivid.footage --demo runs/captioner/footage.png      # the perturbations it trains on
python train_captioner.py --data tiny_data --out runs/captioner --steps 900   # ~5 minutes
mkdir -p runs/captioner/uncaptioned            # a user's folder: media, no captions at all
cp tiny_data/val/clips/00000[0-5].gif tiny_data/val/images/00000[0-1].png runs/captioner/uncaptioned/
python -m minivid.captioner caption --ckpt runs/captioner/ckpt.pt --data runs/captioner/uncaptioned \
    --out runs/captioner/uncaptioned/captions.jsonl      # a manifest the trainers read as is
python -m minivid.evaluate captions --captioner runs/captioner/ckpt.pt --n 256 \
    --plot runs/captioner/blind_person.png
echo "done: open tiny_data/preview.gif, runs/vae_t4/recon.gif, runs/dit_video/loss.png, runs/samples/,"
echo "      runs/distill/ (samples_1step/ beside runs/samples/, transfer.gif, transfer_1step/),"
echo "      runs/extend/ (extend.png, strategies.gif, long/long_{full,window,pack}_8clips.gif),"
echo "      runs/rewrite/ (rewrite.png, typed/ beside rewritten/),"
echo "      runs/captioner/ (footage.png, uncaptioned/captions.jsonl, blind_person.png)"
