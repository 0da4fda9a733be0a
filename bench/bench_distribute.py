"""Training steps/s of a zoo model under each tf.distribute set-up, with one and two workers.

Usage: python bench/bench_distribute.py [--model cnn] [--batch-size 64] [--steps 30]
           [--repeats 1] [--configs one,mirrored2,worker1,worker2]
           [--out bench/results/distribute.json]

Each configuration runs in fresh processes (devices and collectives are fixed when TensorFlow
starts): `one` (one device), `mirrored2` (MirroredStrategy over 2 logical CPU devices),
`worker1` / `worker2` (MultiWorkerMirroredStrategy, 1 or 2 worker processes on 127.0.0.1).
A step is one global batch (--batch-size) over all replicas; the model trains on random inputs
after `--warmup` untimed steps; with `--repeats N` the configurations run N times, interleaved,
and the median is reported (all values are kept in the JSON). On one machine every configuration shares the same CPU cores,
so more replicas cannot be faster here; this measures the distribution overhead, not scaling.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONFIGS = {
    "one": {"strategy": "one", "workers": 1, "cpu_devices": 0},
    "mirrored2": {"strategy": "mirrored", "workers": 1, "cpu_devices": 2},
    "worker1": {"strategy": "multiworker", "workers": 1, "cpu_devices": 0},
    "worker2": {"strategy": "multiworker", "workers": 2, "cpu_devices": 0},
}


def _worker(args: argparse.Namespace) -> None:
    """One process of a configuration: time `steps` training steps, print a JSON line."""
    from finetune.distribute import create_distribution, prepare_model, with_shard_policy

    dist = create_distribution(
        args.strategy, cpu_devices=args.cpu_devices, global_batch=args.batch_size
    )
    import keras
    import numpy as np
    import tensorflow as tf

    import zoo
    from finetune.model import compile_model

    keras.utils.set_random_seed(0)
    info = zoo.model_info(args.model)
    shape = tuple(20 if dim is None else dim for dim in info.input_shape)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(args.batch_size * 8, *shape)).astype("float32")
    y = rng.integers(0, max(info.num_classes, 2), size=len(x)).astype("int32")
    if info.num_classes == 1:
        y = (y % 2).reshape(-1, 1).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(args.batch_size)
    dataset = with_shard_policy(dataset, "DATA" if dist.multi_worker else None)
    with dist.scope():
        model = prepare_model(dist, zoo.create_model(args.model, weights=None))
        compile_model(model, 1e-3)
        model.fit(dataset, steps_per_epoch=args.warmup, epochs=1, verbose=0)  # trace, warm up
        begin = time.perf_counter()
        model.fit(dataset, steps_per_epoch=args.steps, epochs=1, verbose=0)
        seconds = time.perf_counter() - begin
    print(
        json.dumps(
            {
                "replicas": dist.replicas,
                "per_replica_batch": dist.per_replica_batch,
                "steps_per_s": args.steps / seconds,
                "examples_per_s": args.steps * args.batch_size / seconds,
                "is_chief": dist.is_chief,
            }
        ),
        flush=True,
    )


def _measure(name: str, args: argparse.Namespace) -> dict:
    config = CONFIGS[name]
    command = [
        sys.executable,
        __file__,
        "--worker",
        "--model",
        args.model,
        "--batch-size",
        str(args.batch_size),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--strategy",
        config["strategy"],
        "--cpu-devices",
        str(config["cpu_devices"]),
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    envs = [env]
    from finetune.distribute import loopback_tf_configs

    if config["strategy"] == "multiworker":
        envs = [
            {**env, "TF_CONFIG": tf_config} for tf_config in loopback_tf_configs(config["workers"])
        ]
    processes = [
        subprocess.Popen(command, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for e in envs
    ]
    try:
        outputs = [p.communicate(timeout=args.timeout) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    for process, (_, err) in zip(processes, outputs, strict=True):
        if process.returncode:
            raise SystemExit(f"{name} failed:\n{err[-3000:]}")
    rows = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    chief = next(row for row in rows if row["is_chief"])
    return {"config": name, **config, **{k: v for k, v in chief.items() if k != "is_chief"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn")
    parser.add_argument("--batch-size", type=int, default=64, help="global batch")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "distribute.json"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--strategy", default="one", help=argparse.SUPPRESS)
    parser.add_argument("--cpu-devices", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args)
        return

    import keras
    import tensorflow as tf

    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"--configs should be among {', '.join(CONFIGS)}. Received: {unknown}")
    runs = {name: [] for name in names}
    for _ in range(max(args.repeats, 1)):  # interleaved, so load changes hit every config
        for name in names:
            runs[name].append(_measure(name, args))
    results = []
    for name in names:
        values = sorted(run["steps_per_s"] for run in runs[name])
        median = statistics.median(values)
        results.append(
            {
                **runs[name][0],
                "steps_per_s": median,
                "examples_per_s": median * args.batch_size,
                "steps_per_s_runs": [run["steps_per_s"] for run in runs[name]],
            }
        )
    print(
        f"{args.model}, global batch {args.batch_size}, {args.steps} timed steps, "
        f"median of {max(args.repeats, 1)}, "
        f"{os.cpu_count()} CPU cores shared by every process"
    )
    print(
        f"{'config':<10} {'strategy':<12} {'workers':>7} {'replicas':>8} {'per-replica':>11} "
        f"{'steps/s':>8} {'examples/s':>10}"
    )
    for row in results:
        print(
            f"{row['config']:<10} {row['strategy']:<12} {row['workers']:>7} {row['replicas']:>8} "
            f"{row['per_replica_batch']:>11} {row['steps_per_s']:>8.2f} "
            f"{row['examples_per_s']:>10.1f}"
        )
    record = {
        "model": args.model,
        "global_batch": args.batch_size,
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": max(args.repeats, 1),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "caveat": "all processes share this machine's CPU cores: overhead, not scaling",
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
