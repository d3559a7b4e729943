"""A saved fast tokenizer (``tokenizer.json``) run by the ``tokenizers`` library alone, without transformers.

An ONNX export needs nothing else to turn text into ids: importing transformers costs seconds, the Rust
tokenizer a few milliseconds. :class:`FastTokenizer` answers the one call :mod:`jtcse.encoder` makes
(``tokenizer(texts, add_special_tokens=True, padding=False, truncation=..., max_length=...)``) with the ids
Hugging Face's fast tokenizer gives for that call: special tokens from the saved post-processor, no padding
(the ``padding`` block some ``tokenizer.json`` files carry is switched off), truncation at ``max_length``
from the side ``tokenizer_config.json`` names. The pad id comes from the tokenizer's pad token.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jtcse.errors import JtcseError

TOKENIZER_FILE = "tokenizer.json"
_CONFIG_FILE = "tokenizer_config.json"
_SPECIAL_FILE = "special_tokens_map.json"


def _read_json(file: Path) -> dict[str, Any]:
    if not file.is_file():
        return {}
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise JtcseError(f"{file}: cannot read ({exc})") from exc
    return data if isinstance(data, dict) else {}


def _token_text(value: Any) -> str | None:
    """A special token as ``tokenizer_config.json`` writes it: a string or ``{"content": ...}``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class FastTokenizer:
    """``tokenizer.json`` of ``directory`` behind the call signature of a Hugging Face tokenizer."""

    def __init__(self, directory: str | Path, model_input_names: Sequence[str]) -> None:
        from tokenizers import Tokenizer

        directory = Path(directory)
        file = directory / TOKENIZER_FILE
        try:
            self.backend_tokenizer = Tokenizer.from_file(str(file))
        except Exception as exc:  # the Rust library raises plain Exception for missing or bad files
            raise JtcseError(f"{file}: cannot load a fast tokenizer ({exc})") from exc
        self.backend_tokenizer.no_padding()
        self.backend_tokenizer.no_truncation()
        self._truncation: int | None = None
        config = _read_json(directory / _CONFIG_FILE)
        special = _read_json(directory / _SPECIAL_FILE)
        self.truncation_side = str(config.get("truncation_side", "right"))
        pad = _token_text(config.get("pad_token")) or _token_text(special.get("pad_token"))
        pad_id = self.backend_tokenizer.token_to_id(pad) if pad is not None else None
        self.pad_token_id: int | None = pad_id
        self.pad_token_type_id = 0
        self.model_input_names = list(model_input_names)

    def _truncate_at(self, limit: int | None) -> None:
        if limit == self._truncation:
            return
        if limit is None:
            self.backend_tokenizer.no_truncation()
        else:
            self.backend_tokenizer.enable_truncation(limit, direction=self.truncation_side)
        self._truncation = limit

    def __call__(
        self,
        texts: Sequence[str],
        *,
        add_special_tokens: bool = True,
        padding: bool = False,
        truncation: bool = False,
        max_length: int | None = None,
        return_attention_mask: bool = False,
        verbose: bool = False,
    ) -> dict[str, list[list[int]]]:
        """``input_ids`` (and ``token_type_ids`` when the model reads them) of every text, unpadded."""
        if padding or return_attention_mask:
            raise ValueError("FastTokenizer returns unpadded ids only (the encoder pads)")
        self._truncate_at(max_length if truncation else None)
        encoded = self.backend_tokenizer.encode_batch(list(texts), add_special_tokens=add_special_tokens)
        result = {"input_ids": [e.ids for e in encoded]}
        if "token_type_ids" in self.model_input_names:
            result["token_type_ids"] = [e.type_ids for e in encoded]
        return result
