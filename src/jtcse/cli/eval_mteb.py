"""``jtcse eval mteb --model M --tasks T [T ...]``: mteb tasks through mteb's own evaluator.

The work is done by :func:`jtcse.evaluation.mteb.run_mteb`; this module holds the flags and the printout.
"""

from __future__ import annotations

import argparse

from jtcse.cli.options import add_model_options, load_encoder


def add_mteb_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``jtcse eval mteb``."""
    from jtcse.benchmark import MTEB_LOCAL_TASKS as LOCAL_TASKS

    add_model_options(parser)
    parser.add_argument(
        "--tasks",
        nargs="+",
        required=True,
        metavar="TASK",
        help=(
            "mteb task names (fetched from the hub: needs network), local:TASK for an STS task built from "
            f"the local data dir ({', '.join(LOCAL_TASKS)}), or tsv:FILE with "
            "sentence1<TAB>sentence2<TAB>score lines"
        ),
    )
    parser.add_argument(
        "--output-dir", default="mteb-results", help="mteb's result cache (default: mteb-results)"
    )
    parser.add_argument(
        "--data-dir", help="data directory for local: tasks (default: $JTCSE_DATA, ../shared/data)"
    )
    parser.add_argument("--overwrite", action="store_true", help="re-run tasks that already have results")


def run_mteb_command(args: argparse.Namespace) -> int:
    """Check the tasks, load the model, run; print a score table and where mteb's JSON went."""
    from jtcse.evaluation.hub import settle_offline
    from jtcse.evaluation.mteb import model_name_for, resolve_tasks, run_mteb
    from jtcse.output_policy import check_output

    if any(not name.startswith(("local:", "tsv:")) for name in args.tasks):
        settle_offline(announce="mteb")  # hub tasks: one probe, not ~23 s of retries when unreachable
    tasks = resolve_tasks(args.tasks, data_dir=args.data_dir)  # before loading a model
    inputs, holders = {"--model": args.model}, {"--data-dir": args.data_dir}
    check_output(args.output_dir, option="--output-dir", ours=("results",), inputs=inputs, holders=holders)
    encoder = load_encoder(args)
    run = run_mteb(
        encoder,
        tasks,
        args.output_dir,
        batch_size=args.batch_size,
        overwrite=args.overwrite,
        show_progress=True,
        model_name=model_name_for(args.model),
    )
    print(f"model {run.model_name} (revision {run.revision})")
    print(run.format_table())
    for task, path in run.files.items():
        print(f"{task}: {path}")
    return 0
