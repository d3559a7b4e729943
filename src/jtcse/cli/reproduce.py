"""``jtcse reproduce RECIPE``: a paper row end to end (data, backbone, training, evaluation, report)."""

from __future__ import annotations

import argparse
from pathlib import Path

from jtcse.cli.options import add_config_options, positive_int

EPILOG = """\
recipes:
  simcse-bert     unsupervised SimCSE-BERT-base (paper avg 76.25)
  jtcse-bert      JTCSE-BERT twin tower: two stage-1 towers, then the twin (79.70)
  jtcse-roberta   JTCSE-RoBERTa twin tower (79.95)
  jtcse-bert-d    JTCSE-BERT-D: the jtcse-bert stages, then one distilled student (79.89)

examples:
  jtcse reproduce jtcse-bert                       (a GPU and a network connection; hours)
  jtcse reproduce jtcse-bert --seeds 42,43,44      (mean and std over three seeds)
  jtcse reproduce jtcse-bert --backbone DIR --max-steps 2 --set train.batch_size=8   (offline smoke run)
  jtcse reproduce jtcse-bert --towers Pretrained_encoder/BERT/JTCSE_bert_pretrained_encoder_1 \
      Pretrained_encoder/BERT/JTCSE_bert_pretrained_encoder_2 --corpus data/Wiki_for_JTCSE.txt
      (stage 2 only, from the released RTT-augmented stage-1 towers and text: the most faithful run)

Writes OUT/report.md and OUT/report.json (paper row, measured row, gap per task, seeds, stage times,
environment). Rerunning the same command skips finished stages and resumes an interrupted one.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reproduce",
        help="run a paper recipe end to end and compare with the paper's row",
        description="Run a paper recipe end to end: data, backbone, training stages, evaluation, report.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", help="simcse-bert, jtcse-bert, jtcse-roberta or jtcse-bert-d")
    parser.add_argument("--seeds", default="42", help="comma-separated seeds (default 42, as the papers)")
    add_config_options(
        parser,
        set_help="override a config key in every stage (repeatable)",
        output_dir_help="where stages and report go (default runs/reproduce/RECIPE)",
    )
    parser.add_argument("--backbone", help="a local model directory (or hub id) instead of the recipe's")
    parser.add_argument(
        "--max-steps", type=positive_int, help="optimizer steps per stage (a short run, not the paper's)"
    )
    parser.add_argument("--data-dir", help="data directory with sts/ and unsup/ (default: the usual lookup)")
    parser.add_argument(
        "--towers",
        nargs=2,
        metavar=("DIR_A", "DIR_B"),
        help="skip stage 1: the twin starts from these towers (the released JTCSE pretrained encoders)",
    )
    parser.add_argument(
        "--corpus", help="the text stage 2 trains on (the official data/Wiki_for_JTCSE.txt; default wiki1m)"
    )
    parser.add_argument(
        "--configs", help="a folder with the recipes' config files (default: the packaged configs)"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    parser.add_argument(
        "--eval-batch-size", type=positive_int, default=64, help="sentences per encode batch (64)"
    )
    parser.add_argument("--allow-cpu", action="store_true", help="run a full recipe without a GPU anyway")
    parser.add_argument("--quiet", action="store_true", help="no training progress bars")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from jtcse.output_policy import check_output
    from jtcse.pipeline.ablate import command_line, parse_seeds
    from jtcse.pipeline.recipes import find_configs_dir, get_recipe
    from jtcse.pipeline.reproduce import TOWERS_DIR, ReproduceOptions, reproduce, seed_dir
    from jtcse.pipeline.reproduce_report import REPORT_JSON, REPORT_MD, write_report

    recipe = get_recipe(args.recipe)
    seeds = parse_seeds(args.seeds)
    output_dir = args.output_dir or Path("runs") / "reproduce" / recipe.name
    ours = (REPORT_JSON, REPORT_MD, TOWERS_DIR, *(seed_dir(seed) for seed in seeds))
    inputs = {"--backbone": args.backbone, "--corpus": args.corpus}
    inputs.update({f"--towers {tower}": tower for tower in args.towers or ()})
    holders = {"--data-dir": args.data_dir}
    check_output(
        output_dir, option="--output-dir", ours=ours, inputs=inputs, holders=holders
    )  # before any stage
    options = ReproduceOptions(
        recipe=recipe,
        seeds=seeds,
        output_dir=output_dir,
        configs_dir=find_configs_dir(args.configs),
        backbone=args.backbone,
        max_steps=args.max_steps,
        data_dir=args.data_dir,
        device=args.device,
        overrides=list(args.overrides),
        eval_batch_size=args.eval_batch_size,
        allow_cpu=args.allow_cpu,
        quiet=args.quiet,
        command=command_line(),
        towers=(args.towers[0], args.towers[1]) if args.towers else None,
        corpus=args.corpus,
    )
    report = write_report(reproduce(options))
    print(report.read_text(encoding="utf-8"))
    return 0
