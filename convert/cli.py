"""`zoo convert` and `zoo bench`: thin click shells over `convert.convert` and `convert.benchmark`.

Both are attached to the `zoo` group through the `kerazoo.commands` entry points; everything heavy
is imported inside the command bodies so `zoo --help` stays instant. Library errors become
one-line `Error: ...` messages with a non-zero exit (the group turns ValueError/RuntimeError into
`click.ClickException`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click

from convert._common import (
    CALIBRATION_METHODS,
    INFERENCE_PRECISIONS,
    ONNX_RUNTIMES,
    PRECISIONS,
    TARGETS,
)


def _int_list(name: str) -> Callable[[click.Context, click.Parameter, str | None], list[int]]:
    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int]:
        if value is None:
            return []
        try:
            values = [int(item) for item in value.split(",") if item.strip()]
        except ValueError:
            values = []
        if not values or min(values) < 1:
            raise click.BadParameter(
                f"{name} should be comma-separated positive ints, e.g. 1,8,32. Received: {value!r}"
            )
        return values

    return parse


def _name_list(
    name: str, valid: tuple[str, ...]
) -> Callable[[click.Context, click.Parameter, str | None], list[str]]:
    def parse(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str]:
        if value is None:
            return []
        values = [item.strip() for item in value.split(",") if item.strip()]
        if not values or any(item not in valid for item in values):
            raise click.BadParameter(
                f"{name} should be a comma-separated list of {', '.join(valid)}. "
                f"Received: {value!r}"
            )
        return values

    return parse


def _progress(quiet: bool) -> Callable[[str], None] | None:
    if quiet:
        return None
    return lambda line: click.echo(line, err=True)


@click.command("convert")
@click.argument("source", type=click.Path(exists=True))
@click.option(
    "--to",
    "to",
    type=click.Choice(TARGETS),
    default="onnx",
    show_default=True,
    help="Target format (openvino: an IR model.xml + model.bin).",
)
@click.option(
    "--precision",
    type=click.Choice((*PRECISIONS, "auto")),
    default="fp32",
    show_default=True,
    help="fp16: float16 weights/compute, float32 I/O. int8: QDQ, calibrated on real data. "
    "auto: the fastest artefact within --max-accuracy-drop (--to onnx|openvino).",
)
@click.option(
    "--max-accuracy-drop",
    metavar="POINTS",
    help="With --precision auto: the budget, in points of top-1 accuracy on held-out labelled "
    "data against the float32 model (e.g. 1).",
)
@click.option(
    "--eval-data",
    metavar="SPEC",
    help="With --precision auto: labelled data whose test split (else validation split) "
    "judges accuracy. Defaults to a run directory's `data`.",
)
@click.option(
    "--search-time",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="With --precision auto: time for building candidates and the mixed-precision trials "
    "(5 timing rounds follow). "
    "[default: 180]",
)
@click.option(
    "--calib-data",
    metavar="SPEC",
    help="Calibration/parity data: a folder, FILE.csv, FILE.npz or builtin:NAME. "
    "Defaults to a run directory's `data`, split with its seed and val_split.",
)
@click.option(
    "--calib-method",
    type=click.Choice(CALIBRATION_METHODS),
    default="minmax",
    show_default=True,
    help="How int8 activation ranges are chosen.",
)
@click.option(
    "--opset", type=click.IntRange(13, 21), default=17, show_default=True, help="ONNX opset."
)
@click.option(
    "--batch-sizes",
    default="1,8,32",
    show_default=True,
    callback=_int_list("--batch-sizes"),
    help="Batch sizes the parity gate checks (and the TensorRT profile spans).",
)
@click.option(
    "--seq-lens",
    default="8,64,256",
    show_default=True,
    callback=_int_list("--seq-lens"),
    help="Sequence lengths checked for sequence models (and the TensorRT profile spans).",
)
@click.option(
    "--atol", type=click.FloatRange(min=0), help="Absolute tolerance (default per precision)."
)
@click.option(
    "--rtol", type=click.FloatRange(min=0), help="Relative tolerance (default per precision)."
)
@click.option("--out", type=click.Path(), help="Artefact path. Defaults to beside the model.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace an existing artefact (only once the new one passes the parity gate).",
)
@click.option(
    "--unsafe-load",
    is_flag=True,
    help="Allow .keras files that run stored code (Lambda layers). Only for files you trust.",
)
@click.option(
    "--compare",
    metavar="FILE",
    multiple=True,
    help="With --precision auto: an artefact built elsewhere (e.g. a QAT run's model.int8.onnx) "
    "to score and time beside the candidates; repeatable.",
)
@click.option(
    "--explain",
    is_flag=True,
    help="With --precision int8: also rank the layers by their own int8 error (Keras layer "
    "names), printed and written to <artefact stem>.explain.json.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the parity report as JSON.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
@click.option(
    "--preflight",
    "preflight_only",
    is_flag=True,
    help="Only check the ONNX graph against the TensorRT parser; build nothing.",
)
def convert_command(
    source: str,
    to: str,
    precision: str,
    max_accuracy_drop: str | None,
    eval_data: str | None,
    search_time: float | None,
    compare: tuple[str, ...],
    calib_data: str | None,
    calib_method: str,
    opset: int,
    batch_sizes: list[int],
    seq_lens: list[int],
    atol: float | None,
    rtol: float | None,
    out: str | None,
    overwrite: bool,
    unsafe_load: bool,
    explain: bool,
    as_json: bool,
    quiet: bool,
    preflight_only: bool,
) -> None:
    """Convert SOURCE (a .keras file, a run directory or an .onnx file) and verify the result.

    The artefact is checked against the Keras model (parity table; report in
    <artefact>.report.json) and only then moved to its final name; a failing one is kept as
    <name>.failed.<ext> and the command exits 1. OpenVINO IRs are checked in OpenVINO with f32
    compute.

    \b
    Examples:
      zoo convert runs/demo --to onnx
      zoo convert runs/demo --to onnx --precision int8 --calib-method entropy
      zoo convert runs/demo --to onnx --precision int8 --explain
      zoo convert runs/demo --to openvino --precision int8
      zoo convert runs/demo --to onnx --precision auto --max-accuracy-drop 1
      zoo convert model.keras --to onnx --precision fp16 --out model.fp16.onnx
      zoo convert model.onnx --preflight --batch-sizes 1,8,32
    """
    import convert

    progress = _progress(quiet)
    auto = dict(max_accuracy_drop=max_accuracy_drop, eval_data=eval_data, search_time=search_time,
                compare=compare or None)  # fmt: skip
    if precision == "auto" or any(v is not None for v in auto.values()):
        _check_auto(precision, explain, preflight_only, auto)
        _run_auto(source, to, auto, calib_data, out, overwrite, unsafe_load, as_json, progress)
        return
    if explain and (precision != "int8" or preflight_only):
        raise click.ClickException(
            "--explain ranks the layers of an int8 conversion: pass --precision int8 (and no "
            f"--preflight). Received: --precision {precision}"
            + (" --preflight" if preflight_only else "")
        )
    if preflight_only:
        report = convert.run_preflight(
            source, batch_sizes=batch_sizes, seq_lens=seq_lens, opset=opset
        )
        click.echo(json.dumps(report.to_dict(), indent=2) if as_json else report.format_table())
        if not report.ok:
            raise click.exceptions.Exit(1)
        return
    explain_with = (
        (source, calib_data, calib_method, to, progress, not unsafe_load) if explain else ()
    )
    if explain:
        from convert.sensitivity import check_explainable

        check_explainable(source)  # before converting: a QAT run has nothing to explain
    try:
        result = convert.convert(
            source,
            to=to,
            precision=precision,
            out=out,
            opset=opset,
            calib_data=calib_data,
            calib_method=calib_method,
            batch_sizes=batch_sizes,
            seq_lens=seq_lens,
            atol=atol,
            rtol=rtol,
            progress=progress,
            overwrite=overwrite,
            safe_mode=not unsafe_load,
        )
    except convert.GateError as error:  # a failed int8 file is when the ranking helps most
        _print_report(error.result, as_json, _explain(error.result, explain_with))
        raise click.ClickException(str(error)) from None
    _print_report(result, as_json, _explain(result, explain_with))
    if not as_json and not quiet:
        click.echo(f"wrote {result.artefact}", err=True)


def _check_auto(precision: str, explain: bool, preflight_only: bool, auto: dict) -> None:
    """One-line errors for --precision auto's options used without it, or with what it excludes."""
    given = [f"--{k.replace('_', '-')}" for k, v in auto.items() if v is not None]
    if precision != "auto":
        raise click.ClickException(
            f"{', '.join(given)}: only with --precision auto (the budgeted search). "
            f"Received: --precision {precision} {' '.join(given)}"
        )
    if auto["max_accuracy_drop"] is None:
        raise click.ClickException(
            "--precision auto needs --max-accuracy-drop POINTS (e.g. 1 for one point of top-1 "
            "accuracy). Received: no --max-accuracy-drop"
        )
    if explain or preflight_only:
        raise click.ClickException(
            "--precision auto cannot be combined with --explain or --preflight (its table ranks "
            "the layers it keeps float). Received: "
            + " ".join(
                f for f, on in (("--explain", explain), ("--preflight", preflight_only)) if on
            )
        )


