"""Building the model to fine-tune, freezing it per phase, and compiling it.

Phase 1 trains the head on a frozen body: the nested `backbone` of zoo's backbone variants, or,
when starting `--from` an earlier model without a backbone (cnn, lstm, ...), every layer but the
classifier. Phase 2 unfreezes the top N weighted layers of that body (or all) at a lower learning
rate. BatchNormalization layers of a pretrained body stay frozen throughout, as in Keras'
transfer-learning guide: frozen BN runs in inference mode and keeps its scale/offset fixed.
Freezing itself is zoo's one rule, `zoo.models.backbones.set_backbone_trainable`.

A random backbone (`weights=None`, no `--from`) has nothing to transfer: frozen, with its init
BatchNorm statistics, it gives the same output for every image, so it trains whole in one phase
with BatchNorm in training mode (plan body "random_backbone"); `finetune.batchnorm` then
re-estimates the statistics that lag behind before the model is saved.

Example:
    >>> model, info = build_model(cfg, num_classes=5, input_shape=(28, 28, 1))
    >>> plan = phase_plan(model, cfg, from_used=False)
    >>> set_phase(model, 1, plan, cfg.unfreeze)
    >>> compile_model(model, cfg.lr)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from zoo.runs import RunPaths, read_run_config

CLASSIFIER_NAME = "predictions"
RANDOM_BACKBONE_NOTE = (
    "backbone from random init: training all layers with BatchNorm in training mode; "
    "a frozen random backbone has nothing to transfer"
)


@dataclasses.dataclass(frozen=True)
class PhasePlan:
    """How the epochs split into phases and what phase 1 freezes.

    `body` is "backbone" (a pretrained zoo backbone variant), "all_but_head" (transfer from a
    model without a backbone), "random_backbone" (a backbone variant from random init: one
    phase, everything trainable, BatchNorm in training mode) or "none" (plain training: one
    phase, everything trainable).
    """

    body: str
    head_epochs: int
    total_epochs: int

    @property
    def two_phase(self) -> bool:
        return self.body in ("backbone", "all_but_head")

    def phase_of(self, epoch: int) -> int:
        """The phase (1 or 2) that trains 0-based `epoch`; plain runs are all phase 1."""
        return 1 if not self.two_phase or epoch < self.head_epochs else 2


def _backbone(model: Any) -> Any | None:
    from zoo.models.backbones import BACKBONE_LAYER_NAME

    try:
        return model.get_layer(BACKBONE_LAYER_NAME)
    except ValueError:
        return None


def phase_plan(
    model: Any, epochs: int, head_epochs: int, *, from_used: bool, random_init: bool = False
) -> PhasePlan:
    """Decide the phases: two when there is a pretrained body to freeze, else one phase.

    `random_init`: the model was built with `weights=None` (and not `--from`).
    """
    if _backbone(model) is not None:
        body = "random_backbone" if random_init and not from_used else "backbone"
    elif from_used:
        body = "all_but_head"
    else:
        body = "none"
    head = min(head_epochs, epochs) if body in ("backbone", "all_but_head") else epochs
    return PhasePlan(body=body, head_epochs=head, total_epochs=epochs)


def body_layers(model: Any, plan: PhasePlan) -> list[Any]:
    """The layers phase 1 freezes, bottom to top."""
    if plan.body in ("backbone", "random_backbone"):
        return list(_backbone(model).layers)
    if plan.body == "all_but_head":
        return [layer for layer in model.layers if layer.name != CLASSIFIER_NAME]
    return []


def _is_batch_norm(layer: Any) -> bool:
    import keras

    return isinstance(layer, keras.layers.BatchNormalization)


def set_phase(model: Any, phase: int, plan: PhasePlan, unfreeze: int | str) -> dict[str, Any]:
    """Set `trainable` for `phase`; returns what was done (for the run's decisions).

    Phase 2 unfreezes the top `unfreeze` body layers that have weights ("all": every one).
    A pretrained backbone's BatchNormalization layers stay frozen (its statistics come from a
    large dataset); a body transferred `--from` an earlier run ("all_but_head") trains its
    BatchNorm too: its statistics are the earlier run's small, other dataset's, and frozen they
    cost arrow_head -> osu_leaf transfer 15 points (docs/BENCHMARKS.md). A random backbone trains
    whole, BatchNorm included. The counting and the BatchNorm rule are zoo's
    `set_backbone_trainable`.
    """
    from zoo.models.backbones import set_backbone_trainable

    for layer in model.layers:
        layer.trainable = True
    if plan.body == "random_backbone":
        set_backbone_trainable(_backbone(model), True, train_batchnorm=True)
        return {"phase": phase, "frozen": 0, "batchnorm": "training"}
    if not plan.two_phase:
        return {"phase": phase, "frozen": 0}
    body = body_layers(model, plan)
    target = _backbone(model) if plan.body == "backbone" else body
    if phase == 1:
        set_backbone_trainable(target, False)
        return {"phase": 1, "frozen": len(body)}
    train_batchnorm = plan.body == "all_but_head"
    unfrozen = set_backbone_trainable(target, True if unfreeze == "all" else int(unfreeze),
                                      train_batchnorm=train_batchnorm)  # fmt: skip
    batchnorm = sum(1 for layer in body if _is_batch_norm(layer))
    return {
        "phase": 2,
        "unfrozen_layers": len(unfrozen),
        "top_unfrozen": unfrozen[-3:],
        "batchnorm_frozen": 0 if train_batchnorm else batchnorm,
        **({"batchnorm_training": batchnorm} if train_batchnorm and batchnorm else {}),
    }


def output_activation(model: Any) -> str:
    """The classifier's activation name: "softmax", "sigmoid" or "linear"."""
    layer = model.get_layer(CLASSIFIER_NAME)
    return getattr(layer.activation, "__name__", str(layer.activation))


