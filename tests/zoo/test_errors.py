"""Bad names and arguments raise one clear ValueError, in the manner of keras.applications."""

from __future__ import annotations

import socket

import pytest

import zoo


def test_unknown_name_suggests_close_names():
    with pytest.raises(zoo.UnknownModelError, match=r"Did you mean: .*vgg16_flatten"):
        zoo.create_model("vgg16_flaten")
    with pytest.raises(ValueError, match="Unknown model 'nothing_like_it'"):
        zoo.model_info("nothing_like_it")


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("cnn", {"input_shape": (28, 28)}, r"\(height, width, channels\)"),
        ("cnn", {"input_shape": (28, 28, 1, 1)}, r"Received: input_shape=\(28, 28, 1, 1\)"),
        ("cnn", {"input_shape": (8, 8, 1)}, "needs images of at least 18x18"),
        ("cnn", {"input_shape": "big"}, "tuple of positive ints"),
        ("lstm", {"input_shape": (None, 10, 3)}, r"\(timesteps, features\)"),
        ("lstm", {"input_shape": (20, None)}, r"\(timesteps, features\)"),
        ("gru", {"input_shape": (0, 10)}, "must be positive"),
        ("cnn", {"num_classes": 0}, "num_classes should be an int >= 1"),
        ("cnn", {"num_classes": 2.5}, "num_classes should be an int >= 1"),
        ("vgg16_gap", {"input_shape": (16, 16, 3)}, "at least 32"),
        ("resnet50_max", {"input_shape": (64, 64, 1)}, "end in 3 channels"),
        ("lstm", {"kernel": 3}, r"does not accept option\(s\) kernel. Valid options: units"),
        ("cnn", {"weights": "imagenet"}, r"weights should be None or a file path"),
        ("vgg16_flatten", {"weights": "coco"}, r"weights should be None, 'imagenet'"),
        ("cnn", {"weights": "/no/such/file.weights.h5"}, "does not exist"),
        ("cnn", {"classifier_activation": "relu"}, "classifier_activation should be one of"),
        ("cnn", {"dropout": 1.5}, r"dropout should be in \[0, 1\)"),
        ("lstm", {"units": 0}, "units and num_layers should be >= 1"),
    ],
)
def test_bad_arguments_say_what_was_expected(name, kwargs, message):
    with pytest.raises(ValueError, match=message) as caught:
        zoo.create_model(name, **kwargs)
    assert "\n" not in str(caught.value)


def test_damaged_weights_file_is_a_clear_error(tmp_path):
    damaged = tmp_path / "damaged.weights.h5"
    damaged.write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match=r"is none of them \(damaged or truncated\?\)"):
        zoo.create_model("cnn", weights=str(damaged))


def test_weights_of_another_architecture_are_a_clear_error(tmp_path):
    path = tmp_path / "lstm.weights.h5"
    zoo.create_model("lstm").save_weights(path)
    with pytest.raises(ValueError, match="another architecture"):
        zoo.create_model("gru", weights=str(path))


@pytest.mark.parametrize("weights", ["imagenet", "default"])
def test_offline_imagenet_names_the_file_to_fetch_and_the_way_out(monkeypatch, tmp_path, weights):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty cache, whatever this machine has

    def no_network(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    with pytest.raises(ValueError) as caught:  # "default" is ImageNet's for a backbone model
        zoo.create_model("vgg16_gap", input_shape=(32, 32, 3), weights=weights)
    message = str(caught.value)
    assert "\n" not in message
    assert f"vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5 in {tmp_path}/models/" in message
    assert "weights='/path/to/" in message
    assert "weights=None (CLI: --weights none)" in message


def test_register_model_rejects_bad_declarations():
    with pytest.raises(ValueError, match="task should be one of"):
        zoo.register_model(task="audio", input_shape=(1,), num_classes=2)
    with pytest.raises(ValueError, match="already registered"):

        @zoo.register_model(task="image", input_shape=(28, 28, 1), num_classes=10)
        def cnn(input_shape, num_classes):  # noqa: ARG001
            raise AssertionError("never built")
