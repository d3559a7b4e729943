#!/usr/bin/env python
"""The JTCSE study: the start model, SimCSE, two summed SimCSE towers, TNCSE-style, JTCSE and JTCSE-D, trained
at equal compute from one backbone on one corpus, evaluated on the 7 STS tasks, for several seeds.

    python experiments/study.py --scale tiny      # smoke test, minutes
    python experiments/study.py --scale small     # what a 2-core CPU does in about 1-2 hours
    python experiments/study.py --scale paper     # the papers' schedule, for a GPU

Writes ``experiments/results/study.md`` (tables, settings, hardware, the exact command, what the scale can and
cannot show), ``study.json`` (every number) and PNGs (``study_avg.png`` and training curves under
``curves/``). Training runs go to ``runs/study/<scale>/`` (git-ignored); ``--resume`` reuses finished runs
and continues an interrupted one. Every run is seeded; see experiments/README.md for the design.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import platform
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_RESULTS_DIR = REPO_ROOT / "experiments" / "results"
TOWER_B_SEED_OFFSET = 1000  # tower B of seed s trains with seed s + 1000
EVAL_CACHE = "study_eval.json"


# ---------------------------------------------------------------------------------------------- scales
@dataclass(frozen=True)
class Scale:
    name: str
    batch_size: int
    max_len: int  # stage 1 (SimCSE) truncation
    stage2_max_len: int  # TNCSE / JTCSE / distillation truncation
    stage1_steps: int  # S1: each stage-1 tower
    stage2_steps: int  # S: the twin-tower stage
    distill_steps: int
    eval_every: int  # in-loop STS-B dev (selects the saved model); 0 = none, the final state is kept
    save_every: int  # resumable checkpoint every N steps (and at the end); 0 = only at the end
    max_sentences: int  # corpus cap; 0 = all
    simcse_lr: float
    twin_lr: float | None  # None: each method's official default (jtcse 1.3e-6, tncse 1e-6)
    distill_lr: float
    tasks: tuple[str, ...]
    seeds: tuple[int, ...]
    shows: str
    does_not_show: str
    sink_sentences: int = 1000  # STS-B test sentences for the attention-sink diagnostic


ALL_TASKS = ("STS12", "STS13", "STS14", "STS15", "STS16", "STSBenchmark", "SICKRelatedness")

SCALES: dict[str, Scale] = {
    "tiny": Scale(
        name="tiny",
        batch_size=8,
        max_len=32,
        stage2_max_len=32,
        stage1_steps=2,
        stage2_steps=2,
        distill_steps=2,
        eval_every=0,
        save_every=0,
        max_sentences=256,
        simcse_lr=3e-5,
        twin_lr=5e-6,
        distill_lr=1e-5,
        tasks=("STS16",),
        seeds=(1,),
        sink_sentences=64,
        shows="that the whole pipeline runs end to end (every variant trains, saves, loads and is scored) "
        "and how long each piece takes on this machine.",
        does_not_show="anything about the methods: a few steps of batch 8 barely move the weights, one seed, "
        "one test task, no dev selection. Differences between rows are noise.",
    ),
    "small": Scale(
        name="small",
        batch_size=32,
        max_len=32,
        stage2_max_len=32,
        stage1_steps=40,
        stage2_steps=40,
        distill_steps=40,
        eval_every=40,
        save_every=20,
        max_sentences=0,
        simcse_lr=3e-5,
        twin_lr=5e-6,
        distill_lr=1e-5,
        tasks=ALL_TASKS,
        seeds=(1, 2, 3),
        shows="how each method moves an already strong sentence encoder (all-MiniLM-L6-v2) in a short "
        "budget, with seed spread, on the full 7-task benchmark; whether the twin-tower losses run "
        "stably and what a twin costs relative to one tower.",
        does_not_show="the paper's claims. all-MiniLM-L6-v2 was already trained with supervision on about "
        "1B sentence pairs, so unsupervised training on a few thousand Wikipedia sentences mostly "
        "perturbs it; the paper starts from raw BERT-base and trains on 1M sentences. Three seeds "
        "give a rough spread, not a significance test; differences under about one point are not "
        "evidence.",
    ),
    "paper": Scale(
        name="paper",
        batch_size=64,
        max_len=32,
        stage2_max_len=64,
        stage1_steps=15625,
        stage2_steps=15625,
        distill_steps=15625,
        eval_every=125,
        save_every=500,
        max_sentences=0,
        simcse_lr=3e-5,
        twin_lr=None,
        distill_lr=1e-5,
        tasks=ALL_TASKS,
        seeds=(1, 2, 3),
        shows="the papers' schedule (one epoch of wiki1m at batch 64 per stage, official learning rates, "
        "STS-B dev selection) applied to the MiniLM backbone, with three seeds.",
        does_not_show="the published BERT-base numbers (another backbone); the official corpus also adds "
        "the unlabelled SICK sentences. Needs the full wiki1m corpus (`jtcse data download`) "
        "and a GPU.",
    ),
}


# ---------------------------------------------------------------------------------------------- variants
@dataclass(frozen=True)
class Variant:
    key: str
    label: str
    what: str


VARIANTS = (
    Variant("start_cls", "start (CLS)", "the backbone as is, CLS vector of the last layer"),
    Variant("start_avg", "start (avg)", "the backbone as is, mean of the last layer's token vectors"),
    Variant("simcse", "SimCSE (one tower)", "unsupervised SimCSE, one encoder, 2(S1+S) steps"),
    Variant(
        "simcse_sum",
        "SimCSE A + B (sum)",
        "two SimCSE encoders (seeds s, s+1000), S1+S steps each, CLS vectors summed (ensemble dir, 1:1)",
    ),
    Variant(
        "tncse",
        "TNCSE-style (no CA)",
        "method tncse on two S1-step SimCSE towers: InfoNCE + ICNCE (A->B) + modulus, no cross-attention",
    ),
    Variant(
        "jtcse",
        "JTCSE",
        "method jtcse on the same towers: + cross-attention (every other layer) and its ICNCE term",
    ),
    Variant(
        "jtcse_d",
        "JTCSE-D",
        "one student from the backbone, distilled from the JTCSE twin (h_A + h_B), S distillation steps",
    ),
)
LABELS = {v.key: v.label for v in VARIANTS}

# Which training runs feed each variant (their train times add up to the variant's pipeline time).
PIPELINES: dict[str, tuple[str, ...]] = {
    "start_cls": (),
    "start_avg": (),
    "simcse": ("simcse",),
    "simcse_sum": ("sum_a", "sum_b"),
    "tncse": ("stage1_a", "stage1_b", "tncse"),
    "jtcse": ("stage1_a", "stage1_b", "jtcse"),
    "jtcse_d": ("stage1_a", "stage1_b", "jtcse", "jtcse_d"),
}


def compute_units(variant: str, scale: Scale) -> str:
    """Encoder passes in tower-steps: one forward + backward of one encoder over a batch of B sentences,
    each read twice (2B rows)."""
    s1, s = scale.stage1_steps, scale.stage2_steps
    return {
        "start_cls": "0",
        "start_avg": "0",
        "simcse": f"{2 * (s1 + s)}",
        "simcse_sum": f"{2 * (s1 + s)}",
        "tncse": f"{2 * (s1 + s)}",
        "jtcse": f"{2 * (s1 + s)}",
        "jtcse_d": f"{2 * (s1 + s)} + {scale.distill_steps} distill",
    }[variant]


# ---------------------------------------------------------------------------------------------- planning
@dataclass
class StudyRun:
    """One training run of the study."""

    key: str  # stage1_a, stage1_b, sum_a, sum_b, simcse, tncse, jtcse, jtcse_d
    seed: int  # the study seed it belongs to
    config: Any  # jtcse.training.config.Config
    scored: bool  # evaluated on the test tasks (a row of the table) or only a building block

    @property
    def name(self) -> str:
        return f"seed-{self.seed}/{self.key}"


@dataclass
class Plan:
    scale: Scale
    seeds: list[int]
    base_model: str
    tasks: list[str]
    data_dir: str | None
    runs_dir: Path
    runs: list[StudyRun]
    corpus: str = "wiki"
    notes: list[str] = field(default_factory=list)
    skipped_variants: dict[str, str] = field(default_factory=dict)


def distill_teacher_key() -> tuple[str | None, str]:
    """The config key that names a distillation teacher, or None and why distillation is unavailable."""
    if importlib.util.find_spec("jtcse.training.distill") is None:
        return None, "jtcse.training.distill is not part of this build (the distill method is not merged)"
    from jtcse.training.config import METHODS, valid_keys

    if "distill" not in METHODS:
        return None, "the training config has no method 'distill'"
    keys = [k for k in valid_keys() if k.rsplit(".", 1)[-1] == "teacher"]
    if not keys:
        return None, "the training config has no teacher key for method 'distill'"
    return keys[0], ""


def make_plan(args: argparse.Namespace) -> Plan:
    """Resolve everything and load every run's config: bad input fails here, before anything trains."""
    from jtcse.data.corpus import resolve_corpus_path
    from jtcse.data.paths import resolve_data_dir
    from jtcse.experiments.ablate import resolve_eval_tasks
    from jtcse.model.names import resolve_model
    from jtcse.training.config import load_config

    scale = SCALES[args.scale]
    seeds = _parse_seeds(args.seeds) if args.seeds else list(scale.seeds)
    tasks = resolve_eval_tasks(args.eval_tasks or list(scale.tasks))
    base_model = args.base_model or "minilm"
    base_path = resolve_model(base_model)
    data_dir = str(resolve_data_dir(args.data_dir, need="sts")) if args.data_dir else None
    corpus = resolve_corpus_path(args.corpus, data_dir)
    if not corpus.is_file():
        raise JtcseError(f"--corpus {args.corpus}: no such file ({corpus})")
    runs_dir = Path(args.runs_dir or REPO_ROOT / "runs" / "study" / scale.name)
    ca_layers = _cross_attention_layers(base_path)

    common = [
        f"data.corpus={args.corpus}",
        f"data.max_sentences={scale.max_sentences}",
        f"train.batch_size={scale.batch_size}",
        f"train.device={args.device or 'auto'}",
        f"train.threads={args.threads}",
        f"train.progress={'false' if args.quiet else 'true'}",
        f"train.save_every={scale.save_every}",
        f"train.log_every={max(1, min(10, scale.stage2_steps))}",
        f"eval.every={scale.eval_every}",
    ]
    if args.data_dir:
        common.append(f"data.data_dir={data_dir}")
    s1, s = scale.stage1_steps, scale.stage2_steps
    teacher_key, why_not = distill_teacher_key()

    plan = Plan(scale, seeds, base_model, tasks, data_dir, runs_dir, runs=[], corpus=args.corpus)
    for seed in seeds:
        root = runs_dir / f"seed-{seed}"
        seed_b = seed + TOWER_B_SEED_OFFSET
        simcse = [
            "method=simcse",
            f"model.base={base_model}",
            f"data.max_len={scale.max_len}",
            f"train.lr={scale.simcse_lr}",
        ]
        twin = [
            f"model.tower_a={root / 'stage1_a'}",
            f"model.tower_b={root / 'stage1_b'}",
            f"model.num_ca_layers={ca_layers}",
            f"data.max_len={scale.stage2_max_len}",
            f"train.max_steps={s}",
            f"seed={seed}",
            *([f"train.lr={scale.twin_lr}"] if scale.twin_lr is not None else []),
        ]
        # (run key, its overrides, scored), in training order
        specs: list[tuple[str, list[str], bool]] = [
            ("simcse", [*simcse, f"train.max_steps={2 * (s1 + s)}", f"seed={seed}"], True),
            ("sum_a", [*simcse, f"train.max_steps={s1 + s}", f"seed={seed}"], False),
            ("sum_b", [*simcse, f"train.max_steps={s1 + s}", f"seed={seed_b}"], False),
            ("stage1_a", [*simcse, f"train.max_steps={s1}", f"seed={seed}"], False),
            ("stage1_b", [*simcse, f"train.max_steps={s1}", f"seed={seed_b}"], False),
            ("tncse", ["method=tncse", *twin], True),
            ("jtcse", ["method=jtcse", *twin], True),
        ]
        for key, overrides, scored in specs:
            config = load_config(None, [*common, *overrides, f"output_dir={root / key}"])
            plan.runs.append(StudyRun(key, seed, config, scored))
        if teacher_key is None:
            plan.skipped_variants["jtcse_d"] = why_not
            continue
        distill = [
            "method=distill",
            f"model.base={base_model}",
            f"{teacher_key}={root / 'jtcse'}",
            f"data.max_len={scale.stage2_max_len}",
            f"train.lr={scale.distill_lr}",
            f"train.max_steps={scale.distill_steps}",
            f"seed={seed}",
            f"output_dir={root / 'jtcse_d'}",
        ]
        try:
            plan.runs.append(StudyRun("jtcse_d", seed, load_config(None, [*common, *distill]), True))
        except JtcseError as exc:
            plan.skipped_variants["jtcse_d"] = f"the distill config was rejected: {exc}"
    plan.notes.append(f"cross-attention: {ca_layers} layers (every other layer of the backbone)")
    return plan


