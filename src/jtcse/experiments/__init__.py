"""Experiments built on the training engine: ablation grids (:mod:`jtcse.experiments.ablate`)."""

from jtcse.experiments.ablate import (
    AblationResult,
    GridAxis,
    PlannedRun,
    RunResult,
    parse_grid,
    parse_seeds,
    plan_ablation,
    run_ablation,
    train_and_evaluate,
    write_results,
)

__all__ = [
    "AblationResult",
    "GridAxis",
    "PlannedRun",
    "RunResult",
    "parse_grid",
    "parse_seeds",
    "plan_ablation",
    "run_ablation",
    "train_and_evaluate",
    "write_results",
]
