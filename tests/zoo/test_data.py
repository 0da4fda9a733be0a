"""zoo.data: spec parsing, builtin sets, folders, .npz files, split rules, load_arrays and the
image decoder, all without TensorFlow (tests/finetune/test_data.py checks that the tf.data
pipelines feed the same examples and pixels)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from zoo.data import (
    Arrays,
    DataSpec,
    builtin_info,
    decode_image,
    list_builtin,
    load_arrays,
    parse_data_spec,
    read_pixels,
    resolve_data,
    to_shape,
)

ROOT = Path(__file__).resolve().parents[2]


def _photo(name: str = "china.jpg") -> Path:
    """A real photograph (JPEG, 640x427) shipped in the scikit-learn wheel."""
    import sklearn.datasets

    return Path(sklearn.datasets.__file__).parent / "images" / name


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    return write_photo_folder(tmp_path / "photos")


def write_photo_folder(root: Path) -> Path:
    """Two classes: a real photo (JPEG) and crops of it as GIF and RGB/gray/RGBA/palette/16-bit PNG."""
    for index, name in enumerate(("china.jpg", "flower.jpg")):
        folder = root / name.split(".")[0]
        folder.mkdir(parents=True)
        shutil.copy(_photo(name), folder / "original.jpg")
        with Image.open(_photo(name)) as photo:
            crop = photo.crop((40 * index, 0, 40 * index + 200, 150))
        crop.save(folder / "crop.gif")
        crop.save(folder / "rgb.png")
        crop.convert("L").save(folder / "gray.png")
        rgba = crop.convert("RGBA")
        rgba.putalpha(90)
        rgba.save(folder / "rgba.png")
        crop.convert("P", palette=Image.Palette.ADAPTIVE, colors=32).save(folder / "palette.png")
        wide = (np.asarray(crop.convert("L"), np.uint16) * 257).astype(np.uint16)
        Image.fromarray(wide).save(folder / "gray16.png")
    return root


# --- the rules of the package: no TensorFlow, one-way dependencies --------------------------


def test_import_zoo_data_loads_no_tensorflow_keras_or_other_packages():
    code = (
        "import sys, zoo, zoo.data, zoo.runs\n"
        "zoo.data.load_arrays('builtin:gunpoint', task='sequence', input_shape=(None, 1),"
        " split='test', limit=3)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules}"
        " & {'tensorflow', 'keras', 'jax', 'torch', 'finetune', 'convert'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"


def _imported_packages(folder: str) -> dict[str, set[str]]:
    found = {}
    for path in (ROOT / folder).rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
        found[str(path.relative_to(ROOT))] = names
    return found


def test_dependencies_point_one_way():
    zoo_wrong = {p: n & {"finetune", "convert"} for p, n in _imported_packages("zoo").items()}
    assert {p: n for p, n in zoo_wrong.items() if n} == {}
    data_wrong = {p: n & {"tensorflow", "keras"} for p, n in _imported_packages("zoo/data").items()}
    assert {p: n for p, n in data_wrong.items() if n} == {}
    finetune_wrong = {p: n & {"convert"} for p, n in _imported_packages("finetune").items()}
    assert {p: n for p, n in finetune_wrong.items() if n} == {}


# --- parse_data_spec ------------------------------------------------------------------------


def test_parse_forms_and_query():
    assert parse_data_spec("some/dir") == DataSpec("folder", "some/dir")
    assert parse_data_spec(" data.NPZ ") == DataSpec("npz", "data.NPZ")
    spec = parse_data_spec("builtin:digits?classes=5-7,9&per_class=3")
    assert spec == DataSpec("builtin", "digits", (5, 6, 7, 9), 3)
    assert str(spec) == "builtin:digits?classes=5,6,7,9&per_class=3"
    assert parse_data_spec("photos?classes=cat,dog").classes == ("cat", "dog")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "should name a folder"),
        ("builtin:nope", "valid names: acsf1, arrow_head, basic_motions, digits"),
        ("dir?colour=red", "valid options: classes, per_class"),
        ("dir?classes=9-5", "LOW <= HIGH"),
        ("dir?classes=1,,2", "empty entry"),
        ("dir?classes=-1", ">= 0"),
        ("dir?per_class=0", "positive integer"),
        ("dir?per_class=2&per_class=3", "given twice"),
        ("dir?classes=", "needs a value"),
    ],
)
def test_parse_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_data_spec(spec)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_raises_only_value_error(text):
    try:
        spec = parse_data_spec(text)
    except ValueError:
        return
    assert parse_data_spec(str(spec)) == spec


_NAMES = st.text(st.characters(blacklist_characters=",&=?-", blacklist_categories=("Cs", "Zs", "Cc")), min_size=1, max_size=6)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(
    source=st.sampled_from(["builtin:digits", "data.npz", "a/b", "~/x y"]),
    classes=st.none()
    | st.lists(
        st.integers(0, 50) | _NAMES.filter(lambda s: not s.strip().isdigit()),
        min_size=1,
        max_size=5,
    ),  # fmt: skip
    per_class=st.none() | st.integers(1, 10_000),
)
def test_parse_round_trip(source, classes, per_class):
    query = []
    if classes is not None:
        query.append("classes=" + ",".join(str(c) for c in classes))
    if per_class is not None:
        query.append(f"per_class={per_class}")
    spec = parse_data_spec(source + ("?" + "&".join(query) if query else ""))
    expected = None if classes is None else tuple(dict.fromkeys(c if isinstance(c, int) else c.strip() for c in classes))  # fmt: skip
    assert (spec.classes, spec.per_class) == (expected, per_class)
    assert parse_data_spec(str(spec)) == spec


@given(st.integers(0, 500), st.integers(0, 20))
def test_parse_range_expands(low, width):
    assert parse_data_spec(f"d?classes={low}-{low + width}").classes == tuple(range(low, low + width + 1))  # fmt: skip


# --- builtin sets ---------------------------------------------------------------------------


def test_list_builtin_has_real_image_and_sequence_sets():
    names = list_builtin()
    assert {"digits", "digits_rows", "japanese_vowels", "gunpoint"} <= set(names)
    assert builtin_info("digits").task == "image"
    assert builtin_info("japanese_vowels").item_shape == (None, 12)
    with pytest.raises(ValueError, match="valid names: acsf1, arrow_head, basic_motions, digits"):
        builtin_info("mnist")


def _digits_rows(x: np.ndarray) -> set[bytes]:
    return {row.tobytes() for row in np.round(x, 3).astype(np.float32)}


def test_digits_train_and_val_partition_the_sources_train_split():
    """Val is carved from the source's train split (every 5th example of the file is test),
    stratified: each digit gives round(20%) of its examples; train and val never overlap."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    pixels = digits.images.astype(np.float32)[..., None] * (255.0 / 16.0)
    is_test = np.arange(len(pixels)) % 5 == 4
    train = load_arrays("builtin:digits", task="image", input_shape=(8, 8, 1))
    val = load_arrays("builtin:digits", task="image", input_shape=(8, 8, 1), split="val")
    test = load_arrays("builtin:digits", task="image", input_shape=(None, None, None), split="test")
    per_digit = np.bincount(digits.target[~is_test], minlength=10)
    assert np.bincount(val.y).tolist() == [int(round(n * 0.2)) for n in per_digit]
    assert (len(train) + len(val), len(test)) == (1438, 359)
    assert _digits_rows(test.x) == _digits_rows(pixels[is_test])
    assert _digits_rows(train.x) | _digits_rows(val.x) == _digits_rows(pixels[~is_test])
    assert not _digits_rows(train.x) & _digits_rows(val.x)
    assert val.class_names == [str(d) for d in range(10)] and val.origin == "builtin:digits"
    assert (val.split, val.x.dtype, val.y.dtype) == ("val", np.float32, np.int64)
    assert isinstance(val, Arrays)


