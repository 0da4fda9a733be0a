"""zoo.data reads data as users keep it: split folders, CSV manifests, every image format Pillow
decodes (WebP, TIFF, 16-bit), and one warning line for every skipped file. Real data only:
scikit-learn's digits and crops of its sample photos, written as image files."""

from __future__ import annotations

import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from zoo.data import decode_image, load_arrays, read_pixels, resolve_data

SHAPE = (8, 8, 1)


def _digits():
    from sklearn.datasets import load_digits

    digits = load_digits()
    return np.rint(digits.images * (255 / 16)).astype(np.uint8), digits.target


def _photo_crop(box=(100, 80, 164, 128)) -> Image.Image:
    """A 64x48 RGB crop of scikit-learn's sample photo china.jpg."""
    import sklearn.datasets

    path = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"
    with Image.open(path) as photo:
        return photo.convert("RGB").crop(box)


def write_digits(folder: Path, classes=(0, 1, 2), per_class=6, start=0) -> dict[str, np.ndarray]:
    """`per_class` digits of each class as PNGs in folder/<class>/; returns path -> pixels."""
    images, target = _digits()
    written = {}
    for label in classes:
        (folder / str(label)).mkdir(parents=True, exist_ok=True)
        for index in np.flatnonzero(target == label)[start : start + per_class]:
            path = folder / str(label) / f"{index}.png"
            Image.fromarray(images[index]).save(path)
            written[str(path)] = images[index]
    return written


# --- split folders ----------------------------------------------------------------------------


@pytest.mark.parametrize("val_name", ["val", "validation", "Validation"])
def test_split_folders_are_read_as_given(tmp_path, val_name):
    root = tmp_path / "split"
    train = write_digits(root / "train", per_class=6)
    val = write_digits(root / val_name, per_class=2, start=6)
    test = write_digits(root / "test", per_class=3, start=8)
    data = resolve_data(str(root), task="image", input_shape=SHAPE, val_split=0.5)
    assert data.class_names == ["0", "1", "2"]
    assert {name: len(split) for name, split in data.splits.items()} == {
        "train": 18, "val": 6, "test": 9,
    }  # fmt: skip
    for name, written in (("train", train), ("val", val), ("test", test)):
        paths, labels = data.files(name)
        assert sorted(paths) == sorted(written)  # val_split=0.5 carves nothing: val is given
        assert [Path(p).parent.name for p in paths] == [str(label) for label in labels]
    arrays = load_arrays(str(root), task="image", input_shape=SHAPE, split="test")
    expected = np.stack([val for _, val in sorted(test.items())])[..., None].astype(np.float32)
    order = np.argsort(data.files("test")[0])
    np.testing.assert_array_equal(arrays.x[order], expected)  # the pixels as written


def test_split_folders_without_val_carve_it_from_train(tmp_path):
    root = tmp_path / "split"
    write_digits(root / "train", per_class=10)
    write_digits(root / "test", classes=(0, 2), per_class=3, start=10)  # test may lack a class
    data = resolve_data(str(root), task="image", input_shape=SHAPE, val_split=0.2, seed=1)
    assert {name: len(split) for name, split in data.splits.items()} == {
        "train": 24, "val": 6, "test": 6,
    }  # fmt: skip
    val_paths = set(data.files("val")[0])
    assert all("/train/" in path for path in val_paths)


@pytest.mark.parametrize(
    "make, received",
    [
        ("loose", "test/, train/ hold images directly"),
        ("mixed", "split folders train/ beside other folders cats, dogs"),
    ],
)
def test_ambiguous_layout_names_both_readings(tmp_path, make, received):
    root = tmp_path / "ambiguous"
    if make == "loose":  # train/ and test/ holding images: two classes, or two splits?
        for split in ("train", "test"):
            write_digits(root / split, per_class=2)
            Image.fromarray(_digits()[0][0]).save(root / split / "loose.png")
    else:
        write_digits(root / "train", per_class=2)
        write_digits(root / "cats", classes=(0,), per_class=2)
        write_digits(root / "dogs", classes=(1,), per_class=2)
    with pytest.raises(ValueError) as error:
        resolve_data(str(root), task="image", input_shape=SHAPE)
    message = str(error.value)
    assert "\n" not in message and "can be read two ways" in message, message
    assert "class folders" in message and "split folders" in message
    assert "?layout=classes" in message and "?layout=splits" in message
    assert message.endswith(f"Received: {received}"), message
    as_classes = resolve_data(f"{root}?layout=classes", task="image", input_shape=SHAPE)
    expected = ["test", "train"] if make == "loose" else ["cats", "dogs", "train"]
    assert as_classes.class_names == expected
    with pytest.warns(UserWarning, match="outside class folders") as caught:
        as_splits = resolve_data(f"{root}?layout=splits", task="image", input_shape=SHAPE)
    assert len(caught) == 1 and as_splits.class_names == ["0", "1", "2"]


