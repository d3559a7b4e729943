"""Ablation grids: train every point of a grid of config overrides, for each seed, and tabulate STS scores.

``jtcse ablate CONFIG --grid loss.ictm=0,1 --grid model.num_ca_layers=1,3 --seeds 1,2`` plans the Cartesian
product of the grid times the seeds (8 runs here), checks every point's config before anything trains, then
for each run:

1. trains it into ``OUT/runs/<name>/`` with :func:`jtcse.training.trainer.train` (``<name>`` is built from the
   run's overrides and seed, e.g. ``loss.ictm-0.0_model.num_ca_layers-3_seed-1``);
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

import csv
import hashlib
import io
import itertools
import json
import math
import re
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError
from jtcse.training.config import Config, load_config, valid_keys

RUNS_DIR = "runs"
RESULT_FILE = "ablation_result.json"
RESULTS_MD = "results.md"
RESULTS_CSV = "results.csv"
RESULT_FORMAT_VERSION = 1

# Keys a grid may not vary, and what to use instead.
_RESERVED_GRID_KEYS = {
    "seed": "use --seeds",
    "output_dir": "every run gets its own folder under --output-dir",
}
_MAX_NAME_CHARS = 120

Say = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


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
            hint = f"did you mean '{close[0]}'?" if close else "see configs/*.toml for the keys"
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


def parse_seeds(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]`` (distinct integers)."""
    seeds: list[int] = []
    for part in text.split(","):
        try:
            seed = int(part.strip())
        except ValueError:
            raise JtcseError(
                f"--seeds {text}: expected comma-separated integers, e.g. --seeds 1,2,3"
            ) from None
        if seed in seeds:
            raise JtcseError(f"--seeds {text}: seed {seed} is listed twice")
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
            text = _canonical(config.get(axis.key))
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


