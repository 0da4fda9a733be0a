"""`zoo finetune` weights: the model's own default, recorded resolved in the run's config.yaml."""

from __future__ import annotations

import socket

import yaml
from click.testing import CliRunner

from zoo.cli import main


def _tiny_run(out, *extra):
    args = ["finetune", "--data", "builtin:digits?classes=0-2&per_class=10", "--epochs", "1",
            "--input-shape", "16,16,1", "--option", "filters=[4]", "--option", "dense_units=4",
            "--batch-size", "16", "--quiet", "--out", str(out), *extra]  # fmt: skip
    return CliRunner().invoke(main, args)


def test_default_weights_of_a_model_without_pretrained_ones_is_recorded_as_random(tmp_path):
    result = _tiny_run(tmp_path / "run")
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["weights"] is None  # `weights: null` keeps meaning random init


def test_backbone_defaults_to_imagenet_and_offline_says_the_way_out(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))  # an empty cache

    def no_network(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    args = ["finetune", "--model", "mobilenet_v2_gap", "--input-shape", "32,32,3", "--epochs",
            "1", "--data", "builtin:digits?per_class=2", "--quiet", "--out", str(tmp_path / "r")]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    assert "Could not download ImageNet weights for mobilenet_v2_gap" in errors[0]
    assert "--weights none" in errors[0] and "--weights PATH" in errors[0]
