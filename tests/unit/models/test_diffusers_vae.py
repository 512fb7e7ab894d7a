"""The VAEs of latent diffusion opened from a local diffusers folder (models/diffusers_vae.py):
tiny random-weight AutoencoderKLs built and saved with diffusers' own class are the reference;
every folder that is not one is refused in one sentence, before any weight is read."""

import importlib.util
import json

import pytest
import torch
from conftest import require
from probes import TINY_AUTOENCODER_KL

from vae_explorer.errors import CheckpointError
from vae_explorer.models.diffusers_vae import MAX_PARAMETERS, load_spatial_vae

TINY = TINY_AUTOENCODER_KL | {"scaling_factor": 0.5, "shift_factor": 0.1}


def autoencoder_class():
    require(importlib.util.find_spec("diffusers") is not None, "diffusers (pip install -r requirements.txt)")
    from diffusers import AutoencoderKL

    return AutoencoderKL


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A random-weight AutoencoderKL saved as save_pretrained writes it, and the diffusers model itself."""
    autoencoder = autoencoder_class()
    torch.manual_seed(0)
    model = autoencoder(**TINY).eval()
    folder = tmp_path_factory.mktemp("vae") / "tiny-vae"
    model.save_pretrained(folder, safe_serialization=True)
    return folder, model


def test_a_saved_autoencoder_encodes_and_decodes_as_diffusers_does(tiny_folder):
    folder, reference = tiny_folder
    vae = load_spatial_vae(folder)
    assert (vae.name, vae.latent_channels, vae.factor) == ("tiny-vae", 4, 2)
    assert vae.num_parameters == sum(p.numel() for p in reference.parameters())
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(1))  # images in [0, 1]
    mean, logvar = vae.encode(x)
    with torch.no_grad():
        distribution = reference.encode(x * 2 - 1).latent_dist  # diffusers' images are in [-1, 1]
        expected = ((reference.decode(distribution.mean).sample + 1) / 2).clamp(0, 1)
    assert mean.shape == (2, 4, 8, 12) and torch.allclose(mean, distribution.mean, atol=1e-6)
    assert torch.allclose(logvar, distribution.logvar, atol=1e-6)
    assert torch.allclose(vae.decode(mean), expected, atol=1e-6)
    z = torch.randn(1, 4, 8, 12)
    assert torch.allclose(vae.to_diffusion(z), (z - 0.1) * 0.5) and torch.allclose(
        vae.from_diffusion(vae.to_diffusion(z)), z
    )


def test_folders_that_are_not_a_diffusers_vae_are_refused_in_one_sentence(tiny_folder, tmp_path):
    folder, reference = tiny_folder
    with pytest.raises(CheckpointError, match=r"^nothing-here is not a folder; pass the folder that holds"):
        load_spatial_vae(tmp_path / "nothing-here")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"^empty has no config.json, so it is not a diffusers VAE"):
        load_spatial_vae(tmp_path / "empty")
    pipeline = tmp_path / "pipeline"
    (pipeline / "vae").mkdir(parents=True)
    (pipeline / "vae" / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match=r"^pipeline is a diffusion pipeline's folder; pass its vae/ folder"):
        load_spatial_vae(pipeline)
    other = tmp_path / "unet"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    with pytest.raises(CheckpointError, match=r"describes a UNet2DConditionModel, not an AutoencoderKL"):
        load_spatial_vae(other)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"_class_name": "AutoencoderKL",')
    with pytest.raises(CheckpointError, match=r"^broken/config.json is not valid JSON"):
        load_spatial_vae(broken)


def test_pickled_weights_are_never_opened_and_a_huge_config_is_refused_before_any_weight(tiny_folder, tmp_path):
    folder, reference = tiny_folder
    pickled = tmp_path / "pickled"
    reference.save_pretrained(pickled, safe_serialization=False)
    assert (pickled / "diffusion_pytorch_model.bin").is_file()
    with pytest.raises(
        CheckpointError, match=r"only as diffusion_pytorch_model.bin, a pickle, which vae-explorer never"
    ):
        load_spatial_vae(pickled)
    huge = tmp_path / "huge"
    huge.mkdir()
    config = json.loads((folder / "config.json").read_text())
    config |= {"block_out_channels": [4096, 4096], "norm_num_groups": 32}
    (huge / "config.json").write_text(json.dumps(config))
    (huge / "diffusion_pytorch_model.safetensors").write_bytes(b"not read")  # sized from the config first
    with pytest.raises(CheckpointError, match=rf"parameters, more than the {MAX_PARAMETERS:,} vae-explorer opens"):
        load_spatial_vae(huge)


def test_weights_that_do_not_fit_the_config_are_one_sentence(tiny_folder, tmp_path):
    folder, _ = tiny_folder
    mismatched = tmp_path / "mismatched"
    mismatched.mkdir()
    config = json.loads((folder / "config.json").read_text())
    (mismatched / "config.json").write_text(json.dumps(config | {"latent_channels": 8}))
    (mismatched / "diffusion_pytorch_model.safetensors").write_bytes(
        (folder / "diffusion_pytorch_model.safetensors").read_bytes()
    )
    with pytest.raises(
        CheckpointError, match=r"^mismatched/diffusion_pytorch_model.safetensors does not fit its config"
    ):
        load_spatial_vae(mismatched)


def test_the_photo_command_measures_what_the_vae_gives_back(tiny_folder, tmp_path, capsys):
    """`vae-explorer photo` on a photo of 37 x 21 pixels (cropped to 36 x 20 for the factor 2): the PSNR
    it prints is the one of diffusers' own reconstruction, and the picture holds the four panels."""
    import io
    import re

    import numpy as np
    from PIL import Image

    from vae_explorer.cli import main
    from vae_explorer.evaluation.fidelity import psnr

    folder, reference = tiny_folder
    pixels = np.random.default_rng(3).integers(0, 256, (21, 37, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    (tmp_path / "photo.png").write_bytes(buffer.getvalue())
    out = tmp_path / "out.png"
    assert main(["photo", "--vae", str(folder), "--image", str(tmp_path / "photo.png"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "photo.png: 36x20 pixels -> latent 4x10x18" in printed
    x = torch.from_numpy(pixels[:20, :36].astype(np.float32) / 255).permute(2, 0, 1)  # the crop keeps the middle
    with torch.no_grad():
        mean = reference.encode(x[None] * 2 - 1).latent_dist.mean
        expected = ((reference.decode(mean).sample + 1) / 2).clamp(0, 1)[0]
    assert f"PSNR {psnr(x, expected):.2f} dB" in printed
    assert re.search(r"gives this photo's latent unit variance \(the config's scaling_factor: 0\.5\)", printed)
    assert Image.open(out).size[1] >= 20 and Image.open(out).size[0] >= 4 * 36

    too_large = tmp_path / "large.png"
    Image.new("RGB", (1100, 1000)).save(too_large)
    assert main(["photo", "--vae", str(folder), "--image", str(too_large)]) == 2
    assert (
        "large.png is 1100x1000 pixels; photos of up to 1,048,576 pixels (1.05 megapixels)" in capsys.readouterr().err
    )
    assert main(["photo", "--vae", str(tmp_path), "--image", str(too_large)]) == 2
    assert "has no config.json, so it is not a diffusers VAE" in capsys.readouterr().err


def test_the_photo_command_over_a_folder_gives_each_photo_s_numbers_and_the_latent_s_statistics(
    tiny_folder, tmp_path, capsys
):
    """Three photos of different sizes and a file that is not one: the worst PSNR, the median SSIM and the
    folder's scaling factor printed equal those computed here from diffusers' model, one photo at a time."""
    import io

    import numpy as np
    from PIL import Image

    from vae_explorer.cli import main
    from vae_explorer.evaluation.fidelity import psnr, ssim

    folder, reference = tiny_folder
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(7)
    values, scores = [], []
    for name, (h, w) in (("a.png", (16, 16)), ("b.png", (20, 12)), ("c.png", (8, 24))):
        pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        (photos / name).write_bytes(buffer.getvalue())
        x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)
        with torch.no_grad():
            mean = reference.encode(x[None] * 2 - 1).latent_dist.mean
            recon = ((reference.decode(mean).sample + 1) / 2).clamp(0, 1)[0]
        values.append(mean[0].reshape(4, -1).double().numpy())
        scores.append((name, psnr(x, recon), ssim(x, recon)))
    (photos / "notes.png").write_bytes(b"not an image")
    assert main(["photo", "--vae", str(folder), "--folder", str(photos), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "skipped 1 of 4: notes.png (is not an image this app can read)" in err
    worst = min(scores, key=lambda row: row[1])
    assert f"lowest {worst[1]:.2f}" in out and f"{worst[0]} {worst[1]:.2f} dB" in out
    assert f"SSIM median {float(np.median([s for _, _, s in scores])):.4f}" in out
    every = np.concatenate(values, 1)
    assert f"a scaling factor of {1 / every.std():.5f} gives these latents unit variance" in out
    assert "mean: " + " ".join(f"{v:+.3f}" for v in every.mean(1)) in out


def test_a_tiled_vae_decodes_as_diffusers_tiling_does_and_takes_larger_photos(tmp_path, capsys):
    """A VAE whose tiles are 16 pixels (sample_size 16) on a 40 x 40 photo: the tiled reconstruction is
    diffusers' own with enable_tiling, and it differs from the untiled one only near the seams."""
    import io

    import numpy as np
    from PIL import Image

    from vae_explorer.cli import main

    autoencoder = autoencoder_class()
    torch.manual_seed(0)
    reference = autoencoder(**(TINY | {"sample_size": 16})).eval()
    folder = tmp_path / "tiles"
    reference.save_pretrained(folder, safe_serialization=True)
    tiled, untiled = load_spatial_vae(folder, tiled=True), load_spatial_vae(folder)
    x = torch.rand(1, 3, 40, 40, generator=torch.Generator().manual_seed(8))
    reference.enable_tiling()
    with torch.no_grad():
        mean = reference.encode(x * 2 - 1).latent_dist.mean
        expected = ((reference.decode(mean).sample + 1) / 2).clamp(0, 1)
    assert tiled.tiled and torch.allclose(tiled.encode(x)[0], mean, atol=1e-6)
    assert torch.allclose(tiled.decode(mean), expected, atol=1e-6)
    assert not torch.allclose(untiled.decode(untiled.encode(x)[0]), expected, atol=1e-3)  # tiling is really on

    big = tmp_path / "big.png"
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((1100, 1000, 3), np.uint8)).save(buffer, format="PNG")
    big.write_bytes(buffer.getvalue())
    assert main(["photo", "--vae", str(folder), "--image", str(big)]) == 2  # over 1 megapixel untiled
    assert "photos of up to 1,048,576 pixels" in capsys.readouterr().err


def test_two_vaes_compared_on_a_folder_say_which_gives_back_each_photo_better(tiny_folder, tmp_path, capsys):
    import io

    import numpy as np
    from PIL import Image

    from vae_explorer.cli import main
    from vae_explorer.evaluation.fidelity import psnr

    folder, first = tiny_folder
    autoencoder = autoencoder_class()
    torch.manual_seed(1)
    second = autoencoder(**TINY).eval()
    second.save_pretrained(tmp_path / "other-vae", safe_serialization=True)
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(12)
    gaps = {}
    for name in ("a.png", "b.png", "c.png", "d.png"):
        pixels = rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        (photos / name).write_bytes(buffer.getvalue())
        x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)
        scores = []
        for model in (first, second):
            with torch.no_grad():
                mean = model.encode(x[None] * 2 - 1).latent_dist.mean
                scores.append(psnr(x, ((model.decode(mean).sample + 1) / 2).clamp(0, 1)[0]))
        gaps[name] = scores[1] - scores[0]
    argv = ["photo", "--vae", str(folder), str(tmp_path / "other-vae"), "--folder", str(photos), "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    better = sum(gap > 0 for gap in gaps.values())
    assert f"other-vae against tiny-vae: higher PSNR on {better} of 4 photos" in out
    most = max(gaps, key=lambda name: abs(gaps[name]))
    assert f"differ most (PSNR, second minus first): {most} {gaps[most]:+.2f} dB" in out
    assert main(["photo", "--vae", str(folder), str(folder), "--image", str(photos / "a.png")]) == 2
    assert (
        "--vae takes one folder (two with --folder or --sizes, to compare them), got 2; pass one."
        in capsys.readouterr().err
    )


def test_a_folder_with_only_half_precision_weights_opens_in_float32(tiny_folder, tmp_path):
    """Pipelines often ship the VAE as diffusion_pytorch_model.fp16.safetensors alone: it is read and
    computed in float32, equal to the float16 weights widened."""
    folder, reference = tiny_folder
    half = tmp_path / "half"
    import copy

    copy.deepcopy(reference).half().save_pretrained(half, safe_serialization=True, variant="fp16")
    assert not (half / "diffusion_pytorch_model.safetensors").is_file()
    vae = load_spatial_vae(half)
    weights = dict(vae.module.named_parameters())
    for name, parameter in reference.named_parameters():
        assert weights[name].dtype == torch.float32 and torch.equal(weights[name], parameter.half().float())


def test_the_photo_command_measures_time_and_memory_per_size_in_fresh_processes(tiny_folder, capsys):
    """`photo --vae A B --sizes 48 --tiled`: a line per VAE, size and tiling, seconds and the process's peak
    memory; the tiled line only for the diffusers VAE, and its difference to the untiled picture that of the
    diffusers model called here, tiled and not, on the same seeded photo."""
    import copy
    import re

    from vae_explorer.cli import main

    folder, reference = tiny_folder
    assert main(["photo", "--vae", "photos-spatial", str(folder), "--sizes", "48", "--tiled"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if re.match(r"  48x48( tiled)?: \d+\.\d\d s a photo; peak memory", line)]
    assert len(lines) == 3 and sum("tiled" in line for line in lines) == 1
    for line in lines:
        peak, above, opened = (int(v.replace(",", "")) for v in re.findall(r"([\d,]+) MB", line))
        assert peak > 0 and above == peak - opened and above >= 0
    photo = torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(0))
    tiled = copy.deepcopy(reference)
    tiled.enable_tiling()
    pictures = []
    with torch.no_grad():
        for model in (reference, tiled):
            mean = model.encode(photo[None] * 2 - 1).latent_dist.mean
            pictures.append(((model.decode(mean).sample + 1) / 2).clamp(0, 1)[0])
    difference = (pictures[1] - pictures[0]).abs()
    assert f"tiled against untiled, mean absolute difference {float(difference.mean()):.4f}" in out
    assert main(["photo", "--vae", "photos-spatial", "--sizes", "50"]) == 2
    assert "--sizes 50 is not a multiple of photos-spatial's factor 4; pass multiples of 4." in capsys.readouterr().err
    assert main(["photo", "--vae", str(folder), "--sizes", "1032"]) == 0
    assert "1032x1032: not run (over 1 megapixels; add --tiled)" in capsys.readouterr().out