def _run_auto(source, to, auto, calib_data, out, overwrite, unsafe_load, as_json, progress):
    """`--precision auto`: `convert.budget.search`, its table (or JSON) and its result line."""
    from convert.budget import DEFAULT_SEARCH_TIME, search

    result = search(
        source, to, max_accuracy_drop=auto["max_accuracy_drop"], eval_data=auto["eval_data"],
        calib_data=calib_data, out=out, overwrite=overwrite, progress=progress,
        search_time=DEFAULT_SEARCH_TIME if auto["search_time"] is None else auto["search_time"],
        compare=auto["compare"] or (), safe_mode=not unsafe_load,
    )  # fmt: skip
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    click.echo(result.format_table())
    click.echo(result.result_line())
    if progress is not None:
        progress(f"wrote {result.artefact} and {Path(result.files['json']).parent}/")


def _explain(result, explain_with: tuple):
    """The per-layer ranking of an int8 conversion, written beside its artefact (or None)."""
    if not explain_with:
        return None
    from convert.sensitivity import explain

    source, calib_data, calib_method, to, progress, safe_mode = explain_with
    out = result.artefact.with_suffix(".explain.json")
    report = explain(
        source, calib_data=calib_data, calib_method=calib_method, out=out, progress=progress,
        symmetric=to == "tensorrt", safe_mode=safe_mode,  # TensorRT gets the S8S8 lowering
    )  # fmt: skip
    if progress is not None:
        progress(f"wrote {out}")
    return report


