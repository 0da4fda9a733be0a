"""What a run reports: history.csv, evaluation metrics, per-class accuracy and PNG plots.

Example:
    >>> write_history_csv(paths.history, history_rows)
    >>> scores = evaluate_split(model, data.test, num_classes=5)
    >>> plot_confusion(scores["confusion_matrix"], class_names, paths.confusion_png)
"""

from __future__ import annotations

import csv
import io
import os
from typing import Any

import numpy as np

from finetune.rundir import atomic_save, atomic_write_text


def write_history_csv(path: str | os.PathLike[str], rows: list[dict[str, Any]]) -> None:
    """One row per epoch (epoch, phase, lr, loss, accuracy, val_..., seconds), atomically."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _predict_classes(model: Any, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    labels, predicted = [], []
    for x, y in dataset:
        scores = np.asarray(model(x, training=False), dtype=np.float32)
        if scores.shape[-1] == 1:  # one sigmoid unit
            predicted.append((scores[:, 0] > (0.0 if _is_logits(model) else 0.5)).astype(int))
        else:
            predicted.append(scores.argmax(axis=-1))
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[-1] > 1:  # one-hot (label smoothing): back to indices
            y = y.argmax(axis=-1)
        labels.append(y.reshape(-1).astype(int))
    if not labels:
        return np.zeros(0, int), np.zeros(0, int)
    return np.concatenate(labels), np.concatenate(predicted)


def _is_logits(model: Any) -> bool:
    from finetune.model import output_activation

    return output_activation(model) == "linear"


def evaluate_split(model: Any, dataset: Any, num_classes: int) -> dict[str, Any]:
    """Loss, accuracy, per-class accuracy and the confusion matrix of `model` on `dataset`."""
    values = model.evaluate(dataset, verbose=0, return_dict=True)
    labels, predicted = _predict_classes(model, dataset)
    classes = max(num_classes, 2)
    confusion = np.zeros((classes, classes), dtype=int)
    np.add.at(confusion, (labels, predicted), 1)
    totals = confusion.sum(axis=1)
    per_class = [float(confusion[i, i] / totals[i]) if totals[i] else None for i in range(classes)]
    return {
        "loss": float(values["loss"]),
        "accuracy": float(values.get("accuracy", values.get("compile_metrics", np.nan))),
        "examples": int(len(labels)),
        "per_class_accuracy": per_class,
        "confusion_matrix": confusion.tolist(),
    }


def _save_figure(figure: Any, path: str | os.PathLike[str]) -> None:
    import matplotlib.pyplot as plt

    atomic_save(path, lambda tmp: figure.savefig(tmp, dpi=100, format="png"))
    plt.close(figure)


def plot_history(rows: list[dict[str, Any]], path: str | os.PathLike[str]) -> None:
    """Loss and accuracy per epoch (train and val), with the phase boundary marked."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [row["epoch"] for row in rows]
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for prefix, style in (("", "-o"), ("val_", "--o")):
            values = [row.get(prefix + metric) for row in rows]
            if any(v is not None and v == v for v in values):
                axis.plot(epochs, values, style, label=(prefix or "train_") + metric)
        boundaries = [
            r["epoch"] for a, r in zip(rows, rows[1:], strict=False) if a["phase"] != r["phase"]
        ]
        for epoch in boundaries:
            axis.axvline(epoch - 0.5, color="grey", linestyle=":", label="fine-tuning starts")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    figure.tight_layout()
    _save_figure(figure, path)


def plot_confusion(
    confusion: list[list[int]], class_names: list[str], path: str | os.PathLike[str], title: str
) -> None:
    """The confusion matrix as a labelled heat map (rows: true class, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(confusion)
    size = max(4.0, 0.5 * len(matrix) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    axis.imshow(matrix, cmap="Blues")
    names = list(class_names) if len(class_names) == len(matrix) else list(range(len(matrix)))
    axis.set_xticks(range(len(matrix)), names, rotation=45, ha="right")
    axis.set_yticks(range(len(matrix)), names)
    if len(matrix) <= 20:
        limit = matrix.max() / 2 if matrix.size else 0
        for (i, j), count in np.ndenumerate(matrix):
            color = "white" if count > limit else "black"
            axis.text(j, i, str(count), ha="center", va="center", color=color)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title(title)
    figure.tight_layout()
    _save_figure(figure, path)


def format_epoch(row: dict[str, Any], total: int) -> str:
    """A one-line epoch summary for the console."""
    parts = [f"epoch {row['epoch']}/{total} (phase {row['phase']})"]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if row.get(key) is not None:
            parts.append(f"{key}={row[key]:.4f}")
    parts.append(f"{row['seconds']:.1f}s")
    return "  ".join(parts)
