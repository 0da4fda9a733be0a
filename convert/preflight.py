"""CPU preflight of an ONNX graph against what a TensorRT ONNX parser accepts.

A TensorRT build needs a GPU and can take minutes; most failures are known in advance from the
parser's published operator table (`onnx/onnx-tensorrt` `docs/operators.md`, bundled here as
`tensorrt_onnx_ops.json`) and from missing optimization-profile ranges. This module checks those
on any machine, in well under a second for zoo-sized models.

Example:

```python
from convert.preflight import derive_profiles, preflight

profiles = derive_profiles("model.onnx", batch_sizes=[1, 8, 32])
report = preflight("model.onnx", profiles=profiles, trt_version="10")
print(report.format_table())
if not report.ok:
    raise SystemExit(1)
```
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto

from convert._trt_rules import (
    SEVERITIES,
    Finding,
    OnnxIndex,
    check_operators,
    check_opset,
    check_tensor_types,
    node_attr,
    op_table,
    trt_major,
    walk_graphs,
)

__all__ = [
    "Finding",
    "PreflightReport",
    "derive_profiles",
    "detect_precision",
    "load_onnx",
    "preflight",
]

Shape = tuple[int, ...]
Profiles = dict[str, tuple[Shape, Shape, Shape]]

_UNRANGED = -1  # placeholder derive_profiles writes for a dynamic dim it has no rule for


@dataclass
class PreflightReport:
    """All findings of one `preflight` run; `ok` is True when there is no error."""

    source: str
    trt_version: str
    opset: int | None
    findings: list[Finding] = field(default_factory=list)
    op_counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "trt_version": self.trt_version,
            "opset": self.opset,
            "ok": self.ok,
            "op_counts": dict(self.op_counts),
            "findings": [asdict(f) for f in self.findings],
        }

    def format_table(self) -> str:
        """Findings as a text table, errors first, with a one-line summary at the end."""
        order = {s: i for i, s in enumerate(SEVERITIES)}
        rows = sorted(self.findings, key=lambda f: order[f.severity])
        header = ("SEVERITY", "CHECK", "WHERE", "MESSAGE")
        cells = [
            (f.severity, f.check, f"{f.node} [{f.op_type}]" if f.op_type else f.node, f.message)
            for f in rows
        ]
        widths = [max(len(r[i]) for r in [header, *cells]) for i in range(3)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
            for row in ([header, *cells] if cells else [])
        ]
        counts = Counter(f.severity for f in self.findings)
        verdict = "OK" if self.ok else "FAILED"
        lines.append(
            f"{verdict}: TensorRT {self.trt_version} preflight of {self.source} (opset "
            f"{self.opset}): {counts['error']} error(s), {counts['warning']} warning(s), "
            f"{counts['info']} info, {sum(self.op_counts.values())} nodes."
        )
        return "\n".join(lines)


# --------------------------------------------------------------------------- loading


def load_onnx(onnx_path_or_model: str | os.PathLike | onnx.ModelProto) -> onnx.ModelProto:
    """Loads an ONNX file (external weights are not read) or passes a ModelProto through.

    Raises a one-line ValueError for a missing, unreadable or non-ONNX file.
    """
    if isinstance(onnx_path_or_model, onnx.ModelProto):
        return onnx_path_or_model
    if not isinstance(onnx_path_or_model, (str, os.PathLike)):
        raise ValueError(
            "Expected a path to an .onnx file or an onnx.ModelProto. "
            f"Received: {type(onnx_path_or_model).__name__}"
        )
    path = Path(onnx_path_or_model)
    if not path.is_file():
        raise ValueError(f"ONNX file not found: {path}")
    try:
        # Weights stored outside the file are not needed for any check, and can be huge.
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning-ish errors, ...
        raise ValueError(f"{path} is not a valid ONNX file: {_one_line(exc)}") from None
    # Random bytes sometimes decode as an (almost) empty protobuf message without error.
    if model.ir_version <= 0 or not model.HasField("graph") or not model.graph.output:
        raise ValueError(
            f"{path} is not a valid ONNX file: it has no ir_version, graph or graph outputs"
        )
    return model


def _source_name(onnx_path_or_model: Any) -> str:
    if isinstance(onnx_path_or_model, onnx.ModelProto):
        return f"<ModelProto {onnx_path_or_model.graph.name!r}>"
    return str(onnx_path_or_model)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


# --------------------------------------------------------------------------- profiles


def _graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real inputs: old exporters also list initializers as graph inputs."""
    initializers = {i.name for i in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in initializers]


def _input_dims(vi: onnx.ValueInfoProto) -> list[int | str] | None:
    """Static dims as ints, dynamic dims as their dim_param ('?' when unnamed); None = no rank."""
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]


