"""What `--precision auto` costs in a real run: its probe's share of the run, cold and cached.

Usage: python bench/bench_auto_precision.py [MODEL ...] [--epochs 3] [--size 32] [--old REV]

For each model: a run with an empty precision cache (the probe measures), then the same run
again (the cache answers), both `run_finetune` on builtin:digits resized to SIZE x SIZE x 3,
random init. With `--old REV` it also times the probe as it was at git revision REV
(`finetune/precision.py` there, same model, batch and builder), for a before/after.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _run(model: str, epochs: int, size: int, out: Path) -> tuple[float, dict]:
    from finetune import FinetuneConfig, run_finetune

    result = run_finetune(
        FinetuneConfig(
            model=model,
            data="builtin:digits",
            input_shape=(size, size, 3),
            weights=None,
            epochs=epochs,
            precision="auto",
            quiet=True,
            out=str(out),
        )
    )
    record = json.loads((out / "precision.json").read_text())
    return result.metrics["wall_seconds"], record


def _old_probe(rev: str, model: str, epochs: int, size: int) -> float:
    """Seconds the probe of revision `rev` spends on the same model and batch."""
    source = subprocess.run(
        ["git", "show", f"{rev}:finetune/precision.py"], capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp()) / "old_precision.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_precision", path)
    old = importlib.util.module_from_spec(spec)
    sys.modules["old_precision"] = old  # dataclasses look their module up
    spec.loader.exec_module(old)
    from finetune.config import FinetuneConfig
    from finetune.train import _Builder, _load_data

    cfg = FinetuneConfig(
        model=model, input_shape=(size, size, 3), weights=None, epochs=epochs, quiet=True
    )
    _, data = _load_data(cfg)
    builder = _Builder(cfg, data, None)
    x, y = next(iter(data.train))
    began = time.perf_counter()
    old.measure_precision(builder.build_for_timing, (x, y))
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["cnn", "vgg16_gap"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--old", metavar="REV", help="also time the probe of this git revision")
    args = parser.parse_args()
    os.environ["KERAZOO_CACHE_DIR"] = tempfile.mkdtemp()  # an empty cache: the first run measures
    root = Path(tempfile.mkdtemp())
    for model in args.models:
        cold_wall, cold = _run(model, args.epochs, args.size, root / f"{model}-cold")
        warm_wall, warm = _run(model, args.epochs, args.size, root / f"{model}-warm")
        print(
            f"{model} {args.size}x{args.size}x3, {args.epochs} epochs: "
            f"cold run {cold_wall:.1f} s, probe {cold['seconds_spent']:.1f} s "
            f"({cold['seconds_spent'] / cold_wall:.0%}; budget {cold['budget_s']:.0f} s) -> "
            f"{cold['choice']}; cached run {warm_wall:.1f} s, probe {warm['seconds_spent']:.1f} s"
        )
        print("  " + cold["reason"] + "; skipped: " + json.dumps(cold["skipped"]))
        if args.old:
            print(
                f"  probe at {args.old}: {_old_probe(args.old, model, args.epochs, args.size):.1f} s"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
