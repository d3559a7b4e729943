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
* ``ensemble``: any members, e.g. JTCSE-UC = 0.3 x twin tower + 0.7 x an external checkpoint. A member path is
  relative to the directory, absolute, or a hub id; a member may itself be a jtcse model directory.

Each member directory carries its own tokenizer files, so members may use different tokenizers.

A member may also be an ONNX graph (``"backend": "onnx"``, written by ``jtcse export --format onnx``): its
directory holds ``model.onnx`` (token ids -> final vector, pooling and weighted sums inside), ``graph.json``
and the tokenizer; its ``pooler`` is ``"graph"``. ``backend`` is written only when it is not ``"torch"``, so
files without ONNX members are unchanged.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from jtcse import __version__
from jtcse.errors import JtcseError
from jtcse.fs import atomic_write_text

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
    backend: str = "torch"  # "onnx": the member is an exported graph (see the module doc)

    def to_dict(self) -> dict[str, Any]:
        entry = asdict(self)
        if self.backend == "torch":
            del entry["backend"]
        return entry


@dataclass
class ModelSpec:
    kind: str
    members: list[MemberSpec]
    method: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "kind": self.kind,
            "members": [m.to_dict() for m in self.members],
            "method": self.method,
            "jtcse_version": __version__,
            "extra": self.extra,
        }


def is_jtcse_dir(path: str | Path) -> bool:
    return (Path(path) / CONFIG_NAME).is_file()


def read_spec(model_dir: str | Path) -> ModelSpec:
    """Parse ``model_dir/jtcse.json``; every problem is a one-line :class:`JtcseError` naming the file."""
    file = Path(model_dir) / CONFIG_NAME
    try:
        raw = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise JtcseError(f"{file}: not found (not a jtcse model directory)") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JtcseError(f"{file}: not valid JSON ({exc})") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
        raise JtcseError(f"{file}: 'format' must be '{FORMAT_NAME}'")
    if int(raw.get("format_version", 0)) > FORMAT_VERSION:
        raise JtcseError(
            f"{file}: format_version {raw['format_version']} is newer than this jtcse understands "
            f"({FORMAT_VERSION}); upgrade jtcse"
        )
    kind = raw.get("kind")
    if kind not in KINDS:
        raise JtcseError(f"{file}: 'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
    members_raw = raw.get("members")
    if not isinstance(members_raw, list) or not members_raw:
        raise JtcseError(f"{file}: 'members' must be a non-empty list")
    members = []
    for i, m in enumerate(members_raw):
        if not isinstance(m, dict) or "path" not in m:
            raise JtcseError(f"{file}: members[{i}] needs a 'path'")
        try:
            members.append(
                MemberSpec(
                    path=str(m["path"]),
                    pooler=str(m.get("pooler", "cls_before_pooler")),
                    weight=float(m.get("weight", 1.0)),
                    backend=str(m.get("backend", "torch")),
                )
            )
        except (TypeError, ValueError) as exc:
            raise JtcseError(f"{file}: members[{i}] has a bad value ({exc})") from exc
        if members[-1].backend not in BACKENDS:
            raise JtcseError(
                f"{file}: members[{i}] backend {members[-1].backend!r} is not one of {', '.join(BACKENDS)}"
            )
    return ModelSpec(
        kind=kind, members=members, method=str(raw.get("method", "")), extra=raw.get("extra") or {}
    )


def resolve_member_path(model_dir: str | Path, member: MemberSpec) -> str:
    """Member path as ``from_pretrained`` wants it: relative paths are taken inside ``model_dir``."""
    p = Path(member.path).expanduser()
    if p.is_absolute():
        return str(p)
    local = Path(model_dir) / p
    if local.exists() or member.path in (".", "") or member.path.startswith("."):
        return str(local.resolve())
    return member.path  # a hub id


def write_spec(model_dir: str | Path, spec: ModelSpec) -> Path:
    """Write ``jtcse.json`` atomically (temp file, fsync, rename)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    target = model_dir / CONFIG_NAME
    atomic_write_text(target, json.dumps(spec.to_dict(), indent=2) + "\n")
    return target
