"""What `convert.budget.search` reports: the candidates, the choice, the table, the chart, JSON.

`BudgetResult.write(folder)` writes `table.txt`, `budget.json` and `pareto.png` into a hidden
temporary folder beside `folder` and renames it into place, so a failure leaves no half-written
folder behind.

Example:
    >>> result = search("runs/demo", max_accuracy_drop=1.0)
    >>> print(result.format_table())
    >>> result.files["chart"]
    'runs/demo/model.budget/pareto.png'
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

TABLE_FILE = "table.txt"
JSON_FILE = "budget.json"
CHART_FILE = "pareto.png"


@dataclasses.dataclass
class Candidate:
    """One artefact the search built and measured.

    `drop` is in points of top-1 accuracy against the float32 reference (negative: better);
    `p50_ms` maps batch size to the median latency over the interleaved rounds, `rounds_faster`
    to the share of those rounds in which the row beat the fp32 file; `eligible` is
    False for rows that only recommend another runtime (OpenVINO rows of a `--to onnx` search)
    or that fail the gate's int8 agreement; `note` says why. `existing` rows are files the
    caller brought (`search(compare=...)`, e.g. a QAT run's int8 file).
    """

    name: str
    precision: str
    runtime: str
    settings: str
    calib_method: str | None = None
    float_layers: list[str] = dataclasses.field(default_factory=list)
    float_nodes: list[str] = dataclasses.field(default_factory=list)
    accuracy: float | None = None
    drop: float | None = None
    agreement: float | None = None
    p50_ms: dict[int, float] = dataclasses.field(default_factory=dict)
    rounds_faster: dict[int, float] = dataclasses.field(default_factory=dict)
    size_bytes: int = 0
    eligible: bool = True
    note: str = ""
    path: Path | None = dataclasses.field(default=None, repr=False)
    existing: bool = False  # a file given with `compare`: chosen as it stands, not rebuilt

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("path")
        data["p50_ms"] = {str(k): v for k, v in self.p50_ms.items()}
        data["rounds_faster"] = {str(k): v for k, v in self.rounds_faster.items()}
        return data


@dataclasses.dataclass
class BudgetResult:
    """The search's outcome: the published artefact, the chosen candidate and every row."""

    artefact: Path
    to: str
    chosen: Candidate
    kept_float: bool
    message: str
    max_accuracy_drop: float
    reference_accuracy: float
    data: str
    split: str
    examples: int
    decided_by: int
    candidates: list[Candidate]
    seconds: float = 0.0
    reference: str = "float32 Keras model"
    speed_margin: float = 0.1  # how much faster than fp32 a lowering had to be (noise)
    gate_report: str = ""  # the published artefact's parity report (`<artefact>.report.json`)
    files: dict[str, str] = dataclasses.field(default_factory=dict)

    def speedup(self, row: Candidate, batch: int) -> float | None:
        """p50 of the fp32 file on the target's runtime (the first row) over `row`'s."""
        base = self.candidates[0] if self.candidates else None
        if base is None or batch not in base.p50_ms or batch not in row.p50_ms:
            return None
        return base.p50_ms[batch] / row.p50_ms[batch]

    def result_line(self) -> str:
        """One line: the file, its runtime and settings, its drop and speed-up."""
        row = self.chosen
        speed = self.speedup(row, self.decided_by)
        return (
            f"{self.artefact} for {row.runtime} ({row.settings}): top-1 "
            f"{_pct(row.accuracy)}, drop {_pts(row.drop)} points (budget "
            f"{self.max_accuracy_drop:g}), {_x(speed)} fp32's speed at batch {self.decided_by}"
        )

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in dataclasses.asdict(self).items() if k != "candidates"}
        data["artefact"] = str(self.artefact)
        data["chosen"] = self.chosen.to_dict()
        data["candidates"] = [
            {**c.to_dict(), "speedup": {str(b): self.speedup(c, b) for b in c.p50_ms}}
            for c in self.candidates
        ]
        return data

    def format_table(self) -> str:
        """The trade-off table: one row per candidate, the chosen one marked `*`."""
        batches = sorted({b for c in self.candidates for b in c.p50_ms})
        header = ["", "candidate", "runtime", "top-1", "drop pt", "agree"]
        header += [f"p50 b{b} ms" for b in batches]
        header += [f"x fp32 b{self.decided_by}", "won", "size KB"]
        header += ["float layers", "note"]
        rows = [header]
        for c in self.candidates:
            rows.append(
                ["*" if c is self.chosen else "", c.name, c.runtime, _pct(c.accuracy),
                 _pts(c.drop), _pct(c.agreement)]
                + [f"{c.p50_ms[b]:.3f}" if b in c.p50_ms else "-" for b in batches]
                + [_x(self.speedup(c, self.decided_by)),
                   _won(c.rounds_faster.get(self.decided_by)), f"{c.size_bytes / 1024:.0f}",
                   _layers(c.float_layers), c.note]
            )  # fmt: skip
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
                 for r in rows]  # fmt: skip
        lines.insert(1, "-" * len(lines[0]))
        lines += [
            "",
            f"reference: {self.reference}, top-1 {_pct(self.reference_accuracy)} on "
            f"{self.data} [{self.split}, {self.examples} examples]; budget "
            f"{self.max_accuracy_drop:g} points; fastest at batch {self.decided_by} chosen, if "
            f"faster than fp32 by > {self.speed_margin:.0%} (10%, or fp32's own spread over the "
            f"rounds) and in every round (won)",
            self.message,
        ]
        return "\n".join(lines)

    def write(self, folder: str | os.PathLike[str], overwrite: bool = False) -> dict[str, str]:
        """`table.txt`, `budget.json` and `pareto.png` in `folder`, published all at once."""
        final = Path(folder)
        if final.exists() and not overwrite:
            raise ValueError(
                f"{str(final)!r} already exists: pass --overwrite to replace it, or --out "
                f"another artefact path."
            )
        scratch = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(parents=True)
        try:
            self.files = {name: str(final / file) for name, file in
                          (("table", TABLE_FILE), ("json", JSON_FILE), ("chart", CHART_FILE))}  # fmt: skip
            plot_pareto(self, scratch / CHART_FILE)
            (scratch / TABLE_FILE).write_text(self.format_table() + "\n", encoding="utf-8")
            text = json.dumps(self.to_dict(), indent=2) + "\n"
            (scratch / JSON_FILE).write_text(text, encoding="utf-8")
            if final.exists():
                shutil.rmtree(final)
            os.replace(scratch, final)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return self.files


