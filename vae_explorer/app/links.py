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
