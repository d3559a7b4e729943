"""Ablation grids: train every point of a grid of config overrides, for each seed, and tabulate STS scores.

``jtcse ablate CONFIG --grid loss.ictm=0,1 --grid model.num_ca_layers=1,3 --seeds 1,2`` plans the Cartesian
product of the grid times the seeds (8 runs here), checks every point's config before anything trains, then
for each run:

1. trains it into ``OUT/runs/<name>/`` through the pipeline runner (:mod:`jtcse.pipeline.runner`; ``<name>``
   is built from the run's overrides and seed, e.g. ``loss.ictm-0.0_model.num_ca_layers-3_seed-1``);
2. takes its STS-B dev score (the best dev score of training, which also picked the saved model; evaluated
   afresh when ``eval.every = 0``) and evaluates the saved model on the 7 STS test tasks
   (:func:`jtcse.evaluation.sts.evaluate_sts`);
3. writes ``OUT/runs/<name>/ablation_result.json``, which marks the run finished.

After the runs (or after an interruption, with the runs finished so far) it writes ``OUT/results.csv`` (one
row per run) and ``OUT/results.md`` (that table plus mean +- sample standard deviation over the seeds of each
grid point).

Resuming (``--resume``): a run with a result file is skipped (its evaluation is redone only when other test
tasks are asked for); a run with a training checkpoint but no result continues with ``train(resume=True)``;
the rest start. A result file written under other settings (any config key except those the trainer lets
change on resume) is an error, not silently reused. Without ``--resume``, an output directory that already
holds runs of the plan is an error.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import shlex
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from jtcse.benchmark import fmt_score
from jtcse.errors import JtcseError
from jtcse.pipeline.ablate_tables import RESULTS_CSV as RESULTS_CSV  # re-exported: the file names
from jtcse.pipeline.ablate_tables import RESULTS_MD as RESULTS_MD
from jtcse.pipeline.ablate_tables import fmt_s, write_results
from jtcse.pipeline.runner import (
    RunResult,
    Stage,
    has_started,
    resolve_eval_tasks,
    run_stages,
    stderr_say,
)
from jtcse.training.config import Config, load_config, override_text, valid_keys

RUNS_DIR = "runs"

# Keys a grid may not vary, and what to use instead.
_RESERVED_GRID_KEYS = {
    "seed": "use --seeds",
    "output_dir": "every run gets its own folder under --output-dir",
}
_MAX_NAME_CHARS = 120

Say = Callable[[str], None]


# ---------------------------------------------------------------------------------------------- planning
@dataclass(frozen=True)
class GridAxis:
    """One ``--grid key=v1,v2`` argument: a config key and the values (as typed) it takes."""

    key: str
    values: tuple[str, ...]


def parse_grid(items: Sequence[str]) -> list[GridAxis]:
    """Parse ``key=v1,v2`` items; every problem is a one-line :class:`JtcseError` naming the item."""
    known = valid_keys()
    axes: list[GridAxis] = []
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise JtcseError(f"--grid {item}: expected key=v1,v2,..., e.g. --grid loss.ictm=0,1")
        if key in _RESERVED_GRID_KEYS:
            raise JtcseError(f"--grid {item}: '{key}' cannot be a grid key; {_RESERVED_GRID_KEYS[key]}")
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean '{close[0]}'?" if close else "jtcse configs show NAME lists the keys"
            raise JtcseError(f"--grid {item}: unknown config key '{key}' ({hint})")
        values = tuple(value.strip() for value in text.split(","))
        if any(not value for value in values):
            raise JtcseError(f"--grid {item}: empty value; give a comma-separated list, e.g. {key}=a,b")
        if any(axis.key == key for axis in axes):
            raise JtcseError(
                f"--grid {item}: '{key}' is already a grid key; list all its values in one --grid"
            )
        axes.append(GridAxis(key, values))
    return axes


def parse_seeds(text: str, option: str = "--seeds") -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` (distinct integers); errors name ``option``, the flag that gave them."""
    seeds: list[int] = []
    for part in text.split(","):
        try:
            seed = int(part.strip())
        except ValueError:
            raise JtcseError(
                f"{option} {text}: expected comma-separated integers, e.g. {option} 1,2,3"
            ) from None
        if seed in seeds:
            raise JtcseError(f"{option} {text}: seed {seed} is listed twice")
        seeds.append(seed)
    return seeds


