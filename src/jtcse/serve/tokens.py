"""Token counts of request inputs, for ``usage``, the batch token budget and ``--no-truncate``.

Counting runs on the request side while the model worker encodes, so it uses its own copy of each member's
tokenizer: a Hugging Face fast tokenizer shared between threads can fail ("Already borrowed") when one thread
changes its truncation settings while another encodes. The vectors themselves always come from
``jtcse.Encoder.encode``, which tokenizes again with its own settings; these counts never touch them.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from jtcse.encoder import Encoder


@dataclass(frozen=True)
class Counts:
    raw: np.ndarray  # tokens per input before truncation (the largest over the members' tokenizers)
    kept: np.ndarray  # tokens per input the model will see (after truncation at each member's limit)
    over: np.ndarray  # bool per input: longer than some member allows


class TokenCounter:
    """Counts tokens as every member of an encoder sees them (members may have different tokenizers)."""

    def __init__(self, encoder: Encoder) -> None:
        self._members: list[tuple[Any, int | None]] = []
        seen: dict[int, Any] = {}
        for member in encoder.members:
            tokenizer = getattr(member, "tokenizer", None)
            key = id(tokenizer)
            if key not in seen:
                seen[key] = _private_copy(tokenizer)
            self._members.append((seen[key], getattr(member, "max_length", None)))
        self._lock = threading.Lock()  # the copies are shared by the request threads

    def max_input_tokens(self) -> int | None:
        limits = [limit for _, limit in self._members if limit is not None]
        return min(limits) if limits else None

    def count(self, texts: Sequence[str]) -> Counts:
        n = len(texts)
        raw, kept, over = np.zeros(n, np.int64), np.zeros(n, np.int64), np.zeros(n, bool)
        done: dict[int, np.ndarray] = {}
        with self._lock:
            for tokenizer, limit in self._members:
                if id(tokenizer) not in done:
                    done[id(tokenizer)] = _lengths(tokenizer, texts)
                lengths = done[id(tokenizer)]
                raw = np.maximum(raw, lengths)
                if limit is not None:
                    over |= lengths > limit
                    lengths = np.minimum(lengths, limit)
                kept = np.maximum(kept, lengths)
        return Counts(raw=raw, kept=kept, over=over)


def _private_copy(tokenizer: Any) -> Any:
    if tokenizer is None:
        return None
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:  # a fast tokenizer: a fresh Rust tokenizer without truncation or padding
        from tokenizers import Tokenizer

        clone = Tokenizer.from_str(backend.to_str())
        clone.no_truncation()
        clone.no_padding()
        return clone
    return copy.deepcopy(tokenizer)


def _lengths(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]) -> np.ndarray:
    if tokenizer is None:  # a member without a tokenizer: count characters, an upper bound for the budget
        return np.fromiter((len(t) + 2 for t in texts), np.int64, count=len(texts))
    if hasattr(tokenizer, "encode_batch"):
        encoded = tokenizer.encode_batch(list(texts), add_special_tokens=True)
        return np.fromiter((len(e.ids) for e in encoded), np.int64, count=len(texts))
    ids = tokenizer(list(texts), add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    return np.fromiter((len(x) for x in ids), np.int64, count=len(texts))
