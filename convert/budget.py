"""`search(SOURCE, to, max_accuracy_drop=POINTS)`: the fastest artefact within an accuracy budget.

The search is its own step around the plain pipeline: it builds candidate files in a scratch
folder (fp32, fp16, int8 with each ONNX Runtime calibration method, then mixed files whose most
sensitive layers stay float), scores each on held-out labelled data with the code `zoo evaluate`
runs (`convert.evaluation.load_split` + `scores`, the Keras reference included), times them
interleaved with `convert.bench.benchmark` on the runtime the result is for, picks the fastest
one within the budget, and publishes that one through `convert.pipeline.convert` (export ->
parity gate, with the budget as the gate's accuracy limit, on the same held-out data -> publish).
See docs/DESIGN.md, "Budgeted precision".

Example:
    >>> result = search("runs/demo", to="onnx", max_accuracy_drop=1.0)
    >>> result.artefact, result.chosen.name, result.chosen.drop
    (PosixPath('runs/demo/model.int8-percentile.onnx'), 'int8-percentile', 0.28)
    >>> print(result.format_table())
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from convert._common import CALIBRATION_METHODS, DEFAULT_OPSET
from convert.budget_report import BudgetResult, Candidate

BUDGET_TARGETS = ("onnx", "openvino")
DEFAULT_SEARCH_TIME = 180.0  # seconds: a backbone head on 2 cores, mixed trials included
BENCH_BATCHES = (1, 64)
# Candidates whose p50 differ by less than this are equally fast on a shared machine (the
# spread of repeated p50s measured here at load 2-8); the more accurate one is preferred.
NOISE = 0.10
# Timing rounds, run whatever the search time: a lowering must beat fp32 in every one of them
# (with 5 rounds a coin flip passes 1 time in 32; with 3, fp16 files "won" here by chance).
ROUNDS = 5
MIN_ROUNDS_FASTER = 1.0  # share of the timing rounds a lowering must win against fp32
MAX_MIXED_TRIALS = 6  # 1, 2, 4, 8, 16, 32 layers back in float
_SUFFIX = {"onnx": ".onnx", "openvino": ".xml"}


def check_budget(value: Any) -> float:
    """The budget as a float of points >= 0, else a one-line ValueError.

    Example:
        >>> check_budget("0.5")
        0.5
    """
    try:
        points = float(value)
    except (TypeError, ValueError):
        points = math.nan
    if isinstance(value, bool) or not math.isfinite(points) or points < 0:
        raise ValueError(
            f"max_accuracy_drop should be a number of points of top-1 accuracy >= 0 (e.g. 1 "
            f"for one point). Received: max_accuracy_drop={value!r}"
        )
    return points


class _Scorer:
    """Top-1 of any candidate on the held-out split, against the float32 reference's."""

    def __init__(self, clf: Any, arrays: Any, spec: str):
        from convert.evaluation import scores

        self.arrays, self.spec, self.class_names = arrays, spec, list(arrays.class_names)
        reference = clf.probabilities(arrays.x)
        self.reference_top1 = reference.argmax(axis=1)
        self.reference_accuracy = scores(arrays.y, reference, self.class_names)["accuracy"]

    def score(self, row: Candidate, safe_mode: bool = True) -> None:
        from convert.classify import open_classifier
        from convert.evaluation import scores

        runtime = row.runtime.split("@")[0]
        clf = open_classifier(row.path, runtime=runtime, safe_mode=safe_mode)
        if "@" in row.runtime:  # an OpenVINO compute precision
            from convert.runners import open_artifact

            clf.runner = open_artifact(row.path, "openvino",
                                       inference_precision=row.runtime.split("@")[1])  # fmt: skip
        probabilities = clf.probabilities(self.arrays.x)
        row.accuracy = scores(self.arrays.y, probabilities, self.class_names)["accuracy"]
        row.drop = 100.0 * (self.reference_accuracy - row.accuracy)
        row.agreement = float(np.mean(probabilities.argmax(axis=1) == self.reference_top1))
        row.size_bytes = _size(row.path)


def _size(path: Path | None) -> int:
    if path is None:
        return 0
    sizes = [path.stat().st_size]
    if path.suffix == ".xml" and path.with_suffix(".bin").exists():
        sizes.append(path.with_suffix(".bin").stat().st_size)
    return int(sum(sizes))


