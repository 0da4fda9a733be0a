"""The parity gate: run a converted artefact beside its reference and judge the difference.

Every conversion ends here. The artefact (ONNX in ONNX Runtime, a SavedModel in TensorFlow) and
the reference (the Keras model, or for an ONNX source the fp32 ONNX file) see the same inputs:
real data when given, otherwise generated inputs at every declared batch size (and sequence
length), images as raw 0-255 pixels and sequences with zero-padded tails so masking is exercised.

Criteria per precision (all overridable):
- fp32, fp16: every output element within `atol + rtol * |reference|` (numpy `allclose`);
- int8: top-1 agreement >= `min_agreement` and, on labelled data, an accuracy drop of at most
  `max_accuracy_drop`; errors are reported but only gated when `atol` is passed explicitly.

`publish` is the atomic part: it moves a verified temp file to its final name, or keeps a failed
one as `<name>.failed<suffix>` so a bad artefact never sits under the final name.

Example:
    >>> report = verify("model.onnx", keras_model, precision="fp32", batch_sizes=(1, 8))
    >>> report.passed, report.outputs[0].max_abs < 1e-4
    (True, True)
    >>> print(report.format_table())
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convert.pipeline import PRECISIONS

# (atol, rtol) per precision. fp16 keeps ~3 significant digits through a deep graph.
TOLERANCES = {"fp32": (1e-4, 1e-3), "fp16": (1e-2, 5e-2), "int8": (None, None)}
MIN_AGREEMENT = {"fp32": None, "fp16": None, "int8": 0.97}
MAX_ACCURACY_DROP = {"fp32": None, "fp16": 0.01, "int8": 0.02}
DEFAULT_BATCH_SIZES = (1, 8)
DEFAULT_SEQ_LENS = (8, 64)


@dataclasses.dataclass
class OutputParity:
    """Error of one output: max absolute, max relative (|d| / max(|ref|, 1e-6)), mean absolute."""

    name: str
    max_abs: float
    max_rel: float
    mean_abs: float
    within_tolerance: bool


@dataclasses.dataclass
class ParityReport:
    """What the gate measured and decided; `to_dict()` is the `<artefact>.report.json` body."""

    artefact: str
    runtime: str
    precision: str
    reference: str
    inputs: str
    n_samples: int
    shapes: list[list[int]]
    outputs: list[OutputParity]
    atol: float | None
    rtol: float | None
    top1_agreement: float | None = None
    accuracy_reference: float | None = None
    accuracy_artefact: float | None = None
    min_agreement: float | None = None
    max_accuracy_drop: float | None = None
    failures: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["passed"] = self.passed
        return data

    def write_json(self, path: str | os.PathLike[str]) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def format_table(self) -> str:
        """A short human summary: one row per output, then agreement/accuracy and the verdict."""
        lines = [
            f"parity: {self.artefact} ({self.runtime}) vs {self.reference} on {self.inputs}, "
            f"{self.n_samples} samples",
            f"  {'output':<16}{'max_abs':>12}{'max_rel':>12}{'mean_abs':>12}  ok",
        ]
        for out in self.outputs:
            lines.append(
                f"  {out.name:<16}{out.max_abs:>12.3e}{out.max_rel:>12.3e}{out.mean_abs:>12.3e}"
                f"  {'yes' if out.within_tolerance else 'NO'}"
            )
        tolerance = f"atol={self.atol} rtol={self.rtol}" if self.atol is not None else "no atol"
        lines.append(f"  tolerances ({self.precision}): {tolerance}")
        if self.top1_agreement is not None:
            lines.append(f"  top-1 agreement: {self.top1_agreement:.2%}")
        if self.accuracy_reference is not None and self.accuracy_artefact is not None:
            lines.append(
                f"  accuracy: reference {self.accuracy_reference:.2%}, "
                f"artefact {self.accuracy_artefact:.2%}"
            )
        lines.append("  PASSED" if self.passed else "  FAILED: " + "; ".join(self.failures))
        return "\n".join(lines)


def _model_input(model: Any) -> tuple[tuple[int | None, ...], float]:
    """The input shape without batch, and the Masking layer's padding value (0.0 if none)."""
    shape = tuple(model.inputs[0].shape[1:])
    mask_value = 0.0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if type(layer).__name__ == "Masking":
            mask_value = float(layer.mask_value)
    return shape, mask_value


