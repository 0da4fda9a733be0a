"""`evaluate(source, data)`: accuracy, top-k, per-class precision/recall/F1 and the confusion
matrix of any artefact on labelled data read through `zoo.data`.

Every source kind gets the same inputs: `zoo.data.load_arrays` decodes and resizes images as
training does (raw 0-255 pixels; zoo models carry their own preprocessing). A run directory (or
an artefact inside one) defaults to the run's `data`, read with the run's `seed` and
`val_split`, so `split="val"` is the examples that run validated on; the default split is
"test" when the data has one, else "val". Data must fit the model: its task and shape (checked
by `zoo.data`), as many classes as the model predicts, and the class names the model or its run
records (`convert.calibration.check_classes`, the one definition).

Example:
    >>> result = evaluate("runs/demo/model.int8.onnx", "builtin:digits", out="eval/")
    >>> result.accuracy, result.top_k, sorted(result.per_class)[:2]
    (0.962, 5, ['0', '1'])
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from convert._common import EVAL_SPLITS, temp_path
from convert.calibration import check_classes, run_split_rules
from convert.classify import Classifier, open_classifier

METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion.png"
TOP_K = 5


@dataclasses.dataclass
class Evaluation:
    """Scores of one artefact on one split (`to_dict()` is what metrics.json holds)."""

    source: str
    runtime: str
    data: str
    split: str
    examples: int
    class_names: list[str]
    accuracy: float
    top_k: int | None
    top_k_accuracy: float | None
    per_class: dict[str, dict[str, float]]
    confusion_matrix: list[list[int]]
    files: dict[str, str] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def format_table(self) -> str:
        """A short report: the header line, then one row per class."""
        top = f", top-{self.top_k} {self.top_k_accuracy:.4f}" if self.top_k else ""
        lines = [
            f"{self.source} ({self.runtime}) on {self.data} [{self.split}, {self.examples} "
            f"examples]: accuracy {self.accuracy:.4f}{top}",
            f"{'class':<20} {'precision':>9} {'recall':>9} {'f1':>9} {'support':>8}",
        ]
        for name, row in self.per_class.items():
            lines.append(
                f"{name[:20]:<20} {row['precision']:>9.4f} {row['recall']:>9.4f} "
                f"{row['f1']:>9.4f} {int(row['support']):>8}"
            )
        return "\n".join(lines)


def _default_spec(clf: Classifier, data: str | None) -> str:
    """--data, else the data of the run holding SOURCE (`zoo.runs.recorded_data`)."""
    from convert.metadata import run_dir_of
    from zoo.runs import recorded_data

    if data is not None:
        return str(data)
    run_dir = run_dir_of(clf.path)
    recorded = recorded_data(run_dir, clf.run_config) if run_dir is not None else None
    if recorded:
        return recorded
    raise ValueError(
        f"evaluate needs labelled data: pass --data SPEC (a folder, FILE.npz or builtin:NAME); "
        f"only a run directory (or a file inside one) brings its own. Received: {str(clf.path)!r} "
        f"without --data"
    )


def load_split(clf: Classifier, spec: str, split: str | None, limit: int | None = None):
    """The `zoo.data.Arrays` to score: `split` ("all": every split), default test else val."""
    from zoo.data import Arrays, resolve_data, split_arrays

    if split is not None and split not in EVAL_SPLITS:
        raise ValueError(
            f"split should be one of {', '.join(EVAL_SPLITS)}. Received: split={split!r}"
        )
    # The run's seed and val_split: "val" is the examples that run validated on.
    rules = run_split_rules(clf.run_config)
    resolved = resolve_data(spec, task=clf.task, input_shape=clf.input_shape, **rules)
    if split is None:
        split = "test" if "test" in resolved.splits else "val"
    if split != "all":
        return split_arrays(resolved, split, limit)
    parts = [split_arrays(resolved, name) for name in ("train", "val", "test")
             if name in resolved.splits]  # fmt: skip
    if clf.task == "sequence":  # each split is padded to its own longest series
        steps = max(p.x.shape[1] for p in parts)
        xs = [np.pad(p.x, ((0, 0), (0, steps - p.x.shape[1]), (0, 0))) for p in parts]
    else:
        xs = [p.x for p in parts]
    x, y = np.concatenate(xs)[:limit], np.concatenate([p.y for p in parts])[:limit]
    return Arrays(x, y, list(parts[0].class_names), "all", parts[0].origin)


def scores(y: np.ndarray, probabilities: np.ndarray, class_names: list[str]) -> dict[str, Any]:
    """Accuracy, top-k (k=5 above 5 classes), per-class precision/recall/F1, confusion matrix.

    Example:
        >>> scores(np.array([0, 1]), np.array([[0.9, 0.1], [0.4, 0.6]]), ["a", "b"])["accuracy"]
        1.0
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        top_k_accuracy_score,
    )

    labels = list(range(len(class_names)))
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        y, predicted, labels=labels, zero_division=0
    )
    k = TOP_K if len(labels) > TOP_K else None
    return {
        "accuracy": float(accuracy_score(y, predicted)),
        "top_k": k,
        "top_k_accuracy": (
            float(top_k_accuracy_score(y, probabilities, k=k, labels=labels)) if k else None
        ),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(class_names, precision, recall, f1, support, strict=True)
        },
        "confusion_matrix": confusion_matrix(y, predicted, labels=labels).tolist(),
    }


