"""A CSV manifest as a Source: `path,label[,split]` rows naming image files, as many public
datasets ship them.

Decisions:
- Read with the csv module (no pandas in zoo.data). Column names are matched case-insensitively
  after stripping; other columns are ignored. `path` is relative to the CSV's folder (absolute
  paths are used as they are); `label` is the class name; `split` (optional) is train, val,
  validation (= val) or test, and without it every row is training data (val carved by the
  seeded split rules).
- Class names are the sorted distinct labels (numerically when every label is an integer, so
  10 comes after 9), over all splits.
- Files named but missing are one error (the first few and the count), not a training run that
  silently learns from fewer images; unreadable ones are skipped with the one warning of `_files`.
"""

from __future__ import annotations

import csv
from pathlib import Path

from zoo.data._files import NOT_IMAGE, files_source, is_image_name
from zoo.data._source import Source

COLUMNS = ("path", "label")
SPLIT_VALUES = {"train": "train", "val": "val", "validation": "val", "test": "test"}
_SHOWN = 3


def read_manifest(path: str | Path, origin: str) -> Source:
    """The images a `path,label[,split]` CSV names, as a Source.

    Example:
        >>> source = read_manifest("labels.csv", "labels.csv")  # path,label,split rows
        >>> source.class_names, len(source.train), len(source.val)
        (['cat', 'dog'], 80, 20)
    """
    csv_path = Path(path).expanduser()
    if not csv_path.is_file():
        raise ValueError(
            f"{origin}: no such file; a CSV manifest has columns path,label and optionally split. "
            f"Received: {str(csv_path)!r}"
        )
    rows = _rows(csv_path, origin)
    base = csv_path.parent
    files = [str(base / row[0]) for row in rows]  # an absolute path replaces `base`
    _check_present(files, origin, base)
    names = _class_names([row[1] for row in rows])
    if len(names) < 2:
        raise ValueError(
            f"{origin}: classification needs at least 2 distinct labels. Received: only "
            f"{names[0]!r} in {len(rows)} rows"
        )
    index = {name: i for i, name in enumerate(names)}
    listed: dict[str, tuple[list[str], list[int]]] = {"train": ([], [])}
    ignored: dict[str, list[str]] = {}
    for file, (_, label, split) in zip(files, rows, strict=True):
        if not is_image_name(file):
            ignored.setdefault(NOT_IMAGE, []).append(file)
            continue
        paths, labels = listed.setdefault(split, ([], []))
        paths.append(file)
        labels.append(index[label])
    return files_source(
        origin,
        f"CSV manifest {csv_path} ({len(rows)} rows)",
        names,
        listed,
        ignored,
        [f"label {name!r}" for name in names],
    )


def _rows(csv_path: Path, origin: str) -> list[tuple[str, str, str]]:
    """(path, label, split) per data row; one-line errors for missing columns or values."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [column.strip().lower() for column in next(reader, [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise ValueError(
                    f"{origin}: a CSV manifest needs a header row with columns path,label (and "
                    f"optionally split). Received: columns {header}"
                )
            at = {c: header.index(c) for c in (*COLUMNS, "split") if c in header}
            rows = [_row(values, at, origin, reader.line_num) for values in reader if any(values)]
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(
            f"{origin}: not a readable UTF-8 CSV file ({error}). Received: {str(csv_path)!r}"
        ) from None
    if not rows:
        raise ValueError(f"{origin}: the manifest lists no files. Received: a header row only")
    return rows


def _row(values: list[str], at: dict[str, int], origin: str, line: int) -> tuple[str, str, str]:
    def cell(column: str) -> str:
        index = at.get(column)
        return values[index].strip() if index is not None and index < len(values) else ""

    path, label = cell("path"), cell("label")
    split = cell("split").lower() if "split" in at else "train"
    if not path or not label:
        raise ValueError(
            f"{origin}: line {line} needs a path and a label. Received: {','.join(values)!r}"
        )
    if split not in SPLIT_VALUES:
        raise ValueError(
            f"{origin}: line {line}: split should be train, val, validation or test. "
            f"Received: split={cell('split')!r}"
        )
    return path, label, SPLIT_VALUES[split]


def _check_present(files: list[str], origin: str, base: Path) -> None:
    missing = [file for file in files if not Path(file).is_file()]
    if missing:
        shown = ", ".join(missing[:_SHOWN]) + (", ..." if len(missing) > _SHOWN else "")
        raise ValueError(
            f"{origin}: {len(missing)} of {len(files)} files it names do not exist (paths are "
            f"relative to {base}): {shown}. Received: {len(missing)} missing"
        )


def _class_names(labels: list[str]) -> list[str]:
    distinct = set(labels)
    if all(label.lstrip("-").isdigit() for label in distinct):
        return sorted(distinct, key=int)
    return sorted(distinct)
