"""What a path given to `zoo convert` / `zoo bench` is, and how to run it.

`resolve_source` turns a SOURCE (a `.keras` file, a fine-tuning run directory, or an `.onnx`
file) into a `Source`; `open_artifact` turns any artefact (`.keras`, `.onnx`, a SavedModel
directory, a TensorRT `.engine`/`.plan`) into a `Runner` with one `run(x) -> list[np.ndarray]`
method, so the parity gate and the benchmark share one way of executing things.

Example:
    >>> src = resolve_source("runs/demo")
    >>> src.kind, src.model_path.name, src.data_spec
    ('run', 'model.keras', 'builtin:digits')
    >>> runner = open_artifact("runs/demo/model.onnx")
    >>> runner.runtime, runner.input_name
    ('onnxruntime-fp32', 'image')
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

SOURCE_KINDS = ("keras", "run", "onnx")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


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


def _read_run_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.is_file():
        return {}
    import yaml

    try:
        config = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ValueError(f"{str(path)!r} is not valid YAML ({error}).") from None
    if not isinstance(config, dict):
        raise ValueError(f"{str(path)!r} should hold a mapping. Received: {type(config).__name__}")
    return config


def resolve_source(source: str | os.PathLike[str], *, safe_mode: bool = True) -> Source:
    """Resolve SOURCE: a `.keras` file, a run directory (RUN_DIR/model.keras), or an `.onnx` file.

    `safe_mode=False` lets the Keras model run code stored in it (Lambda layers): trusted files only.

    Example:
        >>> resolve_source("model.keras").kind
        'keras'
    """
    path = Path(source)
    if path.is_dir():
        model_path = path / "model.keras"
        if not model_path.is_file():
            raise ValueError(
                f"SOURCE should be a .keras file, a run directory holding model.keras, or an "
                f".onnx file. Received: {str(path)!r} (a directory without model.keras)"
            )
        config = _read_run_config(path)
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


def onnx_precision(model: Any) -> str:
    """ "int8" for a QDQ/integer graph, "fp16" for float16 weights, else "fp32".

    Example:
        >>> onnx_precision("model.int8.onnx")
        'int8'
    """
    import onnx

    proto = (
        onnx.load(str(model), load_external_data=False) if not hasattr(model, "graph") else model
    )
    ops = {node.op_type for node in proto.graph.node}
    if ops & {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul"}:
        return "int8"
    if any(init.data_type == onnx.TensorProto.FLOAT16 for init in proto.graph.initializer):
        return "fp16"
    return "fp32"


class Runner:
    """Runs one artefact on float32 numpy batches. Subclasses set the attributes below.

    `input_shape` has None for every dynamic axis (batch always; time for sequence models).
    """

    runtime: str = "?"
    input_name: str = "input"
    input_shape: tuple[int | None, ...] = ()
    output_names: list[str] = []

    def run(self, x: Any) -> list[Any]:  # pragma: no cover - interface
        raise NotImplementedError


class OnnxRunner(Runner):
    """ONNX Runtime on the CPU (or the providers given)."""

    def __init__(self, path: str | os.PathLike[str], *, threads: int | None = None, providers=None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        from convert.preflight import load_onnx

        load_onnx(path)  # garbage files get the same one-line error everywhere
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=providers or ["CPUExecutionProvider"]
            )
        except Exception as error:  # onnxruntime's Fail/InvalidGraph/NotImplemented...
            first = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
            raise ValueError(
                f"ONNX Runtime cannot load {str(path)!r} (an operator or type it does not "
                f"implement?): {first}"
            ) from None
        self.runtime = f"onnxruntime-{onnx_precision(path)}"
        spec = self.session.get_inputs()[0]
        self.input_name = spec.name
        self.input_shape = tuple(d if isinstance(d, int) else None for d in spec.shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, x):
        return self.session.run(None, {self.input_name: x})


class SavedModelRunner(Runner):
    """A SavedModel's `serve` endpoint in TensorFlow."""

    runtime = "tensorflow-saved_model"

    def __init__(self, path: str | os.PathLike[str]):
        import tensorflow as tf

        self.loaded = tf.saved_model.load(str(path))
        function = self.loaded.serve
        spec = function.input_signature[0] if function.input_signature else None
        concrete = function.get_concrete_function() if spec is not None else None
        self.input_name = getattr(spec, "name", None) or "input"
        self.input_shape = tuple(spec.shape) if spec is not None else ()
        outputs = concrete.structured_outputs if concrete is not None else {}
        self.output_names = list(outputs) if isinstance(outputs, dict) else ["output_0"]

    def run(self, x):
        outputs = self.loaded.serve(x)
        if isinstance(outputs, dict):
            return [outputs[name].numpy() for name in self.output_names]
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [y.numpy() for y in outputs]


