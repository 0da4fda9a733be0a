"""zoo/_params.json: the parameter counts `zoo list` shows without building any model.

tests/zoo/test_models.py::test_builds_at_defaults_as_described builds each model at its
defaults and compares with these counts; here, that the file covers exactly the registry.
"""

from __future__ import annotations

import zoo
from zoo._params import stored_params


def test_params_file_covers_every_registered_model():
    assert sorted(stored_params()) == sorted(zoo.list_models()), (
        "zoo/_params.json is stale: regenerate it with `python -m zoo._params`"
    )
    assert all(count > 0 for count in stored_params().values())


def test_model_info_reads_the_file_and_builds_nothing(monkeypatch):
    from zoo import _registry

    monkeypatch.setattr(_registry, "_PARAMS_CACHE", {})
    monkeypatch.setattr(_registry, "create_model", lambda *a, **k: 1 / 0)  # any build fails
    assert zoo.model_info("resnet50_flatten").params == stored_params()["resnet50_flatten"]
