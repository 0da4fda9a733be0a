"""zoo.runs: the run directory's layout and its config reader (what finetune writes, convert
reads)."""

from __future__ import annotations

import pytest

from zoo.runs import RunPaths, read_run_config


def test_run_paths_name_every_file_of_a_run(tmp_path):
    paths = RunPaths(str(tmp_path))
    assert paths.root == tmp_path
    names = {
        "model": "model.keras",
        "config": "config.yaml",
        "metrics": "metrics.json",
        "history": "history.csv",
        "class_names": "class_names.json",
        "precision": "precision.json",
        "logs": "logs",
        "checkpoints": "checkpoints",
        "curves_png": "training_curves.png",
        "confusion_png": "confusion_matrix.png",
    }
    assert {name: getattr(paths, name).relative_to(tmp_path).as_posix() for name in names} == names
    assert paths.state.relative_to(tmp_path).as_posix() == "checkpoints/state.json"
    assert paths.best_weights.relative_to(tmp_path).as_posix() == "checkpoints/best.npz"
    assert paths.epoch_weights(7).name == "epoch-0007.weights.h5"


def test_finetune_writes_the_layout_zoo_defines():
    from finetune import rundir

    assert rundir.RunPaths is RunPaths


def test_read_run_config(tmp_path):
    assert read_run_config(tmp_path) == {}  # a folder holding only model.keras is a valid run
    (tmp_path / "config.yaml").write_text("model: cnn\ndata: builtin:digits\ninput_shape: [28, 28, 1]\n")  # fmt: skip
    assert read_run_config(tmp_path) == {
        "model": "cnn",
        "data": "builtin:digits",
        "input_shape": [28, 28, 1],
    }
    (tmp_path / "config.yaml").write_text("")
    assert read_run_config(tmp_path) == {}


@pytest.mark.parametrize(
    "content, message",
    [
        (b"model: [cnn\n", r"config.yaml' is not valid YAML \(while parsing"),
        (b"- cnn\n- lstm\n", "should hold a mapping. Received: list"),
        (b"model: \xff\xfe\n", "should be UTF-8 YAML text"),
    ],
)
def test_read_run_config_errors_are_one_line(tmp_path, content, message):
    (tmp_path / "config.yaml").write_bytes(content)
    with pytest.raises(ValueError, match=message) as error:
        read_run_config(tmp_path)
    assert "\n" not in str(error.value)
