"""`run_finetune`: the two-phase transfer-learning run behind `zoo finetune`.

Phase 1 trains the head on a frozen body; phase 2 unfreezes the top of the body and continues
at `fine_tune_lr` (see `finetune.model`). Each epoch is checkpointed atomically (see
`finetune.loop`), so `resume=True` continues exactly where a killed run stopped; model.keras
(the best epoch's weights) is written when the last epoch is done. The model is
built, compiled, trained and evaluated inside the run's tf.distribute strategy scope (see
`finetune.distribute`); with several workers only the chief writes the run directory.

Example:
    >>> from finetune import FinetuneConfig, run_finetune
    >>> result = run_finetune(FinetuneConfig(model="cnn", data="builtin:digits", out="runs/a"))
    >>> result.metrics["test"]["accuracy"]
    0.97
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path
from typing import Any

from finetune.config import RUN_ONLY_FIELDS, FinetuneConfig, config_from_run_yaml, save_config
from finetune.recipe import Recipe, recipe_from_record, resolve_recipe
from finetune.rundir import RunPaths, atomic_write_json, prepare_run_dir, read_state
from zoo.runs import read_yaml_mapping


@dataclasses.dataclass
class FinetuneResult:
    """What a run produced: its files, final metrics and the decisions it took."""

    run_dir: Path
    files: dict[str, str]
    metrics: dict[str, Any]
    decisions: dict[str, Any]
    config: FinetuneConfig

    @property
    def model_path(self) -> Path:
        return RunPaths(self.run_dir).model


def _echo_for(cfg: FinetuneConfig, dist: Any = None):
    task = getattr(dist, "task", None)
    prefix = f"[{task['type']} {task['index']}] " if task and not dist.is_chief else ""

    def echo(message: str) -> None:
        if not cfg.quiet:
            print("\n".join(prefix + line for line in message.splitlines()), flush=True)

    return echo


def _resume_config(cfg: FinetuneConfig) -> FinetuneConfig:
    """On resume the saved config wins; an explicitly different training option is an error."""
    saved_path = RunPaths(Path(cfg.out)).config
    if not saved_path.is_file():
        raise ValueError(
            f"Nothing to resume in {cfg.out!r}: it has no config.yaml. "
            f"Run without --resume to start a new run. Received: out={cfg.out!r}"
        )
    saved = config_from_run_yaml(saved_path)
    default = FinetuneConfig()
    conflicts = [
        f"{field.name}={getattr(cfg, field.name)!r} (the run has {getattr(saved, field.name)!r})"
        for field in dataclasses.fields(FinetuneConfig)
        if field.name not in RUN_ONLY_FIELDS + ("precision",)
        and getattr(cfg, field.name) != getattr(default, field.name)
        and getattr(cfg, field.name) != getattr(saved, field.name)
    ]
    if conflicts:
        raise ValueError(
            "--resume continues a run with its saved config; only --epochs may change. "
            f"Received: {'; '.join(conflicts)}"
        )
    run_only = {name: getattr(cfg, name) for name in RUN_ONLY_FIELDS}
    if cfg.epochs == default.epochs:
        # Not given (or given as the default): keep the run's own total rather than resetting it.
        run_only["epochs"] = saved.epochs
    return dataclasses.replace(saved, **{**run_only, "resume": True, "overwrite": False})


def _seed(cfg: FinetuneConfig) -> None:
    import keras

    keras.utils.set_random_seed(cfg.seed)
    if cfg.deterministic:
        import tensorflow as tf

        # Process-wide and irreversible in TF: slower kernels, bit-identical results.
        tf.config.experimental.enable_op_determinism()


def _default_weights(cfg: FinetuneConfig) -> str | None:
    import zoo

    return zoo.model_info(cfg.model).default_weights


def _model_source(cfg: FinetuneConfig) -> tuple[FinetuneConfig, Path | None, dict[str, Any]]:
    """With `from_run`, the earlier run's model name and options are reused, and its input
    shape for image models (sequence models take the new data's length: transfer_input_shape)."""
    from finetune.model import resolve_from, transfer_input_shape

    if cfg.weights == "default":
        # Recorded as resolved, so a run's config.yaml says which weights it started from.
        cfg = dataclasses.replace(cfg, weights=None if cfg.from_run else _default_weights(cfg))
    if not cfg.from_run:
        return cfg, None, {}
    keras_file, earlier = resolve_from(cfg.from_run)
    notes: dict[str, Any] = {"from": str(keras_file)}
    if cfg.qat:
        from finetune.qat import qat_run_settings

        cfg = qat_run_settings(cfg, keras_file, earlier)
    if earlier:
        model = earlier.get("model", cfg.model)
        if model != cfg.model:
            notes["model"] = f"{model} (from the earlier run; model={cfg.model!r} ignored)"
        cfg = dataclasses.replace(
            cfg,
            model=model,
            model_options=earlier.get("model_options") or {},
            input_shape=transfer_input_shape(model, earlier.get("input_shape"), cfg.input_shape),
        )
        cfg.__post_init__()
    return cfg, keras_file, notes


def _load_data(cfg: FinetuneConfig) -> tuple[Any, Any]:
    import zoo
    from finetune.data import load_data

    info = zoo.model_info(cfg.model)  # unknown names fail here, before anything is written
    shape = cfg.input_shape
    if shape is None:
        # Images are resized to the model's size; sequence models take the data's features.
        shape = info.input_shape if info.task == "image" else (None, None)
    data = load_data(
        cfg.data,
        task=info.task,
        input_shape=shape,
        batch_size=cfg.batch_size,
        val_split=cfg.val_split,
        seed=cfg.seed,
        augment=cfg.augment,
    )
    return info, data


class _Builder:
    """Builds (and compiles, for measuring) the run's model under the current dtype policy."""

    def __init__(self, cfg: FinetuneConfig, data: Any, from_file: Path | None):
        self.cfg, self.data, self.from_file = cfg, data, from_file

    def build(self, *, load_from: bool = True) -> tuple[Any, dict[str, Any]]:
        from finetune.model import build_model

        if self.cfg.qat:  # the trained model itself, fake-quantized (finetune.qat)
            from finetune.qat import qat_model_from

            return qat_model_from(
                self.from_file, self.data.num_classes, safe_mode=not self.cfg.unsafe_load
            )
        return build_model(
            self.cfg.model,
            num_classes=self.data.num_classes,
            input_shape=tuple(self.data.input_shape),
            weights=self.cfg.weights,
            options=dict(self.cfg.model_options),
            from_file=self.from_file if load_from else None,
            safe_mode=not self.cfg.unsafe_load,
        )

    def plan(self, model: Any) -> Any:
        """The run's phases for `model` (`finetune.model.phase_plan` with this run's settings)."""
        from finetune.model import phase_plan

        cfg = self.cfg
        return phase_plan(
            model,
            cfg.epochs,
            cfg.head_epochs,
            from_used=bool(self.from_file),
            random_init=cfg.weights is None,
        )

    def build_for_timing(self) -> Any:
        """The model as it trains most epochs (phase 2 when there is one), compiled."""
        from finetune.model import compile_model, set_phase

        model, _ = self.build(load_from=False)  # weights do not change the speed
        cfg = self.cfg
        plan = self.plan(model)
        phase = 2 if plan.two_phase and plan.head_epochs < plan.total_epochs else 1
        set_phase(model, phase, plan, cfg.unfreeze)
        compile_model(model, cfg.lr)
        return model


def _evaluate(loop: Any, data: Any, paths: RunPaths) -> dict[str, Any]:
    """Scores of the model as it is (`loop.finish()` has loaded the best weights)."""
    from finetune.loop import with_labels_for
    from finetune.report import evaluate_split, plot_confusion, plot_history

    results: dict[str, Any] = {}
    for split in ("val", "test"):
        dataset = loop.prepare_dataset(
            with_labels_for(loop.model, getattr(data, split), loop.recipe)
        )
        results[split] = evaluate_split(loop.model, dataset, data.num_classes) if dataset else None
    report = results["test"] or results["val"]
    if report:
        split = "test" if results["test"] else "val"
        title = f"{split} split, best epoch {loop.best.get('epoch')}"
        plot_confusion(report["confusion_matrix"], data.class_names, paths.confusion_png, title)
        results["per_class_accuracy"] = dict(
            zip(data.class_names, report["per_class_accuracy"], strict=False)
        )
        results["per_class_split"] = split
    if loop.rows:
        plot_history(loop.rows, paths.curves_png)
    return results


def _metrics(cfg, loop, evaluated, precision: dict, wall: float, data) -> dict[str, Any]:
    plan = loop.plan
    return {
        "model": cfg.model,
        "data": cfg.data,
        "num_classes": data.num_classes,
        "class_names": list(data.class_names),
        "examples": {"train": data.num_train, "val": data.num_val, "test": data.num_test},
        "epochs": {
            "total": plan.total_epochs,
            "head": plan.head_epochs if plan.two_phase else 0,
            "fine_tune": plan.total_epochs - plan.head_epochs if plan.two_phase else 0,
            "completed": len(loop.rows),
        },
        "best": loop.best,
        "val": evaluated.get("val"),
        "test": evaluated.get("test"),
        "per_class_accuracy": evaluated.get("per_class_accuracy"),
        "per_class_split": evaluated.get("per_class_split"),
        "wall_seconds": round(wall, 2),
        "precision": precision,
    }


def _resolve(cfg: FinetuneConfig) -> FinetuneConfig:
    """The run directory's name and, on resume, the saved config (no TensorFlow used yet)."""
    if cfg.out is None:
        cfg = dataclasses.replace(
            cfg, out=str(Path("runs") / f"{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}")
        )
    return _resume_config(cfg) if cfg.resume else cfg


def _lr_facts(cfg: FinetuneConfig, used: dict[str, float]) -> dict[str, Any]:
    """The learning rates asked for and used (after --scale-lr), for metrics.json."""
    return {
        "scale_lr": cfg.scale_lr,
        "lr": used["lr"],
        "fine_tune_lr": used["fine_tune_lr"],
        "lr_requested": cfg.lr,
        "fine_tune_lr_requested": cfg.fine_tune_lr,
    }


@dataclasses.dataclass
class _Prepared:
    """A run resolved and ready to train: what `_prepare` found, read and created."""

    cfg: FinetuneConfig
    from_file: Path | None
    notes: dict[str, Any]
    data: Any
    paths: RunPaths  # where this worker writes
    state: dict[str, Any] | None  # the checkpoint to resume from, None to start
    source: RunPaths  # the chief's run directory (what a resume reads)
    recipe: Recipe


def _recipe(cfg: FinetuneConfig, source: RunPaths) -> Recipe:
    """A resume keeps the recipe its run recorded; a new run resolves it (user > model > default)."""
    import zoo

    if cfg.resume and source.config.is_file():
        return recipe_from_record(read_yaml_mapping(source.config).get("recipe"), cfg)
    return resolve_recipe(cfg, getattr(zoo.model_info(cfg.model), "recommended", None))


def _prepare(cfg: FinetuneConfig, dist: Any, write_dir: str) -> _Prepared:
    """Resolve the model and the data, then (only once both are valid) the run directory.

    The chief prepares `cfg.out`; another worker its own empty `write_dir`. On resume every
    worker reads the state that the chief wrote in `cfg.out` (shared or copied storage).
    """
    cfg, from_file, notes = _model_source(cfg)
    _seed(cfg)
    _, data = _load_data(cfg)
    chief = dist.is_chief
    source = RunPaths(Path(cfg.out))
    recipe = _recipe(cfg, source)
    paths = prepare_run_dir(
        write_dir, resume=cfg.resume and chief, overwrite=cfg.overwrite and chief
    )
    # A run stopped before its first checkpoint has no state: resuming it starts it over.
    state = read_state(source) if cfg.resume else None
    return _Prepared(cfg, from_file, notes, data, paths, state, source, recipe)


def run_finetune(config: FinetuneConfig) -> FinetuneResult:
    """Fine-tune a zoo model on a data SPEC; write the run directory; return its results.

    Raises ValueError (bad options, data or run directory) and NonFiniteLossError (a
    RuntimeError) with one-line messages.

    Example:
        >>> result = run_finetune(FinetuneConfig(model="cnn", out="runs/digits", epochs=2))
        >>> sorted(result.files)[:3]
        ['class_names', 'config', 'confusion_matrix']
    """
    from finetune.distribute import create_distribution, worker_dir

    started = time.perf_counter()
    # First: logical CPU devices and collective ops must be set before TensorFlow starts.
    # (strategy and cpu_devices are run-only options: a resumed run takes them from `config`.)
    dist = create_distribution(config.strategy, cpu_devices=config.cpu_devices)
    with worker_dir(dist) as write_dir:
        return _run(config, dist, write_dir, started)


def _prepare_everywhere(config: FinetuneConfig, dist: Any, write_dir: str | None) -> _Prepared:
    """`_prepare` on every worker; one worker's bad set-up stops all, none hangs."""
    from finetune import distribute

    error, prepared = None, None
    try:
        cfg = _resolve(config)
        dist.set_global_batch(cfg.batch_size)
        prepared = _prepare(cfg, dist, write_dir or cfg.out)
    except Exception as failure:  # noqa: BLE001 - re-raised by check_all_ready, after the barrier
        error = failure
    distribute.check_all_ready(dist, error)
    if prepared.state is not None:
        distribute.check_all_agree(dist, prepared.state["epoch"], "the epoch to resume after")
    return prepared


def _announce(p: _Prepared, dist: Any, echo) -> tuple[dict[str, float], str | None, str]:
    """Print the distribution and learning rates; return the rates used and the shard policy."""
    from finetune import distribute

    cfg = p.cfg
    echo(dist.summary())
    if dist.requested == "auto" and os.environ.get("TF_CONFIG"):
        echo("note: TF_CONFIG is set but --strategy auto trains on this machine only")
    shard, shard_reason = distribute.shard_policy(dist, p.data.spec.kind)
    lrs = {
        name: distribute.scaled_lr(getattr(cfg, name), dist.replicas, cfg.scale_lr)
        for name in ("lr", "fine_tune_lr")
    }
    r = p.recipe
    echo(
        f"lr {lrs['lr']:g}, fine-tune lr {lrs['fine_tune_lr']:g} (scale-lr {cfg.scale_lr}, "
        f"{dist.replicas} replica(s)); {r.optimizer}, {r.lr_schedule} schedule"
        f"{f', {r.warmup_epochs} warm-up epoch(s)' if r.warmup_epochs else ''}"
        f"{f', patience {r.patience}' if r.patience else ''}; "
        f"data sharding {shard or 'none (one worker)'}"
    )
    return lrs, shard, shard_reason


def _save_run_config(p: _Prepared, policy: str) -> None:
    """config.yaml (the options as given, with facts and the resolved recipe) and class names."""
    data = p.data
    save_config(
        dataclasses.replace(
            p.cfg,
            precision=policy,
            resume=False,
            overwrite=False,
            input_shape=tuple(data.input_shape),
        ),
        p.paths.config,
        num_classes=data.num_classes,
        class_names=list(data.class_names),
        task=data.task,
        precision_requested=p.cfg.precision,
        recipe=p.recipe.to_dict(),
    )
    atomic_write_json(p.paths.class_names, list(data.class_names))


@dataclasses.dataclass
class _Trained:
    loop: Any
    plan: Any
    evaluated: dict[str, Any]
    build_notes: dict[str, Any]
    loss_scaling: bool
    digest: str


def _train(p: _Prepared, builder, policy, lrs, shard, echo, dist) -> _Trained:
    """Build, train, keep the best epoch and evaluate (inside the policy and strategy scope)."""
    from finetune import distribute
    from finetune.advice import run_warnings, warn
    from finetune.batchnorm import validation_callback
    from finetune.guard import attach_guard
    from finetune.loop import EpochLoop
    from finetune.model import RANDOM_BACKBONE_NOTE

    cfg, data = p.cfg, p.data
    _seed(cfg)  # measuring consumed random numbers; the model's init must not depend on it
    model, build_notes = builder.build()
    distribute.prepare_model(dist, model)
    plan = builder.plan(model)
    if p.state is None:
        _save_run_config(p, policy)
    echo(
        f"{cfg.model} on {cfg.data}: {data.num_classes} classes, {data.num_train} train, "
        f"{data.num_val} val, {data.num_test} test; precision {policy}; run dir {p.paths.root}"
    )
    for line in run_warnings(cfg, data, plan, builder):
        warn(cfg, line)
    if plan.body == "random_backbone":
        echo(RANDOM_BACKBONE_NOTE)
    loop = EpochLoop(
        model,
        dataclasses.replace(cfg, **lrs),
        plan,
        data,
        p.paths,
        policy=policy,
        echo=echo,
        prepare_dataset=lambda dataset: distribute.with_shard_policy(dataset, shard),
        resume_paths=p.source,
        recipe=p.recipe,
    )
    attach_guard(loop, lambda line: warn(cfg, line))  # a run that cannot learn says so
    loop.callbacks.append(validation_callback(loop.train_data))  # val scores trained BN
    loop.run(p.state, wall_before=(p.state or {}).get("wall_seconds", 0.0))
    loop.finish()  # the best epoch's weights, loaded and written as model.keras
    evaluated = _evaluate(loop, data, p.paths)
    loss_scaling = type(model.optimizer).__name__ == "LossScaleOptimizer"
    digest = distribute.weights_digest(model)
    return _Trained(loop, plan, evaluated, build_notes, loss_scaling, digest)


def _run_steps(p: _Prepared) -> int:
    """Training steps the run has left: what `auto` precision's time budget is a share of."""
    steps = max(1, -(-p.data.num_train // p.cfg.batch_size))
    return steps * max(1, p.cfg.epochs - int((p.state or {}).get("epoch", 0)))


def _run(config: FinetuneConfig, dist: Any, write_dir: str | None, started: float):
    from finetune.advice import keras_warnings

    echo = _echo_for(config, dist)
    with keras_warnings(config):
        return _run_steps_in_order(config, dist, write_dir, started, echo)


def _run_steps_in_order(config, dist, write_dir, started, echo) -> FinetuneResult:
    from finetune.autoprecision import choose_precision
    from finetune.precision import dtype_policy

    p = _prepare_everywhere(config, dist, write_dir)
    lrs, shard, shard_reason = _announce(p, dist, echo)
    builder = _Builder(p.cfg, p.data, p.from_file)
    policy, precision = choose_precision(p.cfg, p.paths, builder, echo, dist, _run_steps(p))
    with dtype_policy(policy), dist.scope():
        trained = _train(p, builder, policy, lrs, shard, echo, dist)
    wall = (p.state or {}).get("wall_seconds", 0.0) + time.perf_counter() - started
    precision = {
        **precision,
        "policy": policy,
        "requested": p.cfg.precision,
        "loss_scaling": trained.loss_scaling,
    }
    metrics = _record(p, trained, dist, precision, wall, lrs, shard, shard_reason)
    _print_summary(echo, metrics, p.paths if dist.is_chief else None)
    if dist.multi_worker:  # the same digest on every worker shows they hold the same model
        echo(f"weights sha256 {trained.digest}")
    if not dist.is_chief:  # its files are in a temporary directory, removed on return
        return FinetuneResult(Path(p.cfg.out), {}, metrics, metrics["decisions"], p.cfg)
    files = {f.stem.replace(".weights", ""): str(f) for f in p.paths.root.iterdir() if f.is_file()}
    return FinetuneResult(p.paths.root, files, metrics, metrics["decisions"], p.cfg)


def _record(p, trained, dist, precision, wall, lrs, shard, shard_reason) -> dict[str, Any]:
    """metrics.json: scores, epochs, the distribution, the recipe and every decision taken."""
    from finetune.guard import guard_warnings

    loop, cfg = trained.loop, p.cfg
    metrics = _metrics(cfg, loop, trained.evaluated, precision, wall, p.data)
    metrics["epochs"]["stopped_early"] = loop.stopped_early
    metrics["recipe"] = p.recipe.to_dict()
    metrics["distribute"] = {
        **dist.to_dict(),
        **_lr_facts(cfg, lrs),
        "shard_policy": shard,
        "shard_reason": shard_reason,
        "weights_sha256": trained.digest,
    }
    metrics["decisions"] = {
        "phases": {
            "plan": dataclasses.asdict(trained.plan),
            **{str(k): v for k, v in loop.phase_notes.items()},
        },
        "model": {**trained.build_notes, **p.notes},
        "precision": precision,
        "exact_data_order": loop.train_data.exact,
        "tensorboard": loop.tensorboard_note or str(p.paths.logs),
        "resumed_from_epoch": (p.state or {}).get("epoch"),
        "batchnorm": getattr(loop, "batchnorm", None),
        "warnings": guard_warnings(loop),
    }
    atomic_write_json(p.paths.metrics, metrics)
    return metrics


def _print_summary(echo, metrics: dict[str, Any], paths: RunPaths | None) -> None:
    for split in ("val", "test"):
        scores = metrics.get(split)
        if scores:
            echo(
                f"{split}: loss={scores['loss']:.4f} accuracy={scores['accuracy']:.4f} "
                f"({scores['examples']} examples)"
            )
    saved = f"model saved to {paths.model}" if paths else "the chief saves the model"
    echo(f"best epoch {metrics['best'].get('epoch')}; {metrics['wall_seconds']:.1f}s; {saved}")


def load_metrics(run_dir: str | Path) -> dict[str, Any]:
    """metrics.json of a finished run."""
    with open(RunPaths(Path(run_dir)).metrics, encoding="utf-8") as handle:
        return json.load(handle)
