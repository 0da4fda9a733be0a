"""A `.keras` holding code (a Lambda layer) loads only with the explicit --unsafe-load flag."""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

from tests.reliability.inputs import keras_files
from zoo.cli import main


def test_bench_runs_a_lambda_model_only_when_unsafe_load_is_given(tmp_path):
    keras_files(tmp_path)
    args = ["bench", str(tmp_path / "lambda.keras"), "--runs", "1", "--warmup", "0",
            "--batch-sizes", "1", "--quiet", "--json"]  # fmt: skip
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and "--unsafe-load" in refused.output
    allowed = CliRunner().invoke(main, [*args, "--unsafe-load"])
    assert allowed.exit_code == 0, allowed.output
    assert {record["runtime"] for record in json.loads(allowed.output)} >= {"keras-eager"}


def test_convert_exports_a_trusted_lambda_model_with_parity(tmp_path):
    import onnxruntime

    keras_files(tmp_path)
    out = tmp_path / "lambda.onnx"
    args = ["convert", str(tmp_path / "lambda.keras"), "--out", str(out), "--quiet"]
    assert CliRunner().invoke(main, args).exit_code == 1 and not out.exists()
    result = CliRunner().invoke(main, [*args, "--unsafe-load"])
    assert result.exit_code == 0, result.output
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    x = np.ones([2, *[d if isinstance(d, int) else 3 for d in spec.shape[1:]]], "float32")
    assert np.isfinite(session.run(None, {spec.name: x})[0]).all()


def test_finetune_from_a_lambda_model_only_when_unsafe_load_is_given(tmp_path):
    import keras

    inputs = keras.Input((28, 28, 1), name="image")
    x = keras.layers.Lambda(lambda t: t / 255.0, name="scale")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(10, activation="softmax", name="predictions")(x)
    source = tmp_path / "lambda_cnn.keras"
    keras.Model(inputs, outputs).save(source)
    args = ["finetune", "--model", "cnn", "--from", str(source), "--epochs", "1",
            "--data", "builtin:digits?classes=0-2&per_class=4", "--quiet"]  # fmt: skip
    refused = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "refused")])
    assert refused.exit_code == 1 and "--unsafe-load" in refused.output
    assert "Traceback" not in refused.output
    # With the flag the file loads; this one then fails later, for its foreign architecture.
    allowed = CliRunner().invoke(main, [*args, "--unsafe-load", "--out", str(tmp_path / "ok")])
    assert "safe mode" not in allowed.output and "Traceback" not in allowed.output
