"""The sweep's progress: one line per finished trial (number, parameters, value or where it was pruned, best
so far, how many are finished and the time left)."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

from jtcse.benchmark import fmt_seconds

if TYPE_CHECKING:
    import optuna


def fmt_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def fmt_params(params: dict[str, object]) -> str:
    return " ".join(f"{k}={fmt_value(v)}" for k, v in sorted(params.items()))


def duration_s(trial: optuna.trial.FrozenTrial) -> float | None:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return None
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def outcome(trial: optuna.trial.FrozenTrial) -> str:
    """``71.23``, ``pruned at step 250`` or ``failed: <error>``."""
    from optuna.trial import TrialState

    if trial.state == TrialState.COMPLETE:
        return f"{trial.value:.2f}" if trial.value is not None else "-"
    if trial.state == TrialState.PRUNED:
        return f"pruned at step {trial.user_attrs.get('steps', '?')}"
    if trial.state == TrialState.FAIL:
        return f"failed: {trial.user_attrs.get('error', 'worker lost (no heartbeat)')}"
    return trial.state.name.lower()


def trial_line(study: optuna.Study, number: int, wanted: int | None) -> str:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    this = next(t for t in trials if t.number == number)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    best = max(complete, key=lambda t: float(t.value or 0.0), default=None)
    best_text = f"best {best.value:.2f} (trial {best.number})" if best is not None else "best -"
    line = f"trial {number}: {fmt_params(this.params)} -> {outcome(this)} | {best_text} | {len(finished)}"
    if wanted is None:
        return f"{line} finished"
    durations = [d for d in map(duration_s, finished) if d is not None]
    running = sum(t.state == TrialState.RUNNING for t in trials)
    left = max(0, wanted - len(finished))
    eta = statistics.fmean(durations) * left / max(1, running + 1) if durations and left else 0.0
    return f"{line}/{wanted} finished, ETA {fmt_seconds(eta)}"
