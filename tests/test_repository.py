"""Checks on files the suite does not otherwise execute: notebooks and the CLI reference."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.name)
def test_notebooks_are_stored_without_outputs(path):
    notebook = json.loads(path.read_text())
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, (
                f"{path.name} has outputs: clear them (jupyter nbconvert --clear-output --inplace)"
            )


def test_notebooks_exist():
    assert [path.name for path in NOTEBOOKS][:1] == ["01_zoo_tour.ipynb"]


def test_cli_reference_matches_help():
    subprocess.run([sys.executable, str(ROOT / "tools" / "gen_cli_docs.py"), "--check"], check=True)
