"""The site's config reference, generated from the config schema (``jtcse/training/config/schema.py``).

Every key of every section with its type (a choice key lists its values, read from its ``Literal`` type),
its schema default, the method defaults that replace it (``METHOD_DEFAULTS``) and its meaning: the
attribute docstring under the field in ``schema.py``. Python keeps no attribute docstrings at run time, so
they are read from the source with ``ast``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import itertools
import typing
from typing import Any

from md_text import cell

from jtcse.training.config import METHOD_DEFAULTS, Config
from jtcse.training.config import schema as schema_module
from jtcse.training.config.schema import choices, schema_fields

PAGE = "reference/config.md"  # where the site shows it (hooks.py)


def attribute_docs(cls: type) -> dict[str, str]:
    """``{field: the docstring written under it}`` for a dataclass in ``schema.py``."""
    node = ast.parse(inspect.getsource(cls)).body[0]
    assert isinstance(node, ast.ClassDef), cls
    body = node.body
    docs: dict[str, str] = {}
    for field_node, after in itertools.pairwise(body):
        if (
            isinstance(field_node, ast.AnnAssign)
            and isinstance(field_node.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[field_node.target.id] = inspect.cleandoc(after.value.value)
    return docs


def type_text(tp: Any) -> str:
    """A key's type for a reader: ``float``, ``int or none``, ``"end" | "start"``."""
    values = choices(tp)
    if values is not None:
        return " \\| ".join(f'`"{v}"`' for v in values)
    args = typing.get_args(tp)
    if args and type(None) in args:
        return " or ".join(type_text(a) for a in args if a is not type(None)) + " or none"
    return getattr(tp, "__name__", str(tp))


def _value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def _method_defaults(key: str) -> str:
    found = [f"{method} {_value(values[key])}" for method, values in METHOD_DEFAULTS.items() if key in values]
    return f" *Method defaults:* {', '.join(found)}." if found else ""


def _meaning(key: str, tp: Any, doc: str) -> str:
    """The meaning, then the type (a choice key: its values) and the method defaults."""
    kind = "Values" if choices(tp) is not None else "Type"
    text = cell(doc) + (" " if doc else "")
    return f"{text}*{kind}:* {type_text(tp)}.{_method_defaults(key)}"


def _table(prefix: str, cls: type) -> list[str]:
    hints = typing.get_type_hints(cls, vars(schema_module))
    docs = attribute_docs(cls)
    instance = cls()
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for f in schema_fields(cls):
        if dataclasses.is_dataclass(hints[f.name]):
            continue  # a section: its own table
        key = f"{prefix}{f.name}"
        meaning = _meaning(key, hints[f.name], docs.get(f.name, ""))
        lines.append(f"| `{key}` | {_value(getattr(instance, f.name))} | {meaning} |")
    return [*lines, ""]


INTRO = """\
# Config reference

A training config is a TOML or YAML file with a few top-level keys and six sections; `--set key=value`
overrides any key (`--set train.lr=2e-5`, `--set model.dropout=none`). A key you leave out takes its
**method default** when the method has one ("method defaults" below: SimCSE's for `simcse`, the
official JTCSE code's for `jtcse`, TNCSE's for `tncse`, CACSE's recipe for `distill`), else the schema
default. An unknown key, a value of the wrong type or a choice outside its list is a one-line error naming
the key. The run directory's `train_config.yaml` holds every key as resolved, and
`jtcse train OUT/train_config.yaml` reruns it.

Generated from `src/jtcse/training/config/schema.py` when the site is built, so it always matches the code.
"""


def render() -> str:
    """The whole reference page as Markdown."""
    hints = typing.get_type_hints(Config, vars(schema_module))
    out = [INTRO, "## Top-level keys", "", *_table("", Config)]
    for f in schema_fields(Config):
        section = hints[f.name]
        if not dataclasses.is_dataclass(section):
            continue
        out += [f"## `[{f.name}]`", ""]
        if section.__doc__ and not section.__doc__.startswith(section.__name__ + "("):
            out += [cell(inspect.cleandoc(section.__doc__)), ""]
        out += _table(f"{f.name}.", section)
    return "\n".join(out).rstrip() + "\n"
