"""``jtcse ablate CONFIG --grid key=v1,v2 [--grid ...] [--seeds 1,2] [--output-dir D] [--resume]``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jtcse.cli.options import add_config_options, positive_int

EPILOG = """\
examples:
  jtcse ablate jtcse-minilm --grid loss.ictm=0,1 --grid model.num_ca_layers=1,3 --seeds 1,2
  jtcse ablate jtcse-minilm --grid model.cross_attention=true,false --dev-only
  jtcse ablate simcse-minilm --grid model.dropout=0.1,0.05 --output-dir runs/drop --resume

Each grid point x seed trains into OUT/runs/<name>/ (name = its overrides and seed) and is evaluated on
STS-B dev (the best dev score of training) and the 7 STS test tasks. OUT/results.md and OUT/results.csv hold
one row per run and, in results.md, the mean +- std over seeds of every grid point. Grid keys are config keys
(see `jtcse configs show NAME`, e.g. loss.icnce, loss.icnce_ca, loss.ictm, model.num_ca_layers, model.ca_mode,
model.dropout, train.lr); seed and output_dir are set by --seeds and --output-dir. Values are split at commas.
--resume skips finished runs and continues an interrupted one from its checkpoint.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "ablate",
        help="train and evaluate a grid of config overrides x seeds; one results table",
        description="Run an ablation grid: the Cartesian product of --grid values, for each seed.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "config", help="the base training config: a packaged config's name (jtcse configs list) or a file"
    )
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a config key and the values it takes (repeatable; the runs are the Cartesian product)",
    )
    parser.add_argument(
        "--seeds",
        metavar="S1,S2",
        help="comma-separated seeds; every grid point runs once per seed (default: the config's seed)",
    )
    add_config_options(
        parser,
        set_help="override a config key for every run, e.g. --set train.max_steps=200 (repeatable)",
        output_dir_help="where runs and tables go (default: runs/ablate_<config name>)",
    )
    parser.add_argument(
        "--eval-tasks",
        nargs="+",
        metavar="TASK",
        help="test tasks to evaluate (default: all 7: STS12-16, STSBenchmark, SICKRelatedness)",
    )
    parser.add_argument("--dev-only", action="store_true", help="STS-B dev only, no test evaluation")
    parser.add_argument(
        "--resume", action="store_true", help="continue: skip finished runs, resume an interrupted one"
    )
    parser.add_argument(
        "--eval-batch-size",
        type=positive_int,
        default=64,
        help="sentences per batch in evaluation (default: 64)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="check the grid and list the runs; train nothing"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.configs import resolve_config
    from jtcse.pipeline.ablate import (
        command_line,
        parse_grid,
        parse_seeds,
        plan_ablation,
        resolve_eval_tasks,
        run_ablation,
    )

    seeds = parse_seeds(args.seeds) if args.seeds else None
    config = resolve_config(args.config)
    output_dir = args.output_dir or Path("runs") / f"ablate_{config.stem}"
    if not args.dry_run:  # before the first run: the results tables and the runs go there
        from jtcse.output_policy import check_output
        from jtcse.pipeline.ablate import RUNS_DIR
        from jtcse.pipeline.ablate_tables import RESULTS_CSV, RESULTS_MD

        ours = (RESULTS_CSV, RESULTS_MD, RUNS_DIR)
        check_output(output_dir, option="--output-dir", ours=ours, inputs={"CONFIG": config})
    if args.dry_run:
        resolve_eval_tasks(args.eval_tasks)
        planned = plan_ablation(config, parse_grid(args.grid), seeds, output_dir, args.overrides)
        for run in planned:
            print(f"{run.index}/{len(planned)}  {run.config.output_dir}")
        return 0
    result = run_ablation(
        config,
        args.grid,
        seeds=seeds,
        output_dir=output_dir,
        base_overrides=args.overrides,
        tasks=args.eval_tasks,
        dev_only=args.dev_only,
        resume=args.resume,
        eval_batch_size=args.eval_batch_size,
        command=command_line(),
    )
    print(result.results_md.read_text(encoding="utf-8"))
    return 130 if result.interrupted else 0
