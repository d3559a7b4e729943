"""What surrounds the training loop on the terminal and on disk: the progress bar, the metrics log, the
Ctrl-C flag (finish the step, checkpoint, stop), quiet transformers bars, and the trainer's own lines."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING, NoReturn

from tqdm import tqdm

from jtcse.training import distributed
from jtcse.training.metrics import MetricsLog

if TYPE_CHECKING:
    from jtcse.training.run_setup import Run

# rank 0 logs to OUT/metrics.jsonl, the other ranks nowhere
MetricsSink = MetricsLog | distributed.NoMetrics


@contextlib.contextmanager
def loop_context(run: Run, step: int) -> Iterator[tuple[tqdm[NoReturn], MetricsSink, Callable[[], bool]]]:
    """The progress bar, the metrics log (rank 0; the others log nowhere), the Ctrl-C flag, and quiet
    transformers progress bars, for the duration of the loop."""
    with contextlib.ExitStack() as stack:
        bar = stack.enter_context(
            tqdm(
                total=run.total_steps,
                initial=step,
                disable=not run.config.train.progress or not run.dist.is_main,
                unit="step",
                dynamic_ncols=True,
                file=sys.stderr,
            )
        )
        if run.dist.is_main:
            metrics: MetricsSink = stack.enter_context(
                MetricsLog(run.out, tensorboard=run.config.train.tensorboard)
            )
        else:
            metrics = stack.enter_context(distributed.NoMetrics())
        stop_requested = stack.enter_context(_graceful_stop())
        stack.enter_context(_quiet_transformers())
        yield bar, metrics, stop_requested


@contextlib.contextmanager
def _graceful_stop() -> Iterator[Callable[[], bool]]:
    """First Ctrl-C: finish the current step, write a checkpoint, stop. Second Ctrl-C: abort at once."""
    requested = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield requested.is_set
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if requested.is_set():
            raise KeyboardInterrupt
        requested.set()
        distributed.say(
            "\njtcse train: stopping after this step (Ctrl-C again to abort without a checkpoint)"
        )

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield requested.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """No "Writing model shards" bars from transformers under our own bar while exporting."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()
