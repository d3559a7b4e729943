"""The run directory's vocabulary: its file names and the fields of ``metrics.jsonl``.

One home for names that training writes and model cards, plots and experiments read (a low layer: it imports
nothing of jtcse, so every layer may use it)::

    OUT/
      jtcse.json + model files     the model (jtcse.model.format)
      README.md                    CARD_FILE: the model card (jtcse.model_card)
      train_config.yaml            CONFIG_FILE: the resolved config (jtcse.training.config)
      metrics.jsonl                METRICS_FILE: one JSON object per line (below)
      environment.json             ENVIRONMENT_FILE: versions, device, command line; one entry per start
      sts_results.json             STS_RESULTS_FILE: the 7-task STS report, once evaluated
      checkpoint/state.pt          CHECKPOINT_DIR / STATE_FILE: the resumable state (jtcse.training.state)
      tensorboard/                 TENSORBOARD_DIR: when train.tensorboard = true

``metrics.jsonl`` has two kinds of lines, both with ``step``:

* training: ``{"step", "epoch", "loss", <each loss term>, "lr", ["loss_scale",] "sentences_per_s",
  "elapsed_s"}``; the loss values are those of that step (not averages), so a resumed run writes exactly
  what an unbroken run writes;
* dev evaluation: ``{"step", "dev_stsb", "best_dev_stsb", "best_step", "eval_s", "elapsed_s"}``.

:data:`TIMING_FIELDS` are the only values that differ between two runs with one seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jtcse.records import Int, Obj, read_lines

CARD_FILE = "README.md"
CONFIG_FILE = "train_config.yaml"
METRICS_FILE = "metrics.jsonl"
ENVIRONMENT_FILE = "environment.json"
STS_RESULTS_FILE = "sts_results.json"
CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"
TENSORBOARD_DIR = "tensorboard"

# metrics.jsonl fields
DEV_SCORE = "dev_stsb"
"""The dev score of an evaluation line (STS-B dev Spearman x100); ``best_`` + it: the best so far."""
TIMING_FIELDS = ("sentences_per_s", "elapsed_s", "eval_s")
NON_LOSS_FIELDS = frozenset(
    {
        "step",
        "epoch",
        "lr",
        "loss_scale",
        "sentences_per_s",
        "elapsed_s",
        "eval_s",
        "best_step",
        "tokens_per_s",
        "grad_norm",
    }
)
"""Numeric fields of a training line that are not loss terms (with ``best_*`` and ``dev_*`` fields)."""


# a line of metrics.jsonl: an object; "step" (what a resume truncates by) a count. Other values are numbers,
# or strings for the non-finite ones ("nan": JSON has none)
METRICS_LINE_SPEC = Obj(optional={"step": Int(0)})


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl; a torn last line (a crash mid-write) is ignored, any other damaged
    line is a one-line :class:`~jtcse.errors.JtcseError` naming ``FILE:LINE`` and the field."""
    return read_lines(path, METRICS_LINE_SPEC)


def without_timing(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records without :data:`TIMING_FIELDS`: what two runs with one seed share exactly."""
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in records]
