"""Transfer between series with few labels: `--from` a source run against training from scratch.

As in Ismail Fawaz et al. 2018 ("Transfer learning for time series classification"): an `fcn`
trained on a whole source set starts a run on a target set with only a few labelled series per
class (`?per_class=K`, the archive's full test split scoring), against the same run from random
init; both whole-network, same epochs, learning rate, cosine schedule and batch (the registry's
recommended recipe, passed explicitly: the Python API does not fill it in). Several seeds: each
seed draws other training series and another head initialisation.

    .venv/bin/python bench/bench_transfer.py                       # gunpoint -> arrow_head, K=4
    .venv/bin/python bench/bench_transfer.py --source italy_power_demand --target gunpoint --k 3

Rows go to bench/results/transfer.jsonl as they finish, then the table prints.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).with_name("results") / "transfer.jsonl"


def _run(out: Path, seed: int, **options):
    import zoo
    from finetune import FinetuneConfig, run_finetune

    recommended = zoo.model_info("fcn").recommended
    cfg = FinetuneConfig(
        epochs=recommended["epochs"], batch_size=recommended["batch_size"], lr=recommended["lr"],
        fine_tune_lr=recommended["lr"], val_split=0.0, lr_schedule="cosine", seed=seed,
        out=str(out), quiet=True, **options,
    )  # fmt: skip
    return run_finetune(cfg)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default="gunpoint")
    parser.add_argument("--target", default="arrow_head")
    parser.add_argument("--k", type=int, default=4, help="labelled target series per class")
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="kerazoo-transfer-") as scratch:
        start = time.perf_counter()
        source = _run(Path(scratch) / "source", 0, model="fcn", data=f"builtin:{args.source}")
        source_acc = source.metrics["test"]["accuracy"]
        print(f"source fcn on {args.source}: test {source_acc:.4f}", flush=True)
        target = f"builtin:{args.target}?per_class={args.k}"
        for seed in seeds:
            for mode in ("scratch", "transfer"):
                options = (
                    {"model": "fcn"} if mode == "scratch"
                    else {"from_run": str(source.run_dir), "head_epochs": 0}
                )  # fmt: skip
                run = _run(Path(scratch) / f"{mode}-{seed}", seed, data=target, **options)
                row = dict(source=args.source, target=args.target, k=args.k, seed=seed,
                           mode=mode, accuracy=run.metrics["test"]["accuracy"],
                           test_examples=run.metrics["test"].get("examples"),
                           source_accuracy=source_acc)  # fmt: skip
                RESULTS.parent.mkdir(exist_ok=True)
                with RESULTS.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(row) + "\n")
                print(json.dumps(row), flush=True)
                rows.append(row)
    for mode in ("scratch", "transfer"):
        acc = [100 * r["accuracy"] for r in rows if r["mode"] == mode]
        spread = statistics.stdev(acc) if len(acc) > 1 else 0.0
        print(f"{mode:<9} {statistics.mean(acc):.1f} ± {spread:.1f}  per seed "
              f"{', '.join(f'{a:.1f}' for a in acc)}")  # fmt: skip
    print(f"whole run: {(time.perf_counter() - start) / 60:.1f} min")


if __name__ == "__main__":
    main()
