"""Quantization-aware fine-tuning (`zoo finetune --from RUN --qat`): the run, the model it saves,
BatchNorm folding, resume, and the inputs it refuses."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from tests.finetune.qat_runs import float_parent_run, qat_run

pytestmark = pytest.mark.slow


def _invoke(*args: str):
    from zoo.cli import main

    return CliRunner().invoke(main, ["finetune", *args])


def _error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith("Error: "), (
        result.output
    )
    return lines[0]


def test_qat_run_saves_a_fake_quant_model_that_loads_with_zoo_alone():
    run = qat_run()
    config = yaml.safe_load((run / "config.yaml").read_text())
    parent = yaml.safe_load((float_parent_run() / "config.yaml").read_text())
    assert config["qat"] is True and config["head_epochs"] == 0
    # The parent's data and split, so its held-out examples stay held out.
    assert config["data"] == parent["data"] and config["seed"] == parent["seed"]
    code = (
        "import sys, zoo\n"
        f"m = zoo.load_model({str(run / 'model.keras')!r})\n"
        "from zoo.quantization import FakeQuant, QuantConv2D, QuantDense\n"
        "layers = m._flatten_layers(include_self=False, recursive=True)\n"
        "kinds = [type(l).__name__ for l in layers]\n"
        "assert 'finetune' not in sys.modules\n"
        "print(kinds.count('FakeQuant'), kinds.count('QuantConv2D'), kinds.count('QuantDense'))\n"
        "print(*[l.quant_range()[1] for l in layers if isinstance(l, FakeQuant)])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    counts, highs = done.stdout.strip().splitlines()[-2:]
    # tiny cnn: input, conv1, conv2, dense quantized (the softmax output stays float).
    assert counts.split() == ["4", "2", "2"]
    assert all(float(high) > 0 for high in highs.split())  # ranges were tracked in training


def test_qat_weights_are_on_the_cpu_grid():
    import zoo
    from zoo.quantization import QUANT_WEIGHT_LAYERS, weight_bits_for_this_cpu

    model = zoo.load_model(qat_run() / "model.keras")
    layers = [layer for layer in model.layers if isinstance(layer, QUANT_WEIGHT_LAYERS)]
    assert {layer.weight_bits for layer in layers} == {weight_bits_for_this_cpu()}
    levels = 2 ** (weight_bits_for_this_cpu() - 1) - 1
    for layer in layers:
        snapped = np.asarray(layer.quantized_kernel()).reshape(-1, layer.kernel.shape[-1])
        steps = snapped / (np.abs(snapped).max(axis=0) / levels)
        assert np.allclose(steps, np.round(steps), atol=1e-3)
        assert len(np.unique(np.round(steps))) <= 2 * levels + 1


def test_batchnorm_is_folded_into_the_convolution_before_quantization():
    import keras

    from finetune.qat import build_qat_model

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(6, 3, use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(3, name="predictions")(x)
    model = keras.Model(inputs, outputs)
    bn = model.get_layer("bn")
    rng = np.random.default_rng(0)
    bn.set_weights([rng.uniform(0.5, 2, 6), rng.normal(0, 1, 6), rng.normal(0, 1, 6),
                    rng.uniform(0.2, 3, 6)])  # fmt: skip
    qat, notes = build_qat_model(model, weight_bits=8)
    kinds = [type(layer).__name__ for layer in qat.layers]
    assert notes["folded_batchnorm"] == 1 and "BatchNormalization" not in kinds
    assert qat.get_layer("conv").use_bias  # the BatchNorm's shift lives in the bias now
    x = rng.uniform(0, 255, (32, 8, 8, 3)).astype("float32")
    qat(x, training=True)  # one batch sets the tracked ranges
    want, got = model.predict(x, verbose=0), qat.predict(x, verbose=0)
    # 8-bit weights and activations: close to the float model; a wrong fold is far off.
    assert np.max(np.abs(got - want)) < 0.03 * np.max(np.abs(want))


def test_qat_run_resumes_with_its_ranges(tmp_path):
    from finetune import FinetuneConfig, run_finetune

    out = tmp_path / "qat"
    first = run_finetune(
        FinetuneConfig(from_run=str(float_parent_run()), qat=True, epochs=1, out=str(out),
                       quiet=True)
    )  # fmt: skip
    resumed = run_finetune(FinetuneConfig(out=str(out), resume=True, epochs=2, quiet=True))
    assert first.config.qat and resumed.config.qat
    assert resumed.metrics["decisions"]["resumed_from_epoch"] == 1
    assert resumed.metrics["epochs"]["completed"] == 2
    assert resumed.metrics["test"]["accuracy"] > 0.8
    import zoo
    from zoo.quantization import FakeQuant

    model = zoo.load_model(out / "model.keras")
    quants = [layer for layer in model.layers if isinstance(layer, FakeQuant)]
    assert quants and all(float(layer.tracked.numpy()) == 1.0 for layer in quants)


def test_qat_without_from_is_one_error_line():
    line = _error_line(_invoke("--qat", "--epochs", "1"))
    assert "--from" in line


def test_qat_on_a_recurrent_model_is_one_error_line(tmp_path, train_sequence_npz):
    import zoo

    path = tmp_path / "lstm.keras"
    zoo.create_model("lstm", input_shape=(None, 4), num_classes=3).save(path)
    out = tmp_path / "out"
    line = _error_line(
        _invoke("--from", str(path), "--qat", "--data", str(train_sequence_npz), "--out", str(out))
    )
    assert "LSTM" in line and "not" in line
    assert not out.exists()  # refused before the run directory is made


def test_qat_with_mixed_precision_is_one_error_line():
    line = _error_line(
        _invoke("--from", str(float_parent_run()), "--qat", "--precision", "mixed_float16")
    )
    assert "float32" in line
