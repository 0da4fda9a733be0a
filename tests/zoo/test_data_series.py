"""zoo.data for series: `?normalize=series` and the UCR sets added for the sequence models."""

from __future__ import annotations

import numpy as np
import pytest

from zoo.data import load_arrays, parse_data_spec
from zoo.data._znorm import znorm


def _npz(tmp_path, lengths=(5, 8)):
    rng = np.random.default_rng(0)
    series = [rng.normal(3.0, 5.0, size=(n, 2)).astype("float32") for n in lengths]
    series[0][:, 1] = 7.0  # a constant channel
    x = np.zeros((len(series), max(lengths), 2), "float32")
    for row, s in enumerate(series):
        x[row, : len(s)] = s
    path = tmp_path / "own.npz"
    np.savez(path, x=x, y=np.array([0, 1]), lengths=np.array(lengths))
    return path, series


def test_normalize_series_z_normalises_each_series_over_its_own_steps(tmp_path):
    path, series = _npz(tmp_path)
    spec = f"{path}?normalize=series"
    assert str(parse_data_spec(spec)) == spec
    got = load_arrays(spec, task="sequence", input_shape=(None, 2), val_split=0, split="train")
    raw = load_arrays(str(path), task="sequence", input_shape=(None, 2), val_split=0)
    for s in series:
        index = int(np.flatnonzero(np.all(raw.x[:, : len(s)] == s, axis=(1, 2)))[0])
        real = got.x[index, : len(s)]
        np.testing.assert_allclose(real[:, 0].mean(), 0.0, atol=1e-6)
        np.testing.assert_allclose(real[:, 0].std(), 1.0, atol=1e-5)
        assert not got.x[index, len(s) :].any()  # padding stays zero, added after
    constant = got.x[int(np.flatnonzero(raw.x[:, 0, 1] == 7.0)[0]), :5, 1]
    np.testing.assert_array_equal(constant, 0.0)
    np.testing.assert_allclose(znorm(np.array([[1.0], [3.0]])).ravel(), [-1.0, 1.0])


@pytest.mark.parametrize(
    "spec, task, message",
    [
        ("own.npz?normalize=minmax", "sequence", "normalize should be series"),
        ("builtin:digits?normalize=series", "image", "applies to sequence data only"),
    ],
)
def test_normalize_errors_are_one_line(spec, task, message):
    with pytest.raises(ValueError, match=message) as error:
        shape = (8, 8, 1) if task == "image" else (None, 1)
        load_arrays(spec, task=task, input_shape=shape)
    assert "\n" not in str(error.value) and "Received:" in str(error.value)


@pytest.mark.parametrize(
    "name, shape, classes, sizes",
    [
        ("arrow_head", (251, 1), 3, (36, 175)),
        ("osu_leaf", (427, 1), 6, (200, 242)),
        ("acsf1", (1460, 1), 10, (100, 100)),
    ],
)
def test_added_ucr_sets_have_the_archive_split(name, shape, classes, sizes):
    test = load_arrays(f"builtin:{name}", task="sequence", input_shape=None, split="test")
    train = load_arrays(f"builtin:{name}", task="sequence", input_shape=None, val_split=0)
    assert test.x.shape == (sizes[1], *shape) and len(train) == sizes[0]
    assert len(test.class_names) == classes == len(np.unique(train.y))
    # Stored z-normalised, as the archive's sets are: normalize=series changes little.
    np.testing.assert_allclose(test.x.mean(axis=1), 0.0, atol=1e-3)
