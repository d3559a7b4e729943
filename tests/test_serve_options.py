"""The server's limits are declared once (``jtcse.serve.config.Limits``): the CLI flags, their defaults and
help, ``GET /info``'s fields and the limits table of the site's serve page (docs/serve.md) all come from that
one declaration."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from jtcse.cli import serve as cli_serve
from jtcse.serve.config import Limits, info_limits, limit_options, options_table

SERVE_PAGE = Path(__file__).resolve().parents[1] / "docs" / "serve.md"


def _parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """``jtcse``'s parser with only ``serve``, and the ``serve`` sub-parser."""
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    cli_serve.add_parser(subparsers)
    return parser, subparsers.choices["serve"]


def _parser() -> argparse.ArgumentParser:
    return _parsers()[0]


def test_the_docs_table_is_the_generated_one() -> None:
    text = SERVE_PAGE.read_text(encoding="utf-8")
    start, end = "<!-- serve-options: start -->\n", "\n<!-- serve-options: end -->"
    assert start in text and end in text
    table = text[text.index(start) + len(start) : text.index(end)]
    assert table == options_table(), "regenerate it: python -m jtcse.serve.config"


def test_every_limit_is_a_flag_with_its_declared_default_and_help() -> None:
    parser, serve_parser = _parsers()
    actions = {a.dest: a for a in serve_parser._actions}
    assert [o.name for o in limit_options()] == [f.name for f in fields(Limits)]
    for option in limit_options():
        action = actions[option.name]
        assert option.flag in action.option_strings and action.default == option.default
        assert option.help in (action.help or "")
    defaults = cli_serve.build_config(parser.parse_args(["serve"]))
    assert defaults.limits == Limits()


def test_flags_reach_the_config_and_info() -> None:
    argv = ["serve", "--max-queue", "300", "--batch-wait-ms", "7.5", "--no-truncate", "--drain-timeout", "2"]
    config = cli_serve.build_config(_parser().parse_args(argv))
    assert config.limits == Limits(max_queue=300, batch_wait_ms=7.5, truncate=False, drain_timeout_s=2.0)
    info = info_limits(config.limits)
    assert info["max_queue"] == 300 and info["truncate"] is False and info["batch_wait_ms"] == 7.5
    assert set(info) == {o.name for o in limit_options() if o.info} and "drain_timeout_s" not in info
