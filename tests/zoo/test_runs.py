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


def test_recorded_relative_paths_resolve_run_dir_first_then_start_then_here(tmp_path, monkeypatch):
    from zoo.runs import recorded_data, resolve_recorded_paths

    start, here = tmp_path / "project", tmp_path / "elsewhere"
    run = start / "runs" / "a"
    for folder in (run / "photos", start / "photos", start / "seqs", here / "seqs", here / "w"):
        folder.mkdir(parents=True)
    (here / "w" / "head.weights.h5").write_bytes(b"")
    monkeypatch.chdir(here)
    values = {
        "data": "photos?classes=cat,dog",
        "out": "runs/a",
        "from_run": "seqs",
        "weights": "w/head.weights.h5",
    }
    resolved = resolve_recorded_paths(values, run)
    assert resolved["data"] == f"{run / 'photos'}?classes=cat,dog"  # the run directory first
    assert resolved["from_run"] == str(start / "seqs")  # then where the run started
    assert resolved["weights"] == str(here / "w" / "head.weights.h5")  # then here
    (run / "photos").rmdir()
    assert resolve_recorded_paths(values, run)["data"] == f"{start / 'photos'}?classes=cat,dog"
    kept = {"data": "builtin:digits", "weights": "imagenet", "from_run": "/abs/run", "out": "x"}
    assert resolve_recorded_paths(kept, run) == kept
    config = resolve_recorded_paths({"data": "gone", "out": "runs/a"}, run)
    assert config["data"] == "gone"  # found nowhere: kept as written, and recorded_data says so
    with pytest.raises(ValueError) as error:
        recorded_data(run, config)
    message = str(error.value)
    assert "\n" not in message and f"none of {run}, {start} or the current directory" in message
    assert "--calib-data PATH" in message and message.endswith("Received: data='gone'")
    assert recorded_data(run, {"data": "builtin:digits"}) == "builtin:digits"
