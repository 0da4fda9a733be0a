"""tf.distribute: MirroredStrategy on logical CPUs equals one device; two real multi-worker
processes on loopback agree; TF_CONFIG and option errors are one-line messages.

Strategies with several devices must be set up before TensorFlow starts, so those runs are
`python -m zoo finetune` subprocesses (bounded by timeouts, killed on failure).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from finetune.cli import finetune_command
from finetune.distribute import (
    Distribution,
    loopback_tf_configs,
    read_tf_config,
    scaled_lr,
    set_cpu_devices,
    shard_policy,
)

# 4 classes x 8 = 32 training examples: two global batches of 16, i.e. 8 per replica on two.
DATA = "builtin:digits?classes=0-3&per_class=8"
TIMEOUT = 150


def _args(out, *extra):
    return [
        sys.executable,
        "-m",
        "zoo",
        "finetune",
        "--model",
        "cnn",
        "--data",
        DATA,
        "--option",
        "filters=[4, 8]",
        "--option",
        "dense_units=8",
        "--input-shape",
        "12,12,1",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--lr",
        "0.01",
        "--seed",
        "1",
        "--out",
        str(out),
        *extra,
    ]


def _env(**extra):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    env.pop("TF_CONFIG", None)
    return {**env, **extra}


def _run_all(commands, logs, timeout=TIMEOUT):
    """Start every (args, env) at once; wait for all within `timeout`; kill all on failure."""
    processes = []
    try:
        for (args, env), log in zip(commands, logs, strict=True):
            with open(log, "w") as handle:
                processes.append(
                    subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT)
                )
        deadline = time.monotonic() + timeout
        for process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    outputs = [log.read_text() for log in logs]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    return outputs


def _checkpoint(run_dir):
    """Every array of the epoch-1 checkpoint (model and optimizer variables), by path."""
    arrays = {}
    with h5py.File(run_dir / "checkpoints" / "epoch-0001.weights.h5", "r") as handle:
        handle.visititems(
            lambda name, item: (
                arrays.update({name: item[()]}) if isinstance(item, h5py.Dataset) else None
            )
        )
    return arrays


@pytest.mark.slow
def test_mirrored_on_two_cpu_devices_equals_one_device(tmp_path):
    one, mirrored = tmp_path / "one", tmp_path / "mirrored"
    _run_all(
        [
            (_args(one, "--strategy", "one"), _env()),
            (_args(mirrored, "--strategy", "mirrored", "--cpu-devices", "2"), _env()),
        ],
        [tmp_path / "one.log", tmp_path / "mirrored.log"],
    )
    facts = json.loads((mirrored / "metrics.json").read_text())["distribute"]
    assert (facts["strategy"], facts["replicas"], facts["devices"]) == (
        "mirrored",
        2,
        ["CPU:0", "CPU:1"],
    )
    assert (facts["global_batch"], facts["per_replica_batch"], facts["lr"]) == (16, 8, 0.01)
    assert json.loads((one / "metrics.json").read_text())["distribute"]["replicas"] == 1

    a, b = _checkpoint(one), _checkpoint(mirrored)
    assert a.keys() == b.keys() and len(a) > 4
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-4, atol=1e-6, err_msg=key)
    kernel = next(k for k in a if "conv1" in k or "conv2d" in k)
    assert not np.allclose(a[kernel], 0)  # something was trained and compared


@pytest.mark.slow
def test_two_workers_on_loopback_train_the_same_model(tmp_path):
    out, scratch = tmp_path / "run", tmp_path / "scratch"
    scratch.mkdir()
    commands = [
        (
            _args(out, "--strategy", "multiworker", "--scale-lr", "linear"),
            _env(
                TF_CONFIG=tf_config,
                TMPDIR=str(scratch),  # where the non-chief's temporary run directory goes
            ),
        )
        for tf_config in loopback_tf_configs(2)
    ]
    outputs = _run_all(commands, [tmp_path / "w0.log", tmp_path / "w1.log"])

    digests = [re.findall(r"weights sha256 ([0-9a-f]{64})", output) for output in outputs]
    assert all(len(found) == 1 for found in digests), outputs
    assert digests[0] == digests[1]  # the same final weights on both workers
    assert "[worker 1]" in outputs[1] and "(chief)" in outputs[0]

    for name in ("model.keras", "metrics.json", "config.yaml", "history.csv"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    facts = metrics["distribute"]
    assert facts["weights_sha256"] == digests[0][0]
    assert (facts["strategy"], facts["workers"], facts["replicas"]) == ("multiworker", 2, 2)
    assert (facts["shard_policy"], facts["per_replica_batch"]) == ("DATA", 8)
    assert facts["lr"] == pytest.approx(0.02) and facts["lr_requested"] == 0.01  # linear x 2
    assert metrics["epochs"]["completed"] == 1
    assert not list(scratch.iterdir())  # the non-chief's temporary directory is gone


@pytest.mark.slow
def test_two_workers_stream_an_image_folder_through_the_python_decoder(tmp_path):
    """Folders are decoded by zoo.data inside tf.numpy_function; DATA sharding must cope."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (tmp_path / "images" / label).mkdir(parents=True)
        for number in range(12):
            pixels = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "images" / label / f"{number}.png")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    commands = []
    for tf_config in loopback_tf_configs(2):
        args = _args(tmp_path / "run", "--strategy", "multiworker")
        args[args.index("--data") + 1] = str(tmp_path / "images")
        args[args.index("--input-shape") + 1] = "12,12,3"
        commands.append((args, _env(TF_CONFIG=tf_config, TMPDIR=str(scratch))))
    outputs = _run_all(commands, [tmp_path / "w0.log", tmp_path / "w1.log"])
    digests = [re.findall(r"weights sha256 ([0-9a-f]{64})", output) for output in outputs]
    assert len(digests[0]) == 1 and digests[0] == digests[1], outputs
    facts = json.loads((tmp_path / "run" / "metrics.json").read_text())["distribute"]
    assert (facts["shard_policy"], facts["workers"]) == ("DATA", 2)