def _cross_attention_layers(model_path: str) -> int:
    """Half the layers (the paper's 6 of 12: every other layer) when that divides evenly, else all."""
    config_file = Path(model_path) / "config.json"
    if not config_file.is_file():
        return 1  # a hub id: its layer count is unknown offline; one CA layer divides any count
    layers = int(json.loads(config_file.read_text(encoding="utf-8")).get("num_hidden_layers", 12))
    return layers // 2 if layers % 2 == 0 else layers


def _parse_seeds(text: str) -> list[int]:
    from jtcse.experiments.ablate import parse_seeds

    return parse_seeds(text)


# ---------------------------------------------------------------------------------------------- running
@dataclass
class Score:
    """One variant for one seed."""

    variant: str
    seed: int | None  # None: seed-independent (the start rows)
    dev: float | None
    test: dict[str, float]
    train_s: float
    eval_s: float


def run_study(
    plan: Plan, *, resume: bool, keep_checkpoints: bool, say: Callable[[str], None]
) -> tuple[list[Score], float]:
    """Every variant's scores, and the seconds all runs took (training + evaluation, as recorded when each
    ran, so a resumed study reports its full cost)."""
    from jtcse.experiments.ablate import RESULT_FILE, train_and_evaluate
    from jtcse.training.checkpoint import checkpoint_path

    if not resume:
        started = [r for r in plan.runs if _started(Path(r.config.output_dir), RESULT_FILE, checkpoint_path)]
        if started or (plan.runs_dir / EVAL_CACHE).is_file():
            example = started[0].name if started else EVAL_CACHE
            raise JtcseError(
                f"{plan.runs_dir}: holds an earlier study ({example}); pass --resume to reuse its finished "
                "runs, or choose another --runs-dir"
            )
    plan.runs_dir.mkdir(parents=True, exist_ok=True)
    cache = EvalCache(plan.runs_dir / EVAL_CACHE)
    scores: list[Score] = []
    recorded = 0.0
    total = len(plan.runs) + 2 + len(plan.seeds)  # + the two start rows + one sum ensemble per seed
    step = 0

    def progress(what: str) -> None:
        nonlocal step
        step += 1
        say(f"study: {step}/{total}: {what}")

    for variant, pooler in (("start_cls", "cls_before_pooler"), ("start_avg", "avg")):
        progress(f"evaluate {LABELS[variant]}")
        dev, test, took = cache.evaluate(variant, [plan.base_model], pooler, plan)
        scores.append(Score(variant, None, dev, test, 0.0, took))
        recorded += took

    results: dict[tuple[int, str], Any] = {}
    for seed in plan.seeds:
        for run in [r for r in plan.runs if r.seed == seed]:
            progress(f"seed {seed}: {run.key}")
            result = train_and_evaluate(
                run.config,
                name=run.name,
                tasks=plan.tasks,
                dev_only=not run.scored,
                dev=plan.scale.eval_every > 0,
                keep_checkpoint=keep_checkpoints,
                say=say,
            )
            if result is None:
                raise KeyboardInterrupt  # training was interrupted; the run continues with --resume
            results[(seed, run.key)] = result
            recorded += (result.train_s or 0.0) + result.eval_s
            if run.scored:
                train_s = sum(results[(seed, k)].train_s or 0.0 for k in PIPELINES[run.key])
                scores.append(Score(run.key, seed, result.dev_stsb, result.test, train_s, result.eval_s))
        progress(f"seed {seed}: evaluate the sum of two SimCSE towers")
        members = [results[(seed, "sum_a")].output_dir, results[(seed, "sum_b")].output_dir]
        ensemble = plan.runs_dir / f"seed-{seed}" / "simcse_sum"
        dev, test, took = cache.evaluate(
            f"simcse_sum/seed-{seed}", members, None, plan, ensemble_dir=ensemble
        )
        train_s = sum(results[(seed, k)].train_s or 0.0 for k in PIPELINES["simcse_sum"])
        scores.append(Score("simcse_sum", seed, dev, test, train_s, took))
        recorded += took
    return scores, recorded


