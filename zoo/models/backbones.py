"""Feature-extractor heads on keras.applications backbones.

Each variant is `<backbone>_<head>`: a frozen backbone whose BatchNorm layers stay in inference
mode even once it is unfrozen (see `set_backbone_trainable`; `finetune` trains a random backbone
whole, BatchNorm included), then one of three heads built by the same function:

- `flatten`: Flatten -> Dense(128, relu) -> classifier (the reference VGG16 head);
- `gap`: GlobalAveragePooling2D -> [Dense] -> [Dropout] -> classifier;
- `max`: GlobalMaxPooling2D -> [Dense] -> [Dropout] -> classifier.

The backbone's own `preprocess_input` is built in (stock Keras layers from
`zoo._layers.preprocess`, or the backbone's own layers for EfficientNet), so every variant takes
raw RGB pixels in 0-255. Weights default to ImageNet's (`default_weights="imagenet"`), as in
keras.applications; `weights=None` gives random init.

Keras is imported inside the functions: registering the variants (`import zoo`, `zoo list`)
stays free of it.
"""

from __future__ import annotations

import dataclasses

from zoo import _checks
from zoo._registry import register_model

BACKBONE_LAYER_NAME = "backbone"


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    constructor: str  # the keras.applications function
    preprocessing: str | None  # zoo._layers.preprocess mode; None when the backbone has its own


BACKBONES = {
    "vgg16": BackboneSpec("VGG16", "caffe"),
    "resnet50": BackboneSpec("ResNet50", "caffe"),
    "mobilenet_v2": BackboneSpec("MobileNetV2", "tf"),
    "efficientnet_b0": BackboneSpec("EfficientNetB0", None),
}
# keras.layers class of each head's pooling.
_POOLING = {"flatten": "Flatten", "gap": "GlobalAveragePooling2D", "max": "GlobalMaxPooling2D"}
# The options every head variant takes: hidden_units (a Dense(relu) before the classifier; 0 for
# none), dropout (before the classifier), freeze_backbone, include_preprocessing (the backbone's
# preprocess_input as a layer, so inputs are raw 0-255 RGB) and classifier_activation.
HEAD_OPTIONS = dict(
    hidden_units=0,
    dropout=0.0,
    freeze_backbone=True,
    include_preprocessing=True,
    classifier_activation="auto",
)
_FLATTEN_OPTIONS = {**HEAD_OPTIONS, "hidden_units": 128}
_HEAD_DEFAULTS = dict(
    task="image",
    input_shape=(224, 224, 3),
    num_classes=10,
    pretrained=("imagenet",),
    default_weights="imagenet",
    preprocessing="raw RGB pixels in [0, 255]",
    min_input_size=32,
)


def set_backbone_trainable(
    backbone, trainable: bool | int, *, train_batchnorm: bool = False
) -> list[str]:
    """Unfreeze all (True), none (False) or the top N weighted layers of a body; returns the
    names of the layers left trainable, bottom to top.

    The one freezing rule of the toolkit (`finetune` uses it for every phase). `backbone` is a
    model (zoo's nested `backbone`) or a list of layers. N counts layers that have weights,
    BatchNormalization included. BatchNorm stays frozen unless `train_batchnorm`: a frozen
    BatchNormalization layer runs in inference mode in Keras 3, and freezing is the only thing
    that keeps it there (a nested `backbone(x, training=False)` is overridden by the outer
    model's `training=True` during `fit`). Pretrained statistics want that; a random backbone
    does not (its init statistics make every image look the same), so it passes
    `train_batchnorm=True`. Every layer's flag is set here, not left to the container's.

    Example:
        >>> set_backbone_trainable(model.get_layer("backbone"), 20)  # the top 20 weighted layers
        >>> set_backbone_trainable(model.get_layer("backbone"), True, train_batchnorm=True)
    """
    from keras import layers

    body = list(backbone) if isinstance(backbone, (list, tuple)) else list(backbone.layers)
    weighted = [layer for layer in body if layer.weights]
    count = len(weighted) if trainable is True else min(int(trainable), len(weighted))
    top = {id(layer) for layer in weighted[len(weighted) - count :]}
    if not isinstance(backbone, (list, tuple)):
        backbone.trainable = count > 0
    unfrozen = []
    for layer in body:
        batch_norm = isinstance(layer, layers.BatchNormalization)
        layer.trainable = id(layer) in top and (train_batchnorm or not batch_norm)
        if layer.trainable:
            unfrozen.append(layer.name)
    return unfrozen


