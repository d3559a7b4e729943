"""The study's figures: the average per variant (``study_avg.png``) and the first seed's training curves."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

from jtcse.benchmark import mean_std
from jtcse.errors import JtcseError
from jtcse.pipeline.study.plan import Plan
from jtcse.pipeline.study.run import Score
from jtcse.pipeline.study.scales import Variant


def figures(
    plan: Plan, scores: list[Score], present: list[Variant], results_dir: Path
) -> list[tuple[str, str]]:
    """study_avg.png and, for the first seed, each trained run's curves (jtcse.plotting.plot_run)."""
    from jtcse.plotting import plot_run

    figures: list[tuple[str, str]] = []
    try:
        figures.append(
            (
                "avg STS per variant",
                _bar_chart(scores, present, results_dir / "study_avg.png", plan.scale.name),
            )
        )
        curves = results_dir / "curves"
        shutil.rmtree(curves, ignore_errors=True)
        first = plan.seeds[0]
        for run in [
            r
            for r in plan.runs
            if r.seed == first and r.key in ("simcse", "stage1_a", "tncse", "jtcse", "jtcse_d")
        ]:
            written = plot_run(run.config.output_dir, curves / run.key)
            listing = ", ".join(f"[{p.stem}]({p.relative_to(results_dir).as_posix()})" for p in written)
            figures.append((f"training curves of {run.key} (seed {first})", listing))
    except JtcseError as exc:  # matplotlib missing: the tables still stand
        plan.notes.append(f"figures skipped ({exc})")
    return figures


def _bar_chart(scores: list[Score], present: list[Variant], path: Path, scale_name: str) -> str:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise JtcseError("the figures need matplotlib: pip install matplotlib") from exc
    fig = Figure(figsize=(8.0, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    finite: list[float] = []
    for i, v in enumerate(present):
        values = [s.test.get("avg", math.nan) for s in scores if s.variant == v.key]
        mean, std = mean_std(values)
        if math.isnan(mean):
            continue
        ax.bar(i, mean, yerr=std or 0.0, capsize=4, color="tab:blue" if "jtcse" in v.key else "tab:gray")
        ax.scatter([i] * len(values), values, color="black", s=10, zorder=3)
        top = max([mean + (std or 0.0), *values])  # the label goes above the whisker and the dots
        ax.annotate(f"{mean:.2f}", (i, top), xytext=(0, 4), textcoords="offset points", ha="center")
        finite += [x for x in values if not math.isnan(x)]
    if finite:  # zoom in: the differences are a few points on a scale of 100
        low, high = min(finite), max(finite)
        pad = max(1.0, 0.15 * (high - low))
        ax.set_ylim(low - 2 * pad, high + 2 * pad)
    ax.set_xticks(range(len(present)), [v.label for v in present], rotation=20, ha="right", fontsize="small")
    ax.set_ylabel("avg Spearman x100 (axis not from 0)")
    ax.set_title(f"STS avg per variant, {scale_name} scale (bars: mean, whiskers: std, dots: seeds)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png")
    return path.name
