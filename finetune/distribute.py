"""Training on several devices and machines: the tf.distribute strategy, batch/LR scaling, sharding.

`create_distribution` turns `--strategy auto|one|mirrored|multiworker` (and `--cpu-devices N`)
into a `Distribution`: the strategy whose `scope()` the model is built, compiled and trained in,
the replica count, the global and per-replica batch and who is the chief. It must run before
TensorFlow initialises its devices (logical CPU devices and collective ops are both fixed at
start-up), so `run_finetune` calls it first, before any data is loaded.

Decisions (see docs/DISTRIBUTED.md):
- `--batch-size` is the global batch; each of R replicas gets batch/R (it must divide evenly).
- `--scale-lr linear` multiplies both learning rates by R; `none` (default) keeps them.
- Datasets shard across workers by DATA: every pipeline finetune.data builds starts from
  in-memory tensors (arrays, or the list of image paths read inside a `map`), which FILE sharding
  cannot split, so each worker takes every W-th per-replica batch of the same seeded stream.
- Only the chief writes the run directory; other workers write to a temporary directory that is
  removed at the end. All workers run the same code (collectives need every worker).

Example:
    >>> dist = create_distribution("mirrored", cpu_devices=2, global_batch=32)  # first thing
    >>> dist.replicas, dist.per_replica_batch
    (2, 16)
    >>> with dist.scope():
    ...     model = zoo.create_model("cnn")
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import types
from collections.abc import Iterator
from typing import Any

STRATEGIES = ("auto", "one", "mirrored", "multiworker")
SCALE_LR = ("none", "linear")
WORKER_DIR_PREFIX = "kerazoo-worker-"
TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'


@dataclasses.dataclass
class Distribution:
    """The resolved strategy of a run and the facts reported with it (metrics.json `distribute`)."""

    strategy: Any
    name: str  # "one", "mirrored" or "multiworker"
    requested: str
    reason: str
    replicas: int
    devices: list[str]
    workers: int = 1
    task: dict[str, Any] | None = None
    is_chief: bool = True
    global_batch: int = 32

    @property
    def per_replica_batch(self) -> int:
        return self.global_batch // self.replicas

    @property
    def multi_worker(self) -> bool:
        return self.name == "multiworker"

    def scope(self) -> Any:
        return self.strategy.scope()

    def set_global_batch(self, batch_size: int) -> None:
        """`batch_size` is the global batch: it must split evenly over the replicas."""
        if batch_size % self.replicas:
            raise ValueError(
                f"batch_size is the global batch and should divide evenly over the "
                f"{self.replicas} replicas of strategy {self.name}. Received: "
                f"batch_size={batch_size}"
            )
        self.global_batch = batch_size

    def summary(self) -> str:
        """One line for the console."""
        where = f"{self.workers} workers, " if self.multi_worker else ""
        role = ""
        if self.task is not None:
            role = f"; this is {self.task['type']} {self.task['index']}"
            role += " (chief)" if self.is_chief else ""
        return (
            f"strategy {self.name} ({self.reason}): {where}{self.replicas} replica(s) on "
            f"{', '.join(self.devices)}; global batch {self.global_batch} = {self.replicas} x "
            f"{self.per_replica_batch} per replica{role}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.name,
            "requested": self.requested,
            "reason": self.reason,
            "replicas": self.replicas,
            "workers": self.workers,
            "devices": list(self.devices),
            "task": self.task,
            "is_chief": self.is_chief,
            "global_batch": self.global_batch,
            "per_replica_batch": self.per_replica_batch,
        }


def validate_strategy(strategy: str, cpu_devices: int, scale_lr: str) -> None:
    """One-line ValueErrors for the distribution options."""
    if strategy not in STRATEGIES:
        raise ValueError(
            f"strategy should be one of {', '.join(STRATEGIES)}. Received: strategy={strategy!r}"
        )
    if not isinstance(cpu_devices, int) or isinstance(cpu_devices, bool) or cpu_devices < 0:
        raise ValueError(
            "cpu_devices should be an int >= 0 (0: leave TensorFlow's CPU devices as they are). "
            f"Received: cpu_devices={cpu_devices!r}"
        )
    if scale_lr not in SCALE_LR:
        raise ValueError(
            f"scale_lr should be one of {', '.join(SCALE_LR)}. Received: scale_lr={scale_lr!r}"
        )


def set_cpu_devices(count: int) -> None:
    """Split the host CPU into `count` logical devices (for MirroredStrategy without GPUs).

    TensorFlow fixes its devices the first time it runs an op, so this must be called first
    thing in a fresh process; afterwards it succeeds only if the devices already match.
    """
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        )
    except RuntimeError:
        have = len(tf.config.list_logical_devices("CPU"))
        if have != count:
            raise RuntimeError(
                f"cpu_devices must be set before TensorFlow initialises its devices (it already "
                f"has {have} CPU device(s)); run it in a fresh process, e.g. `zoo finetune "
                f"--cpu-devices {count}`. Received: cpu_devices={count}"
            ) from None


def loopback_tf_configs(num_workers: int) -> list[str]:
    """TF_CONFIG values for `num_workers` processes on this machine, on free loopback ports.

    For trying `--strategy multiworker` (and testing it) without a cluster: start one
    `zoo finetune` per value, each with its own TF_CONFIG.

    Example:
        >>> configs = loopback_tf_configs(2)
        >>> json.loads(configs[1])["task"]
        {'type': 'worker', 'index': 1}
    """
    import json
    import socket

    sockets = [socket.socket() for _ in range(num_workers)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        workers = [f"127.0.0.1:{sock.getsockname()[1]}" for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()
    return [
        json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        for index in range(num_workers)
    ]


def read_tf_config(text: str | None = None) -> dict[str, Any]:
    """Parse and check TF_CONFIG (the env var by default): the cluster and this process's task.

    Returns {"cluster": {type: [addresses]}, "task": {"type", "index"}, "workers", "is_chief"}.
    The chief is task "chief" if the cluster has one, else worker 0 (TensorFlow's convention).
    """
    text = os.environ.get("TF_CONFIG") if text is None else text
    if not text or not text.strip():
        raise ValueError(
            "--strategy multiworker needs the cluster in the TF_CONFIG environment variable, "
            f"e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}'. Received: TF_CONFIG unset"
        )
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(
            f"TF_CONFIG should be JSON like {TF_CONFIG_EXAMPLE} ({error.msg}). "
            f"Received: TF_CONFIG={text[:120]!r}"
        ) from None
    cluster = config.get("cluster") if isinstance(config, dict) else None
    task = config.get("task") if isinstance(config, dict) else None
    valid = (
        isinstance(cluster, dict)
        and all(isinstance(v, list) and v for v in cluster.values())
        and bool(cluster)
        and set(cluster) <= {"worker", "chief"}
        and isinstance(task, dict)
        and task.get("type") in cluster
        and isinstance(task.get("index"), int)
        and 0 <= task["index"] < len(cluster[task["type"]])
        and len(cluster.get("chief", [])) <= 1
    )
    if not valid:
        raise ValueError(
            "TF_CONFIG should name a cluster of 'worker' (and at most one 'chief') addresses "
            "and this process's task type and index within it, e.g. "
            f"{TF_CONFIG_EXAMPLE}. Received: TF_CONFIG={text[:200]!r}"
        )
    workers = sum(len(addresses) for addresses in cluster.values())
    chief = task["type"] == "chief" or ("chief" not in cluster and task["index"] == 0)
    return {
        "cluster": cluster,
        "task": {"type": task["type"], "index": task["index"]},
        "workers": workers,
        "is_chief": chief,
    }


def _device_names(strategy: Any) -> list[str]:
    """ "/job:worker/replica:0/task:1/device:CPU:0" -> "worker1/CPU:0"; local ones -> "CPU:0"."""
    names = []
    for device in strategy.extended.worker_devices:
        parts = dict(p.split(":", 1) for p in device.strip("/").split("/") if ":" in p)
        name = parts.get("device", device)
        if parts.get("job", "localhost") != "localhost":
            name = f"{parts['job']}{parts.get('task', '')}/{name}"
        names.append(name)
    return names


def create_distribution(
    strategy: str = "auto", *, cpu_devices: int = 0, global_batch: int | None = None
) -> Distribution:
    """Resolve `strategy` and create it (first thing in the process: see the module docstring).

    Args:
        strategy: "auto" (MirroredStrategy over the GPUs when there are several, else one
            device), "one", "mirrored" (the GPUs, or the logical CPU devices without GPUs) or
            "multiworker" (MultiWorkerMirroredStrategy over the TF_CONFIG cluster).
        cpu_devices: split the CPU into this many logical devices first (0: leave as is).
        global_batch: examples per step over all replicas (must divide by the replica count);
            None: set it later with `Distribution.set_global_batch`.
    """
    import tensorflow as tf

    validate_strategy(strategy, cpu_devices, "none")
    if strategy == "multiworker":
        cluster = read_tf_config()  # before touching devices: a bad TF_CONFIG changes nothing
    if cpu_devices:
        set_cpu_devices(cpu_devices)
    gpus = tf.config.list_physical_devices("GPU")
    if strategy == "multiworker":
        dist = _multi_worker(cluster, strategy)
    elif strategy == "mirrored" or (strategy == "auto" and len(gpus) > 1):
        if gpus:
            devices, reason = None, f"{len(gpus)} GPU(s)"
        else:
            devices = [f"/cpu:{i}" for i in range(max(cpu_devices, 1))]
            reason = f"no GPU: {len(devices)} logical CPU device(s)"
        if strategy == "auto":
            reason = f"auto: {reason}"
        mirrored = tf.distribute.MirroredStrategy(devices)
        dist = Distribution(
            mirrored,
            "mirrored",
            strategy,
            reason,
            mirrored.num_replicas_in_sync,
            _device_names(mirrored),
        )
    else:
        reason = "auto: at most one GPU" if strategy == "auto" else "set by the user"
        default = tf.distribute.get_strategy()  # exactly the plain, undistributed behaviour
        device = "GPU:0" if gpus else "CPU:0"
        dist = Distribution(default, "one", strategy, reason, 1, [device])
    if global_batch is not None:
        dist.set_global_batch(global_batch)
    return dist


def _multi_worker(cluster: dict[str, Any], requested: str) -> Distribution:
    import tensorflow as tf

    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    except RuntimeError as error:
        raise RuntimeError(
            "--strategy multiworker must be created before TensorFlow runs anything (collective "
            f"ops are configured at start-up); use a fresh process. Received: {error}"
        ) from None
    _patch_keras_for_multi_worker()
    return Distribution(
        strategy,
        "multiworker",
        requested,
        f"TF_CONFIG cluster of {cluster['workers']}",
        strategy.num_replicas_in_sync,
        _device_names(strategy),
        workers=cluster["workers"],
        task=cluster["task"],
        is_chief=cluster["is_chief"],
    )


# --- Keras 3 + MultiWorkerMirroredStrategy --------------------------------------------------
# Keras 3.x's TF trainer fails under MultiWorkerMirroredStrategy (keras-team/keras#20585) in two
# places: `_maybe_symbolic_build` all-reduces a whole data batch (a tuple of PerReplica values)
# just to read its shapes, and `reduce_per_replica(..., "auto")` reduces scalar logs with axis=0.
# Both are worked around here, only for multi-worker strategies; remove once Keras fixes them.


def _patch_keras_for_multi_worker() -> None:
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer

    original = getattr(trainer, "reduce_per_replica", None)
    is_multi_worker = getattr(trainer, "_collective_all_reduce_multi_worker", None)
    if original is None or is_multi_worker is None:
        raise RuntimeError(
            "--strategy multiworker relies on keras.src.backend.tensorflow.trainer internals "
            "that this Keras version lacks; use Keras 3.5-3.15. Received: keras without them"
        )
    if getattr(original, "_kerazoo_fix", False):
        return

    def reduce_per_replica(values, strategy, reduction):
        if reduction not in ("auto", "mean") or not is_multi_worker(strategy):
            return original(values, strategy, reduction)

        def reduce_one(value):
            local = _local(strategy, value)
            if getattr(local, "shape", None) is not None and local.shape.rank == 0:
                return strategy.reduce("MEAN", value, axis=None)  # a scalar log: no axis 0
            return original(value, strategy, reduction)

        return tree.map_structure(reduce_one, values)

    reduce_per_replica._kerazoo_fix = True
    trainer.reduce_per_replica = reduce_per_replica


def _local(strategy: Any, value: Any) -> Any:
    import tensorflow as tf

    if isinstance(value, tf.distribute.DistributedValues):
        return strategy.experimental_local_results(value)[0]
    return value


def prepare_model(dist: Distribution, model: Any) -> Any:
    """Fix one model instance for multi-worker training (see above); other strategies: as is."""
    if not dist.multi_worker or not hasattr(model, "_symbolic_build"):
        return model
    from keras.src import tree

    strategy = dist.strategy

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        # The shapes of this worker's first batch are all the symbolic build needs.
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(lambda v: _local(strategy, v), next(batches))
                break
        with strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = types.MethodType(maybe_symbolic_build, model)
    return model


# --- Learning rate, data sharding, agreement between workers ----------------------------


def scaled_lr(lr: float, replicas: int, rule: str) -> float:
    """`linear`: lr x replicas (Goyal et al. 2017: --lr was tuned for one device at the
    per-replica batch); `none`: lr as given.

    Example:
        >>> scaled_lr(1e-3, 4, "linear")
        0.004
    """
    validate_strategy("auto", 0, rule)
    return lr * replicas if rule == "linear" else lr


def shard_policy(dist: Distribution, spec_kind: str) -> tuple[str | None, str]:
    """The tf.data auto-shard policy for this run's datasets (None: left alone), and why."""
    if not dist.multi_worker:
        return None, "one worker: nothing to shard (the strategy splits each batch over replicas)"
    if spec_kind == "folder":
        return "DATA", (
            "image folder: finetune.data reads files inside a map over the path list, which FILE "
            "sharding cannot split; each worker keeps 1/W of every batch"
        )
    return "DATA", "in-memory arrays: each worker keeps 1/W of every batch"


def with_shard_policy(dataset: Any, policy: str | None) -> Any:
    """`dataset` with tf.data's auto-shard policy set ("DATA", "FILE", "OFF"; None: as is)."""
    if dataset is None or policy is None:
        return dataset
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = getattr(
        tf.data.experimental.AutoShardPolicy, policy
    )
    return dataset.with_options(options)


def sum_over_workers(dist: Distribution, values: list[float]) -> list[float]:
    """Each worker's `values` summed over all workers (a collective: every worker must call it).

    Example (2 workers): worker 0 passes [1, 0], worker 1 [1, 5]; both get [2.0, 5.0].
    """
    if not dist.multi_worker:
        return [float(v) for v in values]
    import tensorflow as tf

    strategy = dist.strategy
    local = tf.constant(values, tf.float32) / len(strategy.extended.worker_devices)

    @tf.function
    def all_reduce():
        return strategy.run(
            lambda: tf.distribute.get_replica_context().all_reduce("SUM", tf.identity(local))
        )

    result = strategy.experimental_local_results(all_reduce())[0]
    return [float(v) for v in result.numpy()]


def broadcast_from_chief(dist: Distribution, value: int) -> int:
    """The chief's `value` on every worker (a collective)."""
    return round(sum_over_workers(dist, [value if dist.is_chief else 0])[0])


def check_all_agree(dist: Distribution, value: float, what: str) -> None:
    """Raise on every worker (not only the odd one out) unless all workers hold `value`."""
    total, squares, count = sum_over_workers(dist, [value, value * value, 1.0])
    if abs(count * squares - total * total) > 1e-6 * max(1.0, total * total):
        raise ValueError(
            f"The workers disagree on {what} (this worker: {value:g}, mean: {total / count:g}); "
            f"every worker must see the same run directory. Received: {what}={value:g}"
        )


def check_all_ready(dist: Distribution, error: BaseException | None) -> None:
    """A barrier after set-up: if any worker failed, every worker stops instead of hanging."""
    if not dist.multi_worker:
        if error is not None:
            raise error
        return
    failed = sum_over_workers(dist, [0.0 if error is None else 1.0])[0]
    if error is not None:
        raise error
    if failed:
        raise RuntimeError(
            f"{round(failed)} other worker(s) failed to set up the run (see their output); "
            "this worker stops too."
        )


def weights_digest(model: Any) -> str:
    """SHA-256 of the model's weights (same weights on every worker -> same digest)."""
    digest = hashlib.sha256()
    for array in model.get_weights():
        digest.update(array.tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def worker_dir(dist: Distribution) -> Iterator[str | None]:
    """Where this worker writes: None (the run directory) for the chief, else a temporary
    directory that is removed when the block ends (whether it succeeds or not)."""
    if dist.is_chief:
        yield None
        return
    path = tempfile.mkdtemp(prefix=WORKER_DIR_PREFIX)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
