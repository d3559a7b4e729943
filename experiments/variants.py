"""Measure the recipe choices of issue 10 at the study's small scale (MiniLM, batch 32, 40-step stages).

Three comparisons, each at equal compute and with the same seeds (default 1, 2, 3):

* SimCSE, one tower (2 x 80 steps): ``data.batching`` random vs length_bucketed x ``loss.simcse_form``
  one_sided vs interleaved, one ``jtcse ablate`` grid (OUT/simcse/results.md: mean +- std over seeds);
* JTCSE: for each ``data.batching``, two 40-step SimCSE towers per seed (seeds s and s + 1000, trained with
  that batching), then 40 twin steps with ``model.ca_mode`` side_all vs side_last (``jtcse ablate`` per
  seed). ``--results-dir`` (default experiments/results) receives variants.md, every cell of both
  comparisons on the 7 tasks (mean +- std over seeds), and variants.csv, every run.

It only runs ``jtcse train`` and ``jtcse ablate`` (``--dry-run`` prints the commands); ``--resume``
continues an interrupted measurement (finished runs are skipped). Usage::

    python experiments/variants.py --out runs/variants            # 36 runs, about 2 h on a 2-core CPU
    python experiments/variants.py --dry-run
"""

from __future__ import annotations

import argparse
import csv
import shlex
import subprocess
import sys
from pathlib import Path

from jtcse.benchmark import TASKS, fmt_mean_std, md_table, short_name
from jtcse.pipeline.ablate import RESULTS_CSV

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
            "simcse-minilm",
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
                    commands.append([*jtcse, "train", "simcse-minilm", *_sets([*extra, *tower]), *target])
            twin = [
                f"model.tower_a={root / 'tower_a'}",
                f"model.tower_b={root / 'tower_b'}",
                f"data.batching={batching}",
                f"train.max_steps={s}",
                "train.lr=5e-6",
            ]
            grid = ["--grid", "model.ca_mode=side_all,side_last", "--seeds", str(seed)]
            target = ["--output-dir", str(root / "ablate"), *tasks, *resume]
            commands.append([*jtcse, "ablate", "jtcse-minilm", *grid, *_sets([*extra, *twin]), *target])
            grids.append((batching, seed, root / "ablate"))
    return commands, grids


def _rows(csv_path: Path, method: str, batching: str | None, variant_key: str) -> list[dict[str, str]]:
    """The runs of one ``jtcse ablate`` results.csv, each tagged with its method, batching and variant."""
    with csv_path.open(encoding="utf-8") as fh:
        return [
            {
                **row,
                "method": method,
                "data.batching": batching or row["data.batching"],
                "variant": f"{variant_key}={row[variant_key]}",
            }
            for row in csv.DictReader(fh)
        ]


def collect(grids: list[tuple[str, int, Path]], out: Path) -> list[dict[str, str]]:
    """Every finished run of the measurement: the SimCSE grid, then each JTCSE grid."""
    rows = _rows(out / "simcse" / RESULTS_CSV, "SimCSE (one tower)", None, "loss.simcse_form")
    for batching, _seed, ablate_dir in grids:
        rows += _rows(ablate_dir / RESULTS_CSV, "JTCSE", batching, "model.ca_mode")
    return rows


def table(rows: list[dict[str, str]]) -> list[str]:
    """One line per (method, batching, variant): dev and every test task as mean +- std over seeds."""
    columns = ["dev_stsb", *TASKS, "avg"]
    cells: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for row in rows:
        cells.setdefault((row["method"], row["data.batching"], row["variant"]), []).append(row)
    body = []
    for (method, batching, variant), runs in cells.items():
        scores = [fmt_mean_std([float(r[c]) if r.get(c) else None for r in runs]) for c in columns]
        seeds = ",".join(sorted(r["seed"] for r in runs))
        body.append([method, batching, variant, *scores, seeds])
    head = [
        "method",
        "data.batching",
        "variant",
        "STS-B dev",
        *(short_name(t) for t in TASKS),
        "avg",
        "seeds",
    ]
    return md_table(head, body)


def summarize(grids: list[tuple[str, int, Path]], out: Path, results_dir: Path) -> Path:
    """``variants.md`` (the table) and ``variants.csv`` (every run) in ``results_dir``."""
    rows = collect(grids, out)
    results_dir.mkdir(parents=True, exist_ok=True)
    fields = ["method", "data.batching", "variant", "seed", "dev_stsb", *TASKS, "avg", "train_s", "eval_s"]
    with (results_dir / "variants.csv").open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fields, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    lines = [
        "# Issue 10 variants at the study's small scale",
        "",
        "all-MiniLM-L6-v2, wiki sentences, batch 32, STS-B dev every 40 steps (the best-dev state is the one "
        "saved and tested), the 7 STS test tasks as SimCSE's SentEval evaluation (Spearman x100), mean ± std "
        "over seeds. SimCSE: one tower, 160 steps. JTCSE: two 40-step SimCSE towers per seed (seeds s and "
        "s + 1000, trained with the row's batching), then 40 twin steps. Every run: variants.csv. Made by:",
        "",
        f"    python experiments/variants.py --out {out}",
        "",
        *table(rows),
    ]
    path = results_dir / "variants.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/variants"), help="where runs and tables go")
    parser.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3])
    parser.add_argument("--steps", type=int, default=40, help="S1 = S (the study's small scale: 40)")
    parser.add_argument(
        "--results-dir", type=Path, default=Path("experiments/results"), help="where the tables go"
    )
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
        print(f"variants: {summarize(grids, args.out, args.results_dir)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
