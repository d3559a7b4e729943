"""How a sweep chooses and stops trials: the sampler (``--sampler``) and the pruner (``--pruner``)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Literal

from jtcse.errors import JtcseError
from jtcse.pipeline.sweep.space import Param, Scalar

if TYPE_CHECKING:
    import optuna

SamplerName = Literal["tpe", "random", "grid", "cmaes"]
SAMPLERS: tuple[SamplerName, ...] = ("tpe", "random", "grid", "cmaes")
PrunerName = Literal["median", "hyperband", "none"]
PRUNERS: tuple[PrunerName, ...] = ("median", "hyperband", "none")
# the median pruner compares a trial with those before it only once this many have finished
MEDIAN_STARTUP_TRIALS = 5


def grid_space(params: list[Param]) -> dict[str, list[Scalar]]:
    """Every value of every parameter, for ``--sampler grid``: choices, or a range with a step."""
    grid: dict[str, list[Scalar]] = {}
    for p in params:
        if p.kind == "categorical":
            grid[p.key] = list(p.choices)
            continue
        if p.step is None and p.kind == "float":
            raise JtcseError(f"--sampler grid: {p.key} is a continuous float; give it a step or choices")
        assert p.low is not None and p.high is not None
        step, count = p.step or 1, round((p.high - p.low) / (p.step or 1)) + 1
        values = [p.low + i * step for i in range(count) if p.low + i * step <= p.high + 1e-12]
        grid[p.key] = [int(v) for v in values] if p.kind == "int" else [float(v) for v in values]
    return grid


def grid_size(params: list[Param]) -> int:
    size = 1
    for values in grid_space(params).values():
        size *= len(values)
    return size


def distribution(p: Param) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution ``suggest`` draws ``p`` from."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if p.kind == "categorical":
        return CategoricalDistribution(list(p.choices))
    assert p.low is not None and p.high is not None
    if p.kind == "int":
        return IntDistribution(int(p.low), int(p.high), log=p.log, step=int(p.step or 1))
    return FloatDistribution(
        float(p.low), float(p.high), log=p.log, step=None if p.step is None else float(p.step)
    )


def check_same_space(study: optuna.Study, params: list[Param]) -> None:
    """A study continued or joined must search the same space: another one is refused in one line (Optuna
    would fail every trial that draws a changed parameter)."""
    wanted = {p.key: distribution(p) for p in params}
    for trial in study.get_trials(deepcopy=False):
        for key, used in trial.distributions.items():
            if key not in wanted or wanted[key] != used:
                now = "not searched now" if key not in wanted else f"now {wanted[key]}"
                raise JtcseError(
                    f"--study {study.study_name}: its trials searched {key} as {used}, {now}; "
                    "use the same space file to continue it, or another --study"
                )


def make_sampler(name: str, params: list[Param], seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    if name == "tpe":
        # constant_liar: a running trial counts as a poor result, so parallel workers spread out instead of
        # all proposing the point that looks best now
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        return _grid_sampler(grid_space(params), seed)
    if name == "cmaes":  # numbers only: Optuna samples a categorical key at random beside it
        if importlib.util.find_spec("cmaes") is None:  # Optuna's CMA-ES needs it: fail now, not in trial 0
            raise JtcseError(
                "--sampler cmaes: needs the cmaes package (pip install 'jtcse[sweep]')"
            ) from None
        return optuna.samplers.CmaEsSampler(seed=seed)
    raise JtcseError(f"--sampler {name}: choose one of {', '.join(SAMPLERS)}")


def _grid_sampler(grid: dict[str, list[Scalar]], seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler without its ``study.stop()`` after the last grid point, a call that only
        ``optimize()`` allows (``tell`` raises RuntimeError); the worker loop stops by counting trials."""

        def after_trial(self, *args: Any, **kwargs: Any) -> None:
            return None

    return GridSampler(grid, seed=seed)


def make_pruner(name: str, *, startup_trials: int = MEDIAN_STARTUP_TRIALS) -> optuna.pruners.BasePruner:
    """``median``: stop a trial whose dev score at step s is below the median of earlier trials' at s (after
    ``startup_trials`` finished ones); ``hyperband``: successive halving over the number of evaluations."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=startup_trials, n_min_trials=1)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise JtcseError(f"--pruner {name}: choose one of {', '.join(PRUNERS)}")
