"""ONNX -> ONNX lowerings: fp32 to fp16, and fp32 to int8 (explicit QDQ, calibrated on real data).

- fp16: `onnxconverter_common.float16.convert_float_to_float16(keep_io_types=True)`: float16
  weights and compute, float32 inputs/outputs, so callers feed the same arrays as before. ONNX
  Runtime's CPU provider inserts casts around ops that have no fp16 kernel, so the file runs
  everywhere (fast only where the hardware has fp16 units: GPUs, TensorRT).
- int8: `onnxruntime.quantization.quantize_static` in QDQ format (QuantizeLinear/DequantizeLinear
  pairs, what TensorRT and ORT both read), per-channel weights, activation ranges from a
  calibration pass over real inputs with the MinMax, Entropy or Percentile method.
  `quant_pre_process` (shape inference + graph optimisation) runs first; it lets the quantizer see
  fused Conv/MatMul+Add patterns and quantize them as a unit.

Example:
    >>> quantize_fp16("model.onnx", "model.fp16.onnx")
    >>> quantize_int8("model.onnx", "model.int8.onnx", x_train[:256], method="entropy")
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convert._common import CALIBRATION_METHODS
from zoo._cpu import needs_reduced_range  # one rule for PTQ here and QAT (zoo.quantization)

CALIBRATION_BATCH = 16


def _step_nodes(onnx_path: str | os.PathLike[str]) -> list[str]:
    """The nodes that compute step counts and positions of a masked recurrent graph.

    They stay float32 in every lowering: in float16 positions past 2048 are not exact, and
    quantized, the TopK keys that order the steps collide and the mask compare sees rounded
    inputs, so padding would be found where there is none.
    """
    import onnx

    from convert.onnx_recurrent import STEP_SCOPE

    graph = onnx.load(str(onnx_path), load_external_data=False).graph
    return [node.name for node in graph.node if node.name.startswith(STEP_SCOPE)]


def quantize_fp16(onnx_in: str | os.PathLike[str], onnx_out: str | os.PathLike[str]) -> Path:
    """Write a float16 copy of `onnx_in` whose inputs and outputs stay float32.

    Example:
        >>> quantize_fp16("model.onnx", "model.fp16.onnx")
        PosixPath('model.fp16.onnx')
    """
    import onnx
    from onnxconverter_common import float16

    model = onnx.load(str(onnx_in))
    converted = float16.convert_float_to_float16(
        model, keep_io_types=True, node_block_list=_step_nodes(onnx_in)
    )
    out = Path(onnx_out)
    onnx.save(converted, str(out))
    return out


class ArrayCalibrationReader:
    """An `onnxruntime.quantization.CalibrationDataReader` over a numpy array, in small batches.

    Example:
        >>> reader = ArrayCalibrationReader("image", x_train[:256])
        >>> reader.get_next()["image"].shape
        (16, 28, 28, 1)
    """

    def __init__(self, input_name: str, arrays: np.ndarray, batch_size: int = CALIBRATION_BATCH):
        self.input_name = input_name
        self.arrays = np.asarray(arrays, dtype=np.float32)
        # Equal batches: the histogram calibrators (entropy, percentile, distribution) stack
        # each tensor's batches and fail on a shorter last one (a prime count, 53: batches of 1).
        count = len(self.arrays)
        self.batch_size = max(d for d in range(1, int(batch_size) + 1) if count % d == 0)
        self._iterator: Iterator[dict[str, np.ndarray]] = self._batches()

    def _batches(self) -> Iterator[dict[str, np.ndarray]]:
        for start in range(0, len(self.arrays), self.batch_size):
            yield {self.input_name: self.arrays[start : start + self.batch_size]}

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._iterator, None)

    def rewind(self) -> None:
        self._iterator = self._batches()


@contextlib.contextmanager
def _quiet_quantizer() -> Iterator[None]:
    """Keep the quantizer's chatter off stdout (where `--json` goes) and its advice logs quiet."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        # Histogram calibrators print() their progress.
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        root.setLevel(level)


def _calibration_method(method: str) -> Any:
    from onnxruntime.quantization import CalibrationMethod

    key = str(method).lower()
    if key not in CALIBRATION_METHODS:
        raise ValueError(
            f"method should be one of {CALIBRATION_METHODS}. Received: method={method!r}"
        )
    return {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
        # Histogram mean/std (meant for float8); for int8 the range is the histogram's span.
        "distribution": CalibrationMethod.Distribution,
    }[key]


