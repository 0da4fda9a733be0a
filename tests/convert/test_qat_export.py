"""`zoo convert QAT_RUN --precision int8`: Q/DQ ONNX from the learned ranges, gated in ONNX
Runtime and OpenVINO against the fake-quantized Keras model."""

from __future__ import annotations

import numpy as np
import pytest

from tests.finetune.qat_runs import qat_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def qat_onnx(tmp_path_factory):
    from convert.pipeline import convert

    out = tmp_path_factory.mktemp("qat") / "model.int8.onnx"
    result = convert(qat_run(), to="onnx", precision="int8", out=out)
    return result


def _arrays(graph):
    from onnx import numpy_helper

    return {init.name: numpy_helper.to_array(init) for init in graph.initializer}


def test_qat_onnx_passes_the_gate_against_the_fake_quant_model(qat_onnx):
    report = qat_onnx.report
    assert qat_onnx.passed and report.runtime.startswith("onnxruntime")
    assert report.reference.startswith("keras") and report.top1_agreement >= 0.97
    # Accuracy against the float parent (the run's --from), on the gate's labelled data.
    parent = report.extra["accuracy_float_parent"]
    assert parent > 0.8 and report.extra["float_parent"].endswith("model.keras")
    assert report.extra["drop_vs_float_parent"] == pytest.approx(parent - report.accuracy_artefact)


def test_qat_onnx_weights_are_int8_per_channel(qat_onnx):
    import onnx

    graph = onnx.load(str(qat_onnx.artefact)).graph
    arrays = _arrays(graph)
    producers = {out: node for node in graph.node for out in node.output}
    weighted = [node for node in graph.node if node.op_type in ("Conv", "Gemm", "MatMul")]
    assert len(weighted) == 4  # tiny cnn: 2 convs, dense, classifier
    for node in weighted:
        dq = producers[node.input[1]]
        assert dq.op_type == "DequantizeLinear"
        q, scale = arrays[dq.input[0]], arrays[dq.input[1]]
        assert q.dtype == np.int8 and scale.ndim == 1 and len(scale) > 1  # one per channel
        axis = next(a.i for a in dq.attribute if a.name == "axis")
        assert len(scale) == q.shape[axis]


def test_qat_onnx_activation_scales_are_the_learned_ranges(qat_onnx):
    import onnx

    import zoo
    from zoo.quantization import FakeQuant

    model = zoo.load_model(qat_run() / "model.keras")
    learned = []
    for layer in model.layers:
        if isinstance(layer, FakeQuant):
            low, high = layer.quant_range()
            learned.append(((high - low) / 255.0, round(-low / ((high - low) / 255.0))))
    graph = onnx.load(str(qat_onnx.artefact)).graph
    arrays = _arrays(graph)
    written = sorted(
        (float(arrays[n.input[1]]), int(arrays[n.input[2]]))
        for n in graph.node
        if n.op_type == "QuantizeLinear"
    )
    assert len(written) == len(learned) == 4
    for (scale, zero), (want_scale, want_zero) in zip(written, sorted(learned), strict=True):
        assert scale == pytest.approx(want_scale, rel=1e-5) and zero == want_zero


def test_qat_openvino_passes_the_gate(tmp_path):
    from convert.gate import verify
    from convert.pipeline import convert
    from convert.runners import open_artifact
    from convert.source import resolve_source

    result = convert(qat_run(), to="openvino", precision="int8", out=tmp_path / "model.int8.xml")
    assert result.passed and "openvino" in result.report.runtime
    runner = open_artifact(result.artefact, "openvino", inference_precision="f32")
    x = np.random.default_rng(0).uniform(0, 255, (64, 16, 16, 1)).astype("float32")
    model = resolve_source(qat_run()).load_model()
    report = verify(runner, model, x, precision="int8")
    assert report.passed and report.top1_agreement >= 0.97


def test_qat_model_at_fp32_is_refused(tmp_path):
    from convert.pipeline import convert

    with pytest.raises(ValueError, match="--precision int8"):
        convert(qat_run(), to="onnx", precision="fp32", out=tmp_path / "model.onnx")
    assert not list(tmp_path.iterdir())


def test_budget_table_shows_qat_beside_ptq(tmp_path):
    """`--precision auto --compare QAT_FILE`: the QAT file is scored on the parent's held-out
    split by the same code as `zoo evaluate`, timed with the PTQ candidates, and a wrong file
    type is one line."""
    from convert.budget import search
    from convert.evaluation import evaluate
    from convert.pipeline import convert
    from tests.finetune.qat_runs import float_parent_run

    qat_file = convert(qat_run(), to="onnx", precision="int8", overwrite=True).artefact
    result = search(float_parent_run(), max_accuracy_drop=100.0, compare=[qat_file],
                    methods=("minmax",), search_time=5, bench_runs=3,
                    out=tmp_path / "model.onnx")  # fmt: skip
    rows = {row.name: row for row in result.candidates}
    assert {"fp32", "int8-minmax", "qat-int8"} <= set(rows)
    qat = rows["qat-int8"]
    expected = evaluate(qat_file, split=result.split).accuracy
    assert qat.accuracy == pytest.approx(expected) and qat.existing and qat.eligible
    assert qat.drop == pytest.approx(100 * (result.reference_accuracy - expected))
    assert set(qat.p50_ms) == set(rows["fp32"].p50_ms)  # timed like the others
    assert "qat-int8" in result.format_table()
    if result.chosen is qat:  # chosen as it stands: not rebuilt, not copied
        assert result.artefact == qat_file
    with pytest.raises(ValueError, match="--compare takes .onnx files"):
        search(float_parent_run(), max_accuracy_drop=1, compare=[tmp_path / "x.xml"])