def _data(src: Any, clf: Any, eval_data: str | None, calib_data: str | None) -> tuple:
    """(held-out Arrays, their spec, calibration x, ranking x): never the same examples."""
    from convert.calibration import check_classes, load_calibration, run_split_rules
    from convert.evaluation import load_split
    from convert.metadata import run_dir_of
    from zoo.runs import recorded_data

    # The run holding SOURCE: a run directory, or a file inside one (an .onnx export).
    run_dir, config = src.run_dir or run_dir_of(clf.path), src.config or clf.run_config
    recorded = recorded_data(run_dir, config) if run_dir is not None else None
    spec = eval_data or recorded
    if spec is None:
        raise ValueError(
            "--precision auto measures top-1 accuracy on held-out labelled data: pass "
            "--eval-data SPEC (a folder, FILE.npz or builtin:NAME), or convert a run directory "
            f"whose config has `data`. Received: {str(src.path)!r} without labelled data"
        )
    held_out = load_split(clf, str(spec), None)
    check_classes(str(spec), held_out.class_names, output_width=clf.width,
                  run_class_names=config.get("class_names"), option="--eval-data")  # fmt: skip
    if not len(held_out):
        raise ValueError(f"--eval-data {spec} has no held-out examples.")
    name, shape = "input", tuple(clf.input_shape)
    calib = load_calibration(str(calib_data or recorded or spec), input_name=name,
                             input_shape=shape, output_width=clf.width,
                             **run_split_rules(config))  # fmt: skip
    # Layers are ranked on the validation inputs where there are any: the held-out split then
    # only judges the choice, it does not steer it.
    ranking = calib.evaluation[0] if held_out.split == "test" else held_out.x
    return held_out, str(spec), calib.calibration, ranking


def _fp32_onnx(src: Any, model: Any, scratch: Path, opset: int) -> Path:
    """The fp32 ONNX file every candidate starts from (the SOURCE itself for an .onnx)."""
    if src.onnx_path is not None:
        return src.onnx_path
    from convert.metadata import of_keras, write_onnx
    from convert.onnx import export_onnx

    path = scratch / "model.onnx"
    export_onnx(model, path, opset=opset)
    write_onnx(path, of_keras(model, src.path))  # class names travel in every lowering
    return path


def _runtime_file(onnx_path: Path, to: str, precision: str) -> Path:
    """The candidate as the target reads it: the .onnx itself, or its OpenVINO IR."""
    if to == "onnx":
        return onnx_path
    from convert.metadata import read_onnx
    from convert.openvino import export_openvino

    return export_openvino(onnx_path, onnx_path.with_suffix(".xml"),
                           compress_to_fp16=precision == "fp16",
                           rt_info=read_onnx(onnx_path).to_props())  # fmt: skip


def _plain_candidates(fp32: Path, to: str, calib_x: Any, methods: Sequence[str], scratch: Path,
                      say: Callable) -> list[Candidate]:  # fmt: skip
    """fp32, fp16 and int8 with each calibration method, each written to `scratch`."""
    from convert.lowering import quantize_fp16, quantize_int8

    runtime = "openvino@f32" if to == "openvino" else "onnxruntime"
    copy = scratch / "fp32.onnx"
    copy.write_bytes(fp32.read_bytes())
    rows = [Candidate("fp32", "fp32", runtime, "float32", path=_runtime_file(copy, to, "fp32"))]
    if to == "openvino":  # the fp16 IR: fp16 weights from the fp32 file, f32 compute
        fp16 = scratch / "fp16.onnx"
        fp16.write_bytes(fp32.read_bytes())
    else:
        fp16 = quantize_fp16(fp32, scratch / "fp16.onnx")
    rows.append(Candidate("fp16", "fp16", runtime, "float16 weights",
                          path=_runtime_file(fp16, to, "fp16")))  # fmt: skip
    for method in methods:
        say(f"quantizing to int8 ({method} calibration, {len(calib_x)} samples)")
        path = quantize_int8(fp32, scratch / f"int8-{method}.onnx", calib_x, method)
        rows.append(Candidate(f"int8-{method}", "int8", runtime,
                              f"int8 QDQ, {method} calibration, per-channel weights",
                              calib_method=method, path=_runtime_file(path, to, "int8")))  # fmt: skip
    return rows


