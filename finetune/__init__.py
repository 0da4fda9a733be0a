"""kerazoo fine-tuning: data loading (`finetune.data`), two-phase training and run directories.

Example:
    >>> from finetune import FinetuneConfig, run_finetune
    >>> result = run_finetune(FinetuneConfig(model="cnn", data="builtin:digits", out="runs/a"))
    >>> result.metrics["test"]["accuracy"], result.model_path
    (0.97, PosixPath('runs/a/model.keras'))

Imports are lazy (as in `zoo`), so `zoo finetune --help` does not load TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "FinetuneConfig": "finetune.config",
    "load_config": "finetune.config",
    "merge_config": "finetune.config",
    "save_config": "finetune.config",
    "FinetuneResult": "finetune.train",
    "run_finetune": "finetune.train",
    "NonFiniteLossError": "finetune.loop",
    "PrecisionDecision": "finetune.precision",
    "measure_precision": "finetune.precision",
    "choose_policy": "finetune.precision",
    "transfer_demo": "finetune.demo",
    "LoadedData": "finetune.data",
    "load_data": "finetune.data",
    "list_builtin": "finetune.data",
    "parse_data_spec": "finetune.data",
}
__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover
    from finetune.config import FinetuneConfig, load_config, merge_config, save_config  # noqa: F401
    from finetune.data import LoadedData, list_builtin, load_data, parse_data_spec  # noqa: F401
    from finetune.demo import transfer_demo  # noqa: F401
    from finetune.loop import NonFiniteLossError  # noqa: F401
    from finetune.precision import PrecisionDecision, choose_policy, measure_precision  # noqa: F401
    from finetune.train import FinetuneResult, run_finetune  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'finetune' has no attribute {name!r}")
