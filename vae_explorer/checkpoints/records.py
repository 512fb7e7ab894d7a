"""What a checkpoint's JSON files may hold, read as untrusted: bounded in size and nesting before
they are parsed, and checked in shape and type after, so that a file written by hand (or by an
uploader) can never break a page that reads it.

- `read_json` refuses a file over its size limit or nested deeper than MAX_DEPTH, in one sentence.
- `clean_metrics` and `clean_history` keep what the package writes, in the types it writes them,
  and leave out (with a note saying what) anything else: a page then simply has less to show.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointError

MAX_DEPTH = 32  # a checkpoint's JSON is a few levels deep; a file nested 100,000 deep would exhaust the parser's stack
MAX_JSON_BYTES = {
    "config.json": 2**20,
    "history.json": 8 * 2**20,
    "metrics.json": 2**20,
    "training.json": 2**16,
    "onnx.json": 2**16,
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')


def nesting_depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings not counted)."""
    brackets = re.sub(r"[^\[\]{}]", "", _STRINGS.sub("", text))
    if not brackets:
        return 0
    steps = np.frombuffer(brackets.encode("ascii"), dtype=np.uint8)
    opening = (steps == ord("[")) | (steps == ord("{"))
    return int(np.cumsum(np.where(opening, 1, -1)).max())


def read_json(file: Path, expected_type: type) -> Any:
    """The value in a checkpoint's JSON file; CheckpointError naming the file when it is missing,
    too large, too deeply nested, not JSON or not a `expected_type`."""
    limit = MAX_JSON_BYTES.get(file.name, 2**20)
    try:
        size = file.stat().st_size
        if size > limit:
            raise CheckpointError(
                f"{file} is {size / 2**20:.1f} MB, over the {limit / 2**20:g} MB a checkpoint's {file.name} "
                "may hold; restore it from a copy or train again."
            )
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CheckpointError(f"{file} is missing; the checkpoint is incomplete, so train or copy it again.") from None
    except UnicodeDecodeError:
        raise CheckpointError(f"{file} is corrupt (not UTF-8 text); restore it from a copy or train again.") from None
    if nesting_depth(text) > MAX_DEPTH:
        raise CheckpointError(
            f"{file} is nested more than {MAX_DEPTH} levels deep, which no checkpoint is; restore it from "
            "a copy or train again."
        )
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{file} is corrupt (not valid JSON); restore it from a copy or train again.") from None
    if not isinstance(value, expected_type):
        raise CheckpointError(
            f"{file} holds a {type(value).__name__}, not a {expected_type.__name__}; restore it from a copy or train again."
        )
    return value


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _whole(value: Any, low: int = 0, high: int | None = None) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low and (high is None or value <= high)


def _numbers(value: Any, length: int) -> bool:
    return isinstance(value, list) and len(value) == length and all(_number(v) for v in value)


def _metric_rules(latent_dim: int) -> dict[str, Any]:
    """metrics.json key -> a check of its value, for what `evaluate` and training write."""
    return {
        "neg_elbo": _number,
        "recon": _number,
        "kl": _number,
        "beta_loss": _number,
        "kl_per_dim": lambda v: _numbers(v, latent_dim),
        "active_units": lambda v: _whole(v, 0, latent_dim),
        "n_test": _whole,
        "eval_seed": _whole,
        "iwae_nll": _number,
        "iwae_k": lambda v: _whole(v, 1),
        "elbo_iwae_gap": _number,
        "fid": _number,
        "fid_floor": _number,
        "fid_n": lambda v: _whole(v, 1),
        "fid_classifier": lambda v: (
            isinstance(v, dict)
            and isinstance(v.get("key"), str)
            and len(v["key"]) <= 200
            and _number(v.get("test_accuracy"))
            and _whole(v.get("epochs"))
        ),
        "mig": _number,
        "factor_vae_score": _number,
        "mig_per_factor": lambda v: (
            isinstance(v, dict)
            and len(v) <= 64
            and all(isinstance(k, str) and len(k) <= 64 and _number(x) for k, x in v.items())
        ),
    }


# figures a page shows together: without all of a group, none of it
METRIC_GROUPS = (("neg_elbo", "recon", "kl"), ("iwae_nll", "iwae_k"), ("fid", "fid_floor", "fid_n"))


def clean_metrics(metrics: dict, latent_dim: int, file: str = "metrics.json") -> tuple[dict, list[str]]:
    """The metrics a page can show, and a note for each one left out."""
    rules, kept, left_out = _metric_rules(latent_dim), {}, []
    for key, value in metrics.items():
        if key in rules and rules[key](value):
            kept[key] = value
        else:
            left_out.append(str(key)[:40])
    for group in METRIC_GROUPS:
        if any(k in kept for k in group) and not all(k in kept for k in group):
            left_out += [k for k in group if k in kept]
            for k in group:
                kept.pop(k, None)
    if "elbo_iwae_gap" in kept and "iwae_nll" not in kept:
        left_out.append("elbo_iwae_gap")
        del kept["elbo_iwae_gap"]
    names = sorted(set(left_out))
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    notes = (
        [
            f"{file}: {shown} left out: not what vae-explorer writes there (the Evaluate page or vae-explorer evaluate "
            "computes them again)."
        ]
        if names
        else []
    )
    return kept, notes


HISTORY_REQUIRED = ("epoch", "train_loss", "train_recon", "train_kl", "test_loss", "test_recon", "test_kl")


def _history_rules(latent_dim: int) -> dict[str, Any]:
    return {
        "epoch": lambda v: _whole(v, 1),
        "seconds": _number,
        "beta": _number,
        "lr": _number,
        "train_loss": _number,
        "train_recon": _number,
        "train_kl": _number,
        "test_loss": _number,
        "test_recon": _number,
        "test_kl": _number,
        "train_images": _whole,
        "world_size": lambda v: _whole(v, 1),
        "stopped_at_step": _whole,
        "test_kl_per_dim": lambda v: _numbers(v, latent_dim),
        "test_mu_var": lambda v: _numbers(v, latent_dim),
    }


def clean_history(history: list, latent_dim: int, file: str = "history.json") -> tuple[list, list[str]]:
    """The epoch records as training writes them (keys of other versions left out of each), or []
    and a note when any record is not one."""
    rules, kept = _history_rules(latent_dim), []
    for row in history:
        if (
            not isinstance(row, dict)
            or any(k not in row for k in HISTORY_REQUIRED)
            or any(k in rules and not rules[k](v) for k, v in row.items())
        ):
            return [], [f"{file} does not hold epoch records as vae-explorer writes them; its curves are left out."]
        kept.append({k: v for k, v in row.items() if k in rules})
    return kept, []


TRAINING_RULES = {
    "status": lambda v: v in ("running", "finished", "stopped", "interrupted", "failed"),
    "epochs_done": _whole,
    "target_epochs": _whole,
    "pid": _whole,
    "host": lambda v: isinstance(v, str) and len(v) <= 255,
}


def clean_training(training: dict) -> dict:
    """training.json's keys, those of the types training writes (others are left out)."""
    return {k: v for k, v in training.items() if k in TRAINING_RULES and TRAINING_RULES[k](v)}
