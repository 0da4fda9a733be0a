"""The epoch loop: per-epoch pipelines, phase switches, NaN guard, best model and checkpoints.

Why not `keras.callbacks.BackupAndRestore`: in Keras 3.15 it does save optimizer variables
(`model.save_weights` includes them and it builds the optimizer before loading), but it writes
in place (a kill mid-write corrupts the only copy unless double_checkpoint), records only the
epoch (not our phase, whose optimizer has other variables), deletes its backup at the end of
every `fit` (we call `fit` per epoch/phase), and cannot make the restarted data stream match.
So each epoch here is one `fit` on a pipeline shuffled by (seed, epoch), then an atomic
checkpoint of model + optimizer variables with a JSON state (epoch, phase, best, history).

Under a tf.distribute strategy the loop runs inside its scope (see `finetune.train`); every
dataset goes through `prepare_dataset` (the run's auto-shard policy), and a resume reads the
checkpoint from `resume_paths` (the chief's run directory) even on workers that write elsewhere.

Example:
    >>> loop = EpochLoop(model, cfg, plan, data, paths, echo=print)
    >>> rows = loop.run(state=None)
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from finetune.model import PhasePlan, body_layers, compile_model, set_phase
from finetune.report import format_epoch, write_history_csv
from finetune.rundir import RunPaths, atomic_save, state_weights, write_checkpoint

# Materialise the training split for exact per-epoch shuffles only below this size.
MAX_ARRAY_BYTES = 1 << 30


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def is_binary(model: Any) -> bool:
    return int(model.output_shape[-1]) == 1


def with_labels_for(model: Any, dataset: Any) -> Any:
    """One sigmoid unit wants float (batch, 1) labels; softmax keeps int class indices."""
    if dataset is None or not is_binary(model):
        return dataset
    import tensorflow as tf

    return dataset.map(lambda x, y: (x, tf.reshape(tf.cast(y, tf.float32), (-1, 1))))


class TrainData:
    """The training split, re-shuffled reproducibly for each epoch.

    Without augmentation (and when it fits in memory) each epoch's order is a permutation drawn
    from (seed, epoch), so a resumed run sees exactly the batches an uninterrupted one would.
    With augmentation the loader's own pipeline is used (its random stream restarts on resume).
    """

    def __init__(self, data: Any, seed: int, batch_size: int, augment: bool):
        self.data, self.seed, self.batch_size = data, seed, batch_size
        self.x = self.y = None
        size = data.num_train * 4 * math.prod(d or 1 for d in data.input_shape)
        if not augment and size <= MAX_ARRAY_BYTES:
            self.x, self.y = data.arrays("train")
        self.exact = self.x is not None

    def epoch(self, epoch: int) -> Any:
        if self.x is None:
            return self.data.train
        import tensorflow as tf

        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.x))
        dataset = tf.data.Dataset.from_tensor_slices((self.x[order], self.y[order]))
        return dataset.batch(self.batch_size).prefetch(2)

    def non_finite(self) -> int | None:
        """How many non-finite values the training inputs hold (None if not in memory)."""
        return None if self.x is None else int(np.size(self.x) - np.isfinite(self.x).sum())


def _tensorboard_note() -> str | None:
    """None when TensorBoard logs can be written, else why not (TF no longer bundles it)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return "no TensorBoard logs: pip install tensorboard"
    return None


