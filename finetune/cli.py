"""`zoo finetune`: a thin click shell over `finetune.run_finetune`.

Options override the `--config` file, which overrides the defaults; heavy imports happen inside
the command so `zoo --help` stays instant, and Keras starts only once the arguments pass their
checks (click types, the model name against the registry, the config), so a refused argument
answers at once. Library errors become one-line `Error: ...` messages.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import click

from finetune.config import LR_SCHEDULES, OPTIMIZERS, PRECISIONS
from finetune.distribute import SCALE_LR, STRATEGIES

EXAMPLES = """
\b
Examples:
  zoo finetune --out runs/digits                      # bundled default: cnn on builtin:digits
  zoo finetune --list-data
  zoo finetune --model cnn --data "builtin:digits?classes=0-4" --epochs 4 --out runs/d04
  zoo finetune --from runs/d04 --data "builtin:digits?classes=5-9&per_class=10" \\
      --head-epochs 3 --epochs 6 --out runs/d59
  zoo finetune --model mobilenet_v2_gap --weights imagenet --data photos/ \\
      --input-shape 96,96,3 --head-epochs 3 --epochs 8 --unfreeze 20 --precision auto \\
      --out runs/photos
  zoo finetune --from runs/digits --qat --epochs 2 --out runs/digits-qat  # int8-aware
  zoo finetune --model lstm --data seqs.npz --option units=32 --option masking=true --out runs/s
  zoo finetune --optimizer sgd --momentum 0.9 --lr 0.001 --lr-schedule cosine \\
      --warmup-epochs 1 --label-smoothing 0.1 --patience 3 --epochs 20 --out runs/r
  zoo finetune --config my.yaml --lr 3e-4 --out runs/a     # options override the file
  zoo finetune --config runs/r/config.yaml --seed 1 --out runs/r1  # repeat a run's recipe
  zoo finetune --out runs/a --resume                       # continue an interrupted run
  zoo finetune --strategy mirrored --cpu-devices 2 --batch-size 64 --out runs/m
  TF_CONFIG='{"cluster": {"worker": ["h1:2222", "h2:2222"]}, "task": {"type": "worker",
      "index": 0}}' zoo finetune --strategy multiworker --out /shared/runs/mw  # on each host