def evaluate(
    source: str | os.PathLike[str],
    data: str | None = None,
    *,
    split: str | None = None,
    batch_size: int = 64,
    out: str | os.PathLike[str] | None = None,
    runtime: str | None = None,
    limit: int | None = None,
    safe_mode: bool = True,
) -> Evaluation:
    """Score SOURCE on labelled data; with `out`, write metrics.json and confusion.png there.

    Args:
        source: a `.keras` file, run directory, SavedModel, `.onnx`, OpenVINO `.xml` or engine.
        data: a data SPEC (folder, FILE.npz, builtin:NAME[?query]). Defaults to the run's.
        split: "test", "val", "train" or "all". Defaults to test if the data has one, else val.
        batch_size: examples per forward pass.
        out: a folder for `metrics.json` and `confusion.png` (written atomically).
        runtime: the runtime for SOURCE (`convert.runners.RUNTIMES`); None: its default.
        limit: score only the first `limit` examples.
        safe_mode: False lets a `.keras` file run code stored in it; trusted files only.

    Example:
        >>> evaluate("runs/demo", split="val").accuracy
        0.951
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size should be a positive int. Received: {batch_size!r}")
    clf = open_classifier(source, runtime=runtime, safe_mode=safe_mode)
    spec = _default_spec(clf, data)
    arrays = load_split(clf, spec, split, limit)
    check_classes(
        spec, arrays.class_names, output_width=clf.width,
        run_class_names=clf.meta.class_names, option="--data",
    )  # fmt: skip
    if not len(arrays):
        raise ValueError(f"--data {spec} has no examples in its {arrays.split!r} split.")
    probabilities = clf.probabilities(arrays.x, batch_size)
    result = Evaluation(
        source=str(source), runtime=clf.runner.runtime, data=spec, split=arrays.split,
        examples=len(arrays), class_names=list(arrays.class_names),
        **scores(arrays.y, probabilities, list(arrays.class_names)),
    )  # fmt: skip
    if out is not None:
        write_outputs(result, out)
    return result


def _atomic(path: Path, write) -> None:
    """`write(tmp)` then rename: a reader never sees a half-written file."""
    tmp = temp_path(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_outputs(result: Evaluation, out: str | os.PathLike[str]) -> None:
    """`out/metrics.json` and `out/confusion.png`, each written atomically."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    result.files = {
        "metrics": str(folder / METRICS_FILE),
        "confusion": str(folder / CONFUSION_FILE),
    }
    _atomic(folder / CONFUSION_FILE, lambda tmp: plot_confusion(result, tmp))
    text = json.dumps(result.to_dict(), indent=2) + "\n"
    _atomic(folder / METRICS_FILE, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def plot_confusion(result: Evaluation, path: str | os.PathLike[str]) -> None:
    """The confusion matrix as a labelled heat map (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    matrix = np.asarray(result.confusion_matrix)
    size = max(4.0, 0.5 * len(matrix) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    try:
        axis.imshow(matrix, cmap="Blues")
        ticks = range(len(matrix))
        axis.set_xticks(ticks, result.class_names, rotation=45, ha="right")
        axis.set_yticks(ticks, result.class_names)
        if len(matrix) <= 20:
            for (row, col), count in np.ndenumerate(matrix):
                axis.text(col, row, str(count), ha="center", va="center", fontsize=8)
        axis.set_xlabel("predicted")
        axis.set_ylabel("true")
        axis.set_title(f"{Path(result.source).name}: {result.split}, acc {result.accuracy:.3f}")
        figure.tight_layout()
        figure.savefig(path, dpi=100, format="png")
    finally:
        plt.close(figure)
