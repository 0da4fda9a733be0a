"""Keras recurrent models -> ONNX `RNN` / `GRU` / `LSTM` operators, emitted from the weights.

tf2onnx traces Keras 3 SimpleRNN, GRU and masked LSTM layers into generic `Loop` graphs: ONNX
Runtime happens to compute them right (slowly), OpenVINO refuses them, and TensorRT restricts
them. tf2onnx has no rewriter that fits Keras 3 layers, so this module writes the graph itself:
one fused operator per recurrent layer, with the Keras gate order and bias layout converted, and
the plain ONNX ops for the layers around it (Masking, Dense, Dropout, Activation).

Masks. A Keras `Masking` layer hides *any* step whose features all equal `mask_value`, and a
masked step leaves the state unchanged, so running the RNN over the real steps alone gives
Keras' state. The export moves each row's real steps to the front, in order (a `TopK` on
`masked * T + t` gives that permutation, `GatherElements` applies it), runs the fused operator,
and reads its output at step `lens - 1`. Trailing padding (what the toolkit makes) and holes in
the middle are both exact. The backward direction reads the real steps reversed, so a masked
`Bidirectional` layer becomes two single-direction nodes. A sequence output is put back in time
order with Keras' values on masked steps: the previous output, or zeros for
`zero_output_for_mask` (always so inside `Bidirectional`).

Why not `sequence_lens`, ONNX's own padding input: OpenVINO 2026.4 ignores it when the time and
batch axes are dynamic (rows shorter than the batch come out wrong; exact with static shapes),
and it cannot describe holes in the middle.

Supported: a single-input chain of InputLayer, Masking, SimpleRNN/GRU/LSTM (also inside
`Bidirectional` with any merge mode but None), Dense, Activation and inference-time no-ops
(Dropout, GaussianNoise, ...). Anything else in a recurrent model is a one-line ValueError.

Example:
    >>> proto = recurrent_onnx_proto(zoo.create_model("gru", masking=True), opset=17)
    >>> sorted({node.op_type for node in proto.graph.node} & {"GRU", "Loop"})
    ['GRU']
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

RECURRENT_LAYERS = ("SimpleRNN", "GRU", "LSTM")
# Layers that are the identity at inference time.
_NO_OPS = ("Dropout", "SpatialDropout1D", "GaussianNoise", "GaussianDropout", "AlphaDropout")
# Keras activation name -> ONNX recurrent activation name (what ORT, OpenVINO and TensorRT share).
_RNN_ACTIVATIONS = {"tanh": "Tanh", "sigmoid": "Sigmoid", "relu": "Relu"}
# ONNX LSTM gate order is i, o, f, c; Keras stores i, f, c, o.
_LSTM_GATES = (0, 3, 1, 2)
# Name prefix of the nodes that compute step counts and positions from a mask: lowerings keep
# them in float32 (positions past 2048 are not exact in float16).
STEP_SCOPE = "steps/"


class _Graph:
    """A tiny ONNX graph builder: every `op` returns the name of its (first) output."""

    def __init__(self):
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0
        self.prefix = ""

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}{hint}_{self._count}"

    @contextlib.contextmanager
    def scope(self, prefix: str) -> Iterator[None]:
        """Name the nodes made inside `with g.scope(prefix):` with that prefix."""
        self.prefix = prefix
        try:
            yield
        finally:
            self.prefix = ""

    def const(self, value: Any, hint: str = "const", dtype: Any = np.float32) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def op(self, op_type: str, inputs: list[str], hint: str = "", outputs: int = 1, **attrs):
        from onnx import helper

        names = [self.name(hint or op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, inputs, names, name=names[0], **attrs))
        return names[0] if outputs == 1 else names


def _activation_name(function: Any) -> str:
    import keras

    name = keras.activations.serialize(function)
    return name if isinstance(name, str) else str(getattr(function, "__name__", function))


def _rnn_activation(layer: Any, function: Any) -> str:
    name = _activation_name(function)
    if name not in _RNN_ACTIVATIONS:
        raise ValueError(
            f"Layer {layer.name!r} uses activation {name!r}: the ONNX recurrent export supports "
            f"{', '.join(_RNN_ACTIVATIONS)}. Received: {name!r}"
        )
    return _RNN_ACTIVATIONS[name]


def _array(variable: Any) -> np.ndarray:
    import keras

    return np.asarray(keras.ops.convert_to_numpy(variable), dtype=np.float32)


def _direction_weights(layer: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """(W, R, B, activations) of one direction, in ONNX layout (no direction axis yet)."""
    cell, kind = layer.cell, type(layer).__name__
    kernel, recurrent = _array(cell.kernel), _array(cell.recurrent_kernel)
    units = recurrent.shape[0]
    gates = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}[kind]
    bias = _array(cell.bias) if cell.use_bias else np.zeros(gates * units, np.float32)
    act = _rnn_activation(layer, cell.activation)
    if kind == "SimpleRNN":
        return kernel.T, recurrent.T, np.concatenate([bias, np.zeros_like(bias)]), [act]
    rec_act = _rnn_activation(layer, cell.recurrent_activation)
    if kind == "GRU":  # gate order z, r, h in both; Keras' reset_after bias is (2, 3U)
        bias = bias.reshape(-1, 3 * units)
        input_bias = bias[0]
        recurrent_bias = bias[1] if len(bias) == 2 else np.zeros_like(input_bias)
        return kernel.T, recurrent.T, np.concatenate([input_bias, recurrent_bias]), [rec_act, act]

    def reorder(matrix: np.ndarray) -> np.ndarray:
        blocks = np.split(matrix, 4, axis=-1)
        return np.concatenate([blocks[i] for i in _LSTM_GATES], axis=-1)

    weights = (reorder(kernel).T, reorder(recurrent).T)
    return (*weights, np.concatenate([reorder(bias), np.zeros_like(bias)]), [rec_act, act, act])


def _unwrap(layer: Any) -> tuple[list[Any], str | None]:
    """The recurrent layer(s) behind `layer` (forward[, backward]) and the merge mode."""
    if type(layer).__name__ == "Bidirectional":
        if layer.merge_mode is None:
            raise ValueError(
                f"Layer {layer.name!r}: Bidirectional(merge_mode=None) returns two tensors; the "
                f"ONNX export supports 'concat', 'sum', 'ave' and 'mul'. Received: None"
            )
        return [layer.forward_layer, layer.backward_layer], layer.merge_mode
    return [layer], None


def _check_recurrent(layer: Any, directions: list[Any]) -> None:
    kinds = {type(d).__name__ for d in directions}
    units = {int(d.cell.units) for d in directions}
    for d in directions:
        if d.stateful or d.return_state:
            raise ValueError(
                f"Layer {d.name!r}: stateful layers and return_state have no ONNX equivalent "
                f"here; export a copy built with stateful=False, return_state=False."
            )
    resets = {bool(getattr(d.cell, "reset_after", True)) for d in directions}
    if len(kinds) > 1 or len(units) > 1 or len(resets) > 1:
        raise ValueError(
            f"Layer {layer.name!r}: both directions must be the same cell type with the same "
            f"units (and reset_after) to export as one ONNX operator."
        )
    solo = directions[0]
    if len(directions) == 1 and solo.go_backwards and solo.return_sequences:
        raise ValueError(
            f"Layer {solo.name!r}: go_backwards=True with return_sequences=True returns the "
            f"sequence in reversed order, which the ONNX export does not reproduce; wrap the "
            f"layer in Bidirectional or set return_sequences=False."
        )


def _dim(g: _Graph, x: str, axis: int) -> str:
    """The size of `x` along `axis`, as a 1-element int64 tensor."""
    shape = g.op("Shape", [x], "shape")
    return g.op("Gather", [shape, g.const([axis], "axis", np.int64)], "dim", axis=0)


def _unsqueeze_last(g: _Graph, x: str) -> str:
    return g.op("Unsqueeze", [x, g.const([-1], "axes", np.int64)], "unsqueeze")


def _gather_steps(g: _Graph, x: str, steps: str) -> str:
    """x[b, steps[b, t], :] for a (batch, time, features) x and int64 (batch, time) steps."""
    index = g.op("Expand", [_unsqueeze_last(g, steps), g.op("Shape", [x], "shape")], "index")
    return g.op("GatherElements", [x, index], "gathered", axis=1)


def _as_index(g: _Graph, position: str) -> str:
    """A float position tensor, floored at 0, as int64 indices."""
    return g.op("Cast", [g.op("Max", [position, g.const(0.0)])], "index", to=7)


class _Flow:
    """The tensor flowing down the chain, always in time order, and its Keras mask.

    `mask` (float, batch x time, 1 = real step), `seen` (its running count) and `lens` (float
    counts per row) exist while a mask is in effect; `orders` caches the step permutations of
    that mask.
    """

    def __init__(self, x: str):
        self.x = x
        self.mask: str | None = None
        self.seen: str | None = None
        self.lens: str | None = None
        self.orders: dict[bool, str] = {}


def _masking(g: _Graph, flow: _Flow, layer: Any) -> None:
    """Keras Masking: a step is real when any feature differs from mask_value; zero the rest."""
    with g.scope(STEP_SCOPE):
        value = g.const(float(layer.mask_value), "mask_value")
        differs = g.op("Cast", [g.op("Not", [g.op("Equal", [flow.x, value])])], to=1)
        count = g.op("ReduceSum", [differs, g.const([-1], "axes", np.int64)], keepdims=0)
        mask = g.op("Cast", [g.op("Greater", [count, g.const(0.0)])], "mask", to=1)
        flow.mask, flow.orders = mask, {}
        flow.seen = g.op("CumSum", [mask, g.const(1, "axis", np.int64)], "seen")
        flow.lens = g.op("ReduceSum", [mask, g.const([1], "axes", np.int64)], "lens", keepdims=1)
        # In the scope too, so that no lowering rounds the input the mask compare reads.
        flow.x = g.op("Mul", [flow.x, _unsqueeze_last(g, mask)], "masked")


def _order(g: _Graph, flow: _Flow, backward: bool) -> str:
    """Per row, the real steps first (in time order, or reversed), then the masked ones."""
    if backward not in flow.orders:
        with g.scope(STEP_SCOPE):
            steps = _dim(g, flow.x, 1)
            stop = g.op("Squeeze", [steps], "steps")
            zero, one = g.const(0, "zero", np.int64), g.const(1, "one", np.int64)
            time = g.op("Cast", [g.op("Range", [zero, stop, one])], to=1)
            count = g.op("Cast", [steps], to=1)
            if backward:
                time = g.op("Sub", [g.op("Sub", [count, g.const(1.0)]), time], "reversed")
            key = g.op("Add", [g.op("Mul", [g.op("Sub", [g.const(1.0), flow.mask]), count]), time])
            _, flow.orders[backward] = g.op(
                "TopK", [key, steps], "order", outputs=2, axis=1, largest=0, sorted=1
            )
    return flow.orders[backward]


def _fused(g: _Graph, directions: list[Any], x: str, direction: str) -> tuple[list, list]:
    """One ONNX RNN/GRU/LSTM node over x (batch, time, features), no `sequence_lens`.

    Returns per direction the output sequence (batch, time, units) and last state (batch, units).
    """
    parts = [_direction_weights(d) for d in directions]
    first = directions[0]
    kind = type(first).__name__
    attrs: dict[str, Any] = {
        "hidden_size": int(first.cell.units),
        "direction": direction,
        "activations": [name for part in parts for name in part[3]],
    }
    if kind == "GRU":
        attrs["linear_before_reset"] = int(bool(first.cell.reset_after))
    weights = [
        g.const(np.stack([p[i] for p in parts]), f"{first.name}_{w}") for i, w in enumerate("WRB")
    ]
    op_type = {"SimpleRNN": "RNN", "GRU": "GRU", "LSTM": "LSTM"}[kind]
    x_time_major = g.op("Transpose", [x], "time_major", perm=[1, 0, 2])
    count = 3 if kind == "LSTM" else 2
    y, y_last = g.op(op_type, [x_time_major, *weights], first.name, outputs=count, **attrs)[:2]
    y = g.op("Transpose", [y], "batch_major", perm=[2, 0, 1, 3])  # (batch, time, dirs, units)
    y_last = g.op("Transpose", [y_last], "batch_major", perm=[1, 0, 2])  # (batch, dirs, units)
    pick = [g.const(i, "direction", np.int64) for i in range(len(directions))]
    return (
        [g.op("Gather", [y, i], "sequence", axis=2) for i in pick],
        [g.op("Gather", [y_last, i], "last", axis=1) for i in pick],
    )


def _masked_direction(g: _Graph, flow: _Flow, layer: Any, backward: bool, fill: str):
    """One direction over the real steps only: (sequence in time order or None, last state).

    The fused op runs over the real steps moved to the front (reversed for the backward
    direction), so its state at step `lens - 1` is Keras' final state; what it computes past
    that, over the masked steps, is never read.
    """
    x = _gather_steps(g, flow.x, _order(g, flow, backward))
    (y,), _ = _fused(g, [layer], x, "forward")
    with g.scope(STEP_SCOPE):
        last_step = _as_index(g, g.op("Sub", [flow.lens, g.const(1.0)]))
        started = g.op("Cast", [g.op("Greater", [flow.lens, g.const(0.0)])], to=1)
    last = g.op("GatherND", [y, last_step], "last", batch_dims=1)
    last = g.op("Mul", [last, started], "last")  # a row with no real step keeps the zero state
    if not layer.return_sequences:
        return None, last
    with g.scope(STEP_SCOPE):
        # Step t is real step k = seen[t] - 1: forward output k, backward output lens - 1 - k.
        if backward:
            position = g.op("Sub", [flow.lens, flow.seen])
        else:
            position = g.op("Sub", [flow.seen, g.const(1.0)])
        index = _as_index(g, position)
        keep = flow.mask
        if fill == "carry":  # masked steps repeat the previous output, zeros before the first
            keep = g.op("Cast", [g.op("Greater", [flow.seen, g.const(0.0)])], to=1)
        keep = _unsqueeze_last(g, keep)
    return g.op("Mul", [_gather_steps(g, y, index), keep], "restored"), last


def _merge(g: _Graph, parts: list[str], merge: str | None) -> str:
    """Keras' merge of the forward and backward outputs (a single direction passes through)."""
    if len(parts) == 1:
        return parts[0]
    if merge == "concat":
        return g.op("Concat", parts, "merged", axis=-1)
    combined = g.op("Mul" if merge == "mul" else "Add", parts, "merged")
    return g.op("Mul", [combined, g.const(0.5)], "merged") if merge == "ave" else combined