# (run key, tower) of the first seed that the attention-sink diagnostic reads, after the start model
SINK_MODELS: tuple[tuple[str, str], ...] = (
    ("stage1_a", "both"),
    ("simcse", "both"),
    ("tncse", "a"),
    ("jtcse", "both"),
)


def diagnose_attention_sink(plan: Plan, say: Callable[[str], None]) -> Any:
    """The attention-sink readings (:mod:`jtcse.analysis.attention_sink`) of the start model and the first
    seed's trained encoders, on held-out sentences (STS-B test, in file order, distinct): a
    ``DiagnoseReport`` with one series per model or tower."""
    from jtcse.analysis.attention_sink import DiagnoseReport, diagnose
    from jtcse.data.paths import resolve_data_dir
    from jtcse.data.sts import read_stsb

    pairs = read_stsb(resolve_data_dir(plan.data_dir, need="sts"), "test")
    pairs_in_order = zip(pairs.sentences1, pairs.sentences2, strict=True)
    sentences = list(dict.fromkeys(s for pair in pairs_in_order for s in pair))[: plan.scale.sink_sentences]
    common = {"batch_size": 32, "device": _eval_device(plan)}
    say(f"study: attention-sink diagnostic on {len(sentences)} STS-B test sentences")
    reports = [diagnose(plan.base_model, sentences, label="start", **common)]
    first = plan.seeds[0]
    for key, tower in SINK_MODELS:
        run_dir = plan.runs_dir / f"seed-{first}" / key
        reports.append(diagnose(run_dir, sentences, tower=tower, label=key, **common))
    report = DiagnoseReport.merge(reports)
    report.settings["sentences"] = "STS-B test, distinct, in file order"
    report.settings["seed"] = first
    return report


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
        return _md_table(["layer", *labels], rows)

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