def generate_inputs(
    input_shape: Sequence[int | None],
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    seq_lens: Sequence[int] = DEFAULT_SEQ_LENS,
    *,
    mask_value: float = 0.0,
    seed: int = 0,
) -> list[np.ndarray]:
    """One float32 batch per (batch size, sequence length); images are uniform 0-255 pixels.

    Sequences are standard-normal with every other row's tail padded with `mask_value`, so that a
    masked model's padding path is compared too.

    Example:
        >>> [x.shape for x in generate_inputs((None, 10), (1, 4), (8,))]
        [(1, 8, 10), (4, 8, 10)]
    """
    rng = np.random.default_rng(seed)
    shape = tuple(input_shape)
    batches = []
    is_sequence = len(shape) == 2
    lengths = [int(t) for t in seq_lens] if is_sequence and shape[0] is None else [shape[0]]
    for length in lengths:
        for batch in batch_sizes:
            if is_sequence:
                x = rng.standard_normal((int(batch), length, shape[1])).astype(np.float32)
                for row in range(0, int(batch), 2):
                    keep = int(rng.integers(1, length + 1))
                    x[row, keep:] = mask_value
            else:
                x = rng.uniform(0.0, 255.0, (int(batch), *shape)).astype(np.float32)
            batches.append(x)
    return batches


def _top1(y: np.ndarray) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        return (y[:, 0] > 0.5).astype(np.int64)  # sigmoid: the positive class above 0.5
    return np.argmax(y.reshape(len(y), -1), axis=-1)


def _reference_runner(reference: Any):
    from convert.source import KerasRunner, open_artifact

    if isinstance(reference, (str, os.PathLike)):
        return open_artifact(reference)
    from convert.onnx_export import export_ready_copy

    # A mixed-precision model is compared through its float32 rebuild: the export is float32,
    # and the bf16 rounding of the original would otherwise dominate the measured error.
    return KerasRunner(export_ready_copy(reference))


def _run_batches(runner: Any, batches: list[np.ndarray]) -> list[np.ndarray]:
    results = [runner.run(x) for x in batches]
    return [
        np.concatenate(
            [
                np.asarray(r[i], dtype=np.float64).reshape(len(b), -1)
                for r, b in zip(results, batches, strict=True)
            ]
        )
        for i in range(len(results[0]))
    ]


def _chunks(x: np.ndarray, size: int) -> list[np.ndarray]:
    return [x[i : i + size] for i in range(0, len(x), size)]


