"""kerazoo's model zoo: a registry of Keras 3 model builders.

Example:
    >>> import zoo
    >>> zoo.list_models("*rnn*")
    ['simple_rnn']
    >>> model = zoo.create_model("lstm", input_shape=(None, 10), num_classes=1)

The package imports Keras (and so a backend) only when a model function is first used, so that
`zoo --help` and `import zoo` stay instant.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = [
    "ModelInfo",
    "UnknownModelError",
    "create_model",
    "is_model",
    "list_models",
    "load_model",
    "model_info",
    "register_model",
    "resolve_weights",
]

if TYPE_CHECKING:  # pragma: no cover
    from zoo._registry import (  # noqa: F401
        ModelInfo,
        UnknownModelError,
        create_model,
        is_model,
        list_models,
        load_model,
        model_info,
        register_model,
        resolve_weights,
    )


def __getattr__(name: str) -> Any:
    if name in __all__:
        registry = importlib.import_module("zoo._registry")
        # Importing the builders registers them with the registry.
        importlib.import_module("zoo.models")
        return getattr(registry, name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")
