"""A tiny float digits run and its QAT fine-tuning, trained once per session (QAT tests).

The parent is the tiny cnn of `tests/finetune/conftest.tiny_digits_run` (digits 0-4 at 16x16,
a few seconds); the QAT run fine-tunes it for one epoch.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path


def _scratch() -> Path:
    root = Path(tempfile.mkdtemp(prefix="kerazoo-qat-test-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    return root


@functools.cache
def float_parent_run() -> Path:
    """A finished float run: the tiny cnn on digits 0-4, 3 epochs."""
    from finetune import FinetuneConfig, run_finetune
    from tests.finetune.conftest import tiny_digits_run

    out = _scratch() / "parent"
    run_finetune(FinetuneConfig(**tiny_digits_run(epochs=3), out=str(out), quiet=True))
    return out


@functools.cache
def qat_run() -> Path:
    """`zoo finetune --from PARENT --qat --epochs 1` through the API."""
    from finetune import FinetuneConfig, run_finetune

    out = _scratch() / "qat"
    run_finetune(
        FinetuneConfig(
            from_run=str(float_parent_run()), qat=True, epochs=1, out=str(out), quiet=True
        )
    )
    return out
