"""The study's plan: every training run of every seed, with its validated config, before anything trains."""

from __future__ import annotations

import argparse
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError
from jtcse.pipeline.runner import TOWER_B_SEED_OFFSET
from jtcse.pipeline.study.scales import SCALES, Scale


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
    """Resolve everything and load every run's config: bad input fails here, before anything trains.
    ``args.runs_dir`` must be set (the CLI gives its default)."""
    from jtcse.data.corpus import resolve_corpus_path
    from jtcse.data.paths import resolve_data_dir
    from jtcse.model.names import resolve_model
    from jtcse.pipeline.ablate import parse_seeds
    from jtcse.pipeline.runner import resolve_eval_tasks

    scale = SCALES[args.scale]
    seeds = parse_seeds(args.seeds) if args.seeds else list(scale.seeds)
    tasks = resolve_eval_tasks(args.eval_tasks or list(scale.tasks))
    base_model = args.base_model or "minilm"
    ca_layers = _cross_attention_layers(resolve_model(base_model))
    data_dir = str(resolve_data_dir(args.data_dir, need="sts")) if args.data_dir else None
    corpus = resolve_corpus_path(args.corpus, data_dir)
    if not corpus.is_file():
        raise JtcseError(f"--corpus {args.corpus}: no such file ({corpus})")
    plan = Plan(scale, seeds, base_model, tasks, data_dir, Path(args.runs_dir), runs=[], corpus=args.corpus)
    common = _common_overrides(args, scale, data_dir)
    teacher_key, why_not = distill_teacher_key()
    for seed in seeds:
        plan.runs += _seed_runs(plan, seed, common, ca_layers)
        if teacher_key is None:
            plan.skipped_variants["jtcse_d"] = why_not
            continue
        try:
            plan.runs.append(_distill_run(plan, seed, common, teacher_key))
        except JtcseError as exc:
            plan.skipped_variants["jtcse_d"] = f"the distill config was rejected: {exc}"
    plan.notes.append(f"cross-attention: {ca_layers} layers (every other layer of the backbone)")
    return plan


def _common_overrides(args: argparse.Namespace, scale: Scale, data_dir: str | None) -> list[str]:
    """The config keys every run of the study shares."""
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
    return common


def _seed_runs(plan: Plan, seed: int, common: list[str], ca_layers: int) -> list[StudyRun]:
    """The SimCSE runs, the stage-1 towers and the twin towers of one seed, in training order."""
    from jtcse.training.config import load_config

    scale, root = plan.scale, plan.runs_dir / f"seed-{seed}"
    s1, s = scale.stage1_steps, scale.stage2_steps
    seed_b = seed + TOWER_B_SEED_OFFSET
    simcse = [
        "method=simcse",
        f"model.base={plan.base_model}",
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
    return [
        StudyRun(key, seed, load_config(None, [*common, *overrides, f"output_dir={root / key}"]), scored)
        for key, overrides, scored in specs
    ]


def _distill_run(plan: Plan, seed: int, common: list[str], teacher_key: str) -> StudyRun:
    from jtcse.training.config import load_config

    scale, root = plan.scale, plan.runs_dir / f"seed-{seed}"
    distill = [
        "method=distill",
        f"model.base={plan.base_model}",
        f"{teacher_key}={root / 'jtcse'}",
        f"data.max_len={scale.stage2_max_len}",
        f"train.lr={scale.distill_lr}",
        f"train.max_steps={scale.distill_steps}",
        f"seed={seed}",
        f"output_dir={root / 'jtcse_d'}",
    ]
    return StudyRun("jtcse_d", seed, load_config(None, [*common, *distill]), True)


def _cross_attention_layers(model_path: str) -> int:
    """Half the layers (the paper's 6 of 12: every other layer) when that divides evenly, else all."""
    config_file = Path(model_path) / "config.json"
    if not config_file.is_file():
        return 1  # a hub id: its layer count is unknown offline; one CA layer divides any count
    layers = int(json.loads(config_file.read_text(encoding="utf-8")).get("num_hidden_layers", 12))
    return layers // 2 if layers % 2 == 0 else layers
