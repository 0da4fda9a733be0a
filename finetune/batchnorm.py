"""Re-estimating BatchNorm moving statistics after training, so inference mode predicts what
training learned.

A BatchNormalization layer that trains normalises each batch by the batch's own statistics and
keeps a moving average for inference (`moving = momentum * moving + (1 - momentum) * batch`).
From random init, a short run leaves that average far behind the weights it trained
(MobileNetV2's momentum is 0.999: after 300 steps the init statistics still weigh 0.74), so
the saved model can be right in training mode and predict one class for everything in
inference mode. Measured here (docs/DESIGN.md): a from-scratch MobileNetV2 on a 2-class
stripes task, 0.50 inference-mode accuracy as trained, 0.95 after re-estimation.

The fix is torch's `torch.optim.swa_utils.update_bn`: one pass over (a bounded number of
batches of) the training data in training mode, without updating any weight, each trainable
BatchNorm layer's statistics set to the plain average of the batch statistics. Frozen
BatchNorm layers (pretrained statistics, inference mode) are left as they are.

Example:
    >>> from finetune.batchnorm import reestimate_batchnorm
    >>> dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    >>> reestimate_batchnorm(model, dataset, max_batches=50)  # -> layers re-estimated
    52
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

# Enough batches for stable statistics at any batch size we train with; bounded so a large
# training split costs seconds, not an epoch.
MAX_BATCHES = 100
# Before each validation inside `fit` (see `validation_callback`): fewer, as it runs every epoch.
VALIDATION_BATCHES = 20
_TRACED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # see `_batch_statistics`


def _walk(layer: Any) -> list[Any]:
    """`layer` and every layer nested in it (a zoo model nests its backbone)."""
    found = [layer]
    for inner in getattr(layer, "layers", []):
        found.extend(_walk(inner))
    return found


def trained_batchnorm(model: Any) -> list[Any]:
    """The BatchNormalization layers that run in training mode under `fit` (trainable ones)."""
    import keras

    return [
        layer
        for layer in _walk(model)[1:]
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable
    ]


def _batch_statistics(model: Any, layers: list[Any]) -> Callable[[Any], list[Any]]:
    """A compiled function: inputs -> each layer's (mean, variance) over that batch.

    `stateless_call` returns the updated moving statistics instead of assigning them, and with
    momentum 0 (set by the caller) those are the batch's own: nothing in the model changes.
    """
    import tensorflow as tf

    trainable = list(model.trainable_variables)
    frozen = list(model.non_trainable_variables)
    # One traced function per model and set of variables: a fresh tf.function at every
    # validation would be traced again each time (and TensorFlow warns about it).
    key = tuple(id(variable) for variable in trainable + frozen)
    cached = _TRACED.get(model)
    if cached is not None and cached[0] == key:
        return cached[1]
    position = {id(variable): index for index, variable in enumerate(frozen)}
    wanted = [
        position[id(variable)]
        for layer in layers
        for variable in (layer.moving_mean, layer.moving_variance)
    ]

    @tf.function(reduce_retracing=True)
    def statistics(x):
        values = [variable.value for variable in trainable], [v.value for v in frozen]
        _, updated = model.stateless_call(*values, x, training=True)
        return [updated[index] for index in wanted]

    _TRACED[model] = (key, statistics)
    return statistics


def reestimate_batchnorm(model: Any, dataset: Any, max_batches: int = MAX_BATCHES) -> int:
    """Set every trainable BatchNorm layer's moving mean and variance to the average of its
    batch statistics over the first `max_batches` batches of `dataset` ((x, ...) tuples or x).

    No weight is trained and frozen BatchNorm layers keep their statistics. Deterministic for
    a deterministic dataset. Returns how many layers were re-estimated (0: nothing to do).

    Example:
        >>> reestimate_batchnorm(model, train.epoch(0), max_batches=20)
        52
    """
    layers = trained_batchnorm(model)
    if not layers:
        return 0
    momentum = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0  # read when the function is traced, below
        statistics = _batch_statistics(model, layers)
        total, batches = None, 0
        for batch in dataset.take(max_batches):
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            values = [value.numpy().astype("float64") for value in statistics(x)]
            total = values if total is None else [a + b for a, b in zip(total, values, strict=True)]
            batches += 1
    finally:
        for layer, value in zip(layers, momentum, strict=True):
            layer.momentum = value
    if not batches:
        return 0
    variables = [v for layer in layers for v in (layer.moving_mean, layer.moving_variance)]
    for variable, value in zip(variables, total, strict=True):
        variable.assign((value / batches).astype(variable.dtype))
    return len(layers)


def _unaugmented(train_data: Any) -> Any:
    """The run's training split as `TrainData`, without augmentation (its `epoch(0)` order)."""
    from finetune.trainset import TrainData

    if train_data.source != "loader":
        return train_data
    # An augmented stream: read the split as it is instead.
    return TrainData(train_data.data, train_data.seed, train_data.batch_size, augment=False)


def reestimate_for_run(model: Any, train_data: Any, echo: Callable[[str], None]) -> dict | None:
    """`EpochLoop.finish()`'s step: re-estimate on the training split, un-augmented, in the
    order of epoch 0 (drawn from the run's seed), so a resumed run saves the same model.

    Returns the note for the run's decisions, or None when no BatchNorm layer trained.
    """
    if not trained_batchnorm(model):
        return None
    train_data = _unaugmented(train_data)
    count = reestimate_batchnorm(model, train_data.epoch(0), MAX_BATCHES)
    batches = min(train_data.steps, MAX_BATCHES)
    echo(
        f"BatchNorm statistics re-estimated on {batches} training batch(es) ({count} layers): "
        "inference mode now predicts what training learned"
    )
    return {"reestimated_layers": count, "batches": batches}


def validation_callback(train_data: Any, max_batches: int = VALIDATION_BATCHES) -> Any:
    """A Keras callback that re-estimates trained BatchNorm statistics before each validation
    inside `fit`, so val_accuracy (which picks the best epoch) scores the model as it will
    predict. Without it a from-scratch MobileNetV2 scored 0.50 on validation every epoch and
    the run kept epoch 1 (0.73 saved) instead of epoch 3 (0.95 in plain Keras).

    Deterministic (epoch 0's order, the first `max_batches` batches), so a resumed run repeats
    it exactly; the moving statistics it writes are not used by training-mode BatchNorm.

    Example:
        >>> loop.callbacks.append(validation_callback(loop.train_data))
    """
    import keras

    class ReestimateBeforeValidation(keras.callbacks.Callback):
        def on_test_begin(self, logs=None):
            if trained_batchnorm(self.model):
                reestimate_batchnorm(self.model, _unaugmented(train_data).epoch(0), max_batches)

    return ReestimateBeforeValidation()
