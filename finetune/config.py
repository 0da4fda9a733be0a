"""The fine-tuning run's options: one dataclass, validated at the top, saved with the run.

Example:
    >>> cfg = FinetuneConfig(model="cnn", data="builtin:digits", epochs=3, out="runs/demo")
    >>> cfg = merge_config(cfg, {"lr": 3e-4})
    >>> save_config(cfg, "runs/demo/config.yaml")
    >>> load_config("runs/demo/config.yaml").lr
    0.0003
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import yaml

from zoo.runs import read_yaml_mapping, recorded_data, resolve_recorded_paths, spec_path

PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
OPTIMIZERS = ("adam", "adamw", "sgd")
LR_SCHEDULES = ("constant", "cosine", "step", "plateau")
# The training recipe: None in FinetuneConfig means "not set by the user"; finetune.recipe
# resolves it (a model's recommended value, else the default) and the run records both.
RECIPE_FIELDS = (
    "optimizer",
    "weight_decay",
    "momentum",
    "lr_schedule",
    "warmup_epochs",
    "label_smoothing",
    "patience",
)
DEFAULT_MODEL = "cnn"
DEFAULT_DATA = "builtin:digits"
# YAML keys that may be spelled like the CLI option (dashes) or with `from` for `from_run`.
_ALIASES = {"from": "from_run", "options": "model_options", "option": "model_options"}
# Options that describe how to run, not what is trained: they may change on --resume.
# strategy/cpu_devices say where it runs: a multi-worker run may be resumed on one machine.
RUN_ONLY_FIELDS = (
    "out",
    "resume",
    "overwrite",
    "quiet",
    "epochs",
    "strategy",
    "cpu_devices",
    "unsafe_load",
)


@dataclasses.dataclass
class FinetuneConfig:
    """Every option of a fine-tuning run, with the bundled default (cnn on digits, < 1 min).

    Args:
        model: a zoo model name (`zoo list`).
        data: a data SPEC: a class-per-folder directory, a `.npz`, or `builtin:NAME[?query]`.
        weights: "default" (the model's own: ImageNet for backbone models, random init for the
            others; random init with `from_run`, whose weights are copied), "imagenet",
            "none"/None (random init) or a weights file for the model. A run's config.yaml
            records what was used, so `weights: null` there means random init.
        from_run: an earlier run directory or `.keras` file to start from; all layers but the
            classifier keep their weights, the classifier is rebuilt for the new classes.
        epochs: total epochs over both phases.
        head_epochs: epochs of phase 1 (frozen backbone, head only).
        unfreeze: layers at the top of the backbone to unfreeze in phase 2: an int or "all".
        lr: phase-1 learning rate (of `optimizer`).
        fine_tune_lr: phase-2 learning rate, usually ~10x smaller.
        batch_size: examples per step (the global batch, over all replicas).
        precision: "auto" (measured), "float32", "mixed_float16" or "mixed_bfloat16".
        augment: random image augmentation of the training split.
        val_split: fraction of the training data held out for validation when the data has no
            validation split.
        seed: seeds Python, NumPy, TensorFlow/Keras and the data split and shuffles.
        deterministic: also enable TensorFlow op determinism (bit-identical repeated runs).
        out: the run directory; None picks `runs/<model>-<timestamp>`.
        resume: continue an interrupted run in `out`.
        overwrite: delete a non-empty `out` first.
        quiet: print nothing but errors.
        model_options: the model's own options (`zoo info NAME`).
        input_shape: the model's input shape without the batch axis; None uses the model's own.
        strategy: "auto", "one", "mirrored" or "multiworker" (see finetune.distribute);
            batch_size is then the global batch over all replicas.
        cpu_devices: split the CPU into N logical devices before TensorFlow starts (for
            `mirrored` without GPUs); 0 leaves the devices as they are.
        scale_lr: "none" or "linear" (both learning rates x the number of replicas).
        unsafe_load: let a `from_run` `.keras` file run code stored in it (Lambda layers);
            only for files you trust.
        optimizer: "adam", "adamw" or "sgd". None (not set): the model's recommended one,
            else adam. Each recipe option below is None until `finetune.recipe` resolves it.
        weight_decay: decoupled weight decay (>= 0); None: 0.004 with adamw, else 0.
        momentum: SGD momentum in [0, 1); sgd only. None: 0.9 with sgd.
        lr_schedule: "constant", "cosine", "step" (x0.1 at each third of the epochs after
            warm-up) or "plateau" (x0.5 after 2 epochs without improvement). None: constant.
        warmup_epochs: epochs of linear warm-up to the learning rate; None: 0.
        label_smoothing: in [0, 1); None: 0.
        patience: stop after this many epochs without improvement of the monitored metric
            (the best epoch is kept); 0 or None: never stop early.
        qat: quantization-aware fine-tuning of the `from_run` model as a whole (`finetune.qat`):
            its classifier kept, BatchNorm folded, weights and activations fake-quantized, one
            phase at `fine_tune_lr`, float32. `data`, `val_split` and `seed` left at their
            defaults take the parent run's, so the held-out splits stay held out.
    """

    model: str = DEFAULT_MODEL
    data: str = DEFAULT_DATA
    weights: str | None = "default"
    from_run: str | None = None
    epochs: int = 3
    head_epochs: int = 1
    unfreeze: int | str = "all"
    lr: float = 1e-3
    fine_tune_lr: float = 1e-4
    batch_size: int = 32
    precision: str = "float32"
    augment: bool = False
    val_split: float = 0.2
    seed: int = 0
    deterministic: bool = False
    out: str | None = None
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False
    model_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    input_shape: tuple[int | None, ...] | None = None
    strategy: str = "auto"
    cpu_devices: int = 0
    scale_lr: str = "none"
    unsafe_load: bool = False
    optimizer: str | None = None
    weight_decay: float | None = None
    momentum: float | None = None
    lr_schedule: str | None = None
    warmup_epochs: int | None = None
    label_smoothing: float | None = None
    patience: int | None = None
    qat: bool = False

    def __post_init__(self) -> None:
        validate_config(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON types: tuples become lists."""
        data = dataclasses.asdict(self)
        if data["input_shape"] is not None:
            data["input_shape"] = list(data["input_shape"])
        return data