def _canonical(value: Any) -> str:
    """The text of a resolved config value, identical for equal values (``0.10`` and ``0.1``)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


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


# ---------------------------------------------------------------------------------------------- one run
@dataclass
class RunResult:
    """What ``ablation_result.json`` holds for one finished run."""

    name: str
    point: dict[str, str]
    seed: int
    output_dir: str
    dev_stsb: float | None
    dev_source: str  # "training" (best in-loop STS-B dev), "evaluated" (eval.every = 0) or "none"
    tasks: list[str]  # test tasks evaluated (empty with --dev-only)
    test: dict[str, float]  # task -> Spearman x100, plus "avg" when any task was evaluated
    train_s: float | None  # training wall time across starts and resumes (from metrics.jsonl)
    eval_s: float
    steps: int
    best_step: int | None
    config: dict[str, Any] = field(default_factory=dict)  # the flat resolved config
    skipped: bool = field(default=False, compare=False)  # finished in an earlier invocation

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        payload.pop("skipped")
        payload["format_version"] = RESULT_FORMAT_VERSION
        return _json_safe(payload)

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> RunResult:
        payload = {k: v for k, v in payload.items() if k != "format_version"}
        payload["test"] = {k: (math.nan if v is None else v) for k, v in payload.get("test", {}).items()}
        return cls(**payload)


def train_and_evaluate(
    config: Config,
    *,
    name: str,
    point: dict[str, str] | None = None,
    tasks: Sequence[str] | None = None,
    dev_only: bool = False,
    dev: bool = True,
    eval_batch_size: int = 64,
    keep_checkpoint: bool = True,
    say: Say = _stderr,
) -> RunResult | None:
    """Train ``config`` into ``config.output_dir`` (skipping or resuming as the folder says), evaluate the
    saved model, and write the result file. Returns None when training stopped early (Ctrl-C,
    ``train.stop_after``): the run is not finished and a later call resumes it.

    ``dev``: with ``eval.every = 0`` (no dev score from training), evaluate STS-B dev afterwards; False
    leaves it empty. ``keep_checkpoint`` False deletes ``checkpoint/`` once the result file is written (the
    result file alone marks the run finished; the checkpoint only serves resuming)."""
    from jtcse.training.checkpoint import checkpoint_path
    from jtcse.training.trainer import train

    out = Path(config.output_dir)
    wanted = [] if dev_only else resolve_eval_tasks(tasks)
    fingerprint = _fingerprint(config)
    stored = _read_result(out)
    if stored is not None:
        _check_same_settings(out, stored, fingerprint)
        stored.output_dir = str(out)  # the folder may have moved since
        if stored.tasks == wanted:
            stored.skipped = True
            return stored
        say(f"  {name}: finished earlier; evaluating it on {' '.join(wanted) or 'STS-B dev only'}")
        result = _evaluate(stored, config, wanted, eval_batch_size, dev=dev)
        _write_result(out, result)
        return result

    resume = checkpoint_path(out).is_file()
    if resume:
        say(f"  {name}: continuing from its checkpoint")
    outcome = train(config, resume=resume)
    if outcome.stopped_early:
        return None
    result = RunResult(
        name=name,
        point=dict(point or {}),
        seed=config.seed,
        output_dir=str(out),
        dev_stsb=outcome.best_dev,
        dev_source="training" if outcome.best_dev is not None else "none",
        tasks=[],
        test={},
        train_s=_training_seconds(out),
        eval_s=0.0,
        steps=outcome.step,
        best_step=outcome.best_step,
        config=fingerprint,
    )
    result = _evaluate(result, config, wanted, eval_batch_size, dev=dev)
    _write_result(out, result)
    if not keep_checkpoint:
        import shutil

        shutil.rmtree(checkpoint_path(out).parent, ignore_errors=True)
    return result


def _evaluate(
    result: RunResult, config: Config, tasks: list[str], batch_size: int, *, dev: bool = True
) -> RunResult:
    from jtcse.encoder import Encoder
    from jtcse.evaluation.sts import evaluate_sts
    from jtcse.model.format import is_jtcse_dir

    out = Path(result.output_dir)
    if not is_jtcse_dir(out):
        raise JtcseError(
            f"{out}: training saved no model (the STS-B dev score was never finite); see {out}/metrics.jsonl"
        )
    started = time.perf_counter()
    result.tasks = list(tasks)
    need_dev = result.dev_stsb is None and dev
    if not tasks and not need_dev:
        result.test, result.eval_s = {}, 0.0
        return result
    device = None if config.train.device == "auto" else config.train.device
    encoder = Encoder(out, device=device, batch_size=batch_size)
    data_dir = config.data.data_dir or None
    if need_dev:
        dev = evaluate_sts(
            encoder, data_dir=data_dir, tasks=["STSBenchmark"], mode="dev", show_progress=False
        )
        result.dev_stsb, result.dev_source = dev.scores["STSBenchmark"], "evaluated"
    if tasks:
        report = evaluate_sts(
            encoder, data_dir=data_dir, tasks=tasks, batch_size=batch_size, show_progress=False
        )
        result.test = dict(report.scores)
    else:
        result.test = {}
    result.eval_s = time.perf_counter() - started
    return result


def _fingerprint(config: Config) -> dict[str, Any]:
    """The flat config without the keys a resumed run may change (paths, threads, logging)."""
    from jtcse.training.config import RESUMABLE_CHANGES

    return {k: v for k, v in config.flat().items() if k not in RESUMABLE_CHANGES}


def _check_same_settings(out: Path, stored: RunResult, fingerprint: dict[str, Any]) -> None:
    changed = [k for k in fingerprint if stored.config.get(k) != fingerprint[k]]
    if changed:
        diffs = "; ".join(f"{k} = {fingerprint[k]!r} (then: {stored.config.get(k)!r})" for k in changed[:4])
        raise JtcseError(
            f"{out / RESULT_FILE}: this run was trained with other settings ({diffs}); "
            "choose another --output-dir or delete that run folder"
        )


def _read_result(out: Path) -> RunResult | None:
    path = out / RESULT_FILE
    if not path.is_file():
        return None
    try:
        return RunResult.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as exc:
        raise JtcseError(
            f"{path}: unreadable result file ({exc}); delete it to evaluate the run again"
        ) from exc


def _write_result(out: Path, result: RunResult) -> None:
    from jtcse.fs import atomic_write_text

    atomic_write_text(out / RESULT_FILE, json.dumps(result.to_json(), indent=2) + "\n")


def _training_seconds(out: Path) -> float | None:
    from jtcse.training.metrics import METRICS_FILE, read_metrics

    path = out / METRICS_FILE
    if not path.is_file():
        return None
    times = [r["elapsed_s"] for r in read_metrics(path) if isinstance(r.get("elapsed_s"), (int, float))]
    return float(max(times)) if times else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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
    say: Say = _stderr,
) -> AblationResult:
    """Plan, check, run (or skip / resume) and tabulate the grid; see the module docstring."""
    if dev_only and tasks:
        raise JtcseError("--dev-only and --eval-tasks: choose one (--dev-only evaluates no test task)")
    wanted = [] if dev_only else resolve_eval_tasks(tasks)
    axes = parse_grid(grid)
    planned = plan_ablation(config_path, axes, seeds, output_dir, base_overrides)
    out = Path(output_dir)
    if not resume:
        started = [p for p in planned if _has_started(Path(p.config.output_dir))]
        if started:
            raise JtcseError(
                f"{out}: already holds runs of this grid (e.g. {started[0].name}); pass --resume to continue "
                "(finished runs are skipped), or choose another --output-dir"
            )
    out.mkdir(parents=True, exist_ok=True)
    header = _header(config_path, axes, planned, base_overrides, command)

    finished: list[RunResult] = []
    interrupted = False
    total = len(planned)
    for run in planned:
        label = ", ".join(f"{k}={v}" for k, v in run.point.items())
        what = f"{label}, seed {run.seed}" if label else f"seed {run.seed}"
        say(f"jtcse ablate: run {run.index}/{total}: {run.name} ({what})")
        result = train_and_evaluate(
            run.config,
            name=run.name,
            point=run.point,
            tasks=wanted or None,
            dev_only=dev_only,
            eval_batch_size=eval_batch_size,
            say=say,
        )
        if result is None:
            interrupted = True
            say(f"jtcse ablate: stopped during run {run.index}/{total}; rerun with --resume to continue")
            break
        finished.append(result)
        say(f"  {run.name}: {'finished earlier, skipped; ' if result.skipped else ''}{_one_line(result)}")
    md, csv_path = write_results(finished, [a.key for a in axes], out, header=header, planned=total)
    say(f"jtcse ablate: {len(finished)}/{total} runs finished; tables in {md} and {csv_path}")
    return AblationResult(finished, total, interrupted, md, csv_path)


def resolve_eval_tasks(tasks: Sequence[str] | None) -> list[str]:
    """The canonical test tasks (all 7 when None); an unknown name is an error naming ``--eval-tasks``."""
    from jtcse.evaluation.sts import resolve_tasks

    try:
        return resolve_tasks(tasks, "test")
    except JtcseError as exc:
        raise JtcseError(str(exc).replace("--tasks", "--eval-tasks", 1)) from exc


def _has_started(run_dir: Path) -> bool:
    from jtcse.training.checkpoint import checkpoint_path

    return (run_dir / RESULT_FILE).is_file() or checkpoint_path(run_dir).is_file()


def _one_line(result: RunResult) -> str:
    parts = [f"dev {_fmt(result.dev_stsb)}"]
    if "avg" in result.test:
        parts.append(f"test avg {_fmt(result.test['avg'])}")
    parts.append(f"train {_fmt_s(result.train_s)}, eval {_fmt_s(result.eval_s)}")
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


# ---------------------------------------------------------------------------------------------- tables
def write_results(
    runs: Sequence[RunResult],
    grid_keys: Sequence[str],
    output_dir: str | Path,
    *,
    header: Sequence[str] = (),
    planned: int | None = None,
) -> tuple[Path, Path]:
    """``results.csv`` (one row per run) and ``results.md`` (runs table + mean +- std over seeds)."""
    from jtcse.evaluation.sts import TASKS
    from jtcse.fs import atomic_write_text

    out = Path(output_dir)
    evaluated = {task for r in runs for task in r.tasks}
    tasks = [task for task in TASKS if task in evaluated]
    score_columns = ["dev_stsb", *tasks, *(["avg"] if tasks else [])]

    def scores(r: RunResult) -> list[float | None]:
        return [r.dev_stsb, *(r.test.get(t) for t in tasks), *([r.test.get("avg")] if tasks else [])]

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["run", *grid_keys, "seed", *score_columns, "train_s", "eval_s", "steps", "best_step"])
    for r in runs:
        writer.writerow(
            [
                r.name,
                *(r.point.get(k, "") for k in grid_keys),
                r.seed,
                *(_csv_number(v) for v in scores(r)),
                _csv_number(r.train_s),
                _csv_number(r.eval_s),
                r.steps,
                "" if r.best_step is None else r.best_step,
            ]
        )
    csv_path = out / RESULTS_CSV
    atomic_write_text(csv_path, buffer.getvalue())

    short = [_SHORT_TASK.get(c, c) for c in score_columns]
    lines = ["# Ablation results", ""]
    lines += [f"{line}  " for line in header]
    if planned is not None and planned != len(runs):
        lines.append(
            f"**{len(runs)} of {planned} runs finished**; rerun with `--resume` to complete the grid.  "
        )
    lines += [
        "",
        "Scores: Spearman x100 of cosine similarities. dev = STS-B dev (best during training, which chose "
        "the saved model); test tasks as SimCSE's SentEval evaluation; avg = mean of the test tasks. "
        "train = training wall time (with the in-loop dev evaluations), eval = test evaluation time.",
        "",
        "## Runs",
        "",
    ]
    head = ["run", *grid_keys, "seed", *short, "train", "eval"]
    rows = [
        [
            f"`{r.name}`",
            *(r.point.get(k, "") for k in grid_keys),
            str(r.seed),
            *(_fmt(v) for v in scores(r)),
            _fmt_s(r.train_s),
            _fmt_s(r.eval_s),
        ]
        for r in runs
    ]
    lines += _md_table(head, rows)
    lines += ["", "## Mean ± std over seeds", ""]
    lines.append("std is the sample standard deviation (n - 1); with one seed only the mean is shown.")
    lines.append("")
    summary_rows = []
    for point_key, group in _group_by_point(runs, grid_keys):
        columns = list(zip(*(scores(r) for r in group), strict=True)) if group else []
        summary_rows.append(
            [
                *point_key,
                ", ".join(str(r.seed) for r in group),
                *(_mean_std([v for v in column if v is not None]) for column in columns),
            ]
        )
    lines += _md_table([*grid_keys, "seeds", *short], summary_rows)
    md_path = out / RESULTS_MD
    atomic_write_text(md_path, "\n".join(lines) + "\n")
    return md_path, csv_path


_SHORT_TASK = {"STSBenchmark": "STS-B", "SICKRelatedness": "SICK-R", "dev_stsb": "dev"}


def _group_by_point(
    runs: Sequence[RunResult], grid_keys: Sequence[str]
) -> list[tuple[tuple[str, ...], list[RunResult]]]:
    groups: dict[tuple[str, ...], list[RunResult]] = {}
    for r in runs:
        groups.setdefault(tuple(r.point.get(k, "") for k in grid_keys), []).append(r)
    return list(groups.items())


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for fewer than two values); NaN values are dropped."""
    finite = [v for v in values if v is not None and not math.isnan(v)]
    if not finite:
        return math.nan, None
    mean = sum(finite) / len(finite)
    if len(finite) < 2:
        return mean, None
    return mean, math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))


def _mean_std(values: Sequence[float]) -> str:
    mean, std = mean_std(values)
    return _fmt(mean) if std is None else f"{_fmt(mean)} ± {std:.2f}"


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.2f}"


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}min"


def _csv_number(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def command_line(argv: Sequence[str] | None = None) -> str:
    """The current command, shell-quoted, with the program shown as ``jtcse`` when run as the CLI."""
    args = list(sys.argv if argv is None else argv)
    if args and Path(args[0]).name in ("jtcse", "__main__.py"):
        args[0] = "jtcse"
    return " ".join(shlex.quote(a) for a in args)