def test_load_arrays_seed_limit_and_val_split():
    def val(**kwargs):
        return load_arrays("builtin:digits", task="image", input_shape=(8, 8, 1), split="val", **kwargs)  # fmt: skip

    first, same, other = val(seed=0), val(seed=0), val(seed=1)
    np.testing.assert_array_equal(first.x, same.x)
    assert _digits_rows(first.x) != _digits_rows(other.x)
    head = val(limit=10)
    np.testing.assert_array_equal(head.x, first.x[:10])
    np.testing.assert_array_equal(head.y, first.y[:10])
    assert abs(len(val(val_split=0.5)) - 1438 / 2) <= 5  # round(n / 2) of each digit
    train = load_arrays("builtin:digits", task="image", input_shape=(8, 8, 1), limit=50)
    assert len(set(train.y.tolist())) >= 8  # train's order is a seeded mix of classes


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            dict(split="val", val_split=0),
            r"builtin:digits has no 'val' split; its splits are 'train', 'test'",
        ),  # fmt: skip
        (dict(split="validation"), "split should be 'train', 'val' or 'test'"),
        (dict(limit=0), "limit should be a positive int"),
        (dict(val_split=1.0), r"val_split should be in \[0, 1\)"),
        (dict(input_shape=(8, 8, 2)), "1 \\(gray\\) or 3 \\(RGB\\) channels"),
        (
            dict(task="sequence", input_shape=(None, 8)),
            "holds images but the model takes sequences",
        ),  # fmt: skip
    ],
)
def test_load_arrays_errors_are_one_line(kwargs, message):
    arguments = dict(task="image", input_shape=(8, 8, 1)) | kwargs
    with pytest.raises(ValueError, match=message) as error:
        load_arrays("builtin:digits", **arguments)
    assert "\n" not in str(error.value)


