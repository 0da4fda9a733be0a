"""The `convert()` dispatcher: SOURCE -> verified artefact, one target module per format.

Example:
    >>> from convert.pipeline import convert
    >>> convert("runs/demo", to="onnx", precision="fp16").artefact
    PosixPath('runs/demo/model.fp16.onnx')
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

TARGETS = ("saved_model", "onnx", "tensorrt", "tf-trt")
PRECISIONS = ("fp32", "fp16", "int8")
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
CALIBRATION_LIMIT = 256  # calibration samples: enough for stable ranges, fast histograms
EVALUATION_LIMIT = 512  # labelled samples the parity gate scores


@dataclasses.dataclass
class ConvertResult:
    """What `convert()` produced: the artefact's final path and its parity report.

    `artefact` is where the file ended up: its final name when `passed`, else the
    `<name>.failed<suffix>` it was set aside as. `extra` carries target-specific facts (the int8
    speed-up, the TensorRT build sidecar, intermediate ONNX files).
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


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{name} should be one of {', '.join(valid)}. Received: {name}={value!r}")


def _default_out(stem: Path, to: str, precision: str) -> Path:
    tag = "" if precision == "fp32" else f".{precision}"
    suffix = {"onnx": ".onnx", "tensorrt": ".engine"}.get(to)
    if suffix:
        return stem.with_name(stem.name + tag + suffix)
    folder = "saved_model" if to == "saved_model" else f"tftrt{tag or '.fp32'}"
    return stem.with_name(f"{stem.name}.{folder}")


def load_arrays(
    spec: str, *, input_shape: tuple[int | None, ...], input_name: str = "input"
) -> tuple[tuple[Any, Any], tuple[Any, Any]]:
    """((calibration x, y), (evaluation x, y)) from a data SPEC, through `finetune.data`.

    Calibration uses the train split; evaluation the validation split (the test split, then the
    train split, when it has none).
    """
    from finetune.data import load_data

    if len(input_shape) not in (2, 3):
        dims = ", ".join("?" if d is None else str(d) for d in input_shape)
        raise ValueError(
            f"The model's input {input_name!r} has shape (batch, {dims}): calibration data "
            f"({spec}) comes as images (batch, H, W, C) or sequences (batch, T, F) only. Convert "
            f"without --calib-data, or export a model whose input is an image or a sequence."
        )

    task = "image" if len(input_shape) == 3 else "sequence"
    data = load_data(spec, task=task, input_shape=tuple(input_shape))
    calibration = data.arrays("train", limit=CALIBRATION_LIMIT)
    for split in ("val", "test", "train"):
        try:
            evaluation = data.arrays(split, limit=EVALUATION_LIMIT)
        except ValueError:
            continue
        if len(evaluation[0]):
            return calibration, evaluation
    return calibration, calibration


def _input_signature(model: Any, onnx_path: Path | None) -> tuple[str, tuple[int | None, ...]]:
    """The (name, shape without batch) of the model's first input."""
    if model is not None:
        return model.inputs[0].name, tuple(model.inputs[0].shape[1:])
    import onnx

    graph_input = onnx.load(str(onnx_path), load_external_data=False).graph.input[0]
    return graph_input.name, tuple(
        d.dim_value if d.HasField("dim_value") else None
        for d in graph_input.type.tensor_type.shape.dim[1:]
    )


def _speedup(fp32: Path, candidate: Path, batch: int) -> dict[str, float]:
    """ONNX Runtime p50 at one batch size, fp32 vs the candidate (on this machine's CPU)."""
    from convert.benchmark import benchmark

    fast = {"warmup": 3, "runs": 20, "seq_lens": (64,)}
    base = benchmark([fp32], [batch], **fast)[0]["p50_ms"]
    new = benchmark([candidate], [batch], **fast)[0]["p50_ms"]
    return {"batch_size": batch, "fp32_p50_ms": base, "p50_ms": new, "speedup": base / new}


