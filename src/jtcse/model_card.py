"""Model cards: the README.md of every saved model directory.

``write_model_card`` is called by whatever saves a model (training, ensembles, export). Every piece is
optional; the card says what it has: what the model is (from ``jtcse.json``), how to load it, the data it
was trained on, the resolved config, a summary of the training curve from ``metrics.jsonl`` (first, best and
last value of each loss term; best dev score and its step) and the 7-task STS table.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jtcse.benchmark import in_task_order, md_table, short_name
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text
from jtcse.model.format import is_jtcse_dir, read_spec
from jtcse.records import Either, MapOf, Nullable, Num, Obj, read_record
from jtcse.run_files import (
    CARD_FILE,
    CONFIG_FILE,
    METRICS_FILE,
    NON_LOSS_FIELDS,
    STS_RESULTS_FILE,
    read_metrics,
)


def write_model_card(
    model_dir: str | Path,
    *,
    config: dict[str, Any] | None,
    data: str | None,
    metrics_path: Path | None,
    sts_report: dict[str, Any] | Any | None,
    title: str | None = None,
) -> Path:
    """Write ``model_dir/README.md`` (atomically) and return its path.

    ``config``: the resolved config; ``data``: a line about the training data; ``metrics_path``: a
    ``metrics.jsonl`` (a missing file: no curve section); ``sts_report``: ``StsReport.to_json()`` or the
    report itself.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise JtcseError(f"{model_dir}: not a directory; cannot write a model card there")
    text = render_model_card(
        model_dir, config=config, data=data, metrics_path=metrics_path, sts_report=sts_report, title=title
    )
    target = model_dir / CARD_FILE
    atomic_write_text(target, text)
    return target


def render_model_card(
    model_dir: str | Path,
    *,
    config: dict[str, Any] | None = None,
    data: str | None = None,
    metrics_path: Path | None = None,
    sts_report: dict[str, Any] | Any | None = None,
    title: str | None = None,
) -> str:
    model_dir = Path(model_dir)
    spec = read_spec(model_dir) if is_jtcse_dir(model_dir) else None
    parts = [_front_matter(), f"# {title or model_dir.name}\n"]
    parts.append(_model_section(model_dir, spec))
    if spec is not None and isinstance(spec.extra.get("onnx"), Mapping):
        parts.append(_onnx_section(spec.extra["onnx"]))
    parts.append(_usage_section())
    if data:
        parts.append(f"## Training data\n\n{data}\n")
    if sts_report is not None:
        parts.append(_sts_section(sts_report))
    if metrics_path is not None:
        parts.append(_curve_section(Path(metrics_path)))
    if config:
        parts.append(_config_section(config))
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------- sections


def _front_matter() -> str:
    return (
        "---\nlibrary_name: jtcse\npipeline_tag: sentence-similarity\n"
        "tags:\n- jtcse\n- sentence-embeddings\n- sentence-similarity\n---\n"
    )


def _model_section(model_dir: Path, spec: Any) -> str:
    if spec is None:
        return "A sentence encoder saved by jtcse.\n"
    lines = [
        f"A jtcse sentence encoder (kind `{spec.kind}`"
        + (f", method `{spec.method}`" if spec.method else "")
        + "). Its embedding is the weighted sum of its members' pooled vectors, unnormalised; "
        "compare embeddings with cosine similarity.\n",
        "| member | pooler | weight |",
        "|---|---|---|",
    ]
    lines += [f"| `{m.path}` | `{m.pooler}` | {m.weight:g} |" for m in spec.members]
    return "\n".join(lines) + "\n"