def _field_names() -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(FinetuneConfig))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(condition: bool, rule: str, **received: Any) -> None:
    if not condition:
        shown = ", ".join(f"{key}={value!r}" for key, value in received.items())
        raise ValueError(f"{rule} Received: {shown}")


def parse_input_shape(value: Any) -> tuple[int | None, ...] | None:
    """`"32,32,3"`, `"(None, 10)"`, `[32, 32, 3]` or None -> a tuple of ints/None.

    Example:
        >>> parse_input_shape("None,10")
        (None, 10)
    """
    if value is None:
        return None
    if isinstance(value, str):
        parts = [p.strip() for p in value.strip().strip("()[]").split(",") if p.strip()]
        value = [None if p.lower() in ("none", "null", "?") else p for p in parts]
    try:
        shape = tuple(None if dim is None else int(dim) for dim in value)
    except (TypeError, ValueError):
        raise ValueError(
            "input_shape should be comma-separated positive ints (None for a free axis), "
            f"e.g. 32,32,3 or None,10. Received: input_shape={value!r}"
        ) from None
    _check(
        bool(shape) and all(dim is None or dim > 0 for dim in shape),
        "input_shape dimensions should be positive ints or None.",
        input_shape=value,
    )
    return shape


def parse_unfreeze(value: Any) -> int | str:
    """`"all"` or a non-negative int (as int or string)."""
    if isinstance(value, str) and value.strip().lower() == "all":
        return "all"
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = -1
    _check(
        number >= 0 and not isinstance(value, bool) and str(value).strip().lstrip("-").isdigit(),
        "unfreeze should be 'all' or a non-negative number of backbone layers.",
        unfreeze=value,
    )
    return number


