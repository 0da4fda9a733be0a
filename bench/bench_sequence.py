"""Test accuracy of the sequence classifiers on bundled UCR/UEA sets, next to published numbers,
and ONNX Runtime latency at batch 1.

Each (model, set, seed) trains from random init with the registry's recommended settings for the
convolutional models (`zoo.model_info("fcn").recommended`: Adam 1e-3 with a cosine decay, batch
16, 150 epochs, the archive's whole training split) and the same for `gru`, then scores the
archive's test split. It calls `model.fit` directly rather than `zoo finetune`: the same recipe,
without the per-epoch checkpoints and reports that would double the hour on 2 cores; like
`zoo finetune`, it then re-estimates the BatchNorm statistics on the training split
(`finetune.batchnorm`; `accuracy_as_trained` in the rows is the score before that, with Keras'
moving averages: 56% on GunPoint where the re-estimated model scores ~100%).
Scored at the last epoch (the cosine rate ends near zero); `zoo finetune` keeps its best epoch.
JapaneseVowels (variable length, zero-padded) runs every model with `masking=True`.

    .venv/bin/python bench/bench_sequence.py --quick          # one seed (about 20-40 min)
    .venv/bin/python bench/bench_sequence.py                  # three seeds
    .venv/bin/python bench/bench_sequence.py --models fcn --sets gunpoint --epochs 50

Rows go to bench/results/sequence.jsonl as they finish (a rerun appends), then the table prints.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = ("fcn", "resnet1d", "inception_time", "gru")
SETS = ("gunpoint", "italy_power_demand", "japanese_vowels", "arrow_head")
# Published test accuracy (%), means over runs of the authors' code. FCN and ResNet: Ismail
# Fawaz et al. 2019 (DMKD), hfawaz/dl-4-tsc results/results-ucr-128.csv (5 runs, UCR 2018) and
# results/results-mts.csv (10 runs, JapaneseVowels). inception_time (one network, not the
# ensemble): hfawaz/InceptionTime results-inception-128.csv (5 runs); no JapaneseVowels there.
PUBLISHED = {
    "fcn": {"gunpoint": 100.0, "italy_power_demand": 96.3, "japanese_vowels": 99.3, "arrow_head": 84.3},
    "resnet1d": {"gunpoint": 99.1, "italy_power_demand": 96.2, "japanese_vowels": 99.2, "arrow_head": 83.8},
    "inception_time": {"gunpoint": 100.0, "italy_power_demand": 96.4, "arrow_head": 84.7},
}  # fmt: skip
RESULTS = Path(__file__).with_name("results") / "sequence.jsonl"


def _arrays(name: str, split: str):
    from zoo.data import load_arrays

    return load_arrays(
        f"builtin:{name}", task="sequence", input_shape=None, split=split, val_split=0
    )


def train_and_score(model_name: str, set_name: str, seed: int, epochs: int, batch: int, lr: float):
    """One run: (test accuracy, as trained, seconds, the trained model)."""
    import keras
    import tensorflow as tf

    import zoo
    from finetune.batchnorm import reestimate_batchnorm
    from zoo.data import builtin_info

    keras.utils.set_random_seed(seed)
    train, test = _arrays(set_name, "train"), _arrays(set_name, "test")
    classes = len(train.class_names)
    variable = builtin_info(set_name).item_shape[0] is None
    model = zoo.create_model(
        model_name, input_shape=(None, train.x.shape[-1]), num_classes=classes, masking=variable
    )
    steps = -(-len(train) // batch) * epochs
    schedule = keras.optimizers.schedules.CosineDecay(lr, decay_steps=steps)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy")
    start = time.perf_counter()
    model.fit(train.x, train.y, batch_size=batch, epochs=epochs, shuffle=True, verbose=0)
    seconds = time.perf_counter() - start
    as_trained = _accuracy(model, test)
    reestimate_batchnorm(model, tf.data.Dataset.from_tensor_slices(train.x).batch(batch))
    return _accuracy(model, test), as_trained, seconds, model


def _accuracy(model, split) -> float:
    import numpy as np

    predicted = np.argmax(model.predict(split.x, batch_size=256, verbose=0), axis=-1)
    return float(np.mean(predicted == split.y))


def onnx_latency_ms(model, length: int, channels: int, runs: int = 50) -> float:
    """Median ONNX Runtime latency (ms) at batch 1 and the set's length, after warm-up."""
    import tempfile

    import numpy as np
    import onnxruntime as ort

    from convert.onnx import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = export_onnx(model, Path(tmp) / "model.onnx")
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(1, length, channels)).astype("float32")
    name = session.get_inputs()[0].name
    for _ in range(5):
        session.run(None, {name: x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _record(row: dict) -> None:
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")
    print(json.dumps(row), flush=True)


def _done(epochs: int) -> dict[tuple, dict]:
    """Rows already in the results file at these epochs: a rerun resumes instead of redoing them."""
    if not RESULTS.is_file():
        return {}
    rows = [json.loads(line) for line in RESULTS.read_text().splitlines() if line.strip()]
    return {(r["model"], r["set"], r["seed"]): r for r in rows if r["epochs"] == epochs}


def run(models, sets, seeds, epochs, batch, lr, tag: str) -> list[dict]:
    """Model by model (fcn first: the published comparison), each on every set and seed."""
    rows, done = [], _done(epochs)
    for model_name in models:
        for set_name in sets:
            longest = max(len(s) for s in _arrays(set_name, "test").x)
            for seed in seeds:
                if (model_name, set_name, seed) in done:
                    rows.append(done[(model_name, set_name, seed)])
                    continue
                accuracy, as_trained, seconds, model = train_and_score(
                    model_name, set_name, seed, epochs, batch, lr
                )
                row = dict(tag=tag, model=model_name, set=set_name, seed=seed, epochs=epochs,
                           accuracy=accuracy, accuracy_as_trained=as_trained,
                           train_seconds=round(seconds, 1))  # fmt: skip
                if seed == seeds[-1]:
                    channels = int(model.input_shape[-1])
                    row["onnx_ms_batch1"] = round(onnx_latency_ms(model, longest, channels), 3)
                    row["length"] = longest
                _record(row)
                rows.append(row)
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: mean ± std over seeds next to the published figure, and the latency."""
    lines = [
        "| model | set | test accuracy % (mean ± std over seeds) | published % | ORT batch 1 ms (length) |",
        "|---|---|---|---|---|",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["model"], row["set"]), []).append(row)
    for (model, data), group in groups.items():
        acc = [100 * r["accuracy"] for r in group]
        spread = f"± {statistics.stdev(acc):.1f}" if len(acc) > 1 else "(one seed)"
        published = PUBLISHED.get(model, {}).get(data)
        latency = next((r for r in group if "onnx_ms_batch1" in r), None)
        ms = "-" if latency is None else f"{latency['onnx_ms_batch1']:.2f} ({latency['length']})"
        lines.append(
            f"| {model} | {data} | {statistics.mean(acc):.1f} {spread} | "
            f"{'-' if published is None else f'{published:.1f}'} | "
            f"{ms} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one seed instead of three")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--epochs", type=int, help="default: the registry's recommended (fcn)")
    parser.add_argument("--table", action="store_true", help="print the recorded rows' table only")
    args = parser.parse_args()
    import zoo

    recommended = zoo.model_info("fcn").recommended
    epochs = args.epochs or recommended["epochs"]
    seeds = [0] if args.quick else [0, 1, 2]
    if args.table:
        print(table(list(_done(epochs).values())))
        return
    start = time.perf_counter()
    tag = time.strftime("%Y-%m-%dT%H:%M:%S")
    rows = run(args.models.split(","), args.sets.split(","), seeds, epochs,
               recommended["batch_size"], recommended["lr"], tag)  # fmt: skip
    print(table(rows))
    print(
        f"whole run: {(time.perf_counter() - start) / 60:.1f} min, {epochs} epochs, seeds {seeds}"
    )


if __name__ == "__main__":
    main()