def _onnx_section(onnx: Mapping[str, Any]) -> str:
    """What ``jtcse export --format onnx`` wrote and the figures its self-check measured."""
    lines = [
        "## ONNX export\n",
        f"Precision `{onnx.get('precision', '?')}`. Each `graph_*/model.onnx` maps token ids and attention "
        "mask to the final embedding (pooling and weighted sums inside); `jtcse.Encoder` runs it with "
        "onnxruntime (`pip install 'jtcse[onnx]'`) and sums the graphs' vectors.\n",
    ]
    checks = onnx.get("checks")
    if isinstance(checks, Mapping):
        cosine = _number(checks.get("fp32_min_cosine_vs_torch"))
        if cosine is not None:
            lines.append(f"- fp32 graph vs torch, min cosine on probe sentences: {cosine:.7f}")
        cosine = _number(checks.get("int8_min_cosine_vs_fp32"))
        if cosine is not None:
            lines.append(f"- int8 vs fp32, min cosine on probe sentences: {cosine:.6f}")
        stsb = checks.get("stsb_dev_spearman")
        if isinstance(stsb, Mapping):
            lines.append(
                f"- STS-B dev Spearman x100: fp32 {_fmt_score(stsb.get('fp32'))}, "
                f"int8 {_fmt_score(stsb.get('int8'))}"
                + (" (loss accepted with --accept-loss)" if stsb.get("accepted_loss") else "")
            )
    return "\n".join(lines) + "\n"


def _usage_section() -> str:
    return (
        "## Usage\n\n"
        "```python\n"
        "import jtcse\n\n"
        'encoder = jtcse.Encoder("path/to/this/directory")\n'
        'vectors = encoder.encode(["A man is playing a guitar.", "Someone plays an instrument."])\n'
        "```\n\n"
        "From the shell: `jtcse eval sts --model DIR` (the 7 STS tasks), "
        '`jtcse similarity --model DIR "a" "b"`, '
        "`jtcse export --model DIR --format sentence-transformers OUT`.\n"
    )


def _fmt_score(value: object) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return f"{value:.2f}"
    return "n/a"


def _sts_section(report: Any) -> str:
    scores = report.to_json() if hasattr(report, "to_json") else report
    if not isinstance(scores, Mapping):
        return "## STS evaluation\n\n(no scores)\n"
    tasks = in_task_order(
        [
            t
            for t in scores
            if t not in ("avg", "details", "pairs") and not isinstance(scores[t], (dict, list))
        ]
    )
    names = [short_name(t) for t in tasks] + ["Avg."]
    values = [_fmt_score(scores.get(t)) for t in tasks] + [_fmt_score(scores.get("avg"))]
    mode = (scores.get("details") or {}).get("mode") if isinstance(scores.get("details"), Mapping) else None
    caption = "Spearman correlation x100 of cosine similarity"
    caption += f" ({mode} split)" if mode else ""
    caption += ', as SimCSE\'s SentEval fork computes it (STS12-16: the "all" setting).'
    return f"## STS evaluation\n\n{caption}\n\n" + "\n".join(md_table(names, [values])) + "\n"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def summarize_metrics(records: list[dict[str, Any]]) -> dict[str, Any]:
    """First / best (lowest) / last value and step of each loss term; best and last dev score.

    ``{"steps": int, "losses": {term: {"first": (step, v), "best": (step, v), "last": (step, v)}},
    "dev": {"key": str, "best": (step, v), "last": (step, v), "evals": int} | None,
    "sentences_per_s": float | None}``
    """
    losses: dict[str, dict[str, tuple[int, float]]] = {}
    dev: dict[str, Any] | None = None
    speeds = []
    steps = 0
    for record in records:
        step = record.get("step")
        if not isinstance(step, int):
            continue
        steps = max(steps, step)
        dev_keys = [k for k in record if k.startswith("dev_")]
        if dev_keys:
            key = dev_keys[0]
            value = _number(record[key])
            if value is not None:
                dev = dev or {"key": key, "best": (step, value), "last": (step, value), "evals": 0}
                dev["evals"] += 1
                dev["last"] = (step, value)
                if value > dev["best"][1]:
                    dev["best"] = (step, value)
            continue
        if (speed := _number(record.get("sentences_per_s"))) is not None:
            speeds.append(speed)
        for key, raw in record.items():
            value = _number(raw)
            if key in NON_LOSS_FIELDS or key.startswith(("best_", "dev_")) or value is None:
                continue
            term = losses.setdefault(
                key, {"first": (step, value), "best": (step, value), "last": (step, value)}
            )
            term["last"] = (step, value)
            if value < term["best"][1]:
                term["best"] = (step, value)
    return {
        "steps": steps,
        "losses": losses,
        "dev": dev,
        "sentences_per_s": sum(speeds) / len(speeds) if speeds else None,
    }