def run_preflight(
    source: str | os.PathLike[str],
    *,
    batch_sizes: Sequence[int] = (1, 8, 32),
    seq_lens: Sequence[int] = (8, 64, 256),
    opset: int = 17,
):
    """The TensorRT preflight report of SOURCE's ONNX graph (exported to a temp file if needed).

    Example:
        >>> print(run_preflight("runs/demo").format_table())
    """
    from convert.onnx_export import export_onnx
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
    opset: int = 17,
    calib_data: str | tuple[Any, Any] | None = None,
    eval_data: tuple[Any, Any] | None = None,
    calib_method: str = "minmax",
    batch_sizes: Sequence[int] = (1, 8, 32),
    seq_lens: Sequence[int] = (8, 64, 256),
    atol: float | None = None,
    rtol: float | None = None,
    progress: Callable[[str], None] | None = None,
    overwrite: bool = False,
    safe_mode: bool = True,
) -> ConvertResult:
    """Convert SOURCE to `to` at `precision`, verify it, and publish it under its final name.

    Args:
        source: a `.keras` file, a run directory (its config's `data` is the default calibration
            data), or an `.onnx` file (to lower its precision or build an engine from it).
        to: "saved_model", "onnx", "tensorrt" or "tf-trt".
        precision: "fp32", "fp16" or "int8" (int8 needs calibration data).
        out: the artefact path. Defaults to beside the model: `model.onnx`, `model.fp16.onnx`,
            `model.int8.onnx`, `model.engine`, `model.saved_model/`.
        opset: ONNX opset. Defaults to 17.
        calib_data: a data SPEC (`finetune.data` forms) or `(x, y)` arrays; calibrates int8 and
            feeds the parity gate. Defaults to the run's `data`, else generated inputs.
        eval_data: `(x, y)` for the parity gate when `calib_data` is arrays (defaults to them).
        calib_method: "minmax", "entropy" or "percentile".
        batch_sizes, seq_lens: shapes checked with generated inputs and TensorRT profile ranges.
        atol, rtol: parity tolerances; default per precision (`convert.verify.TOLERANCES`).
        progress: called with one-line progress messages.
        overwrite: replace an existing artefact at `out` (after the new one passes the gate).
        safe_mode: False lets a `.keras` SOURCE run code stored in it (Lambda layers); only for
            files you trust.

    Raises:
        ValueError: invalid arguments, or the artefact failed the parity gate (it is then kept
            as `<name>.failed<suffix>` beside its report, and `result` is not returned).

    Example:
        >>> convert("model.keras", to="onnx", precision="fp16").report.outputs[0].max_abs
        0.0012
    """
    from convert.source import resolve_source

    _check_choice("to", to, TARGETS)
    _check_choice("precision", precision, PRECISIONS)
    _check_choice("calib_method", calib_method, CALIBRATION_METHODS)
    say = progress or (lambda _line: None)
    src = resolve_source(source, safe_mode=safe_mode)
    if to == "tf-trt":
        from convert.tftrt import tftrt_available

        available, reason = tftrt_available()
        if not available:
            raise ValueError(reason)
    if to == "tensorrt":
        from convert.tensorrt import is_available

        available, reason = is_available()
        if not available:
            raise RuntimeError(
                f"--to tensorrt needs TensorRT and an NVIDIA GPU: {reason}. "
                f"`zoo convert SOURCE --preflight` checks the graph on this machine."
            )
    if src.kind == "onnx" and to in ("saved_model", "tf-trt"):
        raise ValueError(
            f"An .onnx SOURCE converts only to onnx (lower precision) or tensorrt. "
            f"Received: to={to!r}"
        )
    if src.kind == "onnx" and to == "onnx" and precision == "fp32":
        raise ValueError(
            "SOURCE is already an fp32 ONNX file: pass --precision fp16|int8, --to tensorrt, or "
            "--preflight. Received: to='onnx', precision='fp32'"
        )
    if to == "saved_model" and precision != "fp32":
        raise ValueError(
            f"--to saved_model writes float32 only; use --to onnx for fp16/int8. "
            f"Received: precision={precision!r}"
        )

    if src.kind == "onnx":
        from convert.source import OnnxRunner

        OnnxRunner(src.onnx_path)  # one line now if ONNX Runtime cannot run the source at all
    model = src.load_model() if src.model_path is not None else None
    input_name, input_shape = _input_signature(model, src.onnx_path)
    spec = calib_data if calib_data is not None else src.data_spec
    calibration = evaluation = None
    if isinstance(spec, tuple):
        calibration = spec
        evaluation = eval_data or spec
    elif spec:
        say(f"loading calibration data {spec}")
        calibration, evaluation = load_arrays(
            str(spec), input_shape=input_shape, input_name=input_name
        )
    if precision == "int8" and calibration is None:
        raise ValueError(
            "--precision int8 calibrates on real inputs: pass --calib-data SPEC (a folder, "
            "FILE.npz or builtin:NAME), or convert a run directory whose config has `data`. "
            "Received: no calibration data"
        )
    final = Path(out) if out is not None else _default_out(src.stem, to, precision)
    if final.exists() and not overwrite:
        raise ValueError(
            f"{str(final)!r} already exists: pass --overwrite to replace it (it is replaced only "
            f"once the new artefact passes the parity gate), or --out another path."
        )
    gate = {
        "atol": atol,
        "rtol": rtol,
        "batch_sizes": tuple(batch_sizes),
        "seq_lens": tuple(seq_lens),
    }
    reference = model if model is not None else src.onnx_path

    if to == "saved_model":
        return _to_saved_model(model, final, evaluation, gate, say)
    if to == "tf-trt":  # pragma: no cover - needs a TF-TRT build (TF <= 2.17 with TensorRT)
        return _to_tftrt(model, final, precision, calibration, say)
    onnx_final = final if to == "onnx" else final.with_suffix(".onnx")
    result = _to_onnx(
        src,
        model,
        reference,
        onnx_final,
        precision,
        opset,
        calibration,
        evaluation,
        calib_method,
        symmetric=(to == "tensorrt"),
        gate=gate,
        say=say,
    )
    if to == "onnx":
        return result
    return _to_tensorrt(
        result, reference, final, precision, evaluation, gate, say
    )  # pragma: no cover


