"""Small shapes and random data that keep the parametrised zoo suite fast."""

from __future__ import annotations

import numpy as np

import zoo

SMALL_IMAGE = 32  # the smallest size keras.applications backbones accept
SEQUENCE_LENGTH = 7
# The head each backbone body runs with under a second backend (default: gap); flatten on vgg16,
# whose flatten head is the smallest (efficientnet_b0_flatten at 224x224 is the costliest build).
SECOND_BACKEND_HEADS = {"vgg16": "flatten", "resnet50": "max"}


def models_for_backend(task: str | None = None) -> list[str]:
    """The models a registry-wide test runs: all of them under TensorFlow, fewer under another.

    CI runs tests/zoo under TensorFlow, then again under JAX (`make test-zoo-jax`) to prove the
    builders do not depend on the backend. The 12 backbone entries are 4 keras.applications bodies
    x 3 pooling heads (flatten, gap, max) built by one function, so under a second backend one
    head per body proves the same: `gap`, except where `SECOND_BACKEND_HEADS` names another so
    that every head runs at least once. Every other model has a builder of its own and runs.

    Example:
        >>> models_for_backend(task="sequence")  # all six: none is a backbone
    """
    import keras

    names = zoo.list_models(task=task)
    if keras.backend.backend() == "tensorflow":
        return names

    def runs(name: str) -> bool:
        if not zoo.model_info(name).pretrained:
            return True
        body, head = name.rsplit("_", 1)
        return head == SECOND_BACKEND_HEADS.get(body, "gap")

    return [name for name in names if runs(name)]


def small_input_shape(name: str) -> tuple:
    """The model's default shape, shrunk to 32x32 for backbones (their minimum)."""
    info = zoo.model_info(name)
    if info.task == "image" and info.min_input_size:
        return (SMALL_IMAGE, SMALL_IMAGE, info.input_shape[-1])
    return info.input_shape


def random_inputs(name: str, batch: int = 2, length: int = SEQUENCE_LENGTH, seed: int = 0):
    """Inputs in the range the model expects: 0-255 pixels, or unit-scale sequence features."""
    rng = np.random.default_rng(seed)
    shape = small_input_shape(name)
    if zoo.model_info(name).task == "image":
        return rng.uniform(0, 255, size=(batch, *shape)).astype("float32")
    return rng.normal(size=(batch, length, shape[-1])).astype("float32")


def random_labels(num_classes: int, batch: int = 2, seed: int = 0):
    rng = np.random.default_rng(seed)
    if num_classes == 1:
        return rng.integers(0, 2, size=(batch, 1)).astype("float32")
    return rng.integers(0, num_classes, size=(batch,))


def compile_for(model, num_classes: int):
    loss = "binary_crossentropy" if num_classes == 1 else "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss)
    return model
