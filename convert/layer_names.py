"""Which Keras layer owns each weighted node of an ONNX export: `keras_layer_names(onnx, model)`.

tf2onnx names nodes after TensorFlow ops, not layers: MobileNetV2's first convolution is
`mobilenet_v2_gap_1/backbone_1/bn_Conv1_1/batchnorm/mul_1` (BatchNorm folded into it, `_1`
suffixes added by tracing). Names are unreliable, the weights are not: each Conv/MatMul/Gemm
weight is matched to the Keras kernel it was exported from, row by output channel. A folded
BatchNorm scales each output channel, so rows are compared by |cosine| (1 up to float rounding),
and the BatchNorm that follows the layer in the Keras graph is reported as folded when the
scales differ from 1. The fused recurrent operators (`convert.onnx_recurrent`) name their
weights `<layer>_W`/`_R`/`_B` after the layer, and are matched by that name.

Layers of nested models (a backbone is a functional model inside the head model) are searched
too and named by their own name (`Conv1`, `block3_conv2`); a name used at two depths is
reported with its path (`backbone/dense`).

Example:
    >>> names = keras_layer_names("mnv2.onnx", model)
    >>> names["mobilenet_v2_gap_1/backbone_1/bn_Conv1_1/batchnorm/mul_1"]
    LayerRef(layer='Conv1', op_type='Conv', kind='Conv2D', folded=['bn_Conv1'])
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

# The ops that carry a layer's weights (the ones int8 quantizes, and the fused recurrent ones).
WEIGHTED_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "LSTM", "GRU", "RNN")
_RECURRENT_OPS = ("LSTM", "GRU", "RNN")
_COSINE = 1.0 - 1e-4  # float32 rounding of a folded scale stays far inside this


@dataclasses.dataclass
class LayerRef:
    """The Keras layer behind one ONNX node: its name, the node's op and the layer's class.

    `folded` names the BatchNormalization layers folded into the node's weights.
    """

    layer: str
    op_type: str
    kind: str
    folded: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class _Kernel:
    name: str  # reported name (bare, or path when the bare name repeats)
    layer: Any
    rows: np.ndarray  # (output channels, everything else), in ONNX's element order


def _walk(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(path, layer) of every layer, nested models included, depth first."""
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        yield path, layer
        if hasattr(layer, "layers"):
            yield from _walk(layer, path + "/")


def _rows(layer: Any, kernel: np.ndarray, depthwise: bool) -> np.ndarray:
    """A Keras kernel as one row per output channel, elements in ONNX order."""
    if kernel.ndim == 2:  # Dense (in, out)
        return kernel.T
    if depthwise:  # (k..., in, multiplier) -> output channel in * multiplier + m
        flat = kernel.reshape(*kernel.shape[:-2], -1)
        return np.moveaxis(flat, -1, 0).reshape(flat.shape[-1], -1)
    return np.moveaxis(kernel, -1, 0).reshape(kernel.shape[-1], -1)  # Conv (k..., in, out)


def _layer_kernels(layer: Any) -> Iterator[tuple[np.ndarray, bool]]:
    kind = type(layer).__name__
    if kind.startswith("SeparableConv"):
        yield np.asarray(layer.depthwise_kernel), True
        yield np.asarray(layer.pointwise_kernel), False
    elif getattr(layer, "kernel", None) is not None and "Transpose" not in kind:
        yield np.asarray(layer.kernel), kind.startswith("DepthwiseConv")


def keras_kernels(model: Any) -> list[_Kernel]:
    """Every weight matrix of `model` that an ONNX Conv/MatMul/Gemm can carry."""
    walked = list(_walk(model))
    counts: dict[str, int] = {}
    for _, layer in walked:
        counts[layer.name] = counts.get(layer.name, 0) + 1
    kernels = []
    for path, layer in walked:
        name = layer.name if counts[layer.name] == 1 else path
        for kernel, depthwise in _layer_kernels(layer):
            if kernel.ndim >= 2:
                kernels.append(_Kernel(name, layer, _rows(layer, kernel, depthwise)))
    return kernels


def _onnx_rows(node: Any, weights: dict[str, np.ndarray]) -> np.ndarray | None:
    """The node's weight as one row per output channel, or None (no constant weight)."""
    weight = weights.get(node.input[1]) if len(node.input) > 1 else None
    if weight is None:
        return None
    if node.op_type in ("Conv", "ConvTranspose"):
        return np.moveaxis(weight, 1, -1).reshape(weight.shape[0], -1)
    if weight.ndim != 2:
        return None
    trans_b = any(a.name == "transB" and a.i for a in node.attribute)
    return weight if node.op_type == "Gemm" and trans_b else weight.T