def test_gunpoint_sequences_and_resized_digits():
    test = load_arrays("builtin:gunpoint", task="sequence", input_shape=(None, 1), split="test")
    assert test.x.shape == (150, 150, 1) and set(test.y.tolist()) == {0, 1}
    assert test.class_names == ["gun_draw", "point"]
    big = load_arrays("builtin:digits", task="image", input_shape=(28, 28, 3), split="test", limit=5)  # fmt: skip
    assert big.x.shape == (5, 28, 28, 3) and big.x.min() >= 0.0 and big.x.max() <= 255.0
    np.testing.assert_array_equal(big.x[..., 0], big.x[..., 2])  # gray repeated, not re-weighted


def test_classes_and_per_class_filtering():
    spec = "builtin:digits?classes=5-9&per_class=4"
    train = load_arrays(spec, task="image", input_shape=(8, 8, 1), seed=3)
    assert train.class_names == ["5", "6", "7", "8", "9"]
    assert np.bincount(train.y).tolist() == [4] * 5
    again = load_arrays(spec, task="image", input_shape=(8, 8, 1), seed=3)
    np.testing.assert_array_equal(again.x, train.x)
    val = load_arrays(spec, task="image", input_shape=(8, 8, 1), seed=3, split="val")
    assert len(val) > 20  # per_class counts training examples only
    with pytest.raises(ValueError, match="out of range"):
        load_arrays("builtin:digits?classes=8-12", task="image", input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="unknown class name 'seven'"):
        load_arrays("builtin:digits?classes=1,seven", task="image", input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match="at least 2 classes"):
        load_arrays("builtin:digits?classes=3", task="image", input_shape=(8, 8, 1))


# --- .npz -----------------------------------------------------------------------------------


