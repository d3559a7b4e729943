"""``jtcse reproduce RECIPE``: one paper row, end to end, on the pipeline runner.

Stages: the data (the STS sets and the wiki1m corpus; downloaded into the user cache when absent), the
backbone (from the Hugging Face hub, or ``--backbone DIR``), the recipe's training stages (stage-1 towers,
the twin tower, the student of ``-d`` recipes) for each seed, and the evaluation of the recipe's result on the
7 STS tasks. :mod:`jtcse.pipeline.reproduce_report` then writes ``report.md`` and ``report.json``.

Every stage goes to ``OUT/seed-<s>/<stage>/``; rerunning the same command skips finished stages and resumes
an interrupted one (the runner's rules). ``--backbone DIR --max-steps N`` turns a recipe into a short
offline run on a small model (the tests' tiny random BERT), with the same stages and configs.

``--towers DIR_A DIR_B`` skips stage 1: the twin tower starts from the given towers, as the official
``train_jtcse_bert.py`` / ``_roberta.py`` start from the released RTT-augmented SimCSE towers
(``Pretrained_encoder/BERT/JTCSE_bert_pretrained_encoder_{1,2}``). Those folders hold weights only (the
official scripts read the token ids of ``--pretrain_tokenizer``, the backbone), so a tower without a
tokenizer is copied once into ``OUT/towers/`` with the backbone's tokenizer beside it. ``--corpus FILE``
is the text stage 2 trains on (the official ``data/Wiki_for_JTCSE.txt``: wiki1m plus the SICK sentences).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from jtcse.errors import JtcseError
from jtcse.pipeline.recipes import OFFICIAL_CORPUS, TOWER_KEYS, TWIN_KEY, Recipe, StageSpec
from jtcse.pipeline.runner import RunResult, Say, Stage, run_stages, stderr_say

WIKI1M_SENTENCES = 1_000_000  # the corpus the paper configs train on for one epoch
# Rough training throughput of a base-size encoder (forward + backward, rows/s) on a CPU: the basis of the
# estimate a GPU-less machine gets before a full recipe. A current GPU does a few thousand.
CPU_ROWS_PER_SECOND = 25.0
TOWERS_DIR = "towers"  # the --towers folders, copied into OUT with the backbone's tokenizer


def seed_dir(seed: int) -> str:
    """The folder, inside OUT, of one seed's stages."""
    return f"seed-{seed}"


@dataclass
class ReproduceOptions:
    recipe: Recipe
    seeds: list[int]
    output_dir: Path
    configs_dir: Path
    backbone: str | None = None  # --backbone; None = the recipe's hub model
    max_steps: int | None = None  # --max-steps; None = the configs' full schedule
    data_dir: str | None = None
    device: str | None = None
    overrides: list[str] = field(default_factory=list)  # --set KEY=VALUE, for every stage
    eval_batch_size: int = 64
    allow_cpu: bool = False
    quiet: bool = False
    command: str = ""
    towers: tuple[str, str] | None = None  # --towers: stage 1 is skipped, the twin starts from these
    corpus: str | None = None  # --corpus: the text stage 2 (the twin) trains on


@dataclass
class ReproduceResult:
    options: ReproduceOptions
    backbone: str
    data_dir: Path
    seconds: dict[str, float]  # "data", "backbone", "total"
    runs: dict[int, list[RunResult]]  # seed -> its stages' results, in order
    notes: list[str]  # deviations found at run time (a head of wiki1m, a CPU run, ...)
    towers: list[str] = field(default_factory=list)  # what the twin started from, with --towers


def reproduce(options: ReproduceOptions, say: Say = stderr_say) -> ReproduceResult:
    """Run every stage of ``options.recipe`` for every seed (the report is written by the caller)."""
    recipe, started = options.recipe, time.perf_counter()
    check_options(options)
    notes = check_hardware(options, say)
    seconds: dict[str, float] = {}
    say(f"jtcse reproduce {recipe.name}: data")
    data_dir, data_notes = prepare_data(
        options.data_dir, full=options.max_steps is None, say=say, need_wiki=_needs_wiki(options)
    )
    seconds["data"] = time.perf_counter() - started
    say(f"jtcse reproduce {recipe.name}: backbone")
    t = time.perf_counter()
    backbone = prepare_backbone(options.backbone or recipe.backbone)
    towers = prepare_towers(options, backbone, say) if options.towers else []
    seconds["backbone"] = time.perf_counter() - t
    data_notes += corpus_notes(options.corpus)
    plans = {seed: plan_stages(options, seed, data_dir, backbone, towers) for seed in options.seeds}
    runs: dict[int, list[RunResult]] = {}
    for seed, stages in plans.items():
        total = len(stages)

        def announce(index: int, stage: Stage, seed: int = seed, total: int = total) -> None:
            say(f"jtcse reproduce {recipe.name}: seed {seed}, stage {index}/{total}: {stage.name}")

        outcome = run_stages(stages, announce=announce, eval_batch_size=options.eval_batch_size, say=say)
        if outcome.interrupted:
            raise KeyboardInterrupt  # rerunning the command resumes the stage
        runs[seed] = outcome.results
    seconds["total"] = time.perf_counter() - started
    return ReproduceResult(options, backbone, data_dir, seconds, runs, [*notes, *data_notes], towers)