def test_split_folder_errors_are_one_line(tmp_path):
    root = tmp_path / "split"
    write_digits(root / "train", classes=(0, 1), per_class=3)
    write_digits(root / "val", classes=(0, 2), per_class=1)
    with pytest.raises(ValueError, match=r"val/ has class folder\(s\) 2 that train/ lacks"):
        resolve_data(str(root), task="image", input_shape=SHAPE)
    shutil.rmtree(root / "train")
    write_digits(root / "test", per_class=1)
    with pytest.raises(
        ValueError, match="split folders need a train/ folder.*Received: test/, val/"
    ):
        resolve_data(str(root), task="image", input_shape=SHAPE)
    with pytest.raises(ValueError, match="layout should be classes or splits"):
        resolve_data(f"{root}?layout=rows", task="image", input_shape=SHAPE)


# --- CSV manifests ----------------------------------------------------------------------------


def _manifest(tmp_path: Path, with_split: bool) -> tuple[Path, dict]:
    images = tmp_path / "data" / "images"
    written = write_digits(images, classes=(3, 7, 10 - 1), per_class=8)  # labels 3, 7, 9
    rows = ["filename,split,label" if with_split else "path,label,notes"]
    rows[0] = rows[0].replace("filename", "path")
    for number, path in enumerate(sorted(written)):
        label = Path(path).parent.name
        where = Path(path).relative_to(tmp_path / "data").as_posix() if number % 2 else path
        split = ("train", "train", "validation", "test")[number % 4]
        rows.append(f"{where},{split},{label}" if with_split else f"{where},{label},x")
    csv_path = tmp_path / "data" / "labels.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    return csv_path, written


def test_csv_manifest_with_a_split_column(tmp_path):
    csv_path, written = _manifest(tmp_path, with_split=True)
    data = resolve_data(str(csv_path), task="image", input_shape=SHAPE)
    assert data.class_names == ["3", "7", "9"]
    assert {name: len(split) for name, split in data.splits.items()} == {
        "train": 12, "val": 6, "test": 6,
    }  # fmt: skip
    paths, labels = data.files("test")
    for path, label in zip(paths, labels, strict=True):
        assert Path(path).is_absolute() and Path(path).parent.name == data.class_names[label]
        np.testing.assert_array_equal(decode_image(path, SHAPE)[..., 0], written[str(path)])


def test_csv_manifest_without_a_split_column_carves_val(tmp_path):
    csv_path, _ = _manifest(tmp_path, with_split=False)
    data = resolve_data(str(csv_path), task="image", input_shape=SHAPE, val_split=0.25)
    assert data.class_names == ["3", "7", "9"]
    assert {name: len(split) for name, split in data.splits.items()} == {"train": 18, "val": 6}


@pytest.mark.parametrize(
    "rows, message",
    [
        (["path,label", "a.png,cat", "b.png,dog", "c.png,dog", "d.png,cat", "e.png,dog"],
         r"5 of 5 files it names do not exist \(paths are relative to .*\): .*a.png, .*b.png, "
         r".*c.png, \.\.\.\. Received: 5 missing"),
        (["file,class", "a.png,cat"], r"needs a header row with columns path,label .*Received: "
         r"columns \['file', 'class'\]"),
        (["path,label,split", "a.png,cat,dev"], "line 2: split should be train, val, validation "
         "or test. Received: split='dev'"),
        (["path,label", "a.png,"], "line 2 needs a path and a label"),
        (["path,label"], "lists no files"),
    ],
)  # fmt: skip
def test_csv_manifest_errors_are_one_line(tmp_path, rows, message):
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("\n".join(rows) + "\n")
    with pytest.raises(ValueError, match=message) as error:
        resolve_data(str(csv_path), task="image", input_shape=SHAPE)
    assert "\n" not in str(error.value)


# --- image formats ----------------------------------------------------------------------------


def _png16(path: Path, samples: np.ndarray) -> None:
    """A 16-bit RGB PNG written by hand (Pillow writes no 16-bit colour PNG)."""
    height, width, _ = samples.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in samples)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )  # fmt: skip


