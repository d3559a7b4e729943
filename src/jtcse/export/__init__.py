"""Exporting jtcse models to other libraries' formats (so far: sentence-transformers)."""

from __future__ import annotations

from jtcse.export.sentence_transformers import (
    FORMAT_NAME,
    check_format,
    export_model,
    export_sentence_transformers,
)

FORMATS = (FORMAT_NAME,)

__all__ = ["FORMATS", "check_format", "export_model", "export_sentence_transformers"]
