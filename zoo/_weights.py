"""Building a registered model with its weights: none, a pretrained tag, or a file."""

from __future__ import annotations

import contextlib
import inspect
import os
import re
import zipfile
from pathlib import Path
from typing import Any

from zoo._weight_files import load_weights_file


def _keras_cache_dir() -> Path:
    # Keras' get_file caches under $KERAS_HOME/models, or ~/.keras/models.
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def _offline_error(name: str, error: Exception) -> ValueError:
    match = re.search(r"https?://\S+/([^/\s:]+)", str(error))
    filename = match.group(1) if match else "the backbone's weights file"
    return ValueError(
        f"Could not download ImageNet weights for {name} (offline?). Put {filename} in "
        f"{_keras_cache_dir()}/, or pass weights='/path/to/{filename}' (CLI: --weights PATH), "
        f"or weights=None (CLI: --weights none) for random init. Cause: {_first_line(error)}"
    )


def _build(entry, shape, classes, options, weights=None):
    kwargs = dict(options)
    if "weights" in inspect.signature(entry.builder).parameters:
        kwargs["weights"] = weights
    return entry.builder(shape, classes, **kwargs)


def check_weights(entry, weights: Any) -> str | None:
    """`weights` checked against `entry` without Keras: None, one of its tags, or a file path.

    Returns None for random init ("none" too), the tag, or the path as a string.
    """
    if weights is None or (isinstance(weights, str) and weights.lower() in ("none", "")):
        return None
    if isinstance(weights, str) and not _looks_like_path(weights):
        if weights not in entry.pretrained:
            valid = ", ".join(repr(tag) for tag in (None, *entry.pretrained)) + " or a file path"
            raise ValueError(
                f"{entry.name}: weights should be {valid}. Received: weights={weights!r}"
            )
        return weights
    if not Path(weights).is_file():
        raise ValueError(
            f"{entry.name}: weights file {str(weights)!r} does not exist; pass a file that "
            f"exists, None (random init) or 'default'. Received: weights={str(weights)!r}"
        )
    return str(weights)


def build_with_weights(entry, shape, classes: int, weights: Any, options: dict[str, Any]):
    """Build `entry` and load `weights` into it; every failure is a one-line ValueError."""
    weights = check_weights(entry, weights)
    if weights is None:
        return _build(entry, shape, classes, options)
    if weights in entry.pretrained:
        try:
            return _build(entry, shape, classes, options, weights=weights)
        except Exception as error:  # Keras raises a bare Exception on a failed download.
            if "URL fetch failure" in str(error) or isinstance(error, OSError):
                raise _offline_error(entry.name, error) from None
            raise
    model = _build(entry, shape, classes, options)
    load_weights_file(model, weights, has_backbone=bool(entry.pretrained))
    return model


def _looks_like_path(value: str) -> bool:
    return os.sep in value or value.endswith((".h5", ".keras", ".hdf5")) or os.path.exists(value)


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _safe_mode_scope(safe_mode: bool):
    """Pin Keras' safe mode for one load.

    `keras.config.enable_unsafe_deserialization()` sets a process-wide flag that overrides the
    `safe_mode=True` argument of `keras.saving.load_model`; any notebook or library may have
    called it. Inside this scope the caller's explicit choice wins.
    """
    try:
        from keras.src.saving.serialization_lib import SafeModeScope
    except ImportError:  # pragma: no cover - a Keras without it has no global override either
        return contextlib.nullcontext()
    return SafeModeScope(safe_mode)


def load_keras_file(path: str | os.PathLike[str], *, safe_mode: bool = True):
    """Load a `.keras` model with zoo's custom layers known, refusing damaged files clearly.

    In safe mode (the default) a file whose config asks to run Python (a Lambda layer, a
    function or class outside Keras and zoo's registered layers) is refused, whatever
    `keras.config.enable_unsafe_deserialization()` was set to.
    """
    import keras

    import zoo._layers  # noqa: F401  (registers ImagePreprocessing, in models saved before 0.2)
    import zoo.quantization  # noqa: F401  (registers the fake-quant layers of QAT models)

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Model file {str(path)!r} does not exist.")
    if path.suffix != ".keras":
        raise ValueError(f"Expected a .keras model file. Received: {str(path)!r}")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{str(path)!r} is not a valid .keras file (not a zip archive; truncated?)."
        )
    try:
        with _safe_mode_scope(bool(safe_mode)):
            return keras.saving.load_model(path, safe_mode=safe_mode)
    except ValueError as error:
        message = str(error)
        if "safe_mode" in message or "Lambda" in message:
            raise ValueError(
                f"{str(path)!r} holds code (a Lambda layer or a Python function) that safe mode "
                f"refuses to run: re-save the model without it (use a registered layer), or, only "
                f"if you trust its source, load it with zoo.load_model(path, safe_mode=False) "
                f"(CLI: --unsafe-load)."
            ) from None
        raise ValueError(f"Could not load {str(path)!r}: {_first_line(error)}") from None
    except Exception as error:
        raise ValueError(f"Could not load {str(path)!r}: {_first_line(error)}") from None
