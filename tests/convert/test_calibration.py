"""Calibration data through `zoo.data`: splits, and labels that must fit the model's classes."""

from __future__ import annotations

import numpy as np
import pytest

from convert.calibration import check_classes, load_calibration, model_classes


def test_a_sigmoid_unit_predicts_two_classes():
    assert model_classes(1) == 2 and model_classes(10) == 10 and model_classes(None) is None
    check_classes("FILE.npz", ["no", "yes"], output_width=1)  # fits: no error
    with pytest.raises(ValueError, match="has 3 classes but the model predicts 2"):
        check_classes("FILE.npz", ["a", "b", "c"], output_width=1)


def test_class_names_must_be_the_runs():
    check_classes("builtin:x", ["cat", "dog"], output_width=2, run_class_names=["cat", "dog"])
    with pytest.raises(ValueError) as caught:
        check_classes("builtin:x", ["dog", "cat"], output_width=2, run_class_names=["cat", "dog"])
    message = str(caught.value)
    assert "\n" not in message and "cat, dog" in message and "Received: --calib-data" in message


def test_calibration_from_train_evaluation_from_val_else_train(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (40, 8, 8, 1)).astype("float32")
    y = np.arange(40) % 4
    np.savez(tmp_path / "with_val.npz", x=x[:30], y=y[:30], x_val=x[30:], y_val=y[30:])
    data = load_calibration(
        str(tmp_path / "with_val.npz"), input_name="image", input_shape=(8, 8, 1), output_width=4
    )
    assert len(data.calibration[0]) == 30 and len(data.evaluation[0]) == 10
    np.testing.assert_array_equal(np.sort(data.evaluation[1]), np.sort(y[30:]))
    assert data.class_names == ["0", "1", "2", "3"]
    with pytest.raises(ValueError, match="has 4 classes but the model predicts 10"):
        load_calibration(
            str(tmp_path / "with_val.npz"), input_name="image", input_shape=(8, 8, 1),
            output_width=10,
        )  # fmt: skip


def test_an_input_that_is_neither_image_nor_sequence_is_refused():
    with pytest.raises(ValueError, match="images .* or sequences"):
        load_calibration("builtin:digits", input_name="pixels_in", input_shape=(4,))
