"""`convert()`: SOURCE -> export -> parity gate -> publish, one exporter module per target.

| target | exporter | artefact | gated in |
|---|---|---|---|
| saved_model | `convert.saved_model.export_saved_model` | `model.saved_model/` | TensorFlow |
| onnx | `convert.onnx.export_onnx` (+ `convert.lowering`) | `model[.fp16/.int8].onnx` | ONNX Runtime |
| openvino | `convert.openvino.export_openvino` | `model[.fp16/.int8].xml` + `.bin` | OpenVINO, f32 compute |
| tensorrt | `convert.tensorrt.export_tensorrt` | `model[.fp16/.int8].engine` | TensorRT |
| tf-trt | `convert.tftrt.export_tftrt` | `model.tftrt.<precision>/` | TensorFlow |

Example:
    >>> from convert.pipeline import convert
    >>> convert("runs/demo", to="openvino", precision="int8").artefact
    PosixPath('runs/demo/model.int8.xml')
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from convert._common import (
    CALIBRATION_METHODS,
    DEFAULT_BATCH_SIZES,
    DEFAULT_OPSET,
    DEFAULT_SEQ_LENS,
    PRECISIONS,
    TARGETS,
    check_choice,
    publish,
    remove,
    report_path,
    temp_path,
)

_SUFFIXES = {"onnx": ".onnx", "openvino": ".xml", "tensorrt": ".engine"}


@dataclasses.dataclass
class ConvertResult:
    """What `convert()` produced: the artefact's final path and its parity report.

    `artefact` is where the file ended up: its final name when `passed`, else the
    `<name>.failed<suffix>` it was set aside as. `extra` carries what an exporter reports
    beyond the file (e.g. the TensorRT build's facts).
    """

    artefact: Path
    target: str
    precision: str
    report: Any | None
    report_path: Path | None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.report is None or self.report.passed


class GateError(ValueError):
    """The artefact failed the parity gate; `.result` holds the report and where it was kept."""

    def __init__(self, message: str, result: ConvertResult):
        super().__init__(message)
        self.result = result


@dataclasses.dataclass
class _Job:
    """Everything an exporter needs besides the path it writes."""

    src: Any
    model: Any
    precision: str
    opset: int
    calib_method: str
    calibration: Any
    batch_sizes: tuple[int, ...]
    seq_lens: tuple[int, ...]
    say: Callable[[str], None]
    evaluation: Any = None  # the gate's data (a QAT export reports its float parent on it)
    exclude_nodes: tuple[str, ...] = ()  # int8: fp32-ONNX nodes kept float (a mixed file)


def default_out(stem: Path, to: str, precision: str) -> Path:
    """`model.onnx`, `model.int8.onnx`, `model.fp16.xml`, `model.engine`, `model.saved_model/`...

    Example:
        >>> default_out(Path("runs/demo/model"), "openvino", "int8")
        PosixPath('runs/demo/model.int8.xml')
    """
    tag = "" if precision == "fp32" else f".{precision}"
    if to in _SUFFIXES:
        return stem.with_name(stem.name + tag + _SUFFIXES[to])
    folder = "saved_model" if to == "saved_model" else f"tftrt{tag or '.fp32'}"
    return stem.with_name(f"{stem.name}.{folder}")


def _target_available(to: str) -> None:
    """A one-line error now, before any work, when this machine cannot build the target."""
    if to == "tf-trt":
        from convert.tftrt import tftrt_available

        available, reason = tftrt_available()
        if not available:
            raise ValueError(reason)
    elif to == "tensorrt":
        from convert.tensorrt import is_available

        available, reason = is_available()
        if not available:
            raise RuntimeError(
                f"--to tensorrt needs TensorRT and an NVIDIA GPU: {reason}. "
                f"`zoo convert SOURCE --preflight` checks the graph on this machine."
            )
    elif to == "openvino":
        from convert.openvino import require

        require()


def check_arguments(src: Any, to: str, precision: str, has_data: bool) -> None:
    """The combinations of SOURCE, target and precision that cannot work, as one-line errors."""
    if src.kind == "onnx" and to in ("saved_model", "tf-trt"):
        raise ValueError(
            f"An .onnx SOURCE converts only to onnx (lower precision), openvino or tensorrt. "
            f"Received: to={to!r}"
        )
    if src.kind == "onnx" and to == "onnx" and precision == "fp32":
        raise ValueError(
            "SOURCE is already an fp32 ONNX file: pass --precision fp16|int8, --to openvino, "
            "--to tensorrt, or --preflight. Received: to='onnx', precision='fp32'"
        )
    if to == "saved_model" and precision != "fp32":
        raise ValueError(
            f"--to saved_model writes float32 only; use --to onnx for fp16/int8. "
            f"Received: precision={precision!r}"
        )
    if precision == "int8" and not has_data:
        raise ValueError(
            "--precision int8 calibrates on real inputs: pass --calib-data SPEC (a folder, "
            "FILE.npz or builtin:NAME), or convert a run directory whose config has `data`. "
            "Received: no calibration data"
        )
    _target_available(to)
    if src.kind == "onnx":
        from convert.runners import OnnxRuntimeRunner

        OnnxRuntimeRunner(src.onnx_path)  # the reference: one line now if it cannot run


def _check_free(final: Path, overwrite: bool) -> None:
    if final.exists() and not overwrite:
        raise ValueError(
            f"{str(final)!r} already exists: pass --overwrite to replace it (it is replaced only "
            f"once the new artefact passes the parity gate), or --out another path."
        )


def _gate_data(src: Any, model: Any, calib_data: Any, eval_data: Any, say) -> tuple[Any, Any]:
    """(calibration (x, y), evaluation (x, y)), or (None, None): the gate then generates inputs."""
    from zoo.runs import recorded_data

    spec = calib_data
    if spec is None and src.run_dir is not None:
        # The run's own data; a one-line error when an older run's relative path is nowhere.
        spec = recorded_data(src.run_dir, src.config)
    if spec is None:
        return None, None
    if isinstance(spec, tuple):
        return spec, eval_data or spec
    from convert.calibration import load_for_source

    data = load_for_source(src, model, spec, say)
    return data.calibration, data.evaluation


# ------------------------------------------------------------------ exporters, one per target


def _onnx_file(
    job: _Job, out: Path, scratch: Path, *, symmetric: bool = False, lower: bool = True
) -> Path:
    """An ONNX file at the job's precision: `out`, or the SOURCE itself when it already is one.

    The fp32 export a lowering starts from goes to `scratch`. `lower=False` stops at fp32 for
    fp16 (OpenVINO compresses weights itself); int8 always quantizes (`symmetric` for TensorRT,
    which wants zero points of 0).
    """
    from convert.lowering import quantize_fp16, quantize_int8
    from convert.metadata import of_keras, write_onnx
    from convert.onnx import export_onnx
    from convert.qat import export_qat_onnx, is_qat_model

    if job.model is not None and is_qat_model(job.model):  # its own ranges, no calibration
        job.say("exporting the QAT model's learned ranges as int8 Q/DQ ONNX")
        return export_qat_onnx(
            job.model, out, opset=job.opset, source=job.src.path, precision=job.precision,
            symmetric=symmetric,
        )  # fmt: skip
    precision = job.precision if lower or job.precision == "int8" else "fp32"
    fp32 = job.src.onnx_path
    if fp32 is None:
        fp32 = out if precision == "fp32" else scratch / "model.fp32.onnx"
        job.say(f"exporting ONNX (opset {job.opset})")
        export_onnx(job.model, fp32, opset=job.opset)
        # Class names and the input contract travel in the file; the lowerings copy them.
        write_onnx(fp32, of_keras(job.model, job.src.path))
    if precision == "fp16":
        job.say("converting to float16")
        quantize_fp16(fp32, out)
    elif precision == "int8":
        samples = len(job.calibration[0])
        job.say(f"quantizing to int8 ({job.calib_method} calibration, {samples} samples)")
        quantize_int8(fp32, out, job.calibration[0], job.calib_method, symmetric=symmetric,
                      exclude_nodes=job.exclude_nodes)  # fmt: skip
    return out if precision != "fp32" else fp32


def _export_onnx(job: _Job, candidate: Path) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kerazoo-convert-") as scratch:
        _onnx_file(job, candidate, Path(scratch))
    return {}


def _export_saved_model(job: _Job, candidate: Path) -> dict[str, Any]:
    from convert.saved_model import export_saved_model

    export_saved_model(job.model, candidate)
    return {}


def _export_openvino(job: _Job, candidate: Path) -> dict[str, Any]:
    from convert.metadata import read_onnx
    from convert.openvino import export_openvino

    with tempfile.TemporaryDirectory(prefix="kerazoo-convert-") as scratch:
        onnx_path = _onnx_file(job, Path(scratch) / "model.onnx", Path(scratch), lower=False)
        job.say(f"writing OpenVINO IR ({job.precision})")
        export_openvino(
            onnx_path, candidate, compress_to_fp16=job.precision == "fp16",
            rt_info=read_onnx(onnx_path).to_props(),  # OpenVINO drops ONNX metadata_props
        )  # fmt: skip
    return {}


def _export_tensorrt(job: _Job, candidate: Path) -> dict[str, Any]:  # pragma: no cover - GPU
    from convert.tensorrt import export_tensorrt

    with tempfile.TemporaryDirectory(prefix="kerazoo-convert-") as scratch:
        onnx_path = _onnx_file(job, Path(scratch) / "model.onnx", Path(scratch), symmetric=True)
        job.say(f"building TensorRT engine ({job.precision})")
        export_tensorrt(onnx_path, candidate, batch_sizes=job.batch_sizes, seq_lens=job.seq_lens)
    return {}


def _export_tftrt(job: _Job, candidate: Path) -> dict[str, Any]:  # pragma: no cover - TF <= 2.17
    from convert.tftrt import export_tftrt

    calibration = job.calibration[0] if job.precision == "int8" else None
    job.say(f"converting with TF-TRT ({job.precision})")
    export_tftrt(job.model, candidate, precision=job.precision, calibration=calibration)
    return {}


_EXPORTERS = {
    "saved_model": _export_saved_model,
    "onnx": _export_onnx,
    "openvino": _export_openvino,
    "tensorrt": _export_tensorrt,
    "tf-trt": _export_tftrt,
}


def _gate_runner(to: str, candidate: Path):
    """The runner the gate reads the candidate with (OpenVINO at f32 compute: the fp32 contract)."""
    from convert.runners import open_artifact

    if to == "openvino":
        return open_artifact(candidate, "openvino", inference_precision="f32")
    return open_artifact(candidate, "tensorflow" if to in ("saved_model", "tf-trt") else None)


def run_preflight(
    source: str | os.PathLike[str],
    *,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    seq_lens: Sequence[int] = DEFAULT_SEQ_LENS,
    opset: int = DEFAULT_OPSET,
):
    """The TensorRT preflight report of SOURCE's ONNX graph (exported to a temp file if needed).

    Example:
        >>> print(run_preflight("runs/demo").format_table())
    """
    from convert.onnx import export_onnx
    from convert.preflight import derive_profiles, preflight
    from convert.source import resolve_source

    src = resolve_source(source)
    with tempfile.TemporaryDirectory(prefix="kerazoo-preflight-") as scratch:
        onnx_path = src.onnx_path or export_onnx(
            src.load_model(), Path(scratch) / "model.onnx", opset=opset
        )
        profiles = derive_profiles(onnx_path, list(batch_sizes), list(seq_lens))
        return preflight(onnx_path, profiles=profiles)


def convert(
    source: str | os.PathLike[str],
    to: str = "onnx",
    precision: str = "fp32",
    *,
    out: str | os.PathLike[str] | None = None,
    opset: int = DEFAULT_OPSET,
    calib_data: str | tuple[Any, Any] | None = None,
    eval_data: tuple[Any, Any] | None = None,
    calib_method: str = "minmax",
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    seq_lens: Sequence[int] = DEFAULT_SEQ_LENS,
    atol: float | None = None,
    rtol: float | None = None,
    progress: Callable[[str], None] | None = None,
    overwrite: bool = False,
    safe_mode: bool = True,
    exclude_nodes: Sequence[str] = (),
    max_accuracy_drop: float | None = None,
) -> ConvertResult:
    """Convert SOURCE to `to` at `precision`, verify it, and publish it under its final name.

    Args:
        source: a `.keras` file, a run directory (its config's `data` is the default calibration
            data), or an `.onnx` file (to lower its precision, or for openvino/tensorrt).
        to: "saved_model", "onnx", "openvino", "tensorrt" or "tf-trt".
        precision: "fp32", "fp16" or "int8" (int8 needs calibration data).
        out: the artefact path. Defaults to beside the model (`default_out`).
        opset: ONNX opset. Defaults to 17.
        calib_data: a data SPEC (`zoo.data` forms) or `(x, y)` arrays; calibrates int8 and
            feeds the parity gate. Defaults to the run's `data`, else generated inputs.
        eval_data: `(x, y)` for the parity gate when `calib_data` is arrays (defaults to them).
        calib_method: "minmax", "entropy", "percentile" or "distribution".
        batch_sizes, seq_lens: shapes checked with generated inputs and TensorRT profile ranges.
        atol, rtol: parity tolerances; default per precision (`convert.gate.TOLERANCES`).
        progress: called with one-line progress messages.
        overwrite: replace an existing artefact at `out` (after the new one passes the gate).
        safe_mode: False lets a `.keras` SOURCE run code stored in it; trusted files only.
        exclude_nodes: int8 only: fp32-ONNX node names that stay float (`quantize_int8`).
        max_accuracy_drop: the gate's allowed accuracy loss on labelled data, as a fraction
            (default per precision, `convert.gate.MAX_ACCURACY_DROP`); `convert.budget` sets it
            to the user's budget.

    Raises:
        ValueError: invalid arguments; `GateError` (a ValueError) when the artefact failed the
            parity gate: it is then kept as `<name>.failed<suffix>` beside its report.

    Example:
        >>> convert("model.keras", to="onnx", precision="fp16").report.outputs[0].max_abs
        0.0012
    """
    from convert.gate import verify
    from convert.qat import float_parent_report
    from convert.source import resolve_source

    for name, value, valid in (
        ("to", to, TARGETS),
        ("precision", precision, PRECISIONS),
        ("calib_method", calib_method, CALIBRATION_METHODS),
    ):
        check_choice(name, value, valid)
    say = progress or (lambda _line: None)
    src = resolve_source(source, safe_mode=safe_mode)
    check_arguments(src, to, precision, has_data=(calib_data or src.data_spec) is not None)
    final = Path(out) if out is not None else default_out(src.stem, to, precision)
    _check_free(final, overwrite)
    model = src.load_model() if src.model_path is not None else None
    calibration, evaluation = _gate_data(src, model, calib_data, eval_data, say)
    job = _Job(src, model, precision, opset, calib_method, calibration,
               tuple(batch_sizes), tuple(seq_lens), say, evaluation,
               tuple(exclude_nodes))  # fmt: skip
    candidate = temp_path(final)
    try:
        extra = _EXPORTERS[to](job, candidate)
        say(f"verifying {final.name} ({precision})")
        report = verify(
            _gate_runner(to, candidate), model if model is not None else src.onnx_path,
            evaluation, precision=precision, atol=atol, rtol=rtol, name=str(final),
            batch_sizes=job.batch_sizes, seq_lens=job.seq_lens,
            max_accuracy_drop=max_accuracy_drop,
        )  # fmt: skip
        report.extra.update(extra)
        report.extra.update(
            float_parent_report(src, model, evaluation, report.accuracy_artefact, say)
        )
        placed = publish(candidate, final, report)
    finally:
        remove(candidate)
    result = ConvertResult(placed, to, precision, report, report_path(placed), extra)
    if not result.passed:
        raise GateError(
            f"{placed.name} failed the parity gate ({'; '.join(report.failures)}); kept as "
            f"{placed}, report in {result.report_path}",
            result,
        )
    return result
