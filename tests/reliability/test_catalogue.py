"""Every bad input of the catalogue gives one `Error:` line naming it, a non-zero exit, no traceback
and nothing written under the output path (docs/BAD_INPUTS.md lists the same cases)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.reliability.catalogue import CASES, resolve
from tests.reliability.inputs import make_bad_inputs
from zoo.cli import main

DOC = Path(__file__).resolve().parents[2] / "docs" / "BAD_INPUTS.md"


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> Path:
    return make_bad_inputs(tmp_path_factory.mktemp("bad"))


def _params():
    for case in CASES:
        marks = [pytest.mark.xfail(strict=True, reason=case.xfail)] if case.xfail else []
        yield pytest.param(case, id=case.id, marks=marks)


def assert_one_line_error(result, words, exit_code) -> None:
    """Exit code as expected, no traceback, exactly one `Error:` line holding every word."""
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"escaped {type(result.exception).__name__}: {result.exception}"
    )
    assert result.exit_code == exit_code, (result.exit_code, output)
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    missing = [word for word in words if word not in errors[0]]
    assert not missing, f"{missing} not in {errors[0]!r}"


def assert_nothing_written(out: Path) -> None:
    """No file at or under the output, nor a temporary one beside it (`.name.*`, `name.failed.*`).

    An empty run directory is tolerated: `zoo finetune --from BAD.keras` creates it before the
    model file is read (harmless: an empty --out is reused as is).
    """
    files = [p for p in out.rglob("*") if p.is_file()] if out.is_dir() else []
    assert not files and not out.is_file(), f"written: {files or out}"
    if out.parent.is_dir():
        leftovers = [
            p.name for p in out.parent.iterdir() if p != out and out.name.split(".")[0] in p.name
        ]
        assert not leftovers, f"left beside {out.name}: {leftovers}"


@pytest.mark.parametrize("case", _params())
def test_bad_input_is_one_line_error(case, bad, tmp_path):
    out = tmp_path / "out" / "artefact.onnx"
    argv, words = resolve(case, str(bad), str(out))
    result = CliRunner().invoke(main, argv)
    assert_one_line_error(result, words, case.exit_code)
    assert_nothing_written(out)


def test_catalogue_is_large_and_documented():
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 30
    for tool in ("info", "list", "finetune", "convert", "bench"):
        assert any(case.args[0] == tool for case in CASES), tool
    documented = set(re.findall(r"\| `([a-z0-9-]+)` \|", DOC.read_text()))
    assert set(ids) <= documented, f"not in docs/BAD_INPUTS.md: {sorted(set(ids) - documented)}"


def test_corrupt_image_among_good_ones_is_skipped_with_a_count(bad, tmp_path):
    """Not an error: one truncated PNG (and a README) among 12 images is skipped and counted."""
    import json

    from tests.reliability.catalogue import TINY

    out = tmp_path / "run"
    args = ["finetune", *TINY, "--data", str(bad / "one_corrupt_image"), "--out", str(out)]
    with pytest.warns(UserWarning) as caught:
        result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    messages = [str(w.message) for w in caught if "skipping" in str(w.message)]
    assert len(messages) == 1, messages  # one line for every skipped file
    assert "skipping 2 of 14 files: 1 corrupt or truncated image(s), 1 non-image" in messages[0]
    assert "truncated.png" in messages[0] and "README.txt" in messages[0]
    examples = json.loads((out / "metrics.json").read_text())["examples"]
    assert examples["train"] + examples["val"] == 12  # 6 + 6 good images, the bad one left out


def test_cli_prints_each_warning_on_one_line():
    from zoo.cli import _one_line_warning

    line = _one_line_warning(
        UserWarning("photos: skipping 1 corrupt image\nmore"), UserWarning, "x.py", 1
    )
    assert line == "Warning: photos: skipping 1 corrupt image\n"
