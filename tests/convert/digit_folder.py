"""scikit-learn's handwritten digits written as PNG files in a `DIR/{train,val,test}/<class>/`
folder: real images, named classes, a layout `zoo.data` reads (what a user's photos look like).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

NAMES = ("zero", "one", "two", "three")
PER_SPLIT = {"train": 30, "val": 8, "test": 8}


def write_digit_folder(root: Path, size: int = 24) -> Path:
    """Digits 0-3 as gray `size`x`size` PNGs: 30 train, 8 val, 8 test per class, named folders.

    Example:
        >>> sorted(p.name for p in (write_digit_folder(tmp) / "train").iterdir())
        ['one', 'three', 'two', 'zero']
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for label, name in enumerate(NAMES):
        images = digits.images[digits.target == label]
        start = 0
        for split, count in PER_SPLIT.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index, image in enumerate(images[start : start + count]):
                pixels = (image * (255.0 / 16.0)).astype(np.uint8)
                picture = Image.fromarray(pixels, mode="L").resize((size, size), Image.NEAREST)
                picture.save(folder / f"{name}_{index:03d}.png")
            start += count
    return root