def active_stages(options: ReproduceOptions) -> list[StageSpec]:
    """The recipe's stages this run trains: all of them, or without stage 1 when ``--towers`` gives it."""
    return [s for s in options.recipe.stages if not (options.towers and s.key in TOWER_KEYS)]


def plan_stages(
    options: ReproduceOptions, seed: int, data_dir: Path, backbone: str, towers: list[str] | None = None
) -> list[Stage]:
    """The recipe's stages for one seed, each with its validated config (nothing trains here).
    ``towers``: the prepared ``--towers`` folders (stage 1 is then skipped)."""
    from jtcse.training.config import load_config

    root = options.output_dir / seed_dir(seed)
    links = {spec.key: str(root / spec.key) for spec in options.recipe.stages}
    links.update(zip(TOWER_KEYS, towers or (), strict=False))
    stages = []
    for spec in active_stages(options):
        path = options.configs_dir / spec.config
        overrides = [item.format(backbone=backbone, **links) for item in spec.overrides]
        if spec.key == TWIN_KEY and options.corpus:
            overrides.append(f"data.corpus={Path(options.corpus).resolve()}")
        overrides += [f"seed={seed + spec.seed_offset}", f"output_dir={links[spec.key]}"]
        overrides += [f"data.data_dir={data_dir}"]
        overrides += [f"train.device={options.device}"] if options.device else []
        overrides += ["train.progress=false"] if options.quiet else []
        overrides += list(options.overrides)
        config = load_config(path, overrides)
        if options.max_steps is not None:  # a short run: dev evaluation must still happen (it saves)
            every = min(config.eval.every, options.max_steps) if config.eval.every else 0
            config = load_config(
                path, [*overrides, f"train.max_steps={options.max_steps}", f"eval.every={every}"]
            )
        stages.append(Stage(f"{spec.key}: {spec.what}", config, _tasks(spec.scored)))
    return stages


def _tasks(scored: bool) -> tuple[str, ...]:
    from jtcse.benchmark import TASKS

    return TASKS if scored else ()


def check_hardware(options: ReproduceOptions, say: Say) -> list[str]:
    """A full recipe on a machine without CUDA: an error with the estimated time (a warning with
    ``--allow-cpu``). Short runs (``--max-steps``) pass."""
    import torch

    on_cpu = options.device == "cpu" or (options.device is None and not torch.cuda.is_available())
    if options.max_steps is not None or not on_cpu:
        return []
    hours = estimate_cpu_hours(options)
    what = f"{options.recipe.name} needs about {_duration(hours)} of training on a CPU"
    if not options.allow_cpu:
        raise JtcseError(
            f"no CUDA GPU found: {what} (an estimate at {CPU_ROWS_PER_SECOND:g} rows/s); run it on a GPU, "
            "pass --allow-cpu to run anyway, or --max-steps N for a short run"
        )
    say(f"jtcse reproduce: warning: no CUDA GPU; {what} (an estimate)")
    return [f"trained on a CPU ({what}, estimated beforehand)"]


