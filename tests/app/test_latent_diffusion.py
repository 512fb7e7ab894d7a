"""The Latent diffusion page (pages/10_Latent_diffusion.py) with a tiny random-weight AutoencoderKL
built by diffusers' own class in the folder the server offers: the numbers it shows are those of the
VAE called directly, a visitor never names a folder, and bad photos and folders are one sentence."""

import importlib.util
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import PATIENCE_S, REPO, require, shown
from PIL import Image
from probes import TINY_AUTOENCODER_KL

PAGE = str(REPO / "pages/10_Latent_diffusion.py")
TINY = TINY_AUTOENCODER_KL


@pytest.fixture(scope="module")
def offered(tmp_path_factory):
    """A root folder holding a pipeline with its vae/ folder, and the diffusers model itself."""
    require(importlib.util.find_spec("diffusers") is not None, "diffusers (pip install -r requirements.txt)")
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    model = AutoencoderKL(**TINY).eval()
    root = tmp_path_factory.mktemp("diffusers")
    model.save_pretrained(root / "tiny-pipeline" / "vae", safe_serialization=True)
    return root, model


def run_page(monkeypatch, root, photo: bytes | None = None, name: str = "photo.png", vae: str = "tiny-pipeline"):
    """The page with the diffusers folders under `root` offered (beside the shipped spatial checkpoint),
    the VAE whose name starts with `vae` chosen, and `photo` uploaded."""
    from streamlit.testing.v1 import AppTest

    if root is None:
        monkeypatch.delenv("VAE_EXPLORER_DIFFUSERS_ROOT", raising=False)
    else:
        monkeypatch.setenv("VAE_EXPLORER_DIFFUSERS_ROOT", str(root))
    at = AppTest.from_file(PAGE, default_timeout=PATIENCE_S)
    at.run()
    if at.selectbox and not at.error:
        chosen = [o for o in at.selectbox(key="ld_vae").options if o.startswith(vae)]
        if chosen:
            at.selectbox(key="ld_vae").set_value(chosen[0]).run()
    if photo is not None and not at.error:
        at.file_uploader(key="ld_photo").set_value((name, photo, "image/png")).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_without_an_offered_vae_the_page_says_how_to_offer_one(monkeypatch, tmp_path):
    from vae_explorer.app import catalog

    monkeypatch.setattr(catalog, "SHIPPED_DIR", tmp_path)  # nothing shipped, nothing trained, no diffusers root
    at = run_page(monkeypatch, None)
    assert any("start the app with `vae-explorer app --diffusers-root DIR`" in i.value for i in at.info)


def test_the_shipped_spatial_vae_is_offered_first_and_only_here(monkeypatch, offered):
    from vae_explorer.app import catalog

    root, _ = offered
    at = run_page(monkeypatch, root, vae="")
    assert at.selectbox(key="ld_vae").options == ["photos-spatial  (shipped)", "tiny-pipeline  (diffusers)"]
    assert "photos-spatial" not in [Path(ref.path).name for ref in catalog.available_models()]  # the vector pages'