def validate_config(cfg: FinetuneConfig) -> None:
    """Check every field; raise a one-line ValueError naming the rule and the value."""
    _check(
        isinstance(cfg.model, str) and bool(cfg.model),
        "model should be a zoo name.",
        model=cfg.model,
    )
    _check(
        isinstance(cfg.data, str) and bool(cfg.data), "data should be a SPEC string.", data=cfg.data
    )
    for name in ("epochs", "head_epochs", "batch_size", "seed"):
        value = getattr(cfg, name)
        minimum = 1 if name in ("epochs", "batch_size") else 0
        _check(
            _is_int(value) and value >= minimum,
            f"{name} should be an int >= {minimum}.",
            **{name: value},
        )
    for name in ("lr", "fine_tune_lr"):
        value = getattr(cfg, name)
        _check(
            isinstance(value, int | float) and not isinstance(value, bool) and value > 0,
            f"{name} should be a positive number.",
            **{name: value},
        )
    _check(
        isinstance(cfg.val_split, int | float) and 0.0 <= cfg.val_split < 1.0,
        "val_split should be in [0, 1).",
        val_split=cfg.val_split,
    )
    _check(
        cfg.precision in PRECISIONS,
        f"precision should be one of {', '.join(PRECISIONS)}.",
        precision=cfg.precision,
    )
    cfg.unfreeze = parse_unfreeze(cfg.unfreeze)
    cfg.input_shape = parse_input_shape(cfg.input_shape)
    _check(
        isinstance(cfg.model_options, dict),
        "model_options should be a mapping of option names to values.",
        model_options=cfg.model_options,
    )
    _check(
        not (cfg.resume and cfg.overwrite),
        "Use either resume or overwrite, not both.",
        resume=cfg.resume,
        overwrite=cfg.overwrite,
    )
    _validate_recipe(cfg)
    _validate_qat(cfg)
    from finetune.distribute import validate_strategy

    validate_strategy(cfg.strategy, cfg.cpu_devices, cfg.scale_lr)
    if cfg.weights is not None and str(cfg.weights).lower() in ("none", "null", ""):
        cfg.weights = None
    _absolute_paths(cfg)


def _absolute_paths(cfg: FinetuneConfig) -> None:
    """Paths that exist, made absolute: the run records them so, and its config.yaml then works
    from any directory (--resume, zoo convert RUN). A path that does not exist is kept as given,
    so its error names what the user typed."""

    def absolute(path: str) -> str | None:
        path = os.path.expanduser(path.strip())
        return os.path.abspath(path) if path and os.path.exists(path) else None

    source, query = spec_path(cfg.data)
    if source is not None and (found := absolute(source)):
        cfg.data = found + query
    for name in ("from_run", "weights"):
        value = getattr(cfg, name)
        if isinstance(value, str) and value not in ("default", "imagenet"):
            setattr(cfg, name, absolute(value) or value)


