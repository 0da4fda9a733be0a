"""The main job's transfer-learning step: base, then transfer and scratch for each seed."""

from __future__ import annotations

import json

import pytest

from finetune.demo import SEEDS, transfer_demo


@pytest.mark.slow
def test_transfer_demo_compares_both_arms_on_every_seed(tmp_path):
    summary = transfer_demo(tmp_path / "demo", quiet=True)
    assert json.loads((tmp_path / "demo" / "summary.json").read_text())["gain"] == summary["gain"]
    for arm in ("transfer", "scratch"):
        assert len(summary[arm]["per_seed"]) == len(SEEDS)
        assert all(0.0 <= accuracy <= 1.0 for accuracy in summary[arm]["per_seed"])
        assert summary[arm]["train_examples"] == 25  # 5 labels for each of digits 5-9
    assert (tmp_path / "demo" / "transfer" / "model.keras").is_file()  # what make demo converts
    assert summary["base"]["test_accuracy"] > 0.9
    assert "mean over seeds" in summary["table"]
