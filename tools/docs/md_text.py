"""Text from docstrings and help strings made safe for a Markdown table cell."""

from __future__ import annotations

import re

_CODE = re.compile(r"(`+)(.+?)\1")
_ROLE = re.compile(r":(?:data|func|class|mod|meth|attr):(`[^`]+`)")


def _plain(text: str) -> str:
    # outside code: `<x>` would be an HTML tag and `a * b * c` emphasis
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("*", "\\*")


def cell(text: str) -> str:
    """One line, Sphinx roles as code, ``<`` and ``*`` escaped outside code spans, pipes escaped."""
    text = _ROLE.sub(r"\1", " ".join(text.split()))
    out, last = [], 0
    for match in _CODE.finditer(text):
        out += [_plain(text[last : match.start()]), f"`{match.group(2)}`"]
        last = match.end()
    out.append(_plain(text[last:]))
    return "".join(out).replace("|", "\\|")
