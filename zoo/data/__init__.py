"""Data for zoo models, without TensorFlow or Keras: `--data SPEC` strings to numpy arrays.

SPEC is a folder with one sub-folder per class (or train/, val/ or validation/, test/ folders
each holding class folders), a CSV manifest (`path,label[,split]`), a `.npz` file of arrays, or
`builtin:NAME` (real datasets shipped in PyPI wheels, see `list_builtin()`), each with an
optional query `?classes=5-9&per_class=10` (folders also `&layout=classes|splits`). `finetune.data` builds its tf.data pipelines on this package, and
`convert` reads calibration data through it, so both see the same examples and the same pixels.

Example:
    >>> from zoo import data
    >>> data.list_builtin()["digits"]
    'scikit-learn 8x8 handwritten digits as 0-255 grayscale images, 10 classes, ...'
    >>> val = data.load_arrays("builtin:digits", task="image", input_shape=(28, 28, 1),
    ...                        split="val")
    >>> val.x.shape, val.y[:3]
    ((288, 28, 28, 1), array([...]))

Imports numpy only; scikit-learn (builtin digits) and Pillow (image folders) load when used.
"""

from __future__ import annotations

from zoo.data._arrays import Arrays, load_arrays, split_arrays
from zoo.data._builtin import BuiltinInfo, builtin_info, list_builtin
from zoo.data._files import IMAGE_EXTENSIONS
from zoo.data._image import (
    UnsupportedImageError,
    decode_image,
    read_pixels,
    to_shape,
    to_shape_batch,
)
from zoo.data._resolve import DEFAULT_VAL_SPLIT, SPLITS, ResolvedData, check_arguments, resolve_data
from zoo.data._source import Split
from zoo.data._spec import DataSpec, parse_data_spec

__all__ = [
    "DEFAULT_VAL_SPLIT",
    "IMAGE_EXTENSIONS",
    "SPLITS",
    "Arrays",
    "BuiltinInfo",
    "DataSpec",
    "ResolvedData",
    "Split",
    "UnsupportedImageError",
    "builtin_info",
    "check_arguments",
    "decode_image",
    "list_builtin",
    "load_arrays",
    "parse_data_spec",
    "read_pixels",
    "resolve_data",
    "split_arrays",
    "to_shape",
    "to_shape_batch",
]
