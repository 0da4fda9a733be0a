"""The user's journey, end to end on real images: a folder of PNGs in train/val/test ->
`zoo finetune` -> `zoo evaluate RUN` -> `zoo convert RUN --to onnx` -> `zoo evaluate model.onnx`
-> `zoo predict` with the ONNX file copied away from its run (class names from its metadata)."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from tests.convert.digit_folder import NAMES, PER_SPLIT, write_digit_folder
from zoo.cli import main

pytestmark = pytest.mark.slow


def _zoo(*args: str) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_folder_to_finetune_to_evaluate_convert_and_predict(tmp_path):
    data = write_digit_folder(tmp_path / "digits")
    run = tmp_path / "run"
    _zoo("finetune", "--model", "cnn", "--data", data, "--input-shape", "24,24,1",
         "--epochs", "8", "--batch-size", "16", "--out", run, "--quiet")  # fmt: skip

    keras_eval = json.loads(_zoo("evaluate", run, "--json"))
    test_size = PER_SPLIT["test"] * len(NAMES)
    assert keras_eval["split"] == "test" and keras_eval["examples"] == test_size
    assert keras_eval["class_names"] == sorted(NAMES)
    assert keras_eval["accuracy"] >= 0.75  # chance is 0.25

    _zoo("convert", run, "--to", "onnx", "--quiet")
    bare = tmp_path / "elsewhere" / "digits.onnx"  # away from the run: only its metadata
    bare.parent.mkdir()
    shutil.copy(run / "model.onnx", bare)
    onnx_eval = json.loads(_zoo("evaluate", bare, "--data", data, "--json"))
    assert onnx_eval["runtime"] == "onnxruntime-fp32"
    assert abs(onnx_eval["accuracy"] - keras_eval["accuracy"]) <= 1 / test_size

    two = [data / "test" / "three" / "three_000.png", data / "test" / "zero" / "zero_001.png"]
    rows = json.loads(_zoo("predict", bare, *two, "--top-k", "2", "--json"))
    assert [row["input"] for row in rows] == [str(p) for p in two]
    for row in rows:
        assert len(row["predictions"]) == 2
        assert {p["class"] for p in row["predictions"]} <= set(NAMES)
    # The model learnt these two: their folder's name comes first.
    assert [row["predictions"][0]["class"] for row in rows] == ["three", "zero"]
