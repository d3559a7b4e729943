"""Request bodies. Types are strict (a number is not a string); limits that depend on the server's flags are
checked in :mod:`jtcse.serve.validate`, so every 422 names the field at fault.

The published JSON schema says what those checks enforce (a schema-driven fuzzer holds the two together,
``tests/test_serve_fuzz.py``): no empty or blank text, no empty list, at most ``--max-client-batch`` inputs,
``top_k`` up to ``--max-top-k``, exactly one of the alternative fields. Bounds that depend on the flags are
named under ``"x-jtcse-limits"`` (``{"maxItems": "inputs"}``); :func:`jtcse.serve.openapi.resolve_limits`
fills them in per server.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    WithJsonSchema,
)
from pydantic.json_schema import JsonDict

# OpenAI also accepts token ids (a list of ints, or a list of such lists); they are parsed so the error can
# say exactly that they are unsupported, instead of a generic type error. The schema leaves them out.
EmbeddingInput = StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]

# The server strips what Python's str.isspace() calls white space: a text needs one character outside it.
# Written as \uXXXX so that Python's re and ECMA-262 regexes read the pattern alike.


def _space_class() -> str:
    """The white-space characters as regex ranges: ``\\u0009-\\u000d\\u001c-\\u0020...``."""
    codes = [c for c in range(0x10000) if chr(c).isspace()]
    runs: list[list[int]] = []
    for c in codes:
        if runs and c == runs[-1][1] + 1:
            runs[-1][1] = c
        else:
            runs.append([c, c])
    return "".join(f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in runs)


NONBLANK = f"[^{_space_class()}]"
LIMITS = "x-jtcse-limits"  # bounds set by the server's flags: keyword -> name in openapi.limit_values


def _text() -> JsonDict:
    return {"type": "string", "pattern": NONBLANK, "description": "a text that is not blank"}


def _texts(limit: str) -> JsonDict:
    return {"type": "array", "items": _text(), "minItems": 1, LIMITS: {"maxItems": limit}}


def _one_or_many(description: str) -> WithJsonSchema:
    return WithJsonSchema({"anyOf": [_text(), _texts("inputs")], "description": description})


def _whole(value: object) -> object:
    """JSON Schema's "integer" includes 5.0: read as 5 (then strict: 5.5, "5" and true stay 422s)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# a JSON number with no fractional part; never a string or a bool
WholeNumber = Annotated[StrictInt, BeforeValidator(_whole)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


_DIMENSIONS: JsonDict = {"type": "integer", "minimum": 1, LIMITS: {"maximum": "dimensions"}}


class EmbeddingsRequest(_Body):
    """``POST /v1/embeddings``, the OpenAI shape."""

    input: Annotated[EmbeddingInput, _one_or_many("a text or a list of texts (token ids: unsupported)")]
    model: StrictStr | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: Annotated[
        WholeNumber | None,
        WithJsonSchema(
            {
                "anyOf": [_DIMENSIONS, {"type": "null"}],
                "description": "keep the first N values, then re-normalise (N up to the model's dimension)",
            }
        ),
    ] = None
    user: StrictStr | None = None


class EmbedRequest(_Body):
    """``POST /embed``: vectors as plain lists (the text-embeddings-inference shape)."""

    inputs: Annotated[StrictStr | list[StrictStr], _one_or_many("a text or a list of texts")]
    model: StrictStr | None = None
    normalize: StrictBool = True
    truncate: StrictBool | None = None  # None: the server's --truncate/--no-truncate


_NULL: JsonDict = {"type": "null"}
_PAIRS: JsonDict = {
    "type": "array",
    "minItems": 1,
    LIMITS: {"maxItems": "pairs"},
    "items": {"type": "array", "prefixItems": [_text(), _text()], "minItems": 2, "maxItems": 2},
}


class SimilarityRequest(_Body):
    """``POST /similarity``: ``pairs`` of sentences, or one ``source`` against ``candidates``."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["pairs"], "properties": {"pairs": _PAIRS, "source": _NULL}},
                {
                    "required": ["source", "candidates"],
                    "properties": {"pairs": _NULL, "source": _text(), "candidates": _texts("candidates")},
                },
            ]
        }
    )

    pairs: list[tuple[StrictStr, StrictStr]] | None = None
    source: StrictStr | None = None
    candidates: list[StrictStr] | None = None
    model: StrictStr | None = None


class SearchRequest(_Body):
    """``POST /search`` over the corpus indexed at start-up."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["query"], "properties": {"query": _text(), "queries": _NULL}},
                {"required": ["queries"], "properties": {"query": _NULL, "queries": _texts("inputs")}},
            ]
        }
    )

    query: StrictStr | None = None
    queries: list[StrictStr] | None = None
    top_k: Annotated[
        WholeNumber,
        WithJsonSchema({"type": "integer", "minimum": 1, LIMITS: {"maximum": "top_k"}, "default": 5}),
    ] = Field(default=5)
