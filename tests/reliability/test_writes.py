"""Failing disks, read-only folders and the never-overwrite rule, through the `zoo` CLI.

A full disk is simulated: the atomic writer's flush (`finetune.rundir._sync`, the fsync before
the rename) or `onnx.save` cuts the file in half and raises OSError(ENOSPC). A read-only folder is
simulated too: tests run as root, for whom chmod does not stop writes, so `tempfile.mkstemp`
raises PermissionError for the run directory (a real path under a regular file is in the
catalogue: `out-under-a-file`). Each must give one `Error:` line naming the file and the fix,
exit 1, and leave neither a partial file under a final name nor a temporary file behind.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from finetune import rundir
from tests.reliability.catalogue import TINY
from tests.reliability.test_catalogue import assert_one_line_error
from zoo.cli import main


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    import numpy as np

    from tests.reliability.inputs import png_folder

    return png_folder(tmp_path_factory.mktemp("images"), ("a", "b"), 6, np.random.default_rng(0))


def _finetune(data: Path, out: Path, *extra: str):
    return CliRunner().invoke(
        main, ["finetune", *TINY, "--data", str(data), "--out", str(out), *extra]
    )


def _temp_files(run: Path) -> list[str]:
    folders = [run, run / "checkpoints"]
    return [p.name for folder in folders if folder.is_dir() for p in folder.glob(".*.tmp*")]


def _full_disk_at(monkeypatch, name: str) -> None:
    """The write of `name` runs out of space after half its bytes reached the disk."""
    real = rundir._sync

    def sync(tmp: str) -> None:
        if Path(tmp).name.startswith(f".{name}."):
            with open(tmp, "r+b") as handle:
                handle.truncate(os.path.getsize(tmp) // 2)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), tmp)
        real(tmp)

    monkeypatch.setattr(rundir, "_sync", sync)


@pytest.mark.parametrize(
    "name, folder",
    [
        ("config.yaml", ""),  # the first file of a run
        ("best.npz", "checkpoints"),  # numpy's zip, after epoch 1
        ("epoch-0001.weights.h5", "checkpoints"),  # h5py, the resume checkpoint
        ("model.keras", ""),  # Keras' zip, written once the epochs are done
        ("metrics.json", ""),  # the last file
    ],
)
def test_full_disk_leaves_no_partial_file(images, tmp_path, monkeypatch, name, folder):
    run = tmp_path / "run"
    _full_disk_at(monkeypatch, name)
    result = _finetune(images, run)
    final = run / folder / name
    words = ["Could not write", str(final), "No space left on device", "free some disk space"]
    assert_one_line_error(result, words, 1)
    assert not final.exists(), f"partial {name} under its final name"
    assert not _temp_files(run), _temp_files(run)
    if name == "epoch-0001.weights.h5":
        assert not (run / "checkpoints" / "state.json").exists()


def test_resume_after_a_full_disk_finishes_the_run(images, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _full_disk_at(monkeypatch, "metrics.json")  # after the last checkpoint
    assert _finetune(images, run).exit_code == 1
    monkeypatch.undo()  # space freed
    result = _finetune(images, run, "--resume")
    assert result.exit_code == 0, result.output
    assert (run / "metrics.json").is_file() and (run / "model.keras").is_file()


def test_resume_before_the_first_checkpoint_starts_over(images, tmp_path, monkeypatch):
    run = tmp_path / "run"
    _full_disk_at(monkeypatch, "epoch-0001.weights.h5")  # epoch 1's checkpoint
    assert _finetune(images, run).exit_code == 1
    monkeypatch.undo()
    result = _finetune(images, run, "--resume")
    assert result.exit_code == 0, result.output


def test_read_only_run_dir_is_one_line(images, tmp_path, monkeypatch):
    run = tmp_path / "run"
    run.mkdir()  # an existing, empty, read-only folder
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(run.resolve()):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(rundir.tempfile, "mkstemp", mkstemp)
    result = _finetune(images, run)
    assert_one_line_error(result, ["Could not write", str(run), "not writable", "--out"], 1)
    assert not list(run.rglob("*.*")), list(run.rglob("*"))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through chmod 555; simulated above")
def test_really_read_only_folder(images, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    result = _finetune(images, locked / "run")
    assert_one_line_error(result, ["Cannot create the run directory", "not writable"], 1)


def test_full_disk_during_onnx_export(tmp_path, monkeypatch):
    import onnx

    from tests.reliability.inputs import keras_files

    keras_files(tmp_path)
    out = tmp_path / "out" / "model.onnx"

    def save(proto, path, *args, **kwargs):
        data = proto.SerializeToString()
        Path(path).write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(onnx, "save", save)
    result = CliRunner().invoke(
        main, ["convert", str(tmp_path / "tiny.keras"), "--out", str(out), "--quiet"]
    )
    assert_one_line_error(result, ["No space left on device", "free some disk space"], 1)
    assert not out.exists()
    assert not [p.name for p in out.parent.iterdir()], "temporary files left behind"


# ------------------------------------------------------------------ never overwrite silently


def test_finetune_keeps_an_existing_run(images, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.keras").write_text("an earlier run's model")
    result = _finetune(images, run)
    assert_one_line_error(result, ["is not empty", "--overwrite"], 1)
    assert (run / "model.keras").read_text() == "an earlier run's model"


def test_convert_keeps_an_existing_artefact(tmp_path):
    from tests.reliability.inputs import keras_files

    keras_files(tmp_path)
    out = tmp_path / "model.onnx"
    out.write_text("an earlier artefact")
    result = CliRunner().invoke(
        main, ["convert", str(tmp_path / "tiny.keras"), "--out", str(out), "--quiet"]
    )
    assert result.exit_code != 0 and "--overwrite" in result.output
    assert out.read_text() == "an earlier artefact"


def test_bench_keeps_an_existing_plot(tmp_path):
    from tests.reliability.inputs import keras_files

    keras_files(tmp_path)
    plot = tmp_path / "bench.png"
    plot.write_text("an earlier plot")
    result = CliRunner().invoke(
        main,
        ["bench", str(tmp_path / "tiny.keras"), "--runs", "1", "--warmup", "0",
         "--batch-sizes", "1", "--quiet", "--plot", str(plot)],
    )  # fmt: skip
    assert result.exit_code != 0 and "--overwrite" in result.output
    assert plot.read_text() == "an earlier plot"


def test_tftrt_output_folder_is_replaced_whole(tmp_path):
    """TF-TRT is absent from this TensorFlow; its folder publishing is checked on its own."""
    from convert.tftrt import _save_atomically

    out = tmp_path / "model.tftrt"
    out.mkdir()
    (out / "saved_model.pb").write_text("old")

    def full_disk(folder: Path) -> None:
        folder.mkdir()
        (folder / "saved_model.pb").write_text("ha")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError):
        _save_atomically(full_disk, out)
    assert (out / "saved_model.pb").read_text() == "old"

    def save(folder: Path) -> None:
        folder.mkdir()
        (folder / "saved_model.pb").write_text("new")

    _save_atomically(save, out)
    assert (out / "saved_model.pb").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["model.tftrt"]