@dataclass
class PlannedRun:
    """One grid point with one seed: its resolved config (output_dir set to its own folder)."""

    index: int  # 1-based position in the plan
    name: str
    point: dict[str, str]  # grid key -> canonical value, in grid order
    seed: int
    config: Config


def plan_ablation(
    config_path: str | Path,
    axes: Sequence[GridAxis],
    seeds: Sequence[int] | None,
    output_dir: str | Path,
    base_overrides: Sequence[str] = (),
) -> list[PlannedRun]:
    """Every (grid point, seed) with its validated config. Loads, but does not run, every config: a bad
    value fails here, before anything trains. ``seeds`` None = the config's own seed."""
    for item in base_overrides:
        key = item.partition("=")[0].strip()
        if any(axis.key == key for axis in axes):
            raise JtcseError(f"--set {item}: '{key}' is also a --grid key; give it in one place")
        if key == "output_dir":
            raise JtcseError(f"--set {item}: use --output-dir; each run gets its own folder under it")
    base = load_config(config_path, list(base_overrides))
    seed_list = list(seeds) if seeds else [base.seed]
    runs_root = Path(output_dir) / RUNS_DIR

    points: list[dict[str, str]] = []
    canonical_by_axis: list[list[str]] = []
    for axis in axes:
        canonical = []
        for value in axis.values:
            config = load_config(config_path, [*base_overrides, f"{axis.key}={value}"])
            text = override_text(config.get(axis.key))
            if text in canonical:
                raise JtcseError(
                    f"--grid {axis.key}={','.join(axis.values)}: the value {text} is listed twice"
                )
            canonical.append(text)
        canonical_by_axis.append(canonical)
    for combo in itertools.product(*canonical_by_axis):
        points.append({axis.key: value for axis, value in zip(axes, combo, strict=True)})

    planned: list[PlannedRun] = []
    for point in points:
        for seed in seed_list:
            name = run_name(point, seed)
            overrides = [*base_overrides, *(f"{k}={v}" for k, v in point.items())]
            overrides += [f"seed={seed}", f"output_dir={runs_root / name}"]
            try:
                config = load_config(config_path, overrides)
            except JtcseError as exc:
                where = ", ".join(f"{k}={v}" for k, v in point.items()) or "the base config"
                raise JtcseError(f"grid point {where}: {exc}") from exc
            planned.append(PlannedRun(len(planned) + 1, name, point, seed, config))
    return planned


def run_name(point: dict[str, str], seed: int) -> str:
    """A stable, filesystem-safe folder name: ``key-value`` parts sorted by key, then ``seed-N``.

    Characters other than letters, digits, ``.``, ``+`` and ``-`` become ``_``; when that loses
    information (or the name is long) a short hash of the exact overrides keeps names distinct.
    """
    parts, lossy = [], False
    for key in sorted(point):
        safe = re.sub(r"[^A-Za-z0-9.+-]", "_", point[key])
        lossy |= safe != point[key]
        parts.append(f"{key}-{safe}")
    parts.append(f"seed-{seed}")
    name = "_".join(parts)
    if lossy or len(name) > _MAX_NAME_CHARS:
        exact = json.dumps(sorted(point.items()))
        digest = hashlib.sha1(exact.encode("utf-8")).hexdigest()[:8]
        name = f"{name[: _MAX_NAME_CHARS - 9]}_{digest}"
    return name


# ---------------------------------------------------------------------------------------------- the grid
@dataclass
class AblationResult:
    runs: list[RunResult]  # finished runs, in plan order
    planned: int
    interrupted: bool
    results_md: Path
    results_csv: Path


