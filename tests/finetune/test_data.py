"""finetune.data: tf.data pipelines over zoo.data (folders, .npz files, builtin sets), and the
proof that they feed training the examples and pixels `zoo.data.load_arrays` gives calibration.

Spec parsing, split rules and .npz validation are tested without TensorFlow in
tests/zoo/test_data.py."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from finetune.data import load_data
from tests.zoo.test_data import write_photo_folder
from zoo.data import load_arrays

# --- fixtures -------------------------------------------------------------------------------


def _image(mode: str, size: tuple[int, int], value: int) -> Image.Image:
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = np.full((size[1], size[0], channels), value, dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode)


@pytest.fixture
def data_image_folder(tmp_path):
    """circle/ (3 images) and square/ (3 good, 1 truncated JPEG) in mixed modes, sizes, formats,
    plus a README.txt that is not an image."""
    root = tmp_path / "shapes"
    (root / "circle").mkdir(parents=True)
    (root / "square" / "nested").mkdir(parents=True)
    _image("RGB", (30, 20), 200).save(root / "circle" / "a.png")
    _image("L", (16, 16), 50).save(root / "circle" / "b.jpg", quality=95)
    _image("RGBA", (25, 25), 120).save(root / "circle" / "c.PNG")
    _image("L", (12, 40), 10).save(root / "square" / "a.png")
    _image("RGB", (64, 48), 250).save(root / "square" / "b.jpeg", quality=95)
    _image("RGB", (8, 8), 90).save(root / "square" / "nested" / "c.bmp")
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buffer, "JPEG")
    (root / "square" / "broken.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (root / "README.txt").write_text("not an image")
    (root / "circle" / "notes.txt").write_text("not an image")
    return root


def _npz(path, **arrays):
    np.savez(path, **arrays)
    return str(path)


# --- image folders --------------------------------------------------------------------------


def test_folder_loads_skips_corrupt_and_counts(data_image_folder):
    with pytest.warns(UserWarning) as record:
        data = load_data(str(data_image_folder), task="image", input_shape=(12, 10, 1), val_split=0)
    messages = " ".join(str(w.message) for w in record)
    assert (
        "skipping 3 of 9 files: 1 corrupt or truncated image(s), 1 non-image file(s), 1 file"
        in messages
    )
    assert "broken.jpg" in messages and len(record) == 1  # one line for all skipped files
    assert data.class_names == ["circle", "square"]
    assert (data.num_train, data.num_val, data.num_test) == (6, 0, 0)
    assert data.val is None and data.test is None
    assert data.skipped["corrupt"] == 1 and data.skipped["non_image"] == 2
    x, y = data.arrays("train")
    assert x.shape == (6, 12, 10, 1) and x.dtype == np.float32 and y.dtype == np.int32
    assert sorted(y.tolist()) == [0, 0, 0, 1, 1, 1]
    assert x.min() >= 0.0 and x.max() <= 255.0
    batch_x, batch_y = next(iter(data.train))
    assert batch_x.shape[1:] == (12, 10, 1) and batch_y.dtype.name == "int32"


def test_folder_rgb_values_and_file_cache(data_image_folder, tmp_path):
    cache = tmp_path / "cache"
    with pytest.warns(UserWarning):
        data = load_data(
            str(data_image_folder), task="image", input_shape=(8, 8, 3), val_split=0.34,
            batch_size=2, cache_dir=cache,
        )  # fmt: skip
    assert (data.num_train, data.num_val) == (4, 2)
    first = np.concatenate([x for x, _ in data.val.as_numpy_iterator()])
    second = np.concatenate([x for x, _ in data.val.as_numpy_iterator()])  # served by the cache
    np.testing.assert_array_equal(first, second)
    assert first.shape == (2, 8, 8, 3)
    assert any(p.name.startswith("images-val-") for p in cache.iterdir())
    x, y = data.arrays("train")
    # Each fixture image is one flat colour, so every pixel of an example has the same value.
    assert np.allclose(x, x[:, :1, :1, :1], atol=1.0)


def test_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="no such directory"):
        load_data(str(tmp_path / "missing"), task="image", input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="no class sub-folders"):
        load_data(str(tmp_path), task="image", input_shape=(8, 8, 1))
    (tmp_path / "only").mkdir()
    _image("L", (8, 8), 1).save(tmp_path / "only" / "a.png")
    with pytest.raises(ValueError, match="only one class folder"):
        load_data(str(tmp_path), task="image", input_shape=(8, 8, 1))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.txt").write_text("no")
    with pytest.raises(ValueError, match="'.*empty' has no readable images"):
        load_data(str(tmp_path), task="image", input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="model takes sequences"):
        load_data(str(tmp_path), task="sequence", input_shape=(None, 3))


# --- .npz -----------------------------------------------------------------------------------


def test_npz_images_resized_with_test_split(tmp_path):
    rng = np.random.default_rng(0)
    path = _npz(
        tmp_path / "d.npz", x=rng.integers(0, 255, (20, 6, 6), dtype=np.uint8), y=np.arange(20) % 2,
        x_test=rng.integers(0, 255, (4, 6, 6, 1), dtype=np.uint8), y_test=[0, 1, 0, 1],
        class_names=["even", "odd"],
    )  # fmt: skip
    data = load_data(path, task="image", input_shape=(12, 12, 3), batch_size=8)
    assert (data.num_train, data.num_val, data.num_test) == (16, 4, 4)
    assert data.class_names == ["even", "odd"] and data.num_classes == 2
    x, y = data.arrays("test")
    assert x.shape == (4, 12, 12, 3) and x.dtype == np.float32 and y.tolist() == [0, 1, 0, 1]
    assert set(np.unique(data.arrays("train")[1])) == {0, 1}  # binary stays int 0/1


def test_npz_fixed_length_sequences(tmp_path):
    x = np.random.default_rng(0).normal(size=(10, 5, 3)).astype(np.float32)
    path = _npz(tmp_path / "s.npz", x=x, y=np.arange(10) % 2)
    data = load_data(path, task="sequence", input_shape=(None, 3), val_split=0, batch_size=4)
    xs, ys = data.arrays("train")
    assert xs.shape == (10, 5, 3)
    # The order is a seeded permutation: match rows back to the source.
    for row, label in zip(xs, ys, strict=True):
        source = int(np.argmin(np.abs(x - row).sum(axis=(1, 2))))
        np.testing.assert_allclose(row, x[source]) and label == source % 2


def test_npz_variable_length_object_array_pads_to_batch_max(tmp_path):
    lengths = [2, 5, 3, 4]
    series = np.empty(4, dtype=object)
    series[:] = [np.full((n, 2), n, dtype=np.float32) for n in lengths]
    path = _npz(tmp_path / "v.npz", x=series, y=[0, 1, 0, 1])
    with pytest.raises(ValueError, match="allow_pickle=True"):
        load_data(path, task="sequence", input_shape=(None, 2))
    data = load_data(path, task="sequence", input_shape=(None, None), val_split=0, batch_size=2, allow_pickle=True)  # fmt: skip
    assert data.input_shape == (None, 2)
    for x, _ in data.train.as_numpy_iterator():  # each batch padded to its own longest
        real = [int(row[0, 0]) for row in x]
        assert x.shape[1] == max(real)
        for row, n in zip(x, real, strict=True):
            assert (row[:n] == n).all() and (row[n:] == 0.0).all()
    x, _ = data.arrays("train")
    assert x.shape == (4, 5, 2)


def test_npz_padded_with_lengths(tmp_path):
    x = np.full((3, 6, 1), 7.0, dtype=np.float32)  # junk after each length must become 0.0
    path = _npz(tmp_path / "p.npz", x=x, y=[0, 1, 1], lengths=[1, 4, 2])
    data = load_data(path, task="sequence", input_shape=(None, 1), val_split=0, batch_size=8)
    xs, _ = data.arrays("train")
    assert xs.shape == (3, 4, 1)
    assert sorted((row[:, 0] != 0).sum() for row in xs) == [1, 2, 4]


def test_npz_missing_and_corrupt_file(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        load_data(str(tmp_path / "nope.npz"), task="image", input_shape=(8, 8, 1))
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.npz"):
        load_data(str(tmp_path / "bad.npz"), task="image", input_shape=(8, 8, 1))


# --- builtin sets ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_builtin_digits_images(shape):
    data = load_data("builtin:digits", task="image", input_shape=shape, batch_size=64)
    assert data.class_names == [str(d) for d in range(10)]
    assert data.num_train + data.num_val == 1438 and data.num_test == 359
    x, y = next(iter(data.train))
    assert tuple(x.shape) == (64, *shape) and x.dtype.name == "float32"
    assert float(np.min(x)) >= 0.0 and float(np.max(x)) <= 255.0 and float(np.max(x)) > 200


def test_builtin_sequences():
    rows = load_data("builtin:digits_rows", task="sequence", input_shape=(None, 8))
    assert rows.input_shape == (8, 8) and next(iter(rows.test))[0].shape[1:] == (8, 8)
    vowels = load_data("builtin:japanese_vowels", task="sequence", input_shape=(None, None), batch_size=400)  # fmt: skip
    assert vowels.input_shape == (None, 12) and vowels.num_classes == 9
    assert (vowels.num_train + vowels.num_val, vowels.num_test) == (270, 370)
    x, y = next(iter(vowels.test))
    assert x.shape == (370, 29, 12) and set(np.unique(y)) == set(range(9))
    steps = (np.abs(x.numpy()).sum(-1) > 0).sum(-1)
    assert steps.min() == 7 and steps.max() == 29  # padding is 0.0 after each utterance
    with pytest.raises(ValueError, match="holds images but the model takes sequences"):
        load_data("builtin:digits", task="sequence", input_shape=(None, 8))


def test_augment_changes_train_only():
    plain = load_data("builtin:digits", task="image", input_shape=(16, 16, 1), batch_size=16)
    augmented = load_data("builtin:digits", task="image", input_shape=(16, 16, 1), batch_size=16, augment=True)  # fmt: skip
    np.testing.assert_array_equal(plain.arrays("val")[0], augmented.arrays("val")[0])
    x_plain, _ = next(iter(plain.train))
    x_aug, _ = next(iter(augmented.train))  # same shuffle seed: same examples, transformed
    assert x_aug.shape == x_plain.shape and not np.allclose(x_aug, x_plain)
    assert float(np.min(x_aug)) >= 0.0 and float(np.max(x_aug)) <= 255.0


def test_cnn_trains_one_step_on_builtin_digits():
    import zoo

    data = load_data("builtin:digits", task="image", input_shape=zoo.model_info("cnn").input_shape, batch_size=16)  # fmt: skip
    model = zoo.create_model("cnn", num_classes=data.num_classes)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    history = model.fit(data.train, steps_per_epoch=1, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


# --- training and calibration see the same examples and pixels -----------------------------


def _pipeline(dataset) -> tuple[np.ndarray, np.ndarray]:
    batches = list(dataset.as_numpy_iterator())
    return np.concatenate([x for x, _ in batches]), np.concatenate([y for _, y in batches])


def _sorted_rows(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort(x.reshape(len(x), -1).T[::-1])
    return x[order], y[order]


@pytest.mark.parametrize("shape", [(28, 28, 1), (32, 32, 3)])
def test_digits_val_and_train_pipelines_match_load_arrays(shape):
    data = load_data("builtin:digits", task="image", input_shape=shape, batch_size=100, seed=4)
    val = load_arrays("builtin:digits", task="image", input_shape=shape, split="val", seed=4)
    x, y = data.arrays("val")
    np.testing.assert_array_equal(x, val.x)
    np.testing.assert_array_equal(y, val.y)
    np.testing.assert_array_equal(_pipeline(data.val)[0], val.x)  # what fit() validates on
    train = load_arrays("builtin:digits", task="image", input_shape=shape, seed=4)
    shuffled = _sorted_rows(*_pipeline(data.train))  # shuffled each epoch: compare as sets
    expected = _sorted_rows(train.x, train.y)
    np.testing.assert_array_equal(shuffled[0], expected[0])
    np.testing.assert_array_equal(shuffled[1], expected[1])


@pytest.mark.parametrize("shape", [(64, 48, 3), (150, 200, 1), (96, 96, 3), (427, 640, 3)])
def test_image_folder_pipelines_feed_the_pixels_load_arrays_gives(tmp_path, shape):
    """JPEG photos and PNG/GIF crops (RGB, gray, RGBA, palette, 16-bit) at several model sizes
    and channel counts: every tf.data path decodes them bit for bit as load_arrays does."""
    root = str(write_photo_folder(tmp_path / "photos"))
    data = load_data(root, task="image", input_shape=shape, batch_size=4, val_split=0.34)
    val = load_arrays(root, task="image", input_shape=shape, split="val", val_split=0.34)
    train = load_arrays(root, task="image", input_shape=shape, val_split=0.34)
    np.testing.assert_array_equal(data.arrays("val")[0], val.x)
    np.testing.assert_array_equal(data.arrays("train")[0], train.x)
    np.testing.assert_array_equal(_pipeline(data.val)[0], val.x)
    import tensorflow as tf

    streamed = data.decode_files(tf.data.Dataset.from_tensor_slices(data.train_files)).batch(5)
    x, y = _pipeline(streamed)  # what TrainData streams each epoch, in the loader's order
    np.testing.assert_array_equal(x, train.x)
    np.testing.assert_array_equal(y, train.y)


def test_decode_files_drops_a_file_that_fails_to_decode(tmp_path):
    import tensorflow as tf

    root = write_photo_folder(tmp_path / "photos")
    data = load_data(str(root), task="image", input_shape=(16, 16, 3), val_split=0)
    broken = tmp_path / "broken.png"
    broken.write_bytes((root / "china" / "rgb.png").read_bytes()[:300])
    paths = [str(root / "china" / "rgb.png"), str(broken), str(root / "flower" / "gray.png")]
    files = tf.data.Dataset.from_tensor_slices((paths, np.array([0, 0, 1], np.int32)))
    with pytest.warns(UserWarning, match="broken.png"):
        x, y = _pipeline(data.decode_files(files).batch(8))
    assert x.shape == (2, 16, 16, 3) and y.tolist() == [0, 1]
