"""The budgeted-precision test case: a trained model whose plain int8 file loses > 1 point.

A "backbone head" on random features, as the VGG16 head of docs/BENCHMARKS.md (random, frozen
convolutions, only the head learns), but on the reference cnn so it trains in seconds: `cnn` on
builtin:digits at 28x28, its three convolutions frozen at their random init, Dense(64) and the
classifier trained 8 epochs (Adam 1e-3, seed 0). It reaches ~95% on the 359-image test split, and
ONNX Runtime's int8 (per-channel 7-bit weights, uint8 activations: MinMax, Entropy and
Percentile alike) loses 1.1 points there (4 images): the head separates classes on small
differences of unnormalised random-conv features, which per-tensor activation scales round off.
Models trained whole on the bundled sets lost < 1 point (docs/BENCHMARKS.md, "Budgeted
precision": what was tried). The loss needs 7-bit weights, what `quantize_int8` uses on x86 CPUs
without VNNI; with 8-bit weights (VNNI CPUs) it is 0.00 points, so its tests pin
`KERAZOO_INT8_WEIGHT_BITS=7`.

Example:
    >>> run = budget_case_run()
    >>> sorted(p.name for p in run.iterdir())
    ['config.yaml', 'model.keras']
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

SHAPE = (28, 28, 1)
EPOCHS = 8
SEED = 0


def train_budget_case(run: Path) -> Path:
    """Train the case into `run` (model.keras + config.yaml with the data and split rules)."""
    import keras
    import yaml

    import zoo
    from finetune.data import load_data
    from finetune.model import compile_model

    run.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(SEED)
    data = load_data("builtin:digits", task="image", input_shape=SHAPE, batch_size=32, seed=SEED)
    model = zoo.create_model("cnn", input_shape=SHAPE, num_classes=data.num_classes)
    for layer in model.layers:  # the random "backbone": frozen at init
        if layer.name.startswith("conv"):
            layer.trainable = False
    compile_model(model, 1e-3)
    model.fit(data.train, validation_data=data.val, epochs=EPOCHS, verbose=0)
    model.save(run / "model.keras")
    config = {"model": "cnn", "data": "builtin:digits", "seed": SEED, "val_split": 0.2,
              "input_shape": list(SHAPE), "class_names": [str(d) for d in range(10)]}  # fmt: skip
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    return run


@functools.cache
def budget_case_run() -> Path:
    """The case, trained once per session into a temporary cache directory."""
    cache = Path(tempfile.mkdtemp(prefix="kerazoo-budget-case-"))
    atexit.register(shutil.rmtree, cache, ignore_errors=True)
    return train_budget_case(cache / "run")
