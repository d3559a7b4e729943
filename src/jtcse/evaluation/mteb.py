"""MTEB (v2) evaluation of jtcse encoders, including STS tasks built from local files for offline use.

* :class:`MtebEncoder` wraps a :class:`jtcse.Encoder` (or anything with a compatible ``encode``) in mteb's
  ``EncoderProtocol``: ``encode(inputs: DataLoader[BatchedInput], *, task_metadata, hf_split, hf_subset,
  prompt_type=None, **kwargs) -> array`` plus ``mteb_model_meta``.
* :func:`run_mteb` runs tasks with ``mteb.evaluate`` and leaves mteb's result JSON in a ``ResultCache``
  under the output directory: ``<output_dir>/results/<org>__<model>/<revision>/<Task>.json`` (and
  ``model_meta.json``).
* Task names: an mteb task name (``STSBenchmark``, ``STS22.v2``, ...) is fetched by mteb from the Hugging
  Face hub, which needs network access. ``local:<TASK>`` builds the same STS task from the local data
  directory (``jtcse.data.paths.resolve_data_dir``: ``--data-dir`` > ``$JTCSE_DATA`` > ``../shared/data``),
  for ``TASK`` in STS12-16, STSBenchmark, SICK-R. It reads the *raw* release files (``sts/<TASK>/raw``,
  untokenised, as MTEB's copies are) with MTEB's splits: STS12-16 all scored pairs of the test subsets
  pooled, STS-B the 1,379 test pairs, SICK-R all 9,927 pairs (train + trial + test). ``tsv:<FILE>`` builds
  an STS task from any file of ``sentence1<TAB>sentence2<TAB>score`` lines. Local tasks are named
  ``<TASK>.local`` in the results; their numbers are close to, but not guaranteed identical with, mteb's hub
  copies of the data (all-MiniLM-L6-v2, ``minilm``, scores 82.03 on ``local:STSBenchmark``).

The model's ``revision`` in mteb's result path is a fingerprint of the weights and tokenizer files of every
member plus its pooler and weight, so mteb's cache (which skips tasks it already has results for) never
returns the numbers of an older model saved to the same directory or of another pooler. ``overwrite=True``
re-runs regardless.

mteb is an optional dependency (``pip install 'jtcse[mteb]'``); it is imported only when needed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from jtcse.benchmark import MTEB_LOCAL_TASKS as LOCAL_TASKS
from jtcse.data.sts import DATA_DIR_HINT, STS_YEAR_SUBSETS, StsPairs, read_pair_table, read_sts_subset
from jtcse.errors import JtcseError, first_line

if TYPE_CHECKING:  # annotations only: mteb is imported when a task is built
    from mteb.abstasks.task_metadata import MetadataDatasetDict, TaskType


LOCAL_PREFIX = "local:"
TSV_PREFIX = "tsv:"
LOCAL_SUFFIX = ".local"
_LOCAL_ALIASES = {"SICKRelatedness": "SICK-R", "SICK": "SICK-R", "STSB": "STSBenchmark"}
_SICK_FILES = ("SICK_train.txt", "SICK_trial.txt", "SICK_test_annotated.txt")
# Files that determine a model's embeddings (exported copies such as onnx/ do not).
_FINGERPRINT_SUFFIXES = (".json", ".txt", ".safetensors", ".bin", ".model", ".pt", ".pth")
_FINGERPRINT_SKIP_DIRS = {"onnx", "openvino", ".git", ".cache", "__pycache__"}


def _require_mteb() -> Any:
    try:
        import mteb
    except ImportError as exc:
        raise JtcseError("MTEB evaluation needs the mteb package: pip install 'jtcse[mteb]'") from exc
    return mteb


require_mteb = _require_mteb  # for the other evaluation modules that run mteb (zero_shot)


# --------------------------------------------------------------------------- local STS data


@dataclass(frozen=True)
class LocalPairs:
    """Scored sentence pairs read from local files."""

    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]
    files: list[Path]

    def fingerprint(self) -> str:
        """Content hash of the pairs: the task's ``dataset.revision`` in mteb's results."""
        digest = hashlib.sha256()
        for row in zip(self.sentences1, self.sentences2, self.scores, strict=True):
            digest.update(json.dumps(row).encode("utf-8"))
        return digest.hexdigest()[:12]

    def extend(self, more: StsPairs) -> None:
        self.sentences1.extend(more.sentences1)
        self.sentences2.extend(more.sentences2)
        self.scores.extend(float(v) for v in more.scores)


# MTEB's copies keep the sentences as released (untokenised), so they are only stripped, not re-joined.
_AS_RELEASED = str.strip


def _read_year_subset(folder: Path, prefix: str, subset: str, into: LocalPairs) -> None:
    """``<prefix>.input.<subset>.txt`` with its gold file; an empty gold line marks an unscored pair."""
    into.extend(read_sts_subset(folder, subset, prefix=prefix, normalize=_AS_RELEASED))
    into.files.extend([folder / f"{prefix}.input.{subset}.txt", folder / f"{prefix}.gs.{subset}.txt"])


def _read_columns(
    path: Path,
    *,
    sent_cols: tuple[int, int],
    score_col: int,
    header: bool,
    into: LocalPairs,
    hint: str = DATA_DIR_HINT,
) -> None:
    """Append the pairs of a tab-separated file (one pair per line, extra columns ignored) to ``into``."""
    table = read_pair_table(
        path,
        path.name,
        score_col=score_col,
        sent_cols=sent_cols,
        header=header,
        normalize=_AS_RELEASED,
        hint=hint,
    )
    into.extend(table)
    into.files.append(path)


def read_local_task(data_dir: str | Path, task: str) -> LocalPairs:
    """The pairs of one of :data:`LOCAL_TASKS` from ``<data_dir>/sts/<TASK>/raw`` (MTEB's view of them)."""
    task = _LOCAL_ALIASES.get(task, task)
    if task not in LOCAL_TASKS:
        raise JtcseError(
            f"--tasks {LOCAL_PREFIX}{task}: unknown local task; choose from {', '.join(LOCAL_TASKS)}"
        )
    pairs = LocalPairs([], [], [], [])
    sts = Path(data_dir) / "sts"
    if task in STS_YEAR_SUBSETS:
        prefix = "STS2016" if task == "STS16" else "STS"
        for subset in STS_YEAR_SUBSETS[task]:
            _read_year_subset(sts / task / "raw", prefix, subset, pairs)
    elif task == "STSBenchmark":
        _read_columns(
            sts / "STSB" / "raw" / "sts-test.csv",
            sent_cols=(5, 6),
            score_col=4,
            header=False,
            into=pairs,
        )
    else:
        for name in _SICK_FILES:
            _read_columns(sts / "SICK" / "raw" / name, sent_cols=(1, 2), score_col=3, header=True, into=pairs)
    return pairs


def read_tsv_pairs(path: str | Path) -> LocalPairs:
    """``sentence1<TAB>sentence2<TAB>score`` per line; blank lines skipped; at least two pairs."""
    path = Path(path).expanduser()
    pairs = LocalPairs([], [], [], [])
    _read_columns(path, sent_cols=(0, 1), score_col=2, header=False, into=pairs, hint="")
    if len(pairs.scores) < 2:
        raise JtcseError(f"{path}: needs at least two scored pairs, found {len(pairs.scores)}")
    return pairs


# --------------------------------------------------------------------------- mteb tasks


@cache
def _local_sts_base() -> type:
    """An mteb STS task whose data come from memory instead of the hub (defined once mteb is imported)."""
    _require_mteb()
    from mteb.abstasks.sts import AbsTaskSTS

    class LocalSTSTask(AbsTaskSTS):
        pairs: LocalPairs

        def load_data(self, num_proc: int | None = None, **kwargs: Any) -> None:
            # Replaces the hub download: build the one "test" split from the pairs read at construction.
            if self.data_loaded:
                return
            from datasets import Dataset, DatasetDict

            columns = {
                "sentence1": self.pairs.sentences1,
                "sentence2": self.pairs.sentences2,
                "score": self.pairs.scores,
            }
            self.dataset = DatasetDict({"test": Dataset.from_dict(columns)})
            self.data_loaded = True

    return LocalSTSTask


def local_task_metadata(
    name: str,
    *,
    dataset: MetadataDatasetDict,
    description: str,
    task_type: TaskType = "STS",
    main_score: str = "cosine_spearman",
    langs: list[str] | dict[str, list[str]] | None = None,
) -> Any:
    """mteb metadata of a task built here from local data (English, split ``test``, no citation)."""
    from mteb.abstasks.task_metadata import TaskMetadata

    return TaskMetadata(
        name=name,
        dataset=dataset,
        description=description,
        reference=None,
        type=task_type,
        category="t2t",
        modalities=["text"],
        eval_splits=["test"],
        eval_langs=langs or ["eng-Latn"],
        main_score=main_score,
        date=None,
        domains=None,
        task_subtypes=None,
        license=None,
        annotations_creators=None,
        dialect=None,
        sample_creation=None,
        bibtex_citation="",
    )


def make_local_sts_task(
    name: str,
    pairs: LocalPairs,
    *,
    description: str,
    min_score: float | None = None,
    max_score: float | None = None,
) -> Any:
    """An mteb STS task (main score ``cosine_spearman`` on split ``test``) over ``pairs``."""
    base = _local_sts_base()
    dataset: MetadataDatasetDict = {
        "path": str(pairs.files[0]) if pairs.files else name,
        "revision": pairs.fingerprint(),
    }
    metadata = local_task_metadata(name, dataset=dataset, description=description)
    attributes = {
        "metadata": metadata,
        "pairs": pairs,
        # Only a linear rescaling of the gold scores: correlations do not depend on it.
        "min_score": min(pairs.scores) if min_score is None else min_score,
        "max_score": max(pairs.scores) if max_score is None else max_score,
    }
    task_class = type(re.sub(r"\W", "_", f"Local_{name}"), (base,), attributes)
    return task_class()


def resolve_tasks(names: Sequence[str], *, data_dir: str | Path | None = None) -> list[Any]:
    """mteb task objects for ``names``: mteb names, ``local:<TASK>``, ``tsv:<FILE>`` (module docstring)."""
    mteb = _require_mteb()
    if not names:
        raise JtcseError("--tasks: name at least one task")
    tasks: list[Any] = []
    hub_names: list[str] = []
    for name in names:
        if name.startswith(LOCAL_PREFIX):
            from jtcse.data.paths import resolve_data_dir

            task = _LOCAL_ALIASES.get(name[len(LOCAL_PREFIX) :], name[len(LOCAL_PREFIX) :])
            if task not in LOCAL_TASKS:  # before looking for data, which may not be there either
                raise JtcseError(f"--tasks {name}: unknown local task; choose from {', '.join(LOCAL_TASKS)}")
            pairs = read_local_task(resolve_data_dir(data_dir, need="sts"), task)
            scale = (1.0, 5.0) if task == "SICK-R" else (0.0, 5.0)
            description = f"{task} built from the local files {pairs.files[0].parent} (jtcse)"
            tasks.append(
                make_local_sts_task(
                    f"{task}{LOCAL_SUFFIX}",
                    pairs,
                    description=description,
                    min_score=scale[0],
                    max_score=scale[1],
                )
            )
        elif name.startswith(TSV_PREFIX):
            path = Path(name[len(TSV_PREFIX) :]).expanduser()
            pairs = read_tsv_pairs(path)
            tasks.append(
                make_local_sts_task(f"{path.stem}{LOCAL_SUFFIX}", pairs, description=f"STS pairs from {path}")
            )
        else:
            hub_names.append(name)
    if hub_names:
        try:
            tasks += list(mteb.get_tasks(tasks=hub_names))
        except KeyError as exc:
            raise JtcseError(
                f"--tasks: {exc.args[0] if exc.args else exc} (an mteb task name, or local:TASK for one of "
                f"{', '.join(LOCAL_TASKS)}, or tsv:FILE)"
            ) from None
    names_seen = [t.metadata.name for t in tasks]
    duplicates = sorted({n for n in names_seen if names_seen.count(n) > 1})
    if duplicates:
        raise JtcseError(f"--tasks: {', '.join(duplicates)} named twice")
    return tasks


# --------------------------------------------------------------------------- the model side


def fingerprint_path(path: str | Path) -> str:
    """Hash of the files that determine a local model's embeddings; a hub id is hashed as its name."""
    root = Path(path)
    digest = hashlib.sha256()
    if not root.is_dir():
        digest.update(str(path).encode("utf-8"))
        return digest.hexdigest()
    for file in sorted(root.rglob("*")):
        relative = file.relative_to(root)
        if not file.is_file() or file.suffix not in _FINGERPRINT_SUFFIXES:
            continue
        if any(part in _FINGERPRINT_SKIP_DIRS for part in relative.parts[:-1]):
            continue
        digest.update(relative.as_posix().encode("utf-8") + b"\0")
        with file.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def encoder_revision(encoder: Any) -> str:
    """Fingerprint of an ``Encoder``: each member's files, pooler and weight."""
    digest = hashlib.sha256()
    for member in getattr(encoder, "members", []):
        record = {"files": fingerprint_path(member.source), "pooler": member.pooler, "weight": member.weight}
        digest.update(json.dumps(record, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:12]


def model_name_for(model: str | Path) -> str:
    """mteb wants ``organization/name``: a hub id keeps its own, anything local is ``jtcse/<dir name>``."""
    text = str(model).rstrip("/\\")
    if text.count("/") == 1 and not Path(text).expanduser().exists() and not text.startswith((".", "~")):
        return text
    stem = Path(text).name or "model"
    return f"jtcse/{re.sub(r'[^A-Za-z0-9_.-]+', '_', stem)}"


class MtebEncoder:
    """mteb's ``EncoderProtocol`` over a jtcse encoder; pairs are scored by cosine similarity."""

    def __init__(
        self,
        encoder: Any,
        *,
        name: str = "jtcse/model",
        revision: str | None = None,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> None:
        self.encoder = encoder
        self.name = name
        self.revision = revision or encoder_revision(encoder)
        self.batch_size = batch_size
        self.show_progress = show_progress

    def encode(
        self,
        inputs: Iterable[dict[str, Any]],
        *,
        task_metadata: Any,
        hf_split: str,
        hf_subset: str,
        prompt_type: Any = None,
        **kwargs: Any,
    ) -> np.ndarray:
        # Our encoders take no instructions, so prompts and the task's identity change nothing here.
        texts: list[str] = []
        for batch in inputs:
            if "text" not in batch:
                raise JtcseError(
                    f"task {task_metadata.name}: only text inputs can be encoded (got {sorted(batch)})"
                )
            texts.extend(batch["text"])
        batch_size = self.batch_size or kwargs.get("batch_size")
        vectors = self.encoder.encode(texts, batch_size=batch_size, show_progress=self.show_progress)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)

    # mteb checks the protocol with isinstance, which needs both similarity methods; ours is cosine.
    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        from mteb.similarity_functions import cos_sim

        return cos_sim(embeddings1, embeddings2)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        from mteb.similarity_functions import pairwise_cos_sim

        return pairwise_cos_sim(embeddings1, embeddings2)

    @property
    def mteb_model_meta(self) -> Any:
        from mteb.models.model_meta import ModelMeta, ScoringFunction

        models = {id(m.model): m.model for m in getattr(self.encoder, "members", []) if m.model is not None}
        n_parameters = sum(p.numel() for model in models.values() for p in model.parameters()) or None
        limits = [m.max_length for m in getattr(self.encoder, "members", []) if m.max_length]
        return ModelMeta.create_empty(
            {
                "name": self.name,
                "revision": self.revision,
                "n_parameters": n_parameters,
                "embed_dim": getattr(self.encoder, "dim", None),
                "max_tokens": min(limits) if limits else None,
                "framework": ["PyTorch"],
                "similarity_fn_name": ScoringFunction.COSINE,
                "use_instructions": False,
            }
        )


# --------------------------------------------------------------------------- running


@dataclass
class MtebRun:
    """What :func:`run_mteb` produced: main scores (x100) per task and mteb's result files."""

    model_name: str
    revision: str
    scores: dict[str, float]
    main_scores: dict[str, str]
    files: dict[str, Path]
    result: Any = field(repr=False, default=None)  # mteb's ModelResult

    def format_table(self) -> str:
        width = max([len("task"), *map(len, self.scores)])
        lines = [f"{'task'.ljust(width)}  score  metric"]
        lines += [f"{t.ljust(width)}  {s:5.2f}  {self.main_scores[t]}" for t, s in self.scores.items()]
        return "\n".join(lines)


def run_mteb(
    model: Any,
    tasks: Sequence[str] | Sequence[Any],
    output_dir: str | Path,
    *,
    batch_size: int = 64,
    pooler: str | None = None,
    device: str | None = None,
    max_length: int | None = None,
    data_dir: str | Path | None = None,
    overwrite: bool = False,
    show_progress: bool | None = None,
    model_name: str | None = None,
) -> MtebRun:
    """Evaluate ``model`` (anything :class:`jtcse.Encoder` takes, or an encoder object) on mteb ``tasks``.

    ``tasks`` are names (see the module docstring) or mteb task objects. Results go to
    ``<output_dir>/results/...`` through ``mteb.ResultCache``; a task already there for the same model
    fingerprint is not re-run unless ``overwrite``. ``model_name`` (``org/name``) names the model in the
    results; by default a hub id keeps its name and anything else becomes ``jtcse/<directory name>``.
    """
    mteb = _require_mteb()
    task_objects = [t for t in tasks if not isinstance(t, str)]
    task_names = [t for t in tasks if isinstance(t, str)]
    task_objects += resolve_tasks(task_names, data_dir=data_dir) if task_names else []
    if not task_objects:
        raise JtcseError("--tasks: name at least one task")
    encoder, name = _encoder_and_name(model, model_name, pooler, device, max_length, batch_size)
    wrapper = MtebEncoder(encoder, name=name, batch_size=batch_size, show_progress=show_progress)

    cache_dir = Path(output_dir).expanduser()
    result_cache = mteb.ResultCache(cache_dir)
    try:
        result = mteb.evaluate(
            wrapper,
            task_objects,
            cache=result_cache,
            encode_kwargs={"batch_size": batch_size},
            overwrite_strategy="always" if overwrite else "only-missing",
            show_progress_bar=bool(show_progress),
            co2_tracker=False,
        )
    except OSError as exc:  # the hub, unreachable or offline (ConnectionError is an OSError)
        raise JtcseError(
            f"mteb could not get a task's data ({first_line(exc)}); offline, use local:TASK for "
            f"{', '.join(LOCAL_TASKS)} or tsv:FILE"
        ) from None

    meta = wrapper.mteb_model_meta
    scores, main_scores, files = {}, {}, {}
    for task_result in result.task_results:
        task_name = task_result.task_name
        main_scores[task_name] = _main_score_name(task_objects, task_name)
        # the test split when there is one (what leaderboards report), else the mean over the splits run
        splits = ["test"] if "test" in task_result.scores else None
        scores[task_name] = 100.0 * float(task_result.get_score(splits=splits))
        files[task_name] = result_cache.get_task_result_path(task_name, meta)
    return MtebRun(meta.name, meta.revision, scores, main_scores, files, result)


def _encoder_and_name(
    model: Any,
    model_name: str | None,
    pooler: str | None,
    device: str | None,
    max_length: int | None,
    batch_size: int,
) -> tuple[Any, str]:
    """The encoder to wrap and its ``organization/name`` in mteb's results."""
    if isinstance(model, (str, Path)):
        from jtcse.encoder import Encoder

        encoder = Encoder(model, pooler=pooler, device=device, max_length=max_length, batch_size=batch_size)
        name = model_name or model_name_for(model)
    else:
        encoder, name = model, model_name or "jtcse/encoder"
    if "/" not in name:
        raise JtcseError(f"model name {name!r}: mteb needs the form organization/name")
    return encoder, name


def _main_score_name(tasks: Sequence[Any], name: str) -> str:
    return next((t.metadata.main_score for t in tasks if t.metadata.name == name), "main_score")
