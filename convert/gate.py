"""The parity gate: run a converted artefact beside its reference and judge the difference.

Every conversion ends here. The artefact (ONNX in ONNX Runtime, a SavedModel in TensorFlow) and
the reference (the Keras model, or for an ONNX source the fp32 ONNX file) see the same inputs:
real data when given, otherwise generated inputs at every declared batch size (and sequence
length), images as raw 0-255 pixels and sequences with zero-padded tails so masking is exercised.

Criteria per precision (all overridable):
- fp32, fp16: every output element within `atol + rtol * |reference|` (numpy `allclose`);
- bf16 (a float artefact run with bf16 compute, e.g. OpenVINO on a bf16 CPU): looser element
  tolerances plus top-1 agreement, see `criteria`;
- int8: top-1 agreement >= `min_agreement` and, on labelled data, an accuracy drop of at most
  `max_accuracy_drop`; errors are reported but only gated when `atol` is passed explicitly.

Publishing (temp name -> final name, or `<name>.failed<suffix>`) is `convert._common.publish`.

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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convert._common import PRECISIONS, Runner

# (atol, rtol) per criteria. fp16 keeps ~3 significant digits through a deep graph; bf16 keeps
# ~2 (8 mantissa bits), measured in docs/DESIGN.md ("bf16 inference").
TOLERANCES = {
    "fp32": (1e-4, 1e-3),
    "fp16": (1e-2, 5e-2),
    "bf16": (5e-2, 5e-2),
    "int8": (None, None),
}
MIN_AGREEMENT = {"fp32": None, "fp16": None, "bf16": 0.97, "int8": 0.97}
MAX_ACCURACY_DROP = {"fp32": None, "fp16": 0.01, "bf16": 0.01, "int8": 0.02}
DEFAULT_BATCH_SIZES = (1, 8)
DEFAULT_SEQ_LENS = (8, 64)


def criteria(precision: str, inference_precision: str = "native") -> str:
    """Which tolerance row judges an artefact: its own precision, or "bf16" when a float artefact
    runs with bf16 compute (OpenVINO's CPU default where the CPU has bf16).

    Example:
        >>> criteria("fp32", "bf16"), criteria("int8", "bf16"), criteria("fp16", "f32")
        ('bf16', 'int8', 'fp16')
    """
    if inference_precision == "bf16" and precision in ("fp32", "fp16"):
        return "bf16"
    return precision


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
    criteria: str | None = None  # the TOLERANCES row applied ("bf16" for bf16 compute)

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
        lines.append(f"  tolerances ({self.criteria or self.precision}): {tolerance}")
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
    from convert.runners import KerasRunner, open_artifact

    if isinstance(reference, Runner):
        return reference
    if isinstance(reference, (str, os.PathLike)):
        return open_artifact(reference)
    from convert.export_utils import export_ready_copy

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


@dataclasses.dataclass(frozen=True)
class _Criteria:
    row: str
    atol: float | None
    rtol: float | None
    min_agreement: float | None
    max_accuracy_drop: float | None
    gate_errors: bool  # False for int8 unless atol is given: its errors are reported only


def _criteria(row: str, atol, rtol, min_agreement, max_accuracy_drop) -> _Criteria:
    default_atol, default_rtol = TOLERANCES[row]
    chosen_atol = default_atol if atol is None else float(atol)
    chosen_rtol = default_rtol if rtol is None else float(rtol)
    drop = MAX_ACCURACY_DROP[row] if max_accuracy_drop is None else max_accuracy_drop
    return _Criteria(
        row=row,
        atol=chosen_atol,
        rtol=chosen_rtol if chosen_atol is not None else None,
        min_agreement=MIN_AGREEMENT[row] if min_agreement is None else min_agreement,
        max_accuracy_drop=drop,
        gate_errors=atol is not None or row != "int8",
    )


def _batches(inputs, reference, reference_runner, batch_sizes, seq_lens):
    """(batches, labels or None, a description of the inputs)."""
    if inputs is None:
        model = reference if hasattr(reference, "inputs") else None
        shape, mask_value = (
            _model_input(model) if model is not None else (reference_runner.input_shape[1:], 0.0)
        )
        batches = generate_inputs(shape, batch_sizes, seq_lens, mask_value=mask_value)
        return batches, None, "generated inputs"
    labels = None
    if isinstance(inputs, tuple):
        inputs, labels = inputs
        labels = np.asarray(labels).reshape(-1)
    x = np.asarray(inputs, dtype=np.float32)
    description = "labelled data" if labels is not None else "given data"
    return _chunks(x, max(int(b) for b in batch_sizes)), labels, description


def _compare(got, expected, names, criteria: _Criteria) -> tuple[list[OutputParity], list[str]]:
    outputs, failures = [], []
    for index, (a, r) in enumerate(zip(got, expected, strict=True)):
        diff = np.abs(a - r)
        ok = True
        if criteria.atol is not None:
            ok = bool(np.all(diff <= criteria.atol + (criteria.rtol or 0.0) * np.abs(r)))
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
                f"{label}: max_abs {outputs[-1].max_abs:.3e} exceeds atol={criteria.atol} "
                f"rtol={criteria.rtol}"
            )
    return outputs, failures


def _judge_classes(report: ParityReport, got, expected, labels) -> None:
    """Top-1 agreement, and accuracy before/after on labelled data, against the criteria."""
    top_a, top_r = _top1(got[0]), _top1(expected[0])
    report.top1_agreement = float(np.mean(top_a == top_r))
    if report.min_agreement is not None and report.top1_agreement < report.min_agreement:
        report.failures.append(
            f"top-1 agreement {report.top1_agreement:.2%} is below {report.min_agreement:.0%}"
        )
    if labels is None or len(labels) != len(top_a):
        return
    report.accuracy_reference = float(np.mean(top_r == labels))
    report.accuracy_artefact = float(np.mean(top_a == labels))
    drop = report.accuracy_reference - report.accuracy_artefact
    if report.max_accuracy_drop is not None and drop > report.max_accuracy_drop:
        report.failures.append(
            f"accuracy drops {drop:.2%} ({report.accuracy_reference:.2%} -> "
            f"{report.accuracy_artefact:.2%}), more than {report.max_accuracy_drop:.0%}"
        )


def verify(
    artefact: str | os.PathLike[str] | Runner,
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
        artefact: a path (opened in its default runtime) or a `convert.runners` runner.
        reference: the Keras model, a path to the reference artefact (fp32 ONNX), or a runner.
        inputs: None (generated inputs), an array, or `(x, y)` with integer labels, which adds
            accuracy before/after. Real data is run in chunks of the largest batch size.
        precision: the artefact's precision, "fp32", "fp16" or "int8"; with the runner's
            `inference_precision` it picks the default criteria (`criteria`).
        atol, rtol: element tolerances; default per criteria (`TOLERANCES`).
        min_agreement: minimum top-1 agreement (classifiers); default 0.97 for int8 and bf16.
        max_accuracy_drop: allowed accuracy loss on labelled data, as a fraction.
        batch_sizes, seq_lens: shapes of generated inputs.
        name: the artefact's name in the report; defaults to its path.

    Example:
        >>> verify("model.int8.onnx", model, (x_val, y_val), precision="int8").top1_agreement
        0.99
    """
    from convert.runners import open_artifact

    if precision not in PRECISIONS:
        raise ValueError(f"precision should be one of {PRECISIONS}. Received: {precision!r}")
    runner = artefact if isinstance(artefact, Runner) else open_artifact(artefact)
    row = criteria(precision, getattr(runner, "inference_precision", "native"))
    chosen = _criteria(row, atol, rtol, min_agreement, max_accuracy_drop)
    reference_runner = _reference_runner(reference)
    batches, labels, description = _batches(
        inputs, reference, reference_runner, batch_sizes, seq_lens
    )
    got = _run_batches(runner, batches)
    expected = _run_batches(reference_runner, batches)
    names = list(runner.output_names) or [f"output_{i}" for i in range(len(got))]
    outputs, failures = _compare(got, expected, names, chosen)
    report = ParityReport(
        artefact=name or str(getattr(artefact, "path", artefact)),
        runtime=runner.runtime,
        precision=precision,
        reference=reference_runner.runtime,
        inputs=description,
        n_samples=int(sum(len(b) for b in batches)),
        shapes=[list(s) for s in sorted({tuple(int(d) for d in b.shape) for b in batches})],
        outputs=outputs,
        atol=chosen.atol if chosen.gate_errors else None,
        rtol=chosen.rtol,
        min_agreement=chosen.min_agreement,
        max_accuracy_drop=chosen.max_accuracy_drop,
        failures=failures,
        criteria=row,
    )
    _judge_classes(report, got, expected, labels)
    return report
