"""Data as users keep it, through `zoo finetune`, and run records that work from any directory:
split folders train as given; a run started in one directory converts from another, on the
examples it validated on; its config.yaml goes back into `--config`; older runs that recorded
relative paths still load, or say how to fix them. Real data: scikit-learn's digits as PNGs."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from zoo.cli import main

TINY = ("--option", "filters=[4]", "--option", "dense_units=8", "--input-shape", "16,16,1",
        "--epochs", "2", "--batch-size", "8", "--quiet")  # fmt: skip


@contextlib.contextmanager
def _cwd(path: Path):
    before = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)


def _write_digits(folder: Path, per_class: int, start: int = 0) -> None:
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label in (0, 1, 2):
        (folder / str(label)).mkdir(parents=True)
        for index in np.flatnonzero(digits.target == label)[start : start + per_class]:
            pixels = np.rint(digits.images[index] * (255 / 16)).astype(np.uint8)
            Image.fromarray(pixels).save(folder / str(label) / f"{index}.png")


def _invoke(*args: str):
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def start(tmp_path_factory) -> Path:
    """The directory runs are started from: photos/<class>/ and split/{train,val,test}/<class>/."""
    root = tmp_path_factory.mktemp("start")
    _write_digits(root / "photos", per_class=12)
    _write_digits(root / "split" / "train", per_class=6)
    _write_digits(root / "split" / "val", per_class=2, start=6)
    _write_digits(root / "split" / "test", per_class=3, start=8)
    return root


@pytest.fixture(scope="module")
def run(start) -> Path:
    """A run started in `start` with relative paths, its own seed and val_split."""
    with _cwd(start):
        _invoke("finetune", *TINY, "--data", "photos", "--seed", "3", "--val-split", "0.3",
                "--out", "runs/photos")  # fmt: skip
    return start / "runs" / "photos"


def test_split_folders_train_with_the_splits_as_given(start):
    with _cwd(start):
        _invoke("finetune", *TINY, "--data", "split", "--out", "runs/split")
    metrics = json.loads((start / "runs" / "split" / "metrics.json").read_text())
    assert metrics["class_names"] == ["0", "1", "2"]  # not ["test", "train", "val"]
    assert metrics["examples"] == {"train": 18, "val": 6, "test": 9}


def test_the_run_records_absolute_paths(run, start):
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["data"] == str(start / "photos")
    assert config["out"] == str(run)
    assert (config["seed"], config["val_split"]) == (3, 0.3)


def test_a_run_converts_from_another_directory_on_its_own_validation_split(run, tmp_path):
    with _cwd(tmp_path):
        result = _invoke("convert", str(run), "--precision", "int8", "--json", "--quiet")
    report = json.loads(result.stdout)
    metrics = json.loads((run / "metrics.json").read_text())
    assert report["passed"] and Path(report["artefact"]) == run / "model.int8.onnx"
    # The run's seed and val_split: 4 of each class's 12 (0.2 would give 2 or 3), the same
    # examples the run scored, so the same Keras accuracy.
    assert report["n_samples"] == metrics["examples"]["val"] == 12
    assert report["accuracy_reference"] == pytest.approx(metrics["val"]["accuracy"], abs=1e-6)


def test_a_runs_config_goes_back_into_config(run, tmp_path):
    again = tmp_path / "again"
    with _cwd(tmp_path):
        _invoke("finetune", "--config", str(run / "config.yaml"), "--out", str(again), "--quiet")
    first = yaml.safe_load((run / "config.yaml").read_text())
    second = yaml.safe_load((again / "config.yaml").read_text())
    same = ("model", "data", "model_options", "input_shape", "seed", "val_split", "epochs")
    assert {key: second[key] for key in same} == {key: first[key] for key in same}
    assert second["out"] == str(again)


def test_an_older_runs_relative_paths_still_load(run, start, tmp_path):
    from finetune.config import config_from_run_yaml
    from zoo.runs import read_run_config

    older = start / "runs" / "older"
    older.mkdir()
    (older / "model.keras").write_bytes((run / "model.keras").read_bytes())
    config = yaml.safe_load((run / "config.yaml").read_text())
    # As runs were recorded before: relative to the directory the run was started from.
    config.update(data="photos?classes=0,1,2", out="runs/older")
    (older / "config.yaml").write_text(yaml.safe_dump(config))
    with _cwd(tmp_path):  # neither the run directory nor here holds photos/: its start does
        assert read_run_config(older)["data"] == f"{start / 'photos'}?classes=0,1,2"
        assert config_from_run_yaml(older / "config.yaml").data == str(start / "photos") + (
            "?classes=0,1,2"
        )
        _invoke("convert", str(older), "--precision", "int8", "--quiet")
    assert (older / "model.int8.onnx").is_file()


def test_an_older_runs_data_found_nowhere_is_one_error_line(run, tmp_path):
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / "model.keras").write_bytes((run / "model.keras").read_bytes())
    config = yaml.safe_load((run / "config.yaml").read_text())
    config.update(data="photos", out="runs/photos")
    (moved / "config.yaml").write_text(yaml.safe_dump(config))
    with _cwd(tmp_path):
        result = CliRunner().invoke(main, ["convert", str(moved), "--precision", "int8"])
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
    assert "records data 'photos' relative to the directory that run was started from" in errors[0]
    assert "--calib-data PATH" in errors[0] and "--data" not in errors[0]
    with _cwd(tmp_path):
        given = CliRunner().invoke(
            main, ["convert", str(moved), "--precision", "int8", "--quiet",
                   "--calib-data", str(run.parents[1] / "photos")],
        )  # fmt: skip
    assert given.exit_code == 0, given.output


def test_a_run_resumes_from_another_directory(run, tmp_path):
    """--resume reads the run's data back from its record (a finished run: nothing left to
    train, but the record, the data and the checkpoint are all read)."""
    with _cwd(tmp_path):
        _invoke("finetune", "--resume", "--out", str(run), "--quiet")
    assert yaml.safe_load((run / "config.yaml").read_text())["data"] == str(
        run.parents[1] / "photos"
    )
    with _cwd(tmp_path):  # the same run with the data out of reach fails on the data, not before
        (run.parents[1] / "photos").rename(run.parents[1] / "photos.moved")
        try:
            failed = CliRunner().invoke(main, ["finetune", "--resume", "--out", str(run)])
        finally:
            (run.parents[1] / "photos.moved").rename(run.parents[1] / "photos")
    assert (
        failed.exit_code == 1 and f"{run.parents[1] / 'photos'}: no such directory" in failed.output
    )


def test_a_csv_manifest_feeds_tf_data_the_pixels_load_arrays_gives(start, tmp_path):
    """A manifest over WebP and TIFF files (plus the PNG digits): the tf.data splits hold the
    examples and pixels `zoo.data.load_arrays` gives, split column as given."""
    from finetune.data import load_data
    from zoo.data import load_arrays

    rows = ["path,label,split"]
    for number, path in enumerate(sorted((start / "photos").rglob("*.png"))):
        image = Image.open(path)
        kind = (".webp", ".tif", ".png")[number % 3]
        target = tmp_path / "files" / f"{number}{kind}"
        target.parent.mkdir(exist_ok=True)
        image.save(target, **({"lossless": True} if kind == ".webp" else {}))
        split = ("train", "train", "val", "test")[number % 4]
        rows.append(f"files/{target.name},digit {path.parent.name},{split}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    spec = str(tmp_path / "labels.csv")
    data = load_data(spec, task="image", input_shape=(16, 16, 1), batch_size=4)
    assert data.class_names == ["digit 0", "digit 1", "digit 2"]
    assert (data.num_train, data.num_val, data.num_test) == (18, 9, 9)
    for split in ("val", "test"):
        arrays = load_arrays(spec, task="image", input_shape=(16, 16, 1), split=split)
        batches = list(getattr(data, split).as_numpy_iterator())
        np.testing.assert_array_equal(np.concatenate([x for x, _ in batches]), arrays.x)
        np.testing.assert_array_equal(np.concatenate([y for _, y in batches]), arrays.y)


def test_files_failing_late_are_one_warning_per_decoded_chunk(start, tmp_path):
    """A file that changes after the up-front check: the tf.data decode drops it with one line
    for the chunk, naming up to 3 files, not a line per file."""
    from finetune.data._tfdata import _decode_chunk

    good = sorted((start / "photos" / "0").glob("*.png"))[0]
    paths = [str(good)] + [str(tmp_path / f"gone{n}.png") for n in range(4)]
    with pytest.warns(UserWarning) as caught:
        images, ok = _decode_chunk(np.array([p.encode() for p in paths]), (8, 8, 1))
    assert ok.tolist() == [True, False, False, False, False] and len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("skipping 4 image(s) that failed to decode, e.g. ")
    assert "gone2.png" in message and "gone3.png" not in message and message.endswith(", ...")
    np.testing.assert_array_equal(images[0, ..., 0], np.asarray(Image.open(good), np.float32))
