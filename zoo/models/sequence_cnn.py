"""Convolutional time-series classifiers: FCN, ResNet1D and InceptionTime, any length and channels.

Layer tables as in the authors' reference implementations: hfawaz/dl-4-tsc
(`classifiers/fcn.py`, `classifiers/resnet.py`) and hfawaz/InceptionTime
(`classifiers/inception.py`). At one channel and two classes they hold 265,986 (fcn), 506,818
(resnet1d) and 422,498 (inception_time) parameters, as those tables give.

Padding. Conv1D and pooling do not carry Keras masks, and `same` padding, biases, BatchNorm and
max-pooling spread padded steps into real ones. `masking=True` computes a step mask from the
input (a step is padding when all its features equal `mask_value`, as keras.layers.Masking
decides), zeroes padded steps before every convolution, pools with `MaskedMaxPooling1D` and
averages over real steps only (`zoo._sequence_layers`): in inference, a padded batch then gives
what each series gives alone. What remains: BatchNorm's batch statistics in training mode still
see the padded steps (the moving statistics are slightly biased towards them), and a real step
whose features all equal `mask_value` is treated as padding. Off by default: equal-length data
(most of the UCR archive) needs no mask, and unmasked models are stock Keras layers only (a
masked model's file loads through `zoo.load_model`).
"""

from __future__ import annotations

from zoo import _checks
from zoo._registry import register_model

_SEQUENCE_DEFAULTS = dict(task="sequence", input_shape=(None, 1), num_classes=2)
# Training that suffices here (docs/BENCHMARKS.md, "Sequence classifiers"). The references train
# Adam at 1e-3 for 1,500-2,000 epochs, halving the rate after 50 epochs without a lower training
# loss, and keep the lowest-loss epoch. finetune's `plateau` halves after 2 epochs without a better
# monitored accuracy, which stalls a long run once training accuracy reaches 1.0; a cosine decay
# over 150 epochs reached 100% on GunPoint. val_split=0 trains on the whole (small) archive
# training split, as the papers do, and selects the epoch on training accuracy then loss: a
# 10-series validation split picked an early epoch (72.7% test against 100%, same settings).
_RECOMMENDED = dict(
    optimizer="adam", lr=1e-3, lr_schedule="cosine", epochs=150, batch_size=16, val_split=0.0
)
# Options every variant takes besides its own table.
_COMMON = dict(masking=False, mask_value=0.0, classifier_activation="auto")
# fcn: one Conv1D -> BatchNorm -> ReLU block per entry of filters/kernel_sizes.
FCN_OPTIONS = dict(filters=(128, 256, 128), kernel_sizes=(8, 5, 3), **_COMMON)
# resnet1d: one residual block per entry of filters, each of len(kernel_sizes) convolutions.
RESNET_OPTIONS = dict(filters=(64, 128, 128), kernel_sizes=(8, 5, 3), **_COMMON)
# inception_time: depth modules of four branches of `filters` each: a `bottleneck`-wide 1x1
# convolution (0: none) feeding kernels kernel_size, //2, //4, and max-pool(3) -> 1x1; a residual
# connection every `residual_every` modules (0: none).
INCEPTION_OPTIONS = dict(
    depth=6, filters=32, bottleneck=32, kernel_size=40, residual_every=3, **_COMMON
)


class _Net:
    """The graph being built and its step mask (None without masking)."""

    def __init__(self, variant: str, input_shape, masking: bool, mask_value: float):
        import keras
        from keras import layers

        from zoo._sequence_layers import StepMask

        self.layers, self.variant, self.count = layers, variant, 0
        self.inputs = keras.Input(shape=input_shape, name="sequence")
        self.mask = None
        self.x = self.inputs
        if _checks.flag(variant, "masking", masking):
            value = _checks.finite_number(variant, "mask_value", mask_value)
            self.mask = StepMask(value, name="step_mask")(self.inputs)
            self.x = self.zero(self.inputs)

    def name(self, kind: str) -> str:
        self.count += 1
        return f"{kind}_{self.count}"

    def zero(self, x):
        """x with padded steps set to 0 (what the next convolution's `same` padding assumes)."""
        if self.mask is None:
            return x
        return self.layers.Multiply(name=self.name("rezero"))([x, self.mask])

    def conv_bn(self, x, filters: int, kernel: int, *, relu: bool = True, bias: bool = True):
        x = self.layers.Conv1D(
            filters, kernel, padding="same", use_bias=bias, name=self.name("conv")
        )(x)
        x = self.layers.BatchNormalization(name=self.name("bn"))(x)
        return self.layers.Activation("relu", name=self.name("relu"))(x) if relu else x

    def finish(self, x, num_classes: int, classifier_activation):
        import keras

        from zoo._layers import classifier
        from zoo._sequence_layers import MaskedGlobalAveragePooling1D

        if self.mask is None:
            x = self.layers.GlobalAveragePooling1D(name="gap")(x)
        else:
            x = MaskedGlobalAveragePooling1D(name="gap")([x, self.mask])
        outputs = classifier(x, num_classes, classifier_activation)
        return keras.Model(self.inputs, outputs, name=self.variant)


