"""Sample videos (or images) from a trained text-to-video DiT.

Where it sits: after train_dit.py. The checkpoint alone rebuilds the text encoder and the DiT
(EMA weights) and names the VAE that decodes the latents (minivid/sampling.py). Writes one
GIF (or MP4) per prompt plus grid.gif with the captions underneath, into --out.

CPU:       python sample.py --ckpt runs/dit_video/ckpt.pt --prompt "A large red circle in the centre moves to the right. The background is plain black."
Images:    python sample.py --ckpt runs/dit_image/ckpt.pt --frames 1 --prompt "..."
One GPU:   add --device cuda.  Many prompts: --prompts-file prompts.txt (one per line).
Student:   python sample.py --ckpt runs/distill/ckpt.pt --steps 1 --prompt "..."   (distill.py)
Transfer:  python sample.py --ckpt runs/distill/ckpt.pt --steps 1 --init clip.gif --strength 0.5
           --prompt "..."  (image-to-image: keep the clip's layout and motion, new caption)
Long:      python sample.py --ckpt runs/extend/ckpt.pt --extend 8 --context pack --prompt "..."
           (one long video clip by clip; give one --prompt, or one per clip: --extend 4 with
           4 --prompt; a train_extend.py model, minivid/history.py. Works with a distilled
           extension student too. --restate captioner: later clips' text read off clip 1,
           minivid/restate.py)
Rewrite:   python sample.py --ckpt runs/dit_video/ckpt.pt --rewrite local --prompt "a red circle"
           (a sparse prompt -> the dense description the DiT trained on, minivid/rewrite.py;
           --rewrite openai asks an OpenAI-compatible endpoint, minivid/llm_api.py)
The same prompts, --seed, --steps, --cfg and --sampler give the same pixels (on one device).
"""
import argparse
import os
import re
import sys
import unicodedata

import numpy as np
from PIL import Image
from tqdm import tqdm

from minivid.common import pick_device
from minivid.data import read_frames, save_grid, save_video
from minivid.history import GUIDE_TARGETS, clip_prompts
from minivid.llm_api import ApiRewriter
from minivid.long_clips import clip_start
from minivid.restate import add_args as add_restate_args, missing_reader, restater
from minivid.rewrite import Rewriter
from minivid.sampling import Pipeline

