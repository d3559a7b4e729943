"""``jtcse train CONFIG [--set key=value ...] [--resume] [--output-dir DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

from jtcse.errors import JtcseError

EPILOG = """\
examples:
  jtcse train configs/simcse_minilm.toml
  jtcse train configs/simcse_minilm.toml --set train.lr=2e-5 --set seed=7 --output-dir runs/simcse_seed7
  jtcse train configs/jtcse_minilm.toml --set model.tower_a=runs/a --set model.tower_b=runs/b
  jtcse train --resume --output-dir runs/simcse_seed7      (continue from the last checkpoint)

CONFIG is TOML or YAML with top-level method/seed/output_dir and sections model, data, train, loss, eval
(see configs/*.toml). The resolved config is written to OUT/train_config.yaml; OUT holds the model
(loadable by `jtcse eval sts --model OUT` and jtcse.Encoder(OUT)), metrics.jsonl and checkpoint/.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train SimCSE (stage 1) or a JTCSE / TNCSE twin tower (stage 2)",
        description="Train sentence embeddings: method = simcse | jtcse | tncse.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "config",
        nargs="?",
        type=Path,
        help="TOML or YAML config (default: the built-in simcse defaults; optional with --resume)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set train.lr=2e-5 (repeatable)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint")
    parser.add_argument("--output-dir", type=Path, help="where the run goes (overrides output_dir)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.training.config import load_config
    from jtcse.training.trainer import load_for_resume, train

    if args.config is None and args.resume:
        if args.output_dir is None:
            raise JtcseError("train --resume: give the CONFIG file or --output-dir of the run to continue")
        config = load_for_resume(args.output_dir, args.overrides)
    else:
        overrides = list(args.overrides)
        if args.output_dir is not None:
            overrides.append(f"output_dir={args.output_dir}")
        config = load_config(args.config, overrides)
    result = train(config, resume=args.resume)
    return 0 if not result.stopped_early or result.step == config.train.stop_after else 130
