"""zoo.load_model's safe mode holds even after keras.config.enable_unsafe_deserialization()."""

from __future__ import annotations

import keras
import pytest

import zoo
from tests.reliability.inputs import keras_files


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    keras_files(folder)
    return folder


@pytest.fixture
def unsafe_globally():
    """Another library or notebook cell turned Keras' process-wide safe mode off."""
    from keras.src.backend.common import global_state

    before = global_state.get_global_attribute("safe_mode_saving")
    keras.config.enable_unsafe_deserialization()
    yield
    global_state.set_global_attribute("safe_mode_saving", before)


@pytest.mark.parametrize("name", ["lambda.keras", "os_system.keras"])
def test_safe_mode_is_not_overridden_by_the_global_switch(models, unsafe_globally, name):
    with pytest.raises(ValueError, match=name):
        zoo.load_model(models / name)


def test_unsafe_loading_is_an_explicit_choice(models):
    assert zoo.load_model(models / "lambda.keras", safe_mode=False).get_layer("doubling")
    with pytest.raises(ValueError, match="safe_mode=False"):
        zoo.load_model(models / "lambda.keras")
