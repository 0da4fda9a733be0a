"""The run directory's layout, defined once: where a fine-tuning run keeps each file.

`finetune` writes run directories (atomically, see `finetune.rundir`); `convert` and notebooks
read them. Both take the file names from `RunPaths` and the saved config from
`read_run_config`, so the layout is spelled in this one module. No TensorFlow, no Keras.

Example:
    >>> paths = RunPaths("runs/demo")
    >>> paths.model.name, paths.config.name
    ('model.keras', 'config.yaml')
    >>> read_run_config("runs/demo")["data"]
    'builtin:digits'
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.yaml"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
CLASS_NAMES_FILE = "class_names.json"
PRECISION_FILE = "precision.json"
LOGS_DIR = "logs"
CHECKPOINTS_DIR = "checkpoints"
BEST_WEIGHTS_FILE = "best.npz"
STATE_FILE = "state.json"
CURVES_PNG = "training_curves.png"
CONFUSION_PNG = "confusion_matrix.png"


@dataclasses.dataclass(frozen=True)
class RunPaths:
    """Where a run keeps each of its files (see docs/CONTRACTS.md).

    Example:
        >>> RunPaths("runs/demo").epoch_weights(3).name
        'epoch-0003.weights.h5'
    """

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def model(self) -> Path:
        return self.root / MODEL_FILE

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def history(self) -> Path:
        return self.root / HISTORY_FILE

    @property
    def class_names(self) -> Path:
        return self.root / CLASS_NAMES_FILE

    @property
    def precision(self) -> Path:
        return self.root / PRECISION_FILE

    @property
    def logs(self) -> Path:
        return self.root / LOGS_DIR

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS_DIR

    @property
    def best_weights(self) -> Path:
        return self.checkpoints / BEST_WEIGHTS_FILE

    def epoch_weights(self, epoch: int) -> Path:
        # Model + optimizer variables: Keras 3's save_weights includes the optimizer's.
        return self.checkpoints / f"epoch-{epoch:04d}.weights.h5"

    @property
    def state(self) -> Path:
        return self.checkpoints / STATE_FILE

    @property
    def curves_png(self) -> Path:
        return self.root / CURVES_PNG

    @property
    def confusion_png(self) -> Path:
        return self.root / CONFUSION_PNG


def read_run_config(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The run's saved `config.yaml` as a dict; {} when the run has none.

    A run directory without config.yaml (a bare folder holding model.keras) is valid: there is
    nothing to read. A config.yaml that is not YAML, not UTF-8 or not a mapping is a one-line
    ValueError naming the file.

    Example:
        >>> config = read_run_config("runs/demo")
        >>> config["model"], config["input_shape"]
        ('cnn', [28, 28, 1])
    """
    path = RunPaths(Path(run_dir)).config
    if not path.is_file():
        return {}
    return read_yaml_mapping(path)


def read_yaml_mapping(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A YAML file holding a mapping, as a dict (an empty file gives {}).

    Example:
        >>> read_yaml_mapping("runs/demo/config.yaml")["seed"]
        0
    """
    import yaml  # imported late: only readers of run directories need it

    try:
        with open(path, encoding="utf-8") as handle:
            values = yaml.safe_load(handle) or {}
    except yaml.YAMLError as error:
        # PyYAML's messages span several lines; the first names the problem.
        first = str(error).strip().splitlines()[0]
        raise ValueError(f"{str(path)!r} is not valid YAML ({first}).") from None
    except UnicodeDecodeError:
        raise ValueError(
            f"{str(path)!r} should be UTF-8 YAML text. Received: undecodable bytes"
        ) from None
    if not isinstance(values, dict):
        raise ValueError(f"{str(path)!r} should hold a mapping. Received: {type(values).__name__}")
    return values
