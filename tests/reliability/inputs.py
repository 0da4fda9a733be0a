"""Builds every bad input of the catalogue, small and fast, in one folder.

`make_bad_inputs(root)` writes each file or folder under `root` by the name the catalogue uses
(`{BAD}/<name>` in tests/reliability/catalogue.py) and returns `root`.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np

RNG_SEED = 0
IMAGE = (16, 16)


def png_folder(root: Path, classes: tuple[str, ...], per_class: int, rng) -> Path:
    from PIL import Image

    root.mkdir(parents=True, exist_ok=True)
    for name in classes:
        (root / name).mkdir(exist_ok=True)
        for index in range(per_class):
            pixels = rng.integers(0, 255, size=(*IMAGE, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")
    return root


def _images(rng, count: int) -> np.ndarray:
    return rng.uniform(0, 255, size=(count, *IMAGE, 1)).astype("float32")


def _folders(root: Path, rng) -> None:
    png_folder(root / "good_images", ("a", "b"), 6, rng)
    (root / "empty_folder").mkdir()
    png_folder(root / "class_without_images", ("a", "b"), 3, rng)
    (root / "class_without_images" / "c").mkdir()
    png_folder(root / "class_of_text_files", ("a", "b"), 3, rng)
    (root / "class_of_text_files" / "c").mkdir()
    (root / "class_of_text_files" / "c" / "notes.txt").write_text("not an image")
    png_folder(root / "single_class", ("only",), 4, rng)
    corrupt = png_folder(root / "one_corrupt_image", ("a", "b"), 6, rng)
    good = (corrupt / "a" / "0.png").read_bytes()
    (corrupt / "a" / "truncated.png").write_bytes(good[: len(good) // 3])
    (corrupt / "b" / "README.txt").write_text("a non-image file among the images")
    _layouts(root, rng)
    (root / "run_without_model").mkdir()
    (root / "run_without_model" / "config.yaml").write_text("model: cnn\n")
    (root / "a_regular_file").write_text("a file where a folder is expected")


def _layouts(root: Path, rng) -> None:
    """Split folders that cannot be read, and CSV manifests that name bad files or columns."""
    for split in ("train", "test"):  # train/ and test/ holding images: classes or splits?
        png_folder(root / "ambiguous_layout" / split, ("a", "b"), 2, rng)
        (root / "ambiguous_layout" / split / "0.png").write_bytes(
            (root / "ambiguous_layout" / split / "a" / "0.png").read_bytes()
        )
    png_folder(root / "split_extra_class" / "train", ("a", "b"), 3, rng)
    png_folder(root / "split_extra_class" / "val", ("a", "c"), 1, rng)
    png_folder(root / "split_without_train" / "val", ("a", "b"), 1, rng)
    png_folder(root / "split_without_train" / "test", ("a", "b"), 1, rng)
    (root / "missing_files.csv").write_text(
        "path,label\ngood_images/a/0.png,a\ngone/1.png,b\ngone/2.png,b\n"
    )
    (root / "no_label_column.csv").write_text("path,class\ngood_images/a/0.png,a\n")
    (root / "bad_split.csv").write_text("path,label,split\ngood_images/a/0.png,a,dev\n")


def old_run(root: Path) -> None:
    """A run recorded with a relative `data` (as before paths were absolute) found nowhere."""
    (root / "old_run").mkdir()
    (root / "old_run" / "model.keras").write_bytes((root / "tiny.keras").read_bytes())
    (root / "old_run" / "config.yaml").write_text(
        "model: cnn\ndata: photos\nout: runs/old_run\nclass_names: [a, b, c]\n"
    )


def _arrays(root: Path, rng) -> None:
    x = _images(rng, 12)
    y = np.arange(12) % 2
    np.savez(root / "mismatched.npz", x=x, y=y[:9])
    with_nan = x.copy()
    with_nan[0, 0, 0, 0] = np.nan
    np.savez(root / "nan.npz", x=with_nan, y=y)
    sequences = rng.normal(size=(12, 8, 4)).astype("float32")
    with_inf = sequences.copy()
    with_inf[1, 2, 3] = np.inf
    np.savez(root / "inf_sequences.npz", x=with_inf, y=y)
    np.savez(root / "sequences.npz", x=sequences, y=y)
    np.savez(
        root / "label_out_of_range.npz",
        x=x,
        y=y,
        class_names=np.array(["cat", "dog"]),
        x_val=x[:4],
        y_val=np.array([0, 1, 2, 5]),
    )
    np.savez(root / "negative_labels.npz", x=x, y=y - 1)
    np.savez(root / "single_class.npz", x=x, y=np.zeros(12, int))
    np.savez(root / "one_hot.npz", x=x, y=np.eye(2)[y])
    np.savez(root / "no_labels.npz", x=x)
    np.savez(root / "images.npz", x=x, y=y)
    ragged = np.empty(4, dtype=object)
    ragged[:] = [np.zeros((n, 4), "float32") for n in (3, 5, 2, 6)]
    np.savez(root / "pickled.npz", x=ragged, y=np.array([0, 1, 0, 1]))
    whole = (root / "images.npz").read_bytes()
    (root / "truncated.npz").write_bytes(whole[: len(whole) // 2])
    (root / "text.npz").write_text("hello, I am not a numpy archive")


def keras_files(root: Path) -> None:
    import keras

    import zoo

    model = zoo.create_model(
        "cnn", input_shape=(*IMAGE, 1), num_classes=3, filters=[4], dense_units=4
    )
    model.save(root / "tiny.keras")
    whole = (root / "tiny.keras").read_bytes()
    (root / "truncated.keras").write_bytes(whole[: len(whole) // 2])
    inputs = keras.Input((*IMAGE, 1), name="image")
    x = keras.layers.Lambda(lambda t: t * 2.0, name="doubling")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    keras.Model(inputs, outputs).save(root / "lambda.keras")
    # A run that recorded its classes as cat, dog (good_images has a, b).
    named = root / "run_cat_dog"
    named.mkdir()
    zoo.create_model(
        "cnn", input_shape=(*IMAGE, 1), num_classes=2, filters=[4], dense_units=4
    ).save(named / "model.keras")
    (named / "config.yaml").write_text("model: cnn\ntask: image\nclass_names: [cat, dog]\n")
    sequence = zoo.create_model("lstm", input_shape=(None, 4), num_classes=2, units=4)
    sequence.save(root / "sequence.keras")
    sequence.save_weights(root / "lstm.weights.h5")  # weights of another architecture than cnn
    # A .keras whose config names a function outside Keras (os.system) as an activation.
    with zipfile.ZipFile(root / "tiny.keras") as source:
        config = json.loads(source.read("config.json"))
        members = {name: source.read(name) for name in source.namelist()}
    for layer in config["config"]["layers"]:
        if layer["class_name"] == "Dense":
            layer["config"]["activation"] = {
                "module": "os",
                "class_name": "function",
                "config": "system",
                "registered_name": "system",
            }
    members["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(root / "os_system.keras", "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    keras.backend.clear_session()


def _onnx_files(root: Path) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    (root / "garbage.onnx").write_bytes(b"this is not an ONNX protobuf")

    def save(name, nodes, input_name, width, initializers=(), domains=()):
        graph = helper.make_graph(
            nodes,
            "g",
            [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", width])],
            [helper.make_tensor_value_info("predictions", TensorProto.FLOAT, ["batch", 3])],
            list(initializers),
        )
        opsets = [helper.make_opsetid("", 17), *(helper.make_opsetid(d, 1) for d in domains)]
        onnx.save(helper.make_model(graph, opset_imports=opsets, ir_version=8), root / name)

    weights = numpy_helper.from_array(np.ones((4, 3), np.float32), "w")
    save(
        "pixels_in.onnx",
        [
            helper.make_node("MatMul", ["pixels_in", "w"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["predictions"]),
        ],
        "pixels_in",
        4,
        [weights],
    )
    save(
        "custom_op.onnx",
        [helper.make_node("Exfiltrate", ["image"], ["predictions"], domain="com.example.evil")],
        "image",
        3,
        domains=("com.example.evil",),
    )


def _configs(root: Path) -> None:
    (root / "invalid.yaml").write_text("epochs: [1\n")
    (root / "unknown_key.yaml").write_text("epoch: 3\n")
    (root / "not_a_mapping.yaml").write_text("- just\n- a list\n")
    (root / "schedule.yaml").write_text("lr_schedule: linear\n")
    (root / "not_an_engine.engine").write_bytes(b"not a TensorRT plan")
    (root / "notes.txt").write_text("neither a model nor an artefact")


def make_bad_inputs(root: Path) -> Path:
    """Write every bad input under `root` (a fresh folder); a few seconds, mostly Keras."""
    rng = np.random.default_rng(RNG_SEED)
    root.mkdir(parents=True, exist_ok=True)
    _folders(root, rng)
    _arrays(root, rng)
    keras_files(root)
    old_run(root)
    _onnx_files(root)
    _configs(root)
    return root
