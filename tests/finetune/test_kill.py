"""SIGKILL `zoo finetune` at chosen moments, resume each time, end bit-identical to a straight run.

One run (two phases, 4 epochs, `--deterministic`; the arguments of test_train_resume.py) is killed
three times in a row, each later kill in a resumed process: mid-way through writing a checkpoint,
between the phases, and between a checkpoint's weights and its state. The exact moments come from
`KERAZOO_CRASH_AT` (finetune/rundir.py: the process SIGKILLs itself there). A kill during an epoch
(a plain SIGKILL from outside, just after epoch 1's checkpoint) is test_train_resume.py's. After
every kill no file under a final name is partial, and the final resume ends with the same weights
(model and optimizer variables) as a run never interrupted.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import pytest
import yaml

from finetune.rundir import CRASH_ENV
from tests.finetune.test_train_resume import EPOCHS, _args, _env, _final, _run, _same

pytestmark = pytest.mark.slow


def _crash(args: list[str], point: str) -> None:
    """Run until the process kills itself at `point` (it must not finish or fail)."""
    done = subprocess.run(
        args, env={**_env(), CRASH_ENV: point}, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == -signal.SIGKILL, (point, done.returncode, done.stderr[-2000:])


def _state(run: Path) -> dict:
    return json.loads((run / "checkpoints" / "state.json").read_text())


def _assert_complete(run: Path) -> None:
    """Every file under its final name is whole: it parses as what its name says."""
    for path in [*run.glob("*"), *(run / "checkpoints").glob("*")]:
        if not path.is_file() or path.name.startswith("."):
            continue  # temporary files never carry a final name
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".yaml":
            yaml.safe_load(path.read_text())
        elif path.suffix in (".keras", ".npz"):
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None, path
        elif path.suffix == ".h5":
            with h5py.File(path, "r"):
                pass
    state = _state(run)
    assert (run / "checkpoints" / state["weights"]).is_file(), "state names a missing checkpoint"


def _temp_files(run: Path) -> list[str]:
    return [p.name for folder in (run, run / "checkpoints") for p in folder.glob(".*.tmp*")]


@pytest.fixture(scope="module")
def straight_run(train_digits_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight") / "run"
    _run(_args(train_digits_run, out))
    return out


def test_killed_three_times_resumes_to_the_same_weights(train_digits_run, straight_run, tmp_path):
    run = tmp_path / "run"
    args = _args(train_digits_run, run)
    resume = [*args, "--resume"]

    # 1. During a checkpoint write: epoch 2's weights are complete in a temp file, not renamed.
    _crash(args, "before-rename:epoch-*.weights.h5@2")
    assert _state(run)["epoch"] == 1
    assert not (run / "checkpoints" / "epoch-0002.weights.h5").exists()
    assert any(name.startswith(".epoch-0002") for name in _temp_files(run))
    _assert_complete(run)

    # 2. Between the phases: the last head epoch (2) is checkpointed, fine-tuning not begun.
    _crash(resume, "after-checkpoint@1")
    assert (_state(run)["epoch"], _state(run)["phase"]) == (2, 1)
    assert not _temp_files(run), "resume should remove the killed run's temp files"
    _assert_complete(run)

    # 3. Between a checkpoint's weights and its state: epoch 3's weights renamed, state says 2.
    _crash(resume, "checkpoint@1")
    assert _state(run)["epoch"] == 2
    assert (run / "checkpoints" / "epoch-0003.weights.h5").is_file()
    _assert_complete(run)

    _run(resume)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["decisions"]["resumed_from_epoch"] == 2
    assert metrics["epochs"]["completed"] == EPOCHS
    assert _same(_final(run), _final(straight_run)), (
        "resumed weights differ from the uninterrupted run"
    )
    history = (run / "history.csv").read_text().splitlines()
    assert [line.split(",")[0] for line in history[1:]] == [str(e) for e in range(1, EPOCHS + 1)]
    assert not _temp_files(run)


def test_resume_without_epochs_keeps_the_runs_total(straight_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(straight_run, run)  # a finished 4-epoch run: nothing left to train
    _run([sys.executable, "-m", "zoo", "finetune", "--out", str(run), "--resume", "--quiet"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"]["total"] == EPOCHS, metrics["epochs"]
