"""The training stream: per-(seed, epoch) orders without a `fit` per epoch, folders streamed from
disk, the epoch-end NaN check, model.keras written once from the best weights, and the
interleaved precision measurement."""

from __future__ import annotations

import json
import types

import keras
import numpy as np
import pytest

from finetune import FinetuneConfig, run_finetune
from finetune import precision as precision_module
from finetune.data import load_data
from finetune.loop import NonFiniteLossError
from finetune.precision import choose_policy, measure_precision
from finetune.trainset import TrainData

from .conftest import TINY_CNN


def _batches(dataset):
    return [(x, y) for x, y in dataset.as_numpy_iterator()]


def _rows(batches):
    """Every example of a list of batches as bytes (image and label), in order."""
    return [x.tobytes() + y.tobytes() for xs, ys in batches for x, y in zip(xs, ys, strict=True)]


@pytest.mark.parametrize("source", ["folder", "npz"])
def test_each_epoch_is_a_seeded_permutation_that_a_resume_repeats(
    source, train_image_folder, train_sequence_npz
):
    if source == "folder":
        data = load_data(str(train_image_folder), task="image", input_shape=(16, 16, 3))
    else:
        data = load_data(str(train_sequence_npz), task="sequence", batch_size=8)
    train = TrainData(data, seed=5, batch_size=8, augment=False)
    assert train.exact and train.source == ("files" if source == "folder" else "arrays")
    if source == "folder":  # streamed: only the paths are held, not decoded images
        assert train.x.dtype == "string" and train.x.shape == (data.num_train,)

    stream = _batches(train.epochs(0, 3, spare=False))
    assert len(stream) == 3 * train.steps
    epochs = [stream[i * train.steps : (i + 1) * train.steps] for i in range(3)]
    everything = sorted(_rows([data.arrays("train")]))
    for epoch in epochs:  # each epoch holds every example once
        assert sorted(_rows(epoch)) == everything
    assert _rows(epochs[0]) != _rows(epochs[1])  # and is shuffled anew
    # A run resumed at epoch 1 sees the same batches; a second TrainData gives the same stream.
    resumed = _batches(TrainData(data, 5, 8, augment=False).epochs(1, 3, spare=False))
    assert _rows(resumed) == _rows(epochs[1] + epochs[2])
    assert _rows(_batches(train.epoch(2))) == _rows(epochs[2])
    other_seed = _batches(TrainData(data, 6, 8, augment=False).epoch(0))
    assert _rows(other_seed) != _rows(epochs[0])


def test_augmented_data_uses_the_loaders_pipeline(train_image_folder):
    data = load_data(str(train_image_folder), task="image", input_shape=(16, 16, 3), augment=True)
    train = TrainData(data, seed=0, batch_size=32, augment=True)
    assert (train.source, train.exact, train.non_finite()) == ("loader", False, None)


def test_one_fit_per_phase_and_model_keras_from_the_best_weights(
    train_image_folder, tmp_path, monkeypatch
):
    calls = []
    fit = keras.Model.fit

    def counted(self, *args, **kwargs):
        calls.append((kwargs.get("initial_epoch"), kwargs.get("epochs")))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", counted)
    out = tmp_path / "run"
    result = run_finetune(
        FinetuneConfig(
            model="cnn",
            data=str(train_image_folder),
            model_options=dict(TINY_CNN),
            input_shape=(16, 16, 3),
            epochs=3,
            batch_size=8,
            out=str(out),
            quiet=True,
        )
    )
    assert calls == [(0, 3)]
    assert result.decisions["exact_data_order"] is True
    history = (out / "history.csv").read_text().splitlines()
    assert len(history) == 4
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 3 and len(state["history"]) == 3
    with np.load(out / "checkpoints" / "best.npz") as stored:
        best = [stored[f"arr_{i}"] for i in range(len(stored.files))]
    saved = keras.saving.load_model(out / "model.keras", compile=False).get_weights()
    assert len(saved) == len(best)
    assert all(np.array_equal(a, b) for a, b in zip(saved, best, strict=True))