def _lists(variant: str, filters, kernel_sizes) -> tuple[tuple[int, ...], tuple[int, ...]]:
    return (
        _checks.int_list(variant, "filters", filters),
        _checks.int_list(variant, "kernel_sizes", kernel_sizes),
    )


@register_model(**_SEQUENCE_DEFAULTS, options=FCN_OPTIONS, recommended=_RECOMMENDED)
def fcn(input_shape, num_classes, **options):
    """Fully convolutional network: Conv1D 128/8, 256/5, 128/3 with BatchNorm, global average pool.

    Wang, Yan and Oates, "Time series classification from scratch with deep neural networks: a
    strong baseline", IJCNN 2017; layer table of hfawaz/dl-4-tsc `classifiers/fcn.py`.
    265,986 parameters at one channel and two classes.

    Example:
        >>> model = zoo.create_model("fcn", input_shape=(150, 1), num_classes=2)
        >>> small = zoo.create_model("fcn", filters=(16, 32), kernel_sizes=(8, 5), masking=True)
    """
    filters, kernels = _lists("fcn", options["filters"], options["kernel_sizes"])
    if len(filters) != len(kernels):
        raise ValueError(
            "fcn: filters and kernel_sizes should have one entry per block. "
            f"Received: filters={filters}, kernel_sizes={kernels}"
        )
    net = _Net("fcn", input_shape, options["masking"], options["mask_value"])
    x = net.x
    for width, kernel in zip(filters, kernels, strict=True):
        x = net.zero(net.conv_bn(x, width, kernel))
    return net.finish(x, num_classes, options["classifier_activation"])


def _residual_block(net: _Net, x, width: int, kernels: tuple[int, ...]):
    """len(kernels) conv-BN(-ReLU) layers plus a shortcut: 1x1 conv + BN where the width changes,
    BN alone where it does not (as the reference's third block), then add and ReLU."""
    y = x
    for index, kernel in enumerate(kernels):
        y = net.conv_bn(y, width, kernel, relu=index < len(kernels) - 1)
        if index < len(kernels) - 1:
            y = net.zero(y)
    shortcut = x
    if int(x.shape[-1]) != width:
        shortcut = net.layers.Conv1D(width, 1, name=net.name("shortcut_conv"))(shortcut)
    shortcut = net.layers.BatchNormalization(name=net.name("shortcut_bn"))(shortcut)
    y = net.layers.Add(name=net.name("add"))([shortcut, y])
    return net.zero(net.layers.Activation("relu", name=net.name("relu"))(y))


@register_model(**_SEQUENCE_DEFAULTS, options=RESNET_OPTIONS, recommended=_RECOMMENDED)
def resnet1d(input_shape, num_classes, **options):
    """Residual network: three blocks of Conv1D 8/5/3 (64, 128, 128 filters), global average pool.

    Ismail Fawaz, Forestier, Weber, Idoumghar and Muller, "Deep learning for time series
    classification: a review", Data Mining and Knowledge Discovery 2019 (after Wang et al. 2017);
    layer table of hfawaz/dl-4-tsc `classifiers/resnet.py`. 506,818 parameters at one channel
    and two classes.

    Example:
        >>> model = zoo.create_model("resnet1d", input_shape=(None, 12), num_classes=9)
        >>> small = zoo.create_model("resnet1d", filters=(16, 32), kernel_sizes=(5, 3))
    """
    filters, kernels = _lists("resnet1d", options["filters"], options["kernel_sizes"])
    net = _Net("resnet1d", input_shape, options["masking"], options["mask_value"])
    x = net.x
    for width in filters:
        x = _residual_block(net, x, width, kernels)
    return net.finish(x, num_classes, options["classifier_activation"])


