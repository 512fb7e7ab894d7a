"""The Train page's form: one widget per config key, filled from a preset, read back into a
`RunConfig` through the same checks as a YAML file (`config_from_dict`).

Each widget's session-state key is `train__<section>__<key>`; its kind, bounds and choices
come from the config dataclass's field metadata, so the form cannot drift from the configs.
"""

from __future__ import annotations

import typing
from dataclasses import fields
from pathlib import Path

import streamlit as st

from ..config import FILLED_FROM_DATA, SECTIONS, RunConfig, config_from_dict, load_config
from ..errors import ConfigError
from ..models.architectures import SPATIAL_ARCHITECTURES
from ..paths import shipped_configs_dir

REMEMBERED = "train_form_values"


def widget_key(section: str, key: str) -> str:
    return f"train__{section}__{key}"


def _field(section: str, key: str):
    (found,) = [f for f in fields(SECTIONS[section]) if f.name == key]
    hint = typing.get_type_hints(SECTIONS[section])[key]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    optional = type(None) in typing.get_args(hint)
    inner = args[0] if optional else hint
    return found, inner, optional


def presets() -> dict[str, Path]:
    """The shipped configs the form starts from: those of vector-latent models, which the Train page shows."""
    return {
        path.stem: path
        for path in sorted(shipped_configs_dir().glob("*.yaml"))
        if load_config(path).model.architecture not in SPATIAL_ARCHITECTURES
    }


def load_preset(config: RunConfig, only_missing: bool = False) -> None:
    """Put a config's values into the form's widgets (before they are drawn); with `only_missing`,
    only into those the session does not hold yet."""
    raw = config.to_dict()
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            if (section, f.name) in FILLED_FROM_DATA or (
                only_missing and widget_key(section, f.name) in st.session_state
            ):
                continue
            value = raw[section][f.name]
            _, inner, _ = _field(section, f.name)
            if typing.get_origin(inner) is list:
                value = ", ".join(str(v) for v in value) if value else ""
            elif value is None and inner is str:
                value = ""
            st.session_state[widget_key(section, f.name)] = value


def ensure_defaults(preset: str) -> None:
    """Fill the form from `preset` the first time the page is drawn in a session (and any key that
    went missing since: Streamlit forgets a widget's value on a page it is not drawn on)."""
    for key, value in st.session_state.get(REMEMBERED, {}).items():  # the values last submitted
        st.session_state.setdefault(key, value)
    load_preset(load_config(presets()[preset]), only_missing=True)


def remember() -> None:
    """Keep the submitted values under a plain key, which survives visits to other pages."""
    st.session_state[REMEMBERED] = {
        widget_key(s, k): st.session_state[widget_key(s, k)]
        for s, k in form_keys()
        if widget_key(s, k) in st.session_state
    }


def field_widget(
    container, section: str, key: str, label: str, help: str | None = None, suggestions: list | None = None, **options
):
    """The widget for config key `section.key`: checkbox, selectbox, number or text, from its type and rules.

    With `suggestions`, a text key becomes a selectbox of those values that also takes a typed one.
    """
    f, inner, optional = _field(section, key)
    rules = dict(f.metadata)
    name = widget_key(section, key)
    if suggestions is not None:
        current = st.session_state.get(name)
        choices = list(suggestions) + ([current] if current and current not in suggestions else [])
        return container.selectbox(label, choices, key=name, help=help, **{"accept_new_options": True, **options})
    if inner is bool:
        return container.checkbox(label, key=name, help=help)
    if "choices" in rules:
        return container.selectbox(label, rules["choices"], key=name, help=help, **options)
    if typing.get_origin(inner) is list or inner is str:
        return container.text_input(label, key=name, help=help, **options)
    bounds = {"min_value": rules.get("min"), "max_value": rules.get("max")}
    if inner is int:
        return container.number_input(
            label, step=1, key=name, help=help, **{k: int(v) for k, v in bounds.items() if v is not None}, **options
        )
    return container.number_input(
        label, key=name, help=help, format="%g", **{k: float(v) for k, v in bounds.items() if v is not None}, **options
    )


def _parse_list(text: str, section: str, key: str) -> list[int] | None:
    parts = [p for p in text.replace(";", ",").replace(" ", ",").split(",") if p]
    if not parts:
        return None
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise ConfigError(
            f"Train form: {section}.{key} must be whole numbers separated by commas, got {text!r}; "
            "write it like 256, 128."
        ) from None


def config_from_form() -> RunConfig:
    """The form's values as a checked `RunConfig`; ConfigError names the field and the fix."""
    raw: dict[str, dict] = {section: {} for section in SECTIONS}
    for section, cls in SECTIONS.items():
        for f in fields(cls):
            if (section, f.name) in FILLED_FROM_DATA or widget_key(section, f.name) not in st.session_state:
                continue
            value = st.session_state[widget_key(section, f.name)]
            _, inner, optional = _field(section, f.name)
            if typing.get_origin(inner) is list:
                value = _parse_list(str(value), section, f.name)
                if value is None and not optional:
                    raise ConfigError(f"Train form: {section}.{f.name} is empty; write sizes like 256, 128.")
            elif inner is str and optional and not str(value).strip():
                value = None
            elif isinstance(value, str):
                value = value.strip()
            if value is None and not optional:
                raise ConfigError(f"Train form: {section}.{f.name} is empty; fill it in.")
            raw[section][f.name] = value
    config = config_from_dict(raw, "Train form")
    if config.model.architecture in SPATIAL_ARCHITECTURES:
        raise ConfigError(
            f"Train form: model.architecture {config.model.architecture} makes a latent map, which this page cannot "
            "show while it trains; train it with `vae-explorer train` and open it on the Latent diffusion page."
        )
    from ..training import check_capture, resolve_device  # before a job starts: the devices of this server

    check_capture(config.train, resolve_device(config.train.device))
    return config


def form_keys() -> set[tuple[str, str]]:
    """Every config key the form must offer (all of them but those filled in from the dataset)."""
    return {(s, f.name) for s, cls in SECTIONS.items() for f in fields(cls)} - FILLED_FROM_DATA
