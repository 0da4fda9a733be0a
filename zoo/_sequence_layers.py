"""Padding-aware pieces for the convolutional sequence classifiers (`zoo.models.sequence_cnn`).

Keras masks do not reach through Conv1D, BatchNormalization or pooling, and `same` padding,
a conv's bias, BatchNorm's shift and max-pooling all spread padded steps into real ones. With
`masking=True` those models instead carry an explicit step mask (`StepMask`), multiply it back in
(a stock `Multiply`) before every convolution, and pool with the two layers below, so a padded
batch gives what each series gives alone (tests/zoo/test_sequence_cnn.py).

Built from `keras.ops` only, so they export through tf2onnx (Equal/Not, Where, ReduceMin,
MaxPool); registered under the `kerazoo` package, so `zoo.load_model` (or `import zoo._layers`)
loads files that hold them.
"""

from __future__ import annotations

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="kerazoo")
class StepMask(layers.Layer):
    """1.0 at real steps, 0.0 at padded ones, shaped (batch, time, 1).

    A step is padding when all its features equal `mask_value`, as `keras.layers.Masking`
    decides (so a real step that happens to be all `mask_value` counts as padding too).

    Example:
        >>> StepMask()(np.array([[[1.0], [0.0]]])).numpy()[..., 0]
        array([[1., 0.]], dtype=float32)
    """

    def __init__(self, mask_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.mask_value = float(mask_value)

    def call(self, inputs):
        real = ops.any(ops.not_equal(inputs, self.mask_value), axis=-1, keepdims=True)
        return ops.cast(real, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)

    def get_config(self):
        return {**super().get_config(), "mask_value": self.mask_value}


@keras.saving.register_keras_serializable(package="kerazoo")
class MaskedGlobalAveragePooling1D(layers.Layer):
    """The mean over real steps only: `[features, step_mask]` -> (batch, channels).

    An all-padding series gives zeros (the count is floored at one step) rather than NaN.
    """

    def call(self, inputs):
        x, mask = inputs
        total = ops.sum(x * mask, axis=1)
        return total / ops.maximum(ops.sum(mask, axis=1), 1.0)

    def compute_output_shape(self, input_shapes):
        shape = input_shapes[0]
        return (shape[0], shape[-1])


@keras.saving.register_keras_serializable(package="kerazoo")
class MaskedMaxPooling1D(layers.Layer):
    """Max-pooling (stride 1, `same`) that never picks a padded step: `[x, step_mask]` -> x's shape.

    Padded steps are set to each series' minimum over time first (zero padding included), which no
    real value in the window is below, so a window's max is the max of its real steps, as
    `same` pooling of the series alone gives at its end. A finite fill, not -inf: it stays
    finite under float16 and in a BatchNorm's batch statistics.
    """

    def __init__(self, pool_size: int = 3, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = int(pool_size)

    def call(self, inputs):
        x, mask = inputs
        fill = ops.min(x, axis=1, keepdims=True)
        x = ops.where(mask > 0, x, fill)
        return ops.max_pool(x, self.pool_size, strides=1, padding="same")

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}
