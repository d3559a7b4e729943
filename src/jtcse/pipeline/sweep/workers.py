"""The worker loop: claim a trial, train it with a heartbeat, tell the study, print one line; until the study
holds N finished trials or the time is up. Any number of workers, on any machines, run this loop against one
storage (Optuna's distributed mode); :func:`spawn_local` starts K of them on this machine.

Exactly N: a worker claims a trial only while ``finished + running < N`` (or a retry is queued), and the
check and Optuna's ``ask`` happen under one file lock in OUT, so local workers never overshoot. A trial whose
worker died stays RUNNING until its heartbeat is stale; the others wait for that instead of starting an extra
trial, then Optuna fails it and queues its retry (:mod:`.storage`), which the next claim takes.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, cast

from jtcse.errors import JtcseError, first_line
from jtcse.pipeline.sweep.objective import SweepSetup, run_trial
from jtcse.pipeline.sweep.progress import trial_line

if TYPE_CHECKING:
    import optuna

CLAIM_LOCK = ".sweep-claim.lock"
MAX_FAILURES_IN_A_ROW = 3
Say = Callable[[str], None]


@dataclass(frozen=True)
class Budget:
    trials: int | None  # finished (complete or pruned) trials the study should hold; None: until the timeout
    timeout_s: float | None  # this worker claims no trial after this many seconds
    heartbeat_s: int


class _Wait:
    """Every trial still needed is running elsewhere: check again shortly (one may die and need a retry)."""


def work(study: optuna.Study, setup: SweepSetup, budget: Budget, say: Say) -> int:
    """Run trials until the budget is spent; returns how many this worker ran."""
    started, ran, failures = time.monotonic(), 0, 0
    while budget.timeout_s is None or time.monotonic() - started < budget.timeout_s:
        claimed = _claim(study, budget.trials, setup.out / CLAIM_LOCK)
        if claimed is None:
            break
        if isinstance(claimed, _Wait):
            time.sleep(min(5.0, budget.heartbeat_s / 2))
            continue
        error = _run(study, setup, claimed, budget.heartbeat_s)
        ran += 1
        say(trial_line(study, claimed.number, budget.trials))
        failures = failures + 1 if error else 0
        if failures >= MAX_FAILURES_IN_A_ROW:
            raise JtcseError(
                f"{failures} trials failed in a row, the last ({setup.trial_dir(claimed.number)}): {error}"
            )
    return ran


def _claim(study: optuna.Study, wanted: int | None, lock: Path) -> optuna.Trial | _Wait | None:
    """The next trial to run (a queued retry first), a wait, or None when the study is complete."""
    import optuna
    from optuna.trial import TrialState

    with _file_lock(lock), warnings.catch_warnings():
        # fail_stale_trials is "experimental"; heartbeats are "meant for optimize()": this loop records them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        optuna.storages.fail_stale_trials(study)  # dead workers' trials: failed, retries queued
        if wanted is not None:
            states = [t.state for t in study.get_trials(deepcopy=False)]
            finished = states.count(TrialState.COMPLETE) + states.count(TrialState.PRUNED)
            if finished >= wanted:
                return None
            if TrialState.WAITING not in states and finished + states.count(TrialState.RUNNING) >= wanted:
                return _Wait()
        trial = study.ask()
        # a first heartbeat at once: a worker killed before its first beat would leave it RUNNING forever
        # (Optuna's trial id is private; the storage API takes nothing else)
        _rdb(study).record_heartbeat(trial._trial_id)
        return trial


def _rdb(study: optuna.Study) -> optuna.storages.RDBStorage:
    """The study's storage, always an RDBStorage here (:func:`.storage.open_storage`)."""
    return cast("optuna.storages.RDBStorage", study._storage)


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Serialises the claim of local workers (flock; released by the kernel if the holder dies)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _run(study: optuna.Study, setup: SweepSetup, trial: optuna.Trial, heartbeat_s: int) -> str | None:
    """Train one trial and tell the study its outcome; returns the error of a failed trial."""
    import optuna
    from optuna.trial import TrialState

    try:
        with _heartbeat(study, trial, heartbeat_s):
            value = run_trial(setup, trial)
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
        return None
    except KeyboardInterrupt:
        trial.set_user_attr("error", "interrupted")
        study.tell(trial, state=TrialState.FAIL)
        raise
    except Exception as exc:  # a failed trial is recorded and the sweep goes on (a bad corner of the space)
        trial.set_user_attr("error", first_line(exc))
        study.tell(trial, state=TrialState.FAIL)
        return first_line(exc)
    study.tell(trial, value)
    return None


@contextlib.contextmanager
def _heartbeat(study: optuna.Study, trial: optuna.Trial, interval: int) -> Iterator[None]:
    """Record the trial's heartbeat every ``interval`` seconds from a thread while it trains."""
    storage, trial_id, stop = _rdb(study), trial._trial_id, threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            with contextlib.suppress(Exception):  # a missed beat only brings the grace period closer
                storage.record_heartbeat(trial_id)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def spawn_local(argv: list[str], workers: int, say: Say) -> None:
    """Run ``python -m jtcse ARGV`` as ``workers`` processes and wait for them all; a worker that failed is
    one line (its own error line is above it, on the shared stderr)."""
    processes = [
        subprocess.Popen([sys.executable, "-m", "jtcse", *argv, "--worker-index", str(i)])
        for i in range(workers)
    ]
    codes = [p.wait() for p in processes]
    bad = [(i, c) for i, c in enumerate(codes) if c != 0]
    if bad:
        worst = ", ".join(f"worker {i} exit {c}" for i, c in bad)
        raise JtcseError(
            f"{len(bad)} of {workers} local workers failed ({worst}); run the same command to continue"
        )
    say(f"jtcse sweep: {workers} local workers done")
