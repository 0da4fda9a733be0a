"""What a SOURCE given to `zoo convert` is: `resolve_source(path) -> Source`.

A SOURCE is a `.keras` file, a fine-tuning run directory (read through `zoo.runs`: its
`model.keras`, and from `config.yaml` the `data` that is the default calibration data and the
`class_names` calibration data must match), or an `.onnx` file. Running artefacts is
`convert.runners`' job.

Example:
    >>> src = resolve_source("runs/demo")
    >>> src.kind, src.model_path.name, src.data_spec
    ('run', 'model.keras', 'builtin:digits')
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

SOURCE_KINDS = ("keras", "run", "onnx")


@dataclasses.dataclass(frozen=True)
class Source:
    """A resolved SOURCE.

    `model_path` is the `.keras` file (None for an ONNX source), `onnx_path` the ONNX file (None
    unless the source is one), `data_spec` the run's `data` from `config.yaml` (the default
    calibration data), `stem` the default artefact name without suffix.
    """

    path: Path
    kind: str
    model_path: Path | None = None
    onnx_path: Path | None = None
    run_dir: Path | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    data_spec: str | None = None
    safe_mode: bool = True

    @property
    def class_names(self) -> list[str] | None:
        """The class names the run was trained on (its config.yaml), None when unknown."""
        names = self.config.get("class_names")
        return [str(name) for name in names] if isinstance(names, list) else None

    @property
    def stem(self) -> Path:
        base = self.model_path or self.onnx_path
        assert base is not None
        return base.with_suffix("")

    def load_model(self):
        """The Keras model (ValueError for an ONNX source, which has none)."""
        if self.model_path is None:
            raise ValueError(f"{str(self.path)!r} is an ONNX file: it has no Keras model.")
        import zoo

        return zoo.load_model(self.model_path, safe_mode=self.safe_mode)


def resolve_source(source: str | os.PathLike[str], *, safe_mode: bool = True) -> Source:
    """Resolve SOURCE: a `.keras` file, a run directory (RUN_DIR/model.keras), or an `.onnx` file.

    `safe_mode=False` lets the Keras model run code stored in it (Lambda layers): trusted files only.

    Example:
        >>> resolve_source("model.keras").kind
        'keras'
    """
    path = Path(source)
    if path.is_dir():
        from zoo.runs import RunPaths, read_run_config

        model_path = RunPaths(path).model
        if not model_path.is_file():
            raise ValueError(
                f"SOURCE should be a .keras file, a run directory holding model.keras, or an "
                f".onnx file. Received: {str(path)!r} (a directory without model.keras)"
            )
        config = read_run_config(path)
        data = config.get("data")
        return Source(
            path=path,
            kind="run",
            model_path=model_path,
            run_dir=path,
            config=config,
            data_spec=str(data) if data else None,
            safe_mode=safe_mode,
        )
    if not path.exists():
        raise ValueError(f"SOURCE {str(path)!r} does not exist.")
    if path.suffix == ".keras":
        return Source(path=path, kind="keras", model_path=path, safe_mode=safe_mode)
    if path.suffix == ".onnx":
        from convert.preflight import load_onnx

        load_onnx(path)  # a one-line ValueError for a file that is not ONNX
        return Source(path=path, kind="onnx", onnx_path=path)
    raise ValueError(
        f"SOURCE should be a .keras file, a run directory or an .onnx file. Received: {str(path)!r}"
    )
