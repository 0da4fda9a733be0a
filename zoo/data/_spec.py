"""Parsing of the `--data SPEC` strings: a folder, a `.csv` manifest, a `.npz` file or
`builtin:NAME`, plus a query.

Pure string work (no file-system access, no TensorFlow), so the CLI can validate a spec instantly
and `convert` can share it.
"""

from __future__ import annotations

import dataclasses
import re

from zoo.data._builtin import BUILTINS

BUILTIN_PREFIX = "builtin:"
QUERY_KEYS = ("classes", "per_class", "layout", "normalize")
LAYOUTS = ("classes", "splits")
# normalize=series: each sequence z-normalised per channel over its own steps (the UCR/UEA
# archive's convention; its builtin sets are already stored so).
NORMALIZE_MODES = ("series",)
# A range like 0-99999999 would build a huge tuple; no classification set has this many classes.
MAX_CLASSES = 10_000

_INT = re.compile(r"^\d+$")
_RANGE = re.compile(r"^(\d+)-(\d+)$")


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """A parsed data spec.

    Attributes:
        kind: "folder", "csv", "npz" or "builtin".
        source: the folder or file path as given, or the builtin dataset's name.
        classes: classes to keep, as class indices (int) or class names (str), in the order given;
            None keeps all. Kept classes are re-indexed 0..k-1 in their original order.
        per_class: number of labelled training examples to keep per class; None keeps all.
        layout: a folder's reading, "classes" (`DIR/<class>/`) or "splits"
            (`DIR/{train,val,test}/<class>/`); None detects it.
        normalize: "series" z-normalises each sequence per channel over its own steps; None
            leaves the values as stored.

    Example:
        >>> spec = parse_data_spec("builtin:digits?classes=5-9&per_class=10")
        >>> spec.kind, spec.source, spec.classes, spec.per_class
        ('builtin', 'digits', (5, 6, 7, 8, 9), 10)
        >>> str(spec)
        'builtin:digits?classes=5,6,7,8,9&per_class=10'
    """

    kind: str
    source: str
    classes: tuple[int | str, ...] | None = None
    per_class: int | None = None
    layout: str | None = None
    normalize: str | None = None

    def __str__(self) -> str:
        text = BUILTIN_PREFIX + self.source if self.kind == "builtin" else self.source
        query = []
        if self.classes is not None:
            query.append("classes=" + ",".join(str(c) for c in self.classes))
        if self.per_class is not None:
            query.append(f"per_class={self.per_class}")
        if self.layout is not None:
            query.append(f"layout={self.layout}")
        if self.normalize is not None:
            query.append(f"normalize={self.normalize}")
        return text + ("?" + "&".join(query) if query else "")


def parse_data_spec(spec: str | DataSpec) -> DataSpec:
    """Parse a data spec: `DIR`, `FILE.csv`, `FILE.npz` or `builtin:NAME`, each with a query.

    The query is `?key=value&key=value` with keys `classes` (`5-9`, `5,6,7`, `0-2,7` or class
    names `cat,dog`), `per_class` (a positive int) and, for a folder, `layout` (`classes` or
    `splits`, when the folder can be read both ways) and, for sequences, `normalize=series`
    (per-series z-normalisation). Only the syntax and builtin names are
    checked here; paths are checked when the data is loaded. A `?` always starts the query, so
    paths containing `?` are not supported.

    Args:
        spec: the spec string (surrounding whitespace is ignored), or an already parsed DataSpec.

    Returns:
        The DataSpec; `str()` of it gives back a canonical spec string that parses to the same.

    Example:
        >>> parse_data_spec("photos/?classes=cat,dog").classes
        ('cat', 'dog')
    """
    if isinstance(spec, DataSpec):
        return spec
    if not isinstance(spec, str):
        raise ValueError(
            f"A data spec should be a string (DIR, FILE.npz or builtin:NAME). Received: {spec!r}"
        )
    text = spec.strip()
    source, _, query = text.partition("?")
    source = source.strip()
    if not source:
        raise ValueError(
            "A data spec should name a folder, a .npz file or builtin:NAME, "
            f"optionally followed by ?classes=...&per_class=N. Received: {spec!r}"
        )
    options = _parse_query(query, spec) if "?" in text else {}
    if source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX) :].strip()
        if name not in BUILTINS:
            raise ValueError(
                f"Unknown builtin dataset {name!r}; valid names: {', '.join(sorted(BUILTINS))}. "
                f"Received: {spec!r}"
            )
        return DataSpec("builtin", name, **options)
    suffix = source.lower().rpartition(".")[2]
    kind = {"npz": "npz", "csv": "csv"}.get(suffix, "folder")
    if "layout" in options and kind != "folder":
        raise ValueError(
            f"layout= applies to image folders only (classes or splits). Received: {spec!r}"
        )
    return DataSpec(kind, source, **options)


def _parse_query(query: str, spec: str) -> dict:
    options: dict = {}
    for part in query.split("&"):
        key, sep, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if key not in QUERY_KEYS:
            raise ValueError(
                f"Unknown data spec option {key!r}; valid options: {', '.join(QUERY_KEYS)} "
                f"(e.g. ?classes=5-9&per_class=10). Received: {spec!r}"
            )
        if key in options:
            raise ValueError(f"Data spec option {key!r} is given twice. Received: {spec!r}")
        if not sep or not value:
            raise ValueError(
                f"Data spec option {key!r} needs a value, e.g. {key}=5. Received: {spec!r}"
            )
        if key == "layout" and value not in LAYOUTS:
            raise ValueError(f"layout should be {' or '.join(LAYOUTS)}. Received: {spec!r}")
        if key == "normalize" and value not in NORMALIZE_MODES:
            raise ValueError(
                f"normalize should be {' or '.join(NORMALIZE_MODES)} (per-series "
                f"z-normalisation of sequences). Received: {spec!r}"
            )
        options[key] = (
            _parse_classes(value, spec)
            if key == "classes"
            else value
            if key in ("layout", "normalize")
            else _parse_count(value, spec)
        )
    return options


def _parse_count(value: str, spec: str) -> int:
    if not _INT.match(value) or int(value) < 1:
        raise ValueError(
            f"per_class should be a positive integer, e.g. per_class=10. Received: {spec!r}"
        )
    return int(value)


def _parse_classes(value: str, spec: str) -> tuple[int | str, ...]:
    classes: list[int | str] = []
    for token in (t.strip() for t in value.split(",")):
        if not token:
            raise ValueError(
                f"classes has an empty entry; use e.g. classes=5-9 or classes=5,6,7. Received: "
                f"{spec!r}"
            )
        if match := _RANGE.match(token):
            low, high = int(match[1]), int(match[2])
            if low > high or high - low >= MAX_CLASSES:
                raise ValueError(
                    f"classes range {token!r} should be LOW-HIGH with LOW <= HIGH and fewer than "
                    f"{MAX_CLASSES} classes. Received: {spec!r}"
                )
            classes.extend(range(low, high + 1))
        elif _INT.match(token):
            classes.append(int(token))
        elif token.startswith("-") and _INT.match(token[1:]):
            raise ValueError(f"class indices should be >= 0. Received: {spec!r}")
        elif any(ch in token for ch in "=&?"):
            raise ValueError(
                f"classes entry {token!r} is not a class index, range or name. Received: {spec!r}"
            )
        else:
            classes.append(token)
    if len(classes) > MAX_CLASSES:
        raise ValueError(f"classes selects more than {MAX_CLASSES} classes. Received: {spec!r}")
    # Drop repeats but keep the first occurrence so the canonical form stays stable.
    return tuple(dict.fromkeys(classes))
