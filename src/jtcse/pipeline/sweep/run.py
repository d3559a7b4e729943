"""``jtcse sweep``: check the space, open (or join) the study, run workers, write the report.

The study is Optuna's, in an RDB storage (:mod:`.storage`); every process that opens the same storage and
study name works on it: K local workers (:func:`.workers.spawn_local`), or ``jtcse sweep`` on other
machines. Rerunning the command continues the study; one whose N trials are finished trains nothing.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text
from jtcse.pipeline.runner import Say, stderr_say
from jtcse.pipeline.sweep.confirm import CONFIRM_DIR
from jtcse.pipeline.sweep.figures import FIGURES_DIR
from jtcse.pipeline.sweep.objective import TRIALS_DIR, Objective, SweepSetup, check_base
from jtcse.pipeline.sweep.report import BEST_CONFIG, REPORT_JSON, REPORT_MD
from jtcse.pipeline.sweep.space import read_space
from jtcse.pipeline.sweep.storage import (
    DB_NAME,
    DEFAULT_HEARTBEAT_S,
    default_url,
    open_storage,
    sweep_output_dir,
)
from jtcse.pipeline.sweep.strategy import check_same_space, grid_size, make_pruner, make_sampler
from jtcse.pipeline.sweep.workers import Budget, spawn_local, work

STUDY_FILE = "study.json"  # what --report OUT needs to find the study again


@dataclass
class SweepOptions:
    config: Path
    space: Path
    out: Path
    trials: int | None = None
    timeout_s: float | None = None
    storage: str | None = None
    study: str | None = None
    workers: int = 1
    sampler: str = "tpe"
    pruner: str = "median"
    objective: Objective = "stsb-dev"
    overrides: list[str] = field(default_factory=list)
    heartbeat_s: int = DEFAULT_HEARTBEAT_S
    seed: int | None = None  # the sampler's; worker i uses seed + i
    pruner_startup: int = 5
    worker_index: int | None = None  # set in a process started by spawn_local: no report, no spawning
    threads: int = 0


def prepare(options: SweepOptions) -> tuple[SweepSetup, str]:
    """The setup every trial shares and the storage URL, after every check that needs no training."""
    ours = (DB_NAME, STUDY_FILE, TRIALS_DIR, REPORT_JSON, REPORT_MD, BEST_CONFIG, FIGURES_DIR, CONFIRM_DIR)
    out = sweep_output_dir(
        options.out, ours=ours, inputs={"CONFIG": options.config, "--space": options.space}
    )
    setup = SweepSetup(options.config, [], out, list(options.overrides), options.objective, options.threads)
    base = check_base(setup)
    setup.params = read_space(options.space, base)
    return setup, options.storage or default_url(out)


def run_sweep(
    options: SweepOptions, worker_argv: list[str] | None = None, say: Say = stderr_say
) -> dict | None:
    """Run the sweep; returns the report's payload (None in a spawned worker, which writes none)."""
    import optuna

    setup, url = prepare(options)
    wanted = options.trials
    if wanted is None and options.timeout_s is None:
        if options.sampler != "grid":
            raise JtcseError(
                "give --trials N or --timeout SECONDS (or --sampler grid: one trial per grid point)"
            )
        wanted = grid_size(setup.params)
    storage = open_storage(url, heartbeat=options.heartbeat_s)
    name = options.study or options.config.stem
    seed = None if options.seed is None else options.seed + (options.worker_index or 0)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction="maximize",
            load_if_exists=True,
            sampler=make_sampler(options.sampler, setup.params, seed),
            pruner=make_pruner(options.pruner, startup_trials=options.pruner_startup),
        )
    check_same_space(study, setup.params)
    budget = Budget(wanted, options.timeout_s, options.heartbeat_s)
    if options.worker_index is not None:
        work(study, setup, budget, say)
        return None
    _record_study(setup, url, name, options)
    if options.workers > 1 and worker_argv is not None:
        spawn_local(worker_argv, options.workers, say)
    else:
        work(study, setup, budget, say)
    from jtcse.pipeline.sweep.report import write_report

    return write_report(study, setup, _shown(url))


def dry_run(options: SweepOptions) -> list[str]:
    """``--dry-run``: every check that needs no training (config, space, storage); the lines to print."""
    setup, url = prepare(options)
    open_storage(url, heartbeat=options.heartbeat_s)
    lines = [f"config {options.config} ({setup.objective}); storage {_shown(url)}"]
    return lines + [f"  {p.describe()}" for p in setup.params]


def threads_per_worker(workers: int) -> int:
    """The cores this process may use, split between ``workers`` local workers (torch threads each)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // workers)


def _shown(url: str) -> str:
    from jtcse.pipeline.sweep.storage import hide_password

    return hide_password(url)


def _record_study(setup: SweepSetup, url: str, name: str, options: SweepOptions) -> None:
    """OUT/study.json; an OUT holding another study is refused (their trials/NNNN folders would collide)."""
    recorded = setup.out / STUDY_FILE
    if recorded.is_file():
        other = json.loads(recorded.read_text(encoding="utf-8")).get("study")
        if other != name:
            raise JtcseError(
                f"--output-dir {setup.out}: holds study {other!r}, not {name!r}; one study per folder: "
                f"use another --output-dir, or --study {other} to continue that one"
            )
    payload = {
        "study": name,
        "storage": _shown(url),
        "config": str(options.config.resolve()),
        "space": str(options.space.resolve()),
        "overrides": list(options.overrides),
        "objective": options.objective,
    }
    atomic_write_text(setup.out / STUDY_FILE, json.dumps(payload, indent=2) + "\n")


def redraw_report(out: Path, storage: str | None, say: Say = stderr_say) -> dict:
    """``jtcse sweep --report OUT``: sweep.md/json, best.toml and the figures again, from the storage."""
    import optuna

    from jtcse.pipeline.sweep.report import write_report

    recorded_path = out / STUDY_FILE
    if not recorded_path.is_file():
        raise JtcseError(f"--report {out}: no {STUDY_FILE}; is this the --output-dir of a jtcse sweep?")
    recorded = json.loads(recorded_path.read_text(encoding="utf-8"))
    options = SweepOptions(
        Path(recorded["config"]),
        Path(recorded["space"]),
        out,
        overrides=recorded["overrides"],
        objective=recorded["objective"],
    )
    setup, url = prepare(options)
    url = storage or (recorded["storage"] if "***" not in recorded["storage"] else "")
    if not url:
        raise JtcseError(f"--report {out}: the storage URL holds a password; give it again with --storage")
    try:
        study = optuna.load_study(study_name=recorded["study"], storage=open_storage(url))
    except KeyError as exc:
        raise JtcseError(f"--report {out}: no study {recorded['study']!r} in {_shown(url)}") from exc
    return write_report(study, setup, _shown(url))
