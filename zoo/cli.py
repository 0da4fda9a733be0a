"""The `zoo` command: a thin shell over the Python API.

`zoo` itself knows only `list` and `info`. The `finetune`, `convert` and `bench` commands live in
their own packages, which depend on `zoo` (never the reverse); they are found through the
`kerazoo.commands` entry points and imported only when invoked, so `zoo --help` stays instant.

Keras (and so TensorFlow) is imported only by a command that needs it, after its arguments are
checked: `zoo list`, `zoo info --json`, `--help` and argument errors never pay for it. A command
that starts it itself (after its own checks) sets `command.starts_backend = True`; the group
starts it, quietly, for any other entry-point command once its arguments are parsed.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import sys
import traceback
import warnings
from importlib.metadata import entry_points
from typing import Any

import click

ENTRY_POINT_GROUP = "kerazoo.commands"
# TensorFlow's C++ logging would bury the CLI's own output; users can still override it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _unavailable_command(name: str, error: ImportError) -> click.Command:
    """A stand-in for a command whose package failed to import, so `--help` still works."""

    def fail() -> None:
        raise click.ClickException(
            f"The `{name}` command could not be loaded ({error}). "
            f"Reinstall kerazoo: pip install -c constraints.txt -e '.[test]'"
        )

    return click.Command(name, callback=fail, help=f"(unavailable: {error})")


# What to do about an OSError that reaches the CLI, by errno (the library did not explain it).
_OS_ERROR_HINTS = {
    errno.ENOSPC: "free some disk space or choose another output path",
    errno.EACCES: "you cannot write (or read) there; choose another output path",
    errno.EPERM: "you cannot write (or read) there; choose another output path",
    errno.EROFS: "the file system is read-only; choose another output path",
    errno.ENOTDIR: "a parent of the path is a file, not a folder; choose another output path",
    errno.EEXIST: "a file is in the way of a folder to create; choose another output path",
    errno.EISDIR: "the path is a folder; give a file path",
    errno.ENOENT: "check the path",
}


def error_line(error: BaseException) -> str:
    """The one line the CLI prints for a library error (`Error: <line>`).

    An OSError that names a file (`[Errno 28] No space left on device: 'x.onnx'`) becomes
    `No space left on device: 'x.onnx' (free some disk space or ...)`; others keep their first line.
    """
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        hint = _OS_ERROR_HINTS.get(error.errno, "check the path and try again")
        return f"{error.strerror}: {str(error.filename)!r} ({hint})."
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    # The CLI's users need the message, not the library line that raised it.
    lines = str(message).strip().splitlines()
    return f"Warning: {lines[0] if lines else category.__name__}\n"


@contextlib.contextmanager
def _cli_warnings():
    """Show warnings as one `Warning: ...` line each while a command runs."""
    original = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:
        yield
    finally:
        warnings.formatwarning = original


class ZooGroup(click.Group):
    """A click group that adds the entry-point commands lazily and turns errors into one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_entry_points()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is not None:
            return command
        entry_point = _entry_points().get(name)
        if entry_point is None:
            return None
        try:
            return _with_backend(entry_point.load())
        except ImportError as error:
            return _unavailable_command(name, error)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with _cli_warnings():
                return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (ValueError, OSError, RuntimeError, KeyError) as error:
            if ctx.obj and ctx.obj.get("debug"):
                traceback.print_exc()
            raise click.ClickException(error_line(error)) from None


@click.group(cls=ZooGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="kerazoo", prog_name="zoo")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """kerazoo: build zoo models, fine-tune them, convert them to fast verified engines.

    \b
    Examples:
      zoo list "vgg16*"
      zoo info lstm --json
      zoo finetune --out runs/demo
      zoo convert runs/demo --to onnx --precision int8
    """
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _with_backend(command: click.Command) -> click.Command:
    """`command`, starting the backend after its arguments are parsed (unless it does so itself).

    Click parses (and refuses) arguments in `make_context`, before `invoke`: wrapping `invoke`
    keeps usage errors and `--help` free of the Keras import.
    """
    if getattr(command, "starts_backend", False) or getattr(command, "_zoo_wrapped", False):
        return command
    invoke = command.invoke

    def invoke_with_backend(ctx: click.Context) -> Any:
        start_backend()
        return invoke(ctx)

    command.invoke = invoke_with_backend  # type: ignore[method-assign]
    command._zoo_wrapped = True  # type: ignore[attr-defined]
    return command


def start_backend() -> None:
    """Import Keras (and so its backend) with the process's native stderr silenced, once.

    TensorFlow's C++ runtime prints start-up lines (oneDNN, CUDA probing) straight to file
    descriptor 2 before Python logging exists; they would bury a command's own output. Python
    exceptions still surface: they are raised after stderr is restored. `zoo --debug` keeps them.
    A command calls it once its own argument checks pass, so a refused argument costs no import.

    Example:
        >>> start_backend()  # then `import keras` is free
    """
    if "keras" in sys.modules:
        return
    root = click.get_current_context(silent=True)
    if root is not None and (root.find_root().obj or {}).get("debug"):
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            try:
                # Import only: running an op would start the devices, and `--cpu-devices` or a
                # multi-worker strategy must still be able to configure them afterwards.
                import keras  # noqa: F401
            finally:
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def _format_shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("None" if dim is None else str(dim) for dim in shape) + ")"


@main.command("list")
@click.argument("pattern", default="*", metavar="[PATTERN]")
@click.option("--task", type=click.Choice(["image", "sequence"]), help="Only models of this task.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_command(pattern: str, task: str | None, as_json: bool) -> None:
    """List registered models matching a shell-style PATTERN (default: all).

    \b
    Examples:
      zoo list
      zoo list "*rnn*" --json
    """
    import zoo

    infos = [zoo.model_info(name) for name in zoo.list_models(pattern, task=task)]
    if not infos:
        raise click.ClickException(
            f"No model matches {pattern!r}. Run `zoo list` to see every model."
        )
    if as_json:
        click.echo(json.dumps([info.to_dict() for info in infos], indent=2))
        return
    rows = [
        (
            info.name,
            info.task,
            _format_shape(info.input_shape),
            f"{info.params:,}",
            info.description,
        )
        for info in infos
    ]
    header = ("name", "task", "input", "params", "description")
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(4)]
    for row in [header, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row[:4], widths, strict=True)]
        cells[3] = str(row[3]).rjust(widths[3])
        click.echo("  ".join([*cells, row[4]]).rstrip())


@main.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the model info as JSON.")
def info_command(name: str, as_json: bool) -> None:
    """Show a model's defaults (input, classes, weights), options and Keras summary.

    Loads no weights: the summary is of a random-init build (nothing is downloaded).

    \b
    Example:
      zoo info vgg16_flatten
    """
    import zoo

    info = zoo.model_info(name)  # an unknown name is refused here, before Keras is imported
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2))
        return
    start_backend()
    for key, value in info.to_dict().items():
        if key != "options":
            click.echo(f"{key:>15}: {value}")
    click.echo(f"{'options':>15}:")
    for option, default in info.options.items():
        click.echo(f"{'':>17}{option} = {default!r}")
    # The summary of the architecture; weights do not change it, so none are loaded (offline-safe).
    zoo.create_model(name, weights=None).summary(print_fn=lambda line, **_: click.echo(line))
