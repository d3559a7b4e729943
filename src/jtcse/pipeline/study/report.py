"""The study's report: ``study.md`` (tables, settings, hardware, design, attention sinking, figures) and
``study.json`` (every number)."""

from __future__ import annotations

import json
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jtcse.benchmark import fmt_mean_std, fmt_score, fmt_seconds, md_table, short_name
from jtcse.errors import JtcseError
from jtcse.pipeline.runner import TOWER_B_SEED_OFFSET
from jtcse.pipeline.study.figures import figures
from jtcse.pipeline.study.plan import Plan
from jtcse.pipeline.study.run import Score, with_dev
from jtcse.pipeline.study.scales import LABELS, VARIANTS, Variant, compute_units


def write_report(
    plan: Plan,
    scores: list[Score],
    results_dir: Path,
    *,
    command: str,
    recorded_s: float,
    wall_s: float,
    sink: Any = None,
    resumed: bool = False,
) -> Path:
    """Write ``study.md`` and ``study.json`` (and the figures) under ``results_dir``; return study.md."""
    from jtcse.fs import atomic_write_text

    results_dir.mkdir(parents=True, exist_ok=True)
    present = [v for v in VARIANTS if any(s.variant == v.key for s in scores)]
    drawn = figures(plan, scores, present, results_dir)
    lines = _head(plan, command, recorded_s, wall_s, resumed)
    lines += [*_summary_table(plan, scores, present), ""]
    for key, why in plan.skipped_variants.items():
        lines += [f"**{LABELS[key]}: not run.** {why}.", ""]
    lines += ["## Per seed", "", *_per_seed_table(plan, scores, present), ""]
    if sink is not None:
        lines += _sink_section(sink, results_dir)
    lines += _design_section(plan)
    if drawn:
        lines += ["## Figures", ""]
        lines += [
            f"![{caption}]({path})" if path.endswith("png") else f"- {caption}: {path}"
            for caption, path in drawn
        ]
        lines.append("")
    md = results_dir / "study.md"
    atomic_write_text(md, "\n".join(lines) + "\n")
    payload = json.dumps(_payload(plan, scores, command), indent=2)
    atomic_write_text(results_dir / "study.json", payload + "\n")
    return md


def _head(plan: Plan, command: str, recorded_s: float, wall_s: float, resumed: bool) -> list[str]:
    scale = plan.scale
    used = f"at most its first {scale.max_sentences} sentences" if scale.max_sentences else "all sentences"
    return [
        f"# JTCSE study, {scale.name} scale",
        "",
        f"**What this scale shows:** {scale.shows}",
        "",
        f"**What it cannot show:** {scale.does_not_show}",
        "",
        f"Reproduce: `{command}`",
        "",
        f"- backbone: `{plan.base_model}`; corpus: `{plan.corpus}` ({used});"
        f" seeds: {', '.join(map(str, plan.seeds))} (tower B of seed s uses seed s + {TOWER_B_SEED_OFFSET})",
        f"- hardware: {_hardware()}",
        f"- software: {_software()}",
        f"- run time: {fmt_seconds(recorded_s)} for all runs (training and evaluation, as measured when each "
        f"ran); this invocation took {fmt_seconds(wall_s)}"
        + (" (with --resume: it reused the finished runs and evaluations)" if resumed else ""),
        "",
        "## 7-task STS (Spearman x100), mean ± std over seeds"
        if len(plan.tasks) == 7
        else "## STS (Spearman x100)",
        "",
        "dev = STS-B dev"
        + (" (the best in-loop score, which also chose each trained model)" if with_dev(plan) else " (off)")
        + "; avg = mean of the test columns; std = sample standard deviation over seeds (only the mean with "
        "one seed); compute = encoder passes in tower-steps (below); train = training wall time of the "
        "variant's whole pipeline (stage 1 included), mean over seeds; eval = evaluation time.",
        "",
    ]


def _summary_table(plan: Plan, scores: list[Score], present: list[Variant]) -> list[str]:
    tasks = plan.tasks
    head = ["variant", "seeds", "dev", *(short_name(t) for t in tasks), "avg", "compute", "train", "eval"]
    rows = []
    for v in present:
        group = [s for s in scores if s.variant == v.key]
        seeds = ", ".join(str(s.seed) for s in group if s.seed is not None) or "-"
        train = _mean([s.train_s for s in group])
        rows.append(
            [
                v.label,
                seeds,
                fmt_mean_std([s.dev for s in group]),
                *(fmt_mean_std([s.test.get(t, math.nan) for s in group]) for t in tasks),
                fmt_mean_std([s.test.get("avg", math.nan) for s in group]),
                compute_units(v.key, plan.scale),
                fmt_seconds(train) if train else "-",
                fmt_seconds(_mean([s.eval_s for s in group])),
            ]
        )
    return md_table(head, rows)


def _per_seed_table(plan: Plan, scores: list[Score], present: list[Variant]) -> list[str]:
    tasks = plan.tasks
    head = ["variant", "seed", "dev", *(short_name(t) for t in tasks), "avg", "train", "eval"]
    rows = [
        [
            LABELS[s.variant],
            "-" if s.seed is None else str(s.seed),
            fmt_score(s.dev),
            *(fmt_score(s.test.get(t)) for t in tasks),
            fmt_score(s.test.get("avg")),
            fmt_seconds(s.train_s) if s.train_s else "-",
            fmt_seconds(s.eval_s),
        ]
        for v in present
        for s in scores
        if s.variant == v.key
    ]
    return md_table(head, rows)


