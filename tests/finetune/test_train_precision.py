"""Dtype policies: the auto rule, its measured record, loss scaling, and policy reset."""

from __future__ import annotations

import json

import keras
import pytest
import yaml

from finetune import FinetuneConfig, run_finetune
from finetune.precision import POLICIES, choose_policy, dtype_policy, ensure_loss_scaling

from .conftest import TINY_CNN


def test_choose_needs_more_than_the_noise_margin():
    assert choose_policy({"float32": 1.0, "mixed_bfloat16": 0.97})[0] == "float32"
    assert choose_policy({"float32": 1.0, "mixed_bfloat16": 0.5})[0] == "mixed_bfloat16"
    assert choose_policy({"float32": 1.0, "mixed_float16": 2.0})[0] == "float32"
    with pytest.raises(ValueError, match="float32 must be measured"):
        choose_policy({"mixed_float16": 1.0})


def test_policy_is_reset_and_float16_gets_loss_scaling():
    import zoo

    with dtype_policy("mixed_float16"):
        model = zoo.create_model("cnn", input_shape=(16, 16, 1), num_classes=3, **TINY_CNN)
        model.compile(keras.optimizers.Adam(), "sparse_categorical_crossentropy")
        assert ensure_loss_scaling(model)
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        assert model.get_layer("predictions").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.slow
def test_auto_measures_and_records(tmp_path):
    out = tmp_path / "auto"
    result = run_finetune(
        FinetuneConfig(
            data="builtin:digits?classes=0-2",
            model_options=TINY_CNN,
            input_shape=(16, 16, 1),
            epochs=1,
            precision="auto",
            out=str(out),
            quiet=True,
        )
    )
    record = json.loads((out / "precision.json").read_text())
    assert "float32" in record["timings"]
    assert set(record["timings"]) | set(record["skipped"]) == set(POLICIES)
    assert all(seconds > 0 for seconds in record["timings"].values())
    assert record["choice"] in record["timings"]
    assert len(record["round_ratios"]) == len(record["timings"]) - 1
    assert all(len(r) == record["rounds"] for r in record["round_ratios"].values())
    assert (
        record["choice"]
        == choose_policy(record["timings"], record["margin"], record["round_ratios"])[0]
    )
    assert result.metrics["precision"]["policy"] == record["choice"]
    assert yaml.safe_load((out / "config.yaml").read_text())["precision"] == record["choice"]
    assert keras.config.dtype_policy().name == "float32"


def test_auto_is_cached_per_model_shape_batch_and_machine(tmp_path, monkeypatch):
    from finetune import precision

    cfg = dict(
        data="builtin:digits?classes=0-2",
        model_options=TINY_CNN,
        input_shape=(16, 16, 1),
        epochs=1,
        precision="auto",
        quiet=True,
    )
    run_finetune(FinetuneConfig(**cfg, out=str(tmp_path / "first")))
    first = json.loads((tmp_path / "first" / "precision.json").read_text())
    assert not first.get("cached") and first["seconds_spent"] > 0
    # A tiny run's budget is the 15 s floor, and the measurement keeps within it.
    assert first["budget_s"] == 15.0 and first["seconds_spent"] < 15.0

    def no_timing(*args, **kwargs):
        raise AssertionError("the second run should not time anything")

    monkeypatch.setattr(precision, "measure_precision", no_timing)
    result = run_finetune(FinetuneConfig(**cfg, out=str(tmp_path / "second")))
    second = json.loads((tmp_path / "second" / "precision.json").read_text())
    assert second["cached"] and second["seconds_spent"] == 0.0
    assert second["choice"] == first["choice"] == result.metrics["precision"]["policy"]
    # Another batch size is another entry: it is measured (and here refused by no_timing).
    with pytest.raises(AssertionError, match="should not time"):
        run_finetune(FinetuneConfig(**cfg, batch_size=8, out=str(tmp_path / "third")))