"""


def _parse_options(values: tuple[str, ...]) -> dict[str, Any]:
    import yaml

    options: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"should be KEY=VALUE, e.g. dropout=0.2. Received: {item!r}",
                param_hint="'--option'",
            )
        try:
            options[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise click.BadParameter(
                f"the value of {key.strip()!r} is not valid YAML. Received: {raw!r}",
                param_hint="'--option'",
            ) from None
    return options


# Run options a model may recommend besides its recipe (finetune.recipe resolves those from the
# registry): applied only where neither the command line nor the --config file sets them, since
# FinetuneConfig's own defaults (3 epochs, batch 32) cannot be told from a user's choice.
RECOMMENDED_RUN_OPTIONS = ("epochs", "lr", "batch_size", "val_split")


def _recommended_run_options(
    options: dict[str, Any], config_file: str | None, base_model: str
) -> dict[str, Any]:
    """The model's recommended epochs, lr, batch_size and val_split the user left unset.

    Example: `zoo finetune --model fcn --data builtin:gunpoint` trains fcn's recommended epochs.
    """
    import zoo
    from zoo.runs import read_yaml_mapping

    model = options.get("model") or base_model
    # A QAT run fine-tunes a trained model: a recipe for training from scratch does not apply.
    if options.get("resume") or options.get("qat") or not zoo.is_model(model):
        return {}
    in_file = set()
    if config_file:
        in_file = {str(key).replace("-", "_") for key in read_yaml_mapping(config_file)}
    recommended = zoo.model_info(model).recommended
    return {
        key: recommended[key]
        for key in RECOMMENDED_RUN_OPTIONS
        if key in recommended and options.get(key) is None and key not in in_file
    }


def _check_before_backend(cfg: Any) -> None:
    """The checks that need no Keras: the model name, --weights and --from (paths, tags)."""
    import zoo
    from finetune.model import resolve_from

    zoo.model_info(cfg.model)  # a config file's unknown model too
    if cfg.from_run:
        resolve_from(cfg.from_run)
    else:
        zoo.resolve_weights(cfg.model, cfg.weights)


def _print_builtins() -> None:
    from finetune.data import list_builtin

    for name, description in list_builtin().items():
        click.echo(f"builtin:{name:<20} {description}")


def _one_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


@click.command(
    "finetune", epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    metavar="FILE.yaml",
    help="YAML file of options; command-line options override it.",
)
@click.option("--model", help="A zoo model name (`zoo list`). [default: cnn]")
@click.option(
    "--data",
    metavar="SPEC",
    help="DIR (a sub-folder per class, or train/, val/ and test/ ones holding them), FILE.csv "
    "(path,label[,split] rows), FILE.npz or builtin:NAME, with an optional "
    "?classes=5-9&per_class=10 query. [default: builtin:digits]",
)
@click.option(
    "--weights",
    metavar="imagenet|none|PATH",
    help="Initial weights: imagenet, none (random init), or a weights file (.weights.h5, "
    "legacy .h5, .keras: the whole model's or the backbone's). [default: the model's own "
    "(`zoo info MODEL`): imagenet for backbone models, none for the others and with --from]",
)
@click.option(
    "--from",
    "from_run",
    metavar="RUN_DIR_OR_MODEL",
    help="Start from an earlier run's model.keras (or a .keras file): all layers but "
    "the classifier, which is rebuilt for the new classes.",
)
@click.option(
    "--qat",
    is_flag=True,
    default=None,
    help="Quantization-aware fine-tuning of the --from model as a whole (its classifier kept): "
    "BatchNorm folded, int8 fake quantization, one phase at --fine-tune-lr. `zoo convert "
    "--precision int8` then exports its learned ranges. Image models (cnn, backbones).",
)
@click.option(
    "--epochs",
    type=int,
    help="Total epochs over both phases. [default: the model's recommended, else 3]",
)
@click.option(
    "--head-epochs",
    type=int,
    help="Phase-1 epochs: head only, backbone (or body, with --from) frozen. [default: 1]",
)
@click.option(
    "--unfreeze",
    metavar="N|all",
    help="Phase 2 unfreezes the top N weighted layers of the backbone, or all. "
    "BatchNorm stays frozen. [default: all]",
)
@click.option(
    "--lr",
    type=float,
    help="Phase-1 learning rate. [default: the model's recommended, else 0.001]",
)
@click.option("--fine-tune-lr", type=float, help="Phase-2 learning rate. [default: 0.0001]")
@click.option(
    "--batch-size",
    type=int,
    help="Examples per step: the global batch, split evenly over the replicas. "
    "[default: the model's recommended, else 32]",
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    help="Dtype policy; auto measures each supported one and keeps the fastest. [default: float32]",
)
@click.option(
    "--optimizer",
    type=click.Choice(OPTIMIZERS),
    help="A fresh one per phase. [default: the model's recommended one, else adam]",
)
@click.option(
    "--weight-decay",
    type=click.FloatRange(min=0),
    help="Decoupled weight decay. [default: 0.004 with adamw, else 0]",
)
@click.option(
    "--momentum",
    type=float,
    help="SGD momentum in [0, 1); --optimizer sgd only. [default: 0.9]",
)
@click.option(
    "--lr-schedule",
    type=click.Choice(LR_SCHEDULES),
    help="Per epoch over the whole run, x each phase's rate: cosine decay; step (x0.1 at each "
    "third); plateau (x0.5 after 2 epochs without improvement). [default: constant]",
)
@click.option(
    "--warmup-epochs",
    type=click.IntRange(min=0),
    metavar="N",
    help="Linear warm-up: epoch e (0-based) trains at (e+1)/(N+1) of the rate. [default: 0]",
)
@click.option(
    "--label-smoothing",
    type=float,
    help="Label smoothing in [0, 1) (softmax: one-hot labels). [default: 0]",
)
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    metavar="N",
    help="Stop after N epochs without improvement of val accuracy (fine-tuning epochs only "
    "in a two-phase run); model.keras keeps the best epoch. [default: 0, never]",
)
@click.option("--augment/--no-augment", default=None, help="Random image augmentation.")
@click.option(
    "--val-split",
    type=float,
    help="Validation fraction when the data has no validation split. "
    "[default: the model's recommended, else 0.2]",
)
@click.option("--seed", type=int, help="Seed for init, split, shuffles. [default: 0]")
@click.option(
    "--deterministic/--no-deterministic",
    default=None,
    help="Bit-identical repeated runs (TensorFlow op determinism; slower).",
)
@click.option("--out", metavar="RUN_DIR", help="Run directory. [default: runs/MODEL-TIME]")
@click.option("--resume", is_flag=True, default=None, help="Continue the interrupted run in --out.")
@click.option("--overwrite", is_flag=True, default=None, help="Replace a non-empty --out.")
@click.option(
    "--quiet",
    is_flag=True,
    default=None,
    help="Print nothing but errors (a terminal otherwise shows a progress bar per epoch).",
)
@click.option("--list-data", is_flag=True, help="List the builtin datasets and exit.")
@click.option(
    "--option",
    "model_options",
    multiple=True,
    metavar="KEY=VALUE",
    help="A model option (`zoo info MODEL`), value parsed as YAML; repeatable.",
)
@click.option(
    "--input-shape",
    metavar="H,W,C|T,F",
    help="Model input shape without batch axis, e.g. 32,32,3 or None,12.",
)
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    help="auto: MirroredStrategy over several GPUs, else one device; mirrored: the GPUs or "
    "the --cpu-devices; multiworker: the TF_CONFIG cluster (docs/DISTRIBUTED.md). [default: auto]",
)
@click.option(
    "--cpu-devices",
    type=click.IntRange(min=0),
    metavar="N",
    help="Split the CPU into N logical devices before TensorFlow starts (mirrored without "
    "GPUs). [default: 0, as is]",
)
@click.option(
    "--scale-lr",
    type=click.Choice(SCALE_LR),
    help="linear: both learning rates x the number of replicas. [default: none]",
)
@click.option(
    "--unsafe-load",
    is_flag=True,
    default=None,
    help="Allow a --from .keras file that runs stored code (Lambda layers). Trusted files only.",
)
def finetune_command(config_file: str | None, list_data: bool, model_options, **options: Any):
    """Fine-tune a zoo model on your data: head first, then the unfrozen top of the backbone.

    Writes RUN_DIR/model.keras (best epoch), config.yaml, metrics.json, history.csv, plots,
    TensorBoard logs and per-epoch checkpoints.
    """
    if list_data:
        _print_builtins()
        return
    overrides = dict(options)
    parsed = _parse_options(model_options)
    if parsed:
        overrides["model_options"] = parsed
    if options.get("resume") and options.get("overwrite"):
        raise click.UsageError("Use either --resume or --overwrite, not both.")
    try:
        from finetune.config import FinetuneConfig, load_config, merge_config
        from finetune.train import run_finetune
        from zoo.cli import start_backend

        base = load_config(config_file) if config_file else FinetuneConfig()
        overrides.update(_recommended_run_options(overrides, config_file, base.model))
        cfg = merge_config(base, overrides)  # validates every option
        _check_before_backend(cfg)
        start_backend()  # only now: a refused argument never waits for Keras
        run_finetune(cfg)
    except (ValueError, OSError, RuntimeError, KeyError) as error:
        root = click.get_current_context().find_root()
        if os.environ.get("KERAZOO_DEBUG") or (root.obj or {}).get("debug"):
            traceback.print_exc()
        raise click.ClickException(_one_line(error)) from None


# Keras starts inside the command, after the checks above (see zoo.cli.start_backend).
finetune_command.starts_backend = True
