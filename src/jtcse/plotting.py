"""Plots of a training run and of an STS evaluation, as PNG files (matplotlib, no display needed).

* :func:`plot_run`: one PNG per loss term against step (raw values and a moving average), and the dev score
  against step with its best point marked, from a run's ``metrics.jsonl``.
* :func:`plot_eval`: per task, gold score against cosine similarity, from an eval JSON that carries per-pair
  data under ``pairs``: ``{"pairs": {"STS12": {"gold": [...], "cosine": [...], "subset": [...]?}, ...}}``.

Figures are drawn on the Agg canvas directly (no pyplot), so plotting never changes a caller's backend.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from jtcse.benchmark import in_task_order
from jtcse.errors import JtcseError
from jtcse.records import AnyValue, Either, ListOf, MapOf, Num, Obj, Str, check_record, read_record
from jtcse.run_files import METRICS_FILE, NON_LOSS_FIELDS, read_metrics

PLOTS_DIR = "plots"
# an eval JSON's pairs, past the checks with their own messages in read_eval_pairs
_PAIRS_SPEC = Obj(
    {
        "pairs": MapOf(
            Obj({"gold": ListOf(Num()), "cosine": ListOf(Num())}, {"subset": ListOf(Either((Str(), Num())))})
        )
    }
)
_DPI = 110


def _figure(width: float = 6.4, height: float = 4.0) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise JtcseError(
            "plotting needs matplotlib: pip install matplotlib (or pip install 'jtcse[plot]')"
        ) from exc
    fig = Figure(figsize=(width, height), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "value"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return number if math.isfinite(number) else None


def _moving_average(values: np.ndarray, window: int) -> np.ndarray:
    if window <= 1 or len(values) < window:
        return values
    kernel = np.ones(window) / window
    smooth = np.convolve(values, kernel, mode="valid")
    return np.concatenate([np.full(window - 1, np.nan), smooth])


# ---------------------------------------------------------------------------------------------- runs


def _metrics_file(run: str | Path) -> Path:
    run = Path(run)
    file = run / METRICS_FILE if run.is_dir() else run
    if not file.is_file():
        raise JtcseError(f"{run}: no {METRICS_FILE} here (expected a training run directory)")
    return file


def read_curves(
    run: str | Path,
) -> tuple[dict[str, tuple[list[int], list[float]]], tuple[str, list[int], list[float]] | None]:
    """Loss curves ``{term: (steps, values)}`` and the dev curve ``(key, steps, values)`` of a run."""
    file = _metrics_file(run)
    losses: dict[str, tuple[list[int], list[float]]] = {}
    dev_key, dev_steps, dev_values = None, [], []
    for record in read_metrics(file):
        step = record.get("step")
        if not isinstance(step, int):
            continue
        keys = [k for k in record if k.startswith("dev_")]
        if keys:
            value = _number(record[keys[0]])
            if value is not None:
                dev_key = dev_key or keys[0]
                dev_steps.append(step)
                dev_values.append(value)
            continue
        for key, raw in record.items():
            value = _number(raw)
            if key in NON_LOSS_FIELDS or key.startswith("best_") or value is None:
                continue
            steps, values = losses.setdefault(key, ([], []))
            steps.append(step)
            values.append(value)
    dev = (dev_key, dev_steps, dev_values) if dev_key else None
    return losses, dev


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """PNG per loss term (``loss_<term>.png``) and ``dev_score.png``; default folder ``RUN/plots``."""
    file = _metrics_file(run_dir)
    losses, dev = read_curves(file)
    if not losses and dev is None:
        raise JtcseError(f"{file}: no loss or dev-score records to plot")
    out = Path(out_dir) if out_dir is not None else file.parent / PLOTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for term, (steps, values) in losses.items():
        fig = _figure()
        ax = fig.add_subplot()
        y = np.asarray(values)
        window = max(1, len(y) // 50)
        ax.plot(steps, y, color="tab:blue", alpha=0.35 if window > 1 else 1.0, linewidth=0.8, label=term)
        if window > 1:
            ax.plot(
                steps,
                _moving_average(y, window),
                color="tab:blue",
                linewidth=1.6,
                label=f"mean of {window} steps",
            )
            ax.legend(loc="best", fontsize="small")
        ax.set_xlabel("step")
        ax.set_ylabel(term)
        ax.set_title(f"{term} vs step")
        ax.grid(alpha=0.3)
        written.append(_save(fig, out / f"loss_{_slug(term)}.png"))
    if dev is not None:
        key, steps, values = dev
        fig = _figure()
        ax = fig.add_subplot()
        ax.plot(steps, values, marker="o", markersize=3, color="tab:green")
        best = int(np.argmax(values))
        ax.scatter(
            [steps[best]],
            [values[best]],
            color="tab:red",
            zorder=3,
            label=f"best {values[best]:.2f} @ {steps[best]}",
        )
        ax.legend(loc="best", fontsize="small")
        ax.set_xlabel("step")
        ax.set_ylabel(key)
        ax.set_title(f"{key} vs step")
        ax.grid(alpha=0.3)
        written.append(_save(fig, out / "dev_score.png"))
    return written


# ---------------------------------------------------------------------------------------------- evals


def read_eval_pairs(eval_json: str | Path) -> tuple[dict[str, Any], dict[str, dict[str, list[Any]]]]:
    """The eval JSON and its ``pairs`` section, checked: one gold and one cosine per pair."""
    path = Path(eval_json)
    if not path.is_file():
        raise JtcseError(f"{path}: no such file")
    data = read_record(path, AnyValue())  # anything but UTF-8 JSON: one line
    pairs = data.get("pairs") if isinstance(data, Mapping) else None
    if not isinstance(pairs, Mapping) or not pairs:
        raise JtcseError(
            f"{path}: no per-pair data (a 'pairs' section with gold scores and cosines per task); "
            "the scatter plot needs an eval JSON written with the pairs"
        )
    for task, entry in pairs.items():
        if (
            not isinstance(entry, Mapping)
            or not isinstance(entry.get("gold"), list)
            or not isinstance(entry.get("cosine"), list)
        ):
            raise JtcseError(f"{path}: pairs.{task} needs lists 'gold' and 'cosine'")
        if len(entry["gold"]) != len(entry["cosine"]):
            raise JtcseError(
                f"{path}: pairs.{task}: {len(entry['gold'])} gold scores but {len(entry['cosine'])} cosines"
            )
    check_record(data, _PAIRS_SPEC, where=str(path))  # the values: finite numbers, subsets plain names
    return data, dict(pairs)


def plot_eval(eval_json: str | Path, out_dir: str | Path | None = None) -> list[Path]:
    """Per task ``scatter_<task>.png`` (gold vs cosine, coloured by subset if known) and ``scatter_all.png``.

    Default folder: ``<EVAL stem>_plots`` beside the JSON.
    """
    path = Path(eval_json)
    data, pairs = read_eval_pairs(path)
    out = Path(out_dir) if out_dir is not None else path.with_name(f"{path.stem}_plots")
    out.mkdir(parents=True, exist_ok=True)
    tasks = in_task_order(list(pairs))
    written = []
    for task in tasks:
        fig = _figure(5.0, 4.2)
        _scatter(fig.add_subplot(), task, pairs[task], data.get(task))
        written.append(_save(fig, out / f"scatter_{_slug(task)}.png"))
    cols = min(4, len(tasks))
    rows = math.ceil(len(tasks) / cols)
    fig = _figure(3.6 * cols, 3.2 * rows)
    for i, task in enumerate(tasks):
        _scatter(fig.add_subplot(rows, cols, i + 1), task, pairs[task], data.get(task), legend=False)
    written.append(_save(fig, out / "scatter_all.png"))
    return written


def _scatter(ax: Any, task: str, entry: Mapping[str, Any], score: Any, *, legend: bool = True) -> None:
    gold = np.asarray(entry["gold"], dtype=float)
    cosine = np.asarray(entry["cosine"], dtype=float)
    subsets = entry.get("subset")
    if isinstance(subsets, list) and len(subsets) == len(gold) and len(set(subsets)) > 1:
        names = list(dict.fromkeys(subsets))
        labels = np.asarray(subsets)
        for name in names:
            mask = labels == name
            ax.scatter(cosine[mask], gold[mask], s=4, alpha=0.4, label=name)
        if legend and len(names) <= 10:
            ax.legend(loc="upper left", fontsize="x-small", markerscale=2)
    else:
        ax.scatter(cosine, gold, s=4, alpha=0.4, color="tab:blue")
    title = task
    if (value := _number(score)) is not None:
        title += f" (Spearman {value:.2f})"
    ax.set_title(f"{title}, n={len(gold)}", fontsize="small")
    ax.set_xlabel("cosine similarity")
    ax.set_ylabel("gold score")
    ax.grid(alpha=0.3)


def plot_attention_sink(report: Any, path: str | Path) -> Path:
    """Two panels of a :class:`jtcse.analysis.attention_sink.DiagnoseReport` against layer: attention mass
    on [CLS] and E_CLS, one line per model or tower."""
    fig = _figure(11, 4.2)
    ax_attn, ax_ratio = fig.subplots(1, 2)
    for s in report.series:
        attn = [(i, v) for i, v in enumerate(s.cls_attention_mass) if v is not None]
        ax_attn.plot([i for i, _ in attn], [v for _, v in attn], marker="o", label=s.label)
        ratio = [math.nan if v is None else v for v in s.e_cls]
        ax_ratio.plot(range(len(ratio)), ratio, marker="o", label=s.label)
    ax_attn.set(title="attention mass on [CLS]", xlabel="layer", ylabel="mean attention probability")
    ax_ratio.set(
        title="E_CLS = ||h_CLS|| / mean ||h_token||", xlabel="layer (0 = embeddings)", ylabel="ratio"
    )
    ax_ratio.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    for ax in (ax_attn, ax_ratio):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize="small")
    n = report.settings.get("n_sentences")
    fig.suptitle(f"attention-sink diagnostic ({n} sentences)" if n else "attention-sink diagnostic")
    return _save(fig, Path(path))
