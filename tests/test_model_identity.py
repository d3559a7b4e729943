"""Encode once, query with the export: an index built from a model answers queries from that model's ONNX
(fp32 / int8) or sentence-transformers export, saying so in one line; any other model stays refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from jtcse.cli.main import main
from jtcse.encoder import Encoder
from jtcse.errors import JtcseError
from jtcse.model.format import read_spec
from jtcse.model.identity import EXPORT_KEY, SOURCE_KEY, model_identity, query_note
from jtcse.tools.search import SearchHit, SearchIndex

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from jtcse.export.onnx import export_onnx

WORDS = ["man", "woman", "dog", "plays", "guitar", "runs", "field", "park", "music", "rain", "cat", "sea"]
INT8_NOTE = "queries from the int8 ONNX export of the weights this index was built from"


def _corpus(path: Path, lines: int = 120) -> Path:
    rng = np.random.default_rng(0)
    path.write_text("".join(" ".join(rng.choice(WORDS, 5)) + "\n" for _ in range(lines)), encoding="utf-8")
    return path


def _sts_dev(data_dir: Path) -> Path:
    """Any scoreable STS-B dev file: the int8 gate needs one (its loss is accepted below)."""
    folder = data_dir / "sts" / "STSB" / "senteval"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    rows = [
        f"main-captions\tMSRvid\t2012test\t{i:04d}\t{rng.uniform(0, 5):.3f}\t"
        f"{' '.join(rng.choice(WORDS, 4))}\t{' '.join(rng.choice(WORDS, 4))}"
        for i in range(20)
    ]
    (folder / "sts-dev.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return data_dir


@pytest.fixture(scope="module")
def twin_int8(twin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("twin_int8")
    out = root / "export"
    export_onnx(twin_dir, out, quantize="int8", data_dir=_sts_dev(root / "data"), accept_loss=True)
    return out


def test_export_records_the_identity_of_its_source(twin_dir: Path, twin_int8: Path) -> None:
    recorded = read_spec(twin_int8).extra[SOURCE_KEY]
    assert recorded == model_identity(Encoder(twin_dir, device="cpu"))
    mine = model_identity(Encoder(twin_int8, device="cpu"))
    assert mine[EXPORT_KEY] == {"identity": recorded, "format": "onnx", "precision": "int8"}
    assert query_note(recorded, mine) == INT8_NOTE
    assert query_note(mine, recorded) == (
        "queries from the original weights of the int8 ONNX export this index was built from"
    )
    # no export record on the source itself
    assert model_identity(Encoder(twin_dir, device="cpu")) == recorded


def test_corpus_index_accepts_its_export(twin_dir: Path, twin_int8: Path, tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus.txt")
    built = SearchIndex.for_corpus(Encoder(twin_dir, device="cpu"), corpus)
    assert built.status == "built" and built.model_note == ""
    int8 = Encoder(twin_int8, device="cpu")
    loaded = SearchIndex.for_corpus(int8, corpus)  # not rebuilt: the int8 queries search the fp32 vectors
    assert loaded.status == "loaded" and loaded.model_note == INT8_NOTE
    query = corpus.read_text(encoding="utf-8").splitlines()[7]
    top = loaded.search(int8, query, top_k=3)[0]
    assert isinstance(top, SearchHit) and top.text == query and top.score > 0.95


def test_vector_index_cli_accepts_its_export_and_refuses_another_model(
    twin_dir: Path, twin_int8: Path, tiny_bert_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corpus = _corpus(tmp_path / "corpus.txt")
    vecs = tmp_path / "vecs"
    assert (
        _cli(["encode", "--model", str(twin_dir), "--input", str(corpus), "--output", str(vecs)], capsys)[0]
        == 0
    )
    assert _cli(["index", "--vectors", str(vecs), "--kind", "flat"], capsys)[0] == 0
    query = corpus.read_text(encoding="utf-8").splitlines()[3]
    argv = ["search", "--index", str(vecs / "index-flat"), "--query", query, "--top-k", "2"]
    code, out, err = _cli([*argv, "--model", str(twin_int8)], capsys)
    assert code == 0 and f"index: {INT8_NOTE}\n" in err and query in out.splitlines()[0]
    code, _, err = _cli([*argv, "--model", str(twin_dir)], capsys)
    assert code == 0 and "queries from" not in err  # the same model: nothing to say
    other = tmp_path / "other_onnx"  # an export of another model (one tower of the twin) stays refused
    export_onnx(tiny_bert_dir, other)
    capsys.readouterr()
    code, _, err = _cli([*argv, "--model", str(other)], capsys)
    assert code == 2 and "built from vectors of another model" in err.splitlines()[-1]


def test_sentence_transformers_export_and_served_index(twin_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from jtcse.export import export_model
    from jtcse.serve.search import ServedSearch

    st_out = tmp_path / "st"
    export_model(twin_dir, st_out, verify=False)
    corpus = _corpus(tmp_path / "corpus.txt")
    SearchIndex.for_corpus(Encoder(twin_dir, device="cpu"), corpus)
    served = ServedSearch.open(Encoder(st_out, device="cpu"), corpus=corpus, index_dir=None)
    assert served.model_note == (
        "queries from the fp32 sentence-transformers export of the weights this index was built from"
    )


def test_other_weights_stay_refused(tiny_bert_dir: Path, tiny_bert_dir_b: Path, tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus.txt", lines=20)
    SearchIndex.for_corpus(Encoder(tiny_bert_dir, device="cpu"), corpus)
    with pytest.raises(JtcseError, match="built by another model"):
        SearchIndex.for_corpus(Encoder(tiny_bert_dir_b, device="cpu"), corpus)
    copy = tmp_path / "copy"  # the same weights elsewhere give the same vectors: accepted, and said so
    shutil.copytree(tiny_bert_dir, copy)
    index = SearchIndex.for_corpus(Encoder(copy, device="cpu"), corpus)
    assert index.model_note == "queries from a copy of the weights this index was built from"
    with pytest.raises(JtcseError, match="built by another model"):  # the same weights, another pooler
        SearchIndex.for_corpus(Encoder(copy, device="cpu", pooler="avg"), corpus)


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err
