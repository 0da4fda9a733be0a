"""SIGKILL `zoo convert` mid-export: no partial artefact (or report) is left under the final name.

The artefact is written under a hidden temporary name, verified, and only then renamed
(convert/__init__.py, convert/verify.py). The test starts a conversion, waits for the first file
to appear beside the output (the temporary export), and kills the process at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    import zoo

    folder = tmp_path_factory.mktemp("source")
    zoo.create_model("cnn").save(folder / "model.keras")  # 93k parameters: export takes a moment
    rng = np.random.default_rng(0)
    np.savez(
        folder / "calib.npz",
        x=rng.uniform(0, 255, (64, 28, 28, 1)).astype("float32"),
        y=np.arange(64) % 10,
    )
    return folder / "model.keras"


def _kill_at_first_file(args: list[str], folder: Path) -> int | None:
    """Start `args`; SIGKILL it as soon as a file appears in `folder`. None if it finished."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while process.poll() is None and time.time() < deadline:
        if folder.is_dir() and any(folder.iterdir()):
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    process.wait(timeout=60)
    return None if process.returncode == 0 else process.returncode


@pytest.mark.parametrize("precision", ["fp32", "int8"])
def test_kill_mid_export_leaves_no_partial_artefact(model_file, tmp_path, precision):
    import onnx

    out = tmp_path / "out" / f"model.{precision}.onnx"
    args = [sys.executable, "-m", "zoo", "convert", str(model_file), "--out", str(out)]
    args += ["--precision", precision, "--quiet"]
    if precision == "int8":
        args += ["--calib-data", str(model_file.parent / "calib.npz")]
    returncode = _kill_at_first_file(args, out.parent)
    report = out.with_name(out.name + ".report.json")
    if returncode is None:  # finished before the kill landed: the artefact must then be whole
        onnx.checker.check_model(onnx.load(str(out)))
        return
    assert returncode == -signal.SIGKILL
    assert not out.exists(), "a partial artefact under the final name"
    assert not report.exists()
    leftovers = [p.name for p in out.parent.iterdir()]
    assert all(name.startswith(".") for name in leftovers), leftovers  # hidden temp files only