def estimate_cpu_hours(options: ReproduceOptions) -> float:
    """Hours of training at :data:`CPU_ROWS_PER_SECOND`: every stage's optimizer steps x batch x 2 rows
    (two dropout views) x encoders trained or run per step."""
    from jtcse.training.config import load_config

    rows = 0.0
    for spec in active_stages(options):
        config = load_config(options.configs_dir / spec.config, list(options.overrides))
        sentences = config.data.max_sentences or WIKI1M_SENTENCES
        steps = config.train.max_steps or config.train.epochs * -(-sentences // config.train.batch_size)
        encoders = 1 if config.method == "simcse" else 2
        rows += steps * config.train.batch_size * 2 * encoders
    return len(options.seeds) * rows / CPU_ROWS_PER_SECOND / 3600


def _duration(hours: float) -> str:
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"


def prepare_data(
    data_dir: str | None, *, full: bool, say: Say, need_wiki: bool = True
) -> tuple[Path, list[str]]:
    """The data directory (STS sets + wiki1m), downloading into the user cache when nothing is found; a
    full run without the full corpus fetches it there too (or notes the deviation when ``--data-dir``
    points at a directory with only a head of it). ``need_wiki`` False: only the STS sets are needed
    (every stage trains on ``--corpus``)."""
    from jtcse.data.download import download_data
    from jtcse.data.paths import WIKI_FULL_NAME, resolve_data_dir, user_cache_dir, wiki_corpus_path

    if not need_wiki:
        return resolve_data_dir(data_dir, need="sts"), []
    root = resolve_data_dir(data_dir, need="wiki")
    resolve_data_dir(root, need="sts")
    corpus = wiki_corpus_path(root)
    if not full or corpus is None or corpus.name == WIKI_FULL_NAME:
        return root, []
    if data_dir is not None:
        lines = sum(1 for _ in corpus.open(encoding="utf-8"))
        return root, [f"corpus: {corpus.name}, {lines} sentences of wiki1m, not the full corpus"]
    cache = user_cache_dir()
    say(f"jtcse reproduce: fetching the full wiki1m corpus and the STS sets into {cache}")
    download_data(cache, what="wiki")
    download_data(cache, what="sts")
    return cache, []


def prepare_backbone(name: str) -> str:
    """A local directory, or a hub model fetched now (into the Hugging Face cache): a backbone that cannot
    be reached is a one-line error before anything trains."""
    from jtcse.model.names import resolve_model

    try:
        path = resolve_model(name)
    except JtcseError as exc:
        raise JtcseError(str(exc).replace("--model", "--backbone", 1)) from exc
    if Path(path).is_dir():
        return path
    try:
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        AutoConfig.from_pretrained(path)  # the cheapest request first: offline it fails after one retry
        AutoTokenizer.from_pretrained(path)
        AutoModel.from_pretrained(path)
    except Exception as exc:  # OSError, ValueError, requests' errors: all mean "not reachable here"
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise JtcseError(
            f"backbone {name}: not in the Hugging Face cache and not downloadable ({first[:160]}); "
            "offline, pass --backbone DIR with a local copy"
        ) from exc
    return path


def check_options(options: ReproduceOptions) -> None:
    """``--towers`` and ``--corpus`` fit the recipe and name existing files; else a one-line error naming
    the option (before anything is downloaded or trained)."""
    from jtcse.integrity import check_model_folder

    recipe = options.recipe
    if options.towers:
        if not recipe.has_towers:
            raise JtcseError(f"--towers: recipe {recipe.name} has no stage-1 towers to replace")
        for given in options.towers:
            if not Path(given).expanduser().is_dir():
                raise JtcseError(f"--towers {given}: no such directory")
            check_model_folder(str(Path(given).expanduser()), "--towers")
    if options.corpus is not None:
        if not any(spec.key == TWIN_KEY for spec in recipe.stages):
            raise JtcseError(f"--corpus: recipe {recipe.name} has no twin-tower stage to train on it")
        if not Path(options.corpus).expanduser().is_file():
            raise JtcseError(f"--corpus {options.corpus}: no such file")


def _needs_wiki(options: ReproduceOptions) -> bool:
    """Whether a stage of this run trains on wiki1m (not when --corpus feeds the only training stage)."""
    return any(not (spec.key == TWIN_KEY and options.corpus) for spec in active_stages(options))


def corpus_notes(corpus: str | None) -> list[str]:
    """What the report says about a ``--corpus`` that is not the official file by name."""
    if corpus is None or Path(corpus).name == OFFICIAL_CORPUS:
        return []
    with Path(corpus).expanduser().open(encoding="utf-8", errors="replace") as fh:
        lines = sum(1 for _ in fh)
    return [
        f"corpus: stage 2 trains on {corpus} ({lines} lines, --corpus), not the official {OFFICIAL_CORPUS}"
    ]


def prepare_towers(options: ReproduceOptions, backbone: str, say: Say) -> list[str]:
    """The ``--towers`` folders as the twin stage reads them: as given when they hold a tokenizer, else a
    copy under ``OUT/towers/`` with the backbone's tokenizer beside the weights (made once, atomically)."""
    import shutil

    from jtcse.fs import staged_directory
    from jtcse.model.loading import has_tokenizer_files, load_tokenizer

    assert options.towers is not None
    prepared = []
    for key, given in zip(TOWER_KEYS, options.towers, strict=True):
        source = Path(given).expanduser().resolve()
        if has_tokenizer_files(source):
            prepared.append(str(source))
            continue
        target = options.output_dir / TOWERS_DIR / key
        if not (target / "config.json").is_file():
            say(f"jtcse reproduce: {given} holds no tokenizer; copying it to {target} with {backbone}'s")
            tokenizer = load_tokenizer(backbone, label=f"--backbone {backbone}")
            with staged_directory(target) as staging:
                shutil.copytree(source, staging, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.tmp"))
                tokenizer.save_pretrained(str(staging))
        prepared.append(str(target.resolve()))
    return prepared
