"""Saved ensembles: a directory whose ``jtcse.json`` (kind ``ensemble``) sums weighted member models.

The embedding is ``sum_i weight_i * pool_i(member_i(x))`` on raw, unnormalised vectors (see
:mod:`jtcse.model.format`); each member keeps its own tokenizer and pooler, and a member that is itself a
jtcse directory (a twin tower) brings its own poolers, its vectors scaled by the member's weight.

JTCSE-UC (method.md §4.1) is the paper's choice of weights:
``e_UC(x) = (1 - w) * (h_CLS^A + h_CLS^B) + w * h_CLS^InfoCSE`` with ``w = 0.7`` for JTCSE-BERT and -RoBERTa,
i.e. weight 0.3 on the twin tower and 0.7 on the external "unsupervised checkpoint" (InfoCSE, CLS of the last
layer). :func:`save_uc_ensemble` writes exactly that.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError
from jtcse.fs import staged_directory
from jtcse.model.format import CONFIG_NAME, MemberSpec, ModelSpec, is_jtcse_dir, write_spec
from jtcse.model.names import resolve_model
from jtcse.model.pooling import POOLERS

UC_WEIGHT = 0.7  # w: the external checkpoint's share (JTCSE ensemble_UC.py, BERT and RoBERTa)
UC_TWIN_WEIGHT = round(1.0 - UC_WEIGHT, 10)  # 0.3 on h_A + h_B
UC_EXTERNAL_WEIGHT = UC_WEIGHT  # 0.7 on h_InfoCSE
MEMBERS_DIR = "members"
TOKENIZER_DIR = "tokenizer"  # where --copy puts the shared tokenizer


def check_members(members: Sequence[Any], weights: Sequence[Any]) -> None:
    """One finite weight per member, at least one member, not all weights 0; else a one-line
    :class:`JtcseError`."""
    if len(members) != len(weights):
        raise JtcseError(
            f"ensemble: {len(members)} member(s) but {len(weights)} weight(s); give one weight each"
        )
    if not members:
        raise JtcseError("ensemble: needs at least one member")
    for i, w in enumerate(weights):
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise JtcseError(f"ensemble: weight {i} ({w!r}) must be a finite number")
    if all(w == 0 for w in weights):
        raise JtcseError(
            "ensemble: every member's weight is 0, so every vector would be all zeros; "
            "give at least one member a non-zero weight (--member PATH:WEIGHT)"
        )


def save_ensemble(
    out_dir: str | Path,
    members: Sequence[str | Path],
    weights: Sequence[float],
    poolers: Sequence[str | None] | None = None,
    *,
    tokenizer: str | Path | None = None,
    labels: Sequence[str] | None = None,
    copy: bool = False,
    method: str = "ensemble",
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an ensemble directory; returns the path of its ``jtcse.json``.

    ``members``: model directories (plain Hugging Face or jtcse), short names (``minilm``) or hub ids.
    ``weights``: one per member. ``poolers``: one per member or None; a None entry means the model's own
    choice (a jtcse member's ``jtcse.json``; a plain model's sentence-transformers pooling, else
    ``cls_before_pooler``), and a jtcse member must have None (its poolers live in its own ``jtcse.json``).
    ``tokenizer``: one tokenizer (folder, short name or hub id) for every plain member, recorded as each
    member's ``tokenizer`` (the published JTCSE towers are weights only); jtcse members keep their own.
    Without it every plain member needs tokenizer files of its own. ``labels``: how errors name each member
    (the CLI passes ``--member TEXT``). ``copy``: copy local members (and the tokenizer) into ``out_dir``
    (a self-contained, movable directory whose checksums cover them); otherwise they are recorded by
    absolute path, hub ids by name.
    """
    members, weights = list(members), list(weights)
    check_members(members, weights)
    poolers = [None] * len(members) if poolers is None else list(poolers)
    if len(poolers) != len(members):
        raise JtcseError(
            f"ensemble: {len(members)} member(s) but {len(poolers)} pooler(s); give one each (or None)"
        )
    labels = (
        [f"ensemble: member {i} ({m})" for i, m in enumerate(members)] if labels is None else list(labels)
    )

    out = Path(out_dir)
    resolved = [_resolve(m, label) for m, label in zip(members, labels, strict=True)]
    _check_output(out, resolved, overwrite=overwrite)
    tokenizer_path = None if tokenizer is None else _check_tokenizer(tokenizer)
    specs = [
        _member_spec(label, path, pooler, float(w), tokenizer_path)
        for label, path, pooler, w in zip(labels, resolved, poolers, weights, strict=True)
    ]
    _check_vector_sizes(resolved, labels)

    with staged_directory(out) as staging:  # a failure never leaves a half-written ensemble
        if copy:
            specs = [_copy_member(i, spec, staging) for i, spec in enumerate(specs)]
            if tokenizer_path is not None:
                specs = _copy_tokenizer(tokenizer_path, specs, staging)
        spec = ModelSpec(kind="ensemble", members=specs, method=method, extra=dict(extra or {}))
        write_spec(staging, spec)
        _write_card(staging, spec)
    return out / CONFIG_NAME


