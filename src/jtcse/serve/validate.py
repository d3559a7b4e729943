"""Request checks that depend on the server's flags and models; each failure is an :class:`ApiError` naming
the field at fault."""

from __future__ import annotations

from typing import Any

import numpy as np

from jtcse.serve.errors import ApiError
from jtcse.serve.tokens import Counts
from jtcse.text_gate import first_bad


# Any: a request's JSON value, checked here
def texts_of(value: Any, param: str, max_items: int) -> list[str]:
    """A string or a list of strings -> the list; token ids, empty inputs and oversized lists are 422s."""
    texts = [value] if isinstance(value, str) else list(value)
    if not texts:
        raise ApiError(422, f"{param}: empty list; send at least one string", code="empty_input", param=param)
    if not all(isinstance(t, str) for t in texts):
        raise ApiError(
            422,
            f"{param}: token-id inputs are not supported; send the text (a string or a list of strings)",
            code="unsupported_input",
            param=param,
        )
    if len(texts) > max_items:
        raise ApiError(
            422,
            f"{param}: {len(texts)} inputs, over the limit of {max_items} per request (--max-client-batch); "
            "split the request",
            code="too_many_inputs",
            param=param,
        )
    for i, text in enumerate(texts):
        if not text.strip():
            where = param if isinstance(value, str) else f"{param}[{i}]"
            raise ApiError(422, f"{where}: empty string", code="empty_input", param=where)
    bad = first_bad(texts)
    if bad is not None:  # a lone surrogate ("\ud800" in the JSON): the tokenizer would fail with a 500
        where = param if isinstance(value, str) else f"{param}[{bad[0]}]"
        raise ApiError(422, f"{where}: {bad[1]}; send UTF-8 text", code="invalid_text", param=where)
    return texts


def check_lengths(counts: Counts, truncate: bool, limit: int | None, param: str, single: bool) -> None:
    """With truncation off, an input longer than the model allows is a 422 (never silently cut)."""
    if truncate or not counts.over.any():
        return
    i = int(np.flatnonzero(counts.over)[0])
    where = param if single else f"{param}[{i}]"
    raise ApiError(
        422,
        f"{where}: {int(counts.raw[i])} tokens, over the model's limit of {limit} (the server runs with "
        "--no-truncate); shorten it",
        code="input_too_long",
        param=where,
    )


def check_dimensions(dimensions: int | None, dim: int) -> None:
    if dimensions is not None and not 1 <= dimensions <= dim:
        raise ApiError(
            422,
            f"dimensions: {dimensions} is out of range; this model gives 1 to {dim}",
            code="invalid_dimensions",
            param="dimensions",
        )


def check_top_k(top_k: int, max_top_k: int) -> None:
    if not 1 <= top_k <= max_top_k:
        raise ApiError(
            422, f"top_k: {top_k} is out of range 1 to {max_top_k}", code="invalid_value", param="top_k"
        )


def one_of(body: object, first: str, second: str) -> str:
    """Exactly one of two alternative fields is set; returns its name."""
    has = [name for name in (first, second) if getattr(body, name) is not None]
    if len(has) != 1:
        raise ApiError(
            422, f"give either {first} or {second} (exactly one)", code="invalid_value", param=first
        )
    return has[0]
