"""TensorRT ONNX-parser rules behind `convert.preflight`: the operator table and node checks.

The operator table is `tensorrt_onnx_ops.json`, transcribed from `onnx/onnx-tensorrt`
`docs/operators.md` (TensorRT 10.15) plus the TensorRT 11.x parser release notes. Each check cites
the operators.md "Restrictions" entry, or the parser source where the table is silent: the fused
RNN/GRU/LSTM rules (directions, activations, `sequence_lens` type, `clip`) are the JSON's
"recurrent" section, read from the 10.1 importers (`onnxOpImporters.cpp`, `RNNHelpers.cpp`).

Example:

```python
from convert._trt_rules import OnnxIndex, check_operators, op_table

counts, findings = check_operators(OnnxIndex(model), op_table("10"), "10")
```
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SEVERITIES = ("error", "warning", "info")
DEFAULT_DOMAINS = ("", "ai.onnx")

# ONNX element type -> the names operators.md uses in its "Supported Types" column.
_TRT_TYPE_NAMES = {
    TensorProto.FLOAT: "FP32",
    TensorProto.FLOAT16: "FP16",
    TensorProto.BFLOAT16: "BF16",
    TensorProto.DOUBLE: "DOUBLE",
    TensorProto.INT32: "INT32",
    TensorProto.INT64: "INT64",
    TensorProto.INT8: "INT8",
    TensorProto.UINT8: "UINT8",
    TensorProto.BOOL: "BOOL",
    TensorProto.FLOAT8E4M3FN: "FP8",
    TensorProto.INT4: "INT4",
    TensorProto.FLOAT4E2M1: "FP4",
}
_FLOAT_TYPES = {"FP32", "FP16", "BF16"}
# operators.md: "INT8, INT4, FP8 and FP4 are treated as Quantized Types [...] available only
# through quantization from a floating-point type with higher precision."
_QUANTIZED_TYPES = {"INT8", "INT4", "FP8", "FP4"}

_RECURRENT_OPS = ("RNN", "GRU", "LSTM")
_RESIZE_RULES = {
    "mode": ("nearest", {"nearest", "linear"}),
    "coordinate_transformation_mode": (
        "half_pixel",
        {"half_pixel", "pytorch_half_pixel", "tf_half_pixel_for_nn", "asymmetric", "align_corners"},
    ),
    "nearest_mode": (
        "round_prefer_floor",
        {"floor", "ceil", "round_prefer_floor", "round_prefer_ceil"},
    ),
    "keep_aspect_ratio_policy": ("stretch", {"stretch"}),
}
# Ops whose operators.md restrictions are fully checked below, so no extra "info" line is needed.
_FULLY_CHECKED = {
    *("AveragePool", "MaxPool", "LpPool", "LSTM", "GRU", "RNN", "Dropout", "TopK", "ScatterND"),
    *("DequantizeLinear", "QuantizeLinear", "LayerNormalization", "Constant", "CumSum", "If"),
    *("Attention", "STFT", "TensorScatter", "DeformConv", "GridSample", "Resize", "OneHot"),
    *("Squeeze", "Unsqueeze"),
}


@dataclass(frozen=True)
class Finding:
    """One preflight result.

    Args:
        severity: "error" (the parser or builder will reject the model), "warning" (may fail or
            lose accuracy) or "info".
        check: short name of the check, e.g. "operator", "profile", "dtype".
        node: node name (or "input:<name>", "model") the finding is about.
        message: what is wrong, the rule, and how to fix it.
        op_type: the node's operator, when the finding is about a node.
    """

    severity: str
    check: str
    node: str
    message: str
    op_type: str = ""

    def __str__(self) -> str:
        where = f"{self.node} [{self.op_type}]" if self.op_type else self.node
        return f"{self.severity} {self.check} {where}: {self.message}"


# --------------------------------------------------------------------------- op table


@cache
def _ops_json() -> dict[str, Any]:
    text = resources.files("convert").joinpath("tensorrt_onnx_ops.json").read_text("utf-8")
    return json.loads(text)


def recurrent_rules() -> dict[str, Any]:
    """What the parser accepts for fused RNN/GRU/LSTM beyond operators.md (the JSON's "recurrent")."""
    return _ops_json()["recurrent"]


@cache
def op_table(major: str) -> dict[str, Any]:
    """The operators.md table for one TensorRT major version, with 11.x deltas applied."""
    versions = _ops_json()["versions"]
    entry = versions[major]
    if "extends" not in entry:
        return {**entry, "custom_ops": {}}
    base = op_table(entry["extends"])
    supported = {**base["supported"], **entry.get("added", {}), **entry.get("changed", {})}
    unsupported = {k: v for k, v in base["unsupported"].items() if k not in supported}
    return {
        "opset": entry["opset"],
        "opset_note": entry["opset_note"],
        "supported": supported,
        "unsupported": unsupported,
        "late_10x": {},
        "custom_ops": entry.get("custom_ops", {}),
    }


def trt_major(trt_version: str | int) -> str:
    major = str(trt_version).strip().split(".")[0]
    if major not in ("10", "11"):
        raise ValueError(
            "trt_version should name TensorRT 10.x or 11.x, e.g. '10', '10.15' or '11'. "
            f"Received: trt_version={trt_version!r}"
        )
    return major


# --------------------------------------------------------------------------- graph context


class OnnxIndex:
    """Indexes a model once: constants, element types, ranks and consumers of every tensor."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.functions = {(f.domain, f.name): f for f in model.functions}
        self.const: dict[str, TensorProto | None] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = defaultdict(list)
        self.graph_outputs = {o.name for o in model.graph.output}
        self.types: dict[str, int] = {}
        self.ranks: dict[str, int] = {}

        inferred = model
        # Shape inference is best effort: the checks use whatever types and ranks are known.
        with contextlib.suppress(Exception):
            inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        for graph in walk_graphs(inferred.graph):
            for vi in [*graph.input, *graph.output, *graph.value_info]:
                self._note_value_info(vi)
        for graph in walk_graphs(model.graph):
            for init in graph.initializer:
                self.const[init.name] = None if _is_external(init) else init
                self.types[init.name] = init.data_type
                self.ranks[init.name] = len(init.dims)
            for node in graph.node:
                for name in node.input:
                    if name:
                        self.consumers[name].append(node)
                if node.op_type == "Constant" and node.domain in DEFAULT_DOMAINS:
                    self._note_constant(node)

    def _note_value_info(self, vi: onnx.ValueInfoProto) -> None:
        tt = vi.type.tensor_type
        if vi.type.HasField("tensor_type") and tt.elem_type:
            self.types[vi.name] = tt.elem_type
            if tt.HasField("shape"):
                self.ranks[vi.name] = len(tt.shape.dim)

    def _note_constant(self, node: onnx.NodeProto) -> None:
        for attr in node.attribute:
            if attr.name == "value":
                self.const[node.output[0]] = attr.t
                self.types[node.output[0]] = attr.t.data_type
            elif attr.name in ("value_int", "value_ints", "value_float", "value_floats"):
                value = helper.get_attribute_value(attr)
                dtype = np.int64 if "int" in attr.name else np.float32
                tensor = numpy_helper.from_array(np.asarray(value, dtype=dtype))
                self.const[node.output[0]] = tensor
                self.types[node.output[0]] = tensor.data_type

    def is_const(self, name: str) -> bool:
        return name in self.const

    def value(self, name: str) -> np.ndarray | None:
        tensor = self.const.get(name)
        return None if tensor is None else numpy_helper.to_array(tensor)

    def trt_type(self, name: str) -> str | None:
        elem = self.types.get(name)
        return None if elem is None else _type_name(elem)


def _type_name(elem_type: int) -> str:
    if elem_type in _TRT_TYPE_NAMES:
        return _TRT_TYPE_NAMES[elem_type]
    return helper.tensor_dtype_to_string(elem_type).replace("TensorProto.", "")


def _is_external(init: TensorProto) -> bool:
    return init.data_location == TensorProto.EXTERNAL


def walk_graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """Yields the graph and every If/Loop/Scan body inside it."""
    yield graph
    for node in graph.node:
        for sub in subgraphs(node):
            yield from walk_graphs(sub)


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    out = []
    for attr in node.attribute:
        out.extend([attr.g] if attr.type == onnx.AttributeProto.GRAPH else attr.graphs)
    return out


def node_attr(node: onnx.NodeProto, name: str, default: Any = None) -> Any:
    for attr in node.attribute:
        if attr.name == name:
            value = helper.get_attribute_value(attr)
            if isinstance(value, bytes):
                return value.decode("utf-8", "replace")
            if isinstance(value, list) and value and isinstance(value[0], bytes):
                return [v.decode("utf-8", "replace") for v in value]
            return value
    return default


def node_input(node: onnx.NodeProto, index: int) -> str:
    """Name of input `index`, or "" when the optional input is omitted."""
    return node.input[index] if len(node.input) > index else ""


# --------------------------------------------------------------------------- node checks


class _NodeChecker:
    """Per-node checks of the operators.md "Restrictions" column (and the parser's own checks)."""

    def __init__(self, g: OnnxIndex, major: str):
        self.g = g
        self.major = major
        self._found: list[tuple[str, str]] = []

    def run(self, node: onnx.NodeProto, where: str) -> list[Finding]:
        op = node.op_type
        if op in _RECURRENT_OPS:
            method = self._rnn
        elif op in ("MaxPool", "AveragePool", "LpPool"):
            method = self._pool
        elif op.startswith("Reduce") or op == "CumSum":
            method = self._const_axes
        elif op[:1].isupper():  # op checkers are named _<OpType>; helpers are lowercase
            method = getattr(self, f"_{op}", None)
        else:
            method = None
        self._found = []
        if method is not None:
            method(node)
        return [Finding(sev, "attribute", where, msg, op) for sev, msg in self._found]

    def _error(self, message: str) -> None:
        self._found.append(("error", message))

    def _warn(self, message: str) -> None:
        self._found.append(("warning", message))

    def _rnn(self, node: onnx.NodeProto) -> None:
        rules = recurrent_rules()
        self._rnn_attributes(node, rules)
        self._rnn_activations(node, rules)
        self._rnn_inputs(node, rules)

    def _rnn_attributes(self, node: onnx.NodeProto, rules: dict) -> None:
        op = node.op_type
        if node_attr(node, "hidden_size") is None:
            self._error(f"{op}: hidden_size is required; the parser reads it without a default.")
        direction = node_attr(node, "direction", "forward")
        if direction not in rules["directions"]:
            self._error(
                f"{op} direction should be one of {rules['directions']}. "
                f"Received: direction={direction!r}"
            )
        layout = node_attr(node, "layout", 0)
        if layout != 0:
            self._error(
                f"{op} layout must be 0 (time-major X of shape [seq, batch, input]); the parser "
                "reads X as time-major whatever the attribute says (operators.md states it for "
                "LSTM; the GRU/RNN importers do the same). Re-export with layout=0 or transpose "
                f"around the node. Received: layout={layout}"
            )
        if op == "LSTM" and node_attr(node, "input_forget", 0) != 0:
            self._error("LSTM input_forget must be 0 (coupled gates). Received: input_forget=1")
        clip = node_attr(node, "clip")
        if clip is not None and clip < 0:
            self._warn(
                f"{op}: the parser ignores a negative clip (no clipping), unlike ONNX Runtime. "
                f"Received: clip={clip}"
            )

    def _rnn_activations(self, node: onnx.NodeProto, rules: dict) -> None:
        op = node.op_type
        acts = node_attr(node, "activations") or []
        if set(acts) - set(rules["activations"]):
            self._error(
                f"{op} activations should be among {sorted(rules['activations'])} (ONNX's "
                f"Affine has no TensorRT equivalent). Received: activations={acts}"
            )
        n = rules["activations_per_direction"][op]
        bidirectional = node_attr(node, "direction", "forward") == "bidirectional"
        expected = 2 * n if bidirectional else n
        if acts and len(acts) != expected:
            self._error(
                f"{op} with {'two directions' if bidirectional else 'one direction'} needs "
                f"{expected} activations ({n} per direction) or none; the parser indexes them per "
                f"gate. Received: activations={acts}"
            )
        if bidirectional and len(acts) == 2 * n:
            halves = [(acts[:n], acts[n:])]
            for key in ("activation_alpha", "activation_beta"):
                values = node_attr(node, key) or []
                if len(values) % 2 == 0:
                    halves.append((values[: len(values) // 2], values[len(values) // 2 :]))
            if any(fwd != rev for fwd, rev in halves):
                self._error(
                    f"Bidirectional {op}: activations (and their alpha/beta) must be the same for "
                    f"the forward and reverse pass. Received: activations={acts}"
                )

    def _rnn_inputs(self, node: onnx.NodeProto, rules: dict) -> None:
        op = node.op_type
        lens = node_input(node, 4)
        lens_type = self.g.trt_type(lens) if lens else None
        if lens_type is not None and lens_type not in rules["sequence_lens_types"]:
            self._error(
                f"{op}: sequence_lens should be {', '.join(rules['sequence_lens_types'])} (the "
                "parser compares it with an INT32 step counter); Cast it first. "
                f"Received: {lens_type}"
            )
        x_type = self.g.trt_type(node_input(node, 0))
        if x_type in ("FP16", "BF16"):
            self._warn(f"{op} on {x_type}: {rules['fp32_constants_note']}")

    def _pool(self, node: onnx.NodeProto) -> None:
        op = node.op_type
        dilations = node_attr(node, "dilations") or []
        if any(d != 1 for d in dilations):
            self._error(f"{op} dilations must be empty or all ones. Received: {dilations}")
        kernel = node_attr(node, "kernel_shape") or []
        if op != "LpPool" and len(kernel) not in (2, 3):
            self._error(
                f"{op}: 2D or 3D pooling only; add a unit spatial axis to pool 1D. "
                f"Received: kernel_shape={kernel}"
            )
        if op == "MaxPool" and len(node.output) > 1 and node.output[1]:
            self._error("MaxPool: the Indices output is unsupported; remove it.")

    def _const_axes(self, node: onnx.NodeProto) -> None:
        axes = node_input(node, 1)
        if axes and not self.g.is_const(axes):
            name = "axis" if node.op_type == "CumSum" else "axes"
            self._error(f"{node.op_type}: {name} must be an initializer. Received: '{axes}'")

    def _Squeeze(self, node: onnx.NodeProto) -> None:
        axes = node_input(node, 1)
        if axes and not self.g.is_const(axes):
            self._warn(
                f"{node.op_type}: axes must be resolvable to a constant; '{axes}' is computed at "
                "run time. Constant-fold the graph (e.g. polygraphy surgeon sanitize)."
            )

    _Unsqueeze = _Squeeze

    def _OneHot(self, node: onnx.NodeProto) -> None:
        if node_input(node, 1) and not self.g.is_const(node_input(node, 1)):
            self._warn("OneHot: depth must be a build-time constant.")

    def _Dropout(self, node: onnx.NodeProto) -> None:
        training = node_input(node, 2)
        value = self.g.value(training) if training else np.array(False)
        if value is None or bool(np.any(value)):
            self._error(
                "Dropout: is_training must be an initializer that evaluates to False; export the "
                "model in inference mode."
            )

    def _zero_point(self, node: onnx.NodeProto, name: str) -> None:
        zp = node_input(node, 2)
        if not zp:
            return
        if self.g.trt_type(zp) == "UINT8":
            self._error(
                f"{node.op_type}: TensorRT quantization is signed and symmetric (INT8, FP8, INT4, "
                "FP4). Re-quantize with signed int8 (e.g. onnxruntime QuantType.QInt8 for "
                f"activations and weights). Received: {name} of type UINT8"
            )
        value = self.g.value(zp)
        if value is None:
            self._warn(f"{node.op_type}: {name} must be zero; it is not a constant.")
        elif np.any(value.astype(np.float64) != 0):
            self._error(f"{node.op_type}: {name} must be zero (symmetric). Received: nonzero")

    def _QuantizeLinear(self, node: onnx.NodeProto) -> None:
        self._zero_point(node, "y_zero_point")

    def _DequantizeLinear(self, node: onnx.NodeProto) -> None:
        self._zero_point(node, "x_zero_point")

    def _TopK(self, node: onnx.NodeProto) -> None:
        if node_attr(node, "sorted", 1) != 1:
            self._error("TopK: sorted must be 1. Received: sorted=0")
        k = self.g.value(node_input(node, 1)) if node_input(node, 1) else None
        if k is not None and int(np.max(k)) >= 3840:
            self._error(f"TopK: K must be less than 3840. Received: K={int(np.max(k))}")

    def _Resize(self, node: onnx.NodeProto) -> None:
        for name, (default, valid) in _RESIZE_RULES.items():
            value = node_attr(node, name, default)
            if value not in valid:
                self._error(f"Resize {name} should be one of {sorted(valid)}. Received: {value}")
        if node_attr(node, "antialias", 0):
            self._error("Resize: antialiasing is not supported. Received: antialias=1")
        axes = node_attr(node, "axes")
        scales = node_input(node, 2)
        rank = self.g.ranks.get(node.input[0]) if node.input else None
        dynamic_scales = scales and not self.g.is_const(scales)
        if axes and dynamic_scales and rank is not None and list(axes) != list(range(rank)):
            self._error(
                "Resize: when scales is a tensor input, axes must be [0, ..., rank-1]. "
                f"Received: axes={list(axes)} for a rank-{rank} input"
            )

    def _ScatterND(self, node: onnx.NodeProto) -> None:
        reduction = node_attr(node, "reduction", "none")
        if reduction != "none":
            self._error(f"ScatterND: reduction must be 'none'. Received: reduction={reduction}")

    def _LayerNormalization(self, node: onnx.NodeProto) -> None:
        if any(node.output[1:]):
            self._error("LayerNormalization: only output Y is supported; drop Mean/InvStdDev.")

    def _Constant(self, node: onnx.NodeProto) -> None:
        for attr in node.attribute:
            if attr.name in ("sparse_value", "value_string", "value_strings"):
                self._error(f"Constant: attribute {attr.name} is unsupported (dense numbers only).")

    def _Attention(self, node: onnx.NodeProto) -> None:
        for i, name in enumerate(("Q", "K", "V", "attn_mask")):
            rank = self.g.ranks.get(node_input(node, i))
            if rank is not None and rank != 4:
                self._error(
                    f"Attention: {name} must be 4D [batch, heads, seq, head_size]; heads come "
                    f"from dim 1, not q_num_heads/kv_num_heads. Received: rank {rank}"
                )
        for i, name in ((4, "past_key"), (5, "past_value"), (6, "nonpad_kv_seqlen")):
            if node_input(node, i):
                self._error(f"Attention: the {name} input is unsupported.")
        for i, name in ((1, "present_key"), (2, "present_value"), (3, "qk_matmul_output")):
            if len(node.output) > i and node.output[i]:
                self._error(f"Attention: the {name} output is unsupported.")
        for name in ("qk_matmul_output_mode", "softcap"):
            if node_attr(node, name, 0):
                self._error(f"Attention: the {name} attribute is unsupported.")

    def _DeformConv(self, node: onnx.NodeProto) -> None:
        pads = node_attr(node, "pads") or []
        if pads[: len(pads) // 2] != pads[len(pads) // 2 :]:
            self._error(f"DeformConv: begin and end pads must be equal. Received: pads={pads}")

    def _GridSample(self, node: onnx.NodeProto) -> None:
        rank = self.g.ranks.get(node.input[0]) if node.input else None
        valid = (4, 5) if self.major == "11" else (4,)
        if rank is not None and rank not in valid:
            self._error(f"GridSample: input rank should be one of {valid}. Received: {rank}")

    def _STFT(self, node: onnx.NodeProto) -> None:
        for i, name in ((1, "frame_step"), (2, "window")):
            if node_input(node, i) and not self.g.is_const(node_input(node, i)):
                self._error(f"STFT: {name} must be an initializer.")

    def _TensorScatter(self, node: onnx.NodeProto) -> None:
        if node_attr(node, "axis", -2) != -2:
            self._error(f"TensorScatter: axis must be -2. Received: axis={node_attr(node, 'axis')}")

    def _Loop(self, node: onnx.NodeProto) -> None:
        carried = max(len(node.input) - 2, 0)
        scan_outputs = [o for o in node.output[carried:] if o]
        if not scan_outputs:
            return
        trip = node_input(node, 0)
        value = self.g.value(trip) if trip else None
        # Exporters write INT64_MAX for "no trip count"; the parser treats it as absent.
        if not trip or (value is not None and int(value.max()) >= np.iinfo(np.int32).max):
            used = [o for o in scan_outputs if self.g.consumers.get(o) or o in self.g.graph_outputs]
            if used:
                self._error(
                    "Loop: scan outputs need a trip count M; without one their length is "
                    f"undefined and they must stay unused. Received: used scan outputs {used}"
                )
        elif not self.g.is_const(trip):
            self._warn(
                "Loop: scan output length cannot be dynamic (operators.md); the trip count "
                f"'{trip}' is computed at run time."
            )

    def _If(self, node: onnx.NodeProto) -> None:
        then_g, else_g = node_attr(node, "then_branch"), node_attr(node, "else_branch")
        if then_g is None or else_g is None:
            return
        for t, e in zip(then_g.output, else_g.output, strict=False):
            tt, et = t.type.tensor_type, e.type.tensor_type
            ranked = tt.HasField("shape") and et.HasField("shape")
            if ranked and len(tt.shape.dim) != len(et.shape.dim):
                self._error(
                    "If: outputs of the two branches must have the same rank. Received: "
                    f"'{t.name}' rank {len(tt.shape.dim)}, '{e.name}' rank {len(et.shape.dim)}"
                )
            if t.name == e.name:
                self._error(f"If: the branches' outputs must have different names: '{t.name}'")


# --------------------------------------------------------------------------- model checks


def check_opset(
    model: onnx.ModelProto, table: dict, major: str
) -> tuple[int | None, list[Finding]]:
    opset = next((o.version for o in model.opset_import if o.domain in DEFAULT_DOMAINS), None)
    low, high = table["opset"]
    if opset is None:
        return None, [
            Finding("error", "opset", "model", "The model imports no default ONNX opset.")
        ]
    if not low <= opset <= high:
        return opset, [
            Finding(
                "error",
                "opset",
                "model",
                f"TensorRT {major}.x parses ONNX opset {low} to {high} ({table['opset_note']}). "
                f"Re-export with an opset in range, or convert with "
                f"onnx.version_converter.convert_version(model, {min(high, 17)}). "
                f"Received: opset {opset}",
            )
        ]
    if major == "10" and opset > 20:
        return opset, [
            Finding(
                "info",
                "opset",
                "model",
                f"Opset {opset} needs a recent TensorRT 10.x: {table['opset_note']}",
            )
        ]
    return opset, []


def check_operators(g: OnnxIndex, table: dict, major: str) -> tuple[Counter, list[Finding]]:
    findings: list[Finding] = []
    counts: Counter = Counter()
    checker = _NodeChecker(g, major)
    supported, unsupported = table["supported"], table["unsupported"]

    def visit(nodes: Sequence[onnx.NodeProto], scope: str, seen_functions: set) -> None:
        for index, node in enumerate(nodes):
            op = node.op_type
            where = scope + (node.name or f"{op}_{index}")
            counts[op] += 1
            function = g.functions.get((node.domain, op))
            if function is not None and (node.domain, op) not in seen_functions:
                # The parser expands model-local functions, so their bodies are what matters.
                visit(function.node, f"{where}/", seen_functions | {(node.domain, op)})
                continue
            if node.domain not in DEFAULT_DOMAINS:
                if op in table["custom_ops"]:
                    findings.append(Finding("info", "operator", where, table["custom_ops"][op], op))
                    continue
                findings.append(
                    Finding(
                        "error",
                        "operator",
                        where,
                        f"'{op}' is in custom domain '{node.domain}', not standard ONNX; the "
                        f"TensorRT parser imports it only if a TensorRT plugin named '{op}' is "
                        "registered. Re-export with standard ops (e.g. tf2onnx without contrib "
                        "ops, no onnxruntime-specific fusions) or load the plugin library.",
                        op,
                    )
                )
                continue
            if op in unsupported:
                note = f" ({unsupported[op]})" if unsupported[op] else ""
                findings.append(
                    Finding(
                        "error",
                        "operator",
                        where,
                        f"'{op}' is not supported by the TensorRT {major}.x ONNX parser"
                        f"{note}. Rewrite it with supported ops or drop it from the exported graph.",
                        op,
                    )
                )
                continue
            if op not in supported:
                findings.append(
                    Finding(
                        "error",
                        "operator",
                        where,
                        f"'{op}' is not in the TensorRT {major}.x operator table (operators.md). "
                        "Rewrite it with supported ops or export with a lower opset.",
                        op,
                    )
                )
                continue
            findings.extend(checker.run(node, where))
            findings.extend(_check_node_dtype(g, node, where, supported[op]["types"]))
            for sub in subgraphs(node):
                visit(sub.node, f"{where}/{sub.name}/", seen_functions)

    visit(g.model.graph.node, "", set())

    late = table.get("late_10x", {})
    for op, n in sorted(counts.items()):
        info = supported.get(op)
        if info is None:
            continue
        notes = []
        if op in late:
            notes.append(f"{late[op]}.")
        checked = op in _FULLY_CHECKED or op.startswith("Reduce")
        if info["note"] and not checked:
            notes.append(f"operators.md restriction: {info['note']}")
        if notes:
            findings.append(Finding("info", "operator", f"{n} node(s)", " ".join(notes), op))
    return counts, findings


def _check_node_dtype(
    g: OnnxIndex, node: onnx.NodeProto, where: str, types: list[str]
) -> list[Finding]:
    """Compares a node's main input type with the operators.md "Supported Types" column."""
    if not types or node.op_type in ("Shape", "Size", "If", "Loop", "Scan", "ConstantOfShape"):
        return []
    data = node_input(node, 1) if node.op_type == "Where" else node_input(node, 0)
    dtype = g.trt_type(data) if data else None
    # DOUBLE is cast down to FLOAT by the parser and reported once for the whole model.
    if dtype is None or dtype in types or dtype == "DOUBLE":
        return []
    if dtype in _QUANTIZED_TYPES:
        return []  # reported by the model-wide quantized-type check
    # Float and Q/DQ mismatches are clear-cut; integer ones are often cast by the parser.
    qdq = node.op_type in ("QuantizeLinear", "DequantizeLinear")
    severity = "error" if dtype in _FLOAT_TYPES or qdq else "warning"
    return [
        Finding(
            severity,
            "dtype",
            where,
            f"operators.md lists {', '.join(types)} for {node.op_type}; input '{data}' is "
            f"{dtype}. Cast it to a listed type before this node. Received: {dtype}",
            node.op_type,
        )
    ]


def check_tensor_types(g: OnnxIndex, table: dict) -> list[Finding]:
    """Model-wide element types: one finding per problem type, naming a few examples."""
    graph = g.model.graph
    io_names = {v.name for v in [*graph.input, *graph.output]}
    by_type: dict[str, list[str]] = defaultdict(list)
    for name, elem in g.types.items():
        by_type[_type_name(elem)].append(name)

    def examples(names: list[str]) -> str:
        shown = ", ".join(f"'{n}'" for n in sorted(names)[:3])
        return f"{len(names)} tensor(s), e.g. {shown}"

    findings = []
    supported_types = set(_TRT_TYPE_NAMES.values())
    for dtype, names in sorted(by_type.items()):
        if dtype not in supported_types:
            findings.append(
                Finding(
                    "error",
                    "dtype",
                    "model",
                    f"TensorRT's ONNX parser supports {', '.join(sorted(supported_types))}; "
                    f"{dtype} is not one of them ({examples(names)}). Cast to a supported type "
                    "in the exporter.",
                )
            )
        elif dtype == "BF16":
            findings.append(
                Finding(
                    "warning",
                    "dtype",
                    "model",
                    f"bfloat16 tensors ({examples(names)}). operators.md lists BFLOAT16 as a "
                    "supported ONNX type and BF16 for most operators, so the parser accepts it; "
                    "a strongly typed engine keeps BF16, which needs an Ampere or newer GPU "
                    "(compute capability 8.0+). Operators without BF16 are reported per node; "
                    "export float16 or float32 for older GPUs.",
                )
            )
        elif dtype == "DOUBLE":
            findings.append(
                Finding(
                    "warning",
                    "dtype",
                    "model",
                    f"float64 tensors ({examples(names)}): the parser casts DOUBLE down to FLOAT, "
                    "clamping to +-FLT_MAX. Export float32 to avoid surprises.",
                )
            )
        elif dtype == "UINT8":
            inner = [n for n in names if n not in io_names]
            if inner:
                findings.append(
                    Finding(
                        "error",
                        "dtype",
                        "model",
                        f"UINT8 is only supported for network inputs and outputs; "
                        f"{examples(inner)} are inside the graph. Cast to INT32 or float there.",
                    )
                )
        elif dtype in _QUANTIZED_TYPES:
            findings.extend(_check_quantized(g, table, dtype, names, io_names))
    return findings


def _quantized_use_ok(consumer: onnx.NodeProto, name: str, dtype: str, table: dict) -> bool:
    """DequantizeLinear data, a Q/DQ zero point, or an op whose operators.md types list it."""
    if consumer.op_type == "DequantizeLinear":
        return True
    if consumer.op_type == "QuantizeLinear":
        return node_input(consumer, 2) == name
    return dtype in table["supported"].get(consumer.op_type, {}).get("types", [])


def _check_quantized(
    g: OnnxIndex, table: dict, dtype: str, names: list[str], io_names: set[str]
) -> list[Finding]:
    misused = sorted(
        {
            f"'{n}' -> {c.op_type}"
            for n in names
            for c in g.consumers.get(n, [])
            if not _quantized_use_ok(c, n, dtype, table)
        }
    )
    findings = []
    if misused:
        findings.append(
            Finding(
                "error",
                "dtype",
                "model",
                f"{dtype} is a quantized type in TensorRT: it may only feed DequantizeLinear "
                f"(explicit Q/DQ quantization). Received: {', '.join(misused[:3])}",
            )
        )
    io = sorted(n for n in names if n in io_names)
    if io:
        findings.append(
            Finding(
                "warning",
                "dtype",
                "model",
                f"{dtype} network inputs/outputs {io[:3]}: TensorRT supports quantized types only "
                "through quantization from a float type; keep model I/O in float.",
            )
        )
    return findings
