"""Every registered model, parametrised over `zoo.list_models()`: a new model is tested unedited.

Under a backend other than TensorFlow (CI's JAX pass) one head per backbone body stands for the
three: see `models_for_backend`.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

import zoo
from tests.zoo.helpers import (
    compile_for,
    models_for_backend,
    random_inputs,
    random_labels,
    small_input_shape,
)

ALL_MODELS = models_for_backend()
# At its default shape a backbone is 224x224, which only this test builds: under a second backend
# that costs a compile of every op at new shapes to re-check backend-free facts (parameter count,
# shapes); the other tests build each body there at 32x32. The other models' defaults are the
# shapes every test uses.
AT_DEFAULTS = [
    n
    for n in ALL_MODELS
    if keras.backend.backend() == "tensorflow" or not zoo.model_info(n).pretrained
]
SEQUENCE_MODELS = models_for_backend(task="sequence")
# The recurrent entries (their options include num_layers); the convolutional sequence models'
# padding is tested in tests/zoo/test_sequence_cnn.py.
RNN_MODELS = [n for n in SEQUENCE_MODELS if "num_layers" in zoo.model_info(n).options]
# A bidirectional model holds a forward copy of the same recurrent layer, so under a second backend
# the bidirectional case alone runs the masked step code both ways (the builder's unidirectional
# branch is backend-free and runs under TensorFlow).
DIRECTIONS = [False, True] if keras.backend.backend() == "tensorflow" else [True]


@pytest.mark.parametrize("name", AT_DEFAULTS)
def test_builds_at_defaults_as_described(name):
    info = zoo.model_info(name)
    model = zoo.create_model(name, weights=None)
    assert model.name == name
    # info.params comes from zoo/_params.json; regenerate it with `python -m zoo._params`.
    assert model.count_params() == info.params > 0, "zoo/_params.json is stale"
    assert tuple(model.input_shape[1:]) == info.input_shape
    assert model.output_shape == (None, info.num_classes)
    assert info.description and "\n" not in info.description


@pytest.mark.parametrize("name", ALL_MODELS)
def test_builds_with_overridden_shape_and_classes(name):
    shape = small_input_shape(name)
    model = zoo.create_model(name, input_shape=shape, num_classes=3, weights=None)
    outputs = model(random_inputs(name))
    assert tuple(outputs.shape) == (2, 3)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(outputs).sum(axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_one_training_step_gives_finite_loss(name):
    model = zoo.create_model(name, input_shape=small_input_shape(name), num_classes=4, weights=None)
    compile_for(model, 4)
    loss = model.train_on_batch(random_inputs(name, batch=4), random_labels(4, batch=4))
    assert np.isfinite(float(np.asarray(loss).ravel()[0]))


@pytest.mark.parametrize("name", ALL_MODELS)
def test_keras_file_round_trip_in_safe_mode(name, tmp_path):
    model = zoo.create_model(name, input_shape=small_input_shape(name), num_classes=2, weights=None)
    inputs = random_inputs(name)
    path = tmp_path / f"{name}.keras"
    model.save(path)
    reloaded = zoo.load_model(path)  # safe_mode=True
    assert keras.saving.load_model(path, safe_mode=True).name == name
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(model(inputs)), keras.ops.convert_to_numpy(reloaded(inputs))
    )


@pytest.mark.parametrize("name", ALL_MODELS)
def test_output_stays_float32_under_mixed_precision(name):
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = zoo.create_model(name, input_shape=small_input_shape(name), num_classes=3, weights=None)
    assert model.get_layer("predictions").dtype_policy.compute_dtype == "float32"
    assert keras.ops.convert_to_numpy(model(random_inputs(name))).dtype == np.float32


@pytest.mark.parametrize("name", SEQUENCE_MODELS)
def test_sequence_models_take_any_length(name):
    info = zoo.model_info(name)
    model = zoo.create_model(name)
    assert model.input_shape == (None, None, info.input_shape[-1])
    short = model(random_inputs(name, length=3))
    long = model(random_inputs(name, length=40))
    assert tuple(short.shape) == tuple(long.shape) == (2, info.num_classes)


@pytest.mark.parametrize("name", RNN_MODELS)
@pytest.mark.parametrize("bidirectional", DIRECTIONS)
def test_masking_ignores_trailing_padding(name, bidirectional):
    model = zoo.create_model(name, masking=True, num_layers=2, bidirectional=bidirectional)
    sequences = random_inputs(name, length=6)
    padded = np.concatenate([sequences, np.zeros((2, 5, 10), "float32")], axis=1)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(model(sequences)),
        keras.ops.convert_to_numpy(model(padded)),
        rtol=1e-5,
        atol=1e-6,
    )
    unmasked = zoo.create_model(name, num_layers=2, bidirectional=bidirectional)
    unmasked.set_weights(model.get_weights())
    assert not np.allclose(
        keras.ops.convert_to_numpy(unmasked(sequences)),
        keras.ops.convert_to_numpy(unmasked(padded)),
    ), "without masking the padding should change the output"


@pytest.mark.parametrize("name", ALL_MODELS)
def test_whole_model_weights_file_is_loaded(name, tmp_path):
    shape = small_input_shape(name)
    trained = zoo.create_model(name, input_shape=shape, num_classes=2, weights=None)
    for variable in trained.trainable_variables:
        variable.assign(variable + 0.01)
    path = tmp_path / "trained.weights.h5"
    trained.save_weights(path)
    loaded = zoo.create_model(name, input_shape=shape, num_classes=2, weights=str(path))
    inputs = random_inputs(name)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(trained(inputs)),
        keras.ops.convert_to_numpy(loaded(inputs)),
        rtol=1e-6,
    )
