"""What a shared link carries: the URL's query parameters read into a page's widgets and values
(each parsed, a value that cannot be used ignored or said in one line) and written back, so a view
can be shared as a link."""

from __future__ import annotations

import numpy as np
import streamlit as st

from . import safety


def from_url(key: str, parse, **default) -> dict:
    """Seed the widget `key` from the URL's ?key=value the first time this session meets it.

    `parse` turns the text into a valid widget value (raising ValueError otherwise; a bad value
    is ignored). Returns the keyword giving the widget its default (e.g. value=3 or index=0),
    or nothing when the session already holds its value, which Streamlit would otherwise warn about.
    """
    if key not in st.session_state and key in st.query_params:
        try:
            st.session_state[key] = parse(st.query_params[key])
        except (ValueError, TypeError, IndexError):
            pass
    return {} if key in st.session_state else default


def to_url(**values) -> None:
    """Keep selections in the URL, so the current view can be shared as a link."""
    for key, value in values.items():
        st.query_params[key] = str(value)


def from_link(key: str, parse, default):
    """A value the URL's ?key=... gives a page that is not a widget's (a widget's: from_url): `parse`d
    (ValueError, TypeError or IndexError for text it cannot use), else `default`."""
    try:
        return parse(st.query_params[key]) if key in st.query_params else default
    except (ValueError, TypeError, IndexError):
        return default


def in_range(low: int, high: int):
    """A parser for from_url: an integer from low to high."""

    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise ValueError(text)
        return value

    return parse


def one_of(options):
    """A parser for from_url and from_link: one of `options` (compared as text)."""

    def parse(text: str):
        for option in options:
            if str(option) == text:
                return option
        raise ValueError(text)

    return parse


def fraction(text: str) -> float:
    """A parser for from_link: a finite number, clipped to 0 to 1."""
    value = float(text)
    if not np.isfinite(value):
        raise ValueError(text)
    return min(max(value, 0.0), 1.0)


def z_to_link(z) -> str:
    """A latent vector as a link's ?z= (two places: what the sliders show)."""
    return ",".join(f"{v:.2f}" for v in z)


def z_from_link(
    text: str | None, dim: int, model_name: str, low: float = -3.0, high: float = 3.0
) -> tuple[np.ndarray, str | None]:
    """A latent vector from a shared link's ?z=v1,v2,... and, when it cannot be used as it is,
    the one line that says what was done instead (zeros, or values set to the sliders' ends)."""
    if not text:
        return np.zeros(dim), None
    try:
        values = np.array([float(v) for v in text.split(",")])
    except ValueError:
        return np.zeros(
            dim
        ), "The z in this link could not be read (it should be numbers separated by commas); starting from zero."
    if len(values) != dim:
        return np.zeros(dim), (
            f"The z in this link has {len(values)} value{'s' if len(values) != 1 else ''}, but {safety.plain(model_name)} has "
            f"{dim} latent dimensions; starting from zero."
        )
    if not np.isfinite(values).all():
        return np.zeros(
            dim
        ), "The z in this link holds values that are not finite numbers (nan or inf); starting from zero."
    clipped = np.clip(values, low, high)
    if (clipped != values).any():
        return clipped, f"Values of the z in this link outside {low:g} to {high:g} were set to the sliders' ends."
    return values, None


MAX_LINKED_VALUES = 4096  # a spatial latent a link carries: 4 x 32 x 32 (photos-spatial on a 128 x 128 photo)


def latent_to_link(z: np.ndarray) -> str | None:
    """A spatial latent (C, h, w) as a link's ?ld_z=: "CxHxWxSCALE." then its values as int8 steps of SCALE
    (the largest |value| / 127), deflated, in URL-safe base64; about 5 KB for 4,096 values, so the address
    stays under what a reverse proxy takes (nginx: 8 KB a line). None when it has more than MAX_LINKED_VALUES."""
    import base64
    import zlib

    if z.size > MAX_LINKED_VALUES:
        return None
    scale = max(float(np.abs(z).max()), 1e-6) / 127
    steps = np.clip(np.round(z / scale), -127, 127).astype(np.int8)
    payload = base64.urlsafe_b64encode(zlib.compress(steps.tobytes(), 9)).decode("ascii").rstrip("=")
    return "x".join(str(n) for n in z.shape) + f"x{scale:.9g}." + payload


def latent_from_link(text: str, channels: int, vae_name: str) -> tuple[np.ndarray | None, str | None]:
    """The latent (C, h, w) a link's ?ld_z= carries, or None and the one line that says why it cannot be
    used (unreadable, too large, or made for a VAE with another number of channels)."""
    import base64
    import binascii
    import zlib

    unreadable = "The latent in this link could not be read (it was cut short or changed); upload a photo instead."
    head, _, payload = str(text).rpartition(".")  # the base64 has no "."; the scale may
    parts = head.split("x")
    try:
        c, h, w = (int(v) for v in parts[:3])
        scale = float(parts[3])
    except (ValueError, IndexError):
        return None, unreadable
    if len(parts) != 4 or min(c, h, w) < 1 or not (np.isfinite(scale) and scale > 0):
        return None, unreadable
    if c * h * w > MAX_LINKED_VALUES:
        return (
            None,
            f"The latent in this link has more than the {MAX_LINKED_VALUES:,} values a link carries; upload a photo instead.",
        )
    if c != channels:
        return None, (
            f"The latent in this link has {c} channels, but {safety.plain(vae_name)} has {channels}; pick the VAE "
            "it was made with, or upload a photo."
        )
    try:
        packed = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        inflate = zlib.decompressobj()
        raw = inflate.decompress(packed, c * h * w + 1)  # never more than the latent's size, whatever it claims
    except (binascii.Error, ValueError, zlib.error):
        return None, unreadable
    if len(raw) != c * h * w:
        return None, unreadable
    return np.frombuffer(raw, np.int8).astype(np.float32).reshape(c, h, w) * np.float32(scale), None
