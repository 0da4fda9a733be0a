"""Quantization-aware fine-tuning: `build_qat_model(trained) -> (qat_model, notes)`.

The trained float model is cloned (`keras.models.clone_model`, recursive, so a nested backbone
is rewritten too) into one that simulates int8 inference with zoo's fake-quantization layers
(`zoo.quantization`):

- every Conv2D, DepthwiseConv2D and Dense becomes its `Quant*` twin (kernel fake-quantized per
  output channel, symmetric, 8 bits or 7 where this CPU's int8 kernels need it);
- a BatchNormalization right after a linear convolution is folded into that convolution's kernel
  and bias first, then dropped (an Identity keeps its name): the weights that get quantized are
  the ones inference uses. Folding is static (the folded model trains without BatchNorm): with
  a trained parent its statistics are settled, and a static fold is exactly what the ONNX export
  computes, so training sees the inference graph. A BatchNorm that cannot be folded (after a
  nonlinearity, or whose convolution feeds other layers too) stays, frozen.
- a `FakeQuant` (per-tensor, moving min/max) goes on each tensor int8 inference quantizes: the
  output of each weighted layer after its activation (BatchNorm folded, a ReLU layer that
  follows included), except the model's output, and the input of each weighted layer not
  already quantized (the image, a pooling or Add result). Max-pooling, flatten, reshape,
  padding and dropout keep values on the grid, so a quantized tensor stays quantized through
  them, as ONNX Runtime's Q/DQ propagation does.

Models with other layer kinds (recurrent, 1-D convolutional, EfficientNet's squeeze-excite
Multiply) are refused with one line naming what is not supported.

Example:
    >>> qat, notes = build_qat_model(zoo.load_model("runs/digits/model.keras"))
    >>> notes["folded_batchnorm"], notes["weight_bits"]
    (0, 7)
"""

from __future__ import annotations

from typing import Any

import numpy as np

_COMPUTE = ("Conv2D", "DepthwiseConv2D", "Dense")
# Layers that keep a quantized tensor on its grid (max, copy, reshape, zero padding).
_PASSTHROUGH = (
    "MaxPooling2D",
    "Flatten",
    "Reshape",
    "Dropout",
    "ZeroPadding2D",
    "Cropping2D",
    "Identity",
)
_ACTIVATIONS = ("ReLU", "Activation")
SUPPORTED_LAYERS = frozenset(
    (
        *_COMPUTE,
        *_PASSTHROUGH,
        *_ACTIVATIONS,
        "InputLayer",
        "Functional",
        "BatchNormalization",
        "AveragePooling2D",
        "GlobalAveragePooling2D",
        "GlobalMaxPooling2D",
        "Add",
        "Concatenate",
        "Rescaling",
        "Cropping3D",
    )
)


def _kind(layer: Any) -> str:
    return type(layer).__name__


def check_supported(model: Any) -> None:
    """A one-line ValueError naming the layer kinds QAT does not handle, if `model` has any.

    Example:
        >>> check_supported(zoo.create_model("lstm", input_shape=(None, 3), num_classes=2))
        Traceback (most recent call last):
        ValueError: --qat supports image models built from Conv2D, DepthwiseConv2D and Dense ...
    """
    layers = model._flatten_layers(include_self=False, recursive=True)
    other = sorted({_kind(layer) for layer in layers} - SUPPORTED_LAYERS)
    if other:
        raise ValueError(
            "--qat supports image models built from Conv2D, DepthwiseConv2D and Dense layers "
            f"(cnn and the backbone variants); {model.name!r} has {', '.join(other)}, "
            f"which QAT does not handle. Received: model={model.name!r}"
        )


def _consumers(layer: Any) -> list[Any]:
    return [node.operation for node in layer._outbound_nodes]


def _producer(layer: Any) -> Any | None:
    """The layer whose output `layer` reads (first input), None for a graph input."""
    nodes = layer._inbound_nodes
    if not nodes or not nodes[0].input_tensors:
        return None
    history = nodes[0].input_tensors[0]._keras_history
    return history.operation


def _foldable(bn: Any) -> Any | None:
    """The linear Conv2D/DepthwiseConv2D that `bn` can be folded into, or None."""
    conv = _producer(bn)
    if _kind(conv) not in ("Conv2D", "DepthwiseConv2D") or len(_consumers(conv)) != 1:
        return None
    if getattr(conv.activation, "__name__", "") != "linear":
        return None
    if bn.axis not in (-1, len(bn.input.shape) - 1) or len(bn._inbound_nodes) > 1:
        return None
    return conv


