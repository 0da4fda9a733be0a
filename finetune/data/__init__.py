"""Data for fine-tuning: one `--data SPEC` string to batched tf.data splits shaped for a model.

The specs, the builtin datasets, the split rules and the image decoding live in `zoo.data`
(no TensorFlow); this package builds the tf.data pipelines on top and re-exports zoo.data's
spec helpers, so `from finetune.data import parse_data_spec, list_builtin, load_data` works.

SPEC is a folder with one sub-folder per class (or train/, val/ or validation/, test/ folders
each holding class folders), a CSV manifest (`path,label[,split]`), a `.npz` file of arrays, or
`builtin:NAME` (real datasets shipped in PyPI wheels, see `list_builtin()`), each with an
optional query `?classes=5-9&per_class=10` (folders also `&layout=classes|splits`).

Example:
    >>> from finetune import data
    >>> data.list_builtin()["digits"]
    'scikit-learn 8x8 handwritten digits as 0-255 grayscale images, 10 classes, ...'
    >>> loaded = data.load_data("builtin:digits", task="image", input_shape=(28, 28, 1))
    >>> model.fit(loaded.train, validation_data=loaded.val)

`parse_data_spec`, `list_builtin` and `builtin_info` import no TensorFlow; `load_data` and
`LoadedData` import it on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from zoo.data import BuiltinInfo, DataSpec, builtin_info, list_builtin, parse_data_spec

__all__ = [
    "BuiltinInfo",
    "DataSpec",
    "LoadedData",
    "builtin_info",
    "list_builtin",
    "load_data",
    "parse_data_spec",
]

if TYPE_CHECKING:  # pragma: no cover
    from finetune.data._pipeline import LoadedData, load_data  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in ("LoadedData", "load_data"):
        return getattr(importlib.import_module("finetune.data._pipeline"), name)
    raise AttributeError(f"module 'finetune.data' has no attribute {name!r}")
