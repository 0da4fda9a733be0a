"""The training recipe on real runs: the schedule's rate per epoch, early stopping, recording.

Every run is a tiny cnn on digits (a second or two); the rates are read from history.csv,
which logs the optimizer's learning rate of each epoch (Keras' LearningRateScheduler).
"""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from finetune import FinetuneConfig, run_finetune
from finetune.cli import finetune_command
from finetune.config import RECIPE_FIELDS, load_config
from finetune.recipe import lr_factor, resolve_recipe

from .conftest import tiny_digits_run

TINY = tiny_digits_run(quiet=True)


def _history(out) -> list[dict[str, str]]:
    with open(out / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def test_cosine_rate_per_epoch_follows_its_formula(tmp_path):
    epochs, warmup, lr = 6, 2, 0.004
    run_finetune(
        FinetuneConfig(
            **TINY,
            epochs=epochs,
            lr=lr,
            lr_schedule="cosine",
            warmup_epochs=warmup,
            out=str(tmp_path / "run"),
        )
    )
    used = [float(row["lr"]) for row in _history(tmp_path / "run")]
    expected = [lr * (e + 1) / (warmup + 1) for e in range(warmup)] + [
        lr * 0.5 * (1 + math.cos(math.pi * t / (epochs - warmup))) for t in range(epochs - warmup)
    ]
    assert used == pytest.approx(expected, rel=1e-6)  # float32 variable: 7 digits


@pytest.mark.parametrize(
    "schedule, warmup, factors",
    [
        ("constant", 0, [1, 1, 1, 1]),
        ("constant", 1, [0.5, 1, 1, 1]),
        ("step", 0, [1, 1, 0.1, 0.1, 0.01, 0.01]),
        (
            "cosine",
            1,
            [0.5, 1.0, 0.5 * (1 + math.cos(math.pi / 3)), 0.5 * (1 + math.cos(2 * math.pi / 3))],
        ),
    ],
)
def test_schedule_factors(schedule, warmup, factors):
    recipe = resolve_recipe(FinetuneConfig(lr_schedule=schedule, warmup_epochs=warmup, epochs=9))
    total = len(factors)
    assert [lr_factor(recipe, e, total) for e in range(total)] == pytest.approx(factors, rel=1e-6)


def test_patience_stops_and_keeps_the_best_epoch(tmp_path):
    # lr 1e-30 leaves every float32 weight as it is: no epoch after the first improves.
    out = tmp_path / "run"
    result = run_finetune(FinetuneConfig(**TINY, epochs=10, lr=1e-30, patience=2, out=str(out)))
    assert result.metrics["epochs"]["stopped_early"] == 3
    assert result.metrics["epochs"]["completed"] == 3 and len(_history(out)) == 3
    assert result.metrics["best"]["epoch"] == 1
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["stopped_early"] == 3
    import keras

    with np.load(out / "checkpoints" / "best.npz") as stored:
        best = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    saved = keras.saving.load_model(out / "model.keras", compile=False).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(saved, best, strict=True))


def test_patience_keeps_an_earlier_best_epoch(tmp_path):
    # SGD with momentum 0.99 learns, then overshoots: the best epoch stays early, the run
    # stops `patience` epochs later and reports (and saves) the best epoch's scores.
    out = tmp_path / "run"
    result = run_finetune(
        FinetuneConfig(
            **TINY, epochs=12, lr=0.05, optimizer="sgd", momentum=0.99, patience=2, out=str(out)
        )
    )
    best = result.metrics["best"]["epoch"]
    rows = _history(out)
    accuracies = [float(row["val_accuracy"]) for row in rows]
    assert result.metrics["epochs"]["stopped_early"] == len(rows) == best + 2
    assert max(accuracies) == accuracies[best - 1]
    assert result.metrics["val"]["accuracy"] == pytest.approx(accuracies[best - 1])


def test_every_option_is_recorded_and_the_runs_config_runs_again(tmp_path):
    options = [
        "--optimizer", "adamw", "--weight-decay", "0.01", "--lr-schedule", "step",
        "--warmup-epochs", "1", "--label-smoothing", "0.1", "--patience", "4",
    ]  # fmt: skip
    tiny = [
        "--data", "builtin:digits?classes=0-4", "--input-shape", "16,16,1", "--batch-size", "64",
        "--option", "filters=[8, 16]", "--option", "dense_units=16", "--epochs", "2", "--quiet",
    ]  # fmt: skip
    first = CliRunner().invoke(finetune_command, [*tiny, *options, "--out", str(tmp_path / "a")])
    assert first.exit_code == 0, first.output
    saved = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    given = {
        "optimizer": "adamw",
        "weight_decay": 0.01,
        "lr_schedule": "step",
        "warmup_epochs": 1,
        "label_smoothing": 0.1,
        "patience": 4,
    }
    assert {k: saved[k] for k in given} == given
    assert saved["momentum"] is None  # not set: told apart from a default
    assert saved["recipe"]["source"]["momentum"] == "default"
    assert {k: saved["recipe"][k] for k in given} == given
    assert set(RECIPE_FIELDS) <= set(saved["recipe"])

    again = CliRunner().invoke(
        finetune_command,
        ["--config", str(tmp_path / "a" / "config.yaml"), "--out", str(tmp_path / "b")],
    )
    assert again.exit_code == 0, again.output
    a, b = (load_config(tmp_path / run / "config.yaml").to_dict() for run in "ab")
    assert {**a, "out": None} == {**b, "out": None}


def test_unset_options_stay_none_until_resolved():
    cfg = FinetuneConfig()
    assert all(getattr(cfg, name) is None for name in RECIPE_FIELDS)
    recipe = resolve_recipe(cfg, {"optimizer": "sgd", "lr_schedule": "cosine"})
    assert (recipe.optimizer, recipe.momentum, recipe.lr_schedule) == ("sgd", 0.9, "cosine")
    assert recipe.source["optimizer"] == "model" and recipe.source["patience"] == "default"
    user = resolve_recipe(FinetuneConfig(optimizer="adam"), {"optimizer": "sgd"})
    assert (user.optimizer, user.momentum, user.source["optimizer"]) == ("adam", None, "user")


def test_label_smoothing_trains_with_sparse_labels(tmp_path):
    result = run_finetune(
        FinetuneConfig(**TINY, epochs=4, label_smoothing=0.2, out=str(tmp_path / "run"))
    )
    # Scores are of the true classes (one-hot labels turned back into indices for the report).
    assert result.metrics["test"]["accuracy"] > 0.4  # 5 classes: chance is 0.2
    assert (
        sum(sum(row) for row in result.metrics["test"]["confusion_matrix"])
        == (result.metrics["examples"]["test"])
    )