p = argparse.ArgumentParser(description="Text -> video with a trained DiT.",
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
p.add_argument("--ckpt", required=True, help="DiT checkpoint (train_dit.py or train_extend.py "
               "output)")
p.add_argument("--prompt", action="append", default=[], help="a caption; repeat for several")
p.add_argument("--prompts-file", default=None, help="text file, one prompt per line")
p.add_argument("--unconditional", action="store_true",
               help="allow empty prompts: an empty prompt samples the unconditional model "
                    "(other prompts keep --cfg)")
p.add_argument("--frames", type=int, default=16, help="frames per video (1 = a still image)")
p.add_argument("--steps", type=int, default=None, help="sampler steps (default: 100 for a "
               "teacher; a distilled student's fewest, usually 1)")
p.add_argument("--cfg", type=float, default=2.0, help="classifier-free guidance scale (1 = "
               "off; 2 scored best on the tiny world: higher costs shape accuracy)")
p.add_argument("--sampler", default="euler", choices=["euler", "heun"], help="ODE solver")
p.add_argument("--time-shift", type=float, default=1.0, metavar="S", help="the time grid's "
               "shift (minivid/flow.py timesteps): < 1 puts more of the steps at low noise, "
               "where fine detail is finished, > 1 at high noise; 1 = an even grid")
p.add_argument("--seed", type=int, default=0, help="noise seed (same seed, same videos)")
p.add_argument("--format", default="gif", choices=["gif", "mp4"], help="per-prompt file type")
p.add_argument("--init", default=None, help="image-to-image: a clip or image file (any the data "
               "loader reads) to transform; every prompt starts from it")
p.add_argument("--strength", type=float, default=None, help="with --init: how far to noise it, "
               "in (0, 1]; 1 = ignore it, lower keeps more of its layout. A student takes only "
               "jumps it learnt: strength = steps / n for n in its step counts (--steps 1: 1, "
               "0.5, 0.25, 0.125). Default 0.5")
p.add_argument("--extend", type=int, default=None, metavar="N", help="make ONE long video of N "
               "clips (1 + 16 N frames), each conditioned on the history (needs a train_extend.py "
               "model); one --prompt for all clips, or exactly N (one per clip)")
p.add_argument("--context", default="pack", choices=["full", "window", "pack"], help="with "
               "--extend: what history each clip sees (minivid/history.py): everything, the last "
               "--window latent frames, or FramePack-style packed (constant size)")
p.add_argument("--window", type=int, default=4, help="latent frames --context window keeps")
p.add_argument("--history-guidance", type=float, default=0.0, metavar="W", help="with --extend: "
               "guidance over the history, + W (v(history) - v(a noisier history)); 0 = off "
               "(minivid/sampling.py sample_long; 1.5x the rows of plain CFG, ~1.7x its time; "
               "on 64 held-out videos it did not lift identity: docs/results.md 7)")
p.add_argument("--guide-on", default="history", choices=GUIDE_TARGETS, help="with "
               "--history-guidance: what its vaguer branch loses, the whole history's detail "
               "(history) or only the anchor, frame 0 (anchor: pulls every clip towards how "
               "the video started)")
add_restate_args(p)  # --restate (a reader of clip 1: captioner | rule), --captioner, --restate-take
p.add_argument("--later-cfg", type=float, default=None, metavar="C", help="with --extend: the "
               "CFG of every clip after the first (default: --cfg; 0 = no text after clip 1)")
p.add_argument("--who-only", action="store_true", help="with --extend and one prompt: later "
               "clips get only who is in the video, not how it moves (kept less of who is in "
               "the video on held-out videos: docs/results.md 7)")
p.add_argument("--rewrite", default="none", choices=["none", "local", "openai"], help="expand "
               "each prompt into a dense description first: local = the tiny LM of "
               "train_rewriter.py (--rewriter), openai = an OpenAI-compatible endpoint "
               "(--llm-url/--llm-model, key in MINIVID_LLM_API_KEY or OPENAI_API_KEY), falling "
               "back to the local one. Seeded by --seed")
p.add_argument("--rewriter", default="runs/rewriter/ckpt.pt", help="local rewriter checkpoint")
p.add_argument("--llm-url", default=None, help="endpoint base URL (default: $MINIVID_LLM_BASE_URL "
               "or https://api.openai.com/v1)")
p.add_argument("--llm-model", default=None, help="model name (default: $MINIVID_LLM_MODEL or "
               "gpt-4o-mini)")
p.add_argument("--llm-timeout", type=float, default=20.0, help="seconds per endpoint try")
p.add_argument("--vae", default=None, help="VAE checkpoint (default: the one the DiT recorded)")
p.add_argument("--out", default="runs/samples", help="output folder")
p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
args = p.parse_args()

prompts = list(args.prompt)
if args.prompts_file:
    with open(args.prompts_file, encoding="utf-8") as f:
        prompts += [line.rstrip("\n") for line in f if line.strip() or args.unconditional]
if not prompts and args.unconditional:
    prompts = [""]
if not prompts:
    sys.exit("error: no prompt given; pass --prompt \"a red circle moves to the left\" "
             "(repeatable) or --prompts-file FILE")
empty = [i for i, t in enumerate(prompts) if not t.strip()]
if empty and not args.unconditional:
    sys.exit(f"error: prompt {empty[0] + 1} is empty; write a caption, e.g. \"A small red circle "
             "moves to the left.\", or pass --unconditional to sample without one")
# No need to switch guidance off for empty prompts (a teacher): with "" as the caption the
# conditional and unconditional halves are the same, so CFG returns the unconditional
# velocity whatever the scale, and the other prompts of the batch keep their --cfg.

if args.rewrite != "none":  # what the user typed -> what the DiT understands
    if args.unconditional:
        sys.exit("error: --rewrite needs prompts to rewrite; it does not apply with --unconditional")
    if args.rewrite == "local" and not os.path.exists(args.rewriter):
        sys.exit(f"error: --rewriter {args.rewriter} not found; train one first: python "
                 "train_rewriter.py --out runs/rewriter --minutes 4.5")
    local = Rewriter.load(args.rewriter) if os.path.exists(args.rewriter) else None
    if args.rewrite == "openai":
        if args.llm_timeout <= 0:
            sys.exit(f"error: --llm-timeout {args.llm_timeout} must be > 0 seconds")
        rewriter = ApiRewriter(args.llm_url, args.llm_model, timeout=args.llm_timeout,
                               fallback=local)
    else:
        rewriter = local
    for i, prompt in enumerate(prompts):
        r = rewriter(prompt, seed=args.seed)
        print(f"prompt {i + 1}: {prompt!r}\n  read as: {r.reading or '(no reading)'}\n"
              f"  rewritten ({r.source}, {r.tries} tr{'y' if r.tries == 1 else 'ies'}): {r.text}")
        for note in r.warnings:
            print(f"  note: {note}")
        prompts[i] = r.text

if args.steps is not None and args.steps < 1:
    sys.exit(f"error: --steps {args.steps}: give at least 1 sampler step")
if args.strength is not None and not args.init:
    print("note: --strength only applies with --init; ignored")
args.strength = 0.5 if args.strength is None else args.strength
if not 0 < args.strength <= 1:
    sys.exit(f"error: --strength {args.strength} must be in (0, 1]: 1 starts from pure noise, "
             "0.5 keeps the layout of --init")

if not args.time_shift > 0:
    sys.exit(f"error: --time-shift {args.time_shift}: must be > 0 (1 = an even time grid)")
if args.guide_on != "history" and not args.history_guidance:
    sys.exit(f"error: --guide-on {args.guide_on} says what --history-guidance guides towards; "
             "give it a weight too (e.g. --history-guidance 2)")
if args.history_guidance and args.extend is None:
    sys.exit("error: --history-guidance guides a continuation by its history: it needs --extend N")
if args.extend is not None:
    if args.extend < 1:
        sys.exit(f"error: --extend {args.extend}: a video needs at least 1 clip")
    if len(prompts) not in (1, args.extend):
        sys.exit(f"error: --extend {args.extend} with {len(prompts)} prompts: give one --prompt "
                 f"for the whole video, or exactly {args.extend} (one per clip)")
    if args.init or args.unconditional:
        sys.exit("error: --extend makes a video from text; --init and --unconditional do not "
                 "apply")
    if args.window < 1:
        sys.exit(f"error: --window {args.window}: keep at least 1 latent frame")
    if args.later_cfg is not None and args.later_cfg < 0:
        sys.exit(f"error: --later-cfg {args.later_cfg}: a guidance scale >= 0 (default: --cfg)")
    if why := missing_reader(args.restate, args.captioner):
        sys.exit(f"error: {why}")
    if args.restate != "none" and len(prompts) > 1:
        print("note: --restate applies to one-prompt videos; the per-clip prompts are kept")
    if args.frames != 16:
        print(f"note: --frames {args.frames} does not apply with --extend: every clip has 16 "
              f"frames, the video 1 + 16 x {args.extend}")
elif args.restate != "none" or args.later_cfg is not None or args.who_only:
    sys.exit("error: --restate, --later-cfg and --who-only shape the later clips of a long video: "
             "they need --extend N")
pipe = Pipeline(args.ckpt, args.vae, pick_device(args.device))
if pipe.distilled:
    args.steps = args.steps or min(pipe.distilled["step_counts"])
    try:
        pipe.check_steps(args.steps, args.strength if args.init else 1.0, args.time_shift)
    except ValueError as e:
        sys.exit(f"error: {e}")
    if args.unconditional:
        sys.exit("error: --unconditional: a distilled student never saw the empty caption "
                 "(guidance is folded into it); sample unconditionally with the teacher")
    print(f"distilled student: {args.steps} step(s), one network call each, guidance "
          f"{pipe.distilled['cfg']} folded in (--cfg and --sampler do not apply)")
    args.cfg, args.sampler = pipe.distilled["cfg"], "student"
if args.frames != pipe.ckpt["extra"]["frames"]:
    print(f"note: --frames {args.frames}, but this model trained on {pipe.ckpt['extra']['frames']}"
          "-frame clips; other lengths are untested")
args.steps = args.steps or 100
if args.extend is not None:  # one long video, clip by clip
    per_video = prompts[0] if len(prompts) == 1 else prompts
    for m, text in enumerate(clip_prompts([per_video], args.extend, args.who_only)[0]):
        print(f"clip {m + 1}: {text}")
    restate = restater(args.restate, args.captioner, args.seed, args.restate_take)
    try:
        with tqdm(total=args.extend, desc=f"clips ({args.context})") as bar:
            video = pipe.extend([per_video], args.extend, args.context, args.steps, args.cfg,
                                args.seed, args.window, progress=bar,
                                sampler=args.sampler if not pipe.distilled else "euler",
                                history_guidance=args.history_guidance,
                                guide_on=args.guide_on, shift=args.time_shift,
                                later_cfg=args.later_cfg, who_only=args.who_only,
                                restate=restate)[0]
    except ValueError as e:
        sys.exit(f"error: {e}")
    if restate is not None and isinstance(per_video, str):   # what the reader made of clip 1
        print(f"clips 2-{args.extend}, restated by the {restate.name} from clip 1: "
              f"{restate.last[0]}")
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"long_{args.context}_{args.extend}clips.{args.format}")
    save_video(path, video)
    print(f"wrote {path}: {len(video)} frames ({args.extend} clips, context {args.context}, "
          f"{args.steps} steps a clip{', student' if pipe.distilled else f', cfg {args.cfg}'})")
    # ... and a strip to look at without playing it: the first and middle frame of each clip
    picks = [f for m in range(args.extend) for f in (clip_start(m), clip_start(m) + 8)]
    strip = np.concatenate([np.pad(video[f], ((1, 1), (1, 1), (0, 0)), constant_values=255)
                            for f in picks], axis=1)
    Image.fromarray(np.kron(strip, np.ones((3, 3, 1), dtype=np.uint8))).save(
        path.rsplit(".", 1)[0] + ".png")
    print(f"wrote {path.rsplit('.', 1)[0]}.png (first and middle frame of every clip)")
    sys.exit(0)
