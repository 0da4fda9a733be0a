"""Bundled offline datasets (`builtin:NAME`): real data shipped inside PyPI wheels.

- digits, digits_rows: scikit-learn's 8x8 handwritten digits (`sklearn.datasets.load_digits`,
  1,797 images in the wheel), as images or read row by row as 8-step sequences.
- japanese_vowels, basic_motions, gunpoint, italy_power_demand, arrow_head, osu_leaf, acsf1:
  UCR/UEA time-series
  classification sets whose `.ts` files ship inside the sktime wheel, read with a small parser
  (`_tsfile.read_ts`) so sktime itself is never imported. Their train/test split is the archive's.

Nothing is downloaded at run time. Adding a set is one table entry and, if the source is new,
one loader function.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from zoo.data._source import Source, Split
from zoo.data._tsfile import read_ts


@dataclasses.dataclass(frozen=True)
class BuiltinInfo:
    """A builtin dataset's card.

    Example:
        >>> BUILTINS["digits"].task, BUILTINS["digits"].item_shape
        ('image', (8, 8, 1))
    """

    name: str
    task: str  # "image" or "sequence"
    description: str
    item_shape: tuple[int | None, ...]  # as stored; images are resized to the model's input
    loader: Callable[[], Source] = dataclasses.field(repr=False, compare=False)


def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # ships in the wheel; imported late, it is slow

    digits = load_digits()
    return digits.images.astype(np.float32), digits.target.astype(np.int64)


def _digits_test_mask(count: int) -> np.ndarray:
    # Every 5th example is test: fixed, independent of any RNG or library version, and spread
    # over the file's 43 writers; 1,438 train / 359 test.
    return np.arange(count) % 5 == 4


def _load_digits() -> Source:
    images, labels = _digits_arrays()
    # 0-16 intensities -> 0-255 raw pixels, like any image the models are given.
    pixels = (images * (255.0 / 16.0))[..., None]
    test = _digits_test_mask(len(labels))
    return Source(
        kind="images",
        train=Split(pixels[~test], labels[~test]),
        test=Split(pixels[test], labels[test]),
        class_names=[str(d) for d in range(10)],
        item_shape=(8, 8, 1),
        description=BUILTINS["digits"].description,
    )


def _load_digits_rows() -> Source:
    images, labels = _digits_arrays()
    rows = images / 16.0  # each of the 8 rows is one time step of 8 features in 0-1
    items = np.empty(len(labels), dtype=object)
    items[:] = list(rows)
    test = _digits_test_mask(len(labels))
    return Source(
        kind="sequences",
        train=Split(items[~test], labels[~test]),
        test=Split(items[test], labels[test]),
        class_names=[str(d) for d in range(10)],
        item_shape=(8, 8),
        description=BUILTINS["digits_rows"].description,
    )


def _sktime_file(problem: str, split: str) -> Path:
    for package in ("sktime", "aeon"):  # aeon ships the same files; sktime is the dependency
        spec = importlib.util.find_spec(package)  # locates the package without importing it
        if spec and spec.submodule_search_locations:
            for root in spec.submodule_search_locations:
                path = Path(root, "datasets", "data", problem, f"{problem}_{split}.ts")
                if path.is_file():
                    return path
    raise ImportError(
        f"builtin:{problem} reads the data file that ships with sktime, which is not installed "
        f"or lacks {problem}_{split}.ts; install it with `pip install sktime`."
    )


def _ts_loader(name: str, problem: str, class_names: tuple[str, ...] | None = None):
    def load() -> Source:
        parts = {}
        for split in ("TRAIN", "TEST"):
            series, labels, declared = read_ts(_sktime_file(problem, split))
            index = {label: i for i, label in enumerate(declared)}
            items = np.empty(len(series), dtype=object)
            items[:] = series
            parts[split] = Split(items, np.array([index[label] for label in labels], np.int64))
        lengths = {len(s) for s in parts["TRAIN"].items} | {len(s) for s in parts["TEST"].items}
        features = parts["TRAIN"].items[0].shape[-1]
        return Source(
            kind="sequences",
            train=parts["TRAIN"],
            test=parts["TEST"],
            class_names=list(class_names or declared),
            item_shape=(lengths.pop() if len(lengths) == 1 else None, features),
            description=BUILTINS[name].description,
        )

    return load


@functools.cache
def load_builtin(name: str) -> Source:
    """The named builtin's Source (cached: the sets are small and loaded once per process)."""
    return BUILTINS[name].loader()