def _recurrent(g: _Graph, flow: _Flow, layer: Any) -> None:
    """Fused ONNX RNN/GRU/LSTM node(s) for a recurrent layer or a Bidirectional pair."""
    directions, merge = _unwrap(layer)
    _check_recurrent(layer, directions)
    first = directions[0]
    backwards = [False, True] if merge else [bool(first.go_backwards)]
    if flow.mask is None:  # one node, both directions
        direction = "bidirectional" if merge else ("reverse" if backwards[0] else "forward")
        sequences, lasts = _fused(g, directions, flow.x, direction)
    else:  # one node per direction, over each row's real steps
        zeros = bool(merge) or bool(getattr(first, "zero_output_for_mask", False))
        outputs = [
            _masked_direction(g, flow, d, b, "zeros" if zeros else "carry")
            for d, b in zip(directions, backwards, strict=True)
        ]
        sequences, lasts = [o[0] for o in outputs], [o[1] for o in outputs]
    if first.return_sequences:
        flow.x = _merge(g, sequences, merge)
    else:
        flow.x = _merge(g, lasts, merge)
        flow.mask = flow.seen = flow.lens = None


def _activation(g: _Graph, x: str, name: str, layer: Any) -> str:
    simple = {
        "relu": "Relu",
        "sigmoid": "Sigmoid",
        "tanh": "Tanh",
        "elu": "Elu",
        "selu": "Selu",
        "softplus": "Softplus",
        "softsign": "Softsign",
        "exponential": "Exp",
    }
    if name == "linear":
        return x
    if name == "softmax":
        return g.op("Softmax", [x], "softmax", axis=-1)
    if name in simple:
        return g.op(simple[name], [x], name)
    raise ValueError(
        f"Layer {layer.name!r} uses activation {name!r}, which the ONNX recurrent export does not "
        f"emit; valid: linear, softmax, {', '.join(simple)}. Received: {name!r}"
    )