def test_a_photo_through_the_offered_vae_shows_the_vae_s_own_numbers(monkeypatch, offered):
    from vae_explorer.evaluation.fidelity import psnr, ssim

    root, model = offered
    pixels = np.random.default_rng(4).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    at = run_page(monkeypatch, root, png(pixels))
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="ld_vae").value == "tiny-pipeline  (diffusers)"
    x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)
    with torch.no_grad():
        mean = model.encode(x[None] * 2 - 1).latent_dist.mean
        expected = ((model.decode(mean).sample + 1) / 2).clamp(0, 1)[0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["PSNR"] == f"{psnr(x, expected):.2f} dB" and metrics["SSIM"] == f"{ssim(x, expected):.4f}"
    assert metrics["Latent"] == "4 x 12 x 16"
    table = at.table[0].value
    channels = mean[0].double().reshape(4, -1)
    assert list(table["mean"]) == [f"{v:+.2f}" for v in channels.mean(1).tolist()]
    assert list(table["standard deviation"]) == [f"{v:.2f}" for v in channels.std(1, correction=0).tolist()]
    from vae_explorer.latent.spatial import neighbour_correlation

    written = " ".join(m.value for m in at.markdown)
    assert f"neighbouring positions correlate at {neighbour_correlation(mean[0]):.2f}" in written
    at.slider(key="ld_sigma").set_value(1.0).run()
    assert not at.exception and not at.error


def test_bad_photos_and_folders_are_one_sentence(monkeypatch, offered, tmp_path):
    root, _ = offered
    at = run_page(monkeypatch, root, b"not an image", "notes.png")
    assert [shown(e.value) for e in at.error] == [
        "notes.png is not an image this app can read; upload a PNG, JPEG, BMP, WebP or GIF image."
    ]
    other = tmp_path / "root"
    (other / "unet").mkdir(parents=True)
    (other / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    at = run_page(monkeypatch, other, vae="unet")
    (said,) = [shown(e.value) for e in at.error]
    assert said.startswith("unet/config.json describes a UNet2DConditionModel, not an AutoencoderKL")
    assert str(other) not in said  # no server path reaches the browser


def test_a_link_out_of_the_offered_folder_is_not_offered(monkeypatch, offered, tmp_path):
    root, _ = offered
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in ("config.json", "diffusion_pytorch_model.safetensors"):
        (outside / name).write_bytes((root / "tiny-pipeline" / "vae" / name).read_bytes())
    linked = tmp_path / "linked-root"
    linked.mkdir()
    (linked / "sneaky").symlink_to(outside)
    at = run_page(monkeypatch, linked)
    assert at.selectbox(key="ld_vae").options == ["photos-spatial  (shipped)"]


def test_the_page_takes_photos_of_up_to_512_by_512_pixels(monkeypatch, offered):
    root, _ = offered
    at = run_page(monkeypatch, root, png(np.zeros((520, 512, 3), np.uint8)), "wide.png")
    assert [shown(e.value) for e in at.error] == [
        "wide.png is 512x520 pixels; photos of up to 262,144 pixels (0.26 megapixels) go through the VAE here "
        "(larger ones need more memory than one request may use); upload a smaller photo or a crop."
    ]


def test_the_vae_runs_for_one_visitor_at_a_time(monkeypatch):
    """Two sessions decoding at once: the second waits for the first, so the server's peak memory is one
    photo's, not one per student."""
    import threading

    from vae_explorer.app import spatial

    active, most, release = [0], [0], threading.Event()

    class Slow:
        def decode(self, z):
            active[0] += 1
            most[0] = max(most[0], active[0])
            release.wait(PATIENCE_S)
            active[0] -= 1
            return torch.zeros(1, 3, 2, 2)

    monkeypatch.setattr(spatial, "_load", lambda which: Slow())
    threads = [
        threading.Thread(target=spatial.decode_prior, args=(spatial.Offered("f", 0.0), (4, 1, 1), seed), daemon=True)
        for seed in (1, 2)
    ]
    for thread in threads:
        thread.start()
    for _ in range(100):  # let the second reach the lock while the first decodes
        threading.Event().wait(0.01)
    assert most[0] == 1
    release.set()
    for thread in threads:
        thread.join(PATIENCE_S)
    assert most[0] == 1 and active[0] == 0


def test_the_walk_between_two_photos_decodes_the_interpolated_latents(monkeypatch, offered):
    """A second photo of another size is resized to the first's; the middle picture is diffusers' decode of
    the slerp, position by position, of the two latent means (computed here with the diffusers model)."""
    from pictures import Media

    from vae_explorer.latent.spatial import interpolate_latents

    root, model = offered
    media = Media(monkeypatch)
    rng = np.random.default_rng(10)
    first, second = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8), rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    at = run_page(monkeypatch, root, png(first))
    at.file_uploader(key="ld_other").set_value(("second.png", png(second), "image/png")).run()
    at.radio(key="ld_path").set_value("slerp").run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    resized = np.asarray(Image.fromarray(second).resize((24, 16), Image.Resampling.LANCZOS))
    means = []
    for pixels in (first, resized):
        x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)
        with torch.no_grad():
            means.append(model.encode(x[None] * 2 - 1).latent_dist.mean[0])
    with torch.no_grad():
        z = interpolate_latents(means[0], means[1], 0.5, "slerp")
        expected = ((model.decode(z[None]).sample + 1) / 2).clamp(0, 1)[0]
    shown_pixels = media.image(at, "t = 0.50 of the way (slerp), decoded")
    expected_pixels = (expected.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert shown_pixels.shape == expected_pixels.shape
    assert np.abs(shown_pixels.astype(int) - expected_pixels.astype(int)).max() <= 1


def test_a_piece_of_the_second_latent_pasted_into_the_first_is_decoded_as_the_vae_decodes_it(monkeypatch, offered):
    from pictures import Media

    from vae_explorer.latent.spatial import paste_patch

    root, model = offered
    media = Media(monkeypatch)
    rng = np.random.default_rng(11)
    first, second = rng.integers(0, 256, (16, 24, 3), dtype=np.uint8), rng.integers(0, 256, (16, 24, 3), dtype=np.uint8)
    at = run_page(monkeypatch, root, png(first))
    at.file_uploader(key="ld_other").set_value(("second.png", png(second), "image/png")).run()
    at.slider(key="ld_top").set_value(2).run()
    at.slider(key="ld_left").set_value(3).run()
    at.slider(key="ld_tall").set_value(4).run()
    at.slider(key="ld_wide").set_value(5).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    means = []
    for pixels in (first, second):
        x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)
        with torch.no_grad():
            means.append(model.encode(x[None] * 2 - 1).latent_dist.mean[0])
    with torch.no_grad():
        z = paste_patch(means[0], means[1], 2, 3, 4, 5)
        expected = ((model.decode(z[None]).sample + 1) / 2).clamp(0, 1)[0]
    caption = "the first photo's latent with rows 2-5, columns 3-7 of the second's, decoded"
    expected_pixels = (expected.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.abs(media.image(at, caption).astype(int) - expected_pixels.astype(int)).max() <= 1
    with torch.no_grad():
        first_recon = ((model.decode(means[0][None]).sample + 1) / 2).clamp(0, 1)[0]
    changed = ((expected - first_recon).abs().amax(0) > 2 / 255).numpy()
    inside = np.zeros_like(changed)
    inside[4:12, 6:16] = True  # rows 2-5 and columns 3-7 of latent positions, 2 x 2 pixels each
    said = f"{100 * changed[~inside].mean():.1f}% of the pixels outside the box differ from the first photo's"
    assert any(said in m.value for m in at.markdown), [m.value for m in at.markdown]


def shipped_spatial():
    from vae_explorer import load_checkpoint

    return load_checkpoint(REPO / "checkpoints" / "photos-spatial").model


def painter_calls(monkeypatch) -> list[dict]:
    """What the page hands the painter component at each run (its arguments by name)."""
    import inspect

    from vae_explorer.app import live

    calls = []
    signature = inspect.signature(live.latent_painter)
    monkeypatch.setattr(live, "latent_painter", lambda *a, **k: calls.append(dict(signature.bind(*a, **k).arguments)))
    return calls


def test_the_shipped_spatial_vae_reconstructs_a_photo_it_never_saw_as_the_model_does(monkeypatch):
    """scikit-learn's china.jpg (not among the photos it was trained on) through photos-spatial: the page's
    PSNR is the model's own reconstruction's, at the photo's size, cut to multiples of 8."""
    from sklearn.datasets import load_sample_image

    from vae_explorer.evaluation.fidelity import psnr

    pixels = load_sample_image("china.jpg")[100:300, 150:390]  # 200 x 240
    at = run_page(monkeypatch, None, png(pixels), vae="photos-spatial")
    assert not at.error, [e.value for e in at.error]
    model = shipped_spatial()
    x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)
    expected = model.generate(model.encode(x[None]).mean)[0]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["PSNR"] == f"{psnr(x, expected):.2f} dB" and metrics["Latent"] == "4 x 50 x 60"
    assert "no scaling factor" in " ".join(c.value for c in at.caption)


