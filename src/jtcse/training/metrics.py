"""``metrics.jsonl``: one JSON object per line, appended as training goes (and TensorBoard, optionally).

Two kinds of lines, both with ``step``:

* training: ``{"step", "epoch", "loss", <each loss term>, "lr", "sentences_per_s", "elapsed_s"}``; the loss
  values are those of that step (not averages), so a resumed run writes exactly what an unbroken run writes;
* dev evaluation: ``{"step", "dev_stsb", "best_dev_stsb", "best_step", "eval_s", "elapsed_s"}``.

:data:`TIMING_FIELDS` are the only values that differ between two runs with one seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text

METRICS_FILE = "metrics.jsonl"
TIMING_FIELDS = ("sentences_per_s", "elapsed_s", "eval_s")


class MetricsLog:
    """Append-only metrics.jsonl writer, with an optional TensorBoard mirror."""

    def __init__(self, output_dir: str | Path, *, tensorboard: bool = False) -> None:
        self.path = Path(output_dir) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = self.path.open("a", encoding="utf-8")
        self._tb = _tensorboard_writer(Path(output_dir) / "tensorboard") if tensorboard else None

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


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl; a torn last line (a crash mid-write) is ignored."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def truncate_after(path: str | Path, step: int) -> None:
    """Drop the records after ``step`` (a resumed run rewrites them), atomically."""
    path = Path(path)
    if not path.is_file():
        return
    kept = [r for r in read_metrics(path) if int(r.get("step", 0)) <= step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def without_timing(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]


def _jsonable(value: Any) -> Any:
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