def _gate(
    candidate: Path,
    final: Path,
    reference: Any,
    evaluation: Any,
    precision: str,
    gate: dict[str, Any],
    say: Callable[[str], None],
):
    from convert.verify import publish, verify

    say(f"verifying {final.name} ({precision})")
    report = verify(candidate, reference, evaluation, precision=precision, name=str(final), **gate)
    return report, publish(candidate, final, report)


def _fail_if_needed(result: ConvertResult) -> ConvertResult:
    if not result.passed:
        raise GateError(
            f"{result.artefact.name} failed the parity gate ({'; '.join(result.report.failures)}); "
            f"kept as {result.artefact}, report in {result.report_path}",
            result,
        )
    return result


class GateError(ValueError):
    """The artefact failed the parity gate; `.result` holds the report and where it was kept."""

    def __init__(self, message: str, result: ConvertResult):
        super().__init__(message)
        self.result = result


def _to_saved_model(model, final, evaluation, gate, say) -> ConvertResult:
    from convert.saved_model import export_saved_model
    from convert.verify import report_path, temp_path

    candidate = temp_path(final)
    say(f"exporting SavedModel to {final}")
    export_saved_model(model, candidate)
    report, placed = _gate(candidate, final, model, evaluation, "fp32", gate, say)
    return _fail_if_needed(
        ConvertResult(placed, "saved_model", "fp32", report, report_path(placed))
    )


