"""Layers and layer helpers shared by the builders.

Imported only inside builder functions (and by `zoo.load_model`), so that registering the
models, `zoo list` and `zoo info --json` never import Keras.
"""

from __future__ import annotations

import keras
from keras import layers, ops

CLASSIFIER_ACTIVATIONS = ("auto", "softmax", "sigmoid", "linear", None)
PREPROCESSING_MODES = ("caffe", "tf", "torch")

# Per-channel constants of keras.applications' preprocess_input modes.
_CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)
PREPROCESSING_PREFIX = "preprocessing"


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


def _check_mode(mode: str) -> None:
    if mode not in PREPROCESSING_MODES:
        raise ValueError(f"mode should be one of {PREPROCESSING_MODES}. Received: mode={mode!r}")


def _rgb_to_bgr(x, name: str):
    """Reverse the channel axis with weightless standard layers (exact: slices and a concat).

    Keras has no layer that reverses channels, and a 1x1 Conv2D with a permutation kernel would
    add weights that `model.trainable = True` (e.g. a fine-tuning phase) would let training move.
    A trailing unit axis turns the channels into Cropping3D's third spatial axis.
    """
    height, width, channels = x.shape[1:]
    f32 = dict(dtype="float32")
    x = layers.Reshape((height, width, channels, 1), name=f"{name}_split", **f32)(x)
    planes = [
        layers.Cropping3D(((0, 0), (0, 0), (c, channels - 1 - c)), name=f"{name}_ch{c}", **f32)(x)
        for c in reversed(range(channels))
    ]
    x = layers.Concatenate(axis=3, name=f"{name}_bgr", **f32)(planes)
    return layers.Reshape((height, width, channels), name=f"{name}_merge", **f32)(x)


def preprocess(x, mode: str, name: str = PREPROCESSING_PREFIX):
    """Apply a backbone's `preprocess_input` to symbolic raw 0-255 RGB pixels, Keras layers only.

    Modes follow `keras.applications.imagenet_utils.preprocess_input`: "tf" is
    Rescaling(1/127.5, offset=-1); "torch" a per-channel Rescaling ((x/255 - mean) / std);
    "caffe" RGB->BGR, then a per-channel Rescaling(1, offset=-mean). Only stock layers, so a
    saved model loads with `keras.saving.load_model` and no zoo class; float32 under any policy
    (0-255 inputs and the constants lose precision in 16 bits).

    Example:
        >>> inputs = keras.Input((32, 32, 3))
        >>> model = keras.Model(inputs, preprocess(inputs, "tf"))
    """
    _check_mode(mode)
    f32 = dict(dtype="float32")
    if mode == "tf":
        return layers.Rescaling(1.0 / 127.5, offset=-1.0, name=name, **f32)(x)
    if mode == "torch":
        scale = [1.0 / (255.0 * std) for std in _TORCH_STD]
        offset = [-mean / std for mean, std in zip(_TORCH_MEAN, _TORCH_STD, strict=True)]
        return layers.Rescaling(scale, offset=offset, name=name, **f32)(x)
    x = _rgb_to_bgr(x, name)
    return layers.Rescaling(1.0, offset=[-m for m in _CAFFE_BGR_MEAN], name=name, **f32)(x)


@keras.saving.register_keras_serializable(package="kerazoo")
class ImagePreprocessing(layers.Layer):
    """A backbone's `preprocess_input` as one custom layer: the layer of models saved before
    zoo built preprocessing from stock layers (`preprocess`). Kept so those files still load
    (through `zoo.load_model`, which registers it); new models do not use it.

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
        _check_mode(mode)
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


# The padding-aware layers of the convolutional sequence models, registered with Keras wherever
# zoo's layers are (zoo.load_model, the builders).
from zoo._sequence_layers import (  # noqa: E402, F401
    MaskedGlobalAveragePooling1D,
    MaskedMaxPooling1D,
    StepMask,
)