def plot_pareto(result: BudgetResult, path: str | os.PathLike[str]) -> None:
    """Accuracy drop (points) against speed-up over fp32 at the deciding batch, one dot per row."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    try:
        for c in result.candidates:
            speed = result.speedup(c, result.decided_by)
            if speed is None or c.drop is None:
                continue
            marker = "*" if c is result.chosen else ("o" if c.eligible else "x")
            axis.scatter(speed, c.drop, marker=marker, s=160 if marker == "*" else 40)
            axis.annotate(c.name, (speed, c.drop), fontsize=7, xytext=(4, 3),
                          textcoords="offset points")  # fmt: skip
        axis.axhline(result.max_accuracy_drop, color="red", linestyle="--", linewidth=1,
                     label=f"budget {result.max_accuracy_drop:g} pt")  # fmt: skip
        axis.axvline(1.0, color="grey", linewidth=0.8)
        axis.set_xlabel(f"speed-up over fp32 (p50, batch {result.decided_by})")
        axis.set_ylabel("top-1 drop (points)")
        axis.set_title(f"{result.chosen.name} chosen ({result.split}, {result.examples} examples)")
        axis.legend(fontsize="small")
        figure.tight_layout()
        figure.savefig(path, dpi=100, format="png")
    finally:
        plt.close(figure)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2%}"


def _pts(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _x(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def _layers(names: list[str]) -> str:
    if not names:
        return "-"
    shown = ", ".join(names[:3])
    return f"{len(names)}: {shown}" + (", ..." if len(names) > 3 else "")


def _won(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"
