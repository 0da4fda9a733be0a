"""Nodes that stay float in an int8 file: `quantize_int8(..., exclude_nodes=[...])`.

ONNX Runtime's `nodes_to_exclude` alone does not keep a layer float. It leaves the node's own
weights float, but (1) `quant_pre_process` renames some nodes first (a MatMul fused with its bias
Add becomes a Gemm named `<matmul>/MatMulAddFusion`), (2) a quantized tensor gets its
DequantizeLinear output wired into *every* consumer, the excluded one included, and (3) the
Relu/Clip, MaxPool, Reshape... between the excluded layer and the op that produced its input are
quantized (their output Q/DQ pair *is* the quantization of the layer's input), and a removed
Relu/Clip hands its output name to the op before it, so its float value is gone.

So "layer L stays float" here means: L's weights and its input activations are float. This module
(1) translates the names of the fp32 export into the preprocessed graph's, (2) extends the
exclusion upstream over those pass-through ops, and (3) after quantization rewires each excluded
node fed by a DequantizeLinear of an activation back to the float tensor that was quantized.
The layers upstream of L keep their int8 compute; their outputs simply are not requantized.

Example:
    >>> names = translate_names("model.onnx", "prepared.onnx", ["cnn_1/dense_1/MatMul"])
    >>> float_closure(onnx.load("prepared.onnx").graph, names)
    ['cnn_1/dense_1/MatMul', 'cnn_1/flatten_1/Reshape']
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

# Ops whose output, in ORT's QDQ quantizer, is the (re)quantized copy of their input (Direct8Bit,
# pooling, removable activations): a float layer reading them needs them float too.
PASS_THROUGH = frozenset(
    {
        "Relu", "Clip", "MaxPool", "AveragePool", "Reshape", "Transpose", "Squeeze",
        "Unsqueeze", "Flatten", "Slice", "Pad", "Gather", "GatherElements", "Split", "Resize",
        "TopK", "Identity",
    }
)  # fmt: skip


def _load_graph(path_or_graph: Any) -> Any:
    import onnx

    if hasattr(path_or_graph, "node"):
        return path_or_graph
    return onnx.load(str(path_or_graph), load_external_data=False).graph


def translate_names(original: Any, prepared: Any, names: Iterable[str]) -> list[str]:
    """The preprocessed graph's names for nodes named in the fp32 export.

    A node keeps its name, or is renamed `<name>/...Fusion` (ORT's fusions), or was fused into
    the node that now produces its output tensor. A name in neither graph is a ValueError.

    Example:
        >>> translate_names("lstm.onnx", "prepared.onnx", ["matmul_14"])
        ['matmul_14/MatMulAddFusion']
    """
    original, prepared = _load_graph(original), _load_graph(prepared)
    before = {node.name: node for node in original.node}
    after = {node.name for node in prepared.node}
    producer = {out: node.name for node in prepared.node for out in node.output}
    found: list[str] = []
    for name in names:
        if name in after:
            found.append(name)
            continue
        fused = [n for n in after if n.startswith(name + "/") and "Fusion" in n[len(name) :]]
        fused += [
            producer[out] for out in getattr(before.get(name), "output", ()) if out in producer
        ]
        if not fused:
            known = "the fp32 file" if name not in before else "ONNX Runtime's preprocessing"
            raise ValueError(
                f"exclude_nodes names a node that is not in {known}. Pass node names of the fp32 "
                f"ONNX export (e.g. from convert.sensitivity.rank_layers). Received: {name!r}"
            )
        found.extend(dict.fromkeys(fused))
    return list(dict.fromkeys(found))


def float_closure(graph: Any, names: Sequence[str]) -> list[str]:
    """`names` plus the pass-through nodes between them and the ops that produce their inputs.

    Example:
        >>> float_closure(graph, ["cnn_1/conv3_1/convolution"])
        ['cnn_1/conv3_1/convolution', 'cnn_1/pool2_1/MaxPool2d', 'cnn_1/conv2_1/Relu']
    """
    graph = _load_graph(graph)
    producer = {out: node for node in graph.node for out in node.output}
    by_name = {node.name: node for node in graph.node}
    keep = list(dict.fromkeys(names))
    todo = [by_name[name] for name in keep if name in by_name]
    while todo:
        node = todo.pop()
        for tensor in node.input:
            source = producer.get(tensor)
            if source is not None and source.op_type in PASS_THROUGH and source.name not in keep:
                keep.append(source.name)
                todo.append(source)
    return keep


def rewire_float_inputs(model: Any, prepared: Any, names: Sequence[str]) -> int:
    """Feed the float nodes `names` of quantized `model` the float tensors, not their Q/DQ copies.

    A DequantizeLinear(QuantizeLinear(T)) input is replaced by T when T is still produced by the
    node that produced it before quantization (a removed Relu would have handed its name to the
    op before it: then T is not the value the node read, and this raises RuntimeError). Q/DQ
    nodes nobody reads any more are dropped. Returns how many inputs were rewired.

    Example:
        >>> rewire_float_inputs(quantized, "prepared.onnx", ["cnn_1/conv3_1/convolution"])
        1
    """
    graph, before = model.graph, _load_graph(prepared)
    produced_before = {out: node.name for node in before.node for out in node.output}
    graph_inputs = {value.name for value in before.input}
    producer = {out: node for node in graph.node for out in node.output}
    rewired = 0
    for node in (n for n in graph.node if n.name in set(names)):
        for index, tensor in enumerate(node.input):
            dq = producer.get(tensor)
            q = (
                producer.get(dq.input[0])
                if dq is not None and dq.op_type == "DequantizeLinear"
                else None
            )
            if q is None or q.op_type != "QuantizeLinear":
                continue  # a float tensor, or a weight stored as int8 for another node
            source = q.input[0]
            now = producer[source].name if source in producer else None
            if source not in graph_inputs and now != produced_before.get(source):
                raise RuntimeError(
                    f"Cannot keep {node.name!r} float: its input {source!r} was produced by "
                    f"{produced_before.get(source)!r} before quantization and by {now!r} after."
                )
            node.input[index] = source
            rewired += 1
    _drop_unread_qdq(graph)
    return rewired


def _drop_unread_qdq(graph: Any) -> None:
    """Remove Q/DQ nodes whose outputs nobody reads (repeatedly: a Q feeds a DQ)."""
    outputs = {value.name for value in graph.output}
    dropped: set[str] = set()
    while True:
        read = {tensor for node in graph.node for tensor in node.input} | outputs
        unread = [
            node for node in graph.node
            if node.op_type in ("QuantizeLinear", "DequantizeLinear")
            and not any(out in read for out in node.output)
        ]  # fmt: skip
        if not unread:
            break
        for node in unread:
            dropped.update(node.input)
            graph.node.remove(node)
    # Their scales and zero points (and int8 weights), unless another node still reads them.
    used = {tensor for node in graph.node for tensor in node.input}
    for init in [i for i in graph.initializer if i.name in dropped - used]:
        graph.initializer.remove(init)
