"""``--confirm-seeds S1,S2,S3``: the best trial's config and the base config, each retrained with every seed,
and the mean and standard deviation of each: whether the sweep's gain outlives the seed it was found with.
Runs go to ``OUT/confirm/{best,base}-seed{S}`` through the pipeline runner (finished ones are skipped,
interrupted ones resumed). ``--confirm-eval sts7`` (the default) also evaluates each run's model on the 7 STS
test sets, the numbers one reports; the sweep itself never looks at them (unless ``--objective sts7``)."""

from __future__ import annotations

import json
from typing import Any

from jtcse.benchmark import fmt_mean_std, md_table, mean_std
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text
from jtcse.pipeline.ablate import parse_seeds as parse_seed_list
from jtcse.pipeline.runner import RunResult, Say, resolve_eval_tasks, stderr_say, train_and_evaluate
from jtcse.pipeline.sweep.objective import SweepSetup
from jtcse.pipeline.sweep.space import Scalar

CONFIRM_DIR = "confirm"
CONFIRM_MD = "confirm.md"
CONFIGS = ("best", "base")


def parse_seeds(text: str) -> list[int]:
    """``--confirm-seeds``: the seed-list rule of ``jtcse ablate --seeds``, and at least two (a spread)."""
    seeds = parse_seed_list(text, option="--confirm-seeds")
    if len(seeds) < 2:
        raise JtcseError(f"--confirm-seeds {text}: give at least two different seeds")
    return seeds


def confirm(
    setup: SweepSetup,
    best: dict[str, Scalar],
    seeds: list[int],
    *,
    tasks: list[str] | None = None,
    say: Say = stderr_say,
) -> dict[str, Any]:
    """Train best and base with each seed; write OUT/confirm.md and confirm.json; returns the JSON payload.
    ``tasks``: the STS test sets each model is evaluated on (None: all 7; []: STS-B dev only)."""
    wanted = [] if tasks == [] else resolve_eval_tasks(tasks)
    if setup.objective == "sts7" and not wanted:
        wanted = resolve_eval_tasks(None)  # the objective itself needs them
    results: dict[str, list[RunResult]] = {name: [] for name in CONFIGS}
    for seed in seeds:
        for name, values in (("best", best), ("base", {})):
            folder = setup.out / CONFIRM_DIR / f"{name}-seed{seed}"
            config = setup.run_config(values, output_dir=folder, seed=seed)
            result = train_and_evaluate(config, name=folder.name, tasks=wanted, dev_only=not wanted, say=say)
            if result is None:
                raise JtcseError(f"{folder}: interrupted; run the same command to continue")
            results[name].append(result)
            say(f"confirm {name} seed {seed}: {_summary(result)}")
    payload: dict[str, Any] = {"seeds": seeds, "objective": setup.objective, "params": best, "tasks": wanted}
    for name, runs in results.items():
        scores = [_objective(setup, r) for r in runs]
        mean, std = mean_std(scores)
        per_task = {task: [r.test.get(task) for r in runs] for task in [*wanted, "avg"]} if wanted else {}
        payload[name] = {
            "scores": scores,
            "mean": mean,
            "std": std,
            "dev": [r.dev_stsb for r in runs],
            "test": per_task,
            "seconds": [{"train": r.train_s, "eval": r.eval_s} for r in runs],
        }
    atomic_write_text(setup.out / CONFIRM_MD, "\n".join(_markdown(payload)) + "\n")
    atomic_write_text(setup.out / "confirm.json", json.dumps(payload, indent=2) + "\n")
    return payload


def _objective(setup: SweepSetup, result: RunResult) -> float | None:
    return result.dev_stsb if setup.objective == "stsb-dev" else result.test.get("avg")


def _summary(result: RunResult) -> str:
    dev = "-" if result.dev_stsb is None else f"{result.dev_stsb:.2f}"
    avg = result.test.get("avg")
    return f"STS-B dev {dev}" + ("" if avg is None else f", 7-task avg {avg:.2f}")


def _markdown(payload: dict[str, Any]) -> list[str]:
    """Per seed and mean ± std: the objective; then, with test tasks, each task's mean ± std."""
    seeds = payload["seeds"]
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    rows = [[n, *map(fmt, payload[n]["scores"]), fmt_mean_std(payload[n]["scores"])] for n in CONFIGS]
    md = [f"# Best vs base config over seeds ({payload['objective']})", ""]
    md += [*md_table(["config", *[f"seed {s}" for s in seeds], "mean ± std"], rows), ""]
    if payload["tasks"]:
        columns = [*payload["tasks"], "avg"]
        md += [f"## STS test sets (Spearman x100), mean ± std over seeds {', '.join(map(str, seeds))}", ""]
        rows = [[n, *[fmt_mean_std(payload[n]["test"][t]) for t in columns]] for n in CONFIGS]
        md += [*md_table(["config", *columns], rows), ""]
    return md