def test_tf_config_errors_are_one_line(monkeypatch, tmp_path):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    result = CliRunner().invoke(
        finetune_command, ["--strategy", "multiworker", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert (
        result.output.count("Error") == 1 and "needs the cluster in the TF_CONFIG" in result.output
    )
    assert not (tmp_path / "r").exists()
    for bad in (
        "{not json",
        '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker"}}',
        '{"cluster": {"ps": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
        '{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 1}}',
    ):
        with pytest.raises(ValueError, match="TF_CONFIG should") as error:
            read_tf_config(bad)
        assert "\n" not in str(error.value)


def test_chief_is_the_chief_task_else_worker_zero():
    two = {"worker": ["a:1", "b:1"]}
    config = lambda cluster, kind, i: json.dumps(  # noqa: E731
        {"cluster": cluster, "task": {"type": kind, "index": i}}
    )
    assert read_tf_config(config(two, "worker", 0))["is_chief"]
    assert not read_tf_config(config(two, "worker", 1))["is_chief"]
    with_chief = {**two, "chief": ["c:1"]}
    assert not read_tf_config(config(with_chief, "worker", 0))["is_chief"]
    parsed = read_tf_config(config(with_chief, "chief", 0))
    assert parsed["is_chief"] and parsed["workers"] == 3


def test_batch_lr_and_sharding_rules():
    dist = Distribution(None, "mirrored", "auto", "test", 3, ["GPU:0", "GPU:1", "GPU:2"])
    with pytest.raises(ValueError, match="divide evenly over the 3 replicas"):
        dist.set_global_batch(32)
    dist.set_global_batch(48)
    assert dist.per_replica_batch == 16 and "48 = 3 x 16" in dist.summary()
    assert (
        scaled_lr(1e-3, 4, "linear") == pytest.approx(4e-3) and scaled_lr(1e-3, 4, "none") == 1e-3
    )
    assert shard_policy(dist, "npz")[0] is None  # one worker: nothing to shard
    many = Distribution(None, "multiworker", "multiworker", "test", 2, ["CPU:0"], workers=2)
    assert shard_policy(many, "builtin")[0] == shard_policy(many, "folder")[0] == "DATA"


def test_cpu_devices_after_tensorflow_started_is_a_clear_error():
    import tensorflow as tf

    tf.constant(1.0)  # TensorFlow has started in this process
    have = len(tf.config.list_logical_devices("CPU"))
    with pytest.raises(RuntimeError, match="before TensorFlow initialises its devices"):
        set_cpu_devices(have + 2)
    set_cpu_devices(have)  # already so: fine
