"""`jtcse sweep` with real processes: two local workers share one SQLite study, a worker killed with -9 in the
middle of a trial is failed and retried by the rerun, two workers share a real PostgreSQL server."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweep_fixtures import base_config, run_sweep_cli, space_file, sweep_command

# Not marked slow: issue 28's must-holds (two workers, kill -9, a real PostgreSQL) run in CI, about 60 s


def _study(out: Path, storage: str | None = None, name: str = "base") -> list:
    import optuna

    url = storage or f"sqlite:///{out / 'sweep.db'}"
    return optuna.load_study(study_name=name, storage=url).get_trials(deepcopy=False)


def _check_each_once(out: Path, trials: list, wanted: int) -> None:
    from optuna.trial import TrialState

    finished = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) == wanted
    numbers = [t.number for t in trials]
    assert sorted(numbers) == list(range(len(trials)))  # each number once
    folders = [t.user_attrs["folder"] for t in finished]
    assert len(set(folders)) == wanted and all((out / f / "train_config.yaml").is_file() for f in folders)


def test_two_local_workers_share_one_study(tmp_path: Path, tiny_bert_dir: Path) -> None:
    config, space, out = base_config(tmp_path, tiny_bert_dir), space_file(tmp_path), tmp_path / "sweep"
    done = run_sweep_cli(
        sweep_command(config, space, out, "--trials", "4", "--workers", "2", "--pruner", "none")
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("finished, ETA") == 4  # one line per trial, from whichever worker ran it
    trials = _study(out)
    assert len(trials) == 4
    _check_each_once(out, trials, 4)
    assert "jtcse sweep: best" in done.stdout and (out / "best.toml").is_file()


def test_killed_worker_trial_is_failed_and_retried(tmp_path: Path, tiny_bert_dir: Path) -> None:
    from optuna.trial import TrialState

    # long enough trials (60 steps) that the kill lands inside the first one
    config, space, out = (
        base_config(tmp_path, tiny_bert_dir, steps=60),
        space_file(tmp_path),
        tmp_path / "sweep",
    )
    argv = sweep_command(config, space, out, "--trials", "2", "--pruner", "none")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(__import__("sys").path)}
    worker = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    metrics = out / "trials" / "0000" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and metrics.read_text().count("\n") >= 3) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worker.poll() is None, "the first trial ended before the kill"
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert [t.state for t in _study(out)] == [TrialState.RUNNING]

    rerun = run_sweep_cli([*argv, "--set", "train.max_steps=4"])  # the rerun's trials: short
    assert rerun.returncode == 0, rerun.stderr
    trials = _study(out)
    assert trials[0].state == TrialState.FAIL
    retry = [t for t in trials if t.system_attrs.get("failed_trial") == 0]
    assert len(retry) == 1 and retry[0].params == trials[0].params and retry[0].state == TrialState.COMPLETE
    assert sum(t.state == TrialState.COMPLETE for t in trials) == 2 and len(trials) == 3
    assert "| 0 | fail |" in (out / "sweep.md").read_text()


# ---------------------------------------------------------------------------------------------- PostgreSQL
def _pg_bin(name: str) -> str | None:
    found = shutil.which(name) or sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]
    return found if isinstance(found, str) else (found[0] if found else None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL server on 127.0.0.1 for this test; initdb refuses root, so as root it runs as nobody."""
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin")
    root = Path(tempfile.mkdtemp(prefix="jtcse-pg-"))
    as_user: list[str] = []
    user = os.environ.get("USER", "postgres")
    if os.geteuid() == 0:
        user, as_user = "nobody", ["runuser", "-u", "nobody", "--"]
        shutil.chown(root, user="nobody")
    data, port = root / "data", _free_port()
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", user], check=True, capture_output=True
    )
    options = f"-h 127.0.0.1 -p {port} -k {root}"
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield f"postgresql://{user}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(tmp_path: Path, tiny_bert_dir: Path, postgres: str) -> None:
    config, space, out = base_config(tmp_path, tiny_bert_dir), space_file(tmp_path), tmp_path / "sweep"
    argv = sweep_command(config, space, out, "--trials", "4", "--workers", "2", "--storage", postgres)
    done = run_sweep_cli([*argv, "--study", "pg"])
    assert done.returncode == 0, done.stderr
    _check_each_once(out, _study(out, postgres, "pg"), 4)
    assert not (out / "sweep.db").exists()
    assert f"optuna-dashboard {postgres}" in done.stdout
