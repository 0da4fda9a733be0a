"""`convert.predict` / `zoo predict`: inputs as files, folders, globs and .npz; JSON/CSV shapes;
class names from the file's metadata, else numbered with a note."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner

import convert
from tests.convert.digit_folder import NAMES, write_digit_folder
from tests.convert.use_fixtures import CLASS_NAMES, artefacts
from zoo.cli import main
from zoo.data import load_arrays


@pytest.fixture(scope="module")
def made():
    return artefacts()


@pytest.fixture(scope="module")
def val_npz(tmp_path_factory):
    """Six validation digits as an .npz `x`, with their labels."""
    val = load_arrays("builtin:digits", task="image", input_shape=(28, 28, 1), split="val",
                      limit=6)  # fmt: skip
    path = tmp_path_factory.mktemp("npz") / "six.npz"
    np.savez(path, x=val.x)
    return path, val


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_digit_folder(tmp_path_factory.mktemp("images"), size=28)


def _zoo(*args) -> str:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_npz_rows_agree_with_keras(made, val_npz):
    import zoo

    path, val = val_npz
    result = convert.predict(made["int8"], [path], top_k_classes=3)
    assert [p.input for p in result.predictions] == [f"{path}[{i}]" for i in range(6)]
    keras_top = zoo.load_model(made["keras"]).predict(val.x, verbose=0).argmax(axis=1)
    fp32 = convert.predict(made["onnx"], [path], top_k_classes=1)
    assert [p.top[0][0] for p in fp32.predictions] == [CLASS_NAMES[i] for i in keras_top]
    for p in result.predictions:
        values = [v for _, v in p.top]
        assert len(p.top) == 3 and values == sorted(values, reverse=True) and sum(values) <= 1.001


def test_json_shape(made, val_npz):
    rows = json.loads(_zoo("predict", made["onnx"], val_npz[0], "--top-k", "2", "--json"))
    assert len(rows) == 6
    for row in rows:
        assert set(row) == {"input", "predictions"}
        assert [set(p) for p in row["predictions"]] == [{"class", "probability"}] * 2
        assert row["predictions"][0]["class"] in CLASS_NAMES


def test_csv_shape(made, val_npz):
    text = _zoo("predict", made["xml"], val_npz[0], "--top-k", "3", "--csv")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["input", "rank", "class", "probability"]
    assert len(rows) == 1 + 6 * 3
    assert [row[1] for row in rows[1:4]] == ["1", "2", "3"]
    assert all(0.0 <= float(row[3]) <= 1.0 for row in rows[1:])


def test_table_names_each_input(made, val_npz):
    lines = _zoo("predict", made["keras"], val_npz[0], "--top-k", "1").splitlines()
    assert lines[0].startswith("input") and len(lines) == 7
    assert lines[1].startswith(f"{val_npz[0]}[0]")


def test_folders_recursively_and_globs(made, folder):
    by_folder = convert.predict(made["onnx"], [folder / "test"], top_k_classes=1)
    assert len(by_folder.predictions) == 8 * len(NAMES)
    by_glob = convert.predict(made["onnx"], [str(folder / "test" / "t*" / "*.png")])
    assert {p.input.split("/")[-2] for p in by_glob.predictions} == {"three", "two"}
    assert len(by_glob.predictions) == 16


def test_a_file_without_metadata_numbers_its_classes(made, val_npz, tmp_path):
    bare = convert.export_onnx(made["keras"], tmp_path / "bare.onnx")  # no run, no metadata
    result = CliRunner().invoke(main, ["predict", str(bare), str(val_npz[0]), "--json"])
    assert result.exit_code == 0, result.output
    assert "Note: bare.onnx carries no class names" in result.stderr
    names = {p["class"] for row in json.loads(result.stdout) for p in row["predictions"]}
    assert names <= {f"class {i}" for i in range(10)}


def test_a_sequence_model_takes_an_npz(tmp_path):
    import zoo

    model = zoo.create_model("lstm", input_shape=(None, 3), num_classes=1, units=4)
    model.save(tmp_path / "seq.keras")
    x = np.random.default_rng(0).normal(size=(4, 7, 3)).astype("float32")
    np.savez(tmp_path / "series.npz", x=x)
    result = convert.predict(tmp_path / "seq.keras", [tmp_path / "series.npz"], top_k_classes=2)
    p1 = np.asarray(model.predict(x, verbose=0))[:, 0]
    for prediction, p in zip(result.predictions, p1, strict=True):
        assert dict(prediction.top)["class 1"] == pytest.approx(float(p), abs=1e-5)


_PROBE = """
import sys
from zoo.cli import main
main(sys.argv[1:], standalone_mode=False, prog_name="zoo")
print(sorted(m for m in ("keras", "tensorflow") if m in sys.modules))
"""


@pytest.mark.parametrize("command", ["predict", "evaluate"])
def test_onnx_and_openvino_sources_never_start_keras(made, val_npz, command):
    import subprocess
    import sys

    args = [str(made["onnx"]), str(val_npz[0])] if command == "predict" else [str(made["xml"])]
    done = subprocess.run([sys.executable, "-c", _PROBE, command, *args],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
