"""Per-layer int8 sensitivity in Keras layer names: `rank_layers(...)`, `explain(SOURCE)`.

Each layer's *own* sensitivity: quantize that layer alone (its weights and input activations,
`quantize_int8(only_nodes=...)`, exactly as the full int8 file quantizes them), keep every other
op float, and measure how far the model's output moves from the fp32 file's on held-out inputs.
Upstream layers are float in that file, so no accumulated error enters a layer's score. The
activation ranges are calibrated once (ONNX Runtime's calibration cache) and reused for every
layer, so ranking N layers costs one calibration and N cheap quantize+run passes.

`error` is the output's noise-to-signal ratio: sum((y_q - y)^2) / sum((y - mean y)^2) over the
held-out inputs (1/SQNR of the output; `sqnr_db` is the same in decibels, higher is better). Top-1
agreement with fp32 and, with labels, the accuracy drop in points are reported beside it. See
docs/DESIGN.md ("Per-layer int8 sensitivity") for why this metric and not ONNX Runtime's
`qdq_loss_debug`.

Example:
    >>> report = rank_layers("cnn.onnx", x_train[:256], x_val, keras_model=model)
    >>> report.layers[0].layer, report.layers[0].nodes
    ('conv1', ['cnn_1/conv1_1/convolution'])
    >>> print(report.format_table())
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

# The ops whose weights ONNX Runtime's QDQ quantizer stores as int8 (LSTM/GRU/RNN stay float).
QUANTIZED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


@dataclasses.dataclass
class LayerSensitivity:
    """One Keras layer quantized alone: how far the output moved from fp32.

    `nodes` are the fp32-ONNX node names to pass to `quantize_int8(exclude_nodes=...)`.
    `folded` names BatchNormalization layers folded into the layer's weights.
    """

    layer: str
    nodes: list[str]
    error: float
    sqnr_db: float
    agreement: float
    accuracy_drop: float | None = None
    op_types: list[str] = dataclasses.field(default_factory=list)
    kind: str = ""
    folded: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class SensitivityReport:
    """Layers most sensitive first, with the full int8 file's numbers for scale.

    `floor_error` is the error left with every ranked layer float: the quantized activations of
    ops without weights (Add, Softmax, pooling...), which no layer fallback removes.
    """

    layers: list[LayerSensitivity]
    method: str
    calibration_samples: int
    eval_samples: int
    int8_error: float
    int8_agreement: float
    int8_accuracy_drop: float | None = None
    floor_error: float = 0.0
    float_layers: list[str] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def format_table(self) -> str:
        """A ranked text table (layer, class, error, SQNR, agreement, accuracy drop)."""
        drop = self.int8_accuracy_drop is not None
        header = f"{'#':>3}  {'layer':<28} {'class':<16} {'error':>9} {'SQNR dB':>8} {'agree':>7}"
        lines = [header + (f" {'drop pt':>8}" if drop else "") + "  folded BatchNorm"]
        for rank, row in enumerate(self.layers, 1):
            line = (
                f"{rank:>3}  {row.layer:<28} {row.kind:<16} {row.error:>9.2e} "
                f"{row.sqnr_db:>8.1f} {row.agreement:>7.1%}"
            )
            line += f" {row.accuracy_drop:>8.2f}" if drop else ""
            lines.append(line + ("  " + ", ".join(row.folded) if row.folded else ""))
        whole = (
            f"all layers int8 ({self.method}, {self.calibration_samples} calibration samples): "
            f"error {self.int8_error:.2e}, agreement {self.int8_agreement:.1%}"
        )
        whole += f", accuracy drop {self.int8_accuracy_drop:.2f} points" if drop else ""
        lines += ["", whole + f"; {self.eval_samples} held-out inputs, {self.seconds:.0f} s"]
        lines.append(f"every layer above float (the rest int8): error {self.floor_error:.2e}")
        if self.float_layers:
            lines.append(
                "not quantized by ONNX Runtime (stay float): " + ", ".join(self.float_layers)
            )
        lines.append("error: each layer quantized alone; output noise/signal vs fp32 (1/SQNR)")
        return "\n".join(lines)

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        """Write `to_dict()` as JSON (via a temporary file, so no half-written file remains)."""
        from convert._common import temp_path

        final = Path(path)
        final.parent.mkdir(parents=True, exist_ok=True)
        scratch = temp_path(final)
        scratch.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        scratch.replace(final)
        return final


@dataclasses.dataclass
class _Scorer:
    """Runs ONNX files on the held-out inputs and scores their outputs against fp32."""

    eval_x: np.ndarray
    eval_y: np.ndarray | None
    reference: np.ndarray = dataclasses.field(init=False)

    def run(self, path: Path) -> np.ndarray:
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(None, {session.get_inputs()[0].name: self.eval_x})[0]

    def start(self, fp32: Path) -> None:
        self.reference = self.run(fp32).reshape(len(self.eval_x), -1).astype(np.float64)

    def score(self, path: Path) -> tuple[float, float, float | None]:
        """(noise/signal, top-1 agreement, accuracy drop in points or None)."""
        out = self.run(path).reshape(self.reference.shape).astype(np.float64)
        ref = self.reference
        signal = np.sum((ref - ref.mean(axis=0)) ** 2) or np.sum(ref**2) or 1.0
        error = float(np.sum((out - ref) ** 2) / signal)
        ref_top, out_top = _top1(ref), _top1(out)
        drop = None
        if self.eval_y is not None:
            labels = np.asarray(self.eval_y).reshape(-1)
            drop = 100.0 * float(np.mean(ref_top == labels) - np.mean(out_top == labels))
        return error, float(np.mean(ref_top == out_top)), drop


def _top1(outputs: np.ndarray) -> np.ndarray:
    return outputs.argmax(axis=1) if outputs.shape[1] > 1 else (outputs[:, 0] > 0.5).astype(int)


def _sqnr_db(error: float) -> float:
    return float("inf") if error <= 0 else float(-10.0 * np.log10(error))


def _layer_groups(fp32: Path, keras_model: Any) -> tuple[dict[str, list[str]], dict, list[str]]:
    """({layer: [fp32 node names]} in graph order, {node: LayerRef}, float-only layers)."""
    import onnx

    from convert.layer_names import keras_layer_names

    proto = onnx.load(str(fp32))
    weights = {init.name for init in proto.graph.initializer}
    refs = keras_layer_names(proto, keras_model) if keras_model is not None else {}
    groups: dict[str, list[str]] = {}
    for node in proto.graph.node:
        if node.op_type in QUANTIZED_OPS and len(node.input) > 1 and node.input[1] in weights:
            layer = refs[node.name].layer if node.name in refs else node.name
            groups.setdefault(layer, []).append(node.name)
    floats = [ref.layer for name, ref in refs.items() if ref.op_type not in QUANTIZED_OPS]
    return groups, refs, sorted(set(floats))


def rank_layers(
    fp32_onnx: str | os.PathLike[str],
    calib_x: Any,
    eval_x: Any,
    *,
    method: str = "minmax",
    symmetric: bool = False,
    keras_model: Any = None,
    eval_y: Any = None,
    progress: Callable[[str], None] | None = None,
) -> SensitivityReport:
    """Rank the quantizable layers of an fp32 ONNX file by their own int8 error, largest first.

    Args:
        fp32_onnx: the fp32 export (`convert.onnx.export_onnx`).
        calib_x: calibration inputs (the train split, as `quantize_int8` takes them).
        eval_x: held-out inputs the outputs are compared on (never the calibration examples).
        method, symmetric: as `quantize_int8` (the lowering being explained).
        keras_model: the Keras model the file was exported from: rows are then named by Keras
            layer (`convert.layer_names`); without it, by ONNX node name.
        eval_y: labels of `eval_x`: adds each layer's accuracy drop in points.
        progress: called with one-line progress messages.

    Example:
        >>> rank_layers("cnn.onnx", x[:700], x_val, keras_model=model).layers[0].layer
        'conv1'
    """
    from convert.float_nodes import translate_names
    from convert.lowering import prepare, quantize_int8

    say = progress or (lambda _line: None)
    started = time.perf_counter()
    fp32 = Path(fp32_onnx)
    calib = np.asarray(calib_x, dtype=np.float32)
    scorer = _Scorer(np.asarray(eval_x, dtype=np.float32), eval_y)
    if len(scorer.eval_x) == 0:
        raise ValueError("eval_x should hold at least one held-out input. Received: none")
    if eval_y is not None and len(eval_y) != len(scorer.eval_x):
        raise ValueError(
            f"eval_y should hold one label per eval_x input ({len(scorer.eval_x)}). "
            f"Received: {len(eval_y)} labels"
        )
    groups, refs, float_layers = _layer_groups(fp32, keras_model)
    if not groups:
        raise ValueError(f"{fp32.name} has no Conv/MatMul/Gemm with weights to quantize.")
    scorer.start(fp32)
    with tempfile.TemporaryDirectory(prefix="kerazoo-sensitivity-") as scratch:
        prepared = prepare(fp32, Path(scratch) / "prepared.onnx")
        options = dict(method=method, symmetric=symmetric, preprocess=False,
                       calibration_cache=Path(scratch) / "ranges.json")  # fmt: skip
        say(f"calibrating int8 ranges ({method}, {len(calib)} samples)")
        whole = scorer.score(quantize_int8(prepared, Path(scratch) / "all.onnx", calib, **options))
        rows = []
        for index, (layer, nodes) in enumerate(groups.items(), 1):
            say(f"[{index}/{len(groups)}] {layer}")
            rows.append(_one_layer(layer, nodes, refs.get(nodes[0]), (fp32, prepared),
                                   Path(scratch) / "one.onnx", calib, scorer, options))  # fmt: skip
        every = translate_names(fp32, prepared, [node for row in rows for node in row.nodes])
        floor = quantize_int8(prepared, Path(scratch) / "floor.onnx", calib, exclude_nodes=every,
                              **options)  # fmt: skip
        floor_error = scorer.score(floor)[0]
    rows.sort(key=lambda row: row.error, reverse=True)
    return SensitivityReport(
        rows, method, len(calib), len(scorer.eval_x), whole[0], whole[1], whole[2],
        floor_error, float_layers, time.perf_counter() - started,
    )  # fmt: skip


def _one_layer(layer: str, nodes: list[str], ref: Any, graphs: tuple[Path, Path], out: Path,
               calib: np.ndarray, scorer: _Scorer, options: dict) -> LayerSensitivity:  # fmt: skip
    """Quantize `nodes` (fp32 names) alone in the prepared graph, write `out`, score it."""
    from convert.float_nodes import translate_names
    from convert.lowering import quantize_int8

    fp32, prepared = graphs
    only = translate_names(fp32, prepared, nodes)
    path = quantize_int8(prepared, out, calib, only_nodes=only, **options)
    error, agreement, drop = scorer.score(path)
    return LayerSensitivity(
        layer, nodes, error, _sqnr_db(error), agreement, drop,
        [n.op_type for n in _nodes(prepared, only)],
        ref.kind if ref else "", ref.folded if ref else [],
    )  # fmt: skip


def _nodes(path: Path, names: list[str]) -> list[Any]:
    import onnx

    wanted = set(names)
    return [
        n for n in onnx.load(str(path), load_external_data=False).graph.node if n.name in wanted
    ]


_QAT_MESSAGE = (
    "--explain ranks what post-training int8 does to a float model; {source} is a "
    "quantization-aware (--qat) model whose int8 ranges were learned. Explain its float parent "
    "(the run it was fine-tuned --from)."
)


def check_explainable(source: str | os.PathLike[str]) -> None:
    """A one-line ValueError now, before any conversion, for a run that --explain cannot rank.

    Only what the run's config.yaml says (a `qat` run); `explain` checks the model itself.

    Example:
        >>> check_explainable("runs/digits-qat")
        ValueError: --explain ranks what post-training int8 does to a float model; ...
    """
    from convert.source import resolve_source

    src = resolve_source(source)
    if src.config.get("qat"):
        raise ValueError(_QAT_MESSAGE.format(source=src.path))


def _explain_data(src: Any, model: Any, calib_data: Any, eval_data: Any, say: Callable):
    """(calibration x, held-out x, held-out y) as `convert()` reads them for the same SOURCE."""
    from convert.calibration import load_for_source
    from zoo.runs import recorded_data

    spec = calib_data
    if spec is None and src.run_dir is not None:
        spec = recorded_data(src.run_dir, src.config)
    if spec is None:
        raise ValueError(
            "--explain calibrates on real inputs and scores held-out ones: pass --calib-data SPEC "
            "(a folder, FILE.npz or builtin:NAME), or a run directory whose config has `data`. "
            "Received: no calibration data"
        )
    if isinstance(spec, tuple):
        if eval_data is None:
            raise ValueError(
                "calib_data given as arrays needs eval_data=(x, y): held-out examples, never the "
                "calibration ones. Received: eval_data=None"
            )
        return spec[0], eval_data[0], eval_data[1]
    data = load_for_source(src, model, spec, say)
    return data.calibration[0], data.evaluation[0], data.evaluation[1]


def explain(
    source: str | os.PathLike[str],
    *,
    calib_data: Any = None,
    eval_data: Any = None,
    calib_method: str = "minmax",
    symmetric: bool = False,
    out: str | os.PathLike[str] | None = None,
    progress: Callable[[str], None] | None = None,
    safe_mode: bool = True,
) -> SensitivityReport:
    """Rank SOURCE's layers by their own int8 error: the API behind `zoo convert --explain`.

    The data is what `convert(SOURCE, precision="int8")` reads: calibration from the train split,
    the scores on the validation (else test) split, so the ranking explains that int8 file.

    Args:
        source: a `.keras` file or a run directory (rows named by Keras layer), or an fp32
            `.onnx` file (rows named by ONNX node).
        calib_data: a data SPEC or `(x, y)` arrays (then `eval_data` too). Defaults to a run
            directory's `data`.
        eval_data: `(x, y)` held-out arrays, when `calib_data` is arrays.
        calib_method: "minmax", "entropy" or "percentile", as for the int8 file.
        symmetric: rank the symmetric (S8S8) lowering TensorRT gets, not ONNX Runtime's U8S8.
        out: also write the report as JSON there.
        progress: called with one-line progress messages.
        safe_mode: False lets a `.keras` SOURCE run code stored in it; trusted files only.

    Example:
        >>> print(explain("runs/demo", out="runs/demo/model.int8.explain.json").format_table())
    """
    from convert._common import CALIBRATION_METHODS, check_choice
    from convert.onnx import export_onnx
    from convert.source import resolve_source

    check_choice("calib_method", calib_method, CALIBRATION_METHODS)
    say = progress or (lambda _line: None)
    src = resolve_source(source, safe_mode=safe_mode)
    if src.kind == "onnx" and _onnx_precision(src.onnx_path) != "fp32":
        raise ValueError(
            f"--explain ranks the layers of an fp32 model; {src.path.name} is already "
            f"{_onnx_precision(src.onnx_path)}. Pass the .keras file, the run or the fp32 .onnx."
        )
    model = src.load_model() if src.model_path is not None else None
    if model is not None:
        from zoo.quantization import is_qat_model

        if is_qat_model(model):
            raise ValueError(_QAT_MESSAGE.format(source=src.path))
    calib_x, eval_x, eval_y = _explain_data(src, model, calib_data, eval_data, say)
    with tempfile.TemporaryDirectory(prefix="kerazoo-explain-") as scratch:
        fp32 = src.onnx_path
        if fp32 is None:
            say("exporting ONNX (fp32) to rank its layers")
            fp32 = export_onnx(model, Path(scratch) / "model.onnx")
        report = rank_layers(
            fp32, calib_x, eval_x, method=calib_method, symmetric=symmetric, keras_model=model,
            eval_y=eval_y, progress=say,
        )  # fmt: skip
    if out is not None:
        report.write_json(out)
    return report


def _onnx_precision(path: Path) -> str:
    from convert.runners import onnx_precision

    return onnx_precision(path)