def _started(run_dir: Path, result_file: str, checkpoint_path: Callable[[Path], Path]) -> bool:
    return (run_dir / result_file).is_file() or checkpoint_path(run_dir).is_file()


class EvalCache:
    """Scores of the models the study evaluates without training them (start, summed towers), kept in one
    JSON file so that --resume does not evaluate them again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.entries: dict[str, Any] = {}
        if path.is_file():
            self.entries = json.loads(path.read_text(encoding="utf-8"))

    def evaluate(
        self,
        name: str,
        members: Sequence[str],
        pooler: str | None,
        plan: Plan,
        *,
        ensemble_dir: Path | None = None,
    ) -> tuple[float | None, dict[str, float], float]:
        from jtcse.encoder import Encoder
        from jtcse.ensemble import save_ensemble
        from jtcse.evaluation.sts import evaluate_sts
        from jtcse.fs import atomic_write_text

        identity = {"members": list(members), "pooler": pooler, "tasks": plan.tasks, "dev": _with_dev(plan)}
        entry = self.entries.get(name)
        if entry is not None and entry["identity"] == identity:
            test = {k: (math.nan if v is None else v) for k, v in entry["test"].items()}
            return entry["dev"], test, entry["eval_s"]
        model: str | Path = members[0]
        if ensemble_dir is not None:  # the plain sum: weights 1 and 1, each member with its own pooler
            save_ensemble(ensemble_dir, members, [1.0, 1.0], method="simcse-sum", overwrite=True)
            model = ensemble_dir
        started = time.perf_counter()
        encoder = Encoder(model, pooler=pooler, device=_eval_device(plan))
        dev = None
        if _with_dev(plan):
            report = evaluate_sts(
                encoder, data_dir=plan.data_dir, tasks=["STSBenchmark"], mode="dev", show_progress=False
            )
            dev = report.scores["STSBenchmark"]
        test = evaluate_sts(encoder, data_dir=plan.data_dir, tasks=plan.tasks, show_progress=False).scores
        took = time.perf_counter() - started
        self.entries[name] = {
            "identity": identity,
            "dev": dev,
            "test": {k: (None if math.isnan(v) else v) for k, v in test.items()},
            "eval_s": took,
        }
        atomic_write_text(self.path, json.dumps(self.entries, indent=2) + "\n")
        return dev, dict(test), took


def _eval_device(plan: Plan) -> str | None:
    """The training device of the study's runs (``--device``) for the untrained evaluations; None = auto."""
    device = plan.runs[0].config.train.device if plan.runs else "auto"
    return None if device == "auto" else device


