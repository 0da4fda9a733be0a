"""`zoo evaluate` and `zoo predict`: thin click shells over `convert.evaluate` and `convert.predict`.

Attached to the `zoo` group through the `kerazoo.commands` entry points. Keras starts only for a
Keras source (a `.keras` file, a run directory, a SavedModel), after the arguments are checked:
an ONNX or OpenVINO source never imports TensorFlow.
"""

from __future__ import annotations

from pathlib import Path

import click

from convert._common import EVAL_SPLITS


def _start_backend_for(source: str) -> None:
    """Start Keras (its start-up noise silenced) unless SOURCE runs without it."""
    from convert.runners import ENGINE_SUFFIXES

    if Path(source).suffix not in (".onnx", ".xml", *ENGINE_SUFFIXES):
        from zoo.cli import start_backend

        start_backend()


_source = click.argument("source", type=click.Path(exists=True))
_batch_size = click.option(
    "--batch-size", type=click.IntRange(1), default=32, show_default=True,
    help="Inputs per forward pass.",
)  # fmt: skip
_unsafe = click.option(
    "--unsafe-load", is_flag=True,
    help="Allow .keras files that run stored code (Lambda layers). Only for files you trust.",
)  # fmt: skip


@click.command("evaluate")
@_source
@click.option(
    "--data", metavar="SPEC",
    help="Labelled data: a folder, FILE.npz or builtin:NAME. Defaults to a run's `data`.",
)  # fmt: skip
@click.option(
    "--split", type=click.Choice(EVAL_SPLITS),
    help="Which examples to score. [default: test if the data has one, else val]",
)  # fmt: skip
@_batch_size
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.option(
    "--out", type=click.Path(file_okay=False), metavar="DIR",
    help="Write metrics.json and confusion.png in DIR.",
)  # fmt: skip
@_unsafe
def evaluate_command(
    source: str,
    data: str | None,
    split: str | None,
    batch_size: int,
    as_json: bool,
    out: str | None,
    unsafe_load: bool,
) -> None:
    """Accuracy, top-5, per-class precision/recall/F1 and confusion matrix of SOURCE on --data.

    SOURCE is a .keras file, a run directory, a SavedModel, an .onnx file (fp32/fp16/int8), an
    OpenVINO .xml or a TensorRT engine. Images are resized as training resizes them. A run
    directory (or a file in one) defaults to the run's data, seed and validation split.

    \b
    Examples:
      zoo evaluate runs/demo
      zoo evaluate runs/demo --split val --out runs/demo/eval
      zoo evaluate runs/demo/model.int8.onnx --data builtin:digits --json
    """
    import json

    _start_backend_for(source)
    from convert.evaluation import evaluate

    result = evaluate(
        source, data, split=split, batch_size=batch_size, out=out, safe_mode=not unsafe_load
    )
    click.echo(json.dumps(result.to_dict(), indent=2) if as_json else result.format_table())
    if out and not as_json:
        click.echo(f"wrote {result.files['metrics']} and {result.files['confusion']}", err=True)


evaluate_command.starts_backend = True  # type: ignore[attr-defined]


@click.command("predict")
@_source
@click.argument("inputs", nargs=-1, required=True)
@click.option(
    "--top-k", type=click.IntRange(1), default=5, show_default=True,
    help="Classes shown per input.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one entry per input.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: input,rank,class,probability.")
@_batch_size
@_unsafe
def predict_command(
    source: str,
    inputs: tuple[str, ...],
    top_k: int,
    as_json: bool,
    as_csv: bool,
    batch_size: int,
    unsafe_load: bool,
) -> None:
    """The top-k classes of each of INPUTS, with probabilities, by SOURCE.

    INPUTS are image files, folders (searched recursively), globs, or .npz files whose `x` is a
    batch (sequence models take .npz). Class names come from the model file's metadata
    (written by `zoo convert`) or its run directory.

    \b
    Examples:
      zoo predict runs/photos cat.jpg dog.png
      zoo predict runs/photos/model.onnx "photos/**/*.jpg" --top-k 3 --csv
      zoo predict runs/seq/model.onnx series.npz --json
    """
    if as_json and as_csv:
        raise click.UsageError("Use either --json or --csv, not both.")
    _start_backend_for(source)
    from convert.prediction import predict

    result = predict(
        source, inputs, top_k_classes=top_k, batch_size=batch_size, safe_mode=not unsafe_load
    )
    if result.note:
        click.echo(f"Note: {result.note}", err=True)
    if as_json:
        click.echo(result.to_json())
    elif as_csv:
        click.echo(result.to_csv(), nl=False)
    else:
        click.echo(result.format_table())


predict_command.starts_backend = True  # type: ignore[attr-defined]
