"""Resume after SIGKILL, and determinism: subprocess `zoo finetune` runs compared bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

EPOCHS = 4


def _args(source, out):
    # --from gives two phases, so the resumed run must also restore the phase and its optimizer.
    return [
        sys.executable,
        "-m",
        "zoo",
        "finetune",
        "--from",
        str(source),
        "--data",
        "builtin:digits?classes=5-9",
        "--epochs",
        str(EPOCHS),
        "--head-epochs",
        "2",
        "--batch-size",
        "8",
        "--lr",
        "0.003",
        "--seed",
        "3",
        "--deterministic",
        "--quiet",
        "--out",
        str(out),
    ]


def _env():
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}


def _run(args):
    done = subprocess.run(args, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


def _weights(path):
    """Every array of a checkpoint (model and optimizer variables), by its path in the file."""
    arrays = {}
    with h5py.File(path, "r") as handle:
        handle.visititems(
            lambda name, item: (
                arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None
            )
        )
    return arrays


def _final(out):
    return _weights(out / "checkpoints" / f"epoch-{EPOCHS:04d}.weights.h5")


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_resume_after_kill_matches_an_uninterrupted_run(train_digits_run, tmp_path):
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        _args(train_digits_run, killed),
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    state = killed / "checkpoints" / "state.json"
    deadline = time.time() + 240
    while not state.exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)  # mid-epoch 2: no chance to clean up
    process.wait()
    assert state.exists(), process.stderr.read()[-2000:]
    at_kill = json.loads(state.read_text())["epoch"]
    assert at_kill < EPOCHS, "the run finished before it could be killed"

    _run(_args(train_digits_run, killed) + ["--resume"])
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["decisions"]["resumed_from_epoch"] == at_kill

    straight = tmp_path / "straight"
    _run(_args(train_digits_run, straight))
    assert _same(_final(killed), _final(straight))
    history = lambda out: (out / "history.csv").read_text().splitlines()  # noqa: E731
    assert len(history(killed)) == len(history(straight)) == EPOCHS + 1

    again = tmp_path / "again"  # --seed with --deterministic: bit-identical repeated runs
    _run(_args(train_digits_run, again))
    assert _same(_final(straight), _final(again))


RECIPES = {
    # SGD's momentum buffers and the schedule's position must come back; patience counts
    # fine-tuning epochs from the recorded best epoch.
    "cosine-patience": ["--optimizer", "sgd", "--lr-schedule", "cosine", "--warmup-epochs", "1",
                        "--label-smoothing", "0.1", "--patience", "2"],
    # ReduceLROnPlateau's counters ride in the checkpoint; the reduced rate is an optimizer
    # variable.
    "plateau": ["--lr-schedule", "plateau", "--optimizer", "adamw"],
}  # fmt: skip


def _last(out):
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    return state, _weights(out / "checkpoints" / state["weights"])


@pytest.mark.slow
@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_resume_restores_the_recipe_bit_for_bit(train_digits_run, tmp_path, recipe):
    from finetune.rundir import CRASH_ENV

    args = lambda out: _args(train_digits_run, out) + RECIPES[recipe]  # noqa: E731
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    done = subprocess.run(  # killed after epoch 3's checkpoint: in fine-tuning, lr decayed
        args(killed), env={**_env(), CRASH_ENV: "after-checkpoint@3"}, capture_output=True
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    _run(args(killed) + ["--resume"])
    _run(args(straight))
    (state_k, final_k), (state_s, final_s) = _last(killed), _last(straight)
    assert _same(final_k, final_s)
    assert state_k["history"] == [
        {**row, "seconds": state_k["history"][i]["seconds"]}
        for i, row in enumerate(state_s["history"])
    ]
    assert state_k["stopped_early"] == state_s["stopped_early"]
    assert state_k.get("plateau") == state_s.get("plateau")
    lrs = [row["lr"] for row in state_s["history"]]
    assert len(set(lrs)) > 1 or recipe == "plateau"  # the schedule moved the rate
