"""Checks of builder options: each returns the clean value or raises a one-line ValueError.

Options arrive from YAML (`--option units=abc`, config files) as well as from Python, so a
builder checks every value's type before Keras sees it; the property tests in
tests/zoo/test_properties.py hold every builder to "builds or raises ValueError".

Example:
    >>> positive_int("lstm", "units", 8)
    8
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def _fail(model: str, name: str, rule: str, value: Any) -> ValueError:
    return ValueError(f"{model}: {name} should be {rule}. Received: {name}={value!r}")


def is_int(value: Any) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def positive_int(model: str, name: str, value: Any, *, minimum: int = 1) -> int:
    """An int >= `minimum` (bools are refused: `True` is not a layer width)."""
    if not is_int(value) or value < minimum:
        raise _fail(model, name, f"an int >= {minimum}", value)
    return int(value)


def int_list(model: str, name: str, value: Any) -> tuple[int, ...]:
    """A non-empty list/tuple of positive ints, e.g. filters=[32, 64]."""
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence)
        or not value
        or not all(is_int(item) and item >= 1 for item in value)
    ):
        raise _fail(model, name, "a non-empty list of positive ints, e.g. [32, 64]", value)
    return tuple(int(item) for item in value)


def fraction(model: str, name: str, value: Any) -> float:
    """A number in [0, 1), e.g. a dropout rate."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0.0 <= value < 1.0:
        raise _fail(model, name, "in [0, 1)", value)
    return float(value)


def flag(model: str, name: str, value: Any) -> bool:
    """True or False."""
    if not isinstance(value, bool):
        raise _fail(model, name, "true or false", value)
    return value


def finite_number(model: str, name: str, value: Any) -> float:
    """A finite int or float."""
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(float(value))
    ):
        raise _fail(model, name, "a finite number", value)
    return float(value)