def _row_scales(onnx_rows: np.ndarray, keras_rows: np.ndarray) -> np.ndarray | None:
    """Per-row scale onnx = s * keras when every row is parallel (|cosine| ~ 1), else None."""
    if onnx_rows.shape != keras_rows.shape:
        return None
    dot = np.einsum("ij,ij->i", onnx_rows, keras_rows, dtype=np.float64)
    norms = np.linalg.norm(onnx_rows, axis=1) * np.linalg.norm(keras_rows, axis=1)
    live = norms > 0
    if not live.any() or np.any(np.abs(dot[live]) < _COSINE * norms[live]):
        return None
    sq = np.einsum("ij,ij->i", keras_rows, keras_rows, dtype=np.float64)
    return np.where(live, dot / np.where(sq > 0, sq, 1.0), 1.0)


def _folded(layer: Any, scales: np.ndarray, model: Any) -> list[str]:
    """The BatchNormalization layers reading `layer`, when the exported weights were rescaled."""
    if np.allclose(scales, 1.0, rtol=1e-4):
        return []
    found = []
    for _, other in _walk(model):
        if type(other).__name__ == "BatchNormalization":
            history = getattr(getattr(other, "input", None), "_keras_history", None)
            if history is not None and history.operation is layer:
                found.append(other.name)
    return found


def _match(node: Any, rows: np.ndarray, kernels: list[_Kernel], model: Any) -> LayerRef | None:
    hits = [(k, s) for k in kernels if (s := _row_scales(rows, k.rows)) is not None]
    if len(hits) > 1:  # proportional kernels (degenerate init): the one the node's name scopes
        named = [(k, s) for k, s in hits if f"/{k.layer.name}" in "/" + node.name]
        hits = named or hits
    if len(hits) != 1:
        return None
    kernel, scales = hits[0]
    kind = type(kernel.layer).__name__
    return LayerRef(kernel.name, node.op_type, kind, _folded(kernel.layer, scales, model))


def _recurrent(node: Any, model: Any) -> LayerRef | None:
    """A fused LSTM/GRU/RNN: its W input is named `<layer>_W_<n>` after the Keras layer."""
    weight = node.input[1] if len(node.input) > 1 else ""
    owners = [
        layer for _, layer in _walk(model) if weight.startswith(f"{layer.name}_W")
    ]  # fmt: skip
    owners.sort(key=lambda layer: len(layer.name), reverse=True)
    if not owners:
        return None
    return LayerRef(owners[0].name, node.op_type, type(owners[0]).__name__)


def keras_layer_names(onnx_model: str | os.PathLike[str] | Any, model: Any) -> dict[str, LayerRef]:
    """`{node name: LayerRef}` for each weighted node of `onnx_model` that a Keras layer owns.

    Nodes with no constant weight (a MatMul of two activations) or no matching kernel are left
    out; `unmatched_nodes` lists them.

    Example:
        >>> keras_layer_names("cnn.onnx", model)["cnn_1/conv3_1/convolution"].layer
        'conv3'
    """
    import onnx
    from onnx import numpy_helper

    proto = onnx_model if hasattr(onnx_model, "graph") else onnx.load(str(onnx_model))
    weights = {init.name: numpy_helper.to_array(init) for init in proto.graph.initializer}
    kernels = keras_kernels(model)
    found: dict[str, LayerRef] = {}
    for node in proto.graph.node:
        if node.op_type in _RECURRENT_OPS:
            ref = _recurrent(node, model)
        elif node.op_type in WEIGHTED_OPS and (rows := _onnx_rows(node, weights)) is not None:
            ref = _match(node, rows.astype(np.float64), kernels, model)
        else:
            continue
        if ref is not None:
            found[node.name] = ref
    return found


def unmatched_nodes(onnx_model: Any, names: dict[str, LayerRef]) -> list[str]:
    """Weighted nodes of `onnx_model` that `keras_layer_names` could not give a layer."""
    import onnx

    proto = onnx_model if hasattr(onnx_model, "graph") else onnx.load(str(onnx_model))
    return [n.name for n in proto.graph.node if n.op_type in WEIGHTED_OPS and n.name not in names]