def _curve_section(metrics_path: Path) -> str:
    if not metrics_path.is_file():
        return "## Training curve\n\n(no metrics.jsonl was found)\n"
    summary = summarize_metrics(read_metrics(metrics_path))
    lines = ["## Training curve\n", f"{summary['steps']} steps, from `{metrics_path.name}`."]
    if summary["sentences_per_s"] is not None:
        lines[-1] += f" Mean throughput {summary['sentences_per_s']:.1f} sentences/s."
    if summary["losses"]:
        lines += ["", "| loss term | first (step) | best (step) | last (step) |", "|---|---|---|---|"]
        for term, v in summary["losses"].items():
            cells = [f"{v[k][1]:.4g} ({v[k][0]})" for k in ("first", "best", "last")]
            lines.append(f"| {term} | " + " | ".join(cells) + " |")
    dev = summary["dev"]
    if dev is not None:
        lines += [
            "",
            f"Dev score `{dev['key']}` over {dev['evals']} evaluations: best {dev['best'][1]:.2f} at step "
            f"{dev['best'][0]}, last {dev['last'][1]:.2f} at step {dev['last'][0]}.",
        ]
    return "\n".join(lines) + "\n"


def _config_section(config: dict[str, Any]) -> str:
    text = json.dumps(config, indent=2, sort_keys=False, default=str)
    return f"## Configuration\n\n```json\n{text}\n```\n"


# ------------------------------------------------------------------------------ cards of trained models


# sts_results.json: task -> Spearman x100 (null: NaN), plus "avg", and "details" / "pairs" objects
STS_RESULTS_SPEC = MapOf(Either((Nullable(Num(-100.0, 100.0)), Obj())))


def refresh_model_card(model_dir: str | Path, *, sts_report: dict[str, Any] | Any | None = None) -> Path:
    """(Re)write the card of a model directory from what it holds.

    Reads the resolved ``train_config.yaml`` (config and data line), ``metrics.jsonl`` (training curve) and
    ``sts_results.json`` (the 7-task table). A given ``sts_report`` (``StsReport`` or its ``to_json()``) is
    first saved as ``sts_results.json``, so later refreshes keep it. Training calls this at every export,
    ``jtcse eval sts`` after a full test-mode evaluation of a jtcse directory.
    """
    model_dir = Path(model_dir)
    results = model_dir / STS_RESULTS_FILE
    if sts_report is not None:
        payload = sts_report.to_json() if hasattr(sts_report, "to_json") else dict(sts_report)
        atomic_write_text(results, json.dumps(payload, indent=2) + "\n")
    elif results.is_file():
        sts_report = read_record(results, STS_RESULTS_SPEC, remedy="evaluate the model again (jtcse eval)")
    config = _read_train_config(model_dir / CONFIG_FILE)
    metrics = model_dir / METRICS_FILE
    return write_model_card(
        model_dir,
        config=config,
        data=_data_line(config),
        metrics_path=metrics if metrics.is_file() else None,
        sts_report=sts_report,
    )


def is_generated_card(model_dir: str | Path) -> bool:
    """True when ``model_dir`` has no README.md or one that jtcse wrote (never overwrite a user's own)."""
    card = Path(model_dir) / CARD_FILE
    return not card.exists() or card.read_text(encoding="utf-8", errors="replace").startswith(_front_matter())


def _read_train_config(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    import yaml

    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else None


def _data_line(config: dict[str, Any] | None) -> str | None:
    if not config or not isinstance(config.get("data"), dict):
        return None
    data = config["data"]
    amount = f"the first {data['max_sentences']} sentences of " if data.get("max_sentences") else ""
    corpus = data.get("corpus", "?")
    return f"Unsupervised: {amount}`{corpus}` (one sentence per line), max_len {data.get('max_len')}."
