"""Search index: results equal to brute force, saved and reused, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jtcse.encoder import Encoder
from jtcse.errors import JtcseError
from jtcse.tools.search import (
    META_NAME,
    VECTORS_NAME,
    SearchIndex,
    default_index_dir,
    read_corpus,
)

CORPUS_LINES = [
    "A man is playing a guitar.",
    "",
    "A woman is slicing an onion.",
    "Two dogs run across a snowy field.",
    "   ",
    "The stock market fell sharply today.",
    "A man is playing a guitar.",  # a duplicate: an exact tie
    "Children are playing football in the park.",
    "The chef cooks pasta in a large pot.",
    "Heavy rain is expected tomorrow afternoon.",
]
BACKENDS = ["numpy", "auto"]


@pytest.fixture(scope="module")
def encoder(tiny_bert_dir: Path) -> Encoder:
    return Encoder(tiny_bert_dir, device="cpu")


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(CORPUS_LINES) + "\n", encoding="utf-8")
    return path


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of every pair, sorted by (score descending, row ascending), in float64."""
    v = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    scores = q.astype(np.float64) @ v.astype(np.float64).T
    rows = np.stack([np.lexsort((np.arange(len(s)), -s))[:k] for s in scores])
    return np.take_along_axis(scores, rows, 1), rows


@pytest.mark.parametrize("backend", BACKENDS)
def test_search_vectors_equal_brute_force(backend: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 24)).astype(np.float32)
    vectors[100] = vectors[7]  # exact ties, straddling the top-k cut for the query below
    vectors[300] = vectors[7]
    queries = rng.normal(size=(6, 24)).astype(np.float32)
    queries[0] = vectors[7] + 1e-3 * rng.normal(size=24).astype(np.float32)
    corpus = tmp_path / "c.txt"
    corpus.write_text("".join(f"s{i}\n" for i in range(500)), encoding="utf-8")
    index = SearchIndex(vectors, read_corpus(corpus), {"members": []}, backend=backend)
    for k in (1, 2, 5, 500, 900):
        scores, rows = index.search_vectors(queries, k)
        want_scores, want_rows = brute_force(vectors, queries, min(k, 500))
        np.testing.assert_array_equal(rows, want_rows)
        np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    # the duplicated vector: all three copies come first, in corpus order
    _, rows = index.search_vectors(queries[:1], 2)
    assert rows[0].tolist() == [7, 100]


def test_faiss_backend_points_at_an_approximate_index(encoder: Encoder, corpus: Path) -> None:
    """A flat faiss index computed the same exact product as numpy: no second backend (issue 13)."""
    with pytest.raises(JtcseError, match="jtcse encode \\+ jtcse index"):
        SearchIndex.for_corpus(encoder, corpus, backend="faiss")


@pytest.mark.parametrize("backend", BACKENDS)
def test_hits_match_encoder_cosines(encoder: Encoder, corpus: Path, tmp_path: Path, backend: str) -> None:
    index = SearchIndex.for_corpus(encoder, corpus, index_dir=tmp_path / "idx", backend=backend)
    kept = [(n + 1, s) for n, s in enumerate(CORPUS_LINES) if s.strip()]
    assert [index.corpus.line_numbers[i] for i in range(len(index))] == [n for n, _ in kept]
    query = "somebody plays the guitar"
    hits = index.search(encoder, query, top_k=3)
    want_scores, want_rows = brute_force(encoder.encode([s for _, s in kept]), encoder.encode([query]), 3)
    assert [h.rank for h in hits] == [1, 2, 3]
    assert [h.line for h in hits] == [kept[r][0] for r in want_rows[0]]
    assert [h.text for h in hits] == [kept[r][1] for r in want_rows[0]]
    np.testing.assert_allclose([h.score for h in hits], want_scores[0], atol=1e-5)


