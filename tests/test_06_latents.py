"""06: the latent cache: encode once, train the DiT on it, never mix up VAEs.

Concepts:
1. Round trip. `python -m minivid.latents` encodes every image and clip of a dataset with the
   VAE's posterior mean (clips padded 16 -> 17 frames for tf = 4) into one fp16 file per
   (split, kind), with captions, scene specs, the VAE's config and fingerprint, and one
   shift/scale pair (from train) that makes the latents unit variance for the DiT.
2. Fingerprints. Latents only mean something to the decoder of the VAE that made them, so
   `load_latents(path, vae_fingerprint)` refuses a cache made with another VAE, naming both
   fingerprints and the command that fixes it.

Run: `OMP_NUM_THREADS=1 python -m pytest tests/test_06_latents.py -q`
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
    # one shift/scale for every file, measured on train: (z - shift) / scale has unit variance
    train = torch.cat([images["latents"].flatten(), latents.load_latents(
        root / "cache" / "train_clips.pt")["latents"].flatten()]).float()
    assert cache["shift"] == images["shift"] and cache["scale"] == images["scale"]
    assert abs(((train - cache["shift"]) / cache["scale"]).std().item() - 1) < 1e-3


def test_02_cache_of_another_vae_is_refused(setup):
    root, vae = setup
    other = VAE(vae.cfg)  # same config, other weights
    with pytest.raises(ValueError, match=rf"fingerprint {fingerprint(vae)}.*fingerprint "
                                         rf"{fingerprint(other)}.*Re-encode"):
        latents.load_latents(root / "cache" / "val_clips.pt", fingerprint(other))
