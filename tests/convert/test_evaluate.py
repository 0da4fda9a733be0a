"""`convert.evaluate` / `zoo evaluate` on a trained digits cnn, in every format that runs here."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import convert
from convert.classify import as_probabilities
from convert.evaluation import scores
from tests.convert.use_fixtures import CLASS_NAMES, artefacts, named_run
from zoo.cli import main
from zoo.data import load_arrays

KINDS = ("run", "keras", "saved_model", "onnx", "fp16", "int8", "xml")


@pytest.fixture(scope="module")
def made():
    return artefacts()


@pytest.fixture(scope="module")
def keras_val(made):
    return convert.evaluate(made["run"], split="val")


def test_scores_match_a_count_made_without_evaluate(made, keras_val):
    """The run's own split rules (seed 3, val_split 0.3) and Keras' argmax, counted by hand."""
    import zoo

    val = load_arrays("builtin:digits", task="image", input_shape=(28, 28, 1), split="val",
                      seed=3, val_split=0.3)  # fmt: skip
    model = zoo.load_model(made["keras"])
    predicted = np.asarray(model.predict(val.x, verbose=0)).argmax(axis=1)
    assert keras_val.split == "val" and keras_val.examples == len(val)
    assert keras_val.accuracy == pytest.approx(float(np.mean(predicted == val.y)))
    assert keras_val.accuracy > 0.5  # ten classes: chance is 0.1
    matrix = np.asarray(keras_val.confusion_matrix)
    assert matrix.sum() == len(val) and np.trace(matrix) == int(np.sum(predicted == val.y))
    assert [keras_val.per_class[n]["support"] for n in CLASS_NAMES] == np.bincount(val.y).tolist()
    assert keras_val.top_k == 5 and keras_val.top_k_accuracy >= keras_val.accuracy


def test_default_split_is_test_when_the_data_has_one(made):
    result = convert.evaluate(made["run"], limit=50)
    assert result.split == "test" and result.examples == 50 and result.data == "builtin:digits"


@pytest.mark.parametrize("kind", KINDS)
def test_every_source_kind_scores_like_keras(made, keras_val, kind):
    """--data defaults to the run's for files inside it; the same preprocessing everywhere."""
    result = convert.evaluate(made[kind], split="val")
    assert result.examples == keras_val.examples
    allowed = 0.03 if kind == "int8" else 1 / keras_val.examples
    assert abs(result.accuracy - keras_val.accuracy) <= allowed + 1e-9, kind
    runtime = {
        "run": "keras",
        "keras": "keras",
        "saved_model": "tensorflow",
        "onnx": "onnxruntime-fp32",
        "fp16": "onnxruntime-fp16",
        "int8": "onnxruntime-int8",
        "xml": "openvino-fp32",
    }
    assert result.runtime.startswith(runtime[kind])  # fmt: skip


def test_split_all_is_every_example(made):
    result = convert.evaluate(made["onnx"], split="all")
    sizes = [len(load_arrays("builtin:digits", task="image", input_shape=(28, 28, 1), split=s,
                             seed=3, val_split=0.3)) for s in ("train", "val", "test")]  # fmt: skip
    assert result.split == "all" and result.examples == sum(sizes)


def test_out_writes_metrics_json_and_a_png(made, tmp_path):
    result = convert.evaluate(made["int8"], "builtin:digits", split="val", out=tmp_path / "ev")
    written = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert written == json.loads(json.dumps(result.to_dict()))
    assert (tmp_path / "ev" / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "ev").iterdir()) == ["confusion.png", "metrics.json"]


def test_cli_json_and_table(made, tmp_path):
    result = CliRunner().invoke(main, ["evaluate", str(made["onnx"]), "--split", "val", "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert set(record) >= {"accuracy", "top_k_accuracy", "per_class", "confusion_matrix"}
    table = CliRunner().invoke(main, ["evaluate", str(made["onnx"]), "--split", "val"]).stdout
    assert f"accuracy {record['accuracy']:.4f}" in table
    assert len(table.splitlines()) == 2 + len(CLASS_NAMES)


def test_a_sigmoid_output_is_class_1_above_one_half():
    probabilities = as_probabilities(np.array([[0.7], [0.5], [0.2], [0.51]]))
    assert probabilities.argmax(axis=1).tolist() == [1, 0, 0, 1]
    assert probabilities.sum(axis=1) == pytest.approx(1.0)
    # Logits (outside [0, 1]) go through a sigmoid: 0 is the boundary.
    assert as_probabilities(np.array([[-2.0], [3.0]])).argmax(axis=1).tolist() == [0, 1]
    result = scores(np.array([1, 0, 0, 1]), probabilities, ["no", "yes"])
    assert result["accuracy"] == 1.0 and result["top_k"] is None


def test_a_one_unit_model_evaluates_on_two_classes(tmp_path):
    """A 1-unit sigmoid predicts 2 classes: 2-class data passes the class check."""
    import zoo

    model = zoo.create_model("cnn", num_classes=1, filters=[4], dense_units=4)
    model.save(tmp_path / "binary.keras")
    spec = "builtin:digits?classes=0-1"
    result = convert.evaluate(tmp_path / "binary.keras", spec, split="val")
    val = load_arrays(spec, task="image", input_shape=(28, 28, 1), split="val")
    predicted = (np.asarray(model.predict(val.x, verbose=0))[:, 0] > 0.5).astype(int)
    assert result.accuracy == pytest.approx(float(np.mean(predicted == val.y)))
    assert result.class_names == ["0", "1"]


def test_lowered_files_carry_the_metadata_themselves(made):
    """Read from the files alone (not the run beside them): metadata_props survive the fp16
    and int8 lowerings, and the OpenVINO IR holds them in rt_info."""
    import onnx

    from convert.metadata import read_onnx, read_openvino

    for kind in ("onnx", "fp16", "int8", "xml"):
        meta = read_openvino(made[kind]) if kind == "xml" else read_onnx(made[kind])
        assert meta.class_names == CLASS_NAMES, kind
        assert (meta.task, meta.input_shape, meta.model) == ("image", (28, 28, 1), "cnn"), kind
    props = {p.key: p.value for p in onnx.load(made["int8"]).metadata_props}
    assert json.loads(props["kerazoo.class_names"]) == CLASS_NAMES


def test_other_class_names_than_the_run_recorded_are_refused(tmp_path):
    import yaml

    run = named_run()
    other = tmp_path / "other_names"
    other.mkdir()
    (other / "model.keras").write_bytes((run / "model.keras").read_bytes())
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["class_names"] = list("abcdefghij")
    (other / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="should have the classes the run was trained on"):
        convert.evaluate(other, split="val")
