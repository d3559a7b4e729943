"""The sweep's figures, drawn by ``optuna.visualization.matplotlib`` from the study: the optimisation
history, the parameter importances, one slice plot per parameter, the parallel coordinates. PNG files under
``OUT/figures/``, each written atomically; a figure the trials cannot support yet is skipped (the report says
so) rather than failing the sweep."""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jtcse.fs import atomic_write

if TYPE_CHECKING:
    import optuna

FIGURES_DIR = "figures"


def draw_figures(
    study: optuna.Study, out: Path, keys: list[str], importances: dict[str, float]
) -> dict[str, str]:
    """``{name: path relative to out}`` of the figures drawn."""
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window (and no display on a server)
    import optuna
    from optuna.trial import TrialState
    from optuna.visualization import matplotlib as plots

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return {}
    wanted: dict[str, Callable[[], Any]] = {
        "history": lambda: plots.plot_optimization_history(study),
        "parallel_coordinates": lambda: plots.plot_parallel_coordinate(study),
    }
    if importances:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        wanted["importances"] = functools.partial(plots.plot_param_importances, study, evaluator=evaluator)
    for key in keys:
        wanted[f"slice_{key}"] = functools.partial(plots.plot_slice, study, params=[key])
    (out / FIGURES_DIR).mkdir(exist_ok=True)
    drawn = {}
    for name, draw in wanted.items():
        path = Path(FIGURES_DIR) / f"{name}.png"
        if _save(draw, out / path):
            drawn[name] = str(path)
    return drawn


def _save(draw: Callable[[], Any], target: Path) -> bool:
    import matplotlib.pyplot as plt

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Optuna's ExperimentalWarning on every plot
            axes = draw()
    except (ValueError, RuntimeError):  # too few trials or values for this figure
        plt.close("all")
        return False
    figure = (axes.flat[0] if hasattr(axes, "flat") else axes).figure
    figure.set_size_inches(8, 5)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    atomic_write(target, lambda fh: fh.write(buffer.getvalue()))
    return True
