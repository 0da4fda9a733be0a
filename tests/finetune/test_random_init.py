"""Runs that can learn: a random backbone trains whole, the saved model predicts in inference
mode what it learned (BatchNorm re-estimated), every backbone family learns from random init,
and a run that cannot learn says so."""

from __future__ import annotations

import numpy as np
import pytest

from finetune import FinetuneConfig, run_finetune
from tests.finetune.conftest import TINY_CNN


def stripes(count: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sine stripes, horizontal (class 0) or vertical (class 1), random period and phase."""
    rng = np.random.default_rng(seed)
    y = np.arange(count) % 2
    x = np.zeros((count, size, size, 3), np.float32)
    grid = np.arange(size)
    for i in range(count):
        wave = 127.5 + 100 * np.sin(2 * np.pi * grid / rng.integers(4, 9) + rng.uniform(0, 7))
        image = np.tile(wave[:, None], (1, size)) if y[i] == 0 else np.tile(wave, (size, 1))
        x[i] = np.clip(image[..., None] + rng.normal(0, 20, (size, size, 3)), 0, 255)
    return x, y


@pytest.fixture(scope="module")
def stripes_npz(tmp_path_factory):
    (x, y), (x_val, y_val), (x_test, y_test) = stripes(192, 0), stripes(32, 1), stripes(128, 2)
    path = tmp_path_factory.mktemp("stripes") / "stripes.npz"
    np.savez(path, x=x, y=y, x_val=x_val, y_val=y_val, x_test=x_test, y_test=y_test)
    return path


def _accuracy(model, x, y) -> float:
    return float(np.mean(model.predict(x, verbose=0, batch_size=64).argmax(-1) == y))


@pytest.mark.slow
def test_random_backbone_trains_whole_and_predicts_what_it_learned(stripes_npz, tmp_path, capsys):
    import keras

    out = tmp_path / "scratch"
    result = run_finetune(
        FinetuneConfig(
            model="mobilenet_v2_gap",
            data=str(stripes_npz),
            weights="none",
            input_shape=(32, 32, 3),
            epochs=3,
            batch_size=16,
            lr=2e-3,
            out=str(out),
        )
    )
    printed = capsys.readouterr().out
    assert "backbone from random init: training all layers with BatchNorm in training mode" in (
        printed
    )
    decisions = result.decisions
    assert decisions["phases"]["plan"]["body"] == "random_backbone"
    assert decisions["phases"]["1"]["batchnorm"] == "training"
    assert decisions["batchnorm"] == {"reestimated_layers": 52, "batches": 12}
    assert decisions["warnings"] == []  # a healthy run is not called dead
    # The saved file, loaded by plain Keras, predicts in inference mode what training learned.
    x_test, y_test = stripes(128, 2)
    saved = keras.saving.load_model(result.model_path)
    with_reestimate = _accuracy(saved, x_test, y_test)
    assert with_reestimate >= 0.85 and result.metrics["test"]["accuracy"] == pytest.approx(
        with_reestimate
    )
    # Validation scored re-estimated statistics, so it saw the model learn and kept a later
    # epoch (without it val_accuracy was 0.50 every epoch and epoch 1 was kept: 0.73 saved).
    assert result.metrics["best"]["epoch"] > 1


def test_reestimate_leaves_weights_and_frozen_batchnorm_alone():
    import keras
    import tensorflow as tf

    from finetune.batchnorm import reestimate_batchnorm

    inputs = keras.Input((4,))
    frozen = keras.layers.BatchNormalization(name="frozen")
    trained = keras.layers.BatchNormalization(name="trained")
    model = keras.Model(inputs, trained(keras.layers.Dense(3)(frozen(inputs))))
    frozen.trainable = False
    x = np.random.default_rng(0).normal(5.0, 2.0, (64, 4)).astype("float32")
    weights = [np.array(v) for v in model.trainable_variables]
    dataset = tf.data.Dataset.from_tensor_slices(x).batch(16)
    assert reestimate_batchnorm(model, dataset, max_batches=3) == 1
    np.testing.assert_array_equal(np.array(frozen.moving_mean), np.zeros(4))  # untouched
    # The 3 batches seen, through the frozen BN (init statistics) and the dense layer.
    dense = keras.ops.convert_to_numpy(model.layers[2](frozen(x[:48], training=False)))
    means = [dense[i : i + 16].mean(0) for i in (0, 16, 32)]
    np.testing.assert_allclose(np.array(trained.moving_mean), np.mean(means, 0), rtol=1e-4)
    assert all(
        np.array_equal(a, np.array(b))
        for a, b in zip(weights, model.trainable_variables, strict=True)
    )
    assert trained.momentum == 0.99  # restored


@pytest.mark.slow
@pytest.mark.parametrize("family", ["vgg16", "resnet50", "mobilenet_v2", "efficientnet_b0"])
def test_every_backbone_family_learns_from_random_init(family):
    import zoo
    from finetune.guard import SPREAD_TOLERANCE, output_spread
    from finetune.model import compile_model, phase_plan, set_phase

    size = zoo.model_info(f"{family}_gap").min_input_size
    model = zoo.create_model(
        f"{family}_gap", input_shape=(size, size, 3), num_classes=2, weights=None
    )
    plan = phase_plan(model, 1, 1, from_used=False, random_init=True)
    set_phase(model, 1, plan, "all")
    compile_model(model, 1e-3)
    model.run_eagerly = True  # a few steps: tracing the train step would cost more than them
    x, y = stripes(16, 0, size=size)
    assert output_spread(model, x[:8]) > SPREAD_TOLERANCE  # the input reaches the output
    losses = [float(model.train_on_batch(x, y)[0]) for _ in range(6)]
    assert losses[-1] < 0.9 * losses[0], losses


def _tiny_cnn_run(tmp_path, name, **options):
    return run_finetune(
        FinetuneConfig(
            model="cnn",
            data="builtin:digits?classes=0-2",
            model_options=dict(TINY_CNN),
            input_shape=(16, 16, 1),
            epochs=2,
            batch_size=64,
            out=str(tmp_path / name),
            quiet=True,
            **options,
        )
    )


def test_guard_warns_when_outputs_do_not_depend_on_the_input(tmp_path):
    import zoo

    # A cnn made dead on purpose: zero kernels, so every image reaches the classifier as zeros.
    dead = zoo.create_model("cnn", input_shape=(16, 16, 1), num_classes=3, **TINY_CNN)
    dead.set_weights([np.zeros_like(w) for w in dead.get_weights()])
    path = tmp_path / "dead.weights.h5"
    dead.save_weights(str(path))
    warnings = _tiny_cnn_run(tmp_path, "dead", weights=str(path)).decisions["warnings"]
    assert warnings and warnings[0].startswith("the model's outputs do not depend on its input")


def test_guard_warns_when_the_loss_does_not_move_and_not_on_a_healthy_run(tmp_path):
    still = _tiny_cnn_run(tmp_path, "still", lr=1e-12).decisions["warnings"]
    assert len(still) == 1 and still[0].startswith("the training loss did not move after epoch 1")
    assert _tiny_cnn_run(tmp_path, "healthy").decisions["warnings"] == []