init = None
if args.init:
    if not os.path.isfile(args.init):
        sys.exit(f"error: --init {args.init}: no such file; give a clip or image (gif, mp4, png, "
                 "jpg, ...)")
    size = pipe.ckpt["extra"]["latent_hw"][0] * pipe.vae.cfg.patch
    try:
        frames, _ = read_frames(args.init, frames=args.frames, size=size)
    except Exception as e:  # the decoder's own error, named
        sys.exit(f"error: --init {args.init} could not be read ({type(e).__name__}: {e}); is "
                 "it a valid image or video file?")
    if len(frames) < args.frames:  # an image, or a short clip: hold its last frame, as the
        print(f"note: --init has {len(frames)} frame(s); its last frame is repeated to "
              f"{args.frames} (a still start)")  # data loader does for short clips
        frames += [frames[-1]] * (args.frames - len(frames))
    init = np.repeat(np.stack(frames)[None], len(prompts), axis=0)  # (N, T, H, W, 3)
# A prompt longer than the text encoder's max_len is truncated with a warning (minivid/text.py).
try:
    videos = pipe.generate(prompts, args.frames, args.steps, args.cfg, args.seed, args.sampler,
                           allow_empty=args.unconditional, init=init,
                           strength=args.strength if init is not None else 1.0,
                           shift=args.time_shift)                               # (N, T, H, W, 3)
except ValueError as e:
    sys.exit(f"error: {e}")

os.makedirs(args.out, exist_ok=True)
ext = "png" if args.frames == 1 else args.format
for i, (video, prompt) in enumerate(zip(videos, prompts)):
    # ASCII-only file names: a prompt in any script (or emoji) still gives a valid name.
    ascii_text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_")[:48] or "prompt"
    path = os.path.join(args.out, f"{i:03d}_{slug}.{ext}")
    save_video(path, video)
    print(f"wrote {path}")
grid = os.path.join(args.out, "grid.png" if args.frames == 1 else "grid.gif")
if init is not None:  # before | after, each prompt under its own result
    videos = np.concatenate([init[:1], videos])
    prompts = [f"--init {os.path.basename(args.init)}", *prompts]
save_grid(grid, videos, [t or "(unconditional)" for t in prompts])
print(f"wrote {grid} ({len(prompts)} prompts, {args.steps} {args.sampler} steps, cfg {args.cfg}"
      f"{' (folded in)' if pipe.distilled else ''}, seed {args.seed})")
