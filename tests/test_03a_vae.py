"""03a the patch VAE: shapes, causal time, image = first frame, training, safe checkpoints.

Concepts, in the order the tests walk through them:
1. Shapes. A video (B, C, T, H, W) becomes latents (B, Cl, T', H/p, W/p). With temporal
   compression tf = 4 the first frame is encoded alone and every next latent covers 4 frames,
   so T = 1 + 4k frames -> 1 + k latents (tf = 1: one latent per frame). Other frame counts
   are refused with an error that lists the valid ones; `pad_frames` repeats the last frame
   to reach the next valid count (16 -> 17). A token holds its (tf, S, p, p) features in
   the order of a plain reshape (the einops patchify is checked against one), so trained
   checkpoints keep meaning the same thing.
2. Causality. Changing frame k leaves every earlier latent frame bit-for-bit unchanged (and
   changing latent j leaves every earlier decoded frame unchanged), so a stream can be encoded
   and decoded as it arrives. Consequence: an image is a one-frame video, and a video's first
   latent equals that image's latent.
3. Learning. A few Adam steps on one batch drive the reconstruction loss down.
4. Checkpoints. A VAE is rebuilt from its file alone (same fingerprint, same outputs); a file
   of another config is refused before any weight is copied; truncated files and pickles
   that would run code are refused with clear errors; a kill during save keeps the previous
   file.
5. Metrics. PSNR and SSIM on [0, 1]: identical videos give 100 dB / 1.0, known noise gives the
   expected dB.

Run: `OMP_NUM_THREADS=1 python -m pytest tests/test_03a_vae.py -q`
"""
import io
import math
import multiprocessing
import os
import shlex
import signal
from dataclasses import asdict

import pytest
import torch
from helpers import HANG

from minivid import checkpoint
from minivid.checkpoint import load_state_strict, save_checkpoint
from minivid.metrics import psnr, ssim
from minivid.vae import VAE, VAEConfig, fingerprint, load_vae, pad_frames, valid_frames

torch.set_num_threads(1)


def tiny(tf: int, **kw) -> VAE:
    torch.manual_seed(0)
    return VAE(VAEConfig(patch=4, tf=tf, latent=3, width=32, depth=1, pixel_width=8, **kw))


def video(B=2, T=9, H=16, W=16, seed=1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, 3, T, H, W, generator=g) * 2 - 1  # (B, C, T, H, W) in [-1, 1]


def save_vae(path, model, step=0):
    """What train_vae.py writes (the fields a VAE checkpoint needs)."""
    save_checkpoint(path, {"kind": "vae", "config": asdict(model.cfg),
                           "model": model.state_dict(), "step": step})


# ----------------------------------------------------------------------------- 1. shapes


@pytest.mark.parametrize("tf, T, T_lat", [(1, 9, 9), (4, 9, 3), (4, 1, 1), (1, 1, 1)])
def test_01_shapes_both_modes(tf, T, T_lat):
    vae = tiny(tf)
    x = video(T=T)
    mean, logvar = vae.encode(x)
    assert mean.shape == logvar.shape == (2, 3, T_lat, 4, 4)
    assert vae.latent_shape(T, 16, 16) == (3, T_lat, 4, 4)
    recon, kl = vae(x)
    assert recon.shape == x.shape and kl.ndim == 0 and kl.item() >= 0
    assert vae.decode(mean).shape == x.shape


def test_02_pad_frames_repeats_the_last_frame():
    x = video(T=16)
    xp, T = pad_frames(x, 4)
    assert xp.shape[2] == 17 and T == 16
    assert torch.equal(xp[:, :, :16], x) and torch.equal(xp[:, :, 16], x[:, :, 15])
    assert pad_frames(x, 1)[0] is x  # already valid: untouched
    assert [t for t in range(1, 18) if valid_frames(t, 4)] == [1, 5, 9, 13, 17]


def test_03_invalid_frame_count_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"T = 16 .*\(1, 5, 9, 13, 17, \.\.\.\).*pad_frames"):
        tiny(4).encode(video(T=16))
    with pytest.raises(ValueError, match="divisible by patch 4"):
        tiny(4).encode(video(T=5, H=18))


