"""The Keras callbacks of the epoch loop: learning-rate schedule, plateau, progress bar.

Each is Keras' own piece, made to survive the loop's one-`fit`-per-phase and its resumes:
the schedule is a pure function of the epoch; the plateau's counters are saved and restored;
the progress bar is `keras.utils.Progbar`, shown on a terminal only and cleared at each epoch's
end, so the loop's one summary line per epoch is all that stays on screen (and all a log gets).

Example:
    >>> callbacks = [lr_scheduler(loop), *plateau_callbacks(loop), *progress_bar(loop)]
"""

from __future__ import annotations

import sys
from typing import Any

from finetune.recipe import PLATEAU_FACTOR, PLATEAU_PATIENCE, lr_factor


def lr_scheduler(loop: Any) -> Any:
    """`keras.callbacks.LearningRateScheduler`: the phase's rate x the schedule's factor.

    Under `plateau` the rate is only set during warm-up and at its end; afterwards it is the
    optimizer's own (restored from the checkpoint on resume), which ReduceLROnPlateau lowers.
    """
    import keras

    recipe, total = loop.recipe, loop.plan.total_epochs

    def schedule(epoch: int, lr: float) -> float:
        base = loop.lr(loop.phase)
        if recipe.lr_schedule == "plateau" and epoch > recipe.warmup_epochs:
            return float(lr)
        return base * lr_factor(recipe, epoch, total)

    return keras.callbacks.LearningRateScheduler(schedule)


def plateau_callbacks(loop: Any) -> list[Any]:
    """[ReduceLROnPlateau] under `plateau` (its counters restorable), else []."""
    if loop.recipe.lr_schedule != "plateau":
        return []
    import keras

    class Plateau(keras.callbacks.ReduceLROnPlateau):
        """Keras' ReduceLROnPlateau whose counters a resume puts back (its `fit` resets them)."""

        pending: dict[str, Any] | None = None

        def on_train_begin(self, logs=None):
            super().on_train_begin(logs)
            saved, self.pending = self.pending, None
            if saved and saved.get("phase") == loop.phase:  # a new phase starts afresh
                self.wait, self.best = saved["wait"], saved["best"]
                self.cooldown_counter = saved["cooldown_counter"]

        def state(self) -> dict[str, Any]:
            return {
                "phase": loop.phase,
                "wait": int(self.wait),
                "best": float(self.best),
                "cooldown_counter": int(self.cooldown_counter),
            }

    plateau = Plateau(
        monitor=loop.monitor, factor=PLATEAU_FACTOR, patience=PLATEAU_PATIENCE, verbose=0
    )
    return [plateau]


def progress_bar(loop: Any, enabled: bool | None = None) -> list[Any]:
    """[a per-epoch keras.utils.Progbar with ETA] on a terminal (not quiet), else [].

    It hooks every batch (which makes Keras wait for each step's loss), so it is left out
    wherever nobody watches.
    """
    if enabled is None:
        enabled = not loop.cfg.quiet and sys.stdout.isatty()
    if not enabled:
        return []
    import keras

    class Progress(keras.callbacks.Callback):
        bar: Any = None

        def on_epoch_begin(self, epoch, logs=None):
            total = loop.plan.total_epochs
            print(f"epoch {epoch + 1}/{total}", flush=True)
            self.bar = keras.utils.Progbar(loop.train_data.steps, unit_name="step")

        def on_train_batch_end(self, batch, logs=None):
            values = [(k, float(v)) for k, v in (logs or {}).items() if k in ("loss", "accuracy")]
            self.bar.update(batch + 1, values, finalize=False)

        def on_epoch_end(self, epoch, logs=None):
            # Clear the bar and its header: the loop prints the epoch's one summary line.
            sys.stdout.write("\r\033[K\033[F\033[K")
            sys.stdout.flush()

    return [Progress()]
