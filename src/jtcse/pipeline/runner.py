"""The one pipeline runner: train stages in order, then evaluate what they saved.

A *stage* is one training run (a resolved :class:`~jtcse.training.config.Config` whose ``output_dir`` is the
stage's folder) plus the STS test tasks to evaluate it on afterwards (none for a building block such as a
stage-1 tower). :func:`run_stages` runs a list of them; :func:`train_and_evaluate` runs one:

1. a stage whose folder holds a result file (:data:`RESULT_FILE`) finished earlier: it is skipped (evaluated
   again only when other test tasks are asked for); a result written under other settings is an error;
2. a folder with a training checkpoint continues with ``train(config, resume=True)``; else training starts;
3. the saved model is evaluated (:func:`jtcse.evaluation.sts.evaluate_sts`: STS-B dev when training gave no
   dev score, and the test tasks), and the result file is written atomically: it marks the stage finished.

``jtcse demo``, ``jtcse ablate``, ``jtcse reproduce`` and ``experiments/study.py`` all train and evaluate
through here, so "skip what is finished, resume what was interrupted, evaluate the saved model" means the
same thing everywhere. :func:`evaluate_model` scores a model that is not trained here (a start model, an
ensemble of trained ones) with the same protocol.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError
from jtcse.records import AnyValue, Int, ListOf, MapOf, Nullable, Num, Obj, Str, read_record
from jtcse.training.config import Config

# The name predates the runner (ablation grids were its first user); committed study runs carry it.
RESULT_FILE = "ablation_result.json"
RESULT_FORMAT_VERSION = 1
_SCORE = Nullable(Num(-100.0, 100.0))  # Spearman x100; null: not a number (NaN when written)
RESULT_SPEC = Obj(
    {
        "name": Str(),
        "point": MapOf(AnyValue()),
        "seed": Int(),
        "output_dir": Str(),
        "dev_stsb": _SCORE,
        "dev_source": Str(choices=("training", "evaluated", "none")),
        "tasks": ListOf(Str()),
        "test": MapOf(_SCORE),
        "train_s": Nullable(Num(0)),
        "eval_s": Num(0),
        "steps": Int(0),
        "best_step": Nullable(Int(0)),
    },
    {"config": Obj(), "format_version": Int(0, RESULT_FORMAT_VERSION)},
)
# Tower B of a twin built from scratch trains with seed s + 1000 (tower A with s): the study and the recipes
# stand in for the paper's two round-trip-translation corpora with two seeds.
TOWER_B_SEED_OFFSET = 1000

Say = Callable[[str], None]


def stderr_say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class RunResult:
    """What the result file holds for one finished stage."""

    name: str
    point: dict[str, str]
    seed: int
    output_dir: str
    dev_stsb: float | None
    dev_source: str  # "training" (best in-loop STS-B dev), "evaluated" (eval.every = 0) or "none"
    tasks: list[str]  # test tasks evaluated (empty: dev only)
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


@dataclass
class Stage:
    """One training run of a pipeline and what to evaluate it on afterwards."""

    name: str  # shown in messages and stored in the result file
    config: Config  # output_dir is the stage's folder
    tasks: tuple[str, ...] = ()  # STS test tasks (canonical names); () = STS-B dev only
    point: dict[str, str] = field(default_factory=dict)  # grid point (ablations); {} elsewhere


@dataclass
class PipelineRun:
    results: list[RunResult]  # finished stages, in order
    interrupted: bool  # a stage stopped early (Ctrl-C, train.stop_after): rerun to resume it


def run_stages(
    stages: Sequence[Stage],
    *,
    announce: Callable[[int, Stage], None] | None = None,
    after: Callable[[Stage, RunResult], None] | None = None,
    dev_only: bool | None = None,
    dev: bool = True,
    eval_batch_size: int = 64,
    keep_checkpoint: bool = True,
    say: Say = stderr_say,
) -> PipelineRun:
    """Train and evaluate every stage in order (skipping finished ones, resuming an interrupted one); stop
    at the first stage that does not finish. ``announce(i, stage)`` (1-based) is called before each stage,
    ``after(stage, result)`` once it finished. ``dev_only`` None: a stage without test tasks is evaluated on
    STS-B dev only; True/False forces it (an empty ``tasks`` with False means all 7)."""
    results: list[RunResult] = []
    for index, stage in enumerate(stages, 1):
        if announce is not None:
            announce(index, stage)
        result = train_and_evaluate(
            stage.config,
            name=stage.name,
            point=stage.point,
            tasks=list(stage.tasks) or None,
            dev_only=(not stage.tasks) if dev_only is None else dev_only,
            dev=dev,
            eval_batch_size=eval_batch_size,
            keep_checkpoint=keep_checkpoint,
            say=say,
        )
        if result is None:
            return PipelineRun(results, interrupted=True)
        results.append(result)
        if after is not None:
            after(stage, result)
    return PipelineRun(results, interrupted=False)


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
    say: Say = stderr_say,
) -> RunResult | None:
    """Train ``config`` into ``config.output_dir`` (skipping or resuming as the folder says), evaluate the
    saved model, and write the result file. Returns None when training stopped early (Ctrl-C,
    ``train.stop_after``): the stage is not finished and a later call resumes it.

    ``tasks`` None = all 7. ``dev``: with ``eval.every = 0`` (no dev score from training), evaluate STS-B dev
    afterwards; False leaves it empty. ``keep_checkpoint`` False deletes ``checkpoint/`` once the result file
    is written (the result file alone marks the stage finished; the checkpoint only serves resuming)."""
    out = Path(config.output_dir)
    wanted = [] if dev_only else resolve_eval_tasks(tasks)
    fingerprint = settings_fingerprint(config)
    stored = read_result(out)
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

    trained = _train(config, name, point, fingerprint, say)
    if trained is None:
        return None
    result = _evaluate(trained, config, wanted, eval_batch_size, dev=dev)
    _write_result(out, result)
    if not keep_checkpoint:
        import shutil

        from jtcse.training.checkpoint import checkpoint_path

        shutil.rmtree(checkpoint_path(out).parent, ignore_errors=True)
    return result


def _train(
    config: Config, name: str, point: dict[str, str] | None, fingerprint: dict[str, Any], say: Say
) -> RunResult | None:
    from jtcse.training.trainer import train  # the training engine's entry point

    out = Path(config.output_dir)
    resume = has_checkpoint(out)
    if resume:
        say(f"  {name}: continuing from its checkpoint")
    outcome = train(config, resume=resume)
    if outcome.stopped_early:
        return None
    return RunResult(
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


def _evaluate(
    result: RunResult, config: Config, tasks: list[str], batch_size: int, *, dev: bool = True
) -> RunResult:
    from jtcse.model.format import is_jtcse_dir

    out = Path(result.output_dir)
    if not is_jtcse_dir(out):
        raise JtcseError(
            f"{out}: training saved no model (the STS-B dev score was never finite); see {out}/metrics.jsonl"
        )
    result.tasks = list(tasks)
    need_dev = result.dev_stsb is None and dev
    if not tasks and not need_dev:
        result.test, result.eval_s = {}, 0.0
        return result
    device = None if config.train.device == "auto" else config.train.device
    dev_score, result.test, result.eval_s = evaluate_model(
        out,
        data_dir=config.data.data_dir or None,
        tasks=tasks,
        dev=need_dev,
        device=device,
        batch_size=batch_size,
        progress=config.train.progress,
    )
    if need_dev:
        result.dev_stsb, result.dev_source = dev_score, "evaluated"
    return result


def evaluate_model(
    model: str | Path,
    *,
    data_dir: str | Path | None,
    tasks: Sequence[str],
    dev: bool,
    pooler: str | None = None,
    device: str | None = None,
    batch_size: int = 64,
    progress: bool = True,
) -> tuple[float | None, dict[str, float], float]:
    """(STS-B dev score or None, test scores incl. ``avg`` ({} without tasks), seconds) of ``model``, read
    as :class:`jtcse.Encoder` reads it (``pooler`` None = its saved pooler): what ``jtcse eval sts`` gives.
    ``progress``: a bar (stderr) while the test sentences are encoded, the long part."""
    from jtcse.encoder import Encoder
    from jtcse.evaluation.sts import evaluate_sts

    started = time.perf_counter()
    encoder = Encoder(model, pooler=pooler, device=device, batch_size=batch_size)
    dev_score = None
    if dev:
        report = evaluate_sts(
            encoder, data_dir=data_dir, tasks=["STSBenchmark"], mode="dev", show_progress=False
        )
        dev_score = report.scores["STSBenchmark"]
    test: dict[str, float] = {}
    if tasks:
        report = evaluate_sts(
            encoder, data_dir=data_dir, tasks=list(tasks), batch_size=batch_size, show_progress=progress
        )
        test = dict(report.scores)
    return dev_score, test, time.perf_counter() - started


def resolve_eval_tasks(tasks: Sequence[str] | None) -> list[str]:
    """The canonical test tasks (all 7 when None); an unknown name is an error naming ``--eval-tasks``."""
    from jtcse.evaluation.sts import resolve_tasks

    try:
        return resolve_tasks(tasks, "test")
    except JtcseError as exc:
        raise JtcseError(str(exc).replace("--tasks", "--eval-tasks", 1)) from exc


def has_started(run_dir: Path) -> bool:
    """Whether a stage folder holds a finished result or a training checkpoint."""
    return (run_dir / RESULT_FILE).is_file() or has_checkpoint(run_dir)


def has_checkpoint(run_dir: Path) -> bool:
    from jtcse.training.checkpoint import checkpoint_path

    return checkpoint_path(run_dir).is_file()


def settings_fingerprint(config: Config) -> dict[str, Any]:
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


def read_result(out: Path) -> RunResult | None:
    """The stage's result file, or None when the stage has not finished."""
    path = out / RESULT_FILE
    if not path.is_file():
        return None
    fix = "delete it to evaluate the run again"
    payload = read_record(path, RESULT_SPEC, remedy=fix)
    try:
        return RunResult.from_json(payload)
    except (ValueError, TypeError) as exc:  # a key this version does not know
        raise JtcseError(f"{path}: unreadable result file ({exc}); {fix}") from exc


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


def _json_safe(value: object) -> Any:  # a JSON value: its type depends on the input
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