def _dense(g: _Graph, flow: _Flow, layer: Any) -> None:
    y = g.op("MatMul", [flow.x, g.const(_array(layer.kernel), f"{layer.name}_kernel")], "matmul")
    if layer.use_bias:
        y = g.op("Add", [y, g.const(_array(layer.bias), f"{layer.name}_bias")], "dense")
    flow.x = _activation(g, y, _activation_name(layer.activation), layer)


def _chain(model: Any) -> list[Any]:
    """The model's layers, checked to form one single-input, single-output chain."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"The ONNX recurrent export supports single-input, single-output models. Received: "
            f"{len(model.inputs)} inputs, {len(model.outputs)} outputs"
        )
    chain, previous = [], model.inputs[0]
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        nodes = getattr(layer, "_inbound_nodes", [])
        # Keras keeps the graph in nodes (`layer.input` returns a copy). A mask passed along
        # implicitly shows up as a second input tensor: the first one is the data.
        connected = len(nodes) == 1 and id(nodes[0].input_tensors[0]) == id(previous)
        if not connected:
            raise ValueError(
                f"The ONNX recurrent export supports a chain of layers, each feeding the next; "
                f"layer {layer.name!r} ({type(layer).__name__}) is not fed by the layer before it."
            )
        chain.append(layer)
        previous = nodes[0].output_tensors[0]
    return chain


def _emit_layer(g: _Graph, flow: _Flow, layer: Any) -> None:
    kind = type(layer).__name__
    if kind in _NO_OPS:
        return
    inner = type(getattr(layer, "forward_layer", None)).__name__
    if kind in RECURRENT_LAYERS or (kind == "Bidirectional" and inner in RECURRENT_LAYERS):
        return _recurrent(g, flow, layer)
    if kind == "Masking":
        return _masking(g, flow, layer)
    if kind == "Dense":
        return _dense(g, flow, layer)
    if kind == "Activation":
        flow.x = _activation(g, flow.x, _activation_name(layer.activation), layer)
        return None
    raise ValueError(
        f"Layer {layer.name!r} ({kind}) has no fused ONNX form beside recurrent layers: the "
        f"recurrent export supports Masking, SimpleRNN, GRU, LSTM, Bidirectional, Dense, "
        f"Activation and Dropout-like layers. Received: {kind}"
    )


def has_recurrent_layer(model: Any) -> bool:
    """Whether any layer of `model` (nested ones too) is a SimpleRNN, GRU or LSTM."""
    return any(
        type(layer).__name__ in RECURRENT_LAYERS
        for layer in model._flatten_layers(include_self=False, recursive=True)
    )


def _value_info(name: str, shape: Any) -> Any:
    from onnx import TensorProto, helper

    dims = ["batch" if i == 0 else ("time" if d is None else int(d)) for i, d in enumerate(shape)]
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def recurrent_onnx_proto(model: Any, *, opset: int = 17) -> Any | None:
    """The ONNX graph of a recurrent Keras model with fused RNN/GRU/LSTM ops; None if it has none.

    `model` should be float32 (see `convert.onnx.export_ready_copy`). Raises a one-line ValueError
    for a layer or option the fused form cannot express.

    Example:
        >>> proto = recurrent_onnx_proto(zoo.create_model("lstm", bidirectional=True))
        >>> [n.op_type for n in proto.graph.node if n.op_type == "LSTM"]
        ['LSTM']
    """
    import onnx
    from onnx import helper

    if not has_recurrent_layer(model):
        return None
    chain = _chain(model)
    g = _Graph()
    tensor = model.inputs[0]
    input_name = getattr(tensor, "name", None) or "input"
    flow = _Flow(input_name)
    for layer in chain:
        _emit_layer(g, flow, layer)
    output_name = (list(getattr(model, "output_names", None) or []) or ["output_0"])[0]
    g.nodes.append(helper.make_node("Identity", [flow.x], [output_name], name=output_name))
    graph = helper.make_graph(
        g.nodes,
        model.name,
        [_value_info(input_name, tensor.shape)],
        [_value_info(output_name, model.outputs[0].shape)],
        g.initializers,
    )
    opsets = [helper.make_opsetid("", int(opset))]
    proto = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="kerazoo",
        ir_version=helper.find_min_ir_version_for(opsets),
    )
    onnx.checker.check_model(proto)
    return proto
