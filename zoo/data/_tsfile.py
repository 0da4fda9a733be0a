"""A small reader for the `.ts` time-series classification files of the UCR/UEA archive.

The sktime wheel ships a few of these files (JapaneseVowels, BasicMotions, ...). Reading them
directly keeps sktime's heavy import (pandas and its estimator registry) out of the run time.
Supports what the shipped files use: no timestamps, no missing values, equal or unequal length,
one or more dimensions separated by ":" and the class label last.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def read_ts(path: str | Path) -> tuple[list[np.ndarray], list[str], list[str]]:
    """Read a `.ts` file.

    Returns:
        (series, labels, class_labels): one float32 (time, dims) array per case, each case's label
        as written, and the labels declared in the `@classLabel` header, in header order.

    Example:
        >>> series, labels, classes = read_ts("JapaneseVowels_TRAIN.ts")
        >>> series[0].shape, labels[0], classes[:3]
        ((20, 12), '1', ['1', '2', '3'])
    """
    series: list[np.ndarray] = []
    labels: list[str] = []
    class_labels: list[str] = []
    in_data = False
    with open(path, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if not in_data:
                lowered = line.lower()
                if lowered.startswith("@classlabel"):
                    class_labels = line.split()[2:]
                elif lowered.startswith("@timestamps") and line.split()[-1].lower() == "true":
                    raise ValueError(f"{path}: .ts files with timestamps are not supported.")
                in_data = lowered == "@data"
                continue
            *dims, label = line.split(":")
            try:
                columns = [np.array(d.split(","), dtype=np.float32) for d in dims]
            except ValueError as error:  # '?' (missing) or garbage
                raise ValueError(f"{path}:{number}: unreadable values ({error}).") from error
            if len({len(c) for c in columns}) != 1:
                raise ValueError(f"{path}:{number}: dimensions have different lengths.")
            series.append(np.stack(columns, axis=-1))
            labels.append(label.strip())
    if not class_labels:
        class_labels = sorted(set(labels))
    return series, labels, class_labels
