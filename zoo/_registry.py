"""The model registry: one decorator to add a builder, a few functions to find and build them.

Example:
    >>> from zoo import register_model
    >>> @register_model(task="sequence", input_shape=(None, 4), num_classes=2)
    ... def tiny_gru(input_shape, num_classes, *, units=8):
    ...     '''A one-layer GRU classifier.'''
    ...     ...
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import inspect
import os
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

TASKS = ("image", "sequence")
# What create_model accepts for `weights` besides None and a path, per builder.
PRETRAINED_TAGS = ("imagenet",)
# `create_model(weights=DEFAULT_WEIGHTS)` means the model's own default (`default_weights`):
# "imagenet" for backbone models, as keras.applications does, None (random init) for the others.
DEFAULT_WEIGHTS = "default"


class UnknownModelError(ValueError):
    """Raised for a model name that is not in the registry."""


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What a registered model is and what it expects, read by `finetune` and `convert`.

    Example:
        >>> zoo.model_info("cnn").input_shape
        (28, 28, 1)
    """

    name: str
    task: str
    input_shape: tuple[int | None, ...]
    num_classes: int
    description: str
    params: int
    options: Mapping[str, Any]
    pretrained: tuple[str, ...] = ()
    preprocessing: str = "none"
    min_input_size: int | None = None
    default_weights: str | None = None
    recommended: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)}
        data["options"] = {
            k: list(v) if isinstance(v, tuple) else v for k, v in self.options.items()
        }
        data["input_shape"] = list(self.input_shape)
        data["pretrained"] = list(self.pretrained)
        data["recommended"] = dict(self.recommended)
        return data


@dataclasses.dataclass(frozen=True)
class _Entry:
    name: str
    builder: Callable[..., Any]
    task: str
    input_shape: tuple[int | None, ...]
    num_classes: int
    description: str
    options: Mapping[str, Any]
    pretrained: tuple[str, ...]
    preprocessing: str
    min_input_size: int | None
    default_weights: str | None = None
    recommended: Mapping[str, Any] = dataclasses.field(default_factory=dict)


_REGISTRY: dict[str, _Entry] = {}
# Parameter counts of models registered at run time (not in zoo/_params.json), built once.
_PARAMS_CACHE: dict[str, int] = {}


