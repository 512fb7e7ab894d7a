"""The code keeps one style: `ruff format` wrote its layout and `ruff check` finds nothing (the rules
and line lengths are in pyproject.toml's [tool.ruff])."""

import importlib.util
import subprocess
import sys

from conftest import REPO, require


def ruff(*args: str) -> subprocess.CompletedProcess:
    require(importlib.util.find_spec("ruff") is not None, "ruff (pip install -r requirements.txt)")
    return subprocess.run([sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True)


def test_ruff_finds_nothing():
    result = ruff("check", "--output-format", "concise", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_code_is_as_ruff_format_writes_it():
    result = ruff("format", "--check", ".")
    assert result.returncode == 0, "run `ruff format .`:\n" + result.stdout + result.stderr


def test_the_style_check_sees_a_planted_fault(tmp_path):
    """The check itself: an unused import and an over-long line in a file under the same settings are found."""
    planted = tmp_path / "planted.py"
    planted.write_text("import os\n\nTEXT = '" + "x" * 140 + "'\n")
    result = ruff("check", "--output-format", "concise", "--config", str(REPO / "pyproject.toml"), str(planted))
    assert result.returncode == 1 and "F401" in result.stdout and "E501" in result.stdout, result.stdout