def test_03b_patchify_is_the_plain_reshape():
    """The einops patchify / unpatchify against the reshape + permute they replace."""
    vae, x = tiny(4), video(T=9)
    B, T, S, tf, p, h, w = 2, 9, 8, 4, 4, 4, 4
    seen = {}
    for name in ("stem", "embed", "dec_out", "head"):
        getattr(vae, name).register_forward_hook(
            lambda m, i, o, name=name: seen.update({name + "_in": i[0], name + "_out": o}))
    with torch.no_grad():
        vae.decode(vae.encode(x)[0])
    s = seen["stem_out"].view(B, T, S, h * p, w * p)                      # (B, T, S, H, W)
    s = torch.nn.functional.silu(torch.cat([s[:, :1].expand(-1, tf - 1, -1, -1, -1), s], 1))
    tokens = s.reshape(B, 3, tf, S, h, p, w, p).permute(0, 1, 4, 6, 2, 3, 5, 7)
    assert torch.equal(seen["embed_in"], tokens.reshape(B, 3, h, w, tf * S * p * p))
    pixels = seen["dec_out_out"].view(B, 3, tf, S, p, p, h, w).permute(0, 1, 2, 3, 6, 4, 7, 5)
    pixels = pixels.reshape(B, 3 * tf, S, h * p, w * p)[:, tf - 1:]       # (B, T, S, H, W)
    assert torch.equal(seen["head_in"], pixels.reshape(B * T, S, h * p, w * p))


# ----------------------------------------------------------------------------- 2. causality


@pytest.mark.parametrize("tf", [1, 4])
def test_04_causal_in_time(tf):
    vae = tiny(tf)
    x = video(T=9)
    with torch.no_grad():
        z, _ = vae.encode(x)
        frames = vae.decode(z)
        for k in range(9):  # change frame k: latents before its latent frame must not move
            x2 = x.clone()
            x2[:, :, k] = -x2[:, :, k]
            z2, _ = vae.encode(x2)
            j = 0 if k == 0 else 1 + (k - 1) // tf  # the latent frame that holds frame k
            assert torch.equal(z2[:, :, :j], z[:, :, :j]), f"frame {k} leaked into earlier latents"
            assert not torch.allclose(z2[:, :, j], z[:, :, j])
        for j in range(z.shape[2]):  # change latent j: frames decoded before it must not move
            z2 = z.clone()
            z2[:, :, j] += 1.0
            first = 0 if j == 0 else 1 + (j - 1) * tf  # first frame that latent j decodes to
            assert torch.equal(vae.decode(z2)[:, :, :first], frames[:, :, :first])


@pytest.mark.parametrize("tf", [1, 4])
def test_05_an_image_is_the_first_frame_of_a_video(tf):
    vae = tiny(tf)
    x = video(T=9)
    with torch.no_grad():
        z_video, _ = vae.encode(x)
        z_image, _ = vae.encode(x[:, :, :1])  # the first frame alone, as an image
        torch.testing.assert_close(z_image[:, :, 0], z_video[:, :, 0])
        torch.testing.assert_close(vae.decode(z_image)[:, :, 0], vae.decode(z_video)[:, :, 0])


# ----------------------------------------------------------------------------- 3. learning


