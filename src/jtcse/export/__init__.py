"""Exporting jtcse models to other formats: sentence-transformers directories and ONNX graphs."""

from __future__ import annotations

from jtcse.errors import JtcseError
from jtcse.export.sentence_transformers import FORMAT_NAME, export_model, export_sentence_transformers

ONNX_FORMAT = "onnx"
FORMATS = (FORMAT_NAME, ONNX_FORMAT)


def check_format(name: str) -> str:
    """The canonical name of an export format; a one-line error naming ``--format`` otherwise."""
    from jtcse.export.sentence_transformers import check_format as check_st_format

    if str(name).lower() == ONNX_FORMAT:
        return ONNX_FORMAT
    try:
        return check_st_format(name)
    except JtcseError:
        raise JtcseError(f"--format {name}: unknown export format; choose {' or '.join(FORMATS)}") from None


__all__ = ["FORMATS", "check_format", "export_model", "export_sentence_transformers"]
