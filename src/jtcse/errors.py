"""User-facing errors.

Anything a user can cause (a bad path, a malformed file, an unknown option) raises :class:`JtcseError`
with a one-line message naming the file, line or option. The CLI prints it as ``jtcse: error: ...`` and
exits with status 2, without a traceback. Programming errors stay ordinary exceptions.
"""

from __future__ import annotations


class JtcseError(Exception):
    """A problem with the user's input, reported as one line (CLI exit code 2)."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Keep it to one line even when a caller formats a multi-line value into it.
        super().__init__(" ".join(str(message).split()))


def first_line(exc: BaseException) -> str:
    """The first line of ``exc``'s message (its type's name when the message is empty): what a one-line
    :class:`JtcseError` quotes of a library's failure."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class JtcseWarning(UserWarning):
    """Something the user should know that does not stop the run; the CLI prints it as one line
    (``jtcse: warning: ...``), without Python's file and source line."""
