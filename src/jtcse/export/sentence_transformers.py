"""Export a jtcse model (or any model ``jtcse.Encoder`` loads) as a sentence-transformers directory.

What gets written, by the shape of the model:

* one member, weight 1, pooler ``cls_before_pooler`` / ``avg`` / ``cls``: a plain sentence-transformers
  pipeline, ``Transformer`` + ``Pooling`` (``cls`` / ``mean``), plus for ``cls`` a ``Dense`` layer holding the
  model's own pooler weights with ``Tanh`` (BERT's pooler is exactly dense + tanh on the [CLS] state). It
  loads with a plain ``SentenceTransformer(OUT)``, no custom code.
* anything else (twin towers, ensembles, ``avg_first_last``, a weighted single member): one custom module,
  ``jtcse_st_module.MultiTowerEmbedding``, whose source is copied into the directory. It needs
  ``SentenceTransformer(OUT, trust_remote_code=True)`` (sentence-transformers 6 requires that for every module
  class outside its own package) but not jtcse itself.

Either way the directory also carries a ``jtcse.json``, so ``jtcse.Encoder(OUT)`` loads it too, and the
vectors equal ``jtcse.Encoder(MODEL)``'s: the export checks that on a few probe sentences before it moves the
directory into place.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from jtcse.errors import JtcseError
from jtcse.fs import staged_directory
from jtcse.integrity import parameter_bytes
from jtcse.model.format import CONFIG_NAME, MemberSpec, ModelSpec, is_jtcse_dir, read_spec, write_spec
from jtcse.model.identity import SOURCE_KEY, model_identity
from jtcse.model.names import resolve_model
from jtcse.model.pooling import POOLERS
from jtcse.output_policy import check_output
from jtcse.records import Int, ListOf, Nullable, Num, Obj, Str, read_record

if TYPE_CHECKING:
    from jtcse.encoder import Encoder

FORMAT_NAME = "sentence-transformers"
FORMAT_ALIASES = {
    "sentence-transformers": FORMAT_NAME,
    "sentence_transformers": FORMAT_NAME,
    "st": FORMAT_NAME,
}
CUSTOM_MODULE_FILE = "jtcse_st_module.py"
CUSTOM_MODULE_REF = "jtcse_st_module.MultiTowerEmbedding"
TOWERS_FILE = "jtcse_towers.json"  # st_module.CONFIG_FILE (that module loads torch: not imported here)
# pooler -> sentence-transformers Pooling mode, for the plain pipeline
_PLAIN_POOLING = {"cls_before_pooler": "cls", "avg": "mean", "cls": "cls"}
PROBE_SENTENCES = (
    "A man is playing a guitar.",
    "Two dogs run across a snowy field",
    "the cat sat on the mat .",
    "Stock markets fell sharply on Monday after the announcement.",
    "Short.",
    "A much longer sentence, with punctuation; numbers like 3.14 and 2026, and a few rarer words: "
    "photosynthesis, quixotic, Reykjavik.",
)
# modules.json as sentence-transformers writes it: the one field the export rewrites is each entry's type
MODULES_SPEC = ListOf(Obj({"type": Str()}, {"idx": Int(0), "name": Str(), "path": Str()}), min_len=1)
# jtcse_towers.json, written by st_module.MultiTowerEmbedding.save (which must not import jtcse to read it)
TOWERS_SPEC = Obj(
    {
        "towers": ListOf(Obj({"path": Str(pattern=r"towers/\d+")}, {"max_length": Nullable(Int(1))}), 1),
        "members": ListOf(Obj({"tower": Int(0), "pooler": Str(choices=POOLERS), "weight": Num()}), 1),
    }
)


def check_format(name: str) -> str:
    fmt = FORMAT_ALIASES.get(str(name).lower())
    if fmt is None:
        raise JtcseError(f"--format {name}: unknown export format; choose {FORMAT_NAME}")
    return fmt


def check_export_dir(out_dir: str | Path, *, overwrite: bool, model: str | Path | None = None) -> Path:
    """The output must be absent or an empty directory, unless ``overwrite``; never the model, inside it or
    holding it; writable (:func:`jtcse.output_policy.check_output`)."""
    return check_output(
        out_dir, option="OUT", inputs={"--model": model}, replaces=True, overwrite=bool(overwrite)
    )


def export_model(
    model: str | Path,
    out_dir: str | Path,
    *,
    format: str = FORMAT_NAME,
    overwrite: bool = False,
    pooler: str | None = None,
    max_length: int | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """Export ``model`` to ``out_dir`` in ``format`` (``sentence-transformers``); see the module doc."""
    check_format(format)
    return export_sentence_transformers(
        model, out_dir, overwrite=overwrite, pooler=pooler, max_length=max_length, verify=verify
    )


def export_sentence_transformers(
    model: str | Path,
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    pooler: str | None = None,
    max_length: int | None = None,
    verify: bool = True,
) -> dict[str, Any]:
    """Write the sentence-transformers directory; returns ``{"path", "layout", "max_abs_diff"}``.

    ``layout`` is ``"plain"`` or ``"custom"``; ``max_abs_diff`` is the largest difference from
    ``jtcse.Encoder(model)`` on the probe sentences (None without ``verify``).
    """
    out = check_export_dir(out_dir, overwrite=overwrite, model=model)
    _require_sentence_transformers()
    from jtcse.encoder import Encoder

    source = resolve_model(model)
    encoder = Encoder(source, pooler=pooler, max_length=max_length, device="cpu")
    if any(member.model is None for member in encoder.members):
        raise JtcseError(f"--model {model}: is an ONNX export; export the model it came from")
    refuse_self_overwrite(out, encoder)

    # no dots in the staging name: transformers turns the folder name into a module name for custom code
    size = sum(parameter_bytes(m.model) for m in encoder.members)  # for a full disk's "needed" figure
    with staged_directory(out, prefix="jtcse_export_tmp_", size_hint=size) as staging:
        layout = "plain" if _plain_pipeline_fits(encoder) else "custom"
        if layout == "plain":
            _save_plain(encoder, staging)
        else:
            _save_custom(encoder, staging)
        _write_jtcse_spec(encoder, staging, layout, source)
        _write_readme(staging, source, layout)
        diff = _verify(encoder, staging, layout) if verify else None
    return {"path": out, "layout": layout, "max_abs_diff": diff}


# ---------------------------------------------------------------------------------------------- checks


def _require_sentence_transformers() -> None:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError as exc:
        raise JtcseError(
            "--format sentence-transformers: needs the sentence-transformers package; "
            "pip install sentence-transformers"
        ) from exc


def refuse_self_overwrite(out: Path, encoder: Encoder) -> None:
    """Replacing the output must never delete the model being exported."""
    target = out.resolve()
    for member in encoder.members:
        src = Path(member.source)
        if src.exists():
            src = src.resolve()
            if src == target or target in src.parents or src in target.parents:
                raise JtcseError(
                    f"{out}: overlaps the model being exported ({src}); choose another output directory"
                )


def _plain_pipeline_fits(encoder: Encoder) -> bool:
    if len(encoder.members) != 1:
        return False
    member = encoder.members[0]
    if member.weight != 1.0 or member.pooler not in _PLAIN_POOLING:
        return False
    if member.tokenizer_source is not None:  # its folder holds no (or another) tokenizer: ship the one used
        return False
    return member.pooler != "cls" or _pooler_dense(member.model) is not None


def _pooler_dense(model: Any) -> Any:
    """The dense layer of a BERT-style pooler (dense + tanh on [CLS]), or None."""
    pooler = getattr(model, "pooler", None)
    dense = getattr(pooler, "dense", None)
    activation = getattr(pooler, "activation", None)
    import torch

    if dense is None or not isinstance(activation, torch.nn.Tanh):
        return None
    return dense


# ---------------------------------------------------------------------------------------------- writers


def _st_modules() -> tuple[Any, Any, Any]:
    """``Transformer``, ``Pooling``, ``Dense`` wherever this sentence-transformers version keeps them."""
    try:  # sentence-transformers >= 6
        from sentence_transformers.base.modules import Dense, Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:
        # sentence-transformers < 6 (this branch is for older versions than the checker sees)
        from sentence_transformers.models import (  # type: ignore[no-redef,import-not-found,unused-ignore]
            Dense,
            Pooling,
            Transformer,
        )
    return Transformer, Pooling, Dense


def _save_plain(encoder: Encoder, out: Path) -> None:
    import torch
    from sentence_transformers import SentenceTransformer

    Transformer, Pooling, Dense = _st_modules()
    member = encoder.members[0]
    transformer = Transformer(member.source, max_seq_length=member.max_length)
    modules = [transformer, Pooling(encoder.dim, pooling_mode=_PLAIN_POOLING[member.pooler])]
    if member.pooler == "cls":
        dense = _pooler_dense(member.model)
        modules.append(
            Dense(
                dense.in_features,
                dense.out_features,
                bias=dense.bias is not None,
                activation_function=torch.nn.Tanh(),
                init_weight=dense.weight.detach().clone(),
                init_bias=None if dense.bias is None else dense.bias.detach().clone(),
            )
        )
    st_model = SentenceTransformer(modules=modules, device="cpu")
    st_model.float()  # jtcse encodes in float32 whatever the checkpoint's dtype
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st_model.save(str(out))


def _save_custom(encoder: Encoder, out: Path) -> None:
    from sentence_transformers import SentenceTransformer

    import jtcse.export.st_module as st_module

    towers: list[dict[str, Any]] = []
    models: list[Any] = []
    tokenizers: list[Any] = []
    tower_of: dict[str, int] = {}
    members = []
    for member in encoder.members:
        key = f"{member.source}\0{member.tokenizer_source}"  # one model read with one tokenizer
        if key not in tower_of:  # members naming one model share one copy, as in the Encoder
            tower_of[key] = len(towers)
            towers.append({"path": f"towers/{len(towers)}", "max_length": member.max_length})
            models.append(member.model)
            tokenizers.append(member.tokenizer)
        members.append({"tower": tower_of[key], "pooler": member.pooler, "weight": float(member.weight)})
    module = st_module.MultiTowerEmbedding(towers, members, models=models, tokenizers=tokenizers)
    st_model = SentenceTransformer(modules=[module], device="cpu")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st_model.save(str(out))
    # Point modules.json at the copy of the module shipped inside the directory (not at the jtcse package).
    modules_file = out / "modules.json"
    entries = read_modules(out)
    for entry in entries:
        if entry["type"].endswith(".MultiTowerEmbedding"):
            entry["type"] = CUSTOM_MODULE_REF
    modules_file.write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(st_module.__file__, out / CUSTOM_MODULE_FILE)


def read_modules(folder: Path) -> list[dict[str, Any]]:
    """``modules.json`` of a sentence-transformers directory, checked; damaged: one line naming the field."""
    return cast(list[dict[str, Any]], read_record(folder / "modules.json", MODULES_SPEC))


def read_towers(folder: Path) -> dict[str, Any]:
    """``jtcse_towers.json`` of the custom layout, checked (every member names one of the towers)."""
    file = folder / TOWERS_FILE
    config = read_record(file, TOWERS_SPEC)
    for i, member in enumerate(config["members"]):
        if member["tower"] >= len(config["towers"]):
            expected = f"an integer below {len(config['towers'])} (the number of towers)"
            raise JtcseError(f"{file}: field members[{i}].tower: expected {expected}, got {member['tower']}")
    return cast(dict[str, Any], config)


def _write_jtcse_spec(encoder: Encoder, out: Path, layout: str, source: str) -> None:
    """A jtcse.json, so that ``jtcse.Encoder(OUT)`` gives the same vectors as the source model."""
    method = read_spec(source).method if is_jtcse_dir(source) else ""
    extra: dict[str, Any] = {"exported_from": str(source), "export_format": FORMAT_NAME}
    extra["export_layout"] = layout
    extra[SOURCE_KEY] = model_identity(encoder)  # indexes built from the source accept this export's queries
    if layout == "plain":
        member = encoder.members[0]
        spec = ModelSpec("single", [MemberSpec(".", member.pooler, 1.0)], method=method, extra=extra)
    else:
        config = read_towers(out)
        members = [
            MemberSpec(config["towers"][m["tower"]]["path"], m["pooler"], float(m["weight"]))
            for m in config["members"]
        ]
        spec = ModelSpec("ensemble", members, method=method, extra=extra)
    if encoder.max_length is not None:
        spec.extra["max_length"] = encoder.max_length
    write_spec(out, spec)


def _write_readme(out: Path, source: str, layout: str) -> None:
    """The source model's card (when it has one) plus how to load the export."""
    readme = Path(source) / "README.md"
    body = readme.read_text(encoding="utf-8") if readme.is_file() else f"# {Path(source).name}\n"
    body = _strip_front_matter(body).rstrip() + "\n"
    load = (
        "SentenceTransformer(path)"
        if layout == "plain"
        else "SentenceTransformer(path, trust_remote_code=True)"
    )
    note = (
        "A plain sentence-transformers pipeline: no custom code."
        if layout == "plain"
        else f"The towers are combined by the module in `{CUSTOM_MODULE_FILE}` (shipped in this directory, "
        "needs only torch, transformers and sentence-transformers), hence `trust_remote_code=True`."
    )
    usage = (
        "\n## Use with sentence-transformers\n\n"
        f"{note}\n\n"
        "```python\n"
        "from sentence_transformers import SentenceTransformer\n\n"
        f"model = {load}\n"
        'embeddings = model.encode(["A man is playing a guitar.", "Someone plays an instrument."])\n'
        "```\n\n"
        "The vectors are unnormalised, as `jtcse.Encoder` gives them; compare them with cosine similarity. "
        f"`jtcse.Encoder(path)` loads this directory too (see `{CONFIG_NAME}`).\n"
    )
    front = (
        "---\nlibrary_name: sentence-transformers\npipeline_tag: sentence-similarity\n"
        "tags:\n- sentence-transformers\n- sentence-similarity\n- feature-extraction\n- jtcse\n---\n\n"
    )
    (out / "README.md").write_text(front + body + usage, encoding="utf-8")


def _strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---\n", 4)
        if end != -1:
            return text[end + 5 :].lstrip("\n")
    return text


def _verify(encoder: Encoder, out: Path, layout: str) -> float:
    """Load the written directory as sentence-transformers does and compare with the encoder."""
    from sentence_transformers import SentenceTransformer

    sentences = list(PROBE_SENTENCES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        st_model = SentenceTransformer(str(out), device="cpu", trust_remote_code=layout == "custom")
        got = st_model.encode(sentences, convert_to_numpy=True, batch_size=len(sentences))
    want = encoder.encode(sentences, show_progress=False)
    diff = float(np.max(np.abs(np.asarray(got, dtype=np.float64) - want)))
    scale = max(1.0, float(np.max(np.abs(want))))
    if not np.isfinite(diff) or diff > 1e-5 * scale:
        raise JtcseError(
            f"{out}: sentence-transformers gives other vectors than jtcse (max |diff| {diff:.3g}); "
            "please report this model's layout"
        )
    return diff