def _payload(plan: Plan, scores: list[Score], command: str) -> dict[str, Any]:
    return {
        "scale": plan.scale.__dict__,
        "command": command,
        "base_model": plan.base_model,
        "seeds": plan.seeds,
        "tasks": plan.tasks,
        "skipped": plan.skipped_variants,
        "scores": [
            {
                "variant": s.variant,
                "seed": s.seed,
                "dev": s.dev,
                "test": {k: (None if math.isnan(v) else v) for k, v in s.test.items()},
                "train_s": s.train_s,
                "eval_s": s.eval_s,
            }
            for s in scores
        ],
    }


def _sink_section(report: Any, results_dir: Path) -> list[str]:
    """attention_sink.json, attention_sink.png and two markdown tables (layers x series)."""
    from jtcse.fs import atomic_write_text
    from jtcse.plotting import plot_attention_sink

    atomic_write_text(results_dir / "attention_sink.json", json.dumps(report.to_json(), indent=2) + "\n")
    labels = [s.label for s in report.series]
    layers = range(max(s.num_layers for s in report.series) + 1)

    def table(metric: str) -> list[str]:
        rows = [
            [str(i), *(_num4(getattr(s, metric)[i] if i <= s.num_layers else None) for s in report.series)]
            for i in layers
        ]
        return md_table(["layer", *labels], rows)

    settings = report.settings
    lines = [
        "## Attention sinking on [CLS]",
        "",
        f"`jtcse diagnose` readings ({settings['n_sentences']} STS-B test sentences, truncated to "
        f"{settings['max_length']} tokens) of the start model and the seed-{settings['seed']} encoders: "
        "stage1_a is the SimCSE tower both twins start from (tower A; tower B differs only in its seed), "
        "`:a`/`:b` are the towers of a twin. Attention mass = the attention probability the tokens "
        "(not [CLS] itself) put on the [CLS] key, averaged over heads, tokens and sentences; "
        "E_CLS = ||h_CLS|| / mean ||h_token|| (layer 0 = embeddings). The paper reads a high mass on "
        "[CLS] and a large E_CLS as attention sinking and reports that cross-attention lowers them; "
        "compare jtcse with tncse (the same towers trained without cross-attention).",
        "",
        "Attention mass on [CLS]:",
        "",
        *table("cls_attention_mass"),
        "",
        "E_CLS:",
        "",
        *table("e_cls"),
        "",
    ]
    try:
        plot_attention_sink(report, results_dir / "attention_sink.png")
        lines += ["![attention sinking per layer](attention_sink.png)", ""]
    except JtcseError as exc:  # matplotlib missing
        lines += [f"(figure skipped: {exc})", ""]
    return lines


def _num4(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.4f}"


def _design_section(plan: Plan) -> list[str]:
    scale = plan.scale
    s1, s = scale.stage1_steps, scale.stage2_steps
    twin_lr = (
        "each method's official default (jtcse 1.3e-6, tncse 1e-6)"
        if scale.twin_lr is None
        else (f"{scale.twin_lr:g} for both")
    )
    lines = [
        "## Design",
        "",
        "Equal compute is counted in **encoder passes**: a tower-step is one forward and backward pass of "
        f"one encoder over a batch of {scale.batch_size} sentences, each read twice with different dropout "
        f"({2 * scale.batch_size} rows). The twin-tower pipelines cost 2 x {s1} stage-1 steps plus "
        f"{s} twin steps of two encoders each: {2 * (s1 + s)} tower-steps. SimCSE gets the same "
        f"{2 * (s1 + s)} steps on one encoder; the summed towers get {s1 + s} steps each. The "
        "cross-attention branch adds one attention-times-values product per CA layer (not counted). "
        f"JTCSE-D costs its teacher's pipeline plus {scale.distill_steps} distillation steps (the student "
        "reads each sentence once; the frozen teacher adds two forward passes without gradients).",
        "",
        "| variant | what |",
        "|---|---|",
        *(f"| {v.label} | {v.what} |" for v in VARIANTS),
        "",
        f"Settings: batch {scale.batch_size}; max_len {scale.max_len} (SimCSE), {scale.stage2_max_len} "
        f"(twin towers, distillation); SimCSE lr {scale.simcse_lr:g} (linear decay); twin-tower lr {twin_lr} "
        f"(constant); distillation lr {scale.distill_lr:g}; "
        + (
            f"STS-B dev every {scale.eval_every} steps, the best state kept"
            if scale.eval_every
            else "no in-loop STS-B dev, the final state kept"
        )
        + "; other keys: each method's defaults (`jtcse/training/config/defaults.py`), "
        "so TNCSE-style also differs from JTCSE in its dropout (0.00025) and "
        "fixed ICNCE direction, as in TNCSE's own recipe. " + "; ".join(plan.notes) + ".",
        "",
        "Seeded and deterministic on CPU: rerunning the command gives the same scores on the same "
        "hardware, software and thread count (times differ). On GPU, cuDNN runs in deterministic mode, but "
        "scores can still differ in the last digits between machines.",
        "",
    ]
    return lines


def _hardware() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    text = f"{cpu}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads"
    if torch.cuda.is_available():
        text += f"; GPU {torch.cuda.get_device_name(0)}"
    return text


def _software() -> str:
    import torch
    import transformers

    from jtcse import __version__

    return (
        f"jtcse {__version__}, torch {torch.__version__}, transformers {transformers.__version__}, "
        f"Python {platform.python_version()}"
    )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0