def test_index_saved_beside_corpus_and_reused(encoder: Encoder, corpus: Path) -> None:
    first = SearchIndex.for_corpus(encoder, corpus)
    index_dir = default_index_dir(corpus)
    assert index_dir == corpus.resolve().with_name("corpus.txt.jtcse-index")
    assert first.status == "built"
    meta = json.loads((index_dir / META_NAME).read_text())
    assert meta["dim"] == encoder.dim and meta["count"] == 8 and meta["normalize"] is True
    assert meta["corpus"]["sha256"] == read_corpus(corpus).sha256
    assert meta["model"]["members"][0]["pooler"] == "cls_before_pooler"
    saved = np.load(index_dir / VECTORS_NAME)
    np.testing.assert_allclose(np.linalg.norm(saved, axis=1), 1.0, atol=1e-5)

    again = SearchIndex.for_corpus(encoder, corpus)
    assert again.status == "loaded"
    np.testing.assert_array_equal(again.vectors, first.vectors)

    corpus.write_text(corpus.read_text() + "A new line about guitars.\n", encoding="utf-8")
    changed = SearchIndex.for_corpus(encoder, corpus)
    assert changed.status == "rebuilt (the corpus changed)"
    assert len(changed) == 9
    assert changed.search(encoder, "A new line about guitars.", top_k=1)[0].line == len(CORPUS_LINES) + 1


def test_index_of_another_model_is_an_error(encoder: Encoder, corpus: Path, tiny_bert_dir_b: Path) -> None:
    SearchIndex.for_corpus(encoder, corpus)
    other = Encoder(tiny_bert_dir_b, device="cpu")
    with pytest.raises(JtcseError, match=r"built by another model.*--rebuild"):
        SearchIndex.for_corpus(other, corpus)
    with pytest.raises(JtcseError, match="--rebuild"):
        SearchIndex.for_corpus(Encoder(encoder.members[0].source, pooler="avg", device="cpu"), corpus)
    loaded = SearchIndex.load(default_index_dir(corpus), corpus)
    with pytest.raises(JtcseError, match="built by another model"):
        loaded.search(other, "a query")
    assert len(loaded.search(encoder, "a query", top_k=2)) == 2
    rebuilt = SearchIndex.for_corpus(other, corpus, rebuild=True)
    assert rebuilt.status == "rebuilt (--rebuild)"
    assert SearchIndex.for_corpus(other, corpus).status == "loaded"


def test_index_of_another_dimension_is_an_error(
    encoder: Encoder, corpus: Path, tmp_path: Path, minilm_dir: Path
) -> None:
    from transformers import AutoTokenizer, BertConfig, BertModel

    narrow = tmp_path / "narrow"
    tokenizer = AutoTokenizer.from_pretrained(minilm_dir)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(narrow)
    tokenizer.save_pretrained(narrow)
    SearchIndex.for_corpus(Encoder(narrow, device="cpu"), corpus)
    with pytest.raises(
        JtcseError, match=r"with 16-dim vectors, but .* gives 32-dim vectors; pass --rebuild to replace"
    ):
        SearchIndex.for_corpus(encoder, corpus)


def test_bad_input(encoder: Encoder, corpus: Path, tmp_path: Path) -> None:
    with pytest.raises(JtcseError, match=r"--corpus .*: no such file"):
        SearchIndex.for_corpus(encoder, tmp_path / "missing.txt")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n\n", encoding="utf-8")
    with pytest.raises(JtcseError, match="no sentences"):
        SearchIndex.for_corpus(encoder, blank)
    index = SearchIndex.for_corpus(encoder, corpus)
    for query in ("", "   "):
        with pytest.raises(JtcseError, match="--query: the query is empty"):
            index.search(encoder, query)
    with pytest.raises(JtcseError, match="--top-k 0"):
        index.search(encoder, "guitar", top_k=0)
    assert len(index.search(encoder, "guitar", top_k=100)) == len(index)
    with pytest.raises(JtcseError, match="--backend annoy"):
        SearchIndex.for_corpus(encoder, corpus, backend="annoy")
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("ok\ncaf\xe9\n".encode("latin-1"))
    with pytest.raises(JtcseError, match=r"latin1.txt:2: not valid UTF-8"):
        read_corpus(bad)
