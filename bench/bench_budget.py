"""Budgeted precision: `convert.budget.search` at budgets 0, 0.5 and 1 point for three models.

Models: the reference cnn (`zoo finetune`, 3 epochs on builtin:digits), a backbone head (the
test case of tests/convert/budget_case.py: the cnn's convolutions frozen at random init, only the
head trained) and the lstm (`zoo finetune --model lstm --data builtin:digits_rows`, 3 epochs).
Each search runs on a fresh copy of the run; rows go to bench/results/budget.jsonl (one per model
and budget: the chosen candidate, its drop, its speed-up over fp32 at the deciding batch, the
kept-float line and the whole table).

    python bench/bench_budget.py --to onnx --search-time 40     # rows + a summary table
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import RESULTS_DIR  # noqa: E402

BUDGETS = (0.0, 0.5, 1.0)


def _finetune(model: str, data: str, out: Path) -> Path:
    from finetune import FinetuneConfig, run_finetune

    run_finetune(FinetuneConfig(model=model, data=data, epochs=3, out=str(out), quiet=True))
    return out


def _runs(scratch: Path) -> dict[str, Path]:
    from tests.convert.budget_case import train_budget_case

    return {
        "cnn": _finetune("cnn", "builtin:digits", scratch / "cnn"),
        "cnn-random-conv-head": train_budget_case(scratch / "head"),
        "lstm": _finetune("lstm", "builtin:digits_rows", scratch / "lstm"),
    }


def _search(name: str, run: Path, budget: float, args, scratch: Path) -> dict:
    from convert.budget import search

    copy = scratch / f"{name}-{budget:g}"
    shutil.copytree(run, copy)
    started = time.monotonic()
    result = search(copy, args.to, max_accuracy_drop=budget, search_time=args.search_time)
    chosen = result.chosen
    return {
        "model": name, "to": args.to, "budget": budget, "chosen": chosen.name,
        "drop": chosen.drop, "speedup": result.speedup(chosen, result.decided_by),
        "decided_by": result.decided_by, "kept_float": result.kept_float,
        "message": result.message, "seconds": time.monotonic() - started,
        "table": result.format_table(),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--to", choices=("onnx", "openvino"), default="onnx")
    parser.add_argument("--search-time", type=float, default=40.0)
    args = parser.parse_args()
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / "budget.jsonl"
    with tempfile.TemporaryDirectory(prefix="kerazoo-bench-budget-") as folder:
        scratch = Path(folder)
        for name, run in _runs(scratch).items():
            for budget in BUDGETS:
                row = _search(name, run, budget, args, scratch)
                with out.open("a") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(f"{name:<22} {args.to:<8} budget {budget:<4g} -> {row['chosen']:<24} "
                      f"drop {row['drop']:+.2f} pt, {row['speedup']:.2f}x fp32 at batch "
                      f"{row['decided_by']} ({row['seconds']:.0f} s)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