def register_model(
    *,
    task: str,
    input_shape: tuple[int | None, ...],
    num_classes: int,
    description: str | None = None,
    pretrained: tuple[str, ...] = (),
    preprocessing: str = "none",
    min_input_size: int | None = None,
    options: Mapping[str, Any] | None = None,
    default_weights: str | None = None,
    recommended: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a builder under its function name.

    The builder is called as `builder(input_shape, num_classes, **options)`, always with every
    option (defaults filled in), and returns an uncompiled `keras.Model`. Its keyword-only
    parameters are the model's options, unless `options` declares them (for variants that share
    one option table and forward `**options`); a `weights` keyword (for builders with pretrained
    backbones) is filled by `create_model`.

    Args:
        task: "image" or "sequence"; decides how input shapes are validated and data is fed.
        input_shape: the default input shape, without the batch axis.
        num_classes: the default number of classes.
        description: one line; defaults to the first line of the builder's docstring.
        pretrained: weight tags the builder accepts besides None and a path, e.g. ("imagenet",).
        preprocessing: what the model expects as input, e.g. "raw pixels 0-255".
        min_input_size: the smallest height/width an image model accepts.
        options: option names and defaults, for a builder that takes `**options`.
        default_weights: what `weights="default"` (create_model's default) loads: None (random
            init) or one of `pretrained`, e.g. "imagenet" as keras.applications does.
        recommended: training settings that suit the model, e.g. {"optimizer": "adam",
            "lr_schedule": "plateau", "epochs": 300}; `zoo finetune` uses them for the
            options the user did not set, and `zoo info` shows them.
    """
    if task not in TASKS:
        raise ValueError(f"task should be one of {TASKS}. Received: task={task!r}")
    unknown_tags = set(pretrained) - set(PRETRAINED_TAGS)
    if unknown_tags:
        raise ValueError(
            f"pretrained tags should be among {PRETRAINED_TAGS}. Received: {sorted(unknown_tags)}"
        )
    if default_weights is not None and default_weights not in pretrained:
        raise ValueError(
            f"default_weights should be None or one of pretrained={tuple(pretrained)}. "
            f"Received: default_weights={default_weights!r}"
        )

    def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
        name = builder.__name__
        if name in _REGISTRY:
            raise ValueError(f"A model named {name!r} is already registered.")
        signature = inspect.signature(builder)
        declared = {
            param.name: param.default
            for param in signature.parameters.values()
            if param.kind is inspect.Parameter.KEYWORD_ONLY and param.name != "weights"
        }
        takes_kwargs = any(
            param.kind is inspect.Parameter.VAR_KEYWORD for param in signature.parameters.values()
        )
        if options is not None and not takes_kwargs:
            raise ValueError(f"{name}: a builder given options=... should take **options.")
        accepts_weights = "weights" in signature.parameters
        if pretrained and not accepts_weights:
            raise ValueError(f"{name}: pretrained={pretrained} needs a `weights` keyword.")
        doc_line = (inspect.getdoc(builder) or "").strip().splitlines()
        _REGISTRY[name] = _Entry(
            name=name,
            builder=builder,
            task=task,
            input_shape=tuple(input_shape),
            num_classes=num_classes,
            description=description or (doc_line[0] if doc_line else name),
            options=MappingProxyType({**declared, **(options or {})}),
            pretrained=tuple(pretrained),
            preprocessing=preprocessing,
            min_input_size=min_input_size,
            default_weights=default_weights,
            recommended=MappingProxyType(dict(recommended or {})),
        )
        return builder

    return decorator


def _natural_key(name: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def list_models(pattern: str = "*", *, task: str | None = None) -> list[str]:
    """Registered model names matching a shell-style wildcard, naturally sorted.

    Example:
        >>> zoo.list_models("vgg16*")
        ['vgg16_flatten', 'vgg16_gap', 'vgg16_max']
    """
    names = [
        name
        for name, entry in _REGISTRY.items()
        if fnmatch.fnmatchcase(name, pattern) and (task is None or entry.task == task)
    ]
    return sorted(names, key=_natural_key)


def is_model(name: str) -> bool:
    """Whether `name` is a registered model."""
    return name in _REGISTRY


def _entry(name: str) -> _Entry:
    if not isinstance(name, str) or name not in _REGISTRY:
        close = difflib.get_close_matches(str(name), list(_REGISTRY), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownModelError(
            f"Unknown model {name!r}.{hint} Run `zoo list` to see the {len(_REGISTRY)} models."
        )
    return _REGISTRY[name]


def model_info(name: str) -> ModelInfo:
    """The defaults and data contract of a registered model.

    Never builds a model nor loads weights for the registry's own models: `params` (at the
    model's defaults) comes from zoo/_params.json. A model registered at run time is built once
    per process, with random weights, to count them.

    Example:
        >>> zoo.model_info("lstm").params
        19265
    """
    from zoo._params import stored_params

    entry = _entry(name)
    if name not in _PARAMS_CACHE:
        stored = stored_params().get(name) if entry.builder.__module__.startswith("zoo.") else None
        _PARAMS_CACHE[name] = stored or int(create_model(name, weights=None).count_params())
    return ModelInfo(
        name=entry.name,
        task=entry.task,
        input_shape=entry.input_shape,
        num_classes=entry.num_classes,
        description=entry.description,
        params=_PARAMS_CACHE[name],
        options=entry.options,
        pretrained=entry.pretrained,
        preprocessing=entry.preprocessing,
        min_input_size=entry.min_input_size,
        default_weights=entry.default_weights,
        recommended=entry.recommended,
    )


def _dim(value: Any) -> int | None:
    """One input_shape entry: None, an int, an integral float or a digit string; else TypeError."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    raise TypeError(value)


