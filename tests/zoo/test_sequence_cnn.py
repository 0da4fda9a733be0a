"""fcn, resnet1d and inception_time: the reference layer tables, options, and padding kept out."""

from __future__ import annotations

import keras
import numpy as np
import pytest

import zoo

CONV_MODELS = ("fcn", "resnet1d", "inception_time")
# Small variants: the padding test is about the graph's wiring, not its width.
TINY = {
    "fcn": dict(filters=(8, 16, 8)),
    "resnet1d": dict(filters=(8, 16, 16)),
    "inception_time": dict(filters=4, bottleneck=4, kernel_size=8),
}


def _conv(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return k * c_in * c_out + (c_out if bias else 0)


def _bn(c: int) -> int:
    return 4 * c  # gamma, beta, moving mean, moving variance


# Counted by hand from the reference tables, at 1 channel and 2 classes (Dense 128 -> 2).
HEAD = 128 * 2 + 2
FCN = _conv(8, 1, 128) + _bn(128) + _conv(5, 128, 256) + _bn(256) + _conv(3, 256, 128) + _bn(128)
RESNET = (
    _conv(8, 1, 64) + _conv(5, 64, 64) + _conv(3, 64, 64) + 3 * _bn(64)  # block 1
    + _conv(1, 1, 64) + _bn(64)  # its shortcut: 1x1 conv + BN
    + _conv(8, 64, 128) + _conv(5, 128, 128) + _conv(3, 128, 128) + 3 * _bn(128)
    + _conv(1, 64, 128) + _bn(128)
    + _conv(8, 128, 128) + _conv(5, 128, 128) + _conv(3, 128, 128) + 3 * _bn(128)
    + _bn(128)  # the last block's shortcut: BatchNorm only
)  # fmt: skip
# One module: kernels 40/20/10 and the pool branch's 1x1, 32 filters each, no biases; BN of 128.
FIRST_MODULE = (40 + 20 + 10) * 1 * 32 + 1 * 32 + _bn(128)  # no bottleneck on one channel
MODULE = 128 * 32 + (40 + 20 + 10) * 32 * 32 + 128 * 32 + _bn(128)
INCEPTION = (
    FIRST_MODULE + 5 * MODULE
    + (1 * 128 + _bn(128))  # shortcut after module 3, from the input
    + (128 * 128 + _bn(128))  # after module 6, from module 3's output
)  # fmt: skip


@pytest.mark.parametrize(
    "name, expected",
    [("fcn", FCN + HEAD), ("resnet1d", RESNET + HEAD), ("inception_time", INCEPTION + HEAD)],
)
def test_parameter_counts_match_the_reference_tables(name, expected):
    assert (FCN + HEAD, RESNET + HEAD, INCEPTION + HEAD) == (265_986, 506_818, 422_498)
    model = zoo.create_model(name, input_shape=(150, 1), num_classes=2)
    assert model.count_params() == expected
    assert zoo.model_info(name).params == expected  # zoo/_params.json, at the defaults


def _convs(model) -> list[tuple[int, int]]:
    return [
        (layer.filters, layer.kernel_size[0])
        for layer in model.layers
        if isinstance(layer, keras.layers.Conv1D)
    ]


def test_layer_tables():
    assert _convs(zoo.create_model("fcn")) == [(128, 8), (256, 5), (128, 3)]
    resnet = zoo.create_model("resnet1d")
    block = lambda w: [(w, 8), (w, 5), (w, 3)]  # noqa: E731
    want = block(64) + [(64, 1)] + block(128) + [(128, 1)] + block(128)
    assert sorted(_convs(resnet)) == sorted(want)  # model.layers is in graph order
    inception = zoo.create_model("inception_time", input_shape=(None, 3))
    kernels = [k for _, k in _convs(inception)]
    assert kernels[:5] == [1, 40, 20, 10, 1]  # a bottleneck on 3 channels
    assert sum(isinstance(x, keras.layers.Add) for x in inception.layers) == 2
    one_channel = zoo.create_model("inception_time")
    assert [k for _, k in _convs(one_channel)][:4] == [40, 20, 10, 1]


@pytest.mark.parametrize("name", CONV_MODELS)
@pytest.mark.parametrize("channels", [1, 3])
def test_padded_batch_matches_each_series_alone(name, channels):
    rng = np.random.default_rng(channels)
    options = dict(input_shape=(None, channels), num_classes=3, classifier_activation="linear")
    model = zoo.create_model(name, masking=True, **options, **TINY[name])
    for layer in model.layers:  # inference BatchNorm that shifts and scales, as after training
        if isinstance(layer, keras.layers.BatchNormalization):
            shapes = [w.shape for w in layer.get_weights()]
            layer.set_weights(
                [rng.uniform(0.5, 2, shapes[0]), rng.normal(size=shapes[1])]
                + [rng.normal(size=shapes[2]), rng.uniform(0.5, 2, shapes[3])]
            )
    series = [rng.normal(size=(n, channels)).astype("float32") for n in (4, 9, 13)]
    batch = np.zeros((3, 13, channels), "float32")
    for row, s in enumerate(series):
        batch[row, : len(s)] = s
    alone = np.concatenate([keras.ops.convert_to_numpy(model(s[None])) for s in series])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(batch)), alone, atol=1e-5)
    plain = zoo.create_model(name, **options, **TINY[name])
    plain.set_weights(model.get_weights())  # the mask layers hold no weights
    leak = np.abs(keras.ops.convert_to_numpy(plain(batch)) - alone)[:2].max()  # logits
    assert leak > 1e-3, "without masking the padding should reach the shorter series"


def test_masked_model_saves_and_loads_through_zoo(tmp_path):
    model = zoo.create_model("inception_time", masking=True, **TINY["inception_time"])
    x = np.random.default_rng(0).normal(size=(2, 11, 1)).astype("float32")
    x[0, 6:] = 0.0
    model.save(tmp_path / "m.keras")
    again = zoo.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again(x)), np.asarray(model(x)))


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("fcn", dict(filters=(8, 8), kernel_sizes=(3,)), "one entry per block"),
        ("resnet1d", dict(filters=()), "filters should be"),
        ("inception_time", dict(kernel_size=2), "kernel_size should be an int >= 4"),
        ("fcn", dict(masking="yes"), "masking should be true or false"),
    ],
)
def test_bad_options_are_one_line_errors(name, options, message):
    with pytest.raises(ValueError, match=message) as error:
        zoo.create_model(name, **options)
    assert "\n" not in str(error.value) and "Received:" in str(error.value)


def test_recommended_training_settings_are_recorded():
    for name in CONV_MODELS:
        recommended = zoo.model_info(name).recommended
        assert recommended["optimizer"] == "adam" and recommended["lr_schedule"] == "cosine"
        assert recommended["epochs"] >= 100 and recommended["val_split"] == 0
    assert zoo.model_info("cnn").recommended == {}
