"""Property: any `.npz` (odd shapes, dtypes, labels) loads or raises a one-line ValueError.

tests/zoo/test_data.py covers the data-spec parser with hypothesis; this covers the arrays
behind a `FILE.npz` spec, which come from users' own code, through finetune's `load_data` and
through `zoo.data.load_arrays` (which also resizes them, as calibration does).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from finetune.data import load_data
from zoo.data import load_arrays

DTYPES = st.sampled_from(["float32"] * 3 + ["float64", "int64", "uint8", "bool", "complex64", "U2"])
SIDE = st.integers(0, 6)


@st.composite
def arrays(draw):
    """x and y; mostly plausible (as many rows as labels, labels 0..2), so later checks run."""
    rows = draw(st.integers(0, 8))
    x_shape = draw(st.lists(SIDE, min_size=0, max_size=3))
    x_shape = [rows, *x_shape] if draw(st.integers(0, 4)) or not x_shape else x_shape
    y_shape = draw(st.sampled_from([[rows]] * 4 + [[rows, 1], [rows, 2], [], [rows + 1]]))
    x = draw(hnp.arrays(DTYPES, x_shape))
    y_dtype = draw(st.sampled_from(["int64"] * 4 + ["float32", "bool", "U1"]))
    elements = st.integers(0, 2) | st.integers(-1, 9) if y_dtype == "int64" else None
    y = draw(hnp.arrays(y_dtype, y_shape, elements=elements))
    return x, y


@st.composite
def plausible(draw):
    """Images or sequences with 1-3 classes, one odd detail away from valid (or valid)."""
    rows = draw(st.integers(2, 8))
    inner = draw(st.sampled_from([(8, 8), (8, 8, 1), (5, 3), (4, 2, 3), (6,), (3, 3, 3)]))
    pixels = st.floats(0, 255, width=32) | st.just(float("nan"))
    if draw(st.booleans()):
        x = draw(hnp.arrays("float32", (rows, *inner), elements=pixels))
    else:
        x = draw(hnp.arrays(DTYPES, (rows, *inner)))
    classes = draw(st.integers(1, 3))
    y = (np.arange(rows) % classes).astype(draw(st.sampled_from(["int64", "float32"])))
    return x, y


SETTINGS = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@SETTINGS
@given(xy=st.one_of(arrays(), plausible()), task=st.sampled_from(["image", "sequence"]))
def test_any_npz_loads_or_raises_value_error(tmp_path, xy, task):
    x, y = xy
    path = tmp_path / "data.npz"
    np.savez(path, x=x, y=y)
    shape = (8, 8, 1) if task == "image" else (None, None)
    try:
        load_data(str(path), task=task, input_shape=shape, batch_size=2, val_split=0.0)
        load_arrays(str(path), task=task, input_shape=shape, val_split=0.0)
    except ValueError as error:
        assert "\n" not in str(error).strip() and "data.npz" in str(error), str(error)
    except Exception as error:  # the property: nothing but ValueError escapes
        pytest.fail(f"x {x.dtype}{x.shape}, y {y.dtype}{y.shape}: {type(error).__name__}: {error}")
