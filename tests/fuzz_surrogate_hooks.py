"""schemathesis hooks for ``tests/test_serve_fuzz.py``'s second run: each string of a generated JSON body
may get a lone surrogate (U+D800..U+DFFF) at a drawn position. schemathesis never draws one itself (it
cannot encode one as UTF-8), but JSON's ``\\ud800`` escape carries one, and a client may send it."""

from __future__ import annotations

import os
from typing import Any

import schemathesis
from hypothesis import strategies as st

CODES_ENV = "JTCSE_FUZZ_CODES"
SURROGATE = st.integers(0xD800, 0xDFFF).map(chr)


def _with_surrogates(draw: Any, value: Any) -> Any:
    if isinstance(value, str):
        if not draw(st.booleans()):
            return value
        at = draw(st.integers(0, len(value)))
        return value[:at] + draw(SURROGATE) + value[at:]
    if isinstance(value, list):
        return [_with_surrogates(draw, item) for item in value]
    if isinstance(value, dict):
        return {key: _with_surrogates(draw, item) for key, item in value.items()}
    return value


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    return st.composite(lambda draw: _with_surrogates(draw, body))()


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Record each error code in $JTCSE_FUZZ_CODES, so that the test can see lone surrogates were sent and
    answered as ``invalid_text``."""
    if response.status_code < 400 or not os.environ.get(CODES_ENV):
        return
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = f"status {response.status_code}"
    with open(os.environ[CODES_ENV], "a", encoding="utf-8") as fh:
        fh.write(f"{code}\n")
