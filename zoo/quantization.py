"""Fake-quantization layers of quantization-aware training (QAT), registered with Keras.

Registered here, in `zoo`, so that a QAT model's `model.keras` loads wherever zoo's layers
load (`zoo.load_model`, hence `zoo convert`), without importing `finetune`, which builds QAT
models (`finetune.qat`).

What they simulate is what `convert.qat` writes as QuantizeLinear/DequantizeLinear pairs:
- `QuantConv2D`, `QuantDepthwiseConv2D`, `QuantDense`: the stock layers with their kernel
  fake-quantized per output channel, symmetric, narrow range (levels -q..q, q = 2**(bits-1) - 1,
  scale = max|w| / q of each channel, taken from the weights at each step as tfmot's
  LastValueQuantizer does; gradients pass straight through). `weight_bits` is 8, or 7 on CPUs
  whose int8 kernels saturate (`weight_bits_for_this_cpu`).
- `FakeQuant`: one tensor, per-tensor asymmetric 8 bits (uint8 levels 0..255), its range tracked
  during training as a moving average of batch min/max (momentum 0.99; the first batch sets it),
  then frozen in inference. The range always holds 0, so zero is exact (padding, ReLU).

Both go through `keras.quantizers.fake_quant_with_min_max_vars` (TensorFlow's FakeQuant ops on
the TensorFlow backend).

Example:
    >>> layer = FakeQuant()
    >>> y = layer(np.linspace(-1, 3, 8, dtype="float32")[None], training=True)
    >>> [round(float(v), 3) for v in layer.quant_range()]
    [-1.004, 2.996]
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from zoo._cpu import needs_reduced_range

ACTIVATION_BITS = 8


def weight_bits_for_this_cpu() -> int:
    """7 where int8 lowering uses reduced-range weights on this CPU (`needs_reduced_range`), else 8.

    Example:
        >>> weight_bits_for_this_cpu() in (7, 8)
        True
    """
    return 7 if needs_reduced_range() else 8


def nudged_range(low: float, high: float, num_bits: int = ACTIVATION_BITS) -> tuple[float, float]:
    """The range TensorFlow's FakeQuant really uses for `[low, high]` (zero made exact), as floats.

    Example:
        >>> nudged_range(-1.0, 3.0)  # zero on a level: -64 x 4/255
        (-1.003921627998352, 2.9960784912109375)
    """
    low, high = np.float32(min(low, 0.0)), np.float32(max(high, 0.0))
    levels = np.float32(2**num_bits - 1)
    scale = (high - low) / levels if high > low else np.float32(1e-8)
    zero = float(np.clip(np.round(-low / scale), 0, levels))
    return float((0.0 - zero) * scale), float((levels - zero) * scale)


def _safe_range(low, high):
    """Holds zero and is never empty (an all-zero tensor would give scale 0)."""
    low = ops.minimum(low, 0.0)
    high = ops.maximum(ops.maximum(high, 0.0), low + 1e-6)
    return low, high


@keras.saving.register_keras_serializable(package="kerazoo")
class FakeQuant(layers.Layer):
    """Per-tensor asymmetric 8-bit fake quantization with a tracked (moving min/max) range.

    Args:
        momentum: weight of the old range in the moving average. Defaults to 0.99.

    Example:
        >>> x = FakeQuant(name="conv1_quant")(keras.Input((4,)))
    """

    def __init__(self, momentum: float = 0.99, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.momentum = float(momentum)

    def build(self, input_shape):
        def scalar(name):
            return self.add_weight(
                shape=(), initializer="zeros", trainable=False, name=name, aggregation="mean"
            )

        self.range_min, self.range_max = scalar("range_min"), scalar("range_max")
        self.tracked = scalar("tracked")  # 0 until the first training batch sets the range
        self.built = True

    def call(self, inputs, training=None):
        x = ops.cast(inputs, "float32")
        low, high = self.range_min, self.range_max
        if training:
            # The first batch (tracked == 0) sets the range; later ones move it by 1 - momentum.
            keep = self.momentum * self.tracked
            low = ops.stop_gradient(keep * low + (1.0 - keep) * ops.min(x))
            high = ops.stop_gradient(keep * high + (1.0 - keep) * ops.max(x))
            self.range_min.assign(low)
            self.range_max.assign(high)
            self.tracked.assign(ops.ones_like(self.tracked))
        low, high = _safe_range(low, high)
        y = keras.quantizers.fake_quant_with_min_max_vars(x, low, high, num_bits=ACTIVATION_BITS)
        return ops.cast(y, inputs.dtype)

    def quant_range(self) -> tuple[float, float]:
        """The nudged (min, max) the layer quantizes to in inference, as Python floats."""
        return nudged_range(float(self.range_min.numpy()), float(self.range_max.numpy()))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


def fake_quant_kernel(kernel, num_bits: int, channels_last: int = 1):
    """`kernel` on its per-output-channel symmetric grid (straight-through gradient).

    The output channels are the last axis, or the last two (depthwise: in x multiplier) with
    `channels_last=2`.

    Example:
        >>> fake_quant_kernel(np.array([[0.5, 1.0], [-1.0, 0.26]], "float32"), 8).numpy()[1, 1]
        0.25984251
    """
    kernel = ops.convert_to_tensor(kernel)
    shape = ops.shape(kernel)
    flat = ops.reshape(kernel, (-1, int(np.prod(kernel.shape[-channels_last:]))))
    high = ops.maximum(ops.stop_gradient(ops.max(ops.abs(flat), axis=0)), 1e-8)
    snapped = keras.quantizers.fake_quant_with_min_max_vars(
        flat, -high, high, num_bits=num_bits, narrow_range=True, axis=-1
    )
    return ops.reshape(snapped, shape)


class _WeightQuantMixin:
    """`weight_bits` in the config; `quantized_kernel()` for the layer's call and the export."""

    channels_last = 1

    def _init_bits(self, weight_bits: int) -> None:
        if int(weight_bits) not in (4, 5, 6, 7, 8):
            raise ValueError(f"weight_bits should be 4-8. Received: weight_bits={weight_bits!r}")
        self.weight_bits = int(weight_bits)

    def quantized_kernel(self, kernel=None):
        kernel = self.kernel if kernel is None else kernel
        return fake_quant_kernel(kernel, self.weight_bits, self.channels_last)

    def get_config(self):
        return {**super().get_config(), "weight_bits": self.weight_bits}