def _inception_module(net: _Net, x, filters: int, bottleneck: int, kernel_size: int):
    """Four branches concatenated, BN, ReLU. The 1x1 bottleneck is skipped for one-channel input,
    as the reference does; its convolutions have no bias (the BN after the concat supplies it)."""
    from zoo._sequence_layers import MaskedMaxPooling1D

    layers = net.layers
    source = x
    if bottleneck and int(x.shape[-1]) > 1:
        source = layers.Conv1D(bottleneck, 1, use_bias=False, name=net.name("bottleneck"))(x)
    branches = [
        layers.Conv1D(filters, k, padding="same", use_bias=False, name=net.name("conv"))(source)
        for k in (kernel_size, kernel_size // 2, kernel_size // 4)
    ]
    if net.mask is None:
        pooled = layers.MaxPooling1D(3, strides=1, padding="same", name=net.name("pool"))(x)
    else:
        pooled = MaskedMaxPooling1D(3, name=net.name("pool"))([x, net.mask])
    branches.append(layers.Conv1D(filters, 1, use_bias=False, name=net.name("pool_conv"))(pooled))
    x = layers.Concatenate(name=net.name("concat"))(branches)
    x = layers.BatchNormalization(name=net.name("bn"))(x)
    return layers.Activation("relu", name=net.name("relu"))(x)


def _inception_shortcut(net: _Net, residual, x):
    layers = net.layers
    y = layers.Conv1D(int(x.shape[-1]), 1, use_bias=False, name=net.name("shortcut_conv"))(residual)
    y = layers.BatchNormalization(name=net.name("shortcut_bn"))(y)
    return layers.Activation("relu", name=net.name("relu"))(
        layers.Add(name=net.name("add"))([y, x])
    )


def _inception_options(options) -> tuple[int, int, int, int, int]:
    check = _checks.positive_int
    depth = check("inception_time", "depth", options["depth"])
    filters = check("inception_time", "filters", options["filters"])
    bottleneck = check("inception_time", "bottleneck", options["bottleneck"], minimum=0)
    kernel = check("inception_time", "kernel_size", options["kernel_size"], minimum=4)
    every = check("inception_time", "residual_every", options["residual_every"], minimum=0)
    return depth, filters, bottleneck, kernel, every


@register_model(
    **_SEQUENCE_DEFAULTS,
    options=INCEPTION_OPTIONS,
    recommended=_RECOMMENDED,
)
def inception_time(input_shape, num_classes, **options):
    """One InceptionTime network: six inception modules (kernels 40/20/10, max-pool), residuals.

    Ismail Fawaz, Lucas, Forestier, Pelletier, Schmidt, Weber, Webb, Idoumghar, Muller and
    Petitjean, "InceptionTime: finding AlexNet for time series classification", Data Mining and
    Knowledge Discovery 2020; layer table of hfawaz/InceptionTime `classifiers/inception.py`
    (its kernel_size=41 becomes 40, halved twice: 40, 20, 10). The paper's ensemble averages five
    such networks trained from different initialisations; this is one of them. 422,498
    parameters at one channel and two classes.

    Example:
        >>> model = zoo.create_model("inception_time", input_shape=(251, 1), num_classes=3)
        >>> small = zoo.create_model("inception_time", depth=3, filters=8, kernel_size=8)
    """
    depth, filters, bottleneck, kernel, every = _inception_options(options)
    net = _Net("inception_time", input_shape, options["masking"], options["mask_value"])
    x = residual = net.x
    for index in range(depth):
        x = _inception_module(net, x, filters, bottleneck, kernel)
        closes_residual = bool(every) and index % every == every - 1
        if closes_residual:
            x = _inception_shortcut(net, residual, x)
        x = net.zero(x)
        if closes_residual:
            residual = x
    return net.finish(x, num_classes, options["classifier_activation"])
