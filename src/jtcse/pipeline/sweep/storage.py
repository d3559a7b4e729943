"""Where a sweep's study lives: Optuna's RDB storage (SQLite in OUT by default, any SQLAlchemy URL) with
heartbeats, so a trial whose worker died is failed and retried; and the sweep's output folder.

Heartbeats: every worker records one per running trial each ``heartbeat`` seconds; a RUNNING trial silent for
``2 x heartbeat`` (Optuna's grace period) is failed by the next worker that looks, and
:class:`optuna.storages.RetryHeartbeatStaleTrialCallback` queues a copy of it (same parameters, a new number).
"""

from __future__ import annotations

import warnings
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from jtcse.errors import JtcseError, first_line
from jtcse.output_policy import check_output

if TYPE_CHECKING:
    import optuna

DB_NAME = "sweep.db"
DEFAULT_HEARTBEAT_S = 30
# a SQLite writer waits this long for another worker's transaction instead of failing at once
_SQLITE_BUSY_S = 60
_CONNECT_TIMEOUT_S = 5


def sweep_output_dir(out: Path, *, ours: Collection[str], inputs: Mapping[str, Path]) -> Path:
    """The sweep's folder, checked by the one output policy (a folder of someone else's files, an input or a
    read-only place is refused before any trial) and created if needed. Several workers (processes, machines
    on a shared disk) write one sweep folder at once, each trial in its own ``trials/NNNN`` folder under that
    trial's own writer lock (``jtcse train``'s), and the reports through atomic writes; so the folder itself
    takes no exclusive lock. ``ours``: the names a sweep writes there (a rerun continues the study)."""
    check_output(out, option="--output-dir", ours=ours, inputs=inputs)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise JtcseError(f"--output-dir {out}: cannot create the folder ({exc.strerror or exc})") from exc
    return out


def default_url(out: Path) -> str:
    return f"sqlite:///{(out / DB_NAME).resolve()}"


def _engine_kwargs(url: str) -> dict[str, object]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": _SQLITE_BUSY_S}}
    if url.startswith("postgresql"):
        return {"connect_args": {"connect_timeout": _CONNECT_TIMEOUT_S}, "pool_pre_ping": True}
    if url.startswith("mysql"):
        return {"connect_args": {"connect_timeout": _CONNECT_TIMEOUT_S}, "pool_pre_ping": True}
    return {}


def open_storage(url: str, *, heartbeat: int = DEFAULT_HEARTBEAT_S) -> optuna.storages.RDBStorage:
    """The RDB storage at ``url`` with heartbeats and retries of stale trials; any failure to reach or open
    it is one line naming ``--storage``."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    shown = hide_password(url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = RDBStorage(
                url,
                engine_kwargs=_engine_kwargs(url),
                heartbeat_interval=heartbeat,
                grace_period=2 * heartbeat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=3),
            )
        if url.startswith("sqlite"):
            _sqlite_wal(storage)
        return storage
    except ImportError as exc:  # Optuna's own, naming no module: the URL's driver is missing
        raise JtcseError(
            f"--storage {shown}: the database driver of this URL is not installed "
            "(pip install 'jtcse[sweep]' brings psycopg for postgresql://)"
        ) from exc
    except Exception as exc:  # sqlalchemy's OperationalError, ArgumentError ...: report, no traceback
        raise JtcseError(f"--storage {shown}: cannot open the study storage: {first_line(exc)}") from exc


def _sqlite_wal(storage: optuna.storages.RDBStorage) -> None:
    """Every connection to a SQLite study in write-ahead-log mode (the file stays so) with
    ``synchronous=NORMAL``: readers no longer block the worker that writes, and a commit is one append that
    waits for no fsync; a crash keeps the file consistent and may lose the last commits only (a trial then
    runs again). WAL needs every worker on the machine that holds the file (a study on several machines
    belongs on a database server). The connections Optuna opened to set the study up are closed, so every
    later one passes through the hook."""
    from sqlalchemy import event

    def on_connect(connection: object, _record: object) -> None:
        cursor = connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(storage.engine, "connect", on_connect)
    storage.engine.dispose()


def hide_password(url: str) -> str:
    """``postgresql://user:***@host/db``: a storage URL may carry a password; messages never show it."""
    scheme, sep, rest = url.partition("://")
    auth, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in auth:
        return url
    return f"{scheme}://{auth.split(':', 1)[0]}:***@{host}"