def test_painting_on_a_channel_is_decoded_on_the_server_as_the_model_decodes_the_painted_latent(monkeypatch):
    """The dabs the browser sends (channel, row, col, radius, amount) are painted with the brush computed
    here, (1 - d^2 / R^2)^2 within R, and the picture the page hands back is the model's decode of it."""
    calls = painter_calls(monkeypatch)
    pixels = np.random.default_rng(5).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    at = run_page(monkeypatch, None, png(pixels), vae="photos-spatial")
    first = calls[-1]
    assert first["dabs"] == [] and first["reach"] >= 1 and first["factor"] == 4
    dabs = [[0, 1.5, 2.0, 2.0, 2.5], [2, 3.0, 4.25, 1.0, -1.5]]
    at.session_state["ld_paint"] = {"dabs": {"version": first["version"], "dabs": dabs, "seq": 1}}
    at.run()
    assert not at.exception and not at.error
    painted = calls[-1]
    assert painted["dabs"] == [tuple(d) for d in dabs] and painted["seq"] == 1
    z = torch.from_numpy(first["latent"].copy())
    rows, cols = np.mgrid[0 : z.shape[1], 0 : z.shape[2]]
    for channel, row, col, radius, amount in dabs:
        bump = np.clip(1 - ((rows - row) ** 2 + (cols - col) ** 2) / radius**2, 0, None) ** 2
        z[channel] += torch.from_numpy(amount * bump).float()
    expected = (shipped_spatial().generate(z[None])[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.abs(painted["image"].astype(int) - expected.astype(int)).max() <= 1
    assert np.abs(first["image"].astype(int) - expected.astype(int)).max() > 10  # the painting shows


@pytest.mark.parametrize(
    "dabs",
    [
        [[7, 1.0, 1.0, 2.0, 1.0]],  # a channel the latent does not have
        [[0, float("nan"), 1.0, 2.0, 1.0]],
        [[0, 1.0, 1.0, 2.0, 1e9]],
        [[0, 1.0, 1.0, 2.0]],
        [[0, 1.0, 1.0, 2.0, 1.0]] * 6000,  # more than a painting holds
        "not a list",
        [[-1, 1.0, 1.0, 2.0, 1.0]],  # copying, with no second photo to copy from
        [[0, 10**400, 1.0, 2.0, 1.0]],  # an integer no float holds
    ],
    ids=["channel", "nan", "amount", "short", "too many", "text", "copy", "huge"],
)
def test_dabs_a_page_cannot_make_are_left_out(monkeypatch, dabs):
    calls = painter_calls(monkeypatch)
    at = run_page(monkeypatch, None, png(np.zeros((16, 16, 3), np.uint8)), vae="photos-spatial")
    at.session_state["ld_paint"] = {"dabs": {"version": calls[-1]["version"], "dabs": dabs, "seq": 4}}
    at.run()
    assert not at.exception and not at.error
    assert calls[-1]["dabs"] == [] and np.array_equal(calls[-1]["image"], calls[0]["image"])


def test_two_vaes_on_a_set_of_photos_give_each_model_s_own_numbers_and_the_worst_first(monkeypatch, offered):
    """The shipped photos-spatial (factor 4) against the tiny diffusers VAE (factor 2) on three photos and a
    file that is not one: each photo cropped to multiples of 4 for both, each PSNR and SSIM that of the model
    called here, the count of photos the second gives back better, the gallery ordered by the lower PSNR."""
    from pictures import Media

    from vae_explorer.app.safety import plain
    from vae_explorer.evaluation.fidelity import psnr, ssim

    root, diffusers_model = offered
    media = Media(monkeypatch)
    rng = np.random.default_rng(21)
    photos = {
        "noise.png": rng.integers(0, 256, (18, 22, 3), dtype=np.uint8),
        "flat.png": np.full((16, 20, 3), 120, np.uint8),
        "ramp.png": np.repeat(np.linspace(0, 255, 24, dtype=np.uint8)[None, :, None], 12, 0).repeat(3, 2),
    }
    at = run_page(monkeypatch, root, png(photos["flat.png"]), vae="photos-spatial")
    at.selectbox(key="ld_vae_b").set_value("tiny-pipeline  (diffusers)").run()
    files = [(n, png(p), "image/png") for n, p in photos.items()] + [("notes.png", b"not an image", "image/png")]
    at.file_uploader(key="ld_set").set_value(files).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert [w.value for w in at.warning] == ["Left out: notes.png is not an image this app can read."]
    spatial_model = shipped_spatial()
    expected = {}
    for photo_name, pixels in photos.items():
        h, w = pixels.shape[0] // 4 * 4, pixels.shape[1] // 4 * 4
        top, left = (pixels.shape[0] - h) // 2, (pixels.shape[1] - w) // 2
        x = torch.from_numpy(pixels[top : top + h, left : left + w].astype(np.float32) / 255).permute(2, 0, 1)
        with torch.no_grad():
            ours = spatial_model.generate(spatial_model.encode(x[None]).mean)[0]
            mean = diffusers_model.encode(x[None] * 2 - 1).latent_dist.mean
            theirs = ((diffusers_model.decode(mean).sample + 1) / 2).clamp(0, 1)[0]
        expected[photo_name] = (psnr(x, ours), psnr(x, theirs), ssim(x, ours), ssim(x, theirs))
    table = at.table[-1].value
    assert list(table["photo"]) == [plain(n) for n in photos]  # cells are markdown: names shown as typed
    for i, photo_name in enumerate(photos):
        a, b, c, d = expected[photo_name]
        assert table.iloc[i, 1:].tolist() == [f"{a:.2f}", f"{b:.2f}", f"{c:.4f}", f"{d:.4f}"]
    better = sum(v[1] > v[0] for v in expected.values())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["tiny-pipeline higher on"] == f"{better} of 3"
    worst = sorted(photos, key=lambda n: min(expected[n][:2]))
    assert [c for c, _ in media.images(at) if c in {plain(n) for n in photos}] == [plain(n) for n in worst]


def test_tiled_the_page_reconstructs_as_diffusers_tiling_does_and_takes_larger_photos(monkeypatch, offered):
    """With the Tiled toggle on, a 40 x 56 photo (larger than the tiny VAE's 32-pixel tiles) is reconstructed
    as diffusers' own tiled model reconstructs it, which differs from the untiled one; a photo over 512 x 512
    pixels is refused untiled and taken tiled. Our own VAE has no toggle."""
    import copy

    from vae_explorer.evaluation.fidelity import psnr

    root, model = offered
    pixels = np.random.default_rng(8).integers(0, 256, (40, 56, 3), dtype=np.uint8)
    at = run_page(monkeypatch, root)
    at.toggle(key="ld_tiled").set_value(True).run()
    at.file_uploader(key="ld_photo").set_value(("photo.png", png(pixels), "image/png")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    x = torch.from_numpy(pixels.astype(np.float32) / 255).permute(2, 0, 1)
    tiled = copy.deepcopy(model)
    tiled.enable_tiling()
    psnr_shown = {m.label: m.value for m in at.metric}["PSNR"]
    with torch.no_grad():
        for reference, same in ((tiled, True), (model, False)):
            mean = reference.encode(x[None] * 2 - 1).latent_dist.mean
            expected = ((reference.decode(mean).sample + 1) / 2).clamp(0, 1)[0]
            assert (psnr_shown == f"{psnr(x, expected):.2f} dB") is same
    large = png(np.zeros((520, 560, 3), np.uint8))
    at.file_uploader(key="ld_photo").set_value(("large.png", large, "image/png")).run()
    assert not at.error and {m.label: m.value for m in at.metric}["Latent"] == "4 x 260 x 280"
    at.toggle(key="ld_tiled").set_value(False).run()
    assert [shown(e.value) for e in at.error][0].startswith("large.png is 560x520 pixels; photos of up to 262,144")
    at = run_page(monkeypatch, root, vae="photos-spatial")
    assert "ld_tiled" not in [t.key for t in at.toggle]


def unpack_link(text: str) -> np.ndarray:
    """A link's ?ld_z= read here without the app's code: CxHxWxSCALE, a dot, deflated int8 steps in base64."""
    import base64
    import zlib

    head, payload = text.rsplit(".", 1)
    c, h, w, scale = head.split("x")
    raw = zlib.decompress(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return np.frombuffer(raw, np.int8).reshape(int(c), int(h), int(w)).astype(np.float32) * np.float32(float(scale))


def test_a_painted_latent_goes_into_a_link_and_the_link_opens_it_decoded(monkeypatch):
    from pictures import Media
    from streamlit.testing.v1 import AppTest

    calls = painter_calls(monkeypatch)
    pixels = np.random.default_rng(6).integers(0, 256, (32, 40, 3), dtype=np.uint8)
    at = run_page(monkeypatch, None, png(pixels), vae="photos-spatial")
    dabs = [[1, 3.0, 4.0, 2.0, 2.5]]
    at.session_state["ld_paint"] = {"dabs": {"version": calls[-1]["version"], "dabs": dabs, "seq": 1}}
    at.run()
    at.button(key="ld_share").click().run()
    assert not at.exception and not at.error
    link = at.query_params["ld_z"][0] if isinstance(at.query_params["ld_z"], list) else at.query_params["ld_z"]
    painted = calls[-1]["latent"].copy()
    rows, cols = np.mgrid[0 : painted.shape[1], 0 : painted.shape[2]]
    painted[1] += 2.5 * np.clip(1 - ((rows - 3.0) ** 2 + (cols - 4.0) ** 2) / 4.0, 0, None) ** 2
    carried = unpack_link(link)
    assert carried.shape == (4, 8, 10) and np.abs(carried - painted).max() <= np.abs(painted).max() / 127 / 2 + 1e-6
    assert len(link) < 8000  # under a reverse proxy's 8 KB a line

    media = Media(monkeypatch)
    shared = AppTest.from_file(PAGE, default_timeout=PATIENCE_S)
    shared.query_params["ld_vae"] = "photos-spatial"
    shared.query_params["ld_z"] = link
    shared.run()
    assert not shared.exception and not shared.error and not shared.warning
    model = shipped_spatial()
    with torch.no_grad():
        expected = model.generate(torch.from_numpy(carried)[None])[0].permute(1, 2, 0).numpy()
    shown_pixels = media.image(shared, "the latent this link carries (4 x 8 x 10), decoded")
    assert np.abs(shown_pixels.astype(int) - (expected * 255 + 0.5).astype(np.uint8).astype(int)).max() <= 1


@pytest.mark.parametrize(
    "query, said",
    [
        (
            {"ld_z": "3x8x10x0.01." + "AAAA"},
            "The latent in this link has 3 channels, but photos-spatial has 4; pick the VAE",
        ),
        ({"ld_z": "4x8x10x0.01.!!!"}, "The latent in this link could not be read (it was cut short or changed)"),
        ({"ld_z": "4x8x10xnan.AAAA"}, "The latent in this link could not be read"),
        ({"ld_z": "4x100x100x0.1.AAAA"}, "The latent in this link has more than the 4,096 values a link carries"),
        (
            {"ld_vae": "sd-xl", "ld_z": "4x8x10x0.1.AAAA"},
            "This link asks for a VAE called sd-xl, which this server does",
        ),
    ],
    ids=["channels", "base64", "scale", "size", "vae"],
)
def test_a_link_s_latent_that_cannot_be_used_is_one_sentence(monkeypatch, query, said):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=PATIENCE_S)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    assert not at.exception and not at.error
    assert any(shown(w.value).startswith(said) for w in at.warning), [w.value for w in at.warning]


def test_a_link_deflating_to_more_than_its_latent_is_refused_without_inflating_it(monkeypatch):
    import base64
    import zlib

    from vae_explorer.app.links import latent_from_link

    bomb = "4x8x10x0.1." + base64.urlsafe_b64encode(zlib.compress(b"\0" * 50_000_000)).decode()
    assert len(bomb) < 70_000
    assert latent_from_link(bomb, 4, "photos-spatial") == (
        None,
        "The latent in this link could not be read (it was cut short or changed); upload a photo instead.",
    )


def test_a_latent_too_large_for_a_link_is_said_and_not_put_in_the_address(monkeypatch):
    at = run_page(monkeypatch, None, png(np.zeros((160, 160, 3), np.uint8)), vae="photos-spatial")
    at.button(key="ld_share").click().run()
    assert "ld_z" not in at.query_params
    assert any(
        i.value.startswith("This latent has 6,400 values; a link carries up to 4,096, so crop the photo")
        for i in at.info
    )


def test_the_copying_brush_moves_the_first_latent_to_the_second_s_where_it_paints(monkeypatch):
    """With a second photo, a dab of channel -1 moves every channel (1 - d^2/R^2)^2 of the way to the second
    photo's latent (computed here); the page decodes that latent as the model does."""
    calls = painter_calls(monkeypatch)
    rng = np.random.default_rng(9)
    first, second = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8), rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    at = run_page(monkeypatch, None, png(first), vae="photos-spatial")
    at.file_uploader(key="ld_other").set_value(("second.png", png(second), "image/png")).run()
    start = calls[-1]
    assert start["source"] is not None and start["dabs"] == []
    dabs = [[-1, 3.0, 5.0, 2.5, 1.0], [2, 1.0, 1.0, 1.5, -2.0]]
    at.session_state["ld_paint"] = {"dabs": {"version": start["version"], "dabs": dabs, "seq": 2}}
    at.run()
    assert not at.exception and not at.error
    model = shipped_spatial()
    with torch.no_grad():
        a, b = (
            model.encode(torch.from_numpy(x.astype(np.float32) / 255).permute(2, 0, 1)[None]).mean[0]
            for x in (first, second)
        )
    z = a.numpy().copy()
    rows, cols = np.mgrid[0 : z.shape[1], 0 : z.shape[2]]
    bump = lambda r, c, radius: np.clip(1 - ((rows - r) ** 2 + (cols - c) ** 2) / radius**2, 0, None) ** 2  # noqa: E731
    z += bump(3.0, 5.0, 2.5) * (b.numpy() - z)
    z[2] += -2.0 * bump(1.0, 1.0, 1.5)
    expected = (model.generate(torch.from_numpy(z).float()[None])[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(
        np.uint8
    )
    assert np.abs(calls[-1]["image"].astype(int) - expected.astype(int)).max() <= 1
