"""Per-series z-normalisation of sequence data (`?normalize=series` in a data spec).

The UCR/UEA archive stores its series z-normalised, each on its own, and the published accuracies
of FCN, ResNet and InceptionTime are on such data; users' own sequences (a `.npz`) usually are
not. Each series becomes (x - mean) / std per channel over its own steps, so the model sees shape
rather than level and scale; a constant channel becomes zeros (its std is floored, not divided by
zero). Applied to every split the same way, and it needs no statistics from the training split.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from zoo.data._source import Source, Split

# Channels flatter than this are treated as constant: divided by 1, so they become zeros.
MIN_STD = 1e-8


def znorm(series: np.ndarray) -> np.ndarray:
    """One (time, channels) series z-normalised per channel, as float32.

    Example:
        >>> znorm(np.array([[1.0], [3.0]])).ravel()
        array([-1.,  1.], dtype=float32)
    """
    x = np.asarray(series, dtype=np.float64)
    std = x.std(axis=0, keepdims=True)
    return ((x - x.mean(axis=0, keepdims=True)) / np.where(std < MIN_STD, 1.0, std)).astype(
        np.float32
    )


def normalize_series(source: Source, task: str, origin: str) -> Source:
    """A copy of `source` with every sequence of every split z-normalised (the source, possibly a
    cached builtin, is left as it was)."""
    if task != "sequence" or source.kind != "sequences":
        raise ValueError(
            f"{origin}: normalize=series applies to sequence data only; images keep the model's "
            f"own preprocessing. Received: normalize=series for {task} data"
        )

    def normalized(split: Split | None) -> Split | None:
        if split is None:
            return None
        items = np.empty(len(split.items), dtype=object)
        items[:] = [znorm(s) for s in split.items]
        return Split(items, split.y)

    return dataclasses.replace(
        source,
        train=normalized(source.train),
        val=normalized(source.val),
        test=normalized(source.test),
    )
