"""Request bodies. Types are strict (a number is not a string); limits that depend on the server's flags are
checked in :mod:`jtcse.serve.validate`, so every 422 names the field at fault."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

# OpenAI also accepts token ids (a list of ints, or a list of such lists); they are parsed so the error can
# say exactly that they are unsupported, instead of a generic type error.
EmbeddingInput = StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class EmbeddingsRequest(_Body):
    """``POST /v1/embeddings``, the OpenAI shape."""

    input: EmbeddingInput
    model: StrictStr | None = None
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: StrictInt | None = None
    user: StrictStr | None = None


class EmbedRequest(_Body):
    """``POST /embed``: vectors as plain lists (the text-embeddings-inference shape)."""

    inputs: StrictStr | list[StrictStr]
    model: StrictStr | None = None
    normalize: StrictBool = True
    truncate: StrictBool | None = None  # None: the server's --truncate/--no-truncate


class SimilarityRequest(_Body):
    """``POST /similarity``: ``pairs`` of sentences, or one ``source`` against ``candidates``."""

    pairs: list[tuple[StrictStr, StrictStr]] | None = None
    source: StrictStr | None = None
    candidates: list[StrictStr] | None = None
    model: StrictStr | None = None


class SearchRequest(_Body):
    """``POST /search`` over the corpus indexed at start-up."""

    query: StrictStr | None = None
    queries: list[StrictStr] | None = None
    top_k: StrictInt = Field(default=5)
