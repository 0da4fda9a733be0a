"""What a model file says about itself: class names, task, input shape, model name.

An exported file carries them so that it predicts with names outside its run directory:
- ONNX: `metadata_props` (`kerazoo.class_names` as JSON, `kerazoo.task`, `kerazoo.input_shape`
  as JSON, `kerazoo.model`), written by `convert()` right after the fp32 export. The fp16
  (onnxconverter-common) and int8 (`quantize_static`) lowerings copy `metadata_props` (tested),
  so lowered files keep them with no second write.
- OpenVINO IR: the same keys in the model's `rt_info` under `kerazoo`, copied from the ONNX file.
- A `.keras` file, a run directory, an engine: the run's `config.yaml` beside the file.

`describe(path)` reads them for any artefact: the file's own metadata first, else the run
config beside it (`zoo.runs.read_run_config`), else nothing (`ModelMeta()`).

Example:
    >>> describe("runs/demo/model.int8.onnx").class_names[:3]
    ['0', '1', '2']
    >>> describe("elsewhere/bare.onnx")  # exported by hand, no run beside it
    ModelMeta(class_names=None, task=None, input_shape=None, model=None)
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

PREFIX = "kerazoo."
_JSON_KEYS = ("class_names", "input_shape")
_KEYS = ("class_names", "task", "input_shape", "model")


@dataclasses.dataclass(frozen=True)
class ModelMeta:
    """The facts a model file can carry; None where unknown."""

    class_names: list[str] | None = None
    task: str | None = None
    input_shape: tuple[int | None, ...] | None = None
    model: str | None = None

    def to_props(self) -> dict[str, str]:
        """The `kerazoo.*` string properties (unknown facts are left out).

        Example:
            >>> ModelMeta(class_names=["cat", "dog"], task="image").to_props()
            {'kerazoo.class_names': '["cat", "dog"]', 'kerazoo.task': 'image'}
        """
        props = {}
        for key in _KEYS:
            value = getattr(self, key)
            if value is not None:
                props[PREFIX + key] = json.dumps(list(value)) if key in _JSON_KEYS else str(value)
        return props

    @classmethod
    def from_props(cls, props: dict[str, str]) -> ModelMeta:
        """Read `kerazoo.*` properties back; a value that does not parse is left unknown."""
        values: dict[str, Any] = {}
        for key in _KEYS:
            text = props.get(PREFIX + key)
            if text is None:
                continue
            if key not in _JSON_KEYS:
                values[key] = str(text)
                continue
            try:
                parsed = json.loads(text)
            except ValueError:  # written by someone else: ignore rather than fail to predict
                continue
            if isinstance(parsed, list):
                values[key] = [str(v) for v in parsed] if key == "class_names" else tuple(parsed)
        return cls(**values)

    def or_else(self, other: ModelMeta) -> ModelMeta:
        """This one's facts, with `other`'s filling the unknown ones."""
        return ModelMeta(
            **{key: getattr(self, key) if getattr(self, key) is not None else getattr(other, key)
               for key in _KEYS}
        )  # fmt: skip


def from_run_config(config: dict[str, Any]) -> ModelMeta:
    """The facts a run's config.yaml records (`class_names`, `task`, `input_shape`, `model`).

    Example:
        >>> from_run_config({"model": "cnn", "class_names": [0, 1], "task": "image"}).class_names
        ['0', '1']
    """
    names = config.get("class_names")
    shape = config.get("input_shape")
    return ModelMeta(
        class_names=[str(n) for n in names] if isinstance(names, list) else None,
        task=str(config["task"]) if config.get("task") else None,
        input_shape=tuple(shape) if isinstance(shape, (list, tuple)) else None,
        model=str(config["model"]) if config.get("model") else None,
    )


def run_dir_of(path: str | os.PathLike[str]) -> Path | None:
    """The run directory holding `path` (a run directory itself, or a file or SavedModel
    folder inside one): the folder with a config.yaml; None outside a run.

    Example:
        >>> run_dir_of("runs/demo/model.int8.onnx")
        PosixPath('runs/demo')
    """
    from zoo.runs import RunPaths

    path = Path(path)
    for folder in ([path] if path.is_dir() else []) + [path.parent]:
        if RunPaths(folder).config.is_file():
            return folder
    return None


def run_config_of(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config.yaml of the run holding `path` (`run_dir_of`); {} outside a run."""
    from zoo.runs import read_run_config

    folder = run_dir_of(path)
    return read_run_config(folder) if folder is not None else {}


def beside(path: str | os.PathLike[str]) -> ModelMeta:
    """The facts the run holding `path` records (`ModelMeta()` outside a run)."""
    return from_run_config(run_config_of(path))


def write_onnx(path: str | os.PathLike[str], meta: ModelMeta) -> None:
    """Set `meta`'s properties in an ONNX file's `metadata_props` (others are kept)."""
    import onnx

    props = meta.to_props()
    if not props:
        return
    proto = onnx.load(str(path))
    kept = {p.key: p.value for p in proto.metadata_props if p.key not in props}
    onnx.helper.set_model_props(proto, {**kept, **props})
    onnx.save(proto, str(path))


def read_onnx(path: str | os.PathLike[str]) -> ModelMeta:
    """The `kerazoo.*` metadata_props of an ONNX file (weights are not read)."""
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return ModelMeta.from_props({p.key: p.value for p in proto.metadata_props})


def read_openvino(path: str | os.PathLike[str]) -> ModelMeta:
    """The `kerazoo` rt_info of an OpenVINO IR (`.xml`)."""
    from convert import openvino as ov_convert

    model = ov_convert.read(path)
    props = {
        PREFIX + key: str(model.get_rt_info(["kerazoo", key]).astype(str))
        for key in _KEYS
        if model.has_rt_info(["kerazoo", key])
    }
    return ModelMeta.from_props(props)


def describe(path: str | os.PathLike[str]) -> ModelMeta:
    """What is known about the model in `path`: its own metadata, then its run's config.

    Example:
        >>> describe("runs/demo").model
        'cnn'
    """
    path = Path(path)
    own = ModelMeta()
    if path.suffix == ".onnx":
        own = read_onnx(path)
    elif path.suffix == ".xml":
        own = read_openvino(path)
    return own.or_else(beside(path))


def of_keras(model: Any, source_path: str | os.PathLike[str] | None = None) -> ModelMeta:
    """The facts to stamp on an export of a Keras model: its run's config, then the model.

    Example:
        >>> of_keras(zoo.create_model("lstm")).to_props()["kerazoo.input_shape"]
        '[null, 10]'
    """
    shape = tuple(model.inputs[0].shape[1:])
    task = {3: "image", 2: "sequence"}.get(len(shape))
    own = ModelMeta(task=task, input_shape=shape, model=getattr(model, "name", None))
    run = beside(source_path) if source_path is not None else ModelMeta()
    return run.or_else(own)
