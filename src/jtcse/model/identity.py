"""What identifies the model behind a set of vectors, and whether a query model may search them.

An index (``jtcse search``'s corpus index, ``jtcse index`` folders, the vectors of ``jtcse encode``) records
the **identity** of the encoder that made its vectors: per member its source, a fingerprint of its weights,
pooler, weight and truncation limit, plus the vector size. A query is answered only by the same model.

An export (``jtcse export``, ONNX or sentence-transformers) records, in its ``jtcse.json`` as
``extra.source_identity``, the identity of the model it was exported from (computed once, at export, while the
source weights are at hand). Its own identity then carries ``export_of``: that record with the export's format
and precision. So an index built from the full model accepts queries from its export (and the other way
round), with a one-line note naming the precision; any other model is refused.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError
from jtcse.model.format import CONFIG_NAME, read_spec
from jtcse.records import Int, ListOf, Nullable, Obj, Spec, Str

# Identities are JSON objects stored in index.json / manifest.json / jtcse.json: their values are JSON values.
Identity = dict[str, Any]

SOURCE_KEY = "source_identity"  # jtcse.json extra: the identity of the model an export came from
EXPORT_KEY = "export_of"  # an export's identity: {"identity", "format", "precision"}
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")
_PROBE_BYTES = 1 << 20
_FORMAT_LABELS = {"onnx": "ONNX", "sentence-transformers": "sentence-transformers"}


def weights_fingerprint(source: str) -> str | None:
    """Cheap fingerprint of a local model directory: config plus size and first MiB of each weight file.

    It tells a retrained checkpoint in the same directory apart without hashing gigabytes (training moves the
    embedding matrix, stored first). A hub id has none: its name is its identity.
    """
    root = Path(source)
    if not root.is_dir():
        return None
    h = hashlib.sha256()
    config = root / "config.json"
    if config.is_file():
        h.update(config.read_bytes())
    for file in sorted(root.iterdir()):
        if file.is_file() and file.suffix in _WEIGHT_SUFFIXES:
            h.update(f"{file.name}:{file.stat().st_size}:".encode())
            with open(file, "rb") as fh:
                h.update(fh.read(_PROBE_BYTES))
    return h.hexdigest()


def _member_field(member: object, name: str) -> Any:
    return member.get(name) if isinstance(member, dict) else getattr(member, name, None)


def model_identity(encoder: object) -> Identity:
    """What makes two encoders give the same vectors: per member, source, weights, pooler, weight, limit;
    for an export, also ``export_of`` (what it was exported from, see the module doc)."""
    members = []
    for member in getattr(encoder, "members", None) or []:
        source = str(_member_field(member, "source"))
        weight = _member_field(member, "weight")
        members.append(
            {
                "source": source,
                "pooler": _member_field(member, "pooler"),
                "weight": None if weight is None else float(weight),
                "max_length": _member_field(member, "max_length"),
                "fingerprint": weights_fingerprint(source),
            }
        )
    if not members:  # any other object with encode(): only its class and size can identify it
        members.append({"source": type(encoder).__qualname__})
    identity: Identity = {"members": members, "dim": int(getattr(encoder, "dim", 0) or 0)}
    exported = _export_record([m["source"] for m in members])
    if exported is not None:
        identity[EXPORT_KEY] = exported
    return identity


def _export_record(sources: list[str]) -> Identity | None:
    """``export_of`` when every member lies in one export directory that recorded its source, else None."""
    homes = set()
    for source in sources:
        path = Path(source)
        # the nearest jtcse.json: an ONNX graph is OUT/graph_0, a sentence-transformers tower OUT/towers/0
        home = next((d for d in (path, *path.parents[:2]) if (d / CONFIG_NAME).is_file()), None)
        if home is None:
            return None
        homes.add(home.resolve())
    if len(homes) != 1:
        return None
    extra = read_spec(homes.pop()).extra
    source_identity = extra.get(SOURCE_KEY)
    if not isinstance(source_identity, dict):
        return None
    onnx = extra.get("onnx")
    precision = onnx.get("precision", "fp32") if isinstance(onnx, dict) else "fp32"
    return {
        "identity": source_identity,
        "format": str(extra.get("export_format", "")),
        "precision": str(precision),
    }


class _IdentitySpec(Spec):
    """The schema of an identity as vectors folders and indexes record it (an export's ``export_of`` holds
    the identity it came from, checked the same way)."""

    def check(self, value: Any, at: str) -> None:
        member = Obj(optional={"source": Str(), "pooler": Nullable(Str()), "fingerprint": Nullable(Str())})
        Obj({"members": ListOf(member)}, {"dim": Int(0)}).check(value, at)
        if EXPORT_KEY in value:
            record = Obj({"identity": self}, {"format": Str(), "precision": Str()})
            record.check(value[EXPORT_KEY], f"{at}.{EXPORT_KEY}" if at else EXPORT_KEY)


IDENTITY_SPEC = _IdentitySpec()


def describe_identity(identity: Identity) -> str:
    parts = []
    for m in identity.get("members", []):
        text = str(m.get("source"))
        if m.get("pooler"):
            text += f" ({m['pooler']})"
        parts.append(text)
    return " + ".join(parts) or "an unknown model"


def _weights(identity: Identity) -> Identity:
    """The weights behind an identity, paths aside: the source's for an export; a member with a fingerprint
    is its content (the same weights copied elsewhere give the same vectors)."""
    base = identity
    while isinstance(base.get(EXPORT_KEY), dict):  # an export of an export: the weights of the first source
        base = base[EXPORT_KEY]["identity"]
    members = [
        {k: v for k, v in m.items() if not (k == "source" and m.get("fingerprint"))}
        for m in base.get("members", [])
    ]
    return {"members": members, "dim": base.get("dim")}


def _export_label(identity: Identity) -> str:
    record = identity[EXPORT_KEY]
    fmt = _FORMAT_LABELS.get(record.get("format"), record.get("format") or "an")
    return f"{record.get('precision', 'fp32')} {fmt} export"


def query_note(saved: Identity, mine: Identity) -> str | None:
    """None when ``mine`` may not query vectors made by ``saved``; "" when it is the same model; else the
    one line that says which export of the same weights is asking."""
    if mine == saved:
        return ""
    if _weights(mine) != _weights(saved) or (saved.get("dim") and saved.get("dim") != mine.get("dim")):
        return None
    if EXPORT_KEY in mine and EXPORT_KEY in saved:
        return (
            f"queries from the {_export_label(mine)} of the weights whose {_export_label(saved)} built "
            "this index"
        )
    if EXPORT_KEY in mine:
        return f"queries from the {_export_label(mine)} of the weights this index was built from"
    if EXPORT_KEY in saved:
        return f"queries from the original weights of the {_export_label(saved)} this index was built from"
    return "queries from a copy of the weights this index was built from"


def check_query_model(
    saved: Identity, saved_dim: int, encoder: object, *, where: str, fix: str, built: str = "built by"
) -> str:
    """The note of :func:`query_note` (``""``: the same model); a one-line error naming both models and
    ``fix`` when ``encoder`` may not query vectors made by ``saved`` (``built``: how the index came of it)."""
    mine = model_identity(encoder)
    if mine.get("dim") and mine["dim"] != saved_dim:
        raise JtcseError(
            f"{where}: {built} {describe_identity(saved)} with {saved_dim}-dim vectors, but "
            f"{describe_identity(mine)} gives {mine['dim']}-dim vectors; {fix}"
        )
    note = query_note(saved, mine)
    if note is None:
        raise JtcseError(
            f"{where}: {built} another model ({describe_identity(saved)}), "
            f"not {describe_identity(mine)}; {fix}"
        )
    return note
