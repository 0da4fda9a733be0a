"""The reference convolutional classifier for small images."""

from __future__ import annotations

from collections.abc import Sequence

from zoo import _checks
from zoo._registry import register_model


def _smallest_input(filters: Sequence[int], kernel_size: int) -> int:
    # Each conv trims kernel_size - 1 pixels; every conv but the last is followed by a 2x2 pool.
    size = 1
    for index in reversed(range(len(filters))):
        if index < len(filters) - 1:
            size *= 2
        size += kernel_size - 1
    return size


@register_model(task="image", input_shape=(28, 28, 1), num_classes=10)
def cnn(
    input_shape,
    num_classes,
    *,
    filters: Sequence[int] = (32, 64, 64),
    kernel_size: int = 3,
    dense_units: int = 64,
    dropout: float = 0.0,
    classifier_activation: str | None = "auto",
):
    """Conv-pool stack, dense layer and classifier: the reference 28x28 digit CNN.

    At its defaults: Conv2D(32) -> MaxPool -> Conv2D(64) -> MaxPool -> Conv2D(64) -> Flatten ->
    Dense(64) -> Dense(10, softmax), 93,322 parameters.

    Args:
        filters: filters of each 3x3 ReLU convolution; depth is its length.
        kernel_size: side of the square convolution kernels.
        dense_units: width of the hidden dense layer.
        dropout: rate of a Dropout before the classifier; 0 adds none.
        classifier_activation: "auto", "softmax", "sigmoid", or "linear"/None for logits.

    Example:
        >>> model = zoo.create_model("cnn", filters=(16, 32), dropout=0.25)
    """
    import keras  # here, not at module level: registering stays free of Keras
    from keras import layers

    from zoo._layers import classifier

    filters = _checks.int_list("cnn", "filters", filters)
    kernel_size = _checks.positive_int("cnn", "kernel_size", kernel_size)
    dense_units = _checks.positive_int("cnn", "dense_units", dense_units)
    dropout = _checks.fraction("cnn", "dropout", dropout)
    smallest = _smallest_input(filters, kernel_size)
    if min(input_shape[:2]) < smallest:
        raise ValueError(
            f"cnn with filters={filters} and kernel_size={kernel_size} needs images of at least "
            f"{smallest}x{smallest}. Received: input_shape={tuple(input_shape)}"
        )
    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    for index, width in enumerate(filters):
        x = layers.Conv2D(width, kernel_size, activation="relu", name=f"conv{index + 1}")(x)
        if index < len(filters) - 1:
            x = layers.MaxPooling2D(2, name=f"pool{index + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", name="dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    outputs = classifier(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name="cnn")