@keras.saving.register_keras_serializable(package="kerazoo")
class QuantConv2D(_WeightQuantMixin, layers.Conv2D):
    """Conv2D whose kernel is fake-quantized per output channel (see the module docstring)."""

    def __init__(self, *args, weight_bits: int = 8, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_bits(weight_bits)

    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, self.quantized_kernel(kernel))


@keras.saving.register_keras_serializable(package="kerazoo")
class QuantDepthwiseConv2D(_WeightQuantMixin, layers.DepthwiseConv2D):
    """DepthwiseConv2D with a per-channel (in x multiplier) fake-quantized kernel."""

    channels_last = 2

    def __init__(self, *args, weight_bits: int = 8, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_bits(weight_bits)

    def call(self, inputs):
        outputs = ops.depthwise_conv(
            inputs,
            self.quantized_kernel(),
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        if self.use_bias:
            shape = (1,) * (len(outputs.shape) - 1) + (-1,)
            if self.data_format == "channels_first":
                shape = (1, -1) + (1,) * (len(outputs.shape) - 2)
            outputs = ops.add(outputs, ops.reshape(self.bias, shape))
        return self.activation(outputs) if self.activation is not None else outputs


@keras.saving.register_keras_serializable(package="kerazoo")
class QuantDense(_WeightQuantMixin, layers.Dense):
    """Dense whose kernel is fake-quantized per output unit (see the module docstring)."""

    def __init__(self, *args, weight_bits: int = 8, **kwargs):
        super().__init__(*args, **kwargs)
        self._init_bits(weight_bits)

    def call(self, inputs, training=None):
        x = ops.matmul(inputs, ops.cast(self.quantized_kernel(), inputs.dtype))
        if self.bias is not None:
            x = ops.add(x, self.bias)
        return self.activation(x) if self.activation is not None else x


QUANT_WEIGHT_LAYERS = (QuantConv2D, QuantDepthwiseConv2D, QuantDense)


def is_qat_model(model) -> bool:
    """Whether `model` (nested models included) holds zoo's fake-quantization layers.

    Example:
        >>> is_qat_model(zoo.create_model("cnn"))
        False
    """
    return any(
        isinstance(layer, (FakeQuant, *QUANT_WEIGHT_LAYERS))
        for layer in model._flatten_layers(include_self=False, recursive=True)
    )
