"""Layers and layer helpers shared by the builders."""

from __future__ import annotations

import keras
from keras import layers, ops

CLASSIFIER_ACTIVATIONS = ("auto", "softmax", "sigmoid", "linear", None)
PREPROCESSING_MODES = ("caffe", "tf", "torch")

# Per-channel constants of keras.applications' preprocess_input modes.
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def classifier(x, num_classes: int, activation: str | None = "auto"):
    """The output layer: float32 under any dtype policy, named `predictions`.

    `activation="auto"` gives a sigmoid for one class and a softmax for more; "linear" or None
    gives raw logits.
    """
    if activation not in CLASSIFIER_ACTIVATIONS:
        raise ValueError(
            f"classifier_activation should be one of {CLASSIFIER_ACTIVATIONS}. "
            f"Received: classifier_activation={activation!r}"
        )
    if activation == "auto":
        activation = "sigmoid" if num_classes == 1 else "softmax"
    # float32 here keeps softmax/sigmoid and the loss numerically safe under mixed precision.
    return layers.Dense(
        num_classes, activation=activation or "linear", dtype="float32", name="predictions"
    )(x)


@keras.saving.register_keras_serializable(package="kerazoo")
class ImagePreprocessing(layers.Layer):
    """A backbone's `preprocess_input` as a layer, so models take raw 0-255 RGB pixels.

    Modes follow `keras.applications.imagenet_utils.preprocess_input`: "caffe" (RGB->BGR, minus
    the ImageNet mean), "tf" (scale to [-1, 1]) and "torch" (scale to [0, 1], then normalise).

    Example:
        >>> layer = ImagePreprocessing("tf")
        >>> layer(np.full((1, 2, 2, 3), 255.0)).numpy().max()
        1.0
    """

    def __init__(self, mode: str, **kwargs):
        # float32 whatever the policy: the constants and 0-255 inputs lose precision in 16 bits.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if mode not in PREPROCESSING_MODES:
            raise ValueError(
                f"mode should be one of {PREPROCESSING_MODES}. Received: mode={mode!r}"
            )
        self.mode = mode

    def call(self, inputs):
        x = ops.cast(inputs, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "torch":
            return (x / 255.0 - ops.convert_to_tensor(_TORCH_MEAN, self.compute_dtype)) / (
                ops.convert_to_tensor(_TORCH_STD, self.compute_dtype)
            )
        return ops.flip(x, axis=-1) - ops.convert_to_tensor(_CAFFE_BGR_MEAN, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
