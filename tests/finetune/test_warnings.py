"""Warnings that matter, one `warning:` line each on stderr; none on a sound run or with --quiet."""

from __future__ import annotations

import warnings

import pytest

from finetune import FinetuneConfig, run_finetune
from finetune.advice import keras_warnings
from finetune.precision import cache_key, store_decision

from .conftest import TINY_CNN, tiny_digits_run

TINY = tiny_digits_run(epochs=1)


def _warnings(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def test_a_sound_run_warns_nothing(tmp_path, capsys):
    run_finetune(FinetuneConfig(**TINY, out=str(tmp_path / "run")))
    assert _warnings(capsys) == []


def test_head_epochs_covering_the_run(train_digits_run, tmp_path, capsys):
    run_finetune(
        FinetuneConfig(
            data="builtin:digits?classes=5-9",
            from_run=str(train_digits_run),
            epochs=2,
            head_epochs=2,
            batch_size=64,
            out=str(tmp_path / "run"),
        )
    )
    assert _warnings(capsys) == [
        "warning: --head-epochs 2 >= --epochs 2: no fine-tuning phase; the backbone stays frozen "
        "(raise --epochs to fine-tune it)"
    ]


def test_augment_on_sequences(train_sequence_npz, tmp_path, capsys):
    run_finetune(
        FinetuneConfig(
            model="lstm",
            data=str(train_sequence_npz),
            model_options={"units": 4},
            epochs=1,
            augment=True,
            out=str(tmp_path / "run"),
        )
    )
    assert _warnings(capsys) == [
        "warning: --augment changes images only; it does nothing to sequence data"
    ]


def test_a_hand_chosen_precision_measured_slower(tmp_path, capsys):
    # The cache holds what `auto` measured for this model, shape, batch and machine.
    key = cache_key("cnn", dict(TINY_CNN), (16, 16, 1), 64)
    store_decision(
        key,
        {"choice": "float32", "reason": "r", "timings": {"float32": 0.01, "mixed_bfloat16": 0.04}},
    )
    run_finetune(FinetuneConfig(**TINY, precision="mixed_bfloat16", out=str(tmp_path / "a")))
    assert _warnings(capsys) == [
        "warning: --precision mixed_bfloat16: measured 4.0x slower than float32 here; "
        "--precision float32 (or auto) trains faster"
    ]
    run_finetune(
        FinetuneConfig(**TINY, precision="mixed_bfloat16", quiet=True, out=str(tmp_path / "b"))
    )
    assert _warnings(capsys) == []  # --quiet: nothing but errors


def test_keras_noise_is_dropped_and_float16_warnings_summarised(capsys):
    with pytest.warns(UserWarning) as passed_on, keras_warnings(FinetuneConfig()):
        warnings.warn("Your input ran out of data; interrupting training.", stacklevel=1)
        for name in ("dense", "conv", "norm"):
            warnings.warn(f"Layer {name} casts its float32 input to float16", stacklevel=1)
        warnings.warn("something else", stacklevel=1)
    assert [str(w.message) for w in passed_on] == ["something else"]  # others' are kept
    assert _warnings(capsys) == [
        "warning: 3 float16 warning(s) from Keras, e.g.: Layer dense casts its float32 input to "
        "float16"
    ]
