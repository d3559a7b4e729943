"""sentence-transformers export: SentenceTransformer(OUT) gives jtcse.Encoder(DIR)'s vectors (1e-5)."""

from __future__ import annotations

import ast
import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from jtcse.encoder import Encoder
from jtcse.errors import JtcseError
from jtcse.export import export_model
from jtcse.export.sentence_transformers import (
    CUSTOM_MODULE_FILE,
    CUSTOM_MODULE_REF,
    TOWERS_FILE,
    read_modules,
    read_towers,
)
from jtcse.export.st_module import CONFIG_FILE
from jtcse.model.format import MemberSpec, ModelSpec, read_spec, write_spec

pytest.importorskip("sentence_transformers")

SENTENCES = [
    "A man is playing a guitar.",
    "hello",
    "Two dogs run across a snowy field while their owner watches from the porch, drinking hot coffee.",
    "the cat sat on the mat .",
    "Numbers 3.14 and 2026; punctuation!?",
]


def st_vectors(out: Path, *, trust: bool) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SentenceTransformer(str(out), device="cpu", trust_remote_code=trust)
        return model.encode(SENTENCES, batch_size=2, convert_to_numpy=True)


def assert_same_vectors(model_dir: Path, out: Path, *, trust: bool, pooler: str | None = None) -> None:
    want = Encoder(model_dir, pooler=pooler, device="cpu").encode(SENTENCES)
    np.testing.assert_allclose(st_vectors(out, trust=trust), want, atol=1e-5, rtol=0)
    # the exported directory is a jtcse model too
    np.testing.assert_allclose(Encoder(out, device="cpu").encode(SENTENCES), want, atol=1e-5, rtol=0)


@pytest.fixture(scope="module")
def twin_dir(twin_dir: Path) -> Path:
    """conftest's twin, with a model card of its own (the exports must carry it over)."""
    (twin_dir / "README.md").write_text("# my twin\n\nTrained with care.\n", encoding="utf-8")
    return twin_dir


@pytest.mark.parametrize("pooler", [None, "avg", "cls"])
def test_single_tower_is_a_plain_pipeline(tiny_bert_dir: Path, tmp_path: Path, pooler: str | None) -> None:
    out = tmp_path / "st"
    result = export_model(tiny_bert_dir, out, pooler=pooler, verify=pooler is None)
    assert result["layout"] == "plain"
    assert pooler is not None or result["max_abs_diff"] <= 1e-5
    types = [m["type"] for m in json.loads((out / "modules.json").read_text())]
    assert all(t.startswith("sentence_transformers.") for t in types)  # loads without trust_remote_code
    assert not (out / CUSTOM_MODULE_FILE).exists()
    assert_same_vectors(tiny_bert_dir, out, trust=False, pooler=pooler)
    assert read_spec(out).members[0].pooler == (pooler or "cls_before_pooler")