def test_npz_splits_and_padding(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    lengths = np.array([2, 5, 3, 4, 1, 5])
    x = np.where(np.arange(5)[None, :, None] < lengths[:, None, None], 1.0, 9.0)
    np.savez(path, x=x.astype(np.float32), y=np.arange(6) % 2, lengths=lengths,
             x_test=rng.normal(size=(2, 3, 1)), y_test=[0, 1])  # fmt: skip
    train = load_arrays(str(path), task="sequence", input_shape=(None, 1), val_split=0)
    assert train.x.shape == (6, 5, 1)
    assert sorted((train.x[..., 0] == 1.0).sum(1).tolist()) == sorted(lengths.tolist())
    assert (train.x != 9.0).all()  # the junk after each length became 0.0 padding
    head = load_arrays(str(path), task="sequence", input_shape=(None, 1), val_split=0, limit=2)
    np.testing.assert_array_equal(head.y, train.y[:2])
    assert head.x.shape[1] == (head.x[..., 0] == 1.0).sum(1).max()  # the longest returned
    fixed = load_arrays(str(path), task="sequence", input_shape=(7, 1), split="test")
    assert fixed.x.shape == (2, 7, 1) and (fixed.x[:, 3:] == 0.0).all()


@pytest.mark.parametrize(
    "task, shape, arrays, message",
    [
        ("image", (8, 8, 1), dict(x=np.zeros((4, 8, 8)), y=[0, 1, 0]), "x has 4 rows but y has 3"),
        ("image", (8, 8, 1), dict(x=np.full((2, 8, 8), np.nan), y=[0, 1]), "x contains NaN or inf"),
        ("image", (8, 8, 1), dict(x=np.zeros((2, 8, 8)), y=[0, -1]), "y has negative labels"),
        ("image", (8, 8, 1), dict(x=np.zeros((2, 8, 8)), y=[0.0, 0.5]), "non-integer"),
        ("image", (8, 8, 1), dict(x=np.zeros((2, 8, 8)), y=np.eye(2)), "argmax"),
        ("image", (8, 8, 1), dict(x=np.zeros((2, 8)), y=[0, 1]), "looks like sequences"),
        ("image", (8, 8, 1), dict(x=np.zeros((2, 0, 6)), y=[0, 1]), "H, W >= 1"),
        ("sequence", (None, 3), dict(x=np.zeros((2, 8, 8, 1)), y=[0, 1]), "looks like images"),
        ("sequence", (3, 4), dict(x=np.zeros((2, 5, 4)), y=[0, 1]), "up to 5 steps"),
        ("image", (8, 8, 1), dict(x=np.zeros((2, 8, 8))), "needs arrays 'x' and 'y'"),
    ],
)
def test_npz_validation_errors(tmp_path, task, shape, arrays, message):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=message) as error:
        load_arrays(str(path), task=task, input_shape=shape)
    assert "\n" not in str(error.value) and "data.npz" in str(error.value)


# --- image folders and the decoder ----------------------------------------------------------


def test_folder_splits_files_and_decoded_arrays(photo_folder):
    data = resolve_data(str(photo_folder), task="image", input_shape=(64, 48, 3), val_split=0.34)
    paths, labels = data.files("val")
    assert sorted(labels.tolist()) == [0, 0, 1, 1]  # round(7 x 0.34) of each class
    val = load_arrays(str(photo_folder), task="image", input_shape=(64, 48, 3), split="val", val_split=0.34)  # fmt: skip
    assert val.class_names == ["china", "flower"] and val.y.tolist() == labels.tolist()
    for image, path in zip(val.x, paths, strict=True):
        np.testing.assert_array_equal(image, decode_image(path, (64, 48, 3)))
    with pytest.raises(ValueError, match="Only an image folder has files"):
        resolve_data("builtin:digits", task="image", input_shape=(8, 8, 1)).files("train")


def test_folder_skips_corrupt_files_with_a_warning(photo_folder):
    broken = photo_folder / "china" / "broken.jpg"
    broken.write_bytes(_photo().read_bytes()[:5000])
    with pytest.warns(UserWarning, match="skipping 1 of 15 files: 1 corrupt or truncated image"):
        train = load_arrays(str(photo_folder), task="image", input_shape=(16, 16, 1), val_split=0)
    assert len(train) == 14 and train.x.shape == (14, 16, 16, 1)
    with pytest.raises(ValueError, match="model takes sequences"):
        load_arrays(str(photo_folder), task="sequence", input_shape=(None, 3))