def _validate_input_shape(entry: _Entry, input_shape: Any) -> tuple[int | None, ...]:
    try:
        if isinstance(input_shape, str | bytes | Mapping):
            raise TypeError(input_shape)
        shape = tuple(_dim(dim) for dim in input_shape)
    except TypeError:
        raise ValueError(
            f"{entry.name}: input_shape should be a tuple of positive ints (or None for a free "
            f"axis), without the batch axis. Received: input_shape={input_shape!r}"
        ) from None
    if any(dim is not None and dim < 1 for dim in shape):
        raise ValueError(
            f"{entry.name}: input_shape dimensions must be positive. Received: input_shape={shape}"
        )
    if entry.task == "image":
        if len(shape) != 3 or None in shape:
            raise ValueError(
                f"{entry.name} is an image model: input_shape should be (height, width, channels)."
                f" Received: input_shape={shape}"
            )
        if entry.min_input_size and min(shape[:2]) < entry.min_input_size:
            raise ValueError(
                f"{entry.name}: height and width should be at least {entry.min_input_size}. "
                f"Received: input_shape={shape}"
            )
    else:
        if len(shape) != 2 or shape[1] is None:
            raise ValueError(
                f"{entry.name} is a sequence model: input_shape should be (timesteps, features), "
                f"with timesteps None for any length. Received: input_shape={shape}"
            )
    return shape


def _validate_num_classes(entry: _Entry, num_classes: Any) -> int:
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(
            f"{entry.name}: num_classes should be an int >= 1 (1 gives a sigmoid output). "
            f"Received: num_classes={num_classes!r}"
        )
    return num_classes


def _validate_options(entry: _Entry, options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        valid = ", ".join(entry.options) or "none"
        raise ValueError(
            f"{entry.name} does not accept option(s) {', '.join(unknown)}. "
            f"Valid options: {valid}. Received: {dict(options)}"
        )


def create_model(
    name: str,
    *,
    input_shape: tuple[int | None, ...] | None = None,
    num_classes: int | None = None,
    weights: str | os.PathLike[str] | None = DEFAULT_WEIGHTS,
    **options: Any,
):
    """Build a registered model: a built, uncompiled `keras.Model` named after the variant.

    Args:
        name: a registered name (see `list_models()`).
        input_shape: without the batch axis. Defaults to the model's own.
        num_classes: 1 gives a sigmoid output, more a softmax. Defaults to the model's own.
        weights: "default" (the model's own: `model_info(name).default_weights`, "imagenet"
            for backbone models, None for the others), None (random init), "imagenet"
            (pretrained backbone, through Keras' download cache), or a file path: the backbone's
            weights (legacy `.h5` as keras.applications downloads, or Keras 3 `.weights.h5`),
            or the whole model's (`.weights.h5`, `.keras`, legacy `.h5`), told apart by content.
        **options: the model's own options (see `model_info(name).options`).

    Example:
        >>> model = zoo.create_model("cnn", input_shape=(32, 32, 3), num_classes=5)
        >>> model.output_shape
        (None, 5)
        >>> body = zoo.create_model("mobilenet_v2_gap", weights=None)  # random init, offline
    """
    from zoo import _weights

    entry = _entry(name)
    weights = resolve_weights(name, weights)
    shape = _validate_input_shape(entry, entry.input_shape if input_shape is None else input_shape)
    classes = _validate_num_classes(
        entry, entry.num_classes if num_classes is None else num_classes
    )
    _validate_options(entry, options)
    return _weights.build_with_weights(entry, shape, classes, weights, {**entry.options, **options})


def resolve_weights(name: str, weights: Any = DEFAULT_WEIGHTS) -> str | None:
    """What `create_model(name, weights=weights)` would load, checked without building anything.

    "default" becomes the model's own default; a tag the model does not take, or a path that
    does not exist, is a one-line ValueError (no Keras import).

    Example:
        >>> zoo.resolve_weights("mobilenet_v2_gap"), zoo.resolve_weights("cnn")
        ('imagenet', None)
    """
    from zoo import _weights

    entry = _entry(name)
    if isinstance(weights, str) and weights == DEFAULT_WEIGHTS:
        return entry.default_weights
    return _weights.check_weights(entry, weights)


def load_model(path: str | os.PathLike[str], *, safe_mode: bool = True):
    """Load a `.keras` file that may hold zoo layers, in Keras' safe mode by default.

    Example:
        >>> model = zoo.load_model("runs/demo/model.keras")
    """
    from zoo import _weights

    return _weights.load_keras_file(path, safe_mode=safe_mode)
