"""What every `convert` module shares: the option tables, input signatures, the runner interface
and the atomic publish. Imports nothing heavy (no TensorFlow, ONNX or OpenVINO at import time).

Example:
    >>> from convert._common import TARGETS, temp_path, failed_path
    >>> TARGETS
    ('saved_model', 'onnx', 'openvino', 'tensorrt', 'tf-trt')
    >>> failed_path("runs/demo/model.xml")
    PosixPath('runs/demo/model.failed.xml')
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TARGETS = ("saved_model", "onnx", "openvino", "tensorrt", "tf-trt")
PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile", "distribution")
# OpenVINO's CPU inference precisions (INFERENCE_PRECISION_HINT): bf16 where the CPU has it.
INFERENCE_PRECISIONS = ("bf16", "f32")
# Runtimes `zoo bench` can run an .onnx file in.
ONNX_RUNTIMES = ("onnxruntime", "openvino")
# What `zoo evaluate --split` scores ("all": every split the data has).
EVAL_SPLITS = ("test", "val", "train", "all")
CALIBRATION_LIMIT = 256  # calibration samples: enough for stable ranges, fast histograms
EVALUATION_LIMIT = 512  # labelled samples the parity gate scores
DEFAULT_OPSET = 17
OPSET_RANGE = (13, 21)
DEFAULT_BATCH_SIZES = (1, 8, 32)
DEFAULT_SEQ_LENS = (8, 64, 256)


def check_choice(name: str, value: Any, valid: Sequence[str]) -> None:
    """One-line ValueError unless `value` is one of `valid`.

    Example:
        >>> check_choice("to", "pdf", TARGETS)
        ValueError: to should be one of saved_model, onnx, ... Received: to='pdf'
    """
    if value not in valid:
        raise ValueError(f"{name} should be one of {', '.join(valid)}. Received: {name}={value!r}")


def check_opset(opset: Any) -> int:
    low, high = OPSET_RANGE
    if isinstance(opset, bool) or not isinstance(opset, int) or not low <= opset <= high:
        raise ValueError(
            f"opset should be an int between {low} and {high}. Received: opset={opset!r}"
        )
    return opset


class Runner:
    """Runs one artefact on float32 numpy batches: `run(x) -> list[np.ndarray]`, one per output.

    `runtime` names the runtime and what it runs (e.g. "onnxruntime-int8", "openvino-fp32@bf16");
    `inference_precision` the precision it computes in ("f32", "bf16", or "native": the graph's
    own types); `input_shape` has None for every dynamic axis (batch always; time for sequences).
    """

    runtime: str = "?"
    inference_precision: str = "native"
    input_name: str = "input"
    input_shape: tuple[int | None, ...] = ()
    output_names: list[str] = []

    def run(self, x: Any) -> list[Any]:  # pragma: no cover - interface
        raise NotImplementedError


def keras_signature(model: Any) -> tuple[str, tuple[int | None, ...]]:
    """(input name, input shape without batch) of a single-input Keras model.

    Example:
        >>> keras_signature(zoo.create_model("lstm"))
        ('sequence', (None, 10))
    """
    if len(model.inputs) != 1:
        raise ValueError(
            f"convert supports single-input models. Received: {len(model.inputs)} inputs"
        )
    tensor = model.inputs[0]
    return getattr(tensor, "name", None) or "input", tuple(tensor.shape[1:])


def keras_output_names(model: Any) -> list[str]:
    names = list(getattr(model, "output_names", None) or [])
    if len(names) == len(model.outputs):
        return names
    return [f"output_{i}" for i in range(len(model.outputs))]


def onnx_signature(path: str | os.PathLike[str]) -> tuple[str, tuple[int | None, ...], int | None]:
    """(input name, input shape without batch, width of the first output) of an ONNX file."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph

    def dims(value: Any) -> list[int | None]:
        return [
            d.dim_value if d.HasField("dim_value") else None
            for d in value.type.tensor_type.shape.dim
        ]

    output = dims(graph.output[0]) if graph.output else []
    return graph.input[0].name, tuple(dims(graph.input[0])[1:]), output[-1] if output else None


# ------------------------------------------------------------------ atomic publish


def temp_path(final: str | os.PathLike[str]) -> Path:
    """A hidden temp name in the final file's directory (publishing is a same-filesystem rename).

    Example:
        >>> temp_path("out/model.xml").name  # doctest: +SKIP
        '.model.xml.tmp-4242.xml'
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.name}.tmp-{os.getpid()}{final.suffix}")


def failed_path(final: str | os.PathLike[str]) -> Path:
    """`model.onnx` -> `model.failed.onnx`; a directory `sm` -> `sm.failed`."""
    final = Path(final)
    if final.suffix:
        return final.with_name(f"{final.stem}.failed{final.suffix}")
    return final.with_name(final.name + ".failed")


def report_path(artefact: str | os.PathLike[str]) -> Path:
    """Where an artefact's report goes: `<artefact>.report.json` beside it."""
    artefact = Path(artefact)
    return artefact.with_name(artefact.name + ".report.json")


def companions(path: str | os.PathLike[str]) -> list[Path]:
    """The files that travel with an artefact: an IR's `.bin` weights, an engine's `.json` sidecar."""
    path = Path(path)
    found = [path.with_suffix(".bin")] if path.suffix == ".xml" else []
    return found + [path.with_name(path.name + ".json")]


def remove(path: str | os.PathLike[str]) -> None:
    """Delete a file or folder (and its companions) if present."""
    for item in [Path(path), *companions(path)]:
        if item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        elif item.exists() or item.is_symlink():
            item.unlink()


def publish(temp: str | os.PathLike[str], final: str | os.PathLike[str], report: Any) -> Path:
    """Move a verified artefact to `final` (with its report), or set a failed one aside.

    On success `temp` replaces `final` and the report becomes `<final>.report.json`; on failure
    `temp` becomes `<stem>.failed<suffix>` and a file already at `final` (an earlier good run) is
    left untouched. An artefact of several files (an OpenVINO `model.xml` + `model.bin`) is moved
    entry point last, after the old entry point is removed: a reader sees the old pair, no
    `model.xml`, or the new pair, never a new `.xml` over an old `.bin`. Returns where it went.
    """
    temp, final = Path(temp), Path(final)
    target = final if report.passed else failed_path(final)
    report.artefact = str(target)
    if target.exists():
        if target.is_dir():
            shutil.rmtree(target)
        else:
            target.unlink()
    for source, destination in zip(companions(temp), companions(target), strict=True):
        if source.exists():
            os.replace(source, destination)
        elif destination.exists():
            destination.unlink()  # an old sidecar must not describe the new artefact
    os.replace(temp, target)
    report.write_json(report_path(target))
    return target