def test_decoder_reads_every_mode_as_stored(photo_folder):
    folder = photo_folder / "china"
    rgb = np.asarray(Image.open(folder / "rgb.png"))
    gray = np.asarray(Image.open(folder / "gray.png"))
    np.testing.assert_array_equal(read_pixels(folder / "rgb.png"), rgb)
    np.testing.assert_array_equal(read_pixels(folder / "gray.png")[..., 0], gray)
    np.testing.assert_array_equal(read_pixels(folder / "rgba.png"), rgb)  # alpha dropped
    np.testing.assert_array_equal(read_pixels(folder / "gray16.png")[..., 0], gray)  # high byte
    palette = Image.open(folder / "palette.png")
    np.testing.assert_array_equal(read_pixels(folder / "palette.png"), np.asarray(palette.convert("RGB")))  # fmt: skip
    shape = (150, 200, 3)
    np.testing.assert_array_equal(decode_image(folder / "gray.png", shape), np.repeat(gray[..., None], 3, -1).astype(np.float32))  # fmt: skip
    luma = decode_image(folder / "rgb.png", (150, 200, 1))[..., 0]
    np.testing.assert_allclose(luma, rgb @ np.array([0.2989, 0.587, 0.114]), atol=1e-3)


def _triangle_resize(plane: np.ndarray, size: int, axis: int) -> np.ndarray:
    """Reference antialiased bilinear resize along one axis, in float64 (what tf.image.resize
    with antialias=True and Pillow's BILINEAR compute)."""
    old = plane.shape[axis]
    scale = old / size
    support = max(scale, 1.0)
    centers = (np.arange(size) + 0.5) * scale
    taps = np.arange(old) + 0.5
    weights = np.clip(1.0 - np.abs(taps[None, :] - centers[:, None]) / support, 0.0, None)
    weights /= weights.sum(axis=1, keepdims=True)
    return np.moveaxis(np.tensordot(weights, np.moveaxis(plane, axis, 0), axes=1), 0, axis)


@pytest.mark.parametrize("shape", [(107, 160, 3), (300, 200, 3), (48, 48, 1), (427, 640, 3)])
def test_resize_is_the_antialiased_bilinear_filter(shape):
    photo = np.asarray(Image.open(_photo()), dtype=np.float64)  # 427 x 640
    if shape[-1] == 1:
        photo = (photo @ np.array([0.2989, 0.587, 0.114]))[..., None]
    expected = _triangle_resize(_triangle_resize(photo, shape[0], 0), shape[1], 1)
    resized = to_shape(np.asarray(Image.open(_photo())), shape)
    assert resized.shape == shape and resized.dtype == np.float32
    np.testing.assert_allclose(resized, expected, atol=2e-3)
    assert resized.min() >= 0.0 and resized.max() <= 255.0


def test_large_jpeg_decodes_at_a_reduced_scale_close_to_a_full_decode(tmp_path):
    """A 4x larger JPEG is decoded at 1/2 or 1/4 DCT scale: the result stays close to a full
    decode then resize (photo content, mean abs error of a few grey levels)."""
    with Image.open(_photo()) as photo:
        photo.resize((1280, 854)).save(tmp_path / "big.jpg", quality=95)
    fast = decode_image(tmp_path / "big.jpg", (160, 240, 3))
    full = to_shape(np.asarray(Image.open(tmp_path / "big.jpg").convert("RGB")), (160, 240, 3))
    assert np.abs(fast - full).mean() < 3.0 and not np.array_equal(fast, full)


@pytest.mark.parametrize("shape", [(150, 200, 3), (64, 48, 1), (300, 420, 3), (96, 96, 1)])
def test_decode_image_equals_to_shape_of_the_read_pixels(photo_folder, shape):
    """decode_image works on Pillow's bands for speed; the values are those of the array path."""
    for path in sorted(photo_folder.rglob("*.*")):
        expected = to_shape(read_pixels(path, at_least=shape[:2]), shape)
        np.testing.assert_array_equal(decode_image(path, shape), expected, err_msg=str(path))
