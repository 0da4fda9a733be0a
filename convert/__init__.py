"""Model conversion (SavedModel, ONNX fp32/fp16/int8, OpenVINO IR, TensorRT, TF-TRT), verified.

Laid out like `keras/src/export`: one module per target, each with `export_<target>(...)`
(`saved_model`, `onnx`, `openvino`, `tensorrt`, `tftrt`; `lowering` for the ONNX fp16/int8
lowerings), a short pipeline (`pipeline.convert`: resolve the source, export, gate, publish),
the parity gate (`gate.verify`), one runner per runtime (`runners.open_artifact`), the
benchmark (`bench.benchmark`), using a model (`evaluation.evaluate`, `prediction.predict`, over
`classify.open_classifier` and the class names files carry, `metadata`) and the shared tables
and atomic publish (`_common`).

Example:
    >>> import convert
    >>> result = convert.convert("runs/demo", to="onnx", precision="int8")
    >>> result.artefact, result.passed
    (PosixPath('runs/demo/model.int8.onnx'), True)
    >>> convert.benchmark(["runs/demo/model.onnx"], batch_sizes=[1, 32])[0]["runtime"]
    'onnxruntime-fp32'

Imports are lazy (as in `zoo`): `import convert` loads neither TensorFlow, ONNX nor OpenVINO.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "export_onnx": "convert.onnx",
    "export_ready_copy": "convert.export_utils",
    "export_saved_model": "convert.saved_model",
    "export_openvino": "convert.openvino",
    "export_tftrt": "convert.tftrt",
    "ParityReport": "convert.gate",
    "verify": "convert.gate",
    "quantize_fp16": "convert.lowering",
    "quantize_int8": "convert.lowering",
    "benchmark": "convert.bench",
    "resolve_source": "convert.source",
    "open_artifact": "convert.runners",
    "ConvertResult": "convert.pipeline",
    "GateError": "convert.pipeline",
    "convert": "convert.pipeline",
    "run_preflight": "convert.pipeline",
    "Evaluation": "convert.evaluation",
    "evaluate": "convert.evaluation",
    "PredictResult": "convert.prediction",
    "predict": "convert.prediction",
    "open_classifier": "convert.classify",
    "describe": "convert.metadata",
    "BudgetResult": "convert.budget_report",
    "search_precision": "convert.budget",
}
# Submodules reachable as attributes without importing them first (`convert.tensorrt.is_available`).
_SUBMODULES = (
    "bench", "budget", "budget_report", "calibration", "classify", "evaluation", "export_utils",
    "gate", "lowering",
    "metadata", "onnx", "openvino", "pipeline", "prediction", "preflight", "runners",
    "saved_model", "source", "tensorrt", "tftrt",
)  # fmt: skip
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from convert.bench import benchmark  # noqa: F401
    from convert.budget import search_precision  # noqa: F401
    from convert.budget_report import BudgetResult  # noqa: F401
    from convert.classify import open_classifier  # noqa: F401
    from convert.evaluation import Evaluation, evaluate  # noqa: F401
    from convert.export_utils import export_ready_copy  # noqa: F401
    from convert.gate import ParityReport, verify  # noqa: F401
    from convert.lowering import quantize_fp16, quantize_int8  # noqa: F401
    from convert.metadata import describe  # noqa: F401
    from convert.onnx import export_onnx  # noqa: F401
    from convert.openvino import export_openvino  # noqa: F401
    from convert.pipeline import ConvertResult, GateError, convert, run_preflight  # noqa: F401
    from convert.prediction import PredictResult, predict  # noqa: F401
    from convert.runners import open_artifact  # noqa: F401
    from convert.saved_model import export_saved_model  # noqa: F401
    from convert.source import resolve_source  # noqa: F401
    from convert.tftrt import export_tftrt  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"convert.{name}")
    raise AttributeError(f"module 'convert' has no attribute {name!r}")
