"""The run directory's layout, defined once: where a fine-tuning run keeps each file.

`finetune` writes run directories (atomically, see `finetune.rundir`); `convert` and notebooks
read them. Both take the file names from `RunPaths` and the saved config from
`read_run_config`, so the layout is spelled in this one module. No TensorFlow, no Keras.

The paths a run records (`data`, `from_run`, a `weights` file, `out`) are written absolute, so
`--resume`, `zoo convert RUN` and `zoo evaluate RUN` work from any directory. Runs recorded
before that kept them relative to the directory the run was started from: `read_run_config`
looks for them under the run directory, then that start directory (the run directory minus its
recorded `out`), then the current directory, and `recorded_data` names the fix when none holds it.

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
    """The run's saved `config.yaml` as a dict, recorded paths absolute; {} when it has none.

    A run directory without config.yaml (a bare folder holding model.keras) is valid: there is
    nothing to read. A config.yaml that is not YAML, not UTF-8 or not a mapping is a one-line
    ValueError naming the file. Relative paths (runs recorded before paths were absolute) are
    resolved by `resolve_recorded_paths`; one found nowhere is left as written.

    Example:
        >>> config = read_run_config("runs/demo")
        >>> config["model"], config["input_shape"]
        ('cnn', [28, 28, 1])
    """
    path = RunPaths(Path(run_dir)).config
    if not path.is_file():
        return {}
    return resolve_recorded_paths(read_yaml_mapping(path), run_dir)


# Config keys holding a path (`from` is the YAML spelling of from_run); `data` is a data spec.
PATH_KEYS = ("data", "from_run", "from", "weights")
# `weights` values that are tags, not files.
_WEIGHT_TAGS = ("default", "imagenet", "none", "null", "")


def resolve_recorded_paths(values: dict[str, Any], base: str | os.PathLike[str]) -> dict[str, Any]:
    """`values` with each relative path of PATH_KEYS made absolute where it is found.

    Looked up under `base` (the run directory, or a config file's folder), then the directory
    the run was started from (`base` minus the recorded relative `out`, for runs recorded with
    relative paths), then the current directory. Absolute paths, builtin specs, weight tags and
    paths found nowhere are kept as written.

    Example:
        >>> resolve_recorded_paths({"data": "photos?classes=cat,dog", "out": "runs/a"}, "runs/a")
        {'data': '/home/me/project/photos?classes=cat,dog', 'out': 'runs/a'}
    """
    resolved = dict(values)
    places = _search_places(values, Path(base))
    for key in PATH_KEYS:
        value = values.get(key)
        if not isinstance(value, str) or (key == "weights" and value.lower() in _WEIGHT_TAGS):
            continue
        source, query = spec_path(value) if key == "data" else (value, "")
        if source is None or Path(source).expanduser().is_absolute():
            continue
        found = next((place / source for place in places if (place / source).exists()), None)
        if found is not None:
            resolved[key] = os.path.abspath(found) + query
    return resolved


def recorded_data(run_dir: str | os.PathLike[str], config: dict[str, Any]) -> str | None:
    """The run's `data` spec (from `read_run_config`), or a one-line ValueError when it is a
    relative path that none of the places `resolve_recorded_paths` searches holds.

    Example:
        >>> recorded_data("runs/a", read_run_config("runs/a"))
        '/home/me/project/photos'
    """
    value = config.get("data")
    if not value:
        return None
    source, _ = spec_path(str(value))
    if source is None or Path(source).expanduser().is_absolute() or Path(source).exists():
        return str(value)
    # The current directory is named as such: the message then reads the same everywhere.
    places = [str(p) for p in _search_places(config, Path(run_dir)) if p != Path.cwd()]
    places = f"{', '.join(places)} or the current directory"
    raise ValueError(
        f"{str(RunPaths(Path(run_dir)).config)!r} records data {source!r} relative to the "
        f"directory that run was started from, and none of {places} holds it: run the command "
        f"from that directory, or write the data's absolute path as `data:` in config.yaml "
        f"(zoo convert also takes --calib-data PATH). Received: data={value!r}"
    )


def spec_path(spec: str) -> tuple[str | None, str]:
    """(the path of a data spec, its `?query` text), or (None, "") for builtin:NAME.

    Example:
        >>> spec_path("photos/?classes=cat,dog")
        ('photos/', '?classes=cat,dog')
    """
    source, mark, query = spec.partition("?")  # `?` always starts the query (zoo.data._spec)
    if source.strip().startswith("builtin:"):
        return None, ""
    return source.strip(), mark + query


def _search_places(values: dict[str, Any], base: Path) -> list[Path]:
    places = [base.resolve()]
    out = values.get("out")
    if isinstance(out, str) and out and not Path(out).is_absolute():
        parts = Path(os.path.normpath(out)).parts
        if ".." not in parts and places[0].parts[-len(parts) :] == parts:
            places.append(Path(*places[0].parts[: -len(parts)]))
    places.append(Path.cwd())
    return list(dict.fromkeys(places))


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