def save_uc_ensemble(
    out_dir: str | Path,
    twin: str | Path,
    external: str | Path,
    *,
    weight: float = UC_WEIGHT,
    external_pooler: str = "cls_before_pooler",
    copy: bool = False,
    overwrite: bool = False,
) -> Path:
    """JTCSE-UC: ``(1 - weight) * twin + weight * external``, by default the paper's 0.3 / 0.7 split.

    ``external`` is the "unsupervised checkpoint" (the paper: ``ffgcc/InfoCSE-bert-base``, CLS of the last
    layer, hence ``cls_before_pooler``).
    """
    if not 0.0 <= weight <= 1.0:
        raise JtcseError(f"UC weight {weight}: must lie in [0, 1]")
    return save_ensemble(
        out_dir,
        [twin, external],
        [round(1.0 - weight, 10), weight],
        [None, external_pooler],
        copy=copy,
        method="jtcse-uc",
        extra={"uc_weight": weight, "formula": "(1 - w) * (h_A + h_B) + w * h_external"},
        overwrite=overwrite,
    )


# ---------------------------------------------------------------------------------------------- helpers


def _check_output(out: Path, members: list[str], *, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise JtcseError(f"{out}: exists and is a file; choose another output directory")
    if out.is_dir() and any(out.iterdir()):
        if not overwrite:
            raise JtcseError(f"{out}: exists and is not empty; pass --overwrite to replace it")
        target = out.resolve()
        for m in members:
            p = Path(m)
            if p.exists() and (p.resolve() == target or target in p.resolve().parents):
                raise JtcseError(f"{out}: holds the member {m}; replacing it would delete that model")


def _resolve(member: str | Path, label: str) -> str:
    try:
        return resolve_model(member)
    except JtcseError as exc:  # resolve_model names --model; say which member it was
        reason = str(exc).split(": ", 1)[-1]
        raise JtcseError(f"{label}: {reason}") from exc


def _check_tokenizer(tokenizer: str | Path) -> str:
    """The tokenizer as ``from_pretrained`` wants it (an absolute folder or a hub id), loaded once to
    prove it is one."""
    from jtcse.model.loading import load_tokenizer

    path = _resolve(tokenizer, f"--tokenizer {tokenizer}")
    path = str(Path(path).resolve()) if Path(path).is_dir() else path
    load_tokenizer(path, label=f"--tokenizer {tokenizer}")
    return path


def _member_spec(
    label: str, path: str, pooler: str | None, weight: float, tokenizer: str | None
) -> MemberSpec:
    local = Path(path)
    if local.exists():
        if not local.is_dir():
            raise JtcseError(f"{label}: is a file; expected a model directory")
        if is_jtcse_dir(local):
            if pooler is not None:
                raise JtcseError(
                    f"{label}: a jtcse model with its own poolers in {CONFIG_NAME}; give None as its pooler"
                )
            # The format wants a pooler on every entry; the Encoder takes a nested model's own instead.
            return MemberSpec(
                path=str(local.resolve()), pooler="cls_before_pooler", weight=weight, external=True
            )
        if not (local / "config.json").is_file():
            raise JtcseError(f"{label}: has no config.json; not a model directory")
        path = str(local.resolve())
        if tokenizer is None:
            _check_own_tokenizer(path, label)
    if pooler is None:
        from jtcse.model.loading import sentence_transformers_pooler

        pooler = sentence_transformers_pooler(path) or "cls_before_pooler"
    if pooler not in POOLERS:
        raise JtcseError(f"{label}: pooler {pooler!r} is not one of {', '.join(POOLERS)}")
    # stored elsewhere on purpose (an absolute path or a hub id); _copy_member brings local ones inside
    return MemberSpec(path=path, pooler=pooler, weight=weight, external=True, tokenizer=tokenizer)


def _check_own_tokenizer(path: str, label: str) -> None:
    from jtcse.model.loading import load_tokenizer

    try:
        load_tokenizer(path, label=label)
    except JtcseError as exc:
        raise JtcseError(
            f"{label}: the folder has no tokenizer of its own; pass --tokenizer (the published JTCSE "
            "towers read bert-base-uncased's or roberta-base's)"
        ) from exc


def _vector_size(path: str, label: str, depth: int = 0) -> int | None:
    """The width of a member's vectors: a plain model's ``hidden_size`` (a hub id's config is fetched, or
    read from the cache: a name the hub does not know is an error), a jtcse model's first torch member's;
    None when it cannot be told (an ONNX member, nesting too deep)."""
    if depth > 8:
        return None
    if is_jtcse_dir(path):
        from jtcse.model.format import read_spec, resolve_member_path

        spec = read_spec(path)
        for member in spec.members:
            if member.backend == "torch":
                inner = resolve_member_path(path, member)
                if Path(inner).resolve() != Path(path).resolve():
                    return _vector_size(inner, label, depth + 1)
                return _config_hidden_size(Path(path) / "config.json")
        return None
    if Path(path).is_dir():
        return _config_hidden_size(Path(path) / "config.json")
    from transformers import AutoConfig

    from jtcse.errors import first_line

    try:
        size = getattr(AutoConfig.from_pretrained(path), "hidden_size", None)
    except (OSError, ValueError, KeyError) as exc:
        raise JtcseError(
            f"{label}: no such folder, and no Hugging Face hub model of that name could be reached "
            f"({first_line(exc)})"
        ) from exc
    return size if isinstance(size, int) else None


def _config_hidden_size(config: Path) -> int | None:
    try:
        size = json.loads(config.read_text(encoding="utf-8")).get("hidden_size")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    return size if isinstance(size, int) else None


def _check_vector_sizes(paths: list[str], labels: list[str]) -> None:
    """Vectors of different widths cannot be summed: say so now rather than at load time."""
    sizes = [(label, _vector_size(p, label)) for p, label in zip(paths, labels, strict=True)]
    known = [(label, s) for label, s in sizes if s is not None]
    if len({s for _, s in known}) > 1:
        listing = ", ".join(f"{label} ({s})" for label, s in known)
        raise JtcseError(f"members have different hidden sizes and cannot be summed: {listing}")


def _copy_member(i: int, spec: MemberSpec, root: Path) -> MemberSpec:
    src = Path(spec.path)
    if not src.is_dir():
        return spec  # a hub id: nothing local to copy
    rel = f"{MEMBERS_DIR}/{i}_{src.name}"
    shutil.copytree(src, root / rel, ignore=shutil.ignore_patterns("checkpoint", "*.tmp"))
    # inside the directory now
    return MemberSpec(path=rel, pooler=spec.pooler, weight=spec.weight, tokenizer=spec.tokenizer)


def _copy_tokenizer(tokenizer: str, specs: list[MemberSpec], root: Path) -> list[MemberSpec]:
    """Save the shared tokenizer into ``root/tokenizer`` and point the members that use it there."""
    from jtcse.model.loading import load_tokenizer

    load_tokenizer(tokenizer, label=f"--tokenizer {tokenizer}").save_pretrained(str(root / TOKENIZER_DIR))
    return [replace(s, tokenizer=TOKENIZER_DIR) if s.tokenizer == tokenizer else s for s in specs]


def _write_card(out: Path, spec: ModelSpec) -> None:
    from jtcse.model_card import write_model_card

    write_model_card(
        out,
        config={"kind": spec.kind, "method": spec.method, **spec.extra},
        data=None,
        metrics_path=None,
        sts_report=None,
    )
