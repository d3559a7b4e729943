"""Encode a text file (one sentence per line) and write the vectors as ``.npy`` or ``.safetensors``.

Row ``i`` of the output is line ``i + 1`` of the input, blank lines included (they encode as the empty
sentence), so that the rows can always be matched back to the file by position.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jtcse.errors import JtcseError
from jtcse.fs import atomic_write
from jtcse.protocols import SentenceEncoder
from jtcse.text_gate import decode_error

VECTOR_SUFFIXES = (".npy", ".safetensors")
SAFETENSORS_KEY = "embeddings"


# What the tools need from an encoder (``jtcse.Encoder`` or anything alike): the seam's protocol
SupportsEncode = SentenceEncoder


def read_lines(path: str | Path, *, what: str = "--input") -> list[str]:
    """All lines of a UTF-8 text file without their line endings; one-line errors for missing or bad files."""
    return decode_lines(read_text_bytes(path, what=what), path)


def read_text_bytes(path: str | Path, *, what: str = "--input") -> bytes:
    path = Path(path)
    if not path.exists():
        raise JtcseError(f"{what} {path}: no such file")
    if not path.is_file():
        raise JtcseError(f"{what} {path}: not a file")
    return path.read_bytes()


def decode_lines(data: bytes, path: str | Path) -> list[str]:
    """UTF-8 bytes to lines; a decoding error names the file and line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise decode_error(data, exc, path) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark is not part of the first sentence
    # Split on "\n" only (not str.splitlines, which also breaks on \x0b, \x1c, U+2028, ...) so that row i is
    # what `sed -n ip` shows.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def check_vector_suffix(path: str | Path, *, what: str = "--output") -> Path:
    path = Path(path)
    if path.suffix.lower() not in VECTOR_SUFFIXES:
        raise JtcseError(f"{what} {path}: unknown file type; use a name ending in .npy or .safetensors")
    return path


def save_vectors(path: str | Path, vectors: np.ndarray, *, metadata: dict[str, str] | None = None) -> Path:
    """Write ``vectors`` [n, dim] float32 to ``.npy`` or ``.safetensors`` (key ``embeddings``), atomically.

    ``metadata`` (string values) is stored in the safetensors header; ``.npy`` has no place for it.
    """
    path = check_vector_suffix(path)
    if not path.parent.is_dir():
        raise JtcseError(f"--output {path}: directory {path.parent} does not exist")
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if path.suffix.lower() == ".npy":
        atomic_write(path, lambda fh: np.save(fh, vectors))
    else:
        from safetensors.numpy import save

        data = save({SAFETENSORS_KEY: vectors}, metadata=metadata)
        atomic_write(path, lambda fh: fh.write(data))
    return path


def load_vectors(path: str | Path) -> np.ndarray:
    """Read vectors written by :func:`save_vectors`."""
    path = check_vector_suffix(path, what="vectors file")
    if not path.is_file():
        raise JtcseError(f"vectors file {path}: no such file")
    if path.suffix.lower() == ".npy":
        return np.load(path)
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    if SAFETENSORS_KEY not in tensors:
        raise JtcseError(
            f"{path}: no tensor named '{SAFETENSORS_KEY}' (found {', '.join(tensors) or 'none'})"
        )
    return tensors[SAFETENSORS_KEY]


def encode_file(
    encoder: SupportsEncode,
    input_path: str | Path,
    output_path: str | Path,
    *,
    batch_size: int | None = None,
    normalize: bool = False,
    show_progress: bool | None = None,
    metadata: dict[str, str] | None = None,
) -> np.ndarray:
    """Encode every line of ``input_path`` and write the matrix to ``output_path``; returns the matrix."""
    output_path = check_vector_suffix(output_path)
    sentences = read_lines(input_path)
    if not sentences:
        raise JtcseError(f"--input {input_path}: the file is empty")
    vectors = encoder.encode(
        sentences, batch_size=batch_size, normalize=normalize, show_progress=show_progress
    )
    header = {
        "source": str(input_path),
        "rows": str(len(sentences)),
        "normalized": str(bool(normalize)).lower(),
    }
    header.update(metadata or {})
    save_vectors(output_path, vectors, metadata=header)
    return vectors