def _validate_qat(cfg: FinetuneConfig) -> None:
    """QAT fine-tunes a trained model (`from_run`) in float32 (fake quantization is float32)."""
    _check(
        not cfg.qat or bool(cfg.from_run),
        "--qat fine-tunes a trained model: pass --from RUN_DIR (or a .keras file).",
        qat=cfg.qat,
        from_run=cfg.from_run,
    )
    _check(
        not cfg.qat or cfg.precision == "float32",
        "--qat trains in float32 (the fake quantization computes in float32).",
        precision=cfg.precision,
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _validate_recipe(cfg: FinetuneConfig) -> None:
    """The recipe options: each None (not set) or valid, and consistent with each other."""
    for name, choices in (("optimizer", OPTIMIZERS), ("lr_schedule", LR_SCHEDULES)):
        value = getattr(cfg, name)
        if isinstance(value, str):
            value = value.strip().lower()
            setattr(cfg, name, value)
        _check(
            value is None or value in choices,
            f"{name} should be one of {', '.join(choices)}.",
            **{name: value},
        )
    for name in ("warmup_epochs", "patience"):
        value = getattr(cfg, name)
        _check(
            value is None or (_is_int(value) and value >= 0),
            f"{name} should be an int >= 0.",
            **{name: value},
        )
    for name, upper in (("weight_decay", None), ("momentum", 1.0), ("label_smoothing", 1.0)):
        value = getattr(cfg, name)
        rule = f"in [0, {upper:g})" if upper else ">= 0"
        _check(
            value is None
            or (_is_number(value) and value >= 0 and (upper is None or value < upper)),
            f"{name} should be a number {rule}.",
            **{name: value},
        )
    _check(
        cfg.momentum is None or cfg.optimizer == "sgd",
        "momentum applies to --optimizer sgd only (adam and adamw keep their own moments).",
        momentum=cfg.momentum,
        optimizer=cfg.optimizer,
    )
    _check(
        cfg.warmup_epochs is None or cfg.warmup_epochs < cfg.epochs,
        "warmup_epochs should be fewer than epochs (warm-up leaves at least one epoch).",
        warmup_epochs=cfg.warmup_epochs,
        epochs=cfg.epochs,
    )


def _normalise_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    known = _field_names()
    result: dict[str, Any] = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        name = _ALIASES.get(name, name)
        if name not in known:
            raise ValueError(
                f"Unknown config key {key!r}. Valid keys: {', '.join(known)}. Received: {key!r}"
            )
        result[name] = value
    return result


def merge_config(base: FinetuneConfig, overrides: Mapping[str, Any]) -> FinetuneConfig:
    """A new config: `base` with `overrides` on top; None values do not override.

    `model_options` are merged key by key, so `--option dropout=0.2` keeps the file's others.

    Example:
        >>> merge_config(FinetuneConfig(), {"epochs": 5, "lr": None}).epochs
        5
    """
    values = base.to_dict()
    for key, value in _normalise_keys(overrides).items():
        if value is None:
            continue
        if key == "model_options":
            values[key] = {**values[key], **dict(value)}
        else:
            values[key] = value
    return FinetuneConfig(**values)


def config_from_dict(values: Mapping[str, Any]) -> FinetuneConfig:
    """A config from plain values (a parsed YAML file), defaults for the rest.

    `weights: null` keeps meaning random init (as a run's config.yaml records it), where a CLI
    option left at None means "not given".
    """
    cfg = merge_config(FinetuneConfig(), values)
    if "weights" in values and values["weights"] is None:
        cfg.weights = None
    return cfg


def load_config(path: str | os.PathLike[str]) -> FinetuneConfig:
    """Read a YAML config file; unknown keys and bad values are one-line ValueErrors.

    A run's own config.yaml is accepted too: its resolved facts (num_classes, recipe, ...) are
    left out, so `--config runs/a/config.yaml --out runs/b` repeats run a.
    """
    if not os.path.isfile(path):
        raise ValueError(f"Config file {str(path)!r} does not exist.")
    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
    except yaml.YAMLError as error:
        first = str(error).strip().splitlines()[0]
        raise ValueError(f"Config file {str(path)!r} is not valid YAML: {first}") from None
    if not isinstance(values, dict):
        raise ValueError(
            f"Config file {str(path)!r} should hold a mapping of options. "
            f"Received: {type(values).__name__}"
        )
    values = resolve_recorded_paths(values, os.path.dirname(os.path.abspath(path)))
    return config_from_dict({k: v for k, v in values.items() if k not in resolved_keys()})


def config_yaml(cfg: FinetuneConfig, **extra: Any) -> str:
    """The YAML text of `cfg` plus resolved facts (e.g. num_classes) appended under their keys.

    `out` is written absolute, like the other paths (see `_absolute_paths`).
    """
    values = cfg.to_dict()
    if values.get("out"):
        values["out"] = os.path.abspath(values["out"])
    return yaml.safe_dump({**values, **extra}, sort_keys=False)


def save_config(cfg: FinetuneConfig, path: str | os.PathLike[str], **extra: Any) -> None:
    """Write `cfg` (plus `extra` resolved facts) as YAML, atomically."""
    from finetune.rundir import atomic_write_text

    atomic_write_text(path, config_yaml(cfg, **extra))


def resolved_keys() -> tuple[str, ...]:
    """Keys written next to the options in RUN_DIR/config.yaml that are facts, not options."""
    return ("num_classes", "class_names", "task", "precision_requested", "recipe")


def config_from_run_yaml(path: str | os.PathLike[str]) -> FinetuneConfig:
    """Read RUN_DIR/config.yaml back, ignoring the resolved facts written beside the options.

    Relative paths (runs recorded before paths were absolute) are looked up under the run
    directory, then where the run started, then here; data found nowhere is a one-line error.
    """
    run_dir = os.path.dirname(os.path.abspath(path))
    values = resolve_recorded_paths(read_yaml_mapping(path), run_dir)
    recorded_data(run_dir, values)
    return config_from_dict({k: v for k, v in values.items() if k not in resolved_keys()})