@pytest.mark.parametrize(
    "name, mode, options",
    [
        ("rgb.png", "RGB", {}),
        ("gray.png", "L", {}),
        ("rgba.png", "RGBA", {}),
        ("rgb.bmp", "RGB", {}),
        ("rgb.tif", "RGB", {}),
        ("gray.tiff", "L", {}),
        ("rgba.tif", "RGBA", {"compression": "tiff_lzw"}),
        ("rgb.webp", "RGB", {"lossless": True}),
        ("rgba.webp", "RGBA", {"lossless": True, "exact": True}),  # keep RGB under alpha 0
    ],
)
def test_lossless_formats_decode_to_the_pixels_written(tmp_path, name, mode, options):
    crop = _photo_crop()
    image = crop.convert(mode)
    if mode == "RGBA":
        image.putalpha(Image.fromarray(np.arange(64 * 48, dtype=np.uint8).reshape(48, 64)))
    image.save(tmp_path / name, **options)
    expected = np.asarray(crop.convert("L" if mode == "L" else "RGB"))  # alpha dropped
    pixels = read_pixels(tmp_path / name)
    np.testing.assert_array_equal(pixels, expected.reshape(48, 64, -1))
    np.testing.assert_array_equal(
        decode_image(tmp_path / name, (48, 64, 3)), np.broadcast_to(pixels, (48, 64, 3))
    )


def test_lossy_and_palette_formats(tmp_path):
    crop = _photo_crop()
    crop.save(tmp_path / "photo.jpg", quality=95, subsampling=0)
    crop.save(tmp_path / "photo.webp", quality=90)
    crop.save(tmp_path / "photo.gif")
    rgb = np.asarray(crop, dtype=np.float32)
    for name, tolerance in (("photo.jpg", 3.0), ("photo.webp", 6.0)):
        assert np.abs(decode_image(tmp_path / name, (48, 64, 3)) - rgb).mean() < tolerance, name
    with Image.open(tmp_path / "photo.gif") as gif:
        palette = np.asarray(gif.convert("RGB"), dtype=np.float32)
    np.testing.assert_array_equal(decode_image(tmp_path / "photo.gif", (48, 64, 3)), palette)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_gray_is_scaled_by_its_range(tmp_path, suffix):
    samples = np.array([[0, 257, 514, 65535], [65280, 32896, 1000, 50000]], np.uint16)
    Image.fromarray(samples).save(tmp_path / f"gray16{suffix}")
    with Image.open(tmp_path / f"gray16{suffix}") as opened:
        assert opened.mode == "I;16"  # what Pillow hands over: 0-65535
    pixels = read_pixels(tmp_path / f"gray16{suffix}")[..., 0]
    # x * 255 / 65535, rounded: 65280 is 254 (its high byte would say 255), nothing clips.
    assert pixels.tolist() == [[0, 1, 2, 255], [254, 128, 4, 195]]
    np.testing.assert_array_equal(pixels, np.rint(samples / 257.0))


def test_16_bit_rgb_keeps_pillows_high_byte(tmp_path):
    samples = np.stack(
        [np.full((4, 4), 65535), np.full((4, 4), 1000), np.full((4, 4), 65280)], -1
    ).astype(np.uint16)
    _png16(tmp_path / "rgb16.png", samples)
    np.testing.assert_array_equal(read_pixels(tmp_path / "rgb16.png"), samples >> 8)


# --- what is skipped -----------------------------------------------------------------------------


def test_skipped_files_are_counted_and_named_once(tmp_path):
    root = tmp_path / "photos"
    write_digits(root, classes=(0, 1), per_class=5)
    crop = _photo_crop()
    crop.save(root / "0" / "good.tif")
    crop.save(root / "1" / "good.webp")
    good_tiff = (root / "0" / "good.tif").read_bytes()
    (root / "0" / "cut.tif").write_bytes(good_tiff[: len(good_tiff) // 2])
    good_webp = (root / "1" / "good.webp").read_bytes()
    (root / "1" / "cut.webp").write_bytes(good_webp[: len(good_webp) // 2])
    Image.fromarray(np.arange(64, dtype=np.int32).reshape(8, 8) * 1000).save(root / "1" / "i32.tif")
    (root / "1" / "notes.txt").write_text("not an image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        data = resolve_data(str(root), task="image", input_shape=SHAPE, val_split=0)
        x = load_arrays(str(root), task="image", input_shape=SHAPE, val_split=0).x
    lines = [str(w.message) for w in caught]
    assert len(lines) == 2 and lines[0] == lines[1], lines  # one line per read, none per file
    assert "skipping 4 of 16 files: 2 corrupt or truncated image(s), 1 image(s) of an " in lines[0]
    assert "unsupported pixel format, 1 non-image file(s); e.g. " in lines[0]
    assert "cut.tif" in lines[0] and "cut.webp" in lines[0] and "i32.tif" in lines[0]
    assert "notes.txt" not in lines[0] and lines[0].count(", ...") == 1  # 3 names at most
    assert data.skipped == {
        "corrupt": 2,
        "corrupt_files": [str(root / "0" / "cut.tif"), str(root / "1" / "cut.webp")],
        "unsupported": 1,
        "non_image": 1,
    }
    assert len(data.splits["train"]) == len(x) == 12  # 10 digits, the good TIFF and WebP