def _entry(name: str, task: str, shape: tuple, description: str, loader) -> BuiltinInfo:
    return BuiltinInfo(name, task, description, shape, loader)


BUILTINS: dict[str, BuiltinInfo] = {
    info.name: info
    for info in (
        _entry(
            "digits",
            "image",
            (8, 8, 1),
            "scikit-learn 8x8 handwritten digits as 0-255 grayscale images, 10 classes, "
            "1438 train / 359 test",
            _load_digits,
        ),
        _entry(
            "digits_rows",
            "sequence",
            (8, 8),
            "scikit-learn digits read row by row: 8 steps x 8 features in 0-1, 10 classes, "
            "1438 train / 359 test",
            _load_digits_rows,
        ),
        _entry(
            "japanese_vowels",
            "sequence",
            (None, 12),
            "UEA JapaneseVowels (from sktime): 9 speakers, 12 LPC features, variable length "
            "7-29, 270 train / 370 test",
            _ts_loader(
                "japanese_vowels", "JapaneseVowels", tuple(f"speaker_{i}" for i in range(1, 10))
            ),
        ),
        _entry(
            "basic_motions",
            "sequence",
            (100, 6),
            "UEA BasicMotions (from sktime): smart-watch accelerometer+gyroscope, 4 activities, "
            "100 steps x 6 features, 40 train / 40 test",
            _ts_loader("basic_motions", "BasicMotions"),
        ),
        _entry(
            "gunpoint",
            "sequence",
            (150, 1),
            "UCR GunPoint (from sktime): hand X position, gun-draw vs point (binary), "
            "150 steps x 1 feature, 50 train / 150 test",
            _ts_loader("gunpoint", "GunPoint", ("gun_draw", "point")),
        ),
        _entry(
            "italy_power_demand",
            "sequence",
            (24, 1),
            "UCR ItalyPowerDemand (from sktime): daily power demand, class 1 Oct-Mar vs "
            "2 Apr-Sep (binary), 24 steps x 1 feature, 67 train / 1029 test",
            _ts_loader("italy_power_demand", "ItalyPowerDemand"),
        ),
        _entry(
            "arrow_head",
            "sequence",
            (251, 1),
            "UCR ArrowHead (from sktime): arrowhead outlines as 1-D profiles, 3 types "
            "(Avonlea, Clovis, Mix), 251 steps x 1 feature, 36 train / 175 test",
            _ts_loader("arrow_head", "ArrowHead", ("avonlea", "clovis", "mix")),
        ),
        _entry(
            "osu_leaf",
            "sequence",
            (427, 1),
            "UCR OSULeaf (from sktime): leaf outlines as 1-D profiles, 6 species, "
            "427 steps x 1 feature, 200 train / 242 test",
            _ts_loader("osu_leaf", "OSULeaf"),
        ),
        _entry(
            "acsf1",
            "sequence",
            (1460, 1),
            "UCR ACSF1 (from sktime): appliance power consumption, 10 appliance types, "
            "1460 steps x 1 feature, 100 train / 100 test",
            _ts_loader("acsf1", "ACSF1"),
        ),
    )
}


def list_builtin() -> dict[str, str]:
    """Builtin dataset names and one-line descriptions, for `builtin:NAME` specs.

    Example:
        >>> "digits" in list_builtin()
        True
    """
    return {name: info.description for name, info in sorted(BUILTINS.items())}


def builtin_info(name: str) -> BuiltinInfo:
    """A builtin dataset's card: task, description and stored item shape.

    Example:
        >>> builtin_info("japanese_vowels").item_shape
        (None, 12)
    """
    if name not in BUILTINS:
        raise ValueError(
            f"Unknown builtin dataset; valid names: {', '.join(sorted(BUILTINS))}. "
            f"Received: {name!r}"
        )
    return BUILTINS[name]