def test_a_nan_loss_stops_the_run_at_the_epoch_end(tmp_path, monkeypatch):
    from finetune import loop

    real = loop.compile_recipe

    def compile_with_a_nan_loss(model, lr, recipe):
        real(model, lr, recipe)
        nan = lambda y, p: keras.ops.mean(p) * float("nan")  # noqa: E731
        model.compile(optimizer=keras.optimizers.Adam(lr), loss=nan, metrics=["accuracy"])

    monkeypatch.setattr(loop, "compile_recipe", compile_with_a_nan_loss)
    out = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match=r"NaN/inf in epoch 1; likely cause: a learning"):
        run_finetune(
            FinetuneConfig(
                model="cnn",
                data="builtin:digits?classes=0-2",
                model_options=dict(TINY_CNN),
                input_shape=(8, 8, 1),
                epochs=2,
                out=str(out),
                quiet=True,
            )
        )
    assert not (out / "checkpoints" / "state.json").exists()  # the NaN epoch is not kept
    assert not (out / "model.keras").exists()


def test_choose_needs_the_median_and_a_majority_of_rounds():
    timings = {"float32": 1.0, "mixed_float16": 0.9}
    steady = {"mixed_float16": [1.2, 1.1, 1.1, 0.9, 1.15]}
    assert choose_policy(timings, 0.05, steady)[0] == "mixed_float16"
    choice, reason = choose_policy(timings, 0.05, {"mixed_float16": [1.3, 1.2, 0.9, 0.9, 0.8]})
    assert choice == "float32" and "only 2 of 5 rounds" in reason
    assert choose_policy({"float32": 1.0, "mixed_float16": 0.99}, 0.05, steady)[0] == "float32"


def test_measure_interleaves_rounds_and_records_their_ratios(monkeypatch):
    """float32 is slow in rounds 3-5 only, bfloat16 in every round but one burst: the median
    says bfloat16 (20 < 30 ms), the rounds say it won once: float32."""
    scripted = {"float32": [0.010, 0.010, 0.030, 0.030, 0.030], "mixed_bfloat16": [0.020] * 5}
    scripted["mixed_bfloat16"][2] = 0.005
    order = []

    def build():
        name = keras.config.dtype_policy().name
        return types.SimpleNamespace(name=name, dtype_policy=keras.config.dtype_policy(), layers=[])

    def burst(model, batch, steps):
        order.append(model.name)
        return scripted[model.name][sum(name == model.name for name in order) - 1]

    monkeypatch.setattr(precision_module, "_warm_up", lambda model, batch, warmup: 0.01)
    monkeypatch.setattr(precision_module, "_burst", burst)
    monkeypatch.setattr(
        precision_module,
        "hardware_info",
        lambda: {"device": "cpu", "bfloat16": True, "float16": False},
    )
    decision = measure_precision(build, (None, [0] * 4), policies=("float32", "mixed_bfloat16"))
    assert order[:4] == ["float32", "mixed_bfloat16", "mixed_bfloat16", "float32"]  # rotates
    assert decision.rounds == 5 and decision.timings == {"float32": 0.03, "mixed_bfloat16": 0.02}
    assert decision.round_ratios["mixed_bfloat16"] == [0.5, 0.5, 6.0, 1.5, 1.5]
    assert decision.choice == "mixed_bfloat16"  # 3 of 5 rounds beyond the margin
    scripted["mixed_bfloat16"] = [0.020, 0.020, 0.020, 0.040, 0.040]
    order.clear()
    decision = measure_precision(build, (None, [0] * 4), policies=("float32", "mixed_bfloat16"))
    assert decision.timings["mixed_bfloat16"] < 0.95 * decision.timings["float32"]
    assert decision.choice == "float32" and "in only 1 of 5 rounds" in decision.reason
    record = decision.to_dict()
    assert set(record) >= {"timings", "skipped", "choice", "reason", "round_ratios", "rounds"}
    assert "per round 0.50 0.50 1.50 0.75 0.75" in decision.summary()