def _print_report(result, as_json: bool, explained=None) -> None:
    if as_json:
        data = result.report.to_dict() if result.report else {}
        extra = {"explain": explained.to_dict()} if explained is not None else {}
        click.echo(json.dumps({"artefact": str(result.artefact), **data, **extra}, indent=2))
        return
    if result.report is not None:
        click.echo(result.report.format_table())
    if explained is not None:
        click.echo("\nPer-layer int8 sensitivity (each layer quantized alone):")
        click.echo(explained.format_table())


@click.command("bench")
@click.argument("artifacts", nargs=-1, required=True, type=click.Path(exists=True))
@click.option(
    "--batch-sizes",
    default="1,8,32",
    show_default=True,
    metavar="N,N,...",
    callback=_int_list("--batch-sizes"),
    help="Batch sizes to time, comma-separated.",
)
@click.option(
    "--seq-lens",
    default="64",
    metavar="N,N,...",
    show_default=True,
    callback=_int_list("--seq-lens"),
    help="Time steps for sequence models.",
)
@click.option(
    "--warmup",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    help="Untimed runs first (allocation, kernel selection).",
)
@click.option(
    "--runs", type=click.IntRange(1), default=50, show_default=True, help="Timed runs per batch."
)
@click.option("--threads", type=click.IntRange(1), help="Intra-op threads (default: runtime's).")
@click.option(
    "--runtime",
    "runtimes",
    metavar="NAME,NAME",
    callback=_name_list("--runtime", ONNX_RUNTIMES),
    help="What runs .onnx files: onnxruntime, openvino. [default: both]",
)
@click.option(
    "--ov-precision",
    "ov_precisions",
    metavar="P,P",
    callback=_name_list("--ov-precision", INFERENCE_PRECISIONS),
    help="OpenVINO inference precisions: bf16, f32. [default: both on a CPU with bf16, else f32]",
)
@click.option(
    "--unsafe-load",
    is_flag=True,
    help="Allow .keras files that run stored code (Lambda layers). Only for files you trust.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of records.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write a bar chart (PNG).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --plot file.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def bench_command(
    artifacts: tuple[str, ...],
    batch_sizes: list[int],
    seq_lens: list[int],
    warmup: int,
    runs: int,
    threads: int | None,
    runtimes: list[str],
    ov_precisions: list[str],
    unsafe_load: bool,
    as_json: bool,
    plot: str | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Latency (p50/p90/p99) and throughput of ARTIFACTS per runtime and batch size.

    .keras files run eagerly and as a traced function; .onnx files in ONNX Runtime and in
    OpenVINO (labelled fp32/fp16/int8, OpenVINO also by its compute precision, e.g.
    openvino-int8@f32); .xml files (OpenVINO IR) in OpenVINO; .engine files in TensorRT (GPU
    machines).

    \b
    Examples:
      zoo bench runs/demo/model.keras runs/demo/model.onnx runs/demo/model.int8.onnx
      zoo bench model.onnx --runtime openvino --ov-precision f32 --batch-sizes 1,64
      zoo bench model.onnx --batch-sizes 1,64 --threads 2 --json --plot bench.png
    """
    from convert.bench import benchmark, format_table, plot_records

    if plot and Path(plot).exists() and not overwrite:
        raise click.ClickException(
            f"{plot!r} already exists: pass --overwrite to replace it, or --plot another path."
        )
    records = benchmark(
        artifacts,
        batch_sizes,
        seq_lens=seq_lens,
        warmup=warmup,
        runs=runs,
        threads=threads,
        runtimes=runtimes or None,
        ov_precisions=ov_precisions or None,
        progress=_progress(quiet),
        safe_mode=not unsafe_load,
    )
    if plot:
        plot_records(records, plot)
        if not quiet:
            click.echo(f"wrote {plot}", err=True)
    click.echo(json.dumps(records, indent=2) if as_json else format_table(records))
    sys.stdout.flush()
