"""Property-based tests (hypothesis): whatever a person uploads or writes in a config, the answer
is a valid result or the project's own error with a message, never a crash."""

import io

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from vae_explorer.config import SECTIONS, config_from_dict
from vae_explorer.data.uploads import ImageError, prepare_image
from vae_explorer.errors import ConfigError

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-5, 5000), max_size=4),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)
keys = st.sampled_from(
    [f.name for cls in SECTIONS.values() for f in cls.__dataclass_fields__.values()] + ["unknown", "lr ", ""]
)
configs = st.dictionaries(
    st.sampled_from(list(SECTIONS) + ["extra"]),
    st.one_of(st.dictionaries(keys, values, max_size=4), values),
    max_size=3,
)


@SETTINGS
@given(configs)
def test_any_config_is_accepted_or_refused_with_a_config_error(raw):
    try:
        config = config_from_dict(raw, "fuzz.yaml")
    except ConfigError as exc:
        message = str(exc)
        assert (
            message.startswith("fuzz.yaml")
            and message.endswith((".", "?"))
            or "did you mean" in message
            or "known keys" in message
        )
        return
    assert 1 <= config.model.latent_dim <= 128 and config.train.lr > 0 and config.train.epochs >= 1


@SETTINGS
@given(st.binary(max_size=2048))
def test_any_bytes_give_an_image_or_an_image_error(data):
    try:
        x = prepare_image(data, (1, 28, 28), name="fuzz.bin")
    except ImageError as exc:
        assert "fuzz.bin" in str(exc) or "empty" in str(exc)
        return
    assert x.shape == (1, 28, 28)


@SETTINGS
@given(
    width=st.integers(2, 300),
    height=st.integers(2, 300),
    mode=st.sampled_from(["L", "RGB", "RGBA", "LA", "P", "1", "I;16", "CMYK"]),
    fmt=st.sampled_from(["PNG", "JPEG", "BMP", "GIF", "WEBP", "TIFF"]),
    channels=st.sampled_from([1, 3]),
    size=st.sampled_from([8, 28, 32, 64]),
    invert=st.sampled_from(["auto", True, False]),
    center=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_any_picture_becomes_what_the_model_expects(width, height, mode, fmt, channels, size, invert, center, seed):
    rng = np.random.default_rng(seed)
    image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(
        mode if mode != "I;16" else "L"
    )
    if mode == "I;16":
        image = Image.fromarray(np.asarray(image).astype(np.uint16) * 257)
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=fmt)
    except (OSError, ValueError, KeyError):  # that format cannot hold that mode: nothing to test
        return
    x = prepare_image(buffer.getvalue(), (channels, size, size), invert, center, name="fuzz.img")
    assert x.shape == (channels, size, size) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0 and torch.isfinite(x).all()
