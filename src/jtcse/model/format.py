"""The saved-model format: a ``jtcse.json`` file that travels with the weights.

A jtcse model directory is any directory with a ``jtcse.json``::

    {
      "format": "jtcse-model",
      "format_version": 1,
      "kind": "single" | "twin" | "ensemble",
      "members": [
        {"path": "tower_a", "pooler": "cls_before_pooler", "weight": 1.0},
        {"path": "tower_b", "pooler": "cls_before_pooler", "weight": 1.0}
      ],
      "method": "jtcse",            # what produced it (free text: simcse, jtcse, distill, ensemble, ...)
      "jtcse_version": "0.1.0",
      "extra": {}                    # producer-specific facts (e.g. the training config file name)
    }

The sentence embedding is ``sum_i weight_i * pool_i(member_i(x))`` on raw (unnormalised) vectors, which
covers the three cases:

* ``single``: one member whose ``path`` is ``"."`` (the directory itself is a standard HF model dir);
* ``twin``: a JTCSE/TNCSE twin tower, ``tower_a/`` and ``tower_b/`` (each a standard Hugging Face model dir),
  both weight 1 and ``cls_before_pooler``: the paper's ``h_CLS^A + h_CLS^B``;
* ``ensemble``: any members, e.g. JTCSE-UC = 0.3 x twin tower + 0.7 x an external checkpoint. A member may
  itself be a jtcse model directory.

Confinement: a member path is relative to the directory and stays inside it (no ``..`` out of it, no
absolute path), unless the member says ``"external": true`` (an ensemble that references separately stored
models: then the path may be absolute or a hub id). A member that is missing is an error naming
``jtcse.json`` and the member; it is never tried as a hub id. ``"checksums"`` lists the SHA-256 of the model
files stored inside the directory (see :mod:`jtcse.integrity`); it is written with the file and verified
when the model is loaded.

Each member directory carries its own tokenizer files, so members may use different tokenizers. A member may
name another one with ``"tokenizer"`` (a folder inside the directory, an absolute path or a hub id): the
published JTCSE towers are weights only and read ``bert-base-uncased``'s token ids. ``tokenizer`` is written
only when set.

A member may also be an ONNX graph (``"backend": "onnx"``, written by ``jtcse export --format onnx``): its
directory holds ``model.onnx`` (token ids -> final vector, pooling and weighted sums inside), ``graph.json``
and the tokenizer; its ``pooler`` is ``"graph"``. ``backend`` is written only when it is not ``"torch"``, so
files without ONNX members are unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jtcse import __version__
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text
from jtcse.integrity import MANIFEST_KEY, build_manifest, verify_manifest
from jtcse.records import SHA256, Bool, ListOf, MapOf, Nullable, Num, Obj, Str, read_format_record

CONFIG_NAME = "jtcse.json"
FORMAT_NAME = "jtcse-model"
FORMAT_VERSION = 1
KINDS = ("single", "twin", "ensemble")
BACKENDS = ("torch", "onnx")


@dataclass
class MemberSpec:
    path: str
    pooler: str = "cls_before_pooler"
    weight: float = 1.0
    external: bool = False  # stored outside the model directory on purpose (absolute path or hub id)
    backend: str = "torch"  # "onnx": the member is an exported graph (see the module doc)
    tokenizer: str | None = None  # where its tokenizer is, when not in its own folder (see the module doc)

    def to_dict(self) -> dict[str, Any]:
        # optional fields are written only when they differ from the default, so older files stay unchanged
        entry: dict[str, Any] = {"path": self.path, "pooler": self.pooler, "weight": self.weight}
        if self.external:
            entry["external"] = True
        if self.backend != "torch":
            entry["backend"] = self.backend
        if self.tokenizer is not None:
            entry["tokenizer"] = self.tokenizer
        return entry


@dataclass
class ModelSpec:
    kind: str
    members: list[MemberSpec]
    method: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    checksums: dict[str, str] = field(default_factory=dict)  # filled in by write_spec

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "members": [m.to_dict() for m in self.members],
            "method": self.method,
            "jtcse_version": __version__,
            "extra": self.extra,
            **({MANIFEST_KEY: self.checksums} if self.checksums else {}),
        }


def is_jtcse_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


_MEMBER_SPEC = Obj(
    {"path": Str(nonempty=True)},
    {
        "pooler": Str(),
        "weight": Num(),
        "external": Bool(),
        "backend": Str(choices=BACKENDS),
        "tokenizer": Nullable(Str()),
    },
)
SPEC_SCHEMA = Obj(
    {"kind": Str(choices=KINDS), "members": ListOf(_MEMBER_SPEC, min_len=1)},
    {"method": Str(), "extra": Nullable(Obj()), MANIFEST_KEY: Nullable(MapOf(Str(pattern=SHA256)))},
)


def read_spec(model_dir: str | Path) -> ModelSpec:
    """Parse ``model_dir/jtcse.json``; every problem is a one-line :class:`JtcseError` naming the file (and
    the field)."""
    file = Path(model_dir) / CONFIG_NAME
    if not file.is_file():
        raise JtcseError(f"{file}: not found (not a jtcse model directory)")
    raw = read_format_record(
        file,
        SPEC_SCHEMA,
        kind="jtcse model (jtcse.json)",
        format_name=FORMAT_NAME,
        max_version=FORMAT_VERSION,
    )
    members = [
        MemberSpec(
            path=m["path"],
            pooler=m.get("pooler", "cls_before_pooler"),
            weight=float(m.get("weight", 1.0)),
            external=m.get("external", False),
            backend=m.get("backend", "torch"),
            tokenizer=m.get("tokenizer"),
        )
        for m in raw["members"]
    ]
    return ModelSpec(
        kind=raw["kind"],
        members=members,
        method=raw.get("method", ""),
        extra=raw.get("extra") or {},
        checksums=raw.get(MANIFEST_KEY) or {},
    )


def resolve_member_path(model_dir: str | Path, member: MemberSpec) -> str:
    """Member path as ``from_pretrained`` wants it: an existing folder inside ``model_dir``, or, for a member
    declared ``external``, an absolute/relative path or a hub id. Anything else is a one-line error naming
    ``jtcse.json`` and the member."""
    file = Path(model_dir).resolve() / CONFIG_NAME
    p = Path(member.path).expanduser()
    if member.external:
        if p.is_absolute():
            return str(p)
        local = Path(model_dir) / p
        return str(local.resolve()) if local.exists() else member.path  # else: a hub id, on purpose
    root = Path(model_dir).resolve()
    local = (root / p).resolve()
    if p.is_absolute() or (local != root and root not in local.parents):
        raise JtcseError(
            f"{file}: member {member.path!r} lies outside the model directory; store it inside, or mark "
            'the member "external": true if it is meant to be stored elsewhere'
        )
    if not local.is_dir():
        raise JtcseError(f"{file}: member {member.path!r} is missing (no folder {local})")
    return str(local)


def resolve_member_tokenizer(model_dir: str | Path, member: MemberSpec) -> str | None:
    """Where ``member``'s tokenizer is when ``jtcse.json`` names one (None: the member's own folder): a
    folder inside ``model_dir``, an absolute path (which must exist) or a hub id. A relative path that
    leads out of the directory is a one-line error naming ``jtcse.json``."""
    if member.tokenizer is None:
        return None
    file = Path(model_dir).resolve() / CONFIG_NAME
    p = Path(member.tokenizer).expanduser()
    if p.is_absolute():
        if not p.exists():
            raise JtcseError(f"{file}: tokenizer {member.tokenizer!r} of member {member.path!r} is missing")
        return str(p)
    root = Path(model_dir).resolve()
    local = (root / p).resolve()
    if local != root and root not in local.parents:
        raise JtcseError(
            f"{file}: tokenizer {member.tokenizer!r} of member {member.path!r} lies outside the model "
            "directory; give an absolute path or store it inside"
        )
    return str(local) if local.exists() else member.tokenizer  # else: a hub id, on purpose


def member_dirs_inside(model_dir: str | Path, spec: ModelSpec) -> list[str]:
    """The relative folders of the members (and of the tokenizers they name) stored inside ``model_dir``
    (what the checksums cover)."""
    folders = [m.path for m in spec.members if not m.external]
    tokenizers = [m.tokenizer for m in spec.members if m.tokenizer and not Path(m.tokenizer).is_absolute()]
    return folders + [t for t in tokenizers if (Path(model_dir) / t).is_dir()]


def verify_model_dir(model_dir: str | Path, spec: ModelSpec) -> None:
    """Check the files listed in ``jtcse.json``'s checksums (a directory written before them has none)."""
    verify_manifest(Path(model_dir), spec.checksums, Path(model_dir).resolve() / CONFIG_NAME)


def write_spec(model_dir: str | Path, spec: ModelSpec) -> Path:
    """Write ``jtcse.json`` atomically (temp file, fsync, rename), with the checksums of the model files of
    the members stored inside ``model_dir``: call it after they are written."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / CONFIG_NAME
    spec.checksums = build_manifest(model_dir, member_dirs_inside(model_dir, spec))
    atomic_write_text(target, json.dumps(spec.to_dict(), indent=2) + "\n")
    return target
