"""Toolkit overhead: `run_finetune` steady-state epochs against a hand-written `model.fit`.

Same zoo model, same data (`load_data`), same batch size, epochs, seed and float32, in one
process; the arms alternate (ABC, BCA, CAB, ...) for several repetitions:

- toolkit: `run_finetune(FinetuneConfig(...))`, which calls `fit` once per epoch (with
  validation) and then writes the epoch's checkpoint (and `model.keras` when it improved).
- fit(tf.data): one `model.fit(data.train, validation_data=data.val, epochs=N)`.
- fit(numpy): one `model.fit(x, y, validation_data=(xv, yv), epochs=N)` on `data.arrays()`.

An epoch's time is the wall time from the end of the previous epoch to the end of this one
(fit, validation, and in the toolkit the per-epoch `fit` set-up and the checkpoint), so the
first epoch (tracing) is left out. The toolkit's epochs are timed by wrapping `EpochLoop`'s
methods at run time (nothing is edited) and split into: inside fit (epoch begin to end, as
Keras sees it), fit set-up/tear-down, and checkpointing.

Usage: python bench/bench_overhead.py [--quick] [--model cnn] [--data builtin:digits]
"""

from __future__ import annotations

import argparse
import gc
import math
import tempfile
import time
import warnings
from pathlib import Path

import _common

ARMS = ("toolkit", "fit_tfdata", "fit_numpy")
LABELS = {"toolkit": "run_finetune", "fit_tfdata": "fit(tf.data)", "fit_numpy": "fit(numpy)"}


