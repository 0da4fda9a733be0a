"""Loading a weights file into a built zoo model, whatever Keras wrote it.

Three layouts are told apart by their contents, not their names (a `.h5` suffix says nothing):

- "keras": a `.keras` archive (a zip): a whole saved model, whose weights are loaded;
- "keras3_h5": Keras 3 `save_weights` HDF5 (`layers/...`, `vars` groups, no `layer_names`);
- "legacy_h5": Keras 2 HDF5 weights (`layer_names` at the root, or under `model_weights` in a
  whole model saved as `.h5`), the format keras.applications downloads.

Each may hold the whole model's weights or only the backbone's (`backbone.save_weights(...)`,
or an ImageNet file): both are tried, the likelier first.

Example:
    >>> weights_layout("mobilenet_v2.weights.h5")
    'keras3_h5'
"""

from __future__ import annotations

import os
import tempfile
import warnings
import zipfile
from pathlib import Path

LAYOUTS = ("keras", "keras3_h5", "legacy_h5")
# The suffix Keras' own `load_weights` dispatches on, per layout.
_KERAS_SUFFIX = {"keras": ".keras", "keras3_h5": ".weights.h5"}


def weights_layout(path: str | os.PathLike[str]) -> str | None:
    """The layout: "keras", "keras3_h5", "legacy_h5", or None (damaged, or not Keras weights)."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        return "keras"
    import h5py

    try:
        with h5py.File(path, "r") as handle:
            if "layer_names" in handle.attrs or (
                "model_weights" in handle and "layer_names" in handle["model_weights"].attrs
            ):
                return "legacy_h5"
            if "layers" in handle or "vars" in handle:
                return "keras3_h5"
    except OSError:  # h5py's answer to a file that is not HDF5 (or truncated)
        return None
    return None


def _load_legacy(target, path: Path) -> None:
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    with h5py.File(path, "r") as handle:
        group = handle if "layer_names" in handle.attrs else handle["model_weights"]
        legacy_h5_format.load_weights_from_hdf5_group(group, target)


def _load_keras3(target, path: Path, layout: str) -> None:
    # Keras picks the reader by suffix; a link with the right one reads the same bytes.
    with tempfile.TemporaryDirectory(prefix="zoo-weights-") as tmp, warnings.catch_warnings():
        # Keras 3.15 warns once per nested container it finds no group for, even on a good load.
        warnings.filterwarnings("ignore", message="Skipping nested container")
        link = Path(tmp) / f"weights{_KERAS_SUFFIX[layout]}"
        link.symlink_to(path.resolve())
        target.load_weights(str(link))


def _targets(model, layout: str, has_backbone: bool) -> list:
    """The models to try, likelier first: a legacy file is most often a backbone download."""
    if not has_backbone:
        return [model]
    from zoo.models.backbones import BACKBONE_LAYER_NAME

    backbone = model.get_layer(BACKBONE_LAYER_NAME)
    return [backbone, model] if layout == "legacy_h5" else [model, backbone]


def load_weights_file(model, path: str | os.PathLike[str], *, has_backbone: bool) -> None:
    """Load `path` into `model` (or its backbone); a mismatch or a damaged file is one line.

    Example:
        >>> load_weights_file(model, "body.weights.h5", has_backbone=True)
    """
    path = Path(path)
    layout = weights_layout(path)
    if layout is None:
        raise ValueError(
            f"{model.name}: weights files should be Keras weights (.weights.h5, legacy .h5) or a "
            f".keras model; {str(path)!r} is none of them (damaged or truncated?). "
            f"Received: weights={str(path)!r}"
        )
    first_error = None
    for target in _targets(model, layout, has_backbone):
        try:
            if layout == "legacy_h5":
                _load_legacy(target, path)
            else:
                _load_keras3(target, path, layout)
            return
        except Exception as error:  # Keras raises ValueError, KeyError, TypeError... on mismatch
            first_error = first_error or error
    whose = "this model's or its backbone's" if has_backbone else "this model's"
    raise ValueError(
        f"{model.name}: could not load weights from {str(path)!r} ({layout}): they are not "
        f"{whose} (saved from another architecture/shape?). "
        f"Received: {_first_line(first_error)}"
    )


def _first_line(error: BaseException | None) -> str:
    """The error's first line; with the next one when it ends in ':' (Keras' "Example error
    message for object <Conv2D ...>:" says nothing by itself)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()] if error else []
    if not lines:
        return type(error).__name__
    return " ".join(lines[:2]) if lines[0].endswith(":") and len(lines) > 1 else lines[0]