class KerasRunner(Runner):
    """A Keras model: eagerly (`model(x)`) or through a traced `tf.function` (`compiled=True`)."""

    def __init__(self, model: Any, *, compiled: bool = False):
        self.model = model
        tensor = model.inputs[0]
        self.input_name = getattr(tensor, "name", None) or "input"
        self.input_shape = (None, *tensor.shape[1:])
        self.output_names = list(getattr(model, "output_names", None) or ["output_0"])
        self.runtime = "keras-function" if compiled else "keras-eager"
        self._call = model.predict_on_batch if compiled else model
        self._compiled = compiled

    def run(self, x):
        import numpy as np

        outputs = self._call(x) if self._compiled else self._call(x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [np.asarray(y, dtype=np.float32) for y in outputs]


class TensorRTEngineRunner(Runner):
    """A TensorRT engine through `convert.tensorrt.TensorRTRunner` (GPU machines only)."""

    runtime = "tensorrt"

    def __init__(self, path: str | os.PathLike[str]):
        from convert import tensorrt

        available, reason = tensorrt.is_available()
        if not available:
            raise RuntimeError(f"Cannot run {str(path)!r}: {reason}.")
        self.engine = tensorrt.TensorRTRunner(str(path))
        self.input_name = self.engine.input_names[0]
        self.output_names = list(self.engine.output_names)
        try:  # TensorRT reports dynamic dims as -1.
            shape = self.engine._engine.get_tensor_shape(self.input_name)
            self.input_shape = tuple(None if int(d) < 0 else int(d) for d in shape)
        except AttributeError:  # pragma: no cover - depends on the runner's internals
            self.input_shape = ()

    def run(self, x):
        outputs = self.engine.run({self.input_name: x})
        return [outputs[name] for name in self.output_names]


def open_artifact(
    path: str | os.PathLike[str],
    *,
    threads: int | None = None,
    compiled: bool = False,
    safe_mode: bool = True,
) -> Runner:
    """A `Runner` for `.onnx`, `.keras`, a SavedModel directory or a TensorRT engine.

    Example:
        >>> open_artifact("model.keras", compiled=True).runtime
        'keras-function'
    """
    path = Path(path)
    if not path.exists():
        raise ValueError(f"Artifact {str(path)!r} does not exist.")
    if path.is_dir() and (path / "saved_model.pb").is_file():
        return SavedModelRunner(path)
    if path.is_dir() and (path / "model.keras").is_file():
        path = path / "model.keras"
    if path.suffix == ".onnx":
        return OnnxRunner(path, threads=threads)
    if path.suffix == ".keras":
        import zoo

        return KerasRunner(zoo.load_model(path, safe_mode=safe_mode), compiled=compiled)
    if path.suffix in ENGINE_SUFFIXES:
        return TensorRTEngineRunner(path)
    raise ValueError(
        f"Artifacts should be .keras, .onnx, {', '.join(ENGINE_SUFFIXES)} files, a SavedModel "
        f"directory or a run directory. Received: {str(path)!r}"
    )