def _timer_callback(marks: dict):
    """Epoch begin/end times from inside `fit`; no batch hooks, so async dispatch is kept."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            marks.setdefault("begin", []).append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            marks.setdefault("end", []).append(time.perf_counter())

    return EpochTimer()


class _LoopProbe:
    """Wraps EpochLoop at run time: adds the epoch timer and times fit and checkpoint calls."""

    def __init__(self):
        from finetune import loop

        self.loop_class = loop.EpochLoop
        self.marks: dict[str, list[float]] = {}
        self.saved = {}

    def __enter__(self):
        cls, marks = self.loop_class, self.marks
        for attr in ("__init__", "_fit_epoch", "_after_epoch", "callbacks"):
            if attr != "callbacks" and not hasattr(cls, attr):
                raise RuntimeError(f"finetune.loop.EpochLoop has no {attr}; update bench_overhead")
        self.saved = {
            name: getattr(cls, name) for name in ("__init__", "_fit_epoch", "_after_epoch")
        }
        init, fit_epoch, after_epoch = (
            self.saved[n] for n in ("__init__", "_fit_epoch", "_after_epoch")
        )

        def timed(name, method):
            def wrapper(loop, *args, **kwargs):
                marks.setdefault(f"{name}_begin", []).append(time.perf_counter())
                try:
                    return method(loop, *args, **kwargs)
                finally:
                    marks.setdefault(f"{name}_end", []).append(time.perf_counter())

            return wrapper

        def patched_init(loop, *args, **kwargs):
            init(loop, *args, **kwargs)
            loop.callbacks.append(_timer_callback(marks))

        cls.__init__ = patched_init
        cls._fit_epoch = timed("fit", fit_epoch)
        cls._after_epoch = timed("after", after_epoch)
        return self

    def __exit__(self, *exc):
        for name, method in self.saved.items():
            setattr(self.loop_class, name, method)


def _steady(ends: list[float]) -> list[float]:
    """Epoch times from consecutive epoch ends: epoch 1 (tracing) has no predecessor."""
    return [b - a for a, b in zip(ends, ends[1:], strict=False)]


def run_toolkit(args, out: Path) -> dict:
    from finetune import FinetuneConfig, run_finetune

    cfg = FinetuneConfig(
        model=args.model,
        weights="none",  # as the plain Keras run: random init, offline
        data=args.data,
        epochs=args.epochs,
        batch_size=args.batch_size,
        precision="float32",
        seed=0,
        out=str(out),
        overwrite=True,
        quiet=True,
    )
    begin = time.perf_counter()
    with _LoopProbe() as probe:
        run_finetune(cfg)
    total = time.perf_counter() - begin
    m = probe.marks
    epochs = _steady(m["after_end"])
    inside = [e - b for b, e in zip(m["begin"], m["end"], strict=True)][1:]
    fit_calls = [e - b for b, e in zip(m["fit_begin"], m["fit_end"], strict=True)][1:]
    after = [e - b for b, e in zip(m["after_begin"], m["after_end"], strict=True)][1:]
    return {
        "epoch_seconds": epochs,
        "inside_fit_seconds": inside,
        "fit_setup_teardown_seconds": [f - i for f, i in zip(fit_calls, inside, strict=True)],
        "checkpoint_seconds": after,
        "total_seconds": total,
    }


def run_fit(args, data, arrays) -> dict:
    import keras

    import zoo

    keras.utils.set_random_seed(0)
    model = zoo.create_model(
        args.model,
        input_shape=tuple(data.input_shape),
        num_classes=data.num_classes,
        weights=None,
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    marks: dict[str, list[float]] = {}
    begin = time.perf_counter()
    if arrays is None:
        model.fit(
            data.train,
            validation_data=data.val,
            epochs=args.epochs,
            verbose=0,
            callbacks=[_timer_callback(marks)],
        )
    else:
        (x, y), validation = arrays
        model.fit(
            x,
            y,
            batch_size=args.batch_size,
            validation_data=validation,
            epochs=args.epochs,
            shuffle=True,
            verbose=0,
            callbacks=[_timer_callback(marks)],
        )
    total = time.perf_counter() - begin
    inside = [e - b for b, e in zip(marks["begin"], marks["end"], strict=True)][1:]
    return {
        "epoch_seconds": _steady(marks["end"]),
        "inside_fit_seconds": inside,
        "total_seconds": total,
    }


def _tiled_digits(path: Path, tile: int) -> str:
    """The digits repeated `tile` times with a little pixel noise: longer epochs, same task."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    rng = np.random.default_rng(0)
    x = np.concatenate([digits.images * (255.0 / 16.0)] * tile)
    x = np.clip(x + rng.normal(0.0, 8.0, size=x.shape), 0, 255).astype("float32")[..., None]
    np.savez(path, x=x, y=np.concatenate([digits.target] * tile))
    return str(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--data", default="builtin:digits")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=5, help="epochs per run (first excluded)")
    parser.add_argument("--reps", type=int, default=9, help="repetitions of each arm")
    parser.add_argument(
        "--tile",
        type=int,
        default=1,
        help="train on the digits repeated N times (an npz; longer epochs) instead of --data",
    )
    parser.add_argument("--quick", action="store_true", help="6 repetitions of 4 epochs")
    args = parser.parse_args()
    if args.quick:
        args.reps, args.epochs = 6, 4

    import keras

    import zoo
    from finetune.data import load_data

    # Keras warns that shuffle=True (fit's default) is ignored for a tf.data.Dataset: expected.
    warnings.filterwarnings("ignore", message=".*shuffle=True.*tf.data.Dataset")
    with tempfile.TemporaryDirectory(prefix="bench_overhead_") as tmp:
        label, name = args.data, "overhead"
        if args.tile > 1:
            args.data = _tiled_digits(Path(tmp) / "digits_tiled.npz", args.tile)
            label, name = f"builtin digits x{args.tile} (npz)", f"overhead_tile{args.tile}"
        info = zoo.model_info(args.model)
        data = load_data(
            args.data,
            task=info.task,
            input_shape=info.input_shape,
            batch_size=args.batch_size,
            val_split=0.2,
            seed=0,
        )
        arrays = (data.arrays("train"), data.arrays("val") if data.val is not None else None)
        steps = math.ceil(data.num_train / args.batch_size)
        runs: dict[str, list[dict]] = {arm: [] for arm in ARMS}
        for rep in range(args.reps):
            order = ARMS[rep % 3 :] + ARMS[: rep % 3]
            for arm in order:
                keras.backend.clear_session()
                gc.collect()
                if arm == "toolkit":
                    result = run_toolkit(args, Path(tmp) / f"run{rep}")
                else:
                    result = run_fit(args, data, arrays if arm == "fit_numpy" else None)
                result["rep"], result["position"] = rep, order.index(arm)
                runs[arm].append(result)
                median = _common.spread(result["epoch_seconds"])["median"]
                print(f"rep {rep + 1}/{args.reps} {LABELS[arm]:<13} median epoch {median:.3f}s")

    def per_rep(arm: str, key: str = "epoch_seconds") -> list[float]:
        return [_common.spread(r[key])["median"] for r in runs[arm]]

    summary = {}
    for arm in ARMS:
        epoch = per_rep(arm)
        summary[arm] = {
            "epoch_seconds": _common.spread(epoch),
            "steps_per_second": _common.spread([steps / t for t in epoch]),
            "total_seconds": _common.spread([r["total_seconds"] for r in runs[arm]]),
        }
    ratios = {}
    for base in ("fit_tfdata", "fit_numpy"):
        # Paired per repetition: toolkit steps/s over the hand-written arm's, same rep.
        ratios[base] = _common.spread(
            [b / t for t, b in zip(per_rep("toolkit"), per_rep(base), strict=True)]
        )
    breakdown = {
        key: _common.spread(per_rep("toolkit", key))
        for key in ("inside_fit_seconds", "fit_setup_teardown_seconds", "checkpoint_seconds")
    }
    for arm in ("fit_tfdata", "fit_numpy"):
        breakdown[f"{arm}_inside_fit_seconds"] = _common.spread(per_rep(arm, "inside_fit_seconds"))

    rows = []
    for arm in ARMS:
        s = summary[arm]
        ratio = "1.00 (goal >= 0.95)" if arm == "toolkit" else ""
        if arm != "toolkit":
            r = ratios[arm]
            ratio = f"{r['median']:.3f} [{r['min']:.3f}-{r['max']:.3f}]"
        rows.append(
            [
                LABELS[arm],
                f"{s['epoch_seconds']['median'] * 1000:.0f} "
                f"[{s['epoch_seconds']['min'] * 1000:.0f}-{s['epoch_seconds']['max'] * 1000:.0f}]",
                _common.fmt_range(s["steps_per_second"], 1),
                ratio if arm != "toolkit" else "-",
                f"{s['total_seconds']['median']:.1f}",
            ]
        )
    print(
        f"\n{args.model} on {label}: {data.num_train} train / {data.num_val} val, batch "
        f"{args.batch_size} ({steps} steps/epoch), {args.epochs} epochs (epoch 1 excluded), "
        f"{args.reps} reps alternating, float32"
    )
    print(
        _common.table(
            [
                "arm",
                "ms/epoch [min-max]",
                "steps/s [min-max]",
                "toolkit/this steps/s [min-max]",
                "run total s",
            ],
            rows,
        )
    )
    ms = {k: v["median"] * 1000 for k, v in breakdown.items()}
    print(
        f"\nrun_finetune epoch breakdown (median ms): inside fit {ms['inside_fit_seconds']:.0f} "
        f"(hand-written fit(tf.data) {ms['fit_tfdata_inside_fit_seconds']:.0f}, fit(numpy) "
        f"{ms['fit_numpy_inside_fit_seconds']:.0f}), fit set-up/tear-down "
        f"{ms['fit_setup_teardown_seconds']:.0f}, checkpoint/model save "
        f"{ms['checkpoint_seconds']:.0f}"
    )
    path = _common.write_json(
        name,
        {
            "settings": vars(args),
            "num_train": data.num_train,
            "num_val": data.num_val,
            "steps_per_epoch": steps,
            "summary": summary,
            "ratio_toolkit_over": ratios,
            "toolkit_breakdown": breakdown,
            "runs": runs,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
