"""Measure the recipe choices of issue 10 at the study's small scale (MiniLM, batch 32, 40-step stages).

Three comparisons, each at equal compute and with the same seeds (default 1, 2, 3):

* SimCSE, one tower (2 x 80 steps): ``data.batching`` random vs length_bucketed x ``loss.simcse_form``
  one_sided vs interleaved, one ``jtcse ablate`` grid (OUT/simcse/results.md: mean +- std over seeds);
* JTCSE: for each ``data.batching``, two 40-step SimCSE towers per seed (seeds s and s + 1000, trained with
  that batching), then 40 twin steps with ``model.ca_mode`` side_all vs side_last (``jtcse ablate`` per
  seed); OUT/variants.md gathers the 7-task average (mean +- std over seeds) of every JTCSE cell and
  links the SimCSE table.

It only runs ``jtcse train`` and ``jtcse ablate`` (``--dry-run`` prints the commands); ``--resume``
continues an interrupted measurement (finished runs are skipped). Usage::

    python experiments/variants.py --out runs/variants            # about 3 h on a 2-core CPU (estimated)
    python experiments/variants.py --dry-run
"""

from __future__ import annotations

import argparse
import csv
import shlex
import statistics
import subprocess
import sys
from pathlib import Path

BATCHINGS = ("random", "length_bucketed")
COMMON = [
    "data.corpus=wiki",
    "data.max_sentences=0",
    "data.max_len=32",
    "train.batch_size=32",
    "train.save_every=20",
    "eval.every=40",
    "train.progress=false",
]
TOWER_B_SEED_OFFSET = 1000  # as experiments/study.py


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def plan(args: argparse.Namespace) -> tuple[list[list[str]], list[tuple[str, int, Path]]]:
    """The commands in order, and (batching, seed, ablate dir) of every JTCSE grid."""
    jtcse = [sys.executable, "-m", "jtcse"]
    extra = [*COMMON, *args.set]
    tasks = ["--eval-tasks", *args.eval_tasks] if args.eval_tasks else []
    resume = ["--resume"] if args.resume else []
    seeds = ",".join(str(s) for s in args.seeds)
    s1 = s = args.steps
    commands = [
        [
            *jtcse,
            "ablate",
            "configs/simcse_minilm.toml",
            "--grid",
            f"data.batching={','.join(BATCHINGS)}",
            "--grid",
            "loss.simcse_form=one_sided,interleaved",
            "--seeds",
            seeds,
            *_sets([*extra, f"train.max_steps={2 * (s1 + s)}"]),
            "--output-dir",
            str(args.out / "simcse"),
            *tasks,
            *resume,
        ]
    ]
    grids = []
    for batching in BATCHINGS:
        for seed in args.seeds:
            root = args.out / "jtcse" / batching / f"seed-{seed}"
            towers = {"a": seed, "b": seed + TOWER_B_SEED_OFFSET}
            for name, tower_seed in towers.items():
                if not (args.resume and (root / f"tower_{name}" / "jtcse.json").exists()):
                    tower = [f"seed={tower_seed}", f"data.batching={batching}", f"train.max_steps={s1}"]
                    target = ["--output-dir", str(root / f"tower_{name}")]
                    commands.append(
                        [*jtcse, "train", "configs/simcse_minilm.toml", *_sets([*extra, *tower]), *target]
                    )
            twin = [
                f"model.tower_a={root / 'tower_a'}",
                f"model.tower_b={root / 'tower_b'}",
                f"data.batching={batching}",
                f"train.max_steps={s}",
                "train.lr=5e-6",
            ]
            grid = ["--grid", "model.ca_mode=side_all,side_last", "--seeds", str(seed)]
            target = ["--output-dir", str(root / "ablate"), *tasks, *resume]
            commands.append(
                [*jtcse, "ablate", "configs/jtcse_minilm.toml", *grid, *_sets([*extra, *twin]), *target]
            )
            grids.append((batching, seed, root / "ablate"))
    return commands, grids


def summarize(grids: list[tuple[str, int, Path]], out: Path) -> Path:
    """OUT/variants.md: the JTCSE cells' average over the test tasks, mean +- std over seeds."""
    cells: dict[tuple[str, str], list[float]] = {}
    for batching, _seed, ablate_dir in grids:
        with (ablate_dir / "results.csv").open(encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                if row.get("avg"):
                    cells.setdefault((batching, row["model.ca_mode"]), []).append(float(row["avg"]))
    lines = [
        "# Issue 10 variants at small scale",
        "",
        "SimCSE (one tower), data.batching x loss.simcse_form: [simcse/results.md](simcse/results.md)",
        "",
        "JTCSE, average of the test tasks (mean +- std over seeds):",
        "",
        "| data.batching | model.ca_mode | avg | seeds |",
        "|---|---|---|---|",
    ]
    for (batching, mode), values in sorted(cells.items()):
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(f"| {batching} | {mode} | {statistics.mean(values):.2f} +- {std:.2f} | {len(values)} |")
    path = out / "variants.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/variants"), help="where runs and tables go")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=40, help="S1 = S (the study's small scale: 40)")
    parser.add_argument("--eval-tasks", nargs="+", help="test tasks (default: all 7)")
    parser.add_argument("--set", action="append", default=[], help="KEY=VALUE for every run (repeatable)")
    parser.add_argument("--resume", action="store_true", help="skip finished runs")
    parser.add_argument("--dry-run", action="store_true", help="print the commands; run nothing")
    args = parser.parse_args(argv)
    commands, grids = plan(args)
    for command in commands:
        print(shlex.join(command), flush=True)
        if not args.dry_run and subprocess.run(command, check=False).returncode != 0:
            return 1
    if not args.dry_run:
        print(f"variants: {summarize(grids, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
