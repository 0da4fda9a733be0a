"""`zoo finetune` through click: one-line errors, refusal to clobber, config files, --list-data."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from finetune.cli import finetune_command


def _invoke(*args):
    return CliRunner().invoke(finetune_command, list(args))


def _assert_one_line_error(result, words):
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and words in errors[0], result.output


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model", "no_such_model"], "Unknown model 'no_such_model'"),
        (["--data", "/no/such/folder"], "no such directory"),
        (["--data", "missing.npz"], "no such file"),
        (["--epochs", "-2"], "epochs should be an int >= 1"),
        (["--lr", "-1"], "lr should be a positive number"),
        (["--batch-size", "-8"], "batch_size should be an int >= 1"),
        (["--precision", "float8"], "'float8' is not one of"),
        (["--unfreeze", "top"], "unfreeze should be 'all'"),
        (["--option", "dropout"], "should be KEY=VALUE"),
    ],
)
def test_bad_inputs_are_one_line_errors(tmp_path, args, words):
    result = _invoke(*args, "--out", str(tmp_path / "run"))
    _assert_one_line_error(result, words)
    assert not (tmp_path / "run").exists()  # nothing written for a bad command


def test_refuses_a_non_empty_run_dir(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    result = _invoke("--out", str(tmp_path), "--epochs", "1")
    _assert_one_line_error(result, "is not empty: pass --resume")
    assert (tmp_path / "keep.txt").read_text() == "precious"


def test_list_data_and_help():
    listed = _invoke("--list-data")
    assert listed.exit_code == 0 and "builtin:digits" in listed.output
    helped = _invoke("--help")
    assert (
        helped.exit_code == 0 and "Examples:" in helped.output and "--fine-tune-lr" in helped.output
    )


def test_options_override_the_config_file(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        "data: builtin:digits?classes=0-1\nepochs: 5\ninput_shape: [16, 16, 1]\n"
        "model_options: {filters: [8, 16], dense_units: 8}\n"
    )
    out = tmp_path / "run"
    result = _invoke(
        "--config",
        str(config),
        "--epochs",
        "1",
        "--option",
        "dense_units=4",
        "--out",
        str(out),
        "--quiet",
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"]["total"] == 1 and metrics["num_classes"] == 2
    saved = (out / "config.yaml").read_text()
    assert "dense_units: 4" in saved and "- 8" in saved  # merged key by key
