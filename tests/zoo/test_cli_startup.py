"""`zoo list`, `--help` and refused arguments never import Keras/TensorFlow; output stays clean.

Each check runs the CLI in a fresh interpreter (`zoo.cli.main`, standalone_mode=False) and reads
`sys.modules` afterwards, so an import anywhere on the path (a module-level `import keras` in a
builder, an eager backend start in the group) fails it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import json, sys
import click
from zoo.cli import main
error = None
try:
    main(sys.argv[1:], standalone_mode=False, prog_name="zoo")
except click.ClickException as caught:
    error = caught.format_message()
print(json.dumps({"heavy": sorted(m for m in ("keras", "tensorflow") if m in sys.modules),
                  "error": error}))
"""


def _probe(*args: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("list",), None),
        (("list", "--json"), None),
        (("info", "--help"), None),
        (("info", "vgg16_gap", "--json"), None),
        (("--help",), None),
        (("finetune", "--help"), None),
        (("info", "no_such_model"), "Unknown model 'no_such_model'"),
        (("finetune", "--epochs", "-1"), "epochs should be an int >= 1. Received: epochs=-1"),
        (("finetune", "--model", "no_such_model"), "Unknown model 'no_such_model'"),
        (("finetune", "--config", "/no/such/config.yaml"), "/no/such/config.yaml' does not exist"),
        (("finetune", "--weights", "/no/such/w.weights.h5"), "w.weights.h5' does not exist"),
        (("finetune", "--model", "cnn", "--weights", "imagenet"), "weights should be None or a"),
        (("finetune", "--from", "/no/such/run"), "--from should be a run directory"),
    ],
)
def test_no_keras_import(args, error):
    result = _probe(*args)
    assert result["heavy"] == [], f"zoo {' '.join(args)} imported {result['heavy']}"
    if error is None:
        assert result["error"] is None
    else:
        assert error in result["error"] and "\n" not in result["error"]


def test_refused_argument_is_one_error_line_from_the_console_script():
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "finetune", "--epochs", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "Error: epochs should be an int >= 1. Received: epochs=-1\n"


def test_a_command_that_starts_keras_prints_no_tensorflow_log_lines():
    done = subprocess.run(
        [sys.executable, "-m", "zoo", "info", "cnn"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "Total params: 93,322" in done.stdout
    for noise in ("absl", "I0000", "E0000", "cuda", "oneDNN", "cpu_feature_guard"):
        assert noise not in done.stdout + done.stderr, (noise, done.stderr)
