"""``jtcse sweep CONFIG --space SPACE.toml [--trials N | --timeout S] [--storage URL] [--workers K] ...``
(docs/sweep.md). Light imports only: Optuna and torch load when the command runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from jtcse.cli.options import MAX_COUNT, MAX_THREADS, add_config_options, int_range, positive_int

# the sampler's seed: worker i of --workers uses SEED + i, and numpy's generators take seeds below 2**32
_sweep_seed = int_range(0, 2**31 - 1, what="a seed")

EPILOG = """\
examples:
  jtcse sweep configs/jtcse_minilm.toml --space experiments/sweep_space.toml --trials 40 --output-dir runs/s
  jtcse sweep cfg.toml --space space.toml --trials 40 --workers 4          # 4 local workers, cores split
  jtcse sweep cfg.toml --space space.toml --trials 40 --storage postgresql://user:pw@db/sweeps --study s1
                                                  # run the same line on other machines: they join the study
  jtcse sweep --report runs/sweep                 # sweep.md, sweep.json, figures, best.toml again

Each trial trains into OUT/trials/NNNN/ and reports STS-B dev at every eval.every steps to the pruner.
Rerunning the command continues the study; a study with N finished trials trains nothing more.
"""


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="search hyperparameters with Optuna (pruning, resumable, several workers/machines)",
        description="Search config keys with Optuna; one training run per trial.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "config",
        nargs="?",
        help="the base training config: a packaged name (jtcse configs list) or a TOML/YAML path",
    )
    parser.add_argument("--space", type=Path, help="the search space (TOML; docs/sweep.md)")
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--trials", type=positive_int, help="finished trials the study should hold")
    budget.add_argument("--timeout", type=positive_int, metavar="S", help="claim no trial after S seconds")
    parser.add_argument("--storage", help="SQLAlchemy URL of the study (default: sqlite in OUT/sweep.db)")
    parser.add_argument("--study", help="study name (default: the config file's name)")
    parser.add_argument("--workers", type=positive_int, default=1, help="local worker processes (default 1)")
    parser.add_argument("--sampler", choices=("tpe", "random", "grid", "cmaes"), default="tpe")
    parser.add_argument("--pruner", choices=("median", "hyperband", "none"), default="median")
    parser.add_argument(
        "--pruner-startup",
        type=int_range(0, MAX_COUNT),
        default=5,
        metavar="N",
        help="median pruner: prune only once N trials finished (default 5)",
    )
    parser.add_argument("--objective", choices=("stsb-dev", "sts7"), default="stsb-dev")
    parser.add_argument("--seed", type=_sweep_seed, help="the sampler's seed (worker i uses SEED + i)")
    parser.add_argument(
        "--heartbeat",
        type=positive_int,
        default=30,
        metavar="S",
        help="seconds between a trial's heartbeats; one silent 2x as long is failed and retried (default 30)",
    )
    parser.add_argument("--confirm-seeds", metavar="S1,S2,S3", help="retrain best and base with these seeds")
    parser.add_argument(
        "--confirm-eval",
        choices=("sts7", "stsb-dev"),
        default="sts7",
        help="what --confirm-seeds evaluates: the 7 STS test sets as well (default) or STS-B dev only",
    )
    parser.add_argument("--report", type=Path, metavar="OUT", help="redraw OUT's report from the storage")
    parser.add_argument(
        "--dry-run", action="store_true", help="check the config, space and storage; train nothing"
    )
    add_config_options(parser, output_dir_help="the sweep's folder (default: runs/sweep_<config name>)")
    # set by --workers K in the processes it starts
    parser.add_argument("--worker-index", type=int_range(0, MAX_THREADS), help=argparse.SUPPRESS)
    parser.add_argument("--worker-threads", type=int_range(0, MAX_THREADS), default=0, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.errors import JtcseError

    if args.report is not None:
        from jtcse.pipeline.sweep.run import redraw_report

        payload = redraw_report(args.report, args.storage)
        _finish(payload, args.report, args.storage)
        return 0
    if args.config is None or args.space is None:
        raise JtcseError("give CONFIG and --space SPACE.toml (or --report OUT)")
    options = _options(args)
    if args.dry_run:
        from jtcse.pipeline.sweep.run import dry_run

        print("\n".join(dry_run(options)))
        return 0
    if args.confirm_seeds:
        from jtcse.pipeline.sweep.confirm import parse_seeds

        parse_seeds(args.confirm_seeds)  # a typo fails now, not after the sweep
    from jtcse.pipeline.sweep.run import run_sweep

    report = run_sweep(options, _worker_argv(args, options))
    if report is None:  # a worker started by --workers: the parent reports
        return 0
    _finish(report, options.out, args.storage)
    if args.confirm_seeds and report["best"] is not None:
        from jtcse.pipeline.sweep.confirm import confirm, parse_seeds
        from jtcse.pipeline.sweep.run import prepare

        setup, _ = prepare(options)
        setup.threads = 0  # one run at a time now: the config's threads (all cores by default)
        tasks: list[str] | None = None if args.confirm_eval == "sts7" else []
        confirm(setup, report["best"]["params"], parse_seeds(args.confirm_seeds), tasks=tasks)
        print((options.out / "confirm.md").read_text(encoding="utf-8"))
    return 0


def _options(args: argparse.Namespace) -> Any:
    from jtcse.configs import resolve_config
    from jtcse.pipeline.sweep.run import SweepOptions, threads_per_worker

    threads = args.worker_threads or (threads_per_worker(args.workers) if args.workers > 1 else 0)
    config = resolve_config(args.config)  # a packaged config's name or a path
    return SweepOptions(
        config=config,
        space=args.space,
        out=args.output_dir or Path("runs") / f"sweep_{config.stem}",
        trials=args.trials,
        timeout_s=args.timeout,
        storage=args.storage,
        study=args.study,
        workers=args.workers,
        sampler=args.sampler,
        pruner=args.pruner,
        objective=args.objective,
        overrides=list(args.overrides),
        heartbeat_s=args.heartbeat,
        seed=args.seed,
        pruner_startup=args.pruner_startup,
        worker_index=args.worker_index,
        threads=threads,
    )


def _worker_argv(args: argparse.Namespace, options: Any) -> list[str]:
    """The command line of a local worker (spawn_local adds its ``--worker-index``): the same study, one
    worker, its share of the cores."""
    words = ["--verbose"] if args.verbose else []
    words += ["sweep", str(options.config), "--space", str(options.space), "--output-dir", str(options.out)]
    words += ["--sampler", options.sampler, "--pruner", options.pruner, "--objective", options.objective]
    words += ["--pruner-startup", str(options.pruner_startup), "--heartbeat", str(options.heartbeat_s)]
    words += ["--worker-threads", str(options.threads)]
    optional = {
        "--trials": options.trials,
        "--timeout": args.timeout,
        "--storage": options.storage,
        "--study": options.study,
        "--seed": options.seed,
    }
    words += [w for flag, value in optional.items() if value is not None for w in (flag, str(value))]
    return words + [w for item in options.overrides for w in ("--set", item)]


def _finish(payload: dict[str, Any], out: Path, storage: str | None) -> None:
    best = payload["best"]
    if best is None:
        print(f"jtcse sweep: no complete trial; report in {out / 'sweep.md'}")
    else:
        params = " ".join(f"{k}={v}" for k, v in sorted(best["params"].items()))
        print(f"jtcse sweep: best {best['value']:.2f} (trial {best['number']}): {params}")
        print(f"jtcse sweep: report {out / 'sweep.md'}; best config {out / 'best.toml'}")
    url = storage or payload["storage"]
    print(f"jtcse sweep: browse the study with: optuna-dashboard {url}")