def _recommendations(fp32: Path, scratch: Path) -> list[Candidate]:
    """`--to onnx`: the same fp32 file in OpenVINO (f32, and bf16 where the CPU has it)."""
    from convert.openvino import default_inference_precisions, is_available

    if not is_available()[0]:
        return []
    copy = scratch / "openvino-fp32.onnx"
    copy.write_bytes(fp32.read_bytes())
    return [
        Candidate(
            f"openvino-{p}",
            "fp32",
            f"openvino@{p}",
            f"the fp32 file, OpenVINO {p} compute",
            eligible=False,
            note="recommendation: OpenVINO",
            path=copy,
        )  # fmt: skip
        for p in default_inference_precisions()
    ]


def _compared(paths: Sequence[str | Path], to: str) -> list[Candidate]:
    """Rows for files built elsewhere, e.g. a QAT run's `model.int8.onnx`: scored and timed
    like the others, and if one wins it is the answer as it stands (it passed its own gate).
    """
    from convert.metadata import run_dir_of
    from zoo.runs import read_run_config

    suffix, rows = _SUFFIX[to], []
    for given in paths:
        path = Path(given)
        if not path.is_file() or path.suffix != suffix:
            raise ValueError(
                f"--compare takes {suffix} files for --to {to} (e.g. a QAT run's "
                f"model.int8{suffix}). Received: {str(given)!r}"
            )
        run_dir = run_dir_of(path)
        qat = run_dir is not None and bool(read_run_config(run_dir).get("qat"))
        precision = "int8" if qat or ".int8" in path.name else "fp32"
        rows.append(Candidate(
            f"qat-{precision}" if qat else path.stem, precision,
            "openvino@f32" if to == "openvino" else "onnxruntime",
            f"{'QAT, learned ranges' if qat else 'given file'}: {path}", path=path, existing=True,
        ))  # fmt: skip
    return rows


def _mixed_candidates(base: Candidate, fp32: Path, to: str, data: tuple, model: Any,
                      budget: float, scorer: _Scorer, scratch: Path, deadline: float,
                      say: Callable) -> tuple[list[Candidate], str]:  # fmt: skip
    """int8 files with the 1, 2, 4, ... most sensitive layers float, until one fits the budget.

    Returns the rows and a note (why it stopped early, or "").
    """
    from convert.lowering import quantize_int8
    from convert.sensitivity import rank_layers

    calib_x, ranking_x = data
    say(f"ranking layers by their own int8 error ({base.calib_method})")
    try:
        ranked = rank_layers(fp32, calib_x, ranking_x, method=base.calib_method,
                             keras_model=model).layers  # fmt: skip
    except ValueError as error:  # nothing with weights to keep float
        return [], f"no mixed files: {error}"
    rows, count = [], 1
    for _ in range(MAX_MIXED_TRIALS):
        if rows and time.monotonic() > deadline:  # the first trial always runs
            return rows, f"mixed trials stopped at the search time ({len(rows)} tried)"
        layers = ranked[: min(count, len(ranked))]
        nodes = [node for layer in layers for node in layer.nodes]
        name = f"{base.name}-float{len(layers)}"
        say(f"{name}: {', '.join(layer.layer for layer in layers)} float")
        path = quantize_int8(fp32, scratch / f"{name}.onnx", calib_x, base.calib_method,
                             exclude_nodes=nodes)  # fmt: skip
        row = Candidate(name, "int8", base.runtime,
                        f"{base.settings}; {len(layers)} most sensitive layers float32",
                        calib_method=base.calib_method, float_layers=[x.layer for x in layers],
                        float_nodes=nodes, path=_runtime_file(path, to, "int8"))  # fmt: skip
        scorer.score(row)
        rows.append(row)
        if row.drop <= budget or len(layers) == len(ranked):
            return rows, ""
        count *= 2
    return rows, f"mixed trials stopped after {MAX_MIXED_TRIALS}"


