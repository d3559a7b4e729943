"""`jtcse diagnose`: per-layer attention mass on [CLS] and E_CLS, for a model, a tower or two side by side.

Writes a text table to stdout and ``diagnose.json`` + ``diagnose.png`` to ``--output-dir``. The metrics are
defined in :mod:`jtcse.analysis.attention_sink`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from jtcse.cli.options import positive_int, tokens_int
from jtcse.errors import JtcseError

DEFAULT_MAX_SENTENCES = 1000
JSON_NAME = "diagnose.json"
PLOT_NAME = "diagnose.png"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "diagnose",
        help="attention sinking: per-layer attention mass on [CLS] and E_CLS (CLS norm / mean token norm)",
        description=(
            "Per layer, the mean attention probability the tokens put on [CLS] (heads and non-padding query "
            "tokens averaged, [CLS] itself not counted as a query) and "
            "E_CLS = ||h_CLS|| / mean ||h_token|| over the other non-padding tokens (layer 0 = embedding "
            "output). Both are averaged over sentences. "
            "Prints a table and writes diagnose.json and diagnose.png to --output-dir."
        ),
    )
    parser.add_argument(
        "--model", required=True, help="short name (minilm), HF model dir, hub id or jtcse model dir"
    )
    parser.add_argument(
        "--corpus", required=True, help="text file, one sentence per line (blank lines skipped)"
    )
    parser.add_argument(
        "--max-sentences",
        type=positive_int,
        default=DEFAULT_MAX_SENTENCES,
        help=f"use the first N sentences (default {DEFAULT_MAX_SENTENCES})",
    )
    parser.add_argument(
        "--compare", metavar="M2", help="a second model (e.g. after training), shown side by side"
    )
    parser.add_argument(
        "--tower", choices=("a", "b", "both"), default="both", help="twin-tower models: which tower"
    )
    parser.add_argument("--output-dir", default="diagnose", help="where diagnose.json and diagnose.png go")
    parser.add_argument("--batch-size", type=positive_int, default=32)
    parser.add_argument(
        "--max-length", type=tokens_int, default=64, help="truncate to this many tokens (default 64)"
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda when available)")
    parser.add_argument(
        "--include-cls-query",
        action="store_true",
        help="count [CLS]'s attention to itself as a query token too",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.set_defaults(func=run)


def read_sentences(path: str | Path, max_sentences: int | None = None) -> list[str]:
    """The first ``max_sentences`` non-blank lines of a UTF-8 text file, stripped."""
    path = Path(path).expanduser()
    if max_sentences is not None and max_sentences < 1:
        raise JtcseError(f"--max-sentences {max_sentences}: must be >= 1")
    if path.is_dir():
        raise JtcseError(f"--corpus {path}: is a directory; expected a text file, one sentence per line")
    sentences: list[str] = []
    try:
        with path.open("rb") as fh:  # bytes, decoded line by line, so a bad byte is reported at its line
            for line_number, raw in enumerate(fh, start=1):
                try:
                    text = raw.decode("utf-8").strip()
                except UnicodeDecodeError as exc:
                    raise JtcseError(
                        f"--corpus {path}:{line_number}: not UTF-8 text ({exc.reason})"
                    ) from None
                if text:
                    sentences.append(text)
                    if max_sentences is not None and len(sentences) >= max_sentences:
                        break
    except FileNotFoundError:
        raise JtcseError(f"--corpus {path}: no such file") from None
    except OSError as exc:
        raise JtcseError(f"--corpus {path}: cannot read ({exc.strerror or exc})") from None
    if not sentences:
        raise JtcseError(f"--corpus {path}: no sentences (the file is empty or blank)")
    return sentences


def run(args: argparse.Namespace) -> int:
    from jtcse.analysis.attention_sink import DiagnoseReport, diagnose
    from jtcse.fs import atomic_write_text
    from jtcse.output_policy import check_output

    sentences = read_sentences(args.corpus, args.max_sentences)
    inputs = {"--corpus": args.corpus, "--model": args.model, "--compare": args.compare}
    check_output(args.output_dir, option="--output-dir", ours=(JSON_NAME, PLOT_NAME), inputs=inputs)
    common = dict(
        tower=args.tower,
        batch_size=args.batch_size,
        max_length=args.max_length,
        device=args.device,
        include_cls_query=args.include_cls_query,
        show_progress=True,
    )
    reports = [diagnose(args.model, sentences, **common)]
    if args.compare:
        reports.append(diagnose(args.compare, sentences, **common))
    report = DiagnoseReport.merge(reports)
    report.settings["corpus"] = str(Path(args.corpus).expanduser().resolve())

    print(report.format_table())
    out_dir = Path(args.output_dir).expanduser()
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / JSON_NAME
    atomic_write_text(json_path, json.dumps(report.to_json(), indent=2) + "\n")
    written = [json_path]
    if not args.no_plot:
        from jtcse.plotting import plot_attention_sink

        try:
            written.append(plot_attention_sink(report, out_dir / PLOT_NAME))
        except JtcseError as exc:  # matplotlib missing: the table and JSON still stand
            print(f"jtcse: note: no plot ({exc})", file=sys.stderr)
    seconds = sum(s.seconds for s in report.series)
    print(f"\n{len(sentences)} sentences, {seconds:.1f}s; wrote {', '.join(str(p) for p in written)}")
    return 0
