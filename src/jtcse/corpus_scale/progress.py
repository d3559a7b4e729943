"""Progress lines for long encodes: lines done, sentences per second and time left, every few seconds.

Plain lines (not a redrawn bar) so that they read well in a log file and from several ranks at once.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    """Counts lines towards ``total`` and prints a line at most every ``interval`` seconds."""

    def __init__(
        self,
        total: int,
        *,
        prefix: str = "encode",
        unit: str = "lines",
        enabled: bool = True,
        interval: float = 10.0,
        stream: TextIO | None = None,
    ) -> None:
        self.total, self.prefix, self.enabled, self.interval = total, prefix, enabled, interval
        self.unit = unit
        self.stream = stream or sys.stderr
        self.done = 0
        self.started = time.perf_counter()
        self.last_print = self.started

    def advance(self, lines: int, *, force: bool = False) -> None:
        self.done += lines
        now = time.perf_counter()
        if self.enabled and (force or now - self.last_print >= self.interval):
            self.last_print = now
            print(self.line(now), file=self.stream, flush=True)

    def rate(self, now: float | None = None) -> float:
        elapsed = (now or time.perf_counter()) - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def line(self, now: float | None = None) -> str:
        rate = self.rate(now)
        left = (self.total - self.done) / rate if rate > 0 else float("nan")
        eta = format_duration(left) if left == left else "?"
        percent = 100.0 * self.done / self.total if self.total else 100.0
        return (
            f"{self.prefix}: {self.done:,}/{self.total:,} {self.unit} ({percent:.1f}%), "
            f"{rate:,.0f} {'sentences' if self.unit == 'lines' else self.unit}/s, ETA {eta}"
        )
