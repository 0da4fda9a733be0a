"""Weights: the per-model default, and files in every layout Keras writes, told apart by content."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

import zoo
from zoo._weight_files import weights_layout

SHAPE = (32, 32, 3)


def _pixels(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, (2, *SHAPE)).astype("float32")


def _save_legacy(layer, path) -> None:
    """The layout keras.applications downloads: Keras 2 HDF5, `layer_names` at the root."""
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, layer)


def _mobilenet(weights=None, seed: int | None = None):
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return zoo.create_model("mobilenet_v2_gap", input_shape=SHAPE, num_classes=3, weights=weights)


def _outputs(model) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(_pixels()))


def test_backbones_default_to_imagenet_others_to_random_init():
    defaults = {name: zoo.model_info(name).default_weights for name in zoo.list_models()}
    assert {name for name, tag in defaults.items() if tag == "imagenet"} == set(
        zoo.list_models("*_flatten") + zoo.list_models("*_gap") + zoo.list_models("*_max")
    )
    assert {defaults[name] for name in ("cnn", "simple_rnn", "lstm", "gru")} == {None}
    assert zoo.resolve_weights("resnet50_max") == "imagenet"
    assert zoo.resolve_weights("resnet50_max", None) is None
    assert zoo.resolve_weights("lstm") is None
    assert zoo.model_info("vgg16_gap").to_dict()["default_weights"] == "imagenet"


@pytest.mark.parametrize("save", ["keras3", "legacy"])
def test_backbone_weights_file_loads_in_either_layout(save, tmp_path):
    source = _mobilenet(seed=1)
    backbone = source.get_layer("backbone")
    path = tmp_path / ("body.weights.h5" if save == "keras3" else "body.h5")
    if save == "keras3":
        backbone.save_weights(path)
    else:
        _save_legacy(backbone, path)
    assert weights_layout(path) == {"keras3": "keras3_h5", "legacy": "legacy_h5"}[save]
    loaded = _mobilenet(weights=str(path), seed=2)  # another seed: only the file can match
    for ours, theirs in zip(loaded.get_layer("backbone").weights, backbone.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    loaded.get_layer("predictions").set_weights(source.get_layer("predictions").get_weights())
    np.testing.assert_array_equal(_outputs(loaded), _outputs(source))


@pytest.mark.parametrize("layout", ["keras", "keras3_h5", "legacy_h5"])
def test_whole_model_file_loads_whatever_its_name(layout, tmp_path):
    source = _mobilenet(seed=3)
    path = tmp_path / "whole.h5"  # one misleading suffix for all three: content decides
    if layout == "keras":
        source.save(tmp_path / "whole.keras")
        (tmp_path / "whole.keras").rename(path)
    elif layout == "keras3_h5":
        source.save_weights(tmp_path / "whole.weights.h5")
        (tmp_path / "whole.weights.h5").rename(path)
    else:
        _save_legacy(source, path)
    assert weights_layout(path) == layout
    np.testing.assert_array_equal(_outputs(_mobilenet(weights=str(path), seed=4)), _outputs(source))


def test_a_file_from_another_architecture_is_one_line(tmp_path):
    path = tmp_path / "mobilenet_body.weights.h5"
    _mobilenet().get_layer("backbone").save_weights(path)
    with pytest.raises(ValueError) as caught:
        zoo.create_model("vgg16_gap", input_shape=SHAPE, weights=str(path))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"vgg16_gap: could not load weights from {str(path)!r} (keras3_h5)")
    assert "another architecture/shape" in message


def test_a_file_that_is_no_keras_weights_is_one_line(tmp_path):
    path = tmp_path / "notes.weights.h5"
    path.write_text("not weights")
    assert weights_layout(path) is None
    with pytest.raises(ValueError, match=r"is none of them \(damaged or truncated\?\)"):
        zoo.create_model("mobilenet_v2_gap", input_shape=SHAPE, weights=str(path))
