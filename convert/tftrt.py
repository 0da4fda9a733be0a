"""TF-TRT: TensorRT segments inside a TensorFlow SavedModel, where this TensorFlow supports it.

TensorFlow 2.17 was the last release with TF-TRT; from 2.18 the pip wheels are built without
TensorRT, so on the TensorFlow this project pins (2.21) `export_tftrt` raises a ValueError that
points to the ONNX route (`--to tensorrt`). Where it runs, the converted folder is gated like every
artefact: its `serve` endpoint (`convert.runners.SavedModelRunner`) against the Keras model.

Example:

```python
from convert.tftrt import export_tftrt, tftrt_available

ok, reason = tftrt_available()
if ok:
    export_tftrt("runs/demo/model.keras", "runs/demo/model.tftrt.fp16", precision="fp16")
```
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_PRECISIONS = {"fp32": "FP32", "fp16": "FP16", "int8": "INT8"}


def tftrt_available() -> tuple[bool, str]:
    """Whether this TensorFlow was built with TensorRT, with the reason."""
    import tensorflow as tf

    version = ".".join(tf.__version__.split(".")[:2])
    info = tf.sysconfig.get_build_info()
    if not info.get("is_tensorrt_build"):
        return False, (
            f"TF-TRT is not in this TensorFlow ({version}; TF-TRT was removed after TF 2.17; it "
            "needs a CUDA build with TensorRT); use --to tensorrt (ONNX -> TensorRT) instead. "
            f"Received: TensorFlow {tf.__version__} without TensorRT"
        )
    if not hasattr(tf.experimental, "tensorrt"):
        return False, (
            f"TensorFlow {version} has no tf.experimental.tensorrt; use --to tensorrt. "
            f"Received: TensorFlow {tf.__version__}"
        )
    return True, f"TensorFlow {version} built with TensorRT"


def export_tftrt(
    model_or_path: Any,
    path: str | os.PathLike,
    *,
    precision: str = "fp32",
    calibration: Any = None,
) -> Path:
    """Keras model -> SavedModel (temporary) -> TF-TRT SavedModel folder at `path`.

    `calibration` (int8 only): float32 inputs, fed in batches of 16.

    Example:
        >>> export_tftrt("model.keras", "model.tftrt.fp16", precision="fp16")
        PosixPath('model.tftrt.fp16')
    """
    from convert.saved_model import export_saved_model

    ok, reason = tftrt_available()
    if not ok:
        raise ValueError(reason)
    calibrate = None
    if calibration is not None:

        def calibrate():
            for start in range(0, len(calibration), 16):
                yield (calibration[start : start + 16],)

    with tempfile.TemporaryDirectory(prefix="kerazoo-tftrt-") as scratch:
        saved = export_saved_model(model_or_path, Path(scratch) / "saved_model")
        return convert_tftrt(saved, path, precision=precision, calibration_input_fn=calibrate)


def convert_tftrt(
    saved_model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    precision: str = "fp32",
    calibration_input_fn: Callable[[], Iterable[Any]] | None = None,
) -> Path:
    """Converts a SavedModel with `tf.experimental.tensorrt.Converter` and saves it to `out_dir`.

    Args:
        saved_model_dir: the input SavedModel directory.
        out_dir: where the converted SavedModel is written.
        precision: "fp32", "fp16" or "int8". Defaults to "fp32".
        calibration_input_fn: for "int8", a callable yielding input batches (tuples of
            tensors) used for calibration. Defaults to None.

    Returns:
        `out_dir` as a Path.

    Example:

    ```python
    convert_tftrt("exported/saved_model", "exported/tftrt", precision="fp16")
    ```
    """
    if precision not in _PRECISIONS:
        raise ValueError(
            f"precision should be one of {sorted(_PRECISIONS)}. Received: precision={precision!r}"
        )
    if precision == "int8" and calibration_input_fn is None:
        raise ValueError(
            "precision='int8' needs calibration_input_fn, a callable yielding input batches. "
            "Received: calibration_input_fn=None"
        )
    ok, reason = tftrt_available()
    if not ok:
        raise ValueError(reason)
    saved_model_dir = Path(saved_model_dir)
    if not (saved_model_dir / "saved_model.pb").is_file():
        raise ValueError(f"{saved_model_dir} is not a SavedModel directory (no saved_model.pb).")

    import tensorflow as tf

    params = tf.experimental.tensorrt.ConversionParams(precision_mode=_PRECISIONS[precision])
    converter = tf.experimental.tensorrt.Converter(
        input_saved_model_dir=str(saved_model_dir), conversion_params=params
    )
    if precision == "int8":
        converter.convert(calibration_input_fn=calibration_input_fn)
    else:
        converter.convert()
    out = Path(out_dir)
    _save_atomically(lambda folder: converter.save(str(folder)), out)
    return out


def _save_atomically(save: Callable[[Path], None], out: Path) -> None:
    """`save` into a hidden folder beside `out`, then rename it to `out` (replacing an old one).

    A SavedModel is a folder, which `os.replace` cannot move onto a non-empty one: an existing
    `out` is first renamed aside and deleted only once the new folder is in place, so a kill
    leaves the old or the new SavedModel under `out` (or, between the two renames, neither:
    the old one is then the hidden `.NAME.old-PID`), never a half-written one.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    old = out.with_name(f".{out.name}.old-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        save(tmp)
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