def _time_rows(rows: list[Candidate], batches: Sequence[int], runs: int, say: Callable) -> dict[int, float]:  # fmt: skip
    """p50 per batch, median over ROUNDS rounds, each round every row in a rotated order.

    Returns the speed margin per batch: NOISE, or the fp32 file's own spread over the rounds
    ((max - min) / median) when that is larger: a lowering must beat fp32 by more than that.
    """
    from convert.bench import benchmark

    samples: dict[int, dict[int, list[float]]] = {id(r): {b: [] for b in batches} for r in rows}
    for round_index in range(ROUNDS):
        shift = round_index % len(rows)
        for row in rows[shift:] + rows[:shift]:
            runtime, _, compute = row.runtime.partition("@")
            records = benchmark([row.path], batches, warmup=2, runs=runs, runtimes=[runtime],
                                ov_precisions=[compute] if compute else None)  # fmt: skip
            for record in records:
                samples[id(row)][record["batch_size"]].append(record["p50_ms"])
        say(f"timing round {round_index + 1} done")
    base = samples[id(rows[0])]
    for row in rows:
        row.p50_ms = {b: float(np.median(v)) for b, v in samples[id(row)].items() if v}
        # The rounds in which this row beat fp32 (same round, same load): a sign test.
        row.rounds_faster = {
            b: float(np.mean(np.asarray(v) < np.asarray(base[b]))) for b, v in
            samples[id(row)].items() if v
        }  # fmt: skip
    return {b: max(NOISE, float((max(v) - min(v)) / np.median(v))) for b, v in base.items() if v}


def _choose(
    rows: list[Candidate], budget: float, batch: int, margin: float = NOISE
) -> tuple[list[Candidate], bool]:
    """Eligible rows within the budget, best first, and whether float is kept.

    The fastest at `batch` wins; rows within NOISE of it are equally fast and the more accurate
    one goes first. Float is kept unless the pick's median p50 beats fp32's by more than `margin`
    (NOISE, or fp32's own spread over the rounds) and it was faster than fp32 in
    MIN_ROUNDS_FASTER of the interleaved rounds.
    """
    base = rows[0]
    fits = [r for r in rows if r.eligible and r.drop is not None and r.drop <= budget + 1e-9
            and batch in r.p50_ms]  # fmt: skip
    order = []
    while fits:
        fastest = min(r.p50_ms[batch] for r in fits)
        tied = [r for r in fits if r.p50_ms[batch] <= fastest * (1 + NOISE)]
        pick = min(tied, key=lambda r: (r.drop, r.p50_ms[batch]))
        order.append(pick)
        fits.remove(pick)
    faster = [r for r in order if r.p50_ms[batch] * (1 + margin) < base.p50_ms[batch]
              and r.rounds_faster.get(batch, 0.0) >= MIN_ROUNDS_FASTER]  # fmt: skip
    if not faster or base not in order or order[0] is base:
        return [base], True
    return faster, False


def _artefact_name(stem: Path, to: str, row: Candidate) -> Path:
    """model.onnx, model.fp16.onnx, model.int8-entropy.onnx, model.int8-minmax-float2.xml."""
    tag = "" if row.precision == "fp32" else f".{row.name}"
    return stem.with_name(stem.name + tag + _SUFFIX[to])