def _to_onnx(
    src,
    model,
    reference,
    final,
    precision,
    opset,
    calibration,
    evaluation,
    calib_method,
    *,
    symmetric,
    gate,
    say,
) -> ConvertResult:
    from convert.onnx_export import export_onnx
    from convert.quantize import quantize_fp16, quantize_int8
    from convert.verify import report_path, temp_path

    candidate = temp_path(final)
    fp32 = src.onnx_path
    scratch = None
    extra: dict[str, Any] = {}
    try:
        if fp32 is None:
            fp32 = (
                candidate
                if precision == "fp32"
                else candidate.with_name(candidate.name + ".fp32.onnx")
            )
            scratch = None if precision == "fp32" else fp32
            say(f"exporting ONNX (opset {opset})")
            export_onnx(model, fp32, opset=opset)
        if precision == "fp16":
            say("converting to float16")
            quantize_fp16(fp32, candidate)
        elif precision == "int8":
            say(f"quantizing to int8 ({calib_method} calibration, {len(calibration[0])} samples)")
            quantize_int8(fp32, candidate, calibration[0], calib_method, symmetric=symmetric)
            extra["speedup"] = _speedup(fp32, candidate, max(gate["batch_sizes"]))
        report, placed = _gate(candidate, final, reference, evaluation, precision, gate, say)
    finally:
        for leftover in (scratch, candidate):
            if leftover is not None and leftover.exists():
                leftover.unlink()
    report.extra.update(extra)
    report.write_json(report_path(placed))
    return _fail_if_needed(
        ConvertResult(placed, "onnx", precision, report, report_path(placed), extra)
    )


def _to_tensorrt(
    onnx_result, reference, final, precision, evaluation, gate, say
):  # pragma: no cover
    from convert.preflight import derive_profiles, preflight
    from convert.tensorrt import build_engine
    from convert.verify import publish, report_path, temp_path, verify

    onnx_path = onnx_result.artefact
    profiles = derive_profiles(onnx_path, list(gate["batch_sizes"]), list(gate["seq_lens"]))
    checked = preflight(onnx_path, profiles=profiles)
    if not checked.ok:
        raise ValueError(
            f"TensorRT preflight failed for {onnx_path.name}: "
            + "; ".join(str(finding) for finding in checked.errors)
        )
    candidate = temp_path(final)
    say(f"building TensorRT engine {final.name}")
    meta = build_engine(
        onnx_path,
        candidate,
        batch_sizes=list(gate["batch_sizes"]),
        seq_lens=list(gate["seq_lens"]),
        progress=True,
    )
    gate_args = {**gate, "batch_sizes": tuple(gate["batch_sizes"])}
    report = verify(
        candidate, reference, evaluation, precision=precision, name=str(final), **gate_args
    )
    placed = publish(candidate, final, report)
    sidecar = Path(str(candidate) + ".json")
    if sidecar.exists():
        os.replace(sidecar, Path(str(placed) + ".json"))
    return _fail_if_needed(
        ConvertResult(
            placed,
            "tensorrt",
            precision,
            report,
            report_path(placed),
            {"onnx": str(onnx_path), "engine": meta},
        )
    )


def _to_tftrt(model, final, precision, calibration, say):  # pragma: no cover
    from convert.saved_model import export_saved_model
    from convert.tftrt import convert_tftrt

    with tempfile.TemporaryDirectory(prefix="kerazoo-tftrt-") as scratch:
        saved = export_saved_model(model, Path(scratch) / "saved_model")
        calibrate = None
        if precision == "int8":

            def calibrate():
                for start in range(0, len(calibration[0]), 16):
                    yield (calibration[0][start : start + 16],)

        say(f"converting with TF-TRT ({precision})")
        placed = convert_tftrt(saved, final, precision=precision, calibration_input_fn=calibrate)
    return ConvertResult(Path(placed), "tf-trt", precision, None, None)