def quantize_int8(
    onnx_in: str | os.PathLike[str],
    onnx_out: str | os.PathLike[str],
    calib_arrays: np.ndarray,
    method: str = "minmax",
    *,
    per_channel: bool = True,
    symmetric: bool = False,
    preprocess: bool = True,
    reduce_range: bool | None = None,
    exclude_nodes: Sequence[str] = (),
    only_nodes: Sequence[str] | None = None,
    calibration_cache: str | os.PathLike[str] | None = None,
) -> Path:
    """Write a QDQ int8 copy of `onnx_in`, calibrated on `calib_arrays` (real inputs).

    Args:
        onnx_in: the fp32 ONNX file.
        onnx_out: where to write the int8 file.
        calib_arrays: float32 inputs shaped like the model's input, batch first; a few hundred
            representative samples are plenty (Entropy/Percentile keep histograms of each).
        method: "minmax", "entropy", "percentile" or "distribution" (ONNX Runtime's float8
            method: for int8 it takes the histogram's whole span, measured far worse here).
        per_channel: one scale per output channel of each weight (better accuracy for convs).
        symmetric: int8 activations with zero point 0 (S8S8), what TensorRT requires. The
            default, uint8 asymmetric activations with int8 weights (U8S8), is ONNX Runtime's
            recommendation for x86 CPUs and measured faster here.
        preprocess: run `quant_pre_process` first (falls back to the raw graph if it fails).
        reduce_range: 7-bit weights. None: on x86 CPUs without VNNI for u8 activations, where
            ONNX Runtime's int8 kernels saturate otherwise (`needs_reduced_range`).
        exclude_nodes: node names of `onnx_in` (the fp32 export) that stay float: their weights
            and input activations, and the Relu/MaxPool/Reshape... before them
            (`convert.float_nodes`); names ONNX Runtime's preprocessing changes are translated.
        only_nodes: quantize these nodes (same naming) and nothing else: each one's weights and
            input activations, not its outputs (in a full int8 file those are the next op's
            input); what `convert.sensitivity` measures one layer at a time.
        calibration_cache: a JSON file of activation ranges: written by the first call, read
            (instead of calibrating again) by the next ones on the same graph and method.

    Example:
        >>> quantize_int8("cnn.onnx", "cnn.int8.onnx", x_train[:200], method="percentile")
        PosixPath('cnn.int8.onnx')
    """
    import onnx
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    calibrate_method = _calibration_method(method)
    calib = np.asarray(calib_arrays, dtype=np.float32)
    if calib.ndim < 2 or len(calib) == 0:
        raise ValueError(
            f"calib_arrays should be a non-empty batch of model inputs. Received shape "
            f"{calib.shape}"
        )
    input_name = onnx.load(str(onnx_in), load_external_data=False).graph.input[0].name
    out = Path(onnx_out)
    with tempfile.TemporaryDirectory(prefix="kerazoo-quant-") as scratch:
        source = prepare(onnx_in, Path(scratch) / "prepared.onnx") if preprocess else Path(onnx_in)
        float_nodes = _float_nodes(onnx_in, source, exclude_nodes)
        only = _only_nodes(onnx_in, source, only_nodes)
        with _quiet_quantizer():
            quantize_static(
                str(source),
                str(out),
                ArrayCalibrationReader(input_name, calib),
                quant_format=QuantFormat.QDQ,
                per_channel=per_channel,
                reduce_range=(
                    needs_reduced_range() and not symmetric
                    if reduce_range is None
                    else reduce_range
                ),
                activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=calibrate_method,
                nodes_to_quantize=only,
                nodes_to_exclude=_step_nodes(source) + float_nodes,
                calibration_cache_path=calibration_cache,
                # TensorRT dequantizes int8 only: keep biases float for it rather than int32.
                extra_options={
                    "ActivationSymmetric": bool(symmetric),
                    "QuantizeBias": not symmetric,
                    # only_nodes: ORT would also quantize their outputs, at the pre-activation
                    # range a removed Relu never sees in the full file.
                    "OpTypesToExcludeOutputQuantization": _op_types(source, only),
                },
            )
        if float_nodes:
            _rewire(out, source, float_nodes)
    return out


def prepare(onnx_in: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """ONNX Runtime's `quant_pre_process` of `onnx_in` into `out`; `onnx_in` itself if it fails.

    Example:
        >>> prepare("model.onnx", "prepared.onnx")
        PosixPath('prepared.onnx')
    """
    try:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        # Symbolic shape inference needs sympy; ONNX shape inference suffices for us.
        quant_pre_process(str(onnx_in), str(out), skip_symbolic_shape=True)
    except Exception:  # noqa: BLE001 - optimisation is optional; quantize the raw graph
        return Path(onnx_in)
    return Path(out)


def _op_types(path: Path, names: list[str] | None) -> list[str]:
    import onnx

    if not names:
        return []
    graph = onnx.load(str(path), load_external_data=False).graph
    return sorted({node.op_type for node in graph.node if node.name in set(names)})


def _only_nodes(onnx_in: Any, prepared: Path, names: Sequence[str] | None) -> list[str] | None:
    from convert.float_nodes import translate_names

    if names is None:
        return None
    if isinstance(names, str) or not names:
        raise ValueError(
            f"only_nodes should be a non-empty list of node names. Received: {names!r}"
        )
    return translate_names(onnx_in, prepared, names)


def _float_nodes(onnx_in: Any, prepared: Path, names: Sequence[str]) -> list[str]:
    """The preprocessed graph's nodes that stay float for `exclude_nodes` (see float_nodes)."""
    from convert.float_nodes import float_closure, translate_names

    if isinstance(names, str):
        raise ValueError(f"exclude_nodes should be a list of node names. Received: {names!r}")
    if not names:
        return []
    return float_closure(prepared, translate_names(onnx_in, prepared, names))


def _rewire(out: Path, prepared: Path, names: list[str]) -> None:
    """Point the float nodes of the written file at float tensors, not Q/DQ copies."""
    import onnx

    from convert.float_nodes import rewire_float_inputs

    model = onnx.load(str(out))
    try:
        rewire_float_inputs(model, prepared, names)
    except RuntimeError:
        out.unlink(missing_ok=True)  # a file whose "float" layers read int8 is no result
        raise
    onnx.save(model, str(out))