def _normalize_profiles(profiles: Any) -> Profiles:
    if profiles is None:
        return {}
    if not isinstance(profiles, dict):
        raise ValueError(
            "profiles should be a dict mapping input name to (min_shape, opt_shape, max_shape). "
            f"Received: {type(profiles).__name__}"
        )
    out: Profiles = {}
    for name, value in profiles.items():
        try:
            shapes = tuple(tuple(int(d) for d in shape) for shape in value)
        except (TypeError, ValueError):
            shapes = ()
        if len(shapes) != 3 or len({len(s) for s in shapes}) != 1:
            raise ValueError(
                f"profiles['{name}'] should be three shapes of equal rank (min, opt, max), e.g. "
                f"((1, 224, 224, 3), (8, 224, 224, 3), (32, 224, 224, 3)). Received: {value!r}"
            )
        out[name] = shapes  # type: ignore[assignment]
    return out


def _check_profiles(model: onnx.ModelProto, profiles: Profiles) -> list[Finding]:
    findings = []
    inputs = _graph_inputs(model)
    names = [i.name for i in inputs]
    for vi in inputs:
        where = f"input:{vi.name}"
        if not vi.type.HasField("tensor_type"):
            findings.append(
                Finding(
                    "error",
                    "input",
                    where,
                    "Only tensor inputs are supported (no sequences/optionals).",
                )
            )
            continue
        dims = _input_dims(vi)
        if dims is None:
            findings.append(
                Finding(
                    "error",
                    "input",
                    where,
                    "The input has no shape (unknown rank); TensorRT needs the rank. Re-export "
                    "with an input signature that fixes the rank.",
                )
            )
            continue
        dynamic = [i for i, d in enumerate(dims) if isinstance(d, str)]
        profile = profiles.get(vi.name)
        if profile is None:
            for i in dynamic:
                findings.append(_unranged(vi.name, i, dims[i], "no profile for this input"))
            continue
        lo, opt, hi = profile
        if len(lo) != len(dims):
            findings.append(
                Finding(
                    "error",
                    "profile",
                    where,
                    f"Profile rank must match the input rank {len(dims)} (shape "
                    f"{_fmt_dims(dims)}). Received: min={lo}, opt={opt}, max={hi}",
                )
            )
            continue
        for i, d in enumerate(dims):
            got = (lo[i], opt[i], hi[i])
            if not isinstance(d, str):
                if got != (d, d, d):
                    findings.append(
                        Finding(
                            "error",
                            "profile",
                            where,
                            f"Dim {i} is static ({d}); min/opt/max must all be {d}. "
                            f"Received: {got}",
                        )
                    )
            elif min(got) < 0:
                findings.append(_unranged(vi.name, i, d, "its profile entry is -1"))
            elif not got[0] <= got[1] <= got[2]:
                findings.append(
                    Finding(
                        "error",
                        "profile",
                        where,
                        f"Dim {i} ('{d}') needs 0 <= min <= opt <= max. Received: "
                        f"min={got[0]}, opt={got[1]}, max={got[2]}",
                    )
                )
    for name in profiles:
        if name not in names:
            findings.append(
                Finding(
                    "warning",
                    "profile",
                    f"input:{name}",
                    f"Profile given for '{name}', which is not a graph input; valid inputs: "
                    f"{names}. Received: {name}",
                )
            )
    return findings


def _unranged(name: str, index: int, param: str, why: str) -> Finding:
    return Finding(
        "error",
        "profile",
        f"input:{name}",
        f"Dim {index} ('{param}') is dynamic and has no min/opt/max range ({why}). Pass "
        f"profiles={{'{name}': (min_shape, opt_shape, max_shape)}} or build them with "
        "derive_profiles(model, batch_sizes=[...], seq_lens=[...]).",
    )


def _fmt_dims(dims: Sequence[int | str]) -> str:
    return "[" + ", ".join(str(d) for d in dims) + "]"


def derive_profiles(
    model: str | os.PathLike | onnx.ModelProto,
    batch_sizes: Sequence[int],
    seq_lens: Sequence[int] | None = None,
) -> Profiles:
    """Builds (min, opt, max) shapes for every graph input from its ONNX shape.

    Rules, applied only to dynamic dims (a `dim_param` or no `dim_value`):
    - dim 0 is the batch: min=min(batch_sizes), opt=median, max=max(batch_sizes);
    - dim 1 of a rank-2 or rank-3 input (token ids [batch, seq], embeddings
      [batch, seq, features]) is the sequence length, ranged from `seq_lens` the same way;
    - any other dynamic dim has no rule and is written as -1 ("un-ranged"), which `preflight`
      reports as an error, so the caller supplies it explicitly.

    `opt` is the median (the upper one for an even count, so it is always one of the given
    sizes): TensorRT picks kernels for the opt shape, and the median is the typical serving
    batch, whereas max would tune for a size most requests never reach. Static dims are copied.

    Example:

    ```python
    derive_profiles("model.onnx", batch_sizes=[1, 8, 32])
    # {'input': ((1, 224, 224, 3), (8, 224, 224, 3), (32, 224, 224, 3))}
    ```
    """
    batch = _size_range("batch_sizes", batch_sizes)
    seq = _size_range("seq_lens", seq_lens) if seq_lens is not None else None
    onnx_model = load_onnx(model)
    profiles: Profiles = {}
    for vi in _graph_inputs(onnx_model):
        dims = _input_dims(vi)
        if dims is None:
            continue
        rows: list[list[int]] = [[], [], []]
        for i, d in enumerate(dims):
            if not isinstance(d, str):
                values = (d, d, d)
            elif i == 0:
                values = batch
            elif i == 1 and len(dims) in (2, 3) and seq is not None:
                values = seq
            else:
                values = (_UNRANGED,) * 3
            for row, v in zip(rows, values, strict=True):
                row.append(v)
        profiles[vi.name] = (tuple(rows[0]), tuple(rows[1]), tuple(rows[2]))
    return profiles