class _Plan:
    """What the clone does, by layer name: folds, and after which layers a FakeQuant goes."""

    def __init__(self) -> None:
        self.fold: dict[str, Any] = {}  # conv name -> its BatchNormalization
        self.folded_bn: set[str] = set()
        self.quantize_after: set[str] = set()

    def scan(self, model: Any, top: bool) -> None:
        outputs = {t._keras_history.operation.name for t in model.outputs} if top else set()
        for layer in model.layers:
            if _kind(layer) == "Functional":
                self.scan(layer, top=False)
            if _kind(layer) == "BatchNormalization" and (conv := _foldable(layer)) is not None:
                self.fold[conv.name] = layer
                self.folded_bn.add(layer.name)
        for layer in model.layers:
            if _kind(layer) not in _COMPUTE:
                continue
            end = self._activation_end(layer)
            if end.name not in outputs:
                self.quantize_after.add(end.name)
            source = _producer(layer)
            while source is not None and _kind(source) in _PASSTHROUGH:
                source = _producer(source)
            if source is not None and _kind(source) != "InputLayer":
                self.quantize_after.add(source.name)

    def _activation_end(self, layer: Any) -> Any:
        """The layer whose output is `layer`'s activated result (through a folded BN, a ReLU)."""
        end = layer
        if layer.name in self.fold:
            end = self.fold[layer.name]
        after = _consumers(end)
        if len(after) == 1 and _kind(after[0]) in _ACTIVATIONS:
            end = after[0]
        return end


def _fold(conv: Any, bn: Any) -> list[np.ndarray]:
    """[kernel, bias] of `conv` with `bn` (inference statistics) folded in."""
    kernel = np.asarray(conv.kernel.numpy(), np.float64)
    channels = kernel.shape[-2] * kernel.shape[-1] if _kind(conv) == "DepthwiseConv2D" else None
    channels = channels or kernel.shape[-1]
    bias = np.asarray(conv.bias.numpy(), np.float64) if conv.use_bias else np.zeros(channels)
    ones, zeros = np.ones(channels), np.zeros(channels)
    gamma = np.asarray(bn.gamma.numpy(), np.float64) if bn.scale else ones
    beta = np.asarray(bn.beta.numpy(), np.float64) if bn.center else zeros
    mean = np.asarray(bn.moving_mean.numpy(), np.float64)
    var = np.asarray(bn.moving_variance.numpy(), np.float64)
    factor = gamma / np.sqrt(var + bn.epsilon)
    folded = kernel * factor.reshape(kernel.shape[-2:] if channels != kernel.shape[-1] else -1)
    return [folded.astype(np.float32), ((bias - mean) * factor + beta).astype(np.float32)]


def _float32_config(layer: Any) -> dict[str, Any]:
    config = layer.get_config()
    if "dtype" in config:
        config["dtype"] = "float32"
    return config


class _Cloner:
    """clone_function/call_function of `keras.models.clone_model` for a `_Plan`."""

    def __init__(self, plan: _Plan, weight_bits: int):
        self.plan, self.bits = plan, weight_bits
        self.weights: list[tuple[Any, list[np.ndarray]]] = []
        self.quantized: set[int] = set()

    def clone(self, layer: Any) -> Any:
        import keras

        from zoo import quantization as q

        twins = {
            "Conv2D": q.QuantConv2D,
            "DepthwiseConv2D": q.QuantDepthwiseConv2D,
            "Dense": q.QuantDense,
        }
        kind = _kind(layer)
        if layer.name in self.plan.folded_bn:
            return keras.layers.Identity(name=layer.name)
        config = _float32_config(layer)
        if kind in twins:
            bn = self.plan.fold.get(layer.name)
            if bn is not None:
                config["use_bias"] = True
            new = twins[kind].from_config({**config, "weight_bits": self.bits})
            weights = _fold(layer, bn) if bn is not None else layer.get_weights()
        else:
            new = type(layer).from_config(config)
            weights = layer.get_weights()
        self.weights.append((new, weights))
        return new

    def call(self, layer: Any, *args, **kwargs) -> Any:
        from zoo.quantization import QUANT_WEIGHT_LAYERS, FakeQuant

        if isinstance(layer, QUANT_WEIGHT_LAYERS) and id(args[0]) not in self.quantized:
            args = (self._quantize(FakeQuant(name=f"{layer.name}_input_quant"), args[0]),) + args[
                1:
            ]
        if layer.name in self.plan.folded_bn:
            kwargs = {}  # a folded BatchNorm's Identity takes no mask/training
        out = layer(*args, **kwargs)
        if _kind(layer) in _PASSTHROUGH and args and id(args[0]) in self.quantized:
            self.quantized.add(id(out))
        if layer.name in self.plan.quantize_after:
            out = self._quantize(FakeQuant(name=f"{layer.name}_quant"), out)
        return out

    def _quantize(self, fake_quant: Any, tensor: Any) -> Any:
        out = fake_quant(tensor)
        self.quantized.add(id(out))
        return out


