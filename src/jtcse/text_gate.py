"""The one gate for text that enters jtcse from outside: command-line arguments, files, HTTP bodies.

Text must be well-formed Unicode that UTF-8 can carry: no lone surrogates (U+D800..U+DFFF). They reach a
Python ``str`` two ways: undecodable bytes on the command line (Python decodes ``argv`` with
``surrogateescape``: byte 0xff becomes U+DCFF) and ``\\ud800``-style escapes in JSON. Past this gate the
tokenizers' Rust side would refuse them with ``TypeError: TextEncodeInput must be ...`` (a traceback in the
CLI, a 500 from the server). Files are read as bytes and decoded strictly (:func:`decode_error` names the
line), which lets no surrogate through.

Callers name the input: an option (``--query``), an argument (``A``), a request field (``input[3]``) or a
``FILE:LINE``; the result is one line, ``WHERE: ...``.
"""

from __future__ import annotations

from collections.abc import Sequence

from jtcse.errors import JtcseError

# surrogateescape maps an undecodable byte 0xXY (0x80..0xff) to U+DCXY
_ESCAPED = range(0xDC80, 0xDD00)


def text_problem(text: str, *, argv: bool = False) -> str | None:
    """None when ``text`` is well-formed; else what is wrong, in a few words.

    ``argv``: the text came from the command line, where a lone surrogate in U+DC80..U+DCFF stands for an
    undecodable byte, so the message names the byte."""
    if text.isascii():  # the common case, without a copy
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        code = ord(text[exc.start])
        if argv and code in _ESCAPED:
            return f"byte 0x{code - 0xDC00:02x} at character {exc.start + 1} is not valid UTF-8"
        return f"lone surrogate U+{code:04X} at character {exc.start + 1} is not valid Unicode text"
    return None


def check_text(text: str, where: str, *, argv: bool = False) -> str:
    """``text`` itself, or a one-line :class:`JtcseError` ``WHERE: ...`` when it is not well-formed."""
    problem = text_problem(text, argv=argv)
    if problem is not None:
        raise JtcseError(f"{where}: {problem}; give UTF-8 text")
    return text


def first_bad(texts: Sequence[str]) -> tuple[int, str] | None:
    """The index of the first text that is not well-formed and what is wrong with it; None when all are."""
    try:
        "".join(texts).encode("utf-8")  # one pass over the batch in C; the loop only runs on a failure
        return None
    except UnicodeEncodeError:
        pass
    for i, text in enumerate(texts):
        problem = text_problem(text)
        if problem is not None:
            return i, problem
    return None  # unreachable: the join failed, so one text holds a surrogate


def decode_error(data: bytes, exc: UnicodeDecodeError, path: object, *, first_line: int = 1) -> JtcseError:
    """The one-line error of bytes read from ``path`` that are not UTF-8: ``PATH:LINE: ...``, the line counted
    from ``first_line`` (the number of the line ``data`` starts at)."""
    line = first_line + data[: exc.start].count(b"\n")
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return JtcseError(
        f"{path}:{line}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at byte {column} of the line)"
    )
