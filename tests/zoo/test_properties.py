"""Property: whatever a user passes to `zoo.create_model`, it builds or raises a ValueError.

Never a TypeError, AttributeError or a Keras internal error: the CLI turns ValueError into a
one-line `Error: ...`, anything else into a traceback. Sizes stay tiny so each example builds in
milliseconds; `cnn` and `lstm` stand for the image and sequence builders.
"""

from __future__ import annotations

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import zoo

SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same examples on every run: a CI failure reproduces locally
    suppress_health_check=[HealthCheck.too_slow],
)

# Values a YAML `--option key=value` or a config file can produce, plus a few Python ones.
ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=4),
    st.lists(st.integers(-2, 6), max_size=3),
    st.tuples(st.integers(1, 4)),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)
DIM = st.one_of(
    st.none(),
    st.integers(-2, 24),
    st.floats(-1, 30),
    st.sampled_from([float("inf"), float("nan"), 28.5, True, "28"]),
    st.text(max_size=2),
)
SHAPE = st.one_of(st.none(), st.lists(DIM, max_size=4).map(tuple), st.text(max_size=4), ANY_VALUE)
CLASSES = st.one_of(
    st.none(), st.integers(-2, 5), st.floats(-1, 5), st.booleans(), st.text(max_size=2)
)

CNN_OPTIONS = {
    "filters": st.one_of(st.lists(st.integers(-1, 4), max_size=3), ANY_VALUE),
    "kernel_size": st.one_of(st.integers(-1, 4), ANY_VALUE),
    "dense_units": st.one_of(st.integers(-1, 4), ANY_VALUE),
    "dropout": st.one_of(st.floats(-0.5, 1.5), ANY_VALUE),
    "classifier_activation": st.one_of(st.sampled_from(["auto", "softmax", "linear"]), ANY_VALUE),
}
LSTM_OPTIONS = {
    "units": st.one_of(st.integers(-1, 4), ANY_VALUE),
    "num_layers": st.one_of(st.integers(-1, 2), ANY_VALUE),
    "bidirectional": ANY_VALUE,
    "dropout": st.one_of(st.floats(-0.5, 1.5), ANY_VALUE),
    "masking": ANY_VALUE,
    "mask_value": ANY_VALUE,
    "classifier_activation": st.one_of(st.sampled_from(["auto", "sigmoid", None]), ANY_VALUE),
}


def _options(known: dict) -> st.SearchStrategy:
    """A few known options with odd values, sometimes an unknown one."""
    return st.fixed_dictionaries({}, optional={**known, "not_an_option": ANY_VALUE, "": ANY_VALUE})


def _builds_or_value_error(name: str, **kwargs) -> None:
    try:
        model = zoo.create_model(name, **{"weights": None, **kwargs})  # random init: offline
    except ValueError as error:
        message = str(error)
        assert message and "\n" not in message.strip(), f"not one line: {message!r}"
        return
    except Exception as error:  # the property: nothing but ValueError escapes
        pytest.fail(
            f"zoo.create_model({name!r}, **{kwargs!r}) raised {type(error).__name__}: {error}"
        )
    assert isinstance(model, keras.Model)
    keras.backend.clear_session()


@SETTINGS
@given(input_shape=SHAPE, num_classes=CLASSES, options=_options(CNN_OPTIONS))
def test_cnn_builds_or_raises_value_error(input_shape, num_classes, options):
    _builds_or_value_error("cnn", input_shape=input_shape, num_classes=num_classes, **options)


@SETTINGS
@given(input_shape=SHAPE, num_classes=CLASSES, options=_options(LSTM_OPTIONS))
def test_lstm_builds_or_raises_value_error(input_shape, num_classes, options):
    _builds_or_value_error("lstm", input_shape=input_shape, num_classes=num_classes, **options)


@SETTINGS
@given(name=st.one_of(st.text(max_size=12), ANY_VALUE))
def test_any_name_is_a_model_or_unknown_model_error(name):
    if isinstance(name, str) and zoo.is_model(name):
        return
    with pytest.raises(zoo.UnknownModelError):
        zoo.model_info(name)
