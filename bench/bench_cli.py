"""Start-up time of the `zoo` command: time to first output and to exit, hyperfine-style.

Each command runs as a fresh subprocess (`python -m zoo ...`, the console script's code path),
`--runs` times, interleaved across commands (and across checkouts with `--before`), so that the
load of a shared machine falls on every row alike. Reported: median [min-max] seconds.

`--before DIR` also times another checkout of the packages (e.g. the commit before a change:
`git archive COMMIT zoo finetune convert | tar -x -C DIR`), put first on PYTHONPATH.

Usage:
    .venv/bin/python bench/bench_cli.py --runs 7 [--before /tmp/kz_before]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import _common

COMMANDS = {
    "zoo --help": ["--help"],
    "zoo list": ["list"],
    "zoo finetune --epochs -1": ["finetune", "--epochs", "-1"],
}


def time_once(args: list[str], pythonpath: str | None) -> tuple[float, float]:
    """(seconds to the first byte of output, seconds to exit) of `python -m zoo ARGS`."""
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "zoo", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        cwd="/",  # no checkout on the path but the one asked for
    )
    process.stdout.read(1)  # blocks until the command prints anything
    first = time.perf_counter() - started
    process.stdout.read()
    process.wait()
    return first, time.perf_counter() - started


def measure(checkouts: dict[str, str | None], runs: int) -> dict[str, dict[str, list[float]]]:
    """{checkout: {command: [first-output seconds...], command + ' (exit)': [...]}}."""
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in checkouts}
    for _ in range(runs):
        for label, args in COMMANDS.items():
            for name, pythonpath in checkouts.items():
                first, total = time_once(args, pythonpath)
                samples[name].setdefault(label, []).append(first)
                samples[name].setdefault(label + " (exit)", []).append(total)
    return samples


def render_table(stats: dict[str, dict[str, dict[str, float]]]) -> str:
    """Markdown: per command, first output and exit, median [min-max] s, per checkout."""
    headers = ["command"]
    for name in stats:
        headers += [f"first output, s ({name})", f"exit, s ({name})"]
    rows = []
    for label in COMMANDS:
        row = [f"`{label}`"]
        for per in stats.values():
            row += [_common.fmt_range(per[label]), _common.fmt_range(per[label + " (exit)"])]
        rows.append(row)
    return _common.table(headers, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per command and checkout")
    parser.add_argument("--before", metavar="DIR", help="another checkout to time side by side")
    args = parser.parse_args()
    checkouts: dict[str, str | None] = {"now": None}
    if args.before:
        checkouts = {"before": str(Path(args.before).resolve()), "now": None}
    samples = measure(checkouts, args.runs)
    stats = {
        name: {label: _common.spread(values) for label, values in per.items()}
        for name, per in samples.items()
    }
    print(render_table(stats))
    path = _common.write_json("cli", {"runs": args.runs, "checkouts": checkouts, "stats": stats})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
