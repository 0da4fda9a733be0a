"""The registry API and the `zoo list` / `zoo info` commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

import zoo
from zoo.cli import main


def test_list_models_filters_with_wildcards_and_sorts_naturally():
    assert zoo.list_models("vgg16*") == ["vgg16_flatten", "vgg16_gap", "vgg16_max"]
    assert zoo.list_models("*rnn*") == ["simple_rnn"]
    recurrent, convolutional = {"simple_rnn", "lstm", "gru"}, {"fcn", "resnet1d", "inception_time"}
    assert set(zoo.list_models(task="sequence")) == recurrent | convolutional
    assert zoo.list_models() == sorted(zoo.list_models())
    assert len({name.rsplit("_", 1)[0] for name in zoo.list_models("*_gap")}) >= 4


def test_model_info_is_frozen_and_carries_the_data_contract():
    info = zoo.model_info("vgg16_flatten")
    assert (info.task, info.input_shape, info.num_classes) == ("image", (224, 224, 3), 10)
    assert info.pretrained == ("imagenet",)
    assert info.min_input_size == 32
    assert "freeze_backbone" in info.options and "weights" not in info.options
    with pytest.raises(AttributeError):
        info.name = "other"  # type: ignore[misc]
    assert json.loads(json.dumps(info.to_dict()))["params"] == 17_927_370


def test_a_new_model_is_one_decorated_function():
    import keras

    @zoo.register_model(task="sequence", input_shape=(None, 3), num_classes=2)
    def tiny_test_gru(input_shape, num_classes, *, units=4):
        """A tiny GRU used only by this test."""
        inputs = keras.Input(input_shape, name="sequence")
        hidden = keras.layers.GRU(units)(inputs)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(hidden)
        return keras.Model(inputs, outputs, name="tiny_test_gru")

    try:
        assert zoo.is_model("tiny_test_gru")
        info = zoo.model_info("tiny_test_gru")
        assert info.description == "A tiny GRU used only by this test."
        assert dict(info.options) == {"units": 4}
        assert (info.params, zoo.create_model("tiny_test_gru", units=2).count_params()) == (118, 48)
    finally:
        from zoo import _registry

        _registry._REGISTRY.pop("tiny_test_gru")
        _registry._PARAMS_CACHE.pop("tiny_test_gru", None)


def test_cli_list_table_and_json():
    runner = CliRunner()
    table = runner.invoke(main, ["list", "*rnn*"])
    assert table.exit_code == 0, table.output
    assert "simple_rnn" in table.output and "4,865" in table.output
    listed = runner.invoke(main, ["list", "--json", "--task", "sequence"])
    records = json.loads(listed.output)
    assert {r["name"]: r["params"] for r in records} == {
        "gru": 14_657,
        "lstm": 19_265,
        "simple_rnn": 4_865,
        "fcn": 265_986,  # the reference layer tables' counts (tests/zoo/test_sequence_cnn.py)
        "resnet1d": 506_818,
        "inception_time": 422_498,
    }


def test_cli_info_shows_info_and_summary():
    result = CliRunner().invoke(main, ["info", "cnn"])
    assert result.exit_code == 0, result.output
    assert "93,322" in result.output and "filters" in result.output
    data = json.loads(CliRunner().invoke(main, ["info", "lstm", "--json"]).output)
    assert data["input_shape"] == [None, 10] and data["options"]["units"] == 64


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "lsmt"], "Error: Unknown model 'lsmt'. Did you mean: lstm"),
        (["list", "nothing*"], "Error: No model matches 'nothing*'"),
    ],
)
def test_cli_errors_are_one_line_without_traceback(args, message):
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_help_is_fast_and_imports_no_backend():
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from zoo.cli import main\n"
        "result = CliRunner().invoke(main, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'finetune' in result.output and 'convert' in result.output\n"
        "heavy = {'tensorflow', 'keras', 'jax'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_python_dash_m_zoo_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "zoo", "--help"], capture_output=True, text=True, check=True
    )
    assert "Usage: zoo" in result.stdout