def verify(
    artefact: str | os.PathLike[str] | Any,
    reference: Any,
    inputs: np.ndarray | tuple[np.ndarray, np.ndarray] | None = None,
    *,
    precision: str = "fp32",
    atol: float | None = None,
    rtol: float | None = None,
    min_agreement: float | None = None,
    max_accuracy_drop: float | None = None,
    batch_sizes: Sequence[int] = DEFAULT_BATCH_SIZES,
    seq_lens: Sequence[int] = DEFAULT_SEQ_LENS,
    name: str | None = None,
) -> ParityReport:
    """Compare an artefact with its reference and return a `ParityReport` (check `.passed`).

    Args:
        artefact: a path (.onnx, SavedModel dir) or a `convert.source.Runner`.
        reference: the Keras model, or a path to the reference artefact (fp32 ONNX).
        inputs: None (generated inputs), an array, or `(x, y)` with integer labels, which adds
            accuracy before/after. Real data is run in chunks of the largest batch size.
        precision: "fp32", "fp16" or "int8"; picks the default criteria (module docstring).
        atol, rtol: element tolerances; default per precision (`TOLERANCES`).
        min_agreement: minimum top-1 agreement (classifiers); default 0.97 for int8 only.
        max_accuracy_drop: allowed accuracy loss on labelled data, as a fraction.
        batch_sizes, seq_lens: shapes of generated inputs.
        name: the artefact's name in the report; defaults to its path.

    Example:
        >>> verify("model.int8.onnx", model, (x_val, y_val), precision="int8").top1_agreement
        0.99
    """
    from convert.source import Runner, open_artifact

    if precision not in PRECISIONS:
        raise ValueError(f"precision should be one of {PRECISIONS}. Received: {precision!r}")
    explicit_atol = atol is not None
    default_atol, default_rtol = TOLERANCES[precision]
    atol = default_atol if atol is None else float(atol)
    rtol = (default_rtol if rtol is None else float(rtol)) if atol is not None else None
    if min_agreement is None:
        min_agreement = MIN_AGREEMENT[precision]
    if max_accuracy_drop is None:
        max_accuracy_drop = MAX_ACCURACY_DROP[precision]

    runner = artefact if isinstance(artefact, Runner) else open_artifact(artefact)
    reference_runner = _reference_runner(reference)
    labels = None
    if inputs is None:
        model = reference if not isinstance(reference, (str, os.PathLike)) else None
        shape, mask_value = (
            _model_input(model) if model is not None else (reference_runner.input_shape[1:], 0.0)
        )
        batches = generate_inputs(shape, batch_sizes, seq_lens, mask_value=mask_value)
        source = "generated inputs"
    else:
        if isinstance(inputs, tuple):
            inputs, labels = inputs
            labels = np.asarray(labels).reshape(-1)
        x = np.asarray(inputs, dtype=np.float32)
        batches = _chunks(x, max(int(b) for b in batch_sizes))
        source = "labelled data" if labels is not None else "given data"

    got = _run_batches(runner, batches)
    expected = _run_batches(reference_runner, batches)
    names = list(runner.output_names) or [f"output_{i}" for i in range(len(got))]
    outputs, failures = [], []
    for index, (a, r) in enumerate(zip(got, expected, strict=True)):
        diff = np.abs(a - r)
        ok = True
        if atol is not None:
            ok = bool(np.all(diff <= atol + (rtol or 0.0) * np.abs(r)))
        label = names[index] if index < len(names) else f"output_{index}"
        outputs.append(
            OutputParity(
                name=label,
                max_abs=float(diff.max(initial=0.0)),
                max_rel=float((diff / np.maximum(np.abs(r), 1e-6)).max(initial=0.0)),
                mean_abs=float(diff.mean()) if diff.size else 0.0,
                within_tolerance=ok,
            )
        )
        if not ok:
            failures.append(
                f"{label}: max_abs {outputs[-1].max_abs:.3e} exceeds atol={atol} rtol={rtol}"
            )

    report = ParityReport(
        artefact=name or str(getattr(artefact, "path", artefact)),
        runtime=runner.runtime,
        precision=precision,
        reference=reference_runner.runtime,
        inputs=source,
        n_samples=int(sum(len(b) for b in batches)),
        shapes=sorted({tuple(int(d) for d in b.shape) for b in batches}),
        outputs=outputs,
        atol=atol if (explicit_atol or precision != "int8") else None,
        rtol=rtol,
        min_agreement=min_agreement,
        max_accuracy_drop=max_accuracy_drop,
        failures=failures,
    )
    report.shapes = [list(s) for s in report.shapes]
    top_a, top_r = _top1(got[0]), _top1(expected[0])
    report.top1_agreement = float(np.mean(top_a == top_r))
    if min_agreement is not None and report.top1_agreement < min_agreement:
        failures.append(f"top-1 agreement {report.top1_agreement:.2%} is below {min_agreement:.0%}")
    if labels is not None and len(labels) == len(top_a):
        report.accuracy_reference = float(np.mean(top_r == labels))
        report.accuracy_artefact = float(np.mean(top_a == labels))
        drop = report.accuracy_reference - report.accuracy_artefact
        if max_accuracy_drop is not None and drop > max_accuracy_drop:
            failures.append(
                f"accuracy drops {drop:.2%} ({report.accuracy_reference:.2%} -> "
                f"{report.accuracy_artefact:.2%}), more than {max_accuracy_drop:.0%}"
            )
    return report


def report_path(artefact: str | os.PathLike[str]) -> Path:
    """Where an artefact's report goes: `<artefact>.report.json` beside it."""
    artefact = Path(artefact)
    return artefact.with_name(artefact.name + ".report.json")


def failed_path(final: str | os.PathLike[str]) -> Path:
    """`model.onnx` -> `model.failed.onnx`; a directory `sm` -> `sm.failed`."""
    final = Path(final)
    if final.suffix:
        return final.with_name(f"{final.stem}.failed{final.suffix}")
    return final.with_name(final.name + ".failed")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def temp_path(final: str | os.PathLike[str]) -> Path:
    """A temp name in the final file's directory (so publishing is a same-filesystem rename)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.with_name(f".{final.name}.tmp-{os.getpid()}{final.suffix}")


def publish(temp: Path, final: Path, report: ParityReport) -> Path:
    """Move a verified artefact to `final` (with its report), or set a failed one aside.

    On success `temp` replaces `final` atomically and the report is `<final>.report.json`. On
    failure `temp` becomes `<stem>.failed<suffix>` with its report beside it; a file already at
    `final` (from an earlier good run) is left untouched, never overwritten by a bad artefact.
    Returns the path the artefact ended up at.
    """
    temp, final = Path(temp), Path(final)
    target = final if report.passed else failed_path(final)
    report.artefact = str(target)
    if target.is_dir():
        _remove(target)
    os.replace(temp, target)
    report.write_json(report_path(target))
    return target


class _CallableModule(types.ModuleType):
    """`convert.verify` is both this module and its main function: importing the module rebinds
    the package attribute, so the module forwards calls to keep `convert.verify(...)` working
    whatever was imported first."""

    def __call__(self, *args: Any, **kwargs: Any) -> ParityReport:
        return verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
