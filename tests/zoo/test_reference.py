"""At their defaults the builders are exactly the reference architectures of the seed examples."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import zoo


def _layer_summary(model):
    rows = []
    for layer in model.layers:
        config = layer.get_config()
        activation = config.get("activation")
        width = config.get("filters") or config.get("units")
        rows.append((type(layer).__name__, width, activation))
    return rows


def test_cnn_is_the_reference():
    model = zoo.create_model("cnn")
    assert model.count_params() == 93_322
    assert model.input_shape == (None, 28, 28, 1)
    assert _layer_summary(model) == [
        ("InputLayer", None, None),
        ("Conv2D", 32, "relu"),
        ("MaxPooling2D", None, None),
        ("Conv2D", 64, "relu"),
        ("MaxPooling2D", None, None),
        ("Conv2D", 64, "relu"),
        ("Flatten", None, None),
        ("Dense", 64, "relu"),
        ("Dense", 10, "softmax"),
    ]
    assert [layer.get_config().get("kernel_size") for layer in model.layers[1:6:2]] == [(3, 3)] * 3
    assert model.layers[2].get_config()["pool_size"] == (2, 2)


@pytest.mark.parametrize(
    ("name", "recurrent", "params"),
    [("simple_rnn", "SimpleRNN", 4_865), ("lstm", "LSTM", 19_265), ("gru", "GRU", 14_657)],
)
def test_rnns_are_the_reference(name, recurrent, params):
    model = zoo.create_model(name)
    assert model.count_params() == params
    assert model.input_shape == (None, None, 10)
    assert _layer_summary(model) == [
        ("InputLayer", None, None),
        (recurrent, 64, "tanh"),
        ("Dense", 1, "sigmoid"),
    ]
    if name == "gru":
        assert model.layers[1].get_config()["reset_after"] is True


def test_vgg16_flatten_is_the_reference_transfer_model():
    model = zoo.create_model("vgg16_flatten", weights=None)
    trainable = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
    assert model.count_params() == 17_927_370
    assert trainable == 3_212_682
    backbone = model.get_layer("backbone")
    assert not backbone.trainable and all(not layer.trainable for layer in backbone.layers)
    assert backbone.count_params() == 14_714_688
    head = [row for row in _layer_summary(model) if row[0] in ("Flatten", "Dense")]
    assert head == [("Flatten", None, None), ("Dense", 128, "relu"), ("Dense", 10, "softmax")]


@pytest.mark.parametrize("mode", ["caffe", "tf", "torch"])
def test_backbone_preprocessing_matches_keras_applications(mode):
    from keras.applications import imagenet_utils

    from zoo._layers import ImagePreprocessing, preprocess

    pixels = np.random.default_rng(0).uniform(0, 255, size=(2, 4, 5, 3)).astype("float32")
    expected = imagenet_utils.preprocess_input(pixels.copy(), mode=mode)
    inputs = keras.Input((4, 5, 3))
    stock = keras.Model(inputs, preprocess(inputs, mode))
    assert {type(layer).__module__.split(".")[0] for layer in stock.layers} == {"keras"}
    assert stock.count_params() == 0  # nothing a fine-tuning phase could move
    got = keras.ops.convert_to_numpy(stock(pixels))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-5)
    legacy = keras.ops.convert_to_numpy(ImagePreprocessing(mode)(pixels))  # models saved before
    np.testing.assert_allclose(got, legacy, rtol=1e-6, atol=1e-5)


def test_one_class_gives_sigmoid_and_logits_option_gives_raw_scores():
    assert zoo.create_model("cnn", num_classes=1).layers[-1].get_config()["activation"] == (
        "sigmoid"
    )
    logits = zoo.create_model("cnn", classifier_activation="linear")
    scores = keras.ops.convert_to_numpy(
        logits(np.random.default_rng(0).uniform(0, 255, (2, 28, 28, 1)).astype("float32"))
    )
    assert not np.allclose(scores.sum(axis=-1), 1.0)


def test_unfrozen_backbone_is_trainable_but_batchnorm_runs_in_inference_mode():
    model = zoo.create_model(
        "mobilenet_v2_gap",
        input_shape=(32, 32, 3),
        num_classes=2,
        freeze_backbone=False,
        weights=None,
    )
    assert model.get_layer("backbone").trainable
    pixels = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    # training=True on the whole model must not switch the backbone's BatchNorm to batch stats.
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(pixels, training=True)),
        keras.ops.convert_to_numpy(model(pixels, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )
