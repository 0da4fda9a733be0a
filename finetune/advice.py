"""Warnings that matter, one line each, before the first epoch: settings that waste the run.

Example:
    >>> for line in run_warnings(cfg, data, plan, builder):
    ...     print("warning:", line)
    warning: --head-epochs 3 >= --epochs 3: no fine-tuning phase; the backbone stays frozen
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any


def run_warnings(cfg: Any, data: Any, plan: Any, builder: Any) -> list[str]:
    """The warnings of a run about to start (empty for a sound one)."""
    from finetune.autoprecision import slower_than_float32

    lines = []
    if cfg.precision not in ("auto", "float32"):
        why = slower_than_float32(builder, cfg.precision)
        if why:
            lines.append(
                f"--precision {cfg.precision}: {why}; --precision float32 (or auto) trains faster"
            )
    if plan.two_phase and cfg.head_epochs >= cfg.epochs:
        lines.append(
            f"--head-epochs {cfg.head_epochs} >= --epochs {cfg.epochs}: no fine-tuning phase; "
            "the backbone stays frozen (raise --epochs to fine-tune it)"
        )
    if cfg.augment and data.task == "sequence":
        lines.append("--augment changes images only; it does nothing to sequence data")
    return lines


def warn(cfg: Any, message: str) -> None:
    """One `warning:` line on stderr (nothing with --quiet)."""
    if not cfg.quiet:
        print(f"warning: {message}", file=sys.stderr, flush=True)


# Keras warnings that say nothing to a finetune user: the loop checks that no epoch ran short
# itself (with a message saying how to resume), and a --from file's saved optimizer is never
# used (each phase compiles a fresh one).
_NOISE = (
    r"Your input ran out of data",
    r"Skipping variable loading for optimizer",
)


@contextlib.contextmanager
def keras_warnings(cfg: Any) -> Iterator[None]:
    """Silence Keras' noise; float16 warnings (one per cast or layer) become one line at the end.

    Example:
        >>> with keras_warnings(cfg):
        ...     train()
        warning: 12 float16 warnings from Keras, e.g.: ...
    """
    half: list[str] = []
    with warnings.catch_warnings():
        for pattern in _NOISE:
            warnings.filterwarnings("ignore", message=pattern)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            text = str(message)
            if "float16" in text or "half" in text.lower():
                half.append(text.splitlines()[0] if text.strip() else category.__name__)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        try:
            yield
        finally:
            warnings.showwarning = shown
            if half:
                warn(cfg, f"{len(half)} float16 warning(s) from Keras, e.g.: {half[0][:160]}")