def test_06_overfit_one_batch():
    vae = tiny(4)
    x = video(T=5)
    x = (x > 0).float() * 2 - 1  # flat two-level pixels, like the tiny world
    opt = torch.optim.Adam(vae.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        recon, kl = vae(x)
        loss = (recon - x).pow(2).mean() + 1e-4 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses[::10]


# ----------------------------------------------------------------------------- 4. checkpoints


def test_07_fingerprint_names_the_weights():
    a, b = tiny(4), tiny(4)
    assert fingerprint(a) == fingerprint(b) and len(fingerprint(a)) == 16
    with torch.no_grad():
        b.embed.bias[0] += 1e-3
    assert fingerprint(a) != fingerprint(b)


def test_08_checkpoint_round_trip_rebuilds_from_the_file_alone(tmp_path):
    vae = tiny(4)
    save_vae(tmp_path / "ckpt.pt", vae, step=7)
    back, ckpt = load_vae(tmp_path / "ckpt.pt")
    assert ckpt["step"] == 7 and back.cfg == vae.cfg
    assert fingerprint(back) == fingerprint(vae)
    x = video(T=5)
    with torch.no_grad():
        assert torch.equal(back.encode(x)[0], vae.encode(x)[0])


def test_09_other_config_refused_and_nothing_loaded(tmp_path):
    save_vae(tmp_path / "ckpt.pt", tiny(4))
    with pytest.raises(ValueError, match=r"tf: checkpoint has 4, expected 1"):
        load_vae(tmp_path / "ckpt.pt", expect=tiny(1).cfg)
    # loading the weights into a model of another shape changes nothing in that model
    other = VAE(VAEConfig(patch=4, tf=4, latent=4, width=32, depth=1, pixel_width=8))
    before = fingerprint(other)
    with pytest.raises(ValueError, match="nothing was loaded"):
        load_state_strict(other, tiny(4).state_dict(), "VAE")
    assert fingerprint(other) == before


def test_10_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_vae(path, tiny(4))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_vae(path)


class Exploit:
    """Unpickling this runs a shell command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


def test_11_checkpoint_that_runs_code_is_refused(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "ckpt.pt"
    torch.save({"format": checkpoint.FORMAT, "kind": "vae", "config": asdict(tiny(4).cfg),
                "model": Exploit(marker)}, path)
    with pytest.raises(ValueError, match="refused to load"):
        load_vae(path)
    assert not marker.exists()


def _die_mid_save(path):
    real_save = torch.save

    def half_then_sigkill(obj, f):  # write half the bytes, then die with no cleanup at all
        buf = io.BytesIO()
        real_save(obj, buf)
        f.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        f.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    checkpoint.torch.save = half_then_sigkill
    save_vae(path, tiny(4), step=2)


def test_12_kill_during_save_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "ckpt.pt"
    old = tiny(4)
    save_vae(path, old, step=1)
    proc = multiprocessing.get_context("fork").Process(target=_die_mid_save, args=(path,))
    proc.start()
    proc.join(60)
    assert proc.exitcode == -signal.SIGKILL
    back, ckpt = load_vae(path)
    assert ckpt["step"] == 1 and fingerprint(back) == fingerprint(old)


# ----------------------------------------------------------------------------- 5. metrics


def test_13_metrics_psnr_and_ssim():
    x = video(T=3, H=32, W=32)
    assert torch.allclose(psnr(x, x), torch.full((2,), 100.0))
    assert torch.allclose(ssim(x, x), torch.ones(2))
    y = (x + 0.02).clamp(-1, 1)  # +0.01 on [0, 1] wherever not clipped
    expect = -10 * math.log10(((y - x) / 2).pow(2).mean().item())
    assert abs(psnr(y, x).mean().item() - expect) < 0.05
    noisy = (x + 0.5 * torch.randn_like(x)).clamp(-1, 1)
    assert ssim(noisy, x).max() < ssim(y, x).min() < 1.0
    with pytest.raises(ValueError, match="same shape"):
        psnr(x, x[:, :, :2])


# ----------------------------------------------------------------------------- 6. the script


@pytest.mark.slow
def test_14_train_vae_script_runs_and_resumes(tmp_path):
    """train_vae.py end to end on a tiny world: 3 steps, then --resume to 5 steps."""
    import subprocess
    import sys

    from minivid import world

    sizes = {(s, k): 4 for s in ("train", "val") for k in ("images", "clips")}
    world.generate(tmp_path / "data", sizes, seed=0, workers=1)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    base = [sys.executable, os.path.join(root, "train_vae.py"), "--data", str(tmp_path / "data"),
            "--out", str(tmp_path / "run"), "--batch-size", "2", "--image-batch-size", "2",
            "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.run(base + ["--preset", "tiny-t4", "--steps", "3"], env=env,
                           capture_output=True, text=True, timeout=HANG)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "val clips: PSNR" in first.stdout
    ckpt_path = tmp_path / "run" / "ckpt.pt"
    _, ckpt = load_vae(ckpt_path)
    assert ckpt["step"] == 3
    assert (tmp_path / "run" / "loss.png").exists() and (tmp_path / "run" / "recon.gif").exists()

    again = subprocess.run(base + ["--resume", "--steps", "5"], env=env,
                           capture_output=True, text=True, timeout=HANG)
    assert again.returncode == 0, again.stderr[-2000:]
    model, ckpt = load_vae(ckpt_path)
    assert ckpt["step"] == 5 and model.cfg == VAEConfig(**ckpt["config"])
    assert ckpt["log"]["series"]["loss"]["step"] == [0, 1, 2, 3, 4]  # the log went on too
