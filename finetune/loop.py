"""The epoch loop: one `fit` per phase, phase switches, NaN check, best weights and checkpoints.

Why not `keras.callbacks.BackupAndRestore`: in Keras 3.15 it does save optimizer variables
(`model.save_weights` includes them and it builds the optimizer before loading), but it writes
in place (a kill mid-write corrupts the only copy unless double_checkpoint), records only the
epoch (not our phase, whose optimizer has other variables), deletes its backup at the end of
every `fit`, and cannot make the restarted data stream match.

So each phase is one `fit(initial_epoch=first, epochs=end, steps_per_epoch=...)` over a stream
in which epoch e is shuffled by (seed, e) (`finetune.trainset`), so a resumed run sees the same
batches as an uninterrupted one without paying a `fit` per epoch. At each epoch's end (a
callback, no per-batch hook, so Keras keeps dispatching asynchronously) the epoch's mean loss
is checked for NaN/inf, the model + optimizer variables and a JSON state (epoch, phase, best,
history) are checkpointed atomically, and an improved epoch saves its weights (checkpoints/
best.npz, cheap). `model.keras` is written once, from the best weights, by `finish()` at the
end of the run (or of the resume that completes it).

The recipe (`finetune.recipe`): each phase compiles the recipe's optimizer; the learning rate of
each epoch is set by Keras' LearningRateScheduler from the epoch alone (nothing to save), and
`plateau`'s ReduceLROnPlateau counters ride in the checkpoint. Patience is counted from the
best epoch the loop already records, not by keras.callbacks.EarlyStopping: that one resets its
counters in every `fit` (each phase, each resume) and keeps its own copy of the best weights.
In a two-phase run patience counts fine-tuning epochs only: the head phase always runs.

Under a tf.distribute strategy the loop runs inside its scope (see `finetune.train`); every
dataset goes through `prepare_dataset` (the run's auto-shard policy), and a resume reads the
checkpoint from `resume_paths` (the chief's run directory) even on workers that write elsewhere.

Example:
    >>> loop = EpochLoop(model, cfg, plan, data, paths, policy="float32", echo=print)
    >>> rows = loop.run(state=None)
    >>> loop.finish()  # best weights -> model.keras
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from finetune.model import PhasePlan, body_layers, set_phase
from finetune.recipe import Recipe, compile_recipe, one_hot_labels, resolve_recipe
from finetune.report import format_epoch, write_history_csv
from finetune.rundir import RunPaths, atomic_save, state_weights, write_checkpoint
from finetune.trainset import MAX_ARRAY_BYTES, TrainData

__all__ = ["MAX_ARRAY_BYTES", "EpochLoop", "NonFiniteLossError", "TrainData", "is_binary"]


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def is_binary(model: Any) -> bool:
    return int(model.output_shape[-1]) == 1


def with_labels_for(model: Any, dataset: Any, recipe: Recipe | None = None) -> Any:
    """One sigmoid unit wants float (batch, 1) labels; softmax keeps int class indices, or
    one-hot floats under label smoothing (see `finetune.recipe.one_hot_labels`)."""
    if dataset is None:
        return dataset
    import tensorflow as tf

    if is_binary(model):
        return dataset.map(lambda x, y: (x, tf.reshape(tf.cast(y, tf.float32), (-1, 1))))
    if recipe is not None and one_hot_labels(model, recipe):
        classes = int(model.output_shape[-1])
        return dataset.map(lambda x, y: (x, tf.one_hot(tf.reshape(y, (-1,)), classes)))
    return dataset


def _tensorboard_note() -> str | None:
    """None when TensorBoard logs can be written, else why not (TF no longer bundles it)."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return "no TensorBoard logs: pip install tensorboard"
    return None


