"""The dead-model guard: a one-line warning when a run cannot learn.

Two symptoms, both cheap to see and both seen in real runs that otherwise end "model saved",
exit 0:
- the outputs do not depend on the input (checked when training starts, on a few training
  inputs, in training mode and without changing any variable): a random backbone with frozen
  BatchNorm gives every image the same output (spread 0.0 for MobileNetV2, 4.5e-7 for
  EfficientNetB0), so nothing can be learned;
- the training loss did not move from epoch 1 to epoch 2 (relative change below 1e-4).

Dropout noise in training mode can hide the first symptom; the second then still shows.

Example:
    >>> guard = attach_guard(loop, warn=print)  # before loop.run(...)
    >>> guard_warnings(loop)
    []
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from finetune.model import CLASSIFIER_NAME

SPREAD_TOLERANCE = 1e-5  # relative to the outputs' size; healthy random models give >1e-3
LOSS_TOLERANCE = 1e-4  # relative change of the training loss from epoch 1 to epoch 2

DEAD_OUTPUTS = (
    "the model's outputs do not depend on its input (spread {spread:.1e} over "
    "{count} training inputs): a random backbone with frozen BatchNorm? pass --weights imagenet "
    "(or a weights file), or train it whole with --weights none"
)
STILL_LOSS = (
    "the training loss did not move after epoch 1 ({first:.6g} -> {second:.6g}): "
    "the model is not learning; likely a body frozen with nothing to transfer, outputs that "
    "do not depend on the input, or a learning rate too low (lr={lr:g})"
)


def output_spread(model: Any, x: Any) -> float:
    """How much the classifier's inputs differ across the rows of `x`, relative to their size
    (0: not at all).

    The classifier's inputs rather than the outputs: a saturated softmax gives identical
    outputs for a model that does depend on its input (the tiny cnn on raw 0-255 pixels).
    Training mode (what `fit` sees), through `stateless_call`, so no BatchNorm statistic moves.
    """
    import keras

    try:
        features = keras.Model(model.input, model.get_layer(CLASSIFIER_NAME).input)
    except ValueError:  # not a zoo model: its outputs
        features = model
    values = [v.value for v in features.trainable_variables], [
        v.value for v in features.non_trainable_variables
    ]
    outputs, _ = features.stateless_call(*values, x, training=True)
    out = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    return float(np.max(np.ptp(out, axis=0)) / (1.0 + np.max(np.abs(out))))


class DeadModelGuard:
    """Watches a run for the two symptoms; each warns once, through `echo`, into `warnings`."""

    def __init__(self, sample: Any, echo: Callable[[str], None], lr: float):
        self.sample, self.echo, self.lr = sample, echo, lr
        self.warnings: list[str] = []
        self._checked_outputs = False
        self._first_loss: float | None = None

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self.echo(message)

    def check_outputs(self, model: Any) -> None:
        """The first symptom, once, on the model as the first phase trains it."""
        if self._checked_outputs or self.sample is None or len(self.sample) < 2:
            return
        self._checked_outputs = True
        spread = output_spread(model, self.sample)
        if spread < SPREAD_TOLERANCE:
            self._warn(DEAD_OUTPUTS.format(spread=spread, count=len(self.sample)))

    def check_loss(self, epoch: int, loss: float | None) -> None:
        """The second symptom: only epochs 1 and 2 of a run (0-based 0 and 1) are compared."""
        if loss is None or not np.isfinite(loss):
            return
        if epoch == 0:
            self._first_loss = float(loss)
        elif epoch == 1 and self._first_loss is not None:
            first, self._first_loss = self._first_loss, None
            if abs(loss - first) <= LOSS_TOLERANCE * max(abs(first), 1e-12):
                self._warn(STILL_LOSS.format(first=first, second=float(loss), lr=self.lr))

    def callback(self) -> Any:
        """A Keras callback for every `fit` of the run (the loop keeps one list for all)."""
        import keras

        guard = self

        class Guard(keras.callbacks.Callback):
            warnings = guard.warnings  # the same list, read by `guard_warnings`

            def on_train_begin(self, logs=None):
                guard.check_outputs(self.model)

            def on_epoch_end(self, epoch, logs=None):
                guard.check_loss(epoch, (logs or {}).get("loss"))

        return Guard()


def attach_guard(loop: Any, warn: Callable[[str], None], count: int = 8) -> DeadModelGuard:
    """Watch `loop`'s run: its sample is the first `count` inputs of the training split's first
    batch; its callback joins every `fit` of the loop."""
    sample = None
    if loop.data.train is not None:
        sample = next(iter(loop.data.train))[0][:count]
    guard = DeadModelGuard(sample, warn, loop.cfg.lr)
    loop.callbacks.append(guard.callback())
    return guard


def guard_warnings(loop: Any) -> list[str]:
    """The warnings the guard attached to `loop` gave (for the run's decisions)."""
    return [line for c in loop.callbacks for line in getattr(c, "warnings", [])]
