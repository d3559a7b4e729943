"""Writing the run directory (rank 0 only): the resolved config, the exported model and its card, the
environment record. File names: :mod:`jtcse.run_files`."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jtcse.fs import atomic_write_text, removed_on_failure
from jtcse.integrity import parameter_bytes
from jtcse.launcher import launched_world
from jtcse.locks import output_lock
from jtcse.model.format import CONFIG_NAME as MODEL_SPEC
from jtcse.output_policy import check_output
from jtcse.records import ListOf, Obj, read_record
from jtcse.run_files import CHECKPOINT_DIR, CONFIG_FILE, ENVIRONMENT_FILE, METRICS_FILE
from jtcse.training import distributed
from jtcse.training.config import Config, dump_yaml
from jtcse.training.metrics import truncate_after
from jtcse.training.tasks import Task

# what makes a folder a run directory (jtcse.output_policy's "ours"): a new run may go into one only with
# --resume or when it holds no checkpoint (run_setup), and never into a folder of someone else's files
RUN_FILES = (CONFIG_FILE, METRICS_FILE, ENVIRONMENT_FILE, CHECKPOINT_DIR, MODEL_SPEC, ".export.tmp")


def check_run_dir(config: Config) -> None:
    """Before any work: ``OUT`` is new, empty or a run directory, writable, and none of the run's inputs."""
    model, data = config.model, config.data
    inputs = {
        "model.base": model.base,
        "model.tower_a": model.tower_a,
        "model.tower_b": model.tower_b,
        "data.corpus": data.corpus,
        "distill.teacher": config.distill.teacher,
    }
    holders = {"data.data_dir": data.data_dir}  # runs/ inside a project folder that is the data dir: fine
    check_output(config.output_dir, option="--output-dir", ours=RUN_FILES, inputs=inputs, holders=holders)


@contextlib.contextmanager
def writer_lock(out: Path) -> Iterator[None]:
    """One writer per run directory (:mod:`jtcse.locks`): rank 0 holds ``OUT``'s lock for the whole job (it
    alone writes there); the other ranks of a torchrun job take none. A second job stops with one line."""
    if launched_world()[0] != 0:
        yield
        return
    with output_lock(out, what="--output-dir"):
        yield


def prepare(out: Path, config: Config, *, resumed_at: int | None) -> None:
    """A fresh run: the output directory with the resolved config and no metrics of a run that died before
    its first checkpoint. A resumed run: the metrics after the checkpoint's step dropped (rewritten)."""
    if not distributed.is_main_process():
        return
    if resumed_at is not None:
        truncate_after(out / METRICS_FILE, resumed_at)
        return
    out.mkdir(parents=True, exist_ok=True)
    (out / METRICS_FILE).unlink(missing_ok=True)
    atomic_write_text(out / CONFIG_FILE, dump_yaml(config))


def export_model(task: Task, out: Path, facts: dict[str, Any]) -> None:
    """Write the inference model into ``out``: built in a temporary folder, then moved in piece by piece
    (each file and tower folder replaced in one rename; ``jtcse.json`` last, so its presence means a complete
    model), then the card."""
    if not distributed.is_main_process():
        return
    staging = out / ".export.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # a full disk is one line (with the space needed) and leaves no staging folder
    with removed_on_failure(staging, out, size_hint=parameter_bytes(task)):
        task.save_model(staging, {"train_config": CONFIG_FILE, **facts})
    for entry in sorted(staging.iterdir(), key=lambda p: p.name == MODEL_SPEC):
        target = out / entry.name
        if entry.is_dir():
            old = out / f".old.{entry.name}"
            shutil.rmtree(old, ignore_errors=True)
            if target.exists():
                os.replace(target, old)
            os.replace(entry, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(entry, target)
    shutil.rmtree(staging, ignore_errors=True)
    write_card(out)


def write_card(out: Path) -> None:
    """The model card (README.md): config, data, training curve so far, STS table once evaluated; only when
    ``out`` holds a model and no card of the user's own."""
    from jtcse.model_card import is_generated_card, refresh_model_card

    if distributed.is_main_process() and (out / MODEL_SPEC).exists() and is_generated_card(out):
        refresh_model_card(out)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"{device} ({torch.get_num_threads()} threads)"


def record_environment(
    out: Path, config: Config, device: torch.device, *, resumed_at: int | None, extra: dict[str, Any]
) -> None:
    """Append this start's entry (versions, device, threads, command line) to ``environment.json``."""
    if not distributed.is_main_process():
        return
    import transformers

    from jtcse import __version__

    entry = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "resumed_at_step": resumed_at,
        "argv": sys.argv,
        "jtcse": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "device": describe_device(device),
        "cuda": torch.version.cuda,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "seed": config.seed,
        **extra,
    }
    path = out / ENVIRONMENT_FILE
    runs: list[Any] = []
    if path.is_file():  # the environments of the earlier starts of this run (resumes), kept
        remedy = "delete it (it lists the environments of earlier starts of this run)"
        runs = read_record(path, Obj({"runs": ListOf(Obj())}), remedy=remedy)["runs"]
    atomic_write_text(path, json.dumps({"runs": [*runs, entry]}, indent=2) + "\n")