def loss_for(model: Any) -> Any:
    """Sparse categorical CE for a multi-unit output, binary CE for one unit (logits aware)."""
    import keras

    from_logits = output_activation(model) == "linear"
    if int(model.output_shape[-1]) == 1:
        return keras.losses.BinaryCrossentropy(from_logits=from_logits)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)


def compile_model(model: Any, lr: float) -> None:
    """Compile with Adam(lr), the matching loss and accuracy; loss scaling under mixed_float16."""
    import keras

    from finetune.precision import ensure_loss_scaling

    model.compile(optimizer=keras.optimizers.Adam(lr), loss=loss_for(model), metrics=["accuracy"])
    ensure_loss_scaling(model)


def resolve_from(path: str | os.PathLike[str]) -> tuple[Path, dict[str, Any]]:
    """`--from` -> (the .keras file, the earlier run's config or {} for a bare file)."""
    source = Path(path)
    if source.is_dir():
        keras_file = RunPaths(source).model
        if not keras_file.is_file():
            raise ValueError(
                f"--from should be a run directory holding model.keras, or a .keras file. "
                f"Received: from={str(path)!r} (no model.keras in it)"
            )
        return keras_file, read_run_config(source)
    if source.is_file() and source.suffix == ".keras":
        return source, {}
    raise ValueError(
        f"--from should be a run directory holding model.keras, or a .keras file. "
        f"Received: from={str(path)!r}"
    )


def transfer_input_shape(
    name: str, earlier: Any, given: tuple[int | None, ...] | None
) -> tuple[int | None, ...] | None:
    """The input shape of a run that starts `--from` an earlier run of model `name`.

    An image model keeps the earlier run's shape (its weights were learned at that size). A
    sequence model's weights do not depend on the length, so the new data's length applies:
    the user's `input_shape`, else (None, None) to let the data decide; `build_model` checks
    that the channels per step match.

    Example:
        >>> transfer_input_shape("fcn", [150, 1], None)
        (None, None)
    """
    import zoo

    if zoo.model_info(name).task == "sequence":
        return tuple(given) if given is not None else (None, None)
    return tuple(earlier) if earlier else given


def _check_channels(source: Any, input_shape: tuple[int | None, ...], task: str) -> None:
    """A sequence body transfers between lengths and classes, not between channel counts."""
    theirs, ours = source.input_shape[-1], input_shape[-1]
    if task == "sequence" and theirs != ours:
        raise ValueError(
            f"--from: the earlier model reads {theirs} channel(s) per step but this data has "
            f"{ours}; a sequence model transfers between sets with the same channels. "
            f"Received: {ours} channel(s)"
        )


def copy_weights_except_head(source: Any, target: Any) -> list[str]:
    """Copy every layer's weights from `source` to the same-named layer of `target`, but the head.

    Returns the names copied. A layer whose weights do not fit is a one-line ValueError: the
    earlier model was built with other options or input shape.
    """
    copied = []
    for layer in target.layers:
        if layer.name == CLASSIFIER_NAME or not layer.weights:
            continue
        try:
            other = source.get_layer(layer.name)
        except ValueError:
            raise ValueError(
                f"--from: the earlier model has no layer {layer.name!r}; it should be the same "
                f"zoo model ({target.name}) with the same options. Received: {source.name}"
            ) from None
        ours = [tuple(w.shape) for w in layer.weights]
        theirs = [tuple(w.shape) for w in other.weights]
        if ours != theirs:
            raise ValueError(
                f"--from: layer {layer.name!r} has weight shapes {theirs} in the earlier model but "
                f"{ours} here; use the same model options and input shape. Received: {theirs}"
            )
        layer.set_weights(other.get_weights())
        copied.append(layer.name)
    return copied


def build_model(
    name: str,
    *,
    num_classes: int,
    input_shape: tuple[int | None, ...],
    weights: str | None,
    options: dict[str, Any],
    from_file: Path | None = None,
    safe_mode: bool = True,
) -> tuple[Any, dict[str, Any]]:
    """Build zoo model `name` under the current dtype policy; with `from_file`, load it first.

    A fresh build (rather than editing the loaded model) gives every layer the current dtype
    policy and a classifier sized for `num_classes`; the earlier weights are then copied in.
    """
    import zoo

    model = zoo.create_model(
        name, input_shape=input_shape, num_classes=num_classes, weights=weights, **options
    )
    info: dict[str, Any] = {"weights": weights or "random"}
    if from_file is not None:
        source = zoo.load_model(from_file, safe_mode=safe_mode)
        _check_channels(source, tuple(model.input_shape[1:]), zoo.model_info(name).task)
        info["from"] = str(from_file)
        info["copied_layers"] = copy_weights_except_head(source, model)
        info["classifier"] = f"rebuilt for {num_classes} classes"
        del source
    return model, info