class _NanGuard:
    """Stops `fit` at the first non-finite batch loss (a Keras callback, built lazily)."""

    @staticmethod
    def create() -> Any:
        import keras

        class NanGuard(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.batch: int | None = None

            def on_train_batch_end(self, batch, logs=None):
                loss = (logs or {}).get("loss")
                if loss is not None and not math.isfinite(float(loss)):
                    self.batch = batch
                    self.model.stop_training = True

        return NanGuard()


class EpochLoop:
    """Runs the epochs of a plan, switching phase, checkpointing and keeping the best model."""

    def __init__(
        self,
        model: Any,
        cfg: Any,
        plan: PhasePlan,
        data: Any,
        paths: RunPaths,
        *,
        policy: str,
        echo: Callable[[str], None],
        prepare_dataset: Callable[[Any], Any] | None = None,
        resume_paths: RunPaths | None = None,
    ):
        import keras

        self.model, self.cfg, self.plan, self.data, self.paths = model, cfg, plan, data, paths
        self.policy, self.echo = policy, echo
        self.prepare_dataset = prepare_dataset or (lambda dataset: dataset)
        self.resume_paths = resume_paths or paths
        self.train_data = TrainData(data, cfg.seed, cfg.batch_size, cfg.augment)
        self.val = self.prepare_dataset(with_labels_for(model, data.val))
        self.monitor = "val_accuracy" if self.val is not None else "accuracy"
        self.guard = _NanGuard.create()
        self.callbacks = [self.guard]
        self.tensorboard_note = _tensorboard_note()
        if self.tensorboard_note is None:
            self.callbacks.append(
                keras.callbacks.TensorBoard(
                    log_dir=str(paths.logs), write_graph=False, update_freq="epoch", profile_batch=0
                )
            )
        self.phase: int | None = None
        self._snapshot: list[np.ndarray] | None = None
        self.phase_notes: dict[int, dict[str, Any]] = {}
        self.rows: list[dict[str, Any]] = []
        self.best: dict[str, Any] = {}

    def lr(self, phase: int) -> float:
        return self.cfg.fine_tune_lr if self.plan.two_phase and phase == 2 else self.cfg.lr

    def _body_snapshot(self) -> list[np.ndarray]:
        return [np.array(v) for layer in body_layers(self.model, self.plan) for v in layer.weights]

    def _close_phase(self) -> None:
        """Record how far the body's weights moved in the phase that ends (0.0 when frozen)."""
        if self.phase is None or self._snapshot is None:
            return
        now = self._body_snapshot()
        moved = max(
            (
                float(np.max(np.abs(a - b)))
                for a, b in zip(now, self._snapshot, strict=True)
                if a.size
            ),
            default=0.0,
        )
        self.phase_notes[self.phase]["body_max_change"] = moved

    def enter_phase(self, phase: int) -> None:
        """Freeze/unfreeze for `phase` and recompile (a fresh optimizer at the phase's lr)."""
        self._close_phase()
        # A copy of the body's weights proves afterwards that phase 1 left them untouched.
        self._snapshot = self._body_snapshot() if self.plan.two_phase else None
        self.phase_notes[phase] = set_phase(self.model, phase, self.plan, self.cfg.unfreeze)
        compile_model(self.model, self.lr(phase))
        self.phase = phase
        trainable = sum(int(np.prod(v.shape)) for v in self.model.trainable_variables)
        self.phase_notes[phase]["trainable_params"] = trainable
        if self.plan.two_phase:
            title = "head only, body frozen" if phase == 1 else "fine-tuning"
            self.echo(f"phase {phase} ({title}): lr={self.lr(phase):g}, {trainable:,} trainable")

    def restore(self, state: dict[str, Any]) -> int:
        """Load a checkpoint: the phase's trainability, optimizer variables, weights, history."""
        self.enter_phase(int(state["phase"]))
        self.model.optimizer.build(self.model.trainable_variables)  # variables to load into
        self.model.load_weights(str(state_weights(self.resume_paths, state)))
        best = self.resume_paths.best_weights
        if best != self.paths.best_weights and best.is_file():  # a worker writing elsewhere
            self.paths.checkpoints.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(best, self.paths.best_weights)
        if self.plan.two_phase:  # measure the body's movement from the restored weights on
            self._snapshot = self._body_snapshot()
        self.rows = list(state.get("history", []))
        self.best = dict(state.get("best", {}))
        self.echo(f"resuming after epoch {state['epoch']} (phase {state['phase']})")
        return int(state["epoch"])

    def _improved(self, row: dict[str, Any]) -> bool:
        value = row.get(self.monitor)
        if value is None or not math.isfinite(value):
            return False
        loss = row.get("val_loss" if self.val is not None else "loss", math.inf)
        best = (self.best.get("value", -math.inf), -self.best.get("loss", math.inf))
        return (value, -loss) > best

    def _fit_epoch(self, epoch: int) -> dict[str, Any]:
        start = time.perf_counter()
        train = self.prepare_dataset(with_labels_for(self.model, self.train_data.epoch(epoch)))
        history = self.model.fit(
            train,
            validation_data=self.val,
            initial_epoch=epoch,
            epochs=epoch + 1,
            verbose=0,
            callbacks=self.callbacks,
            shuffle=False,  # the pipeline is already shuffled per (seed, epoch)
        )
        if self.guard.batch is not None:
            raise NonFiniteLossError(self._nan_message(epoch))
        row = {"epoch": epoch + 1, "phase": self.phase, "lr": self.lr(self.phase)}
        row.update({key: float(values[-1]) for key, values in history.history.items()})
        row["seconds"] = round(time.perf_counter() - start, 3)
        return row

    def _nan_message(self, epoch: int) -> str:
        causes = [f"a learning rate too high (lr={self.lr(self.phase):g}; try 10x lower)"]
        if self.policy == "mixed_float16":
            causes.append("float16 overflow under mixed_float16 (try --precision float32)")
        bad = self.train_data.non_finite()
        if bad:
            causes.insert(0, f"NaN/inf in the data ({bad} non-finite input values)")
        elif bad is None:
            causes.append("NaN/inf in the data")
        return (
            f"The training loss became NaN/inf at epoch {epoch + 1}, batch {self.guard.batch + 1}"
            f"; likely cause: {' or '.join(causes)}. The run stopped; checkpoints of finished epochs are kept."
        )

    def _after_epoch(self, epoch: int, row: dict[str, Any], elapsed: float) -> None:
        self.rows.append(row)
        self.echo(format_epoch(row, self.plan.total_epochs))
        if self._improved(row):
            self.best = {
                "value": row[self.monitor],
                "loss": row.get("val_loss" if self.val is not None else "loss"),
                "epoch": row["epoch"],
                "monitor": self.monitor,
            }
            atomic_save(self.paths.model, lambda tmp: self.model.save(tmp))
            # Model variables only: the optimizer of a later phase has other variables.
            weights = self.model.get_weights()
            atomic_save(self.paths.best_weights, lambda tmp: np.savez(tmp, *weights))
        write_history_csv(self.paths.history, self.rows)
        state = {
            "epoch": epoch + 1,
            "phase": self.phase,
            "best": self.best,
            "history": self.rows,
            "policy": self.policy,
            "wall_seconds": elapsed,
        }
        write_checkpoint(self.paths, self.model, state)

    def run(self, state: dict[str, Any] | None, wall_before: float = 0.0) -> list[dict[str, Any]]:
        """Train from the start or from `state` to `plan.total_epochs`; returns history rows."""
        start_epoch = self.restore(state) if state else 0
        began = time.perf_counter()
        for epoch in range(start_epoch, self.plan.total_epochs):
            phase = self.plan.phase_of(epoch)
            if phase != self.phase:
                self.enter_phase(phase)
            row = self._fit_epoch(epoch)
            self._after_epoch(epoch, row, wall_before + time.perf_counter() - began)
        if self.phase is None:  # nothing left to train (a finished run resumed): still compile
            self.enter_phase(self.plan.phase_of(max(self.plan.total_epochs - 1, 0)))
        self._close_phase()
        return self.rows

    def restore_best(self) -> None:
        """Load the best epoch's weights (model.keras holds the same) for the final report."""
        if self.paths.best_weights.is_file():
            with np.load(self.paths.best_weights) as stored:
                self.model.set_weights([stored[f"arr_{i}"] for i in range(len(stored.files))])