def search(
    source: str | Path,
    to: str = "onnx",
    *,
    max_accuracy_drop: float,
    eval_data: str | None = None,
    calib_data: str | None = None,
    search_time: float = DEFAULT_SEARCH_TIME,
    batch_sizes: Sequence[int] = BENCH_BATCHES,
    decide_batch: int | None = None,
    methods: Sequence[str] = CALIBRATION_METHODS,
    bench_runs: int = 10,
    compare: Sequence[str | Path] = (),
    out: str | Path | None = None,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
    safe_mode: bool = True,
) -> BudgetResult:
    """Publish the fastest artefact of SOURCE whose top-1 drop stays within the budget.

    Args:
        source: a run directory, `.keras` file or fp32 `.onnx` file.
        to: "onnx" (timed in ONNX Runtime; OpenVINO rows recommended beside) or "openvino".
        max_accuracy_drop: the budget, in points of top-1 accuracy against the float32 model.
        eval_data: labelled data SPEC; its test split, else validation split (the run's seed
            and val_split), is the held-out set. Defaults to the run's `data`.
        calib_data: calibration SPEC (its train split). Defaults to the run's data, else
            `eval_data`'s train split: never the held-out examples.
        search_time: seconds for building candidates and the mixed trials (soft: a started
            trial ends, the first always runs); the ROUNDS timing rounds follow.
        batch_sizes: batch sizes timed; `decide_batch` (default: the largest) picks the winner.
        methods: int8 calibration methods tried.
        bench_runs: timed calls per batch size and round.
        compare: files built elsewhere to put in the table (`.onnx` for onnx, `.xml` for
            openvino), e.g. a QAT run's int8 file; one that wins is the result as it stands.
        out: the artefact path; defaults to beside SOURCE, named after the choice. The table,
            JSON and chart go to `<artefact stem>.budget/` (`.openvino.budget/` for openvino).
        overwrite: replace an existing artefact and report folder.
        progress: called with one-line progress messages.
        safe_mode: False lets a `.keras` SOURCE run code stored in it; trusted files only.

    Example:
        >>> search("runs/demo", max_accuracy_drop=1.0, search_time=60).chosen.name
        'int8-percentile-float2'
    """
    from convert.classify import open_classifier
    from convert.source import resolve_source

    budget, batches, decide = _check_arguments(max_accuracy_drop, to, methods, batch_sizes,
                                               decide_batch)  # fmt: skip
    say = progress or (lambda _line: None)
    started = time.monotonic()
    src = resolve_source(source, safe_mode=safe_mode)
    folder = report_folder(src.stem, out, to)
    if folder.exists() and not overwrite:
        raise ValueError(f"{str(folder)!r} already exists: pass --overwrite to replace it.")
    if to == "openvino":
        from convert.openvino import require

        require()
    clf = open_classifier(src.path, safe_mode=safe_mode)
    held_out, spec, calibration, ranking_x = _data(src, clf, eval_data, calib_data)
    say(f"reference: float32 {clf.runner.runtime} on {spec} [{held_out.split}, "
        f"{len(held_out)} examples]")  # fmt: skip
    scorer = _Scorer(clf, held_out, spec)
    model = src.load_model() if src.model_path is not None else None
    with tempfile.TemporaryDirectory(prefix="kerazoo-budget-") as scratch_dir:
        scratch = Path(scratch_dir)
        given = _compared(compare, to)  # bad paths: one line before any work
        rows, note = _build(src, model, to, budget, scorer, calibration[0], ranking_x, methods,
                            scratch, started + search_time, say, given)  # fmt: skip
        say(f"timing {len(rows)} candidates at batch {', '.join(map(str, batches))}")
        margins = _time_rows(rows, batches, bench_runs, say)
        picks, kept_float = _choose(rows, budget, decide, margins.get(decide, NOISE))
        result = BudgetResult(
            Path(), to, picks[0], kept_float, "", budget, scorer.reference_accuracy, spec,
            held_out.split, len(held_out), decide, rows,
        )  # fmt: skip
        result.speed_margin = margins.get(decide, NOISE)
        if model is None:
            result.reference = f"the fp32 SOURCE in {clf.runner.runtime}"
        _publish(result, picks, src, out, calibration, held_out, overwrite, say, safe_mode)
        result.message = _message(result, note)
    result.seconds = time.monotonic() - started
    result.write(folder, overwrite=True)
    return result


def _check_arguments(max_accuracy_drop, to, methods, batch_sizes, decide_batch) -> tuple:
    """(budget, batch sizes, deciding batch), or a one-line ValueError."""
    from convert._common import check_choice

    budget = check_budget(max_accuracy_drop)
    if to not in BUDGET_TARGETS:
        raise ValueError(
            f"--precision auto builds an ONNX file (--to onnx) or an OpenVINO IR (--to openvino);"
            f" convert its result further from there. Received: to={to!r}"
        )
    for method in methods:
        check_choice("calib_method", method, CALIBRATION_METHODS)
    batches = sorted({int(b) for b in batch_sizes})
    decide = batches[-1] if decide_batch is None else int(decide_batch)
    if decide not in batches:
        raise ValueError(f"decide_batch should be one of batch_sizes {batches}. "
                         f"Received: decide_batch={decide_batch!r}")  # fmt: skip
    return budget, batches, decide


search_precision = search  # the name `convert` exports it under (`convert.search_precision`)


def report_folder(stem: Path, out: str | Path | None, to: str = "onnx") -> Path:
    """`<stem>.budget/` beside the artefact (`<stem>.openvino.budget/` for --to openvino, so a
    search for each runtime keeps its own report), stem being out's when given.

    Example:
        >>> report_folder(Path("runs/demo/model"), None, "openvino")
        PosixPath('runs/demo/model.openvino.budget')
    """
    base = Path(out).with_suffix("") if out is not None else Path(stem)
    tag = "" if to == "onnx" else f".{to}"
    return base.with_name(f"{base.name}{tag}.budget")


