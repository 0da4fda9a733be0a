"""The training recipe: optimizer, learning-rate schedule, label smoothing and patience.

`FinetuneConfig` keeps the recipe options the user did not set as None; `resolve_recipe` fills
them (a model's recommended value where the registry gives one, else the default below) into a
`Recipe`, which the run records under `recipe:` in config.yaml and a resume reads back.

The schedule is a function of the epoch (over the whole run, both phases) times the phase's own
learning rate, applied by `keras.callbacks.LearningRateScheduler` at each epoch's start; so a
resumed run sets the same rate as an uninterrupted one without any saved schedule state.
`plateau` uses `keras.callbacks.ReduceLROnPlateau`, whose counters go into the checkpoint.

Example:
    >>> recipe = resolve_recipe(FinetuneConfig(lr_schedule="cosine", warmup_epochs=1, epochs=5))
    >>> [round(lr_factor(recipe, e, 5), 3) for e in range(5)]
    [0.5, 1.0, 0.854, 0.5, 0.146]
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from finetune.config import RECIPE_FIELDS

# The defaults where neither the user nor the model's recommendation sets a value.
DEFAULTS: dict[str, Any] = {
    "optimizer": "adam",
    "lr_schedule": "constant",
    "warmup_epochs": 0,
    "label_smoothing": 0.0,
    "patience": 0,
}
# Keras' own AdamW default; adam and sgd decay nothing unless asked.
ADAMW_WEIGHT_DECAY = 0.004
SGD_MOMENTUM = 0.9
# plateau: halve the rate after this many epochs without improvement.
PLATEAU_FACTOR, PLATEAU_PATIENCE = 0.5, 2
# step: x0.1 at each third of the epochs after warm-up.
STEP_RATE, STEP_PARTS = 0.1, 3


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The resolved recipe, and where each value came from ("user", "model" or "default")."""

    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float | None = None
    lr_schedule: str = "constant"
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    patience: int = 0
    source: dict[str, str] = dataclasses.field(default_factory=dict, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_recipe(cfg: Any, recommended: Mapping[str, Any] | None = None) -> Recipe:
    """User value, else the model's `recommended` value, else the default, per option.

    Example:
        >>> resolve_recipe(FinetuneConfig(optimizer="sgd")).momentum
        0.9
    """
    recommended = recommended or {}
    values: dict[str, Any] = {}
    source: dict[str, str] = {}
    for name in RECIPE_FIELDS:
        given = getattr(cfg, name)
        if given is not None:
            values[name], source[name] = given, "user"
        elif recommended.get(name) is not None:
            values[name], source[name] = recommended[name], "model"
        else:
            values[name], source[name] = _default(name, values), "default"
    if values["optimizer"] != "sgd":
        values["momentum"] = None
    return Recipe(**values, source=source)


def _default(name: str, values: dict[str, Any]) -> Any:
    """The default of `name`; weight decay and momentum depend on the optimizer (set first)."""
    if name == "weight_decay":
        return ADAMW_WEIGHT_DECAY if values.get("optimizer") == "adamw" else 0.0
    if name == "momentum":
        return SGD_MOMENTUM if values.get("optimizer") == "sgd" else None
    return DEFAULTS[name]


def recipe_from_record(record: Mapping[str, Any] | None, cfg: Any) -> Recipe:
    """The Recipe a run recorded in config.yaml (`recipe:`), or resolved anew if it has none."""
    if not record:
        return resolve_recipe(cfg)
    known = {f.name for f in dataclasses.fields(Recipe)}
    return Recipe(**{k: v for k, v in record.items() if k in known})


def make_optimizer(recipe: Recipe, lr: float) -> Any:
    """A fresh Keras optimizer for one phase.

    Example:
        >>> make_optimizer(Recipe(optimizer="sgd", momentum=0.9), 0.01).momentum
        0.9
    """
    import keras

    decay = recipe.weight_decay or None  # None: Keras skips the decay step entirely
    if recipe.optimizer == "adamw":
        return keras.optimizers.AdamW(lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(lr, momentum=recipe.momentum or 0.0, weight_decay=decay)
    return keras.optimizers.Adam(lr, weight_decay=decay)


def one_hot_labels(model: Any, recipe: Recipe) -> bool:
    """Label smoothing of a softmax output needs one-hot labels: Keras 3.15's
    SparseCategoricalCrossentropy has no `label_smoothing`, CategoricalCrossentropy does."""
    return recipe.label_smoothing > 0 and int(model.output_shape[-1]) > 1


def loss_for(model: Any, recipe: Recipe) -> Any:
    """The loss of `model`'s output (sigmoid or softmax, logits aware), with label smoothing."""
    import keras

    from finetune.model import loss_for as plain_loss
    from finetune.model import output_activation

    if recipe.label_smoothing <= 0:
        return plain_loss(model)
    from_logits = output_activation(model) == "linear"
    if int(model.output_shape[-1]) == 1:
        return keras.losses.BinaryCrossentropy(
            from_logits=from_logits, label_smoothing=recipe.label_smoothing
        )
    return keras.losses.CategoricalCrossentropy(
        from_logits=from_logits, label_smoothing=recipe.label_smoothing
    )


def compile_recipe(model: Any, lr: float, recipe: Recipe) -> None:
    """Compile `model` for one phase: the recipe's optimizer at `lr`, its loss, accuracy;
    loss scaling under mixed_float16."""
    from finetune.precision import ensure_loss_scaling

    model.compile(
        optimizer=make_optimizer(recipe, lr), loss=loss_for(model, recipe), metrics=["accuracy"]
    )
    ensure_loss_scaling(model)


def _keras_factor(schedule: Any, step: int) -> float:
    return float(schedule(step))


def lr_factor(recipe: Recipe, epoch: int, total_epochs: int) -> float:
    """The multiplier of the phase's learning rate in `epoch` (0-based) of a `total_epochs` run.

    Warm-up: (epoch + 1) / (warmup + 1). Then over the remaining n = total - warmup epochs at
    t = epoch - warmup: cosine 0.5 * (1 + cos(pi * t / n)) (Keras' CosineDecay), step
    0.1 ** floor(t / ceil(n / 3)) (Keras' ExponentialDecay, staircase), constant and plateau 1
    (plateau's reductions are ReduceLROnPlateau's, applied to the optimizer directly).
    """
    import keras

    warmup = recipe.warmup_epochs
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    t, n = epoch - warmup, max(total_epochs - warmup, 1)
    if recipe.lr_schedule == "cosine":
        return _keras_factor(keras.optimizers.schedules.CosineDecay(1.0, decay_steps=n), t)
    if recipe.lr_schedule == "step":
        every = max(1, math.ceil(n / STEP_PARTS))
        schedule = keras.optimizers.schedules.ExponentialDecay(
            1.0, decay_steps=every, decay_rate=STEP_RATE, staircase=True
        )
        return _keras_factor(schedule, t)
    return 1.0
