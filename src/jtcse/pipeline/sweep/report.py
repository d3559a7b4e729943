"""What a sweep leaves in OUT: ``sweep.json`` and ``sweep.md`` (best value and parameters, every trial,
parameter importances), the figures (:mod:`.figures`) and ``best.toml``, the best trial's config, which
``jtcse train`` takes. Everything is read from the study's storage, so ``jtcse sweep --report OUT`` redraws
it at any time, from any machine that reaches the storage.

Importances: Optuna's fANOVA evaluator (its default): the share of the objective's variance over the whole
searched space that each parameter explains, from a random forest fitted on the completed trials. That is the
sensitivity question ("which settings matter"). PED-ANOVA answers another one (what matters to land in the
top 10%), which needs many more trials than a sweep of a few dozen to have a top 10% worth the name.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jtcse.benchmark import fmt_seconds, md_table
from jtcse.errors import first_line
from jtcse.fs import atomic_write_text
from jtcse.pipeline.sweep.objective import SweepSetup
from jtcse.pipeline.sweep.progress import duration_s, fmt_value, outcome
from jtcse.training.config import Config

if TYPE_CHECKING:
    import optuna

REPORT_JSON = "sweep.json"
REPORT_MD = "sweep.md"
BEST_CONFIG = "best.toml"
# fANOVA's forest needs a few points with different values to say anything
MIN_TRIALS_FOR_IMPORTANCE = 4
IMPORTANCE_EVALUATOR = "fANOVA (optuna.importance.FanovaImportanceEvaluator, seed 0)"


@dataclass
class Importances:
    values: dict[str, float]
    note: str  # the evaluator, or why none were computed


def importances(study: optuna.Study) -> Importances:
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return Importances(
            {}, f"not computed: {len(complete)} complete trials, fANOVA needs {MIN_TRIALS_FOR_IMPORTANCE}"
        )
    try:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        values = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except Exception as exc:  # e.g. no parameter took two values among the complete trials
        return Importances({}, f"not computed: {first_line(exc).rstrip('.')}")
    return Importances({k: float(v) for k, v in values.items()}, IMPORTANCE_EVALUATOR)


def trial_rows(study: optuna.Study) -> list[dict[str, Any]]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append(
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "params": dict(t.params),
                "steps": t.user_attrs.get("steps", t.last_step),  # a lost trial: its last report
                "duration_s": duration_s(t),
                "folder": t.user_attrs.get("folder"),
                "error": t.user_attrs.get("error"),
                "retry_of": t.system_attrs.get("failed_trial"),
                "outcome": outcome(t),
            }
        )
    return rows


def best_trial(study: optuna.Study) -> optuna.trial.FrozenTrial | None:
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return max(complete, key=lambda t: float(t.value or -math.inf), default=None)


def write_report(
    study: optuna.Study, setup: SweepSetup, storage: str, *, figures: bool = True
) -> dict[str, Any]:
    """Write sweep.json, sweep.md, best.toml and the figures into ``setup.out``; returns the JSON payload."""
    from jtcse.pipeline.sweep.figures import draw_figures

    best = best_trial(study)
    found = importances(study)
    drawn = draw_figures(study, setup.out, [p.key for p in setup.params], found.values) if figures else {}
    payload: dict[str, Any] = {
        "study": study.study_name,
        "storage": storage,
        "objective": setup.objective,
        "direction": "maximize",
        "config": str(setup.config_path),
        "overrides": list(setup.overrides),
        "space": [p.describe() for p in setup.params],
        "best": None if best is None else {"number": best.number, "value": best.value, "params": best.params},
        "importances": found.values,
        "importance_evaluator": found.note,
        "figures": drawn,
        "trials": trial_rows(study),
    }
    if best is not None:
        atomic_write_text(setup.out / BEST_CONFIG, config_toml(setup.config(dict(best.params))))
        payload["best_config"] = BEST_CONFIG
    atomic_write_text(setup.out / REPORT_JSON, json.dumps(payload, indent=2, default=str) + "\n")
    atomic_write_text(setup.out / REPORT_MD, _markdown(payload))
    return payload


def _markdown(payload: dict[str, Any]) -> str:
    best = payload["best"]
    lines = [f"# Sweep `{payload['study']}` ({payload['objective']}, maximised)", ""]
    lines += [
        f"- config: `{payload['config']}` {' '.join('--set ' + o for o in payload['overrides'])}".rstrip()
    ]
    lines += [f"- storage: `{payload['storage']}`", f"- space: {'; '.join(payload['space'])}", ""]
    if best is None:
        lines += ["No complete trial yet.", ""]
    else:
        params = ", ".join(f"`{k}` = {fmt_value(v)}" for k, v in sorted(best["params"].items()))
        lines += [
            f"**Best: {best['value']:.2f}** (trial {best['number']}): {params}; config: `best.toml`",
            "",
        ]
    lines += ["## Parameter importances", "", f"Evaluator: {payload['importance_evaluator']}.", ""]
    if payload["importances"]:
        ranked = sorted(payload["importances"].items(), key=lambda kv: -kv[1])
        lines += [*md_table(["parameter", "importance"], [[f"`{k}`", f"{v:.3f}"] for k, v in ranked]), ""]
    lines += ["## Trials", ""]
    keys = sorted({k for row in payload["trials"] for k in row["params"]})
    head = ["#", "state", "value", *[f"`{k}`" for k in keys], "steps", "time"]
    body = [
        [
            str(r["number"]),
            r["state"] + (f" (retry of {r['retry_of']})" if r["retry_of"] is not None else ""),
            "-" if r["value"] is None else f"{r['value']:.2f}",
            *[fmt_value(r["params"].get(k, "-")) for k in keys],
            str(r["steps"] if r["steps"] is not None else "-"),
            fmt_seconds(r["duration_s"]),
        ]
        for r in payload["trials"]
    ]
    lines += [*md_table(head, body), ""]
    failed = [r for r in payload["trials"] if r["state"] == "fail"]
    if failed:
        lines += ["Failed trials (not counted; a lost worker's trial is retried under a new number):", ""]
        lines += [f"- {r['number']}: {r['outcome'].removeprefix('failed: ')}" for r in failed] + [""]
    if payload["figures"]:
        lines += (
            ["## Figures", ""] + [f"![{name}]({path})" for name, path in payload["figures"].items()] + [""]
        )
    return "\n".join(lines)


def config_toml(config: Config) -> str:
    """``config`` as a TOML file ``jtcse train`` reads: every key (``output_dir`` left to the command line);
    a key whose value is unset (none) is left out, which TOML cannot write and the defaults mean."""
    top, sections = [], []
    for key, value in config.to_dict().items():
        if isinstance(value, dict):
            body = [f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None]
            sections += [f"[{key}]", *body, ""]
        elif key != "output_dir" and value is not None:
            top.append(f"{key} = {_toml_value(value)}")
    return "\n".join(
        ["# the best trial of a jtcse sweep: jtcse train best.toml --output-dir OUT", *top, "", *sections]
    )


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            repr(value)
            if math.isfinite(value)
            else ("nan" if math.isnan(value) else ("inf" if value > 0 else "-inf"))
        )
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string
