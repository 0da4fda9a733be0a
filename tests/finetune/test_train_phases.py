"""The two phases on real tiny data: frozen weights stay put in phase 1 and move in phase 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

from finetune import FinetuneConfig, run_finetune

BACKBONE = "mobilenet_v2_gap"
SHAPE = (32, 32, 3)


def _backbone_weights(model):
    backbone = model.get_layer("backbone")
    return {v.path: np.array(v) for v in backbone.weights}


@pytest.fixture(scope="module")
def train_init_weights(tmp_path_factory):
    """Known initial weights (a whole-model file) so the test can compare against them."""
    import zoo

    model = zoo.create_model(BACKBONE, input_shape=SHAPE, num_classes=3, weights=None)
    path = tmp_path_factory.mktemp("init") / "init.weights.h5"
    model.save_weights(str(path))
    return path, _backbone_weights(model), np.array(model.get_layer("predictions").kernel)


def _run(folder, weights, out, **options):
    cfg = FinetuneConfig(
        model=BACKBONE,
        data=str(folder),
        weights=str(weights),
        input_shape=SHAPE,
        batch_size=8,
        val_split=0.2,
        out=str(out),
        quiet=True,
        **options,
    )
    return run_finetune(cfg)


@pytest.mark.slow
def test_phase_one_freezes_the_backbone(train_image_folder, train_init_weights, tmp_path):
    import zoo

    path, backbone_before, head_before = train_init_weights
    result = _run(train_image_folder, path, tmp_path / "p1", epochs=1, head_epochs=1)
    model = zoo.load_model(result.model_path)
    after = _backbone_weights(model)
    assert all(np.array_equal(after[k], v) for k, v in backbone_before.items())
    assert not np.array_equal(np.array(model.get_layer("predictions").kernel), head_before)
    assert result.decisions["phases"]["1"]["body_max_change"] == 0.0
    assert result.metrics["epochs"]["head"] == 1 and result.metrics["num_classes"] == 3


@pytest.mark.slow
def test_phase_two_moves_the_backbone_but_not_batchnorm(
    train_image_folder, train_init_weights, tmp_path
):
    import zoo

    path, backbone_before, _ = train_init_weights
    result = _run(
        train_image_folder,
        path,
        tmp_path / "p2",
        epochs=1,
        head_epochs=0,
        lr=1e-2,
        fine_tune_lr=1e-2,
    )
    after = _backbone_weights(zoo.load_model(result.model_path))
    moved = {k for k, v in backbone_before.items() if not np.array_equal(after[k], v)}
    conv = [k for k in backbone_before if "conv" in k.lower() and k.endswith("kernel")]
    batch_norm = [k for k in backbone_before if "bn" in k.lower() or "batch_norm" in k.lower()]
    assert conv and batch_norm
    assert set(conv) <= moved  # every conv kernel was trained
    assert not moved & set(batch_norm)  # BN stays frozen and in inference mode
    notes = result.decisions["phases"]["2"]
    assert notes["body_max_change"] > 0 and notes["batchnorm_frozen"] > 0


@pytest.mark.slow
def test_unfreeze_top_n_layers(train_image_folder, train_init_weights, tmp_path):
    path, _, _ = train_init_weights
    result = _run(train_image_folder, path, tmp_path / "n", epochs=2, head_epochs=1, unfreeze=2)
    notes = result.decisions["phases"]["2"]
    # The top two weighted layers are Conv_1 and Conv_1_bn; BatchNorm stays frozen.
    assert notes["unfrozen_layers"] == 1 and notes["top_unfrozen"] == ["Conv_1"]
    assert result.decisions["phases"]["1"]["body_max_change"] == 0.0
    history = (tmp_path / "n" / "history.csv").read_text().splitlines()
    assert [line.split(",")[1] for line in history[1:]] == ["1", "2"]  # phase column


@pytest.mark.slow
def test_sequences_both_phases_via_from(train_sequence_npz, tmp_path):
    common = dict(
        data=str(train_sequence_npz),
        model_options={"units": 8, "masking": True},
        batch_size=8,
        quiet=True,
    )
    first = run_finetune(FinetuneConfig(model="lstm", epochs=1, out=str(tmp_path / "a"), **common))
    assert first.metrics["num_classes"] == 3 and first.decisions["phases"]["plan"]["body"] == "none"
    second = run_finetune(
        FinetuneConfig(
            from_run=str(tmp_path / "a"), epochs=2, head_epochs=1, out=str(tmp_path / "b"), **common
        )
    )
    phases = second.decisions["phases"]
    assert phases["plan"]["body"] == "all_but_head"
    assert phases["1"]["body_max_change"] == 0.0 and phases["2"]["body_max_change"] > 0
    assert second.config.model == "lstm"


def test_from_rebuilds_the_classifier_and_keeps_the_rest(train_digits_run, tmp_path):
    import zoo

    result = run_finetune(
        FinetuneConfig(
            data="builtin:digits?classes=5-9&per_class=5",
            from_run=str(train_digits_run),
            epochs=1,
            head_epochs=1,
            out=str(tmp_path / "t"),
            quiet=True,
        )
    )
    before = zoo.load_model(train_digits_run / "model.keras")
    after = zoo.load_model(result.model_path)
    assert after.output_shape == (None, 5)
    for name in ("conv1", "conv2", "dense"):  # frozen in phase 1, copied from the earlier run
        for a, b in zip(before.get_layer(name).weights, after.get_layer(name).weights, strict=True):
            assert np.array_equal(np.array(a), np.array(b))
    assert set(result.decisions["model"]["copied_layers"]) == {"conv1", "conv2", "dense"}
    saved = json.loads((tmp_path / "t" / "metrics.json").read_text())
    assert saved["precision"]["policy"] == "float32"
    assert set(saved["per_class_accuracy"]) == {"5", "6", "7", "8", "9"}
