"""``jtcse train CONFIG [--set key=value ...] [--resume] [--output-dir DIR]``."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from jtcse.cli.options import add_config_options
from jtcse.errors import JtcseError

if TYPE_CHECKING:
    from jtcse.training.config import Config

EPILOG = """\
examples:
  jtcse train simcse-minilm
  jtcse train simcse-minilm --set train.lr=2e-5 --set seed=7 --output-dir runs/simcse_seed7
  jtcse train jtcse-minilm --set model.tower_a=runs/a --set model.tower_b=runs/b
  jtcse train my_config.toml
  jtcse train --resume --output-dir runs/simcse_seed7      (continue from the last checkpoint)
  jtcse distill distill-minilm    (a student learns from a frozen teacher: method = distill)

CONFIG is a packaged config's name (`jtcse configs list`) or a TOML / YAML file with top-level
method/seed/output_dir and sections model, data, train, loss, eval (`jtcse configs show simcse-minilm`).
The resolved config is written to OUT/train_config.yaml; OUT holds the model (loadable by
`jtcse eval sts --model OUT` and jtcse.Encoder(OUT)), metrics.jsonl and checkpoint/.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train SimCSE (stage 1) or a JTCSE / TNCSE twin tower (stage 2)",
        description="Train sentence embeddings: method = simcse | jtcse | tncse.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(parser)
    parser.set_defaults(func=run)


def add_run_arguments(parser: argparse.ArgumentParser, *, method: str = "simcse") -> None:
    """CONFIG, --set, --resume, --output-dir: shared by every command that runs the trainer."""
    parser.add_argument(
        "config",
        nargs="?",
        help=f"a packaged config's name (jtcse configs list) or a TOML / YAML file (default: the built-in "
        f"{method} defaults; optional with --resume)",
    )
    add_config_options(parser)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")


def run(args: argparse.Namespace) -> int:
    return run_training(load_run_config(args), resume=args.resume)


def load_run_config(args: argparse.Namespace, *, command: str = "train", method: str | None = None) -> Config:
    """The config of ``add_run_arguments``' arguments. ``method``: the one method this command runs; a config
    file without ``method`` gets it, a config naming another is an error."""
    from jtcse.configs import resolve_config
    from jtcse.training.config import load_config, read_config_file
    from jtcse.training.trainer import load_for_resume

    if args.config is None and args.resume:
        if args.output_dir is None:
            raise JtcseError(
                f"{command} --resume: give the CONFIG file or --output-dir of the run to continue"
            )
        config = load_for_resume(args.output_dir, args.overrides)
    else:
        path = resolve_config(args.config) if args.config is not None else None
        overrides = list(args.overrides)
        if method is not None and (path is None or "method" not in read_config_file(path)):
            overrides.insert(0, f"method={method}")
        if args.output_dir is not None:
            overrides.append(f"output_dir={args.output_dir}")
        config = load_config(path, overrides)
    if method is not None and config.method != method:
        raise JtcseError(
            f"{args.config or 'config'}: method = {config.method!r}, but `jtcse {command}` runs method = "
            f"{method!r}; use `jtcse train` for {config.method}"
        )
    return config


def run_training(config: Config, *, resume: bool) -> int:
    """Train; exit code 0, or 130 when stopped early by Ctrl-C (a planned train.stop_after is a success)."""
    from jtcse.training.trainer import train

    result = train(config, resume=resume)
    return 0 if not result.stopped_early or result.step == config.train.stop_after else 130
