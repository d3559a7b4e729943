"""Property tests: whatever text a client sends to `jtcse serve` (lone surrogates as ``\\ud800`` JSON escapes,
any Unicode, raw bodies that are not UTF-8), every endpoint that takes text answers 2xx or a 4xx in the
OpenAI error body, never a 5xx or a traceback; a lone surrogate is a 422 naming the input. A real server on
127.0.0.1 (tiny model, a corpus); every request has a time limit and each property a bounded example count."""

from __future__ import annotations

import json

import httpx
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jtcse.serve.config import Limits, ModelSource, ServeConfig
from serve_helpers import running_server

TIMEOUT_S = 20  # per request; the tiny model answers in milliseconds
EXAMPLES = 30  # per property: a few seconds on 2 busy cores
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples every run: a failure here is reproducible
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)
# any code point, lone surrogates included (hypothesis' default alphabet leaves them out)
CHARS = st.one_of(st.characters(), SURROGATE)
TEXT = st.text(CHARS, max_size=40)
TEXTS = st.one_of(TEXT, st.lists(TEXT, min_size=0, max_size=6))


def _bodies() -> st.SearchStrategy[tuple[str, dict]]:
    """(path, JSON body) for each endpoint that takes text, with arbitrary strings in every text field."""
    return st.one_of(
        st.tuples(st.just("/v1/embeddings"), st.fixed_dictionaries({"input": TEXTS})),
        st.tuples(st.just("/embed"), st.fixed_dictionaries({"inputs": TEXTS})),
        st.tuples(
            st.just("/similarity"),
            st.fixed_dictionaries({"pairs": st.lists(st.tuples(TEXT, TEXT), min_size=1, max_size=3)}),
        ),
        st.tuples(
            st.just("/similarity"),
            st.fixed_dictionaries({"source": TEXT, "candidates": st.lists(TEXT, min_size=1, max_size=3)}),
        ),
        st.tuples(st.just("/search"), st.fixed_dictionaries({"query": TEXT})),
        st.tuples(st.just("/search"), st.fixed_dictionaries({"queries": st.lists(TEXT, max_size=4)})),
        st.tuples(st.just("/v1/embeddings"), st.fixed_dictionaries({"input": st.just("x"), "model": TEXT})),
    )


@pytest.fixture(scope="module")
def server(tiny_bert_dir, tmp_path_factory) -> str:
    corpus = tmp_path_factory.mktemp("serve_text") / "corpus.txt"
    corpus.write_text("A man plays a guitar.\nSnow closed the roads.\nThe chef cooks dinner.\n", "utf-8")
    config = ServeConfig(
        models=[ModelSource("tiny", str(tiny_bert_dir))],
        limits=Limits(max_client_batch=16, batch_wait_ms=1),
        corpus=corpus,
        device="cpu",
    )
    with running_server(config) as url:
        yield url


def _assert_clean(response: httpx.Response) -> None:
    """2xx, or a 4xx whose body is the OpenAI error object with a one-line message; no traceback anywhere."""
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["message"] and "\n" not in error["message"], error


@PROPERTY
@given(case=_bodies())
def test_any_text_in_any_text_field_is_never_a_server_error(server, case) -> None:
    path, body = case
    # json.dumps escapes a lone surrogate as \ud800: what a JavaScript or Python client sends for one
    data = json.dumps(body).encode("ascii")
    response = httpx.post(
        f"{server}{path}", content=data, headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S
    )
    _assert_clean(response)
    texts = [t for v in body.values() for t in (v if isinstance(v, list) else [v])]
    flat = [s for t in texts for s in (t if isinstance(t, tuple) else [t])]
    if response.status_code == 200:  # accepted: then no text held a lone surrogate
        assert not any(0xD800 <= ord(c) <= 0xDFFF for s in flat for c in s), body


@PROPERTY
@given(
    field=st.sampled_from(["input", "inputs", "query"]),
    raw=st.binary(min_size=1, max_size=30),
)
def test_raw_bytes_that_are_not_utf8_are_a_422(server, field, raw) -> None:
    path = {"input": "/v1/embeddings", "inputs": "/embed", "query": "/search"}[field]
    data = b'{"' + field.encode() + b'": "' + raw + b'"}'
    response = httpx.post(
        f"{server}{path}", content=data, headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S
    )
    _assert_clean(response)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/embeddings", '{"input": "bad \\ud800 text"}', "input"),
        ("/v1/embeddings", '{"input": ["fine", "also fine", "x", "\\udcff"]}', "input[3]"),
        ("/embed", '{"inputs": ["ok", "\\ude00 tail"]}', "inputs[1]"),
        ("/similarity", '{"pairs": [["a", "b"], ["c", "\\ud83d"]]}', "pairs[3]"),
        ("/similarity", '{"source": "a", "candidates": ["\\ud800"]}', "candidates[0]"),
        ("/search", '{"query": "\\ud800"}', "query"),
        ("/search", '{"queries": ["ok", "\\udfff"]}', "queries[1]"),
    ],
)
def test_a_lone_surrogate_is_a_422_naming_the_input(server, path, body, param) -> None:
    response = httpx.post(
        f"{server}{path}", content=body, headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_text" and error["param"] == param, error
    assert error["message"].startswith(f"{param}: lone surrogate U+"), error


def test_a_surrogate_pair_escape_is_one_character_and_accepted(server) -> None:
    """``"\\ud83d\\ude00"`` is JSON's spelling of U+1F600 (one emoji), not two lone surrogates."""
    response = httpx.post(f"{server}/embed", json={"inputs": ["smile \U0001f600"]}, timeout=TIMEOUT_S)
    assert response.status_code == 200, response.text
    escaped = '{"inputs": ["smile \\ud83d\\ude00"]}'
    again = httpx.post(
        f"{server}/embed", content=escaped, headers={"Content-Type": "application/json"}, timeout=TIMEOUT_S
    )
    assert again.status_code == 200 and again.json() == response.json()
