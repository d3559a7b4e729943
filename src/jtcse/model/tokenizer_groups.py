"""Which members of an encoder read the same token ids (and so can share one tokenizer call or graph)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def tokenizer_signature(tokenizer: Any) -> Any:
    """Equal for two tokenizers that turn every text into the same ids (same fast-tokenizer definition,
    padding id and model inputs); a slow tokenizer cannot be compared cheaply, so it equals only itself."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return ("object", id(tokenizer))
    return (
        type(tokenizer).__name__,
        backend.to_str(),
        tokenizer.pad_token_id,
        tuple(tokenizer.model_input_names),
    )


def group_by_tokenizer(members: Sequence[Any]) -> list[list[Any]]:
    """Members (with ``.tokenizer`` and ``.max_length``) grouped by tokenizer and truncation limit, in the
    order each group first appears."""
    groups: dict[Any, list[Any]] = {}
    for member in members:
        key = (tokenizer_signature(member.tokenizer), member.max_length)
        groups.setdefault(key, []).append(member)
    return list(groups.values())