def _create_head_model(
    variant: str,
    input_shape,
    num_classes: int,
    *,
    weights,
    hidden_units: int,
    dropout: float,
    freeze_backbone: bool,
    include_preprocessing: bool,
    classifier_activation: str | None,
):
    import keras
    from keras import layers

    from zoo._layers import classifier, preprocess

    backbone_name, head = variant.rsplit("_", 1)
    spec = BACKBONES[backbone_name]
    if input_shape[-1] != 3:
        raise ValueError(
            f"{variant}: backbones take RGB images, so input_shape should end in 3 channels. "
            f"Received: input_shape={tuple(input_shape)}"
        )
    hidden_units = _checks.positive_int(variant, "hidden_units", hidden_units, minimum=0)
    dropout = _checks.fraction(variant, "dropout", dropout)
    freeze_backbone = _checks.flag(variant, "freeze_backbone", freeze_backbone)
    include_preprocessing = _checks.flag(variant, "include_preprocessing", include_preprocessing)
    build_backbone = getattr(keras.applications, spec.constructor)
    # EfficientNet (v1) always carries its own Rescaling/Normalization layers.
    backbone = build_backbone(include_top=False, weights=weights, input_shape=tuple(input_shape))
    backbone.name = BACKBONE_LAYER_NAME
    set_backbone_trainable(backbone, not freeze_backbone)

    inputs = keras.Input(shape=input_shape, name="image")
    x = inputs
    if include_preprocessing and spec.preprocessing:
        x = preprocess(x, spec.preprocessing)
    x = backbone(x, training=False)
    x = getattr(layers, _POOLING[head])(name=f"{head}_pool")(x)
    if hidden_units:
        x = layers.Dense(int(hidden_units), activation="relu", name="head_dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_dropout")(x)
    outputs = classifier(x, num_classes, classifier_activation)
    return keras.Model(inputs, outputs, name=variant)


@register_model(**_HEAD_DEFAULTS, options=_FLATTEN_OPTIONS)
def vgg16_flatten(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen VGG16 -> Flatten -> Dense(128) -> classifier: the reference transfer model.

    17,927,370 parameters at 224x224x3 and 10 classes, 3,212,682 of them trainable.

    Example:
        >>> model = zoo.create_model("vgg16_flatten", num_classes=5)  # ImageNet weights
        >>> model = zoo.create_model("vgg16_flatten", weights=None)  # random init, offline
    """
    return _create_head_model("vgg16_flatten", input_shape, num_classes, weights=weights, **options)


@register_model(**_HEAD_DEFAULTS, options=HEAD_OPTIONS)
def vgg16_gap(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen VGG16 -> global average pooling -> [dropout] -> classifier."""
    return _create_head_model("vgg16_gap", input_shape, num_classes, weights=weights, **options)


@register_model(**_HEAD_DEFAULTS, options=HEAD_OPTIONS)
def vgg16_max(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen VGG16 -> global max pooling -> [dropout] -> classifier."""
    return _create_head_model("vgg16_max", input_shape, num_classes, weights=weights, **options)


@register_model(**_HEAD_DEFAULTS, options=_FLATTEN_OPTIONS)
def resnet50_flatten(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen ResNet50 -> Flatten -> Dense(128) -> classifier."""
    return _create_head_model(
        "resnet50_flatten", input_shape, num_classes, weights=weights, **options
    )


@register_model(**_HEAD_DEFAULTS, options=HEAD_OPTIONS)
def resnet50_gap(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen ResNet50 -> global average pooling -> [dropout] -> classifier."""
    return _create_head_model("resnet50_gap", input_shape, num_classes, weights=weights, **options)


@register_model(**_HEAD_DEFAULTS, options=HEAD_OPTIONS)
def resnet50_max(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen ResNet50 -> global max pooling -> [dropout] -> classifier."""
    return _create_head_model("resnet50_max", input_shape, num_classes, weights=weights, **options)


@register_model(**_HEAD_DEFAULTS, options=_FLATTEN_OPTIONS)
def mobilenet_v2_flatten(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen MobileNetV2 -> Flatten -> Dense(128) -> classifier."""
    return _create_head_model(
        "mobilenet_v2_flatten", input_shape, num_classes, weights=weights, **options
    )


@register_model(**_HEAD_DEFAULTS, options=HEAD_OPTIONS)
def mobilenet_v2_gap(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen MobileNetV2 -> global average pooling -> [dropout] -> classifier."""
    return _create_head_model(
        "mobilenet_v2_gap", input_shape, num_classes, weights=weights, **options
    )


@register_model(**_HEAD_DEFAULTS, options=HEAD_OPTIONS)
def mobilenet_v2_max(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen MobileNetV2 -> global max pooling -> [dropout] -> classifier."""
    return _create_head_model(
        "mobilenet_v2_max", input_shape, num_classes, weights=weights, **options
    )


@register_model(**_HEAD_DEFAULTS, options=_FLATTEN_OPTIONS)
def efficientnet_b0_flatten(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen EfficientNetB0 -> Flatten -> Dense(128) -> classifier."""
    return _create_head_model(
        "efficientnet_b0_flatten", input_shape, num_classes, weights=weights, **options
    )


@register_model(**_HEAD_DEFAULTS, options=HEAD_OPTIONS)
def efficientnet_b0_gap(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen EfficientNetB0 -> global average pooling -> [dropout] -> classifier."""
    return _create_head_model(
        "efficientnet_b0_gap", input_shape, num_classes, weights=weights, **options
    )


@register_model(**_HEAD_DEFAULTS, options=HEAD_OPTIONS)
def efficientnet_b0_max(input_shape, num_classes, *, weights="imagenet", **options):
    """Frozen EfficientNetB0 -> global max pooling -> [dropout] -> classifier."""
    return _create_head_model(
        "efficientnet_b0_max", input_shape, num_classes, weights=weights, **options
    )
