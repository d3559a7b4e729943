"""Writing ``metrics.jsonl`` as training goes (and TensorBoard, optionally); its fields and reader live in
:mod:`jtcse.run_files`."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text
from jtcse.run_files import METRICS_FILE, TENSORBOARD_DIR, TIMING_FIELDS, read_metrics, without_timing

__all__ = [
    "METRICS_FILE",
    "TIMING_FIELDS",
    "MetricsLog",
    "Throughput",
    "read_metrics",
    "require_tensorboard",
    "truncate_after",
    "without_timing",
]


class MetricsLog:
    """Append-only metrics.jsonl writer, with an optional TensorBoard mirror."""

    def __init__(self, output_dir: str | Path, *, tensorboard: bool = False) -> None:
        self.path = Path(output_dir) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self._tb = _tensorboard_writer(Path(output_dir) / TENSORBOARD_DIR) if tensorboard else None

    def log(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps({k: _jsonable(v) for k, v in record.items()}) + "\n")
        self._fh.flush()
        if self._tb is not None:
            step = int(record["step"])
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()

    def __enter__(self) -> MetricsLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Throughput:
    """Sentences per second of training alone, over a window of steps: the time spent on dev evaluation and
    checkpoints (:meth:`pause`) is taken out."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.start, self.sentences, self.paused = time.perf_counter(), 0, 0.0

    def add(self, sentences: int) -> None:
        self.sentences += sentences

    def pause(self, seconds: float) -> None:
        self.paused += seconds

    def rate(self) -> float:
        return self.sentences / max(time.perf_counter() - self.start - self.paused, 1e-9)


def truncate_after(path: str | Path, step: int) -> None:
    """Drop the records after ``step`` (a resumed run rewrites them), atomically."""
    path = Path(path)
    if not path.is_file():
        return
    kept = [r for r in read_metrics(path) if int(r.get("step", 0)) <= step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def _jsonable(value: object) -> Any:  # a JSON value: its type depends on the input
    if hasattr(value, "item"):  # tensors, numpy scalars
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN/inf
    return value


def require_tensorboard() -> Any:
    """torch's SummaryWriter class, or a one-line error saying what to install."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise JtcseError(
            "train.tensorboard = true needs the tensorboard package: pip install tensorboard "
            "(or pip install 'jtcse[tensorboard]')"
        ) from exc
    return SummaryWriter


def _tensorboard_writer(log_dir: Path) -> Any:
    return require_tensorboard()(log_dir=str(log_dir))
