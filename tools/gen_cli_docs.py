"""Write docs/CLI.md from the click commands themselves, so the reference always matches --help.

Usage:
    python tools/gen_cli_docs.py            # rewrite docs/CLI.md
    python tools/gen_cli_docs.py --check    # exit 1 if docs/CLI.md is stale (run by the tests)
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from zoo.cli import main

DOC_PATH = Path(__file__).resolve().parent.parent / "docs" / "CLI.md"
HEADER = """# CLI reference

Generated from the commands' own `--help` by `python tools/gen_cli_docs.py`; a test fails when
this file and `--help` disagree. Every command exits 0 on success, 1 with a one-line `Error: ...`
for bad input (add `zoo --debug ...` for the traceback) and 2 for misuse of the command line.
"""


def _help_text(command: click.Command, name: str, parent: click.Context) -> str:
    context = click.Context(
        command, info_name=name, parent=parent, terminal_width=100, **command.context_settings
    )
    return command.get_help(context)


def render() -> str:
    root = click.Context(main, info_name="zoo", terminal_width=100, **main.context_settings)
    sections = [HEADER, "## zoo\n", "```text", main.get_help(root), "```\n"]
    for name in main.list_commands(root):
        command = main.get_command(root, name)
        sections += [f"## zoo {name}\n", "```text", _help_text(command, name, root), "```\n"]
    return "\n".join(sections)


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        if not DOC_PATH.exists() or DOC_PATH.read_text() != text:
            sys.exit("docs/CLI.md is stale: run python tools/gen_cli_docs.py")
    else:
        DOC_PATH.write_text(text)
