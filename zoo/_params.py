"""Parameter counts of the registry's models at their defaults, read from zoo/_params.json.

`zoo list` and `model_info` read the counts from this small file instead of building 16 models
(seconds of Keras import and graph building for a table). tests/zoo/test_params.py builds every
model and holds the file to the truth; after changing a builder, regenerate it with:

    .venv/bin/python -m zoo._params

Example:
    >>> stored_params()["cnn"]
    93322
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

PARAMS_FILE = Path(__file__).with_name("_params.json")


@functools.cache
def stored_params() -> dict[str, int]:
    """{model name: parameters at its defaults}; empty if the file is missing."""
    if not PARAMS_FILE.is_file():
        return {}
    return {str(name): int(count) for name, count in json.loads(PARAMS_FILE.read_text()).items()}


def counted_params() -> dict[str, int]:
    """Build every registered model at its defaults (random weights) and count its parameters."""
    import zoo

    return {
        name: int(zoo.create_model(name, weights=None).count_params()) for name in zoo.list_models()
    }


def write_params_file() -> dict[str, int]:
    """Recount and rewrite zoo/_params.json; returns the counts."""
    counts = counted_params()
    PARAMS_FILE.write_text(json.dumps(counts, indent=2) + "\n", encoding="utf-8")
    stored_params.cache_clear()
    return counts


if __name__ == "__main__":
    for model_name, params in write_params_file().items():
        print(f"{model_name:<26}{params:>12,}")