def build_qat_model(model: Any, weight_bits: int | None = None) -> tuple[Any, dict[str, Any]]:
    """The fake-quantized clone of trained `model` (its weights, BatchNorm folded) and notes.

    Args:
        model: a trained functional Keras model (zoo's cnn or a backbone variant).
        weight_bits: kernel bits; None: what this CPU's int8 lowering uses
            (`zoo.quantization.weight_bits_for_this_cpu`).

    Example:
        >>> qat, notes = build_qat_model(zoo.create_model("mobilenet_v2_gap", weights=None))
        >>> notes["folded_batchnorm"]
        52
    """
    import keras

    from zoo.quantization import FakeQuant, weight_bits_for_this_cpu

    check_supported(model)
    bits = weight_bits_for_this_cpu() if weight_bits is None else int(weight_bits)
    plan = _Plan()
    plan.scan(model, top=True)
    cloner = _Cloner(plan, bits)
    qat = keras.models.clone_model(
        model, clone_function=cloner.clone, call_function=cloner.call, recursive=True
    )
    for layer, weights in cloner.weights:
        layer.set_weights(weights)
    layers = list(qat._flatten_layers(include_self=False, recursive=True))
    notes = {
        "weight_bits": bits,
        "activation_bits": 8,
        "folded_batchnorm": len(plan.folded_bn),
        "unfolded_batchnorm": sum(_kind(layer) == "BatchNormalization" for layer in layers),
        "fake_quant_layers": sum(isinstance(layer, FakeQuant) for layer in layers),
        "ranges": "moving min/max (momentum 0.99), per tensor",
    }
    return qat, notes


def qat_model_from(
    from_file: Any, num_classes: int, *, safe_mode: bool = True
) -> tuple[Any, dict[str, Any]]:
    """The QAT model of the trained model in `from_file` (a `.keras` file) and build notes.

    QAT keeps the model's classifier, so the data must have the classes it was trained on.

    Example:
        >>> model, notes = qat_model_from("runs/digits/model.keras", num_classes=10)
    """
    import zoo

    source = zoo.load_model(from_file, safe_mode=safe_mode)
    _check_parent(source, from_file)
    width = int(source.outputs[0].shape[-1])
    if width != num_classes:
        raise ValueError(
            f"--qat fine-tunes the --from model with its own classifier ({width} outputs), so "
            f"the data should have its classes. Received: {num_classes} classes"
        )
    model, notes = build_qat_model(source)
    return model, {"from": str(from_file), "qat": notes}


def qat_run_settings(cfg: Any, keras_file: Any, earlier: dict[str, Any]) -> Any:
    """`cfg` for a QAT run from `keras_file`: no head phase, and the parent run's data, split
    and seed where `cfg` keeps the defaults (its held-out examples stay held out); for a bare
    `.keras` file, the file's input shape.

    Example:
        >>> qat_run_settings(FinetuneConfig(from_run="runs/a", qat=True), path, config).data
        'builtin:digits'
    """
    import dataclasses

    from finetune.config import FinetuneConfig

    default = FinetuneConfig()
    changes: dict[str, Any] = {"head_epochs": 0}
    for name in ("data", "val_split", "seed"):
        if getattr(cfg, name) == getattr(default, name) and earlier.get(name) is not None:
            changes[name] = earlier[name]
    import zoo

    # Checked now, before the data is read or the run directory made.
    model = zoo.load_model(keras_file, safe_mode=not cfg.unsafe_load)
    _check_parent(model, keras_file)
    if not earlier and cfg.input_shape is None:
        changes["input_shape"] = tuple(model.inputs[0].shape[1:])
    return dataclasses.replace(cfg, **changes)


def _check_parent(model: Any, keras_file: Any) -> None:
    from zoo.quantization import is_qat_model

    if is_qat_model(model):
        raise ValueError(
            "--qat: the --from model is already quantization-aware; continue its run with "
            f"--resume, or start from its float parent. Received: from={str(keras_file)!r}"
        )
    check_supported(model)
