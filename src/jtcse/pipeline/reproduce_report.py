"""``report.md`` and ``report.json`` of ``jtcse reproduce``: the paper's row, the measured row (mean ± std
over seeds), the gap per task, the seeds, the wall time of every stage and the environment."""

from __future__ import annotations

import json
import math
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

from jtcse.benchmark import TASKS, fmt_mean_std, fmt_score, fmt_seconds, md_table, mean_std, short_name
from jtcse.pipeline.reproduce import ReproduceResult

REPORT_MD = "report.md"
REPORT_JSON = "report.json"
COLUMNS = (*TASKS, "avg")


def measured_rows(result: ReproduceResult) -> dict[int, dict[str, float]]:
    """Seed -> the 7 test scores and ``avg`` of the recipe's result (its last, scored stage)."""
    return {seed: dict(runs[-1].test) for seed, runs in result.runs.items()}


def summary(result: ReproduceResult) -> dict[str, Any]:
    """Everything ``report.json`` holds."""
    recipe, options = result.options.recipe, result.options
    per_seed = measured_rows(result)
    stats = {c: mean_std([row.get(c) for row in per_seed.values()]) for c in COLUMNS}
    mean = {c: _finite(stats[c][0]) for c in COLUMNS}
    return {
        "recipe": recipe.name,
        "title": recipe.title,
        "command": options.command,
        "paper": {"source": recipe.source, "scores": recipe.paper},
        "measured": {
            "mean": mean,
            "std": {c: stats[c][1] for c in COLUMNS} if len(per_seed) > 1 else None,
            "per_seed": {
                str(seed): {c: _finite(row.get(c)) for c in COLUMNS} for seed, row in per_seed.items()
            },
        },
        "gap": {c: None if (m := mean[c]) is None else m - recipe.paper[c] for c in COLUMNS},
        "seeds": list(result.runs),
        "settings": {
            "backbone": result.backbone,
            "max_steps": options.max_steps,
            "overrides": options.overrides,
            "data_dir": str(result.data_dir),
            "configs": [str(options.configs_dir / spec.config) for spec in recipe.stages],
        },
        "seconds": {k: round(v, 2) for k, v in result.seconds.items()},
        "stages": [_stage_entry(seed, run) for seed, runs in result.runs.items() for run in runs],
        "deviations": [*recipe.deviations, *result.notes, *_short_run_notes(result)],
        "environment": environment(),
    }


def write_report(result: ReproduceResult) -> Path:
    """Write ``report.json`` and ``report.md`` into the output directory; return the markdown path."""
    from jtcse.fs import atomic_write_text

    out = result.options.output_dir
    out.mkdir(parents=True, exist_ok=True)
    data = summary(result)
    atomic_write_text(out / REPORT_JSON, json.dumps(data, indent=2) + "\n")
    atomic_write_text(out / REPORT_MD, "\n".join(_markdown(data)) + "\n")
    return out / REPORT_MD


def _markdown(data: dict[str, Any]) -> list[str]:
    head = ["row", *(short_name(c) for c in COLUMNS)]
    paper = data["paper"]["scores"]
    per_seed = data["measured"]["per_seed"]
    rows = [["paper", *(fmt_score(paper[c]) for c in COLUMNS)]]
    rows.append(
        [f"measured ({len(per_seed)} seed{'s' if len(per_seed) > 1 else ''})"]
        + [fmt_mean_std([row[c] for row in per_seed.values()]) for c in COLUMNS]
    )
    rows.append(["gap (measured - paper)", *(_signed(data["gap"][c]) for c in COLUMNS)])
    rows += [[f"seed {seed}", *(fmt_score(row[c]) for c in COLUMNS)] for seed, row in per_seed.items()]
    stage_rows = [
        [
            str(s["seed"]),
            s["stage"],
            str(s["steps"]),
            fmt_score(s["dev_stsb"]),
            fmt_seconds(s["train_s"]),
            fmt_seconds(s["eval_s"]),
            "yes" if s["skipped"] else "",
        ]
        for s in data["stages"]
    ]
    seconds = data["seconds"]
    env = data["environment"]
    return [
        f"# jtcse reproduce {data['recipe']}: {data['title']}",
        "",
        f"Command: `{data['command']}`",
        "",
        "## STS (Spearman x100, SentEval 'all' setting, test sets)",
        "",
        f"Paper: {data['paper']['source']}. Measured: the recipe's result evaluated as `jtcse eval sts` "
        "does; mean ± sample standard deviation over the seeds.",
        "",
        *md_table(head, rows),
        "",
        "## Stages",
        "",
        f"Data {fmt_seconds(seconds['data'])} ({data['settings']['data_dir']}), backbone "
        f"{fmt_seconds(seconds['backbone'])} (`{data['settings']['backbone']}`), all stages "
        f"{fmt_seconds(seconds['total'])} in this invocation. train = training wall time (with the in-loop "
        "dev evaluations), eval = test evaluation; skipped = finished by an earlier invocation.",
        "",
        *md_table(["seed", "stage", "steps", "dev", "train", "eval", "skipped"], stage_rows),
        "",
        "## Deviations from the paper",
        "",
        *(f"- {d}" for d in data["deviations"]),
        "",
        "## Environment",
        "",
        *(f"- {k}: {v}" for k, v in env.items()),
        "",
    ]


def _stage_entry(seed: int, run: Any) -> dict[str, Any]:
    return {
        "seed": seed,
        "stage": Path(run.output_dir).name,
        "output_dir": run.output_dir,
        "steps": run.steps,
        "dev_stsb": run.dev_stsb,
        "train_s": run.train_s,
        "eval_s": round(run.eval_s, 2),
        "skipped": run.skipped,
    }


def _short_run_notes(result: ReproduceResult) -> list[str]:
    options, notes = result.options, []
    if options.max_steps is not None:
        notes.append(f"a short run: {options.max_steps} optimizer steps per stage (--max-steps)")
    if options.backbone is not None:
        notes.append(f"backbone {options.backbone} instead of {options.recipe.backbone} (--backbone)")
    if options.overrides:
        notes.append("config overrides for every stage: " + ", ".join(f"`{o}`" for o in options.overrides))
    return notes


def environment() -> dict[str, Any]:
    """GPU, driver, CUDA, torch, transformers, Python, platform and the git commit of this checkout."""
    import torch
    import transformers

    from jtcse import __version__

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "gpu": gpu or "none (CPU)",
        "driver": _nvidia_driver() if gpu else None,
        "cuda": torch.version.cuda,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "jtcse": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": _git_commit(),
    }


def _nvidia_driver() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return None
    try:
        done = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else None


def _git_commit() -> str | None:
    """The commit of the checkout this package runs from (``+dirty`` with uncommitted changes); None for an
    installed copy."""
    repo = Path(__file__).resolve().parents[3]
    if shutil.which("git") is None or not (repo / ".git").exists():
        return None
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}+dirty" if dirty else head


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) else value


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"