def _epoch_end_callback(loop: EpochLoop) -> Any:
    """A Keras callback that hands each finished epoch's logs to `loop` (epoch hooks only)."""
    import keras

    class EpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            loop._on_epoch_end(epoch, dict(logs or {}))

    return EpochEnd()


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
        recipe: Recipe | None = None,
    ):
        import keras

        self.model, self.cfg, self.plan, self.data, self.paths = model, cfg, plan, data, paths
        self.policy, self.echo = policy, echo
        self.recipe = recipe or resolve_recipe(cfg)
        self.prepare_dataset = prepare_dataset or (lambda dataset: dataset)
        self.resume_paths = resume_paths or paths
        self.train_data = TrainData(data, cfg.seed, cfg.batch_size, cfg.augment)
        self.val = self.prepare_dataset(with_labels_for(model, data.val, self.recipe))
        self.monitor = "val_accuracy" if self.val is not None else "accuracy"
        # Keras callbacks of every fit, after the loop's own epoch-end hook (tests and benchmarks
        # may append theirs).
        self.callbacks: list[Any] = []
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
        self._nan_epoch: int | None = None
        self.stopped_early: int | None = None  # the epoch after which patience ran out
        self._schedule = self._schedule_callbacks()
        self._began, self._wall_before, self._epoch_start = time.perf_counter(), 0.0, 0.0

    def _schedule_callbacks(self) -> list[Any]:
        from finetune.callbacks import lr_scheduler, plateau_callbacks, progress_bar

        # Order matters: the scheduler logs the epoch's rate, then the plateau updates its
        # counters, then the progress bar clears, all before the loop's hook checkpoints.
        return [lr_scheduler(self), *plateau_callbacks(self), *progress_bar(self)]

    def _plateau(self) -> Any | None:
        return next((c for c in self._schedule if hasattr(c, "pending")), None)

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
        compile_recipe(self.model, self.lr(phase), self.recipe)
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
        self.stopped_early = state.get("stopped_early")
        if self._plateau() is not None:
            self._plateau().pending = state.get("plateau")
        self.echo(f"resuming after epoch {state['epoch']} (phase {state['phase']})")
        return int(state["epoch"])

    def _improved(self, row: dict[str, Any]) -> bool:
        value = row.get(self.monitor)
        if value is None or not math.isfinite(value):
            return False
        loss = row.get("val_loss" if self.val is not None else "loss", math.inf)
        best = (self.best.get("value", -math.inf), -self.best.get("loss", math.inf))
        return (value, -loss) > best

    def _fit_phase(self, first: int, end: int) -> None:
        """Epochs first..end-1 (all of one phase) in one `fit`; each is checkpointed as it ends."""
        train = self.train_data.epochs(first, end)
        train = self.prepare_dataset(with_labels_for(self.model, train, self.recipe))
        self._nan_epoch = None
        self._epoch_start = time.perf_counter()
        self.model.fit(
            train,
            validation_data=self.val,
            initial_epoch=first,
            epochs=end,
            steps_per_epoch=self.train_data.steps,
            verbose=0,
            callbacks=[*self._schedule, _epoch_end_callback(self), *self.callbacks],
            shuffle=False,  # the stream is already shuffled per (seed, epoch)
        )
        if self._nan_epoch is not None:
            raise NonFiniteLossError(self._nan_message(self._nan_epoch))
        if self.stopped_early is not None:
            return
        done = self.rows[-1]["epoch"] if self.rows else 0
        if done < end:
            raise RuntimeError(
                f"Training stopped after epoch {done} of {end}: the training data ran out "
                f"({self.train_data.steps} batches per epoch expected). Checkpoints of finished "
                f"epochs are kept; resume with --resume."
            )

    def _on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """Called by `fit` after each epoch (validation done): NaN check, then checkpoint."""
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            # The epoch's mean loss is NaN/inf iff a batch's was: nothing of it is saved.
            self._nan_epoch = epoch
            self.model.stop_training = True
            return
        row = self._fit_epoch(epoch, logs)
        self._after_epoch(epoch, row, self._wall_before + time.perf_counter() - self._began)
        self._epoch_start = time.perf_counter()

    def _fit_epoch(self, epoch: int, logs: dict[str, Any]) -> dict[str, Any]:
        """The history row of an epoch that `fit` just finished, from its logs."""
        # The rate this epoch trained at (LearningRateScheduler logs it before any reduction).
        used = logs.pop("learning_rate", self.lr(self.phase))
        row = {"epoch": epoch + 1, "phase": self.phase, "lr": float(used)}
        row.update({key: float(value) for key, value in logs.items()})
        row["seconds"] = round(time.perf_counter() - self._epoch_start, 3)
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
            f"The training loss became NaN/inf in epoch {epoch + 1}; likely cause: "
            f"{' or '.join(causes)}. The run stopped; checkpoints of finished epochs are kept."
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
            # Model variables only (the optimizer of a later phase has other variables), and
            # cheap: model.keras is written from them once, by finish().
            weights = self.model.get_weights()
            atomic_save(self.paths.best_weights, lambda tmp: np.savez(tmp, *weights))
        write_history_csv(self.paths.history, self.rows)
        self._check_patience(epoch)
        state = {
            "epoch": epoch + 1,
            "phase": self.phase,
            "best": self.best,
            "history": self.rows,
            "policy": self.policy,
            "wall_seconds": elapsed,
            "stopped_early": self.stopped_early,
        }
        if self._plateau() is not None:
            state["plateau"] = self._plateau().state()
        write_checkpoint(self.paths, self.model, state)

    def _check_patience(self, epoch: int) -> None:
        """Stop `fit` once `patience` epochs of the last phase brought no improvement."""
        patience, last = self.recipe.patience, self.plan.phase_of(self.plan.total_epochs - 1)
        if not patience or self.phase != last:
            return
        first = self.plan.head_epochs if self.plan.two_phase else 0  # epochs before the phase
        since = epoch + 1 - max(int(self.best.get("epoch") or 0), first)
        if since >= patience:
            self.stopped_early = epoch + 1
            self.model.stop_training = True
            self.echo(
                f"early stop after epoch {epoch + 1}: no {self.monitor} improvement in "
                f"{since} epoch(s) (patience {patience}); keeping epoch {self.best.get('epoch')}"
            )

    def run(self, state: dict[str, Any] | None, wall_before: float = 0.0) -> list[dict[str, Any]]:
        """Train from the start or from `state` to `plan.total_epochs`; returns history rows."""
        start_epoch = self.restore(state) if state else 0
        self._began, self._wall_before = time.perf_counter(), wall_before
        epoch, total = start_epoch, self.plan.total_epochs
        while epoch < total and self.stopped_early is None:
            phase = self.plan.phase_of(epoch)
            if phase != self.phase:
                self.enter_phase(phase)
            end = epoch + 1
            while end < total and self.plan.phase_of(end) == phase:
                end += 1
            self._fit_phase(epoch, end)
            epoch = end
        if self.phase is None:  # nothing left to train (a finished run resumed): still compile
            self.enter_phase(self.plan.phase_of(max(self.plan.total_epochs - 1, 0)))
        self._close_phase()
        return self.rows

    def finish(self) -> None:
        """Load the best epoch's weights, re-estimate the statistics of BatchNorm layers that
        trained (`finetune.batchnorm`; best.npz keeps the weights as trained, so a resume stays
        exact) and write them as model.keras (once per run)."""
        from finetune.batchnorm import reestimate_for_run

        self.restore_best()
        self.batchnorm = reestimate_for_run(self.model, self.train_data, self.echo)
        # model.keras is the inference model: an uncompiled copy, without the optimizer's
        # variables (Keras 3 writes them into .keras files whatever `include_optimizer` says;
        # resuming reads the checkpoints, which keep them). Not keras.models.clone_model: it
        # compiles the clone like the original.
        inference = type(self.model).from_config(self.model.get_config())
        inference.set_weights(self.model.get_weights())
        atomic_save(self.paths.model, lambda tmp: inference.save(tmp))

    def restore_best(self) -> None:
        """Load the best epoch's weights (checkpoints/best.npz), e.g. for the final report."""
        if self.paths.best_weights.is_file():
            with np.load(self.paths.best_weights) as stored:
                self.model.set_weights([stored[f"arr_{i}"] for i in range(len(stored.files))])
