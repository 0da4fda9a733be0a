"""The run directory: atomic writes, the clobber rule, and the per-epoch resume checkpoint.

Every file is written to a temporary name in the same directory and moved into place with
`os.replace`, so a run killed at any moment leaves either the old file or the new one, never half.

Example:
    >>> paths = prepare_run_dir("runs/demo", resume=False, overwrite=True)
    >>> atomic_write_json(paths.metrics, {"val_accuracy": 0.9})
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

STATE_VERSION = 1


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where a run keeps each of its files (see docs/CONTRACTS.md)."""

    root: Path

    @property
    def model(self) -> Path:
        return self.root / "model.keras"

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def history(self) -> Path:
        return self.root / "history.csv"

    @property
    def class_names(self) -> Path:
        return self.root / "class_names.json"

    @property
    def precision(self) -> Path:
        return self.root / "precision.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def best_weights(self) -> Path:
        return self.checkpoints / "best.npz"

    def epoch_weights(self, epoch: int) -> Path:
        # Model + optimizer variables: Keras 3's save_weights includes the optimizer's.
        return self.checkpoints / f"epoch-{epoch:04d}.weights.h5"

    @property
    def state(self) -> Path:
        return self.checkpoints / "state.json"

    @property
    def curves_png(self) -> Path:
        return self.root / "training_curves.png"

    @property
    def confusion_png(self) -> Path:
        return self.root / "confusion_matrix.png"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds.

    `suffix` keeps writers that check extensions happy (Keras wants `.keras`/`.weights.h5`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent)
    os.close(handle)
    os.unlink(tmp)  # writers such as h5py prefer to create the file themselves
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` atomically (tmp + fsync + os.replace)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write `data` as indented JSON, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def atomic_save(path: str | os.PathLike[str], save: Callable[[str], None]) -> None:
    """Call `save(tmp_path)` (e.g. `model.save`) and move the result onto `path` atomically."""
    name = Path(path).name
    suffix = ".weights.h5" if name.endswith(".weights.h5") else Path(name).suffix
    with atomic_path(path, suffix=suffix) as tmp:
        save(tmp)


def _json_default(value: Any) -> Any:
    # NumPy scalars and arrays from metrics.
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def prepare_run_dir(out: str | os.PathLike[str], *, resume: bool, overwrite: bool) -> RunPaths:
    """Create the run directory, refusing to clobber a non-empty one.

    Rules: a missing or empty directory is used as is; a non-empty one needs `resume` (continue
    from its checkpoint) or `overwrite` (delete it first).
    """
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ValueError(f"The run directory should be a directory. Received: out={str(root)!r}")
    non_empty = root.is_dir() and any(root.iterdir())
    if resume:
        if not (root / "checkpoints" / "state.json").is_file():
            raise ValueError(
                f"Nothing to resume in {str(root)!r}: it has no checkpoints/state.json. "
                f"Run without --resume to start a new run. Received: out={str(root)!r}"
            )
    elif non_empty:
        if not overwrite:
            raise ValueError(
                f"Run directory {str(root)!r} is not empty: pass --resume to continue it or "
                f"--overwrite to replace it. Received: out={str(root)!r}"
            )
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)
    return RunPaths(root)


def read_state(paths: RunPaths) -> dict[str, Any]:
    """The resume state written after the last finished epoch."""
    with open(paths.state, encoding="utf-8") as handle:
        state = json.load(handle)
    if state.get("version") != STATE_VERSION:
        raise ValueError(
            f"{str(paths.state)!r} was written by another version of finetune. "
            f"Expected version {STATE_VERSION}. Received: version={state.get('version')!r}"
        )
    return state


def write_checkpoint(paths: RunPaths, model: Any, state: dict[str, Any]) -> None:
    """Save model + optimizer variables for `state["epoch"]`, then the state that points at them.

    Each epoch gets its own weights file and the state names it; older files are deleted only
    after the new state is in place, so a kill at any point leaves a consistent pair.
    """
    weights = paths.epoch_weights(state["epoch"])
    atomic_save(weights, lambda tmp: model.save_weights(tmp))
    atomic_write_json(paths.state, {**state, "weights": weights.name, "version": STATE_VERSION})
    for old in paths.checkpoints.glob("epoch-*.weights.h5"):
        if old.name != weights.name:
            old.unlink(missing_ok=True)


def state_weights(paths: RunPaths, state: dict[str, Any]) -> Path:
    """The weights file a resume state points at; a one-line error if it is gone."""
    weights = paths.checkpoints / str(state.get("weights", ""))
    if not weights.is_file():
        raise ValueError(
            f"The checkpoint {str(weights)!r} named by {str(paths.state)!r} is missing; "
            f"the run cannot be resumed. Start again with --overwrite."
        )
    return weights
