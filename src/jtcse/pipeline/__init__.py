"""Pipelines built on the training engine: the one runner that trains stages and evaluates them
(:mod:`.runner`), ablation grids (:mod:`.ablate`), the paper recipes of ``jtcse reproduce`` (:mod:`.recipes`,
:mod:`.reproduce`) and the equal-compute study of ``experiments/study.py`` (:mod:`.study`).

(The top-level ``experiments/`` folder holds the study's script and its committed results; this package holds
the code.)
"""

from jtcse.pipeline.ablate import (
    AblationResult,
    GridAxis,
    PlannedRun,
    parse_grid,
    parse_seeds,
    plan_ablation,
    run_ablation,
    write_results,
)
from jtcse.pipeline.runner import RunResult, Stage, run_stages, train_and_evaluate

__all__ = [
    "AblationResult",
    "GridAxis",
    "PlannedRun",
    "RunResult",
    "Stage",
    "parse_grid",
    "parse_seeds",
    "plan_ablation",
    "run_ablation",
    "run_stages",
    "train_and_evaluate",
    "write_results",
]
