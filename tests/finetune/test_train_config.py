"""FinetuneConfig: defaults, validation, YAML round trip and CLI-over-file merging (no TF)."""

from __future__ import annotations

import pytest

from finetune.config import (
    FinetuneConfig,
    load_config,
    merge_config,
    parse_input_shape,
    save_config,
)


def test_defaults_are_the_bundled_run():
    cfg = FinetuneConfig()
    assert (cfg.model, cfg.data, cfg.precision, cfg.unfreeze) == (
        "cnn",
        "builtin:digits",
        "float32",
        "all",
    )


def test_yaml_round_trip_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    save_config(
        FinetuneConfig(epochs=7, input_shape="32,32,3", model_options={"dropout": 0.1}), path
    )
    loaded = load_config(path)
    assert loaded.epochs == 7 and loaded.input_shape == (32, 32, 3)
    merged = merge_config(loaded, {"lr": 0.01, "epochs": None, "model_options": {"dense_units": 8}})
    assert merged.lr == 0.01 and merged.epochs == 7  # None does not override
    assert merged.model_options == {"dropout": 0.1, "dense_units": 8}


def test_yaml_accepts_cli_spellings(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("fine-tune-lr: 0.002\nfrom: runs/a\nunfreeze: '3'\n")
    cfg = load_config(path)
    assert (cfg.fine_tune_lr, cfg.from_run, cfg.unfreeze) == (0.002, "runs/a", 3)


@pytest.mark.parametrize(
    "override, words",
    [
        ({"epochs": -1}, "epochs should be an int >= 1"),
        ({"batch_size": 0}, "batch_size should be an int >= 1"),
        ({"lr": -0.1}, "lr should be a positive number"),
        ({"precision": "half"}, "precision should be one of"),
        ({"unfreeze": "some"}, "unfreeze should be 'all'"),
        ({"val_split": 1.5}, "val_split should be in [0, 1)"),
        ({"colour": 1}, "Unknown config key"),
    ],
)
def test_bad_values_are_one_line_errors(override, words):
    with pytest.raises(ValueError) as info:
        merge_config(FinetuneConfig(), override)
    message = str(info.value)
    assert words in message and "Received:" in message and "\n" not in message


def test_input_shape_parsing():
    assert parse_input_shape("None,12") == (None, 12)
    assert parse_input_shape([28, 28, 1]) == (28, 28, 1)
    with pytest.raises(ValueError, match="input_shape"):
        parse_input_shape("a,b")


def test_bad_config_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- a list\n")
    with pytest.raises(ValueError, match="should hold a mapping"):
        load_config(path)
    with pytest.raises(ValueError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
