"""Running the study's plan on the pipeline runner, the evaluations of untrained rows (start model, summed
towers) and the attention-sink readings."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jtcse.errors import JtcseError
from jtcse.pipeline.runner import RunResult, Stage, evaluate_model, has_started, run_stages
from jtcse.pipeline.study.plan import Plan
from jtcse.pipeline.study.scales import LABELS, PIPELINES
from jtcse.records import MapOf, Nullable, Num, Obj, read_cache

if TYPE_CHECKING:
    from jtcse.analysis.attention_sink import DiagnoseReport

EVAL_CACHE = "study_eval.json"


@dataclass
class Score:
    """One variant for one seed."""

    variant: str
    seed: int | None  # None: seed-independent (the start rows)
    dev: float | None
    test: dict[str, float]
    train_s: float
    eval_s: float


def run_study(
    plan: Plan, *, resume: bool, keep_checkpoints: bool, say: Callable[[str], None]
) -> tuple[list[Score], float]:
    """Every variant's scores, and the seconds all runs took (training + evaluation, as recorded when each
    ran, so a resumed study reports its full cost)."""
    if not resume:
        started = [r for r in plan.runs if has_started(Path(r.config.output_dir))]
        if started or (plan.runs_dir / EVAL_CACHE).is_file():
            example = started[0].name if started else EVAL_CACHE
            raise JtcseError(
                f"{plan.runs_dir}: holds an earlier study ({example}); pass --resume to reuse its finished "
                "runs, or choose another --runs-dir"
            )
    plan.runs_dir.mkdir(parents=True, exist_ok=True)
    cache = EvalCache(plan.runs_dir / EVAL_CACHE)
    scores: list[Score] = []
    recorded = 0.0
    total = len(plan.runs) + 2 + len(plan.seeds)  # + the two start rows + one sum ensemble per seed
    done = 0

    def progress(what: str) -> None:
        nonlocal done
        done += 1
        say(f"study: {done}/{total}: {what}")

    for variant, pooler in (("start_cls", "cls_before_pooler"), ("start_avg", "avg")):
        progress(f"evaluate {LABELS[variant]}")
        dev, test, took = cache.evaluate(variant, [plan.base_model], pooler, plan)
        scores.append(Score(variant, None, dev, test, 0.0, took))
        recorded += took
    for seed in plan.seeds:
        seed_scores, seed_seconds = _run_seed(plan, seed, cache, keep_checkpoints, progress, say)
        scores += seed_scores
        recorded += seed_seconds
    return scores, recorded


def _run_seed(
    plan: Plan,
    seed: int,
    cache: EvalCache,
    keep_checkpoints: bool,
    progress: Callable[[str], None],
    say: Callable[[str], None],
) -> tuple[list[Score], float]:
    """The seed's training runs in order (the runner skips finished ones), then its summed towers; their
    scores and recorded seconds."""
    runs = [r for r in plan.runs if r.seed == seed]
    stages = [Stage(r.name, r.config, tuple(plan.tasks) if r.scored else ()) for r in runs]
    results: dict[str, RunResult] = {}
    scores: list[Score] = []

    def after(stage: Stage, result: RunResult) -> None:
        run = runs[stages.index(stage)]
        results[run.key] = result
        if run.scored:
            train_s = sum(results[k].train_s or 0.0 for k in PIPELINES[run.key])
            scores.append(Score(run.key, seed, result.dev_stsb, result.test, train_s, result.eval_s))

    outcome = run_stages(
        stages,
        announce=lambda _, stage: progress(f"seed {seed}: {runs[stages.index(stage)].key}"),
        after=after,
        dev=with_dev(plan),
        keep_checkpoint=keep_checkpoints,
        say=say,
    )
    if outcome.interrupted:
        raise KeyboardInterrupt  # training was interrupted; the run continues with --resume
    progress(f"seed {seed}: evaluate the sum of two SimCSE towers")
    members = [results["sum_a"].output_dir, results["sum_b"].output_dir]
    ensemble = plan.runs_dir / f"seed-{seed}" / "simcse_sum"
    dev, test, took = cache.evaluate(f"simcse_sum/seed-{seed}", members, None, plan, ensemble_dir=ensemble)
    train_s = sum(results[k].train_s or 0.0 for k in PIPELINES["simcse_sum"])
    scores.append(Score("simcse_sum", seed, dev, test, train_s, took))
    recorded = sum((r.train_s or 0.0) + r.eval_s for r in outcome.results) + took
    return scores, recorded


# (run key, tower) of the first seed that the attention-sink diagnostic reads, after the start model
SINK_MODELS: tuple[tuple[str, str], ...] = (
    ("stage1_a", "both"),
    ("simcse", "both"),
    ("tncse", "a"),
    ("jtcse", "both"),
)


def diagnose_attention_sink(plan: Plan, say: Callable[[str], None]) -> DiagnoseReport:
    """The attention-sink readings (:mod:`jtcse.analysis.attention_sink`) of the start model and the first
    seed's trained encoders, on held-out sentences (STS-B test, in file order, distinct): a
    ``DiagnoseReport`` with one series per model or tower."""
    from jtcse.analysis.attention_sink import DiagnoseReport, diagnose
    from jtcse.data.paths import resolve_data_dir
    from jtcse.data.sts import read_stsb

    pairs = read_stsb(resolve_data_dir(plan.data_dir, need="sts"), "test")
    pairs_in_order = zip(pairs.sentences1, pairs.sentences2, strict=True)
    sentences = list(dict.fromkeys(s for pair in pairs_in_order for s in pair))[: plan.scale.sink_sentences]
    device = _eval_device(plan)
    say(f"study: attention-sink diagnostic on {len(sentences)} STS-B test sentences")
    reports = [diagnose(plan.base_model, sentences, label="start", batch_size=32, device=device)]
    first = plan.seeds[0]
    for key, tower in SINK_MODELS:
        run_dir = plan.runs_dir / f"seed-{first}" / key
        reports.append(diagnose(run_dir, sentences, tower=tower, label=key, batch_size=32, device=device))
    report = DiagnoseReport.merge(reports)
    report.settings["sentences"] = "STS-B test, distinct, in file order"
    report.settings["seed"] = first
    return report


_SCORE = Nullable(Num(-100.0, 100.0))  # null: NaN when written
EVAL_CACHE_SPEC = MapOf(Obj({"identity": Obj(), "dev": _SCORE, "test": MapOf(_SCORE), "eval_s": Num(0)}))


class EvalCache:
    """Scores of the models the study evaluates without training them (start, summed towers), kept in one
    JSON file so that --resume does not evaluate them again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # a damaged file: one note, and the models are evaluated again
        self.entries: dict[str, Any] = read_cache(path, EVAL_CACHE_SPEC, what="evaluation cache") or {}

    def evaluate(
        self,
        name: str,
        members: Sequence[str],
        pooler: str | None,
        plan: Plan,
        *,
        ensemble_dir: Path | None = None,
    ) -> tuple[float | None, dict[str, float], float]:
        from jtcse.ensemble import save_ensemble
        from jtcse.fs import atomic_write_text

        identity = {"members": list(members), "pooler": pooler, "tasks": plan.tasks, "dev": with_dev(plan)}
        entry = self.entries.get(name)
        if entry is not None and entry["identity"] == identity:
            test = {k: (math.nan if v is None else v) for k, v in entry["test"].items()}
            return entry["dev"], test, entry["eval_s"]
        model: str | Path = members[0]
        if ensemble_dir is not None:  # the plain sum: weights 1 and 1, each member with its own pooler
            save_ensemble(ensemble_dir, members, [1.0, 1.0], method="simcse-sum", overwrite=True)
            model = ensemble_dir
        dev, test, took = evaluate_model(
            model,
            data_dir=plan.data_dir,
            tasks=plan.tasks,
            dev=with_dev(plan),
            pooler=pooler,
            device=_eval_device(plan),
        )
        self.entries[name] = {
            "identity": identity,
            "dev": dev,
            "test": {k: (None if math.isnan(v) else v) for k, v in test.items()},
            "eval_s": took,
        }
        atomic_write_text(self.path, json.dumps(self.entries, indent=2) + "\n")
        return dev, dict(test), took


def _eval_device(plan: Plan) -> str | None:
    """The training device of the study's runs (``--device``) for the untrained evaluations; None = auto."""
    device = plan.runs[0].config.train.device if plan.runs else "auto"
    return None if device == "auto" else device


def with_dev(plan: Plan) -> bool:
    return plan.scale.eval_every > 0