def test_twin_tower(twin_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "st_twin"
    result = export_model(twin_dir, out)
    assert result["layout"] == "custom"
    assert [m["type"] for m in json.loads((out / "modules.json").read_text())] == [CUSTOM_MODULE_REF]
    assert_same_vectors(twin_dir, out, trust=True)
    readme = (out / "README.md").read_text()
    assert "Trained with care." in readme and "trust_remote_code=True" in readme
    assert read_spec(out).method == "jtcse"


def test_ensemble_with_nested_twin_and_roberta(
    twin_dir: Path, tiny_roberta_dir: Path, tiny_bert_dir: Path, tmp_path: Path
) -> None:
    """JTCSE-UC-shaped: 0.3 x twin + 0.7 x another model (RoBERTa: its own tokenizer and position offset),
    plus a member with avg_first_last; members share towers with other members."""
    ens = tmp_path / "ens"
    members = [
        MemberSpec(str(twin_dir), "cls_before_pooler", 0.3, external=True),
        MemberSpec(str(tiny_roberta_dir), "cls_before_pooler", 0.7, external=True),
        MemberSpec(str(tiny_bert_dir), "avg_first_last", 0.25, external=True),
        MemberSpec(
            str(tiny_bert_dir), "avg", 0.5, external=True
        ),  # the same model again: one tower, two members
    ]
    write_spec(ens, ModelSpec("ensemble", members, method="ensemble"))
    out = tmp_path / "st_ens"
    result = export_model(ens, out, verify=False)
    assert result["layout"] == "custom"
    towers = json.loads((out / "jtcse_towers.json").read_text())
    assert len(towers["towers"]) == 4  # tower_a, tower_b, roberta, tiny bert (shared by two members)
    assert [m["tower"] for m in towers["members"]] == [0, 1, 2, 3, 3]
    assert [m["weight"] for m in towers["members"]] == [0.3, 0.3, 0.7, 0.25, 0.5]
    assert_same_vectors(ens, out, trust=True)


def test_avg_first_last_single_needs_the_custom_module(tiny_bert_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "st_afl"
    assert export_model(tiny_bert_dir, out, pooler="avg_first_last", verify=False)["layout"] == "custom"
    assert_same_vectors(tiny_bert_dir, out, trust=True, pooler="avg_first_last")


def test_custom_module_is_self_contained() -> None:
    """The shipped module must not need jtcse: only torch, transformers, sentence-transformers, stdlib."""
    from jtcse.export import st_module

    tree = ast.parse(Path(st_module.__file__).read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert roots <= {
        "__future__",
        "json",
        "os",
        "typing",
        "torch",
        "transformers",
        "sentence_transformers",
        "huggingface_hub",
    }


def test_bad_input(tiny_bert_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(JtcseError, match="--format tflite: unknown export format"):
        export_model(tiny_bert_dir, tmp_path / "x", format="tflite")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    with pytest.raises(JtcseError, match="exists and is not empty; pass --overwrite"):
        export_model(tiny_bert_dir, busy)
    assert (busy / "keep.txt").read_text() == "mine"
    before = sorted(p.name for p in tiny_bert_dir.iterdir())
    with pytest.raises(JtcseError, match=r"is the input --model .*; writing there would destroy it"):
        export_model(tiny_bert_dir, tiny_bert_dir, overwrite=True)
    with pytest.raises(JtcseError, match="lies inside the input --model"):
        export_model(tiny_bert_dir, tiny_bert_dir / "st")
    assert sorted(p.name for p in tiny_bert_dir.iterdir()) == before
    result = export_model(tiny_bert_dir, busy, overwrite=True, verify=False)
    assert result["max_abs_diff"] is None
    assert not (busy / "keep.txt").exists() and (busy / "modules.json").is_file()
    assert not list(tmp_path.glob("jtcse_export_tmp_*"))  # no staging folder left behind


def test_max_length_travels_with_the_export(twin_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "st_short"
    export_model(twin_dir, out, max_length=6, verify=False)
    want = Encoder(twin_dir, max_length=6, device="cpu").encode(SENTENCES)
    assert not np.allclose(want, Encoder(twin_dir, device="cpu").encode(SENTENCES), atol=1e-3)  # it truncates
    np.testing.assert_allclose(st_vectors(out, trust=True), want, atol=1e-5, rtol=0)
    np.testing.assert_allclose(Encoder(out, device="cpu").encode(SENTENCES), want, atol=1e-5, rtol=0)


def test_a_read_only_output_is_refused_before_the_model_loads(tmp_path: Path, read_only) -> None:
    frozen = read_only(tmp_path / "frozen")
    for out, where in ((frozen / "st", frozen), (frozen, frozen)):
        with pytest.raises(JtcseError, match="^" + re.escape(f"OUT {out}: cannot write in {where}: ")):
            export_model(tmp_path / "no-model", out)


def test_the_files_an_export_reads_back_are_checked(tmp_path: Path) -> None:
    """modules.json and jtcse_towers.json go through jtcse.records: a damaged one is one line naming the field
    (the property tests in tests/test_records.py feed them arbitrary bytes and JSON)."""
    assert TOWERS_FILE == CONFIG_FILE  # the exporter names the file the shipped module writes and loads
    towers = {"towers": [{"path": "towers/0"}], "members": [{"tower": 1, "pooler": "cls", "weight": 1.0}]}
    (tmp_path / TOWERS_FILE).write_text(json.dumps(towers))
    with pytest.raises(JtcseError) as error:
        read_towers(tmp_path)
    assert str(error.value) == (
        f"{tmp_path / TOWERS_FILE}: field members[0].tower: expected an integer below 1 (the number of "
        "towers), got 1"
    )
    towers["towers"] = [{"path": "../../etc"}]
    (tmp_path / TOWERS_FILE).write_text(json.dumps(towers))
    with pytest.raises(JtcseError, match=r"field towers\[0\]\.path: expected a string matching towers/"):
        read_towers(tmp_path)
    (tmp_path / "modules.json").write_text('[{"idx": 0, "type": 7}]')
    with pytest.raises(JtcseError, match=r"modules\.json: field \[0\]\.type: expected a string, got 7$"):
        read_modules(tmp_path)