def _size_range(name: str, sizes: Sequence[int] | None) -> tuple[int, int, int]:
    values = list(sizes or [])
    if not values or any(not isinstance(v, (int, np.integer)) or v < 1 for v in values):
        raise ValueError(f"{name} should be a non-empty list of positive ints. Received: {sizes!r}")
    ordered = sorted(int(v) for v in values)
    return ordered[0], int(statistics.median_high(ordered)), ordered[-1]


# --------------------------------------------------------------------------- public API


def detect_precision(model: str | os.PathLike | onnx.ModelProto) -> str:
    """'int8' if the graph has QuantizeLinear, 'fp16'/'bf16' if it holds such initializers or
    casts, else 'fp32'. With strong typing the ONNX file, not a builder flag, sets precision."""
    onnx_model = load_onnx(model)
    ops = set()
    elem_types = set()
    for graph in walk_graphs(onnx_model.graph):
        elem_types.update(i.data_type for i in graph.initializer)
        for node in graph.node:
            ops.add(node.op_type)
            if node.op_type == "Cast":
                elem_types.add(node_attr(node, "to"))
    if "QuantizeLinear" in ops or "DequantizeLinear" in ops:
        return "int8"
    if TensorProto.FLOAT16 in elem_types:
        return "fp16"
    if TensorProto.BFLOAT16 in elem_types:
        return "bf16"
    return "fp32"


def preflight(
    onnx_path_or_model: str | os.PathLike | onnx.ModelProto,
    *,
    profiles: Profiles | None = None,
    trt_version: str | int = "10",
) -> PreflightReport:
    """Checks an ONNX model against the TensorRT ONNX parser's documented support.

    Args:
        onnx_path_or_model: path to an .onnx file, or a loaded `onnx.ModelProto`.
        profiles: input name -> (min_shape, opt_shape, max_shape) for the optimization
            profile. Every dynamic input dim needs a range. Defaults to None (no ranges).
        trt_version: target TensorRT, "10" or "11" (a "10.15"-style version uses its major).
            Defaults to "10".

    Returns:
        A `PreflightReport`; `report.ok` is False when any finding is an error.

    Example:

    ```python
    report = preflight("model.onnx", profiles=derive_profiles("model.onnx", [1, 8, 32]))
    assert report.ok, report.format_table()
    ```
    """
    major = trt_major(trt_version)
    model = load_onnx(onnx_path_or_model)
    table = op_table(major)
    normalized = _normalize_profiles(profiles)

    findings: list[Finding] = []
    findings.extend(_run_checker(model, onnx_path_or_model))
    opset, opset_findings = check_opset(model, table, major)
    findings.extend(opset_findings)
    g = OnnxIndex(model)
    counts, op_findings = check_operators(g, table, major)
    findings.extend(op_findings)
    findings.extend(check_tensor_types(g, table))
    findings.extend(_check_profiles(model, normalized))
    return PreflightReport(
        source=_source_name(onnx_path_or_model),
        trt_version=str(trt_version),
        opset=opset,
        findings=findings,
        op_counts=dict(sorted(counts.items())),
    )


def _run_checker(model: onnx.ModelProto, source: Any) -> list[Finding]:
    if isinstance(source, (str, os.PathLike)):
        target: Any = str(source)  # a path lets the checker read external data and >2 GB models
    elif any(i.data_location == TensorProto.EXTERNAL for i in model.graph.initializer):
        return []  # external weights of an in-memory model cannot be located; skip the checker
    else:
        target = model
    try:
        onnx.checker.check_model(target)
    except Exception as exc:
        return [
            Finding(
                "error",
                "onnx_checker",
                "model",
                f"onnx.checker rejects the model: {_one_line(exc)}. Fix the exporter output "
                "first; the TensorRT parser validates the same rules.",
            )
        ]
    return []
