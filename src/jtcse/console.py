"""What jtcse prints besides its own lines: nothing from third parties unless verbose.

``jtcse --verbose`` (or ``JTCSE_VERBOSE=1``) lets transformers, huggingface_hub, datasets and mteb print their
progress bars, logs and warnings as they like. Otherwise :func:`cli_output` silences them for a whole command
(environment defaults that the libraries read when imported, so later imports and child processes are quiet
too; Python warnings other than jtcse's own) and :func:`quiet_libraries` around each model load
(``jtcse.model.loading``), which also keeps library users' terminals free of transformers' "Loading weights"
bars. Both restore what they changed. jtcse's own progress bars (tqdm on stderr) are not affected.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterator

VERBOSE_ENV = "JTCSE_VERBOSE"

# Read by the libraries when they are imported: progress bars off, logs from errors up.
_QUIET_ENV = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "DATASETS_VERBOSITY": "error",
    "HF_HUB_VERBOSITY": "error",  # huggingface_hub's "Retrying in 1s [Retry 1/5]." warnings
}


def is_verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextlib.contextmanager
def quiet_libraries() -> Iterator[None]:
    """Around a third-party call: transformers and datasets (those already imported) without progress bars
    and with logs from errors up; unchanged when verbose."""
    if is_verbose():
        yield
        return
    with contextlib.ExitStack() as stack:
        if "transformers" in sys.modules:  # never imported just to be silenced (cold start)
            stack.enter_context(_quiet_transformers())
        if "datasets" in sys.modules:
            stack.enter_context(_quiet_datasets())
        yield


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    from transformers.utils import logging as hf_logging

    bars, level = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _quiet_datasets() -> Iterator[None]:
    import datasets  # its package-level switches: datasets.utils.tqdm can be shadowed by the tqdm class
    from datasets.utils import logging as ds_logging

    bars, level = datasets.is_progress_bar_enabled(), ds_logging.get_verbosity()
    datasets.disable_progress_bars()
    ds_logging.set_verbosity_error()
    try:
        yield
    finally:
        ds_logging.set_verbosity(level)
        if bars:
            datasets.enable_progress_bars()


@contextlib.contextmanager
def cli_output(*, verbose: bool, own_warning: type[Warning]) -> Iterator[None]:
    """For one ``jtcse`` command: verbose, or third-party output off (``own_warning``: the category still
    shown, jtcse's own notices)."""
    saved = {name: os.environ.get(name) for name in (VERBOSE_ENV, *_QUIET_ENV)}
    os.environ[VERBOSE_ENV] = "1" if verbose else "0"
    try:
        if verbose:
            yield
            return
        for name, setting in _QUIET_ENV.items():
            os.environ.setdefault(name, setting)
        with warnings.catch_warnings(), quiet_libraries():
            warnings.simplefilter("ignore")
            warnings.simplefilter("default", own_warning)
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
