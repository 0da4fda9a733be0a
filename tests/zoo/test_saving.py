"""Saved zoo models load with plain `keras.saving.load_model` once `zoo` is imported.

Backbone heads build their preprocessing from stock Keras layers, so no zoo class is needed to
load them; models saved before that hold zoo's `ImagePreprocessing` and load via
`zoo.load_model`. Each load runs in a fresh interpreter that makes no other zoo call.
"""

from __future__ import annotations

import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo
from tests.zoo.helpers import random_inputs, small_input_shape

FAMILY_HEADS = ["vgg16_gap", "resnet50_gap", "mobilenet_v2_gap", "efficientnet_b0_gap"]

_LOAD_ALL = """
import sys, numpy as np
import zoo
import keras
x = np.load(sys.argv[1])
for path in sys.argv[2:]:
    load = zoo.load_model if path.endswith("old.keras") else keras.saving.load_model
    np.save(path + ".npy", keras.ops.convert_to_numpy(load(path)(x[path.rsplit("/", 1)[1]])))
"""


def _old_style_model(tmp_path):
    """A mobilenet head as zoo saved it before: one custom ImagePreprocessing layer."""
    from zoo._layers import ImagePreprocessing

    current = zoo.create_model("mobilenet_v2_gap", input_shape=(32, 32, 3), weights=None)
    inputs = keras.Input((32, 32, 3), name="image")
    x = ImagePreprocessing("tf", name="preprocessing")(inputs)
    x = current.get_layer("backbone")(x, training=False)
    outputs = current.get_layer("predictions")(current.get_layer("gap_pool")(x))
    return current, keras.Model(inputs, outputs, name="mobilenet_v2_gap")


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="a fresh interpreter finds zoo's registrations whatever the backend; under a second "
    "backend test_models' round trip and test_reference's preprocessing parity cover the loads",
)
def test_every_family_loads_with_plain_keras_and_old_files_with_zoo(tmp_path):
    expected, inputs, paths = {}, {}, []
    for name in FAMILY_HEADS:
        model = zoo.create_model(name, input_shape=small_input_shape(name), weights=None)
        path = tmp_path / f"{name}.keras"
        model.save(path)
        inputs[path.name] = random_inputs(name)
        expected[str(path)] = keras.ops.convert_to_numpy(model(inputs[path.name]))
        paths.append(str(path))
    current, old = _old_style_model(tmp_path)
    old.save(tmp_path / "old.keras")
    inputs["old.keras"] = random_inputs("mobilenet_v2_gap")
    expected[str(tmp_path / "old.keras")] = keras.ops.convert_to_numpy(old(inputs["old.keras"]))
    np.testing.assert_allclose(  # the stock layers compute what the old class did
        keras.ops.convert_to_numpy(current(inputs["old.keras"])),
        expected[str(tmp_path / "old.keras")],
        rtol=1e-5,
        atol=1e-6,
    )
    np.savez(tmp_path / "x.npz", **inputs)
    paths.append(str(tmp_path / "old.keras"))
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_ALL, str(tmp_path / "x.npz"), *paths],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for path, want in expected.items():
        np.testing.assert_array_equal(np.load(path + ".npy"), want)


@pytest.mark.parametrize("name", ["vgg16_gap", "mobilenet_v2_gap"])
def test_preprocessing_is_stock_keras_layers(name):
    model = zoo.create_model(name, input_shape=(32, 32, 3), weights=None)
    custom = [
        type(layer).__name__
        for layer in model.layers
        if not type(layer).__module__.startswith("keras")
    ]
    assert custom == []
