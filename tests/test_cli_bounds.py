"""Every numeric option of every command is bounded where argparse parses it: out of range is argparse's
one line naming the option (exit 2), before any work."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from jtcse.cli.main import build_parser, main


def _parsers(
    parser: argparse.ArgumentParser, path: str = "jtcse"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:  # argparse has no public way to walk sub-commands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_no_numeric_option_is_unbounded() -> None:
    """A bare ``type=int`` / ``type=float`` accepts 0, -5, inf and nan; every one goes through
    ``jtcse.cli.options.int_range`` / ``float_range`` (or another checking type) instead."""
    unbounded = [
        f"{path} {action.option_strings[0] if action.option_strings else action.dest}"
        for path, parser in _parsers(build_parser())
        for action in parser._actions
        if action.type in (int, float)
    ]
    assert unbounded == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["encode", "--input", "a", "--output", "b", "--batch-size", "0"],
            "argument --batch-size: expected an",
        ),
        (
            ["encode", "--input", "a", "--output", "b", "--max-length", "-3"],
            "argument --max-length: expected",
        ),
        (["encode", "--input", "a", "--output", "b", "--threads", "100000"], "argument --threads: expected"),
        (
            ["encode", "--input", "a", "--output", "b", "--shard-size", "1e9"],
            "argument --shard-size: expected",
        ),
        (["index", "--vectors", "v", "--nlist", "0"], "argument --nlist: expected an integer from 1 to"),
        (
            ["index", "--vectors", "v", "--pq-bits", "40"],
            "argument --pq-bits: expected a bit count from 1 to 16",
        ),
        (
            ["index", "--vectors", "v", "--m", "1"],
            "argument --m: expected a link count from 2 to 1024, got 1",
        ),
        (["search", "--query", "q", "--top-k", "0"], "argument --top-k: expected an integer from 1 to"),
        (["search", "--query", "q", "--rerank", "-1"], "argument --rerank: expected 0 (off) or a count"),
        (["serve", "--port", "70000"], "argument --port: expected a port from 0 to 65535, got 70000"),
        (["serve", "--batch-wait-ms", "nan"], "argument --batch-wait-ms: expected a number in [0, "),
        (["serve", "--max-queue", "0"], "argument --max-queue: expected an integer from 1 to"),
        (["demo", "--batch-size", "1"], "argument --batch-size: expected a batch size"),
        (["demo", "--lr-simcse", "inf"], "argument --lr-simcse: expected a number in (0, 1], got inf"),
        (["demo", "--num-ca-layers", "-1"], "argument --num-ca-layers: expected a layer count from 0"),
        (["eval", "transfer", "--seed", "-1"], "argument --seed: expected a seed from 0 to 4294967295"),
        (["eval", "zero-shot", "--batch-size", "0"], "argument --batch-size: expected an integer"),
        (["diagnose", "--corpus", "c", "--max-sentences", "0"], "argument --max-sentences: expected an"),
        (["reproduce", "simcse-bert", "--max-steps", "0"], "argument --max-steps: expected an integer"),
        (["ablate", "c.yaml", "--eval-batch-size", "0"], "argument --eval-batch-size: expected an integer"),
        (
            ["export", "--model", "m", "o", "--max-length", "0"],
            "argument --max-length: expected a token count",
        ),
    ],
    ids=lambda value: value[0] if isinstance(value, list) else None,
)
def test_out_of_range_is_argparses_one_line(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]  # argparse prints the usage, then one error line
    assert last.startswith(f"jtcse {argv[0]}") and message in last, err