def _build(src: Any, model: Any, to: str, budget: float, scorer: _Scorer, calib_x: Any,
           ranking_x: Any, methods: Sequence[str], scratch: Path, deadline: float,
           say: Callable, given: Sequence[Candidate] = ()) -> tuple[list[Candidate], str]:  # fmt: skip
    """Every candidate, scored: plain ones, then mixed ones if no int8 file fits the budget."""
    from convert.gate import MIN_AGREEMENT

    fp32 = _fp32_onnx(src, model, scratch, DEFAULT_OPSET)
    rows = _plain_candidates(fp32, to, calib_x, methods, scratch, say)
    for row in rows:
        say(f"scoring {row.name}")
        scorer.score(row)
    int8 = [r for r in rows if r.precision == "int8"]
    note = ""
    if int8 and not any(r.drop <= budget for r in int8):
        best = min(int8, key=lambda r: (r.drop, methods.index(r.calib_method)))
        mixed, note = _mixed_candidates(best, fp32, to, (calib_x, ranking_x), model, budget,
                                        scorer, scratch, deadline, say)  # fmt: skip
        rows += mixed
    for row in given:
        say(f"scoring {row.name}")
        scorer.score(row)
    rows += list(given)
    for row in rows:  # what the gate would refuse is not a choice
        if row.existing:  # gated against its own model (QAT: the fake-quant one), not fp32's
            continue
        floor = MIN_AGREEMENT.get(row.precision)
        if floor is not None and row.agreement is not None and row.agreement < floor:
            row.eligible = False
            row.note = f"agreement below the gate's {floor:.0%}"
    if to == "onnx":
        recommended = _recommendations(fp32, scratch)
        for row in recommended:
            scorer.score(row)
        rows += recommended
    return rows, note


def _message(result: BudgetResult, note: str) -> str:
    """The one line saying what was chosen, or that float was kept and why."""
    extra = f" ({note})" if note else ""
    if result.kept_float:
        return (
            f"kept float32: no candidate within {result.max_accuracy_drop:g} points of top-1 "
            f"is faster than fp32 at batch {result.decided_by} by more than "
            f"{result.speed_margin:.0%} (the timing noise){extra}"
        )
    row = result.chosen
    return (
        f"chose {row.name}: drop {row.drop:+.2f} points within {result.max_accuracy_drop:g}, "
        f"the fastest at batch {result.decided_by}{extra}"
    )


def _publish(result: BudgetResult, picks: list[Candidate], src: Any, out: Any, calibration: tuple,
             held_out: Any, overwrite: bool, say: Callable, safe_mode: bool) -> None:  # fmt: skip
    """The chosen candidate through the plain pipeline (export -> gate -> publish).

    The gate scores the same held-out examples with the budget as its accuracy limit; if it
    refuses a pick, the next one is tried (three at most), float32 last.
    """
    from convert.pipeline import GateError, convert

    tries = picks[:2] + ([result.candidates[0]] if result.candidates[0] not in picks[:2] else [])
    for index, row in enumerate(tries):
        if row.existing:  # a given file (e.g. QAT): gated when it was written, kept as it is
            result.artefact, result.chosen, result.kept_float = row.path, row, False
            report = Path(f"{row.path}.report.json")
            result.gate_report = str(report) if report.is_file() else ""
            return
        if row is result.candidates[0] and src.kind == "onnx" and result.to == "onnx":
            result.artefact, result.chosen, result.kept_float = src.onnx_path, row, True
            return  # float kept: the fp32 SOURCE is the answer, nothing to convert
        final = Path(out) if out is not None else _artefact_name(src.stem, result.to, row)
        say(f"publishing {row.name} through the parity gate")
        try:
            published = convert(
                src.path, to=result.to, precision=row.precision, out=final,
                calib_data=calibration, eval_data=(held_out.x, held_out.y),
                calib_method=row.calib_method or "minmax", exclude_nodes=row.float_nodes,
                max_accuracy_drop=result.max_accuracy_drop / 100.0 + 1e-9,
                overwrite=overwrite, progress=say, safe_mode=safe_mode,
            )  # fmt: skip
        except GateError as error:
            row.eligible, row.note = False, f"failed the parity gate: {error}"
            if index == len(tries) - 1:
                raise
            continue
        result.artefact, result.chosen = published.artefact, row
        result.gate_report = str(published.report_path)
        result.kept_float = row.precision == "fp32" and not row.float_layers
        return
