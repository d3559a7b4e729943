"""One trial of a sweep: an ordinary training run in ``OUT/trials/NNNN/`` with the trial's parameters, its
STS-B dev score reported to the pruner at every ``eval.every`` (the trainer's ``on_evaluate`` seam)."""

from __future__ import annotations

import contextlib
import io
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, cast

from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text
from jtcse.pipeline.sweep.space import Param, Scalar
from jtcse.training.config import Config, load_config, override_text

if TYPE_CHECKING:
    import optuna

Objective = Literal["stsb-dev", "sts7"]
OBJECTIVES: tuple[Objective, ...] = ("stsb-dev", "sts7")
TRIALS_DIR = "trials"
TRIAL_LOG = "train.log"  # the trial's own stderr (the trainer's lines, warnings): the console gets one line


@dataclass
class SweepSetup:
    """What every trial of one sweep shares."""

    config_path: Path
    params: list[Param]
    out: Path
    overrides: list[str] = field(default_factory=list)
    """the user's ``--set``, applied to every trial (and to ``best.toml``)"""
    objective: Objective = "stsb-dev"
    threads: int = 0
    """torch threads per trial where the config leaves ``train.threads`` at 0 (its own count wins)"""

    def config(
        self, values: dict[str, Scalar], *, output_dir: Path | None = None, seed: int | None = None
    ) -> Config:
        """The base config with ``values`` set, as ``jtcse train CONFIG --set ...`` would read it."""
        items = list(self.overrides) + [f"{key}={override_text(value)}" for key, value in values.items()]
        if output_dir is not None:
            items.append(f"output_dir={output_dir}")
        if seed is not None:
            items.append(f"seed={seed}")
        return load_config(self.config_path, items)

    def run_config(self, values: dict[str, Scalar], *, output_dir: Path, seed: int | None = None) -> Config:
        """The config of a run the sweep trains (a trial, a confirmation): :meth:`config` with no progress
        bar (the sweep prints one line per run) and the worker's threads where the config leaves them at 0."""
        config = self.config(values, output_dir=output_dir, seed=seed)
        config.train.progress = False
        if self.threads and not config.train.threads:  # the config's own count wins
            config.train.threads = self.threads
        return config

    def trial_dir(self, number: int) -> Path:
        return self.out / TRIALS_DIR / f"{number:04d}"


def check_base(setup: SweepSetup) -> Config:
    """The base config, refused when the objective could never be measured."""
    base = setup.config({})
    if base.eval.every <= 0:
        raise JtcseError(
            f"{setup.config_path}: eval.every is 0; a sweep reports STS-B dev every eval.every steps to "
            "its pruner: set eval.every (e.g. --set eval.every=125)"
        )
    return base


def suggest(trial: optuna.trial.BaseTrial, params: list[Param]) -> dict[str, Scalar]:
    values: dict[str, Scalar] = {}
    for p in params:
        if p.kind == "categorical":
            values[p.key] = cast(Scalar, trial.suggest_categorical(p.key, list(p.choices)))  # one of them
        elif p.kind == "int":
            assert p.low is not None and p.high is not None
            values[p.key] = trial.suggest_int(
                p.key, int(p.low), int(p.high), step=int(p.step or 1), log=p.log
            )
        else:
            assert p.low is not None and p.high is not None
            step = None if p.step is None else float(p.step)
            values[p.key] = trial.suggest_float(p.key, float(p.low), float(p.high), step=step, log=p.log)
    return values


def run_trial(setup: SweepSetup, trial: optuna.Trial) -> float:
    """Train trial ``trial.number`` and return its objective value; raises ``optuna.TrialPruned`` when the
    pruner stopped it (its ``steps`` user attribute says where)."""
    import optuna

    from jtcse.training.checkpoint import checkpoint_path
    from jtcse.training.trainer import train

    values = suggest(trial, setup.params)
    folder = setup.trial_dir(trial.number)
    config = setup.run_config(values, output_dir=folder)
    trial.set_user_attr("folder", str(folder.relative_to(setup.out)))

    def report(step: int, score: float) -> bool:
        # one storage write per evaluation (the intermediate value); "steps" is written once at the end
        if not math.isfinite(score):
            return False  # a NaN dev score (a constant embedding) says nothing to compare
        trial.report(score, step)
        return trial.should_prune()

    with _output_into(folder / TRIAL_LOG):
        result = train(config, on_evaluate=report)
    trial.set_user_attr("steps", result.step)
    if not result.stopped_early:
        # no trial is ever resumed (a lost one is retried from the start): the model stays, the optimizer
        # state (twice the model again) goes
        shutil.rmtree(checkpoint_path(folder).parent, ignore_errors=True)
    if result.halted:
        raise optuna.TrialPruned(f"pruned at step {result.step}")
    if result.stopped_early:  # Ctrl-C: the trainer finished its step and stopped; so does the sweep
        raise KeyboardInterrupt
    return _value(setup, config, result.best_dev)


@contextlib.contextmanager
def _output_into(log: Path) -> Iterator[None]:
    """The block's stderr collected and written to ``log`` afterwards (also when the trial fails)."""
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            yield
    finally:
        if log.parent.is_dir() and captured.getvalue():
            atomic_write_text(log, captured.getvalue())


def _value(setup: SweepSetup, config: Config, best_dev: float | None) -> float:
    """``stsb-dev``: the run's best in-loop dev score; ``sts7``: its model's average over the 7 STS tests."""
    folder = config.output_dir
    if setup.objective == "stsb-dev":
        if best_dev is None or not math.isfinite(best_dev):
            raise JtcseError(f"{folder}: no finite STS-B dev score (is eval.every above train.max_steps?)")
        return best_dev
    from jtcse.pipeline.runner import evaluate_model, resolve_eval_tasks

    _, test, _ = evaluate_model(
        folder,
        data_dir=config.data.data_dir or None,
        tasks=resolve_eval_tasks(None),
        dev=False,
        progress=False,
    )
    return float(test["avg"])
