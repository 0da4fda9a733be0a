"""The training split as one stream of epochs, each in an order drawn from (seed, epoch).

`EpochLoop` trains each phase with one `fit` over `TrainData.epochs(first, end)` and
`steps_per_epoch=TrainData.steps`: epoch `e` of that stream is a permutation of the split drawn
from (seed, e) (a stateless `index_shuffle`), so a run resumed at epoch k sees exactly the
batches an uninterrupted one saw from epoch k on, without a `fit` per epoch.

Where the examples come from:
- an image folder streams: only the file paths and labels are in memory; each epoch's paths
  are put in order, then read, decoded and resized in parallel (flat memory for any size);
- in-memory sources (npz, builtin) keep their decoded arrays (up to MAX_ARRAY_BYTES) and gather
  each batch from them;
- with augmentation (or arrays too big) the loader's own pipeline is repeated: its random
  stream restarts on resume, so that order is not exact (`exact` is False).

Example:
    >>> train = TrainData(data, seed=0, batch_size=32, augment=False)
    >>> model.fit(train.epochs(0, 5), epochs=5, steps_per_epoch=train.steps)
"""

from __future__ import annotations

import math
from typing import Any

# Keep the decoded training split of an in-memory source as arrays only below this size.
MAX_ARRAY_BYTES = 1 << 30


class TrainData:
    """The training split, re-shuffled reproducibly for each epoch (see the module docstring).

    Attributes:
        steps: batches per epoch (the last one may be partial).
        exact: True when each epoch's order depends only on (seed, epoch).
        source: "files" (streamed), "arrays" (in memory) or "loader" (its own shuffle).
    """

    def __init__(self, data: Any, seed: int, batch_size: int, augment: bool):
        import tensorflow as tf

        self.data, self.seed, self.batch_size = data, int(seed), int(batch_size)
        self.size = int(data.num_train)
        self.steps = max(1, math.ceil(self.size / self.batch_size))
        self.source, self.x, self.y = "loader", None, None
        files = None if augment else data.train_files
        if files is not None and len(files[0]) == self.size:
            self.source = "files"
            self.x, self.y = tf.constant(files[0]), tf.constant(files[1])
        elif not augment and files is None:
            decoded = self.size * 4 * math.prod(d or 1 for d in data.input_shape)
            if decoded <= MAX_ARRAY_BYTES:
                x, y = data.arrays("train")
                self.source = "arrays"
                # Tensors once (the numpy copies are dropped), gathered batch by batch.
                self.x, self.y = tf.constant(x), tf.constant(y)
        self.exact = self.source != "loader"

    def _order(self, epoch: Any) -> Any:
        """Positions -> example indices: the permutation of epoch `epoch` (a tensor)."""
        import tensorflow as tf

        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(epoch, tf.int64)])
        last = tf.constant(self.size - 1, tf.int64)
        return lambda positions: tf.random.experimental.index_shuffle(
            positions, seed, tf.fill(tf.shape(positions), last)
        )

    def _one_epoch(self, epoch: Any) -> Any:
        import tensorflow as tf

        order, x, y = self._order(epoch), self.x, self.y
        positions = tf.data.Dataset.range(self.size)
        if self.source == "files":
            files = positions.map(lambda i: (tf.gather(x, order(i)), tf.gather(y, order(i))))
            # A file that fails to decode is dropped with a warning (the loader's rule).
            return self.data.decode_files(files).batch(self.batch_size)
        return positions.batch(self.batch_size).map(
            lambda i: (tf.gather(x, order(i)), tf.gather(y, order(i)))
        )

    def epoch(self, epoch: int) -> Any:
        """One epoch's batches (its order drawn from (seed, epoch) when `exact`)."""
        return self.epochs(epoch, epoch + 1, spare=False)

    def epochs(self, first: int, end: int, spare: bool = True) -> Any:
        """Epochs first..end-1 back to back, `steps` batches each, for one `fit` with
        `initial_epoch=first, epochs=end, steps_per_epoch=steps`.

        A streamed folder drops a file that fails to decode (the loader's rule), which would
        leave its epoch a batch short; one spare epoch at the end keeps `fit` from running dry.
        """
        import tensorflow as tf

        if self.source == "loader":
            return self.data.train if not spare else self.data.train.repeat()
        last = end + 1 if spare and self.source == "files" else end
        dataset = tf.data.Dataset.range(first, last).flat_map(self._one_epoch)
        return dataset.prefetch(tf.data.AUTOTUNE)

    def non_finite(self) -> int | None:
        """How many non-finite values the training inputs hold (None if unknown)."""
        if self.source == "files":
            return 0  # decoded pixels are 0-255
        if self.source != "arrays":
            return None
        import tensorflow as tf

        finite = tf.math.count_nonzero(tf.math.is_finite(self.x), dtype=tf.int64)
        return int(tf.size(self.x, out_type=tf.int64) - finite)
