"""Time training steps of zoo models under each dtype policy, as `--precision auto` does.

Usage: python bench/bench_precision.py [MODEL ...] [--batch-size 32] [--steps 10]
Prints ms/step per policy and auto's choice; numbers depend on the CPU/GPU (bf16 needs
AVX512_BF16/AMX or a GPU of compute capability >= 8.0).
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=["cnn", "lstm"])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=10)
    args = parser.parse_args()

    import zoo
    from finetune.model import compile_model
    from finetune.precision import measure_precision

    for name in args.models:
        info = zoo.model_info(name)
        shape = tuple(20 if dim is None else dim for dim in info.input_shape)
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 255, size=(args.batch_size, *shape)).astype("float32")
        y = rng.integers(0, max(info.num_classes, 2), size=args.batch_size)
        if info.num_classes == 1:
            y = y.reshape(-1, 1).astype("float32") % 2

        def build(name=name):
            model = zoo.create_model(name, weights=None)
            compile_model(model, 1e-3)
            return model

        decision = measure_precision(build, (x, y), steps=args.steps)
        print(f"{name} (batch {args.batch_size}, {decision.hardware['device']}):")
        print(decision.summary())


if __name__ == "__main__":
    main()