def _with_dev(plan: Plan) -> bool:
    return plan.scale.eval_every > 0


# ---------------------------------------------------------------------------------------------- report
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
    from jtcse.experiments.ablate import mean_std
    from jtcse.fs import atomic_write_text

    results_dir.mkdir(parents=True, exist_ok=True)
    tasks = plan.tasks
    short = {"STSBenchmark": "STS-B", "SICKRelatedness": "SICK-R"}
    present = [v for v in VARIANTS if any(s.variant == v.key for s in scores)]

    def cells(group: list[Score]) -> list[str]:
        dev = _pm(mean_std([s.dev for s in group if s.dev is not None]))
        per_task = [_pm(mean_std([s.test.get(t, math.nan) for s in group])) for t in tasks]
        return [dev, *per_task, _pm(mean_std([s.test.get("avg", math.nan) for s in group]))]

    head = ["variant", "seeds", "dev", *(short.get(t, t) for t in tasks), "avg", "compute", "train", "eval"]
    rows = []
    for v in present:
        group = [s for s in scores if s.variant == v.key]
        seeds = ", ".join(str(s.seed) for s in group if s.seed is not None) or "-"
        train = _mean([s.train_s for s in group])
        rows.append(
            [
                v.label,
                seeds,
                *cells(group),
                compute_units(v.key, plan.scale),
                _duration(train) if train else "-",
                _duration(_mean([s.eval_s for s in group])),
            ]
        )
    per_seed_head = ["variant", "seed", "dev", *(short.get(t, t) for t in tasks), "avg", "train", "eval"]
    per_seed = [
        [
            LABELS[s.variant],
            "-" if s.seed is None else str(s.seed),
            _num(s.dev),
            *(_num(s.test.get(t)) for t in tasks),
            _num(s.test.get("avg")),
            _duration(s.train_s) if s.train_s else "-",
            _duration(s.eval_s),
        ]
        for v in present
        for s in scores
        if s.variant == v.key
    ]

    figures = _figures(plan, scores, present, results_dir)
    scale = plan.scale
    used = f"at most its first {scale.max_sentences} sentences" if scale.max_sentences else "all sentences"
    lines = [
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
        f"- run time: {_duration(recorded_s)} for all runs (training and evaluation, as measured when each "
        f"ran); this invocation took {_duration(wall_s)}"
        + (" (with --resume: it reused the finished runs and evaluations)" if resumed else ""),
        "",
        "## 7-task STS (Spearman x100), mean ± std over seeds"
        if len(tasks) == 7
        else "## STS (Spearman x100)",
        "",
        "dev = STS-B dev"
        + (" (the best in-loop score, which also chose each trained model)" if _with_dev(plan) else " (off)")
        + "; avg = mean of the test columns; std = sample standard deviation over seeds (only the mean with "
        "one seed); compute = encoder passes in tower-steps (below); train = training wall time of the "
        "variant's whole pipeline (stage 1 included), mean over seeds; eval = evaluation time.",
        "",
        *_md_table(head, rows),
        "",
    ]
    for key, why in plan.skipped_variants.items():
        lines.append(f"**{LABELS[key]}: not run.** {why}.")
        lines.append("")
    lines += ["## Per seed", "", *_md_table(per_seed_head, per_seed), ""]
    if sink is not None:
        lines += _sink_section(sink, results_dir)
    lines += _design_section(plan)
    if figures:
        lines += ["## Figures", ""]
        lines += [
            f"![{caption}]({path})" if path.endswith("png") else f"- {caption}: {path}"
            for caption, path in figures
        ]
        lines.append("")
    md = results_dir / "study.md"
    atomic_write_text(md, "\n".join(lines) + "\n")
    payload = {
        "scale": scale.__dict__,
        "command": command,
        "base_model": plan.base_model,
        "seeds": plan.seeds,
        "tasks": tasks,
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
    atomic_write_text(results_dir / "study.json", json.dumps(payload, indent=2) + "\n")
    return md


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
        + "; other keys: each method's defaults "
        "(`jtcse/training/config.py`), so TNCSE-style also differs from JTCSE in its dropout (0.00025) and "
        "fixed ICNCE direction, as in TNCSE's own recipe. " + "; ".join(plan.notes) + ".",
        "",
        "Seeded and deterministic on CPU: rerunning the command gives the same scores on the same "
        "hardware, software and thread count (times differ). On GPU, cuDNN runs in deterministic mode, but "
        "scores can still differ in the last digits between machines.",
        "",
    ]
    return lines


