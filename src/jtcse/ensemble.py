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


def check_members(members: Sequence[Any], weights: Sequence[Any]) -> None:
    """One finite weight per member, at least one member; else a one-line :class:`JtcseError`."""
    if len(members) != len(weights):
        raise JtcseError(
            f"ensemble: {len(members)} member(s) but {len(weights)} weight(s); give one weight each"
        )
    if not members:
        raise JtcseError("ensemble: needs at least one member")
    for i, w in enumerate(weights):
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w):
            raise JtcseError(f"ensemble: weight {i} ({w!r}) must be a finite number")


def save_ensemble(
    out_dir: str | Path,
    members: Sequence[str | Path],
    weights: Sequence[float],
    poolers: Sequence[str | None] | None = None,
    *,
    copy: bool = False,
    method: str = "ensemble",
    extra: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write an ensemble directory; returns the path of its ``jtcse.json``.

    ``members``: model directories (plain Hugging Face or jtcse), short names (``minilm``) or hub ids.
    ``weights``: one per member. ``poolers``: one per member or None; a None entry means the model's own
    choice
    (a jtcse member's ``jtcse.json``; a plain model's sentence-transformers pooling, else
    ``cls_before_pooler``), and a jtcse member must have None (its poolers live in its own ``jtcse.json``).
    ``copy``: copy local members into ``out_dir/members/`` (a self-contained, movable directory); otherwise
    they are recorded by absolute path, hub ids by name.
    """
    members, weights = list(members), list(weights)
    check_members(members, weights)
    poolers = [None] * len(members) if poolers is None else list(poolers)
    if len(poolers) != len(members):
        raise JtcseError(
            f"ensemble: {len(members)} member(s) but {len(poolers)} pooler(s); give one each (or None)"
        )

    out = Path(out_dir)
    resolved = [resolve_model(m) for m in members]
    _check_output(out, resolved, overwrite=overwrite)
    specs = [
        _member_spec(i, path, pooler, float(w))
        for i, (path, pooler, w) in enumerate(zip(resolved, poolers, weights, strict=True))
    ]
    _check_hidden_sizes(resolved)

    with staged_directory(out) as staging:  # a failure never leaves a half-written ensemble
        if copy:
            specs = [_copy_member(i, spec, staging) for i, spec in enumerate(specs)]
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


def _member_spec(i: int, path: str, pooler: str | None, weight: float) -> MemberSpec:
    local = Path(path)
    if local.exists():
        if not local.is_dir():
            raise JtcseError(f"ensemble: member {i} ({path}) is a file; expected a model directory")
        if is_jtcse_dir(local):
            if pooler is not None:
                raise JtcseError(
                    f"ensemble: member {i} ({path}) is a jtcse model with its own poolers in {CONFIG_NAME}; "
                    "give None as its pooler"
                )
            # The format wants a pooler on every entry; the Encoder takes a nested model's own instead.
            return MemberSpec(
                path=str(local.resolve()), pooler="cls_before_pooler", weight=weight, external=True
            )
        if not (local / "config.json").is_file():
            raise JtcseError(f"ensemble: member {i} ({path}) has no config.json; not a model directory")
        path = str(local.resolve())
    if pooler is None:
        from jtcse.model.loading import sentence_transformers_pooler

        pooler = sentence_transformers_pooler(path) or "cls_before_pooler"
    if pooler not in POOLERS:
        raise JtcseError(f"ensemble: member {i} pooler {pooler!r} is not one of {', '.join(POOLERS)}")
    # stored elsewhere on purpose (an absolute path or a hub id); _copy_member brings local ones inside
    return MemberSpec(path=path, pooler=pooler, weight=weight, external=True)


def _hidden_size(path: str) -> int | None:
    config = Path(path) / "config.json"
    if not config.is_file() or is_jtcse_dir(path):
        return None
    try:
        size = json.loads(config.read_text(encoding="utf-8")).get("hidden_size")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    return size if isinstance(size, int) else None


def _check_hidden_sizes(paths: list[str]) -> None:
    """Vectors of different widths cannot be summed: say so now rather than at load time."""
    sizes = {p: s for p in paths if (s := _hidden_size(p)) is not None}
    if len(set(sizes.values())) > 1:
        listing = ", ".join(f"{p} ({s})" for p, s in sizes.items())
        raise JtcseError(f"ensemble: members have different hidden sizes and cannot be summed: {listing}")


def _copy_member(i: int, spec: MemberSpec, root: Path) -> MemberSpec:
    src = Path(spec.path)
    if not src.is_dir():
        return spec  # a hub id: nothing local to copy
    rel = f"{MEMBERS_DIR}/{i}_{src.name}"
    shutil.copytree(src, root / rel, ignore=shutil.ignore_patterns("checkpoint", "*.tmp"))
    return MemberSpec(path=rel, pooler=spec.pooler, weight=spec.weight)  # inside the directory now


def _write_card(out: Path, spec: ModelSpec) -> None:
    from jtcse.model_card import write_model_card

    write_model_card(
        out,
        config={"kind": spec.kind, "method": spec.method, **spec.extra},
        data=None,
        metrics_path=None,
        sts_report=None,
    )