def run_ablation(
    config_path: str | Path,
    grid: Sequence[str],
    *,
    seeds: Sequence[int] | None = None,
    output_dir: str | Path,
    base_overrides: Sequence[str] = (),
    tasks: Sequence[str] | None = None,
    dev_only: bool = False,
    resume: bool = False,
    eval_batch_size: int = 64,
    command: str | None = None,
    say: Say = stderr_say,
) -> AblationResult:
    """Plan, check, run (or skip / resume) and tabulate the grid; see the module docstring."""
    if dev_only and tasks:
        raise JtcseError("--dev-only and --eval-tasks: choose one (--dev-only evaluates no test task)")
    wanted = [] if dev_only else resolve_eval_tasks(tasks)
    axes = parse_grid(grid)
    planned = plan_ablation(config_path, axes, seeds, output_dir, base_overrides)
    out = Path(output_dir)
    if not resume:
        started = [p for p in planned if has_started(Path(p.config.output_dir))]
        if started:
            raise JtcseError(
                f"{out}: already holds runs of this grid (e.g. {started[0].name}); pass --resume to continue "
                "(finished runs are skipped), or choose another --output-dir"
            )
    out.mkdir(parents=True, exist_ok=True)
    header = _header(config_path, axes, planned, base_overrides, command)
    total = len(planned)

    def announce(index: int, stage: Stage) -> None:
        label = ", ".join(f"{k}={v}" for k, v in stage.point.items())
        what = f"{label}, seed {stage.config.seed}" if label else f"seed {stage.config.seed}"
        say(f"jtcse ablate: run {index}/{total}: {stage.name} ({what})")

    def finished_one(stage: Stage, result: RunResult) -> None:
        skipped = "finished earlier, skipped; " if result.skipped else ""
        say(f"  {stage.name}: {skipped}{_one_line(result)}")

    stages = [Stage(run.name, run.config, tuple(wanted), run.point) for run in planned]
    outcome = run_stages(
        stages,
        announce=announce,
        after=finished_one,
        dev_only=dev_only,
        eval_batch_size=eval_batch_size,
        say=say,
    )
    finished = outcome.results
    if outcome.interrupted:
        say(f"jtcse ablate: stopped during run {len(finished) + 1}/{total}; rerun with --resume to continue")
    md, csv_path = write_results(finished, [a.key for a in axes], out, header=header, planned=total)
    say(f"jtcse ablate: {len(finished)}/{total} runs finished; tables in {md} and {csv_path}")
    return AblationResult(finished, total, outcome.interrupted, md, csv_path)


def _one_line(result: RunResult) -> str:
    parts = [f"dev {fmt_score(result.dev_stsb)}"]
    if "avg" in result.test:
        parts.append(f"test avg {fmt_score(result.test['avg'])}")
    parts.append(f"train {fmt_s(result.train_s)}, eval {fmt_s(result.eval_s)}")
    return ", ".join(parts)


def _header(
    config_path: str | Path,
    axes: Sequence[GridAxis],
    planned: Sequence[PlannedRun],
    base_overrides: Sequence[str],
    command: str | None,
) -> list[str]:
    lines = [f"Config: `{config_path}`"]
    if base_overrides:
        lines.append(f"Overrides for every run: {', '.join(f'`{o}`' for o in base_overrides)}")
    grid = "; ".join(f"`{a.key}` = {', '.join(a.values)}" for a in axes) or "(none: the base config only)"
    seeds = sorted({p.seed for p in planned})
    lines.append(f"Grid: {grid}; seeds: {', '.join(map(str, seeds))}; {len(planned)} runs")
    if command:
        lines.append(f"Command: `{command}`")
    return lines


def command_line(argv: Sequence[str] | None = None) -> str:
    """The current command, shell-quoted, with the program shown as ``jtcse`` when run as the CLI."""
    args = list(sys.argv if argv is None else argv)
    if args and Path(args[0]).name in ("jtcse", "__main__.py"):
        args[0] = "jtcse"
    return " ".join(shlex.quote(a) for a in args)
