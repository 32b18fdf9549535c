"""03b the latent cache: encode once, train the DiT on it, never mix up VAEs.

Concepts:
1. Round trip. `python -m minivid.latents` encodes every image and clip of a dataset with the
   VAE's posterior mean (clips padded 16 -> 17 frames for tf = 4) into one fp16 file per
   (split, kind), with captions, scene specs, the VAE's config and fingerprint, and one
   shift/scale pair (from train) that makes the latents unit variance for the DiT.
2. Fingerprints. Latents only mean something to the decoder of the VAE that made them, so
   `load_latents(path, vae_fingerprint)` refuses a cache made with another VAE, naming both
   fingerprints and the command that fixes it.

Run: `OMP_NUM_THREADS=1 python -m pytest tests/test_03b_latents.py -q`
"""
import json
from dataclasses import asdict

import pytest
import torch

from minivid import latents, world
from minivid.checkpoint import save_checkpoint
from minivid.data import CaptionedVideos, load_uint8, to_float
from minivid.vae import VAE, VAEConfig, fingerprint, pad_frames

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny world (4 images + 3 clips per split) and an untrained tiny-t4-shaped VAE."""
    root = tmp_path_factory.mktemp("latents")
    sizes = {(s, k): n for s in ("train", "val") for k, n in (("images", 4), ("clips", 3))}
    world.generate(root / "data", sizes, seed=0, workers=1)
    torch.manual_seed(0)
    vae = VAE(VAEConfig(patch=4, tf=4, latent=3, width=32, depth=1, pixel_width=8)).eval()
    save_checkpoint(root / "vae.pt", {"kind": "vae", "config": asdict(vae.cfg),
                                      "model": vae.state_dict()})
    latents.main(["--vae", str(root / "vae.pt"), "--data", str(root / "data"),
                  "--out", str(root / "cache"), "--device", "cpu"])
    return root, vae


def test_01_cache_round_trip(setup):
    root, vae = setup
    cache = latents.load_latents(root / "cache" / "val_clips.pt", fingerprint(vae))
    z = cache["latents"]
    assert z.dtype == torch.float16 and z.shape == (3, 3, 5, 8, 8)  # 16 frames -> 17 -> 5 latents
    assert cache["frames"] == 16 and len(cache["captions"]) == len(cache["specs"]) == 3
    assert json.loads(cache["specs"][0])["frames"] == 16
    # the cached latents are the posterior means of the very same pixels
    u8, metas = load_uint8(CaptionedVideos(root / "data" / "val" / "clips.jsonl"))
    assert cache["captions"] == [m["caption"] for m in metas]
    with torch.no_grad():
        mean, _ = vae.encode(pad_frames(to_float(u8), 4)[0])
    torch.testing.assert_close(z.float(), mean, atol=2e-3, rtol=2e-3)  # fp16 storage

    images = latents.load_latents(root / "cache" / "train_images.pt")
    assert images["latents"].shape == (4, 3, 1, 8, 8) and images["frames"] == 1
    # One shift/scale for every file, the mean and std of the TRAIN latents (images and clips
    # pooled), recomputed here from the pixels: val is normalised with train's numbers.
    with torch.no_grad():
        train = torch.cat([vae.encode(pad_frames(to_float(load_uint8(CaptionedVideos(
            root / "data" / "train" / f"{kind}.jsonl"))[0]), 4)[0])[0].flatten()
            for kind in ("images", "clips")])
    assert cache["shift"] == images["shift"] and cache["scale"] == images["scale"]
    assert cache["shift"] == pytest.approx(train.mean().item(), abs=2e-3)
    assert cache["scale"] == pytest.approx(train.std().item(), rel=2e-3)
    val_own = cache["latents"].float()
    assert abs(val_own.mean().item() - cache["shift"]) > 1e-4  # val's own mean is another number


def test_02_cache_of_another_vae_is_refused(setup):
    root, vae = setup
    other = VAE(vae.cfg)  # same config, other weights
    with pytest.raises(ValueError, match=rf"fingerprint {fingerprint(vae)}.*fingerprint "
                                         rf"{fingerprint(other)}.*Re-encode"):
        latents.load_latents(root / "cache" / "val_clips.pt", fingerprint(other))


# 3. Your own data, end to end: a folder of GIFs with a <name>.txt caption beside each goes
#    through the same three commands as the tiny world (VAE, latent cache, DiT), with no
#    manifest and no tiny_data layout: --train-manifest / --val-manifest take the folder.
@pytest.mark.slow
def test_03_users_own_folder_end_to_end(tmp_path):
    import imageio.v2 as imageio
    from helpers import run

    folder = tmp_path / "my_clips"
    folder.mkdir()
    rng = __import__("numpy").random.default_rng(0)
    for i in range(8):
        scene = world.sample_scene(rng, "train", 16)
        imageio.mimsave(folder / f"clip{i}.gif", list(world.render(scene)), duration=0.1)
        (folder / f"clip{i}.txt").write_text(f"my own clip number {i}: a thing that moves")
    mine = ["--train-manifest", folder, "--val-manifest", folder]
    run("train_vae.py", *mine, "--steps", 3, "--batch-size", 2, "--out", tmp_path / "vae",
        "--device", "cpu")
    run("minivid/latents.py", "--vae", tmp_path / "vae" / "ckpt.pt", *mine, "--splits", "train",
        "val", "--out", tmp_path / "cache", "--device", "cpu")
    cache = latents.load_latents(tmp_path / "cache" / "train_clips.pt")
    assert cache["latents"].shape == (8, 3, 5, 8, 8) and cache["captions"][0].startswith("my own")
    run("train_dit.py", "--stage", "video", "--vae", tmp_path / "vae" / "ckpt.pt", "--latents",
        tmp_path / "cache", "--steps", 3, "--batch-size", 4, "--sample-every", 0,
        "--out", tmp_path / "dit", "--device", "cpu")
    assert (tmp_path / "dit" / "ckpt.pt").exists()
