"""The run directory: atomic writes, the clobber rule, and the per-epoch resume checkpoint.

Every file is written to a temporary name in the same directory, flushed to disk (fsync) and
moved into place with `os.replace`, so a run killed at any moment leaves either the old file or
the new one, never half. A failed write (disk full, read-only folder) removes its temporary file
and raises a one-line OSError that names the final path and what to do.

Crash tests: `KERAZOO_CRASH_AT=POINT[@N]` (tests only) makes the process SIGKILL itself the Nth
time (default: first) it reaches POINT, so tests/finetune/test_kill.py hits exact moments instead
of racing a timer. Points: `before-rename:NAME` (NAME's temp file is complete, not yet renamed;
NAME may be a glob such as `epoch-*.weights.h5`), `checkpoint` (epoch weights renamed, state.json
not yet written) and `after-checkpoint` (the epoch's checkpoint is complete).

Example:
    >>> paths = prepare_run_dir("runs/demo", resume=False, overwrite=True)
    >>> atomic_write_json(paths.metrics, {"val_accuracy": 0.9})
"""

from __future__ import annotations

import contextlib
import errno
import fnmatch
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from zoo.runs import RunPaths

STATE_VERSION = 1
CRASH_ENV = "KERAZOO_CRASH_AT"
# Temporary files of `atomic_path`: ".NAME.XXXXXXXX.tmp[SUFFIX]" (".model.keras.x1y2.tmp.keras").
_TEMP_GLOB = ".*.tmp*"
_crash_counts: dict[str, int] = {}


def crash_point(point: str, name: str = "") -> None:
    """Tests only: SIGKILL this process here if `KERAZOO_CRASH_AT` names this point (see top)."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    target, _, count = wanted.partition("@")
    kind, _, pattern = target.partition(":")
    if kind != point or (pattern and not fnmatch.fnmatchcase(name, pattern)):
        return
    _crash_counts[target] = _crash_counts.get(target, 0) + 1
    if _crash_counts[target] == int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _write_hint(code: int | None) -> str:
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return "free some disk space or choose another --out"
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "the folder is not writable; choose another --out"
    if code in (errno.ENOTDIR, errno.EEXIST):
        return "a parent of it is a file, not a folder; choose another --out"
    return "check the path or choose another --out"


def write_error(path: str | os.PathLike[str], error: OSError) -> OSError:
    """A one-line OSError (same errno) naming the file that could not be written and the fix."""
    if getattr(error, "one_line", False):  # already says which file and why (nested writes)
        return error
    reason = error.strerror or str(error).strip().splitlines()[0]
    one_line = OSError(
        error.errno, f"Could not write {str(path)!r} ({reason}): {_write_hint(error.errno)}."
    )
    one_line.one_line = True
    return one_line


def _sync(path: str) -> None:
    """Flush a written file to disk, so the rename never publishes data still in the page cache."""
    if os.path.isfile(path):
        handle = os.open(path, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds.

    `suffix` keeps writers that check extensions happy (Keras wants `.keras`/`.weights.h5`).
    On any error the temporary file is removed and `path` is left as it was; an OSError (disk
    full, read-only folder) is re-raised as a one-line OSError naming `path` and the fix.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=f".tmp{suffix}", dir=path.parent
        )
        os.close(handle)
        os.unlink(tmp)  # writers such as h5py prefer to create the file themselves
        yield tmp
        _sync(tmp)
        crash_point("before-rename", path.name)
        os.replace(tmp, path)
    except OSError as error:
        raise write_error(path, error) from error
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` atomically (tmp + fsync + os.replace)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)


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
    from its checkpoint) or `overwrite` (delete it first). `resume` needs the run's
    checkpoints/state.json or, for a run stopped before its first checkpoint, its config.yaml
    (`read_state` then returns None: the caller may start the run over in place). Temporary
    files that a killed run left behind are removed on resume.
    """
    root = Path(out)
    if root.exists() and not root.is_dir():
        raise ValueError(
            f"The run directory {str(root)!r} is a file: give --out a folder path (new or empty). "
            f"Received: out={str(root)!r}"
        )
    non_empty = root.is_dir() and any(root.iterdir())
    if resume:
        if not RunPaths(root).state.is_file() and not RunPaths(root).config.is_file():
            raise ValueError(
                f"Nothing to resume in {str(root)!r}: it has no checkpoints/state.json. "
                f"Run without --resume to start a new run. Received: out={str(root)!r}"
            )
        _remove_stale_temps(root)
    elif non_empty:
        if not overwrite:
            raise ValueError(
                f"Run directory {str(root)!r} is not empty: pass --resume to continue it or "
                f"--overwrite to replace it. Received: out={str(root)!r}"
            )
        shutil.rmtree(root)
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ValueError(
            f"Cannot create the run directory {str(root)!r} ({reason}): "
            f"{_write_hint(error.errno)}. Received: out={str(root)!r}"
        ) from None
    return RunPaths(root)


def _remove_stale_temps(root: Path) -> list[Path]:
    """Delete the temporary files of writes a killed run never finished (never a final name)."""
    removed = []
    for folder in (root, RunPaths(root).checkpoints):
        for tmp in folder.glob(_TEMP_GLOB) if folder.is_dir() else ():
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    return removed


def read_state(paths: RunPaths) -> dict[str, Any] | None:
    """The resume state written after the last finished epoch; None before the first one."""
    if not paths.state.is_file():
        return None
    try:
        with open(paths.state, encoding="utf-8") as handle:
            state = json.load(handle)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(
            f"{str(paths.state)!r} is not valid JSON ({error}); the run cannot be resumed. "
            f"Start again with --overwrite."
        ) from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        version = state.get("version") if isinstance(state, dict) else None
        raise ValueError(
            f"{str(paths.state)!r} was written by another version of finetune. "
            f"Expected version {STATE_VERSION}. Received: version={version!r}"
        )
    return state


def write_checkpoint(paths: RunPaths, model: Any, state: dict[str, Any]) -> None:
    """Save model + optimizer variables for `state["epoch"]`, then the state that points at them.

    Each epoch gets its own weights file and the state names it; older files are deleted only
    after the new state is in place, so a kill at any point leaves a consistent pair.
    """
    weights = paths.epoch_weights(state["epoch"])
    atomic_save(weights, lambda tmp: model.save_weights(tmp))
    crash_point("checkpoint", weights.name)
    atomic_write_json(paths.state, {**state, "weights": weights.name, "version": STATE_VERSION})
    for old in paths.checkpoints.glob("epoch-*.weights.h5"):
        if old.name != weights.name:
            old.unlink(missing_ok=True)
    crash_point("after-checkpoint", weights.name)


def state_weights(paths: RunPaths, state: dict[str, Any]) -> Path:
    """The weights file a resume state points at; a one-line error if it is gone."""
    weights = paths.checkpoints / str(state.get("weights", ""))
    if not weights.is_file():
        raise ValueError(
            f"The checkpoint {str(weights)!r} named by {str(paths.state)!r} is missing; "
            f"the run cannot be resumed. Start again with --overwrite."
        )
    return weights