def _figures(
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
    from jtcse.experiments.ablate import mean_std

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


def _pm(stats: tuple[float, float | None]) -> str:
    mean, std = stats
    return _num(mean) if std is None else f"{_num(mean)} ± {std:.2f}"


def _num(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.2f}"


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}min"
    return f"{seconds / 3600:.1f}h"


def _md_table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


# ---------------------------------------------------------------------------------------------- command
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python experiments/study.py",
        description="Train and evaluate the start model, SimCSE, summed SimCSE towers, TNCSE-style, JTCSE "
        "and JTCSE-D at equal compute; write experiments/results/study.md and PNGs.",
    )
    parser.add_argument(
        "--scale",
        required=True,
        choices=tuple(SCALES),
        help="tiny: smoke test (minutes); small: a 2-core CPU, about 2 h; paper: the papers' schedule, GPU",
    )
    parser.add_argument("--seeds", metavar="S1,S2", help="comma-separated study seeds (default: the scale's)")
    parser.add_argument("--corpus", default="wiki", help="training sentences: wiki (default) or a text file")
    parser.add_argument("--data-dir", help="data directory with sts/ (and wiki1m); default: the usual lookup")
    parser.add_argument("--eval-tasks", nargs="+", metavar="TASK", help="test tasks (default: the scale's)")
    parser.add_argument("--runs-dir", type=Path, help="where runs go (default: runs/study/<scale>)")
    parser.add_argument(
        "--results-dir", type=Path, default=DEFAULT_RESULTS_DIR, help="where study.md and PNGs go"
    )
    parser.add_argument(
        "--resume", action="store_true", help="reuse finished runs, continue an interrupted one"
    )
    parser.add_argument(
        "--keep-checkpoints", action="store_true", help="keep each finished run's checkpoint/"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default: torch's)")
    parser.add_argument("--quiet", action="store_true", help="no training progress bars")
    # Tests swap in a tiny random model; the study's claims are about the default backbone only.
    parser.add_argument("--base-model", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    given = list(sys.argv[1:] if argv is None else argv)
    # --resume only reuses finished runs; the command that reproduces the table is the same without it
    command = "python experiments/study.py " + " ".join(shlex.quote(a) for a in given if a != "--resume")
    try:
        started = time.perf_counter()
        if args.threads < 0:
            raise JtcseError(f"--threads {args.threads}: must be >= 0")
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        plan = make_plan(args)
        say = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
        for key, why in plan.skipped_variants.items():
            say(f"study: {LABELS[key]} will not run: {why}")
        scores, recorded = run_study(
            plan, resume=args.resume, keep_checkpoints=args.keep_checkpoints, say=say
        )
        sink = diagnose_attention_sink(plan, say)
        wall = time.perf_counter() - started
        md = write_report(
            plan,
            scores,
            args.results_dir,
            command=command,
            recorded_s=recorded,
            wall_s=wall,
            sink=sink,
            resumed=args.resume,
        )
    except JtcseError as exc:
        print(f"study: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("study: interrupted; rerun the same command with --resume to continue", file=sys.stderr)
        return 130
    print(md.read_text(encoding="utf-8"))
    print(f"study: wrote {md}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
