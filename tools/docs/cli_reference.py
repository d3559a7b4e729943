"""The site's CLI reference, generated from the argparse parsers (``jtcse.cli.main.build_parser()``).

Every sub-command and nested sub-command gets a section with its usage line, its description and one table
per option group (flags, default, help), so a new command or option shows up at the next ``make docs``
without anyone editing a page. argparse keeps its actions in private attributes; this reads them the way
its own help formatter does.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator

from md_text import cell

PAGE = "reference/cli.md"  # where the site shows it (hooks.py)

# actions whose default says nothing to a reader: flags, help, version, counters
_NO_DEFAULT = (
    argparse._HelpAction,
    argparse._VersionAction,
    argparse._StoreTrueAction,
    argparse._StoreFalseAction,
    argparse._StoreConstAction,
    argparse._CountAction,
    argparse._SubParsersAction,
)


def walk(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = (), one_line: str = ""
) -> Iterator[tuple[tuple[str, ...], str, argparse.ArgumentParser]]:
    """``(words after "jtcse", one-line help, parser)`` for ``parser`` and every sub-parser below it."""
    yield words, one_line, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield from walk(sub, (*words, name), helps.get(name, ""))


def _code(text: str) -> str:
    return f"`{text}`" if text else ""


def _default(action: argparse.Action) -> str:
    if isinstance(action, _NO_DEFAULT) or action.default in (None, argparse.SUPPRESS) or action.required:
        return ""
    if isinstance(action.default, (list, tuple)):
        return _code(" ".join(str(v) for v in action.default)) if action.default else ""
    return _code(str(action.default))


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        listed = ", ".join(f"`{c}`" for c in action.choices)
        text = f"{text} (one of {listed})" if text else f"one of {listed}"
    return cell(text)


def _invocation(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    return _code(parser._get_formatter()._format_action_invocation(action))


def _group_tables(parser: argparse.ArgumentParser) -> list[str]:
    lines: list[str] = []
    for group in parser._action_groups:
        actions = [
            a
            for a in group._group_actions
            if a.help != argparse.SUPPRESS
            and not isinstance(a, (argparse._SubParsersAction, argparse._HelpAction))
        ]
        if not actions:
            continue
        lines += [f"**{group.title}**", "", "| option | default | what |", "|---|---|---|"]
        lines += [f"| {_invocation(parser, a)} | {_default(a)} | {_help(parser, a)} |" for a in actions]
        lines.append("")
    return lines


def _subcommand_list(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> list[str]:
    lines: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            lines += ["| sub-command | what |", "|---|---|"]
            for choice in action._choices_actions:
                lines.append(
                    f"| [`{choice.dest}`](#{anchor((*words, choice.dest))}) | {cell(choice.help or '')} |"
                )
            lines.append("")
    return lines


def anchor(words: tuple[str, ...]) -> str:
    """The heading id of a command's section (``jtcse eval sts`` -> ``jtcse-eval-sts``)."""
    return "-".join(("jtcse", *words))


def render(parser: argparse.ArgumentParser) -> str:
    """The whole reference page as Markdown (usage lines wrapped at 80 columns, whatever the terminal)."""
    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "80"
    try:
        return _render(parser)
    finally:
        if previous is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = previous


def _render(parser: argparse.ArgumentParser) -> str:
    out = [
        "# CLI reference",
        "",
        "Generated from the `jtcse` command's own parsers when the site is built (`make docs`), so it lists "
        "exactly the commands and options of this version; `jtcse COMMAND --help` prints the same.",
        "",
    ]
    for words, one_line, sub in walk(parser):
        title = " ".join(("jtcse", *words))
        level = "#" * (2 + max(len(words) - 1, 0))
        out += [f"{level} `{title}` {{#{anchor(words)}}}", ""]
        description = sub.description or one_line
        if description:
            out += [cell(description), ""]
        out += ["```text", sub.format_usage().strip(), "```", ""]
        out += _subcommand_list(sub, words)
        out += _group_tables(sub)
        if sub.epilog:  # the examples most commands print after their options
            out += ["```text", sub.epilog.strip("\n"), "```", ""]
    return "\n".join(out).rstrip() + "\n"
