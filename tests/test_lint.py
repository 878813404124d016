"""The code stays formatted, lint-clean and, in the Django-free inference layer, type-checked."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.services import ROOT


@pytest.mark.parametrize(
    "command",
    [["ruff", "check", "."], ["ruff", "format", "--check", "."], ["mypy"]],
    ids=["ruff-check", "ruff-format", "mypy-inference"],
)
def test_the_tree_passes(command):
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
