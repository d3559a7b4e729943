"""The `jtcse` command.

Each sub-command lives in its own module under ``jtcse.cli`` and exposes two functions:
``add_parser(subparsers)`` (declares its flags) and ``run(args) -> int | None`` (does the work).
Modules are imported lazily so ``jtcse --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from jtcse import __version__
from jtcse.console import cli_output
from jtcse.errors import JtcseError, JtcseWarning
from jtcse.fs import is_disk_full

# sub-command name -> module under jtcse.cli
COMMANDS: dict[str, str] = {
    "demo": "jtcse.cli.demo",
    "eval": "jtcse.cli.eval",
    "train": "jtcse.cli.train",
    "distill": "jtcse.cli.distill",
    "data": "jtcse.cli.data",
    "diagnose": "jtcse.cli.diagnose",
    "encode": "jtcse.cli.encode",
    "similarity": "jtcse.cli.similarity",
    "search": "jtcse.cli.search",
    "index": "jtcse.cli.index",
    "export": "jtcse.cli.export",
    "plot": "jtcse.cli.plot",
    "ablate": "jtcse.cli.ablate",
    "sweep": "jtcse.cli.sweep",
    "reproduce": "jtcse.cli.reproduce",
    "serve": "jtcse.cli.serve",
    "ensemble": "jtcse.cli.ensemble",
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line; with ``only`` (a sub-command name) just that sub-command's module is imported
    (what ``main`` does when the command is named: others' imports would cost a one-shot command's start)."""
    parser = argparse.ArgumentParser(
        prog="jtcse",
        description="Train, evaluate and use JTCSE / TNCSE / SimCSE sentence embeddings.",
    )
    parser.add_argument("--version", action="version", version=f"jtcse {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="let transformers, datasets, mteb... print their progress bars, logs and warnings",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name, module_name in COMMANDS.items():
        if only is not None and name != only:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:  # a command whose module is not part of this build
            if exc.name == module_name:
                continue
            raise
        module.add_parser(subparsers)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """jtcse's own warnings as one line; others as Python prints them."""
    if issubclass(category, JtcseWarning):
        print(f"jtcse: warning: {' '.join(str(message).split())}", file=file or sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> None:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words[0] if words and words[0] in COMMANDS else None)
    args = parser.parse_args(words)
    previous, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        with cli_output(verbose=args.verbose, own_warning=JtcseWarning):
            code = args.func(args)
    except JtcseError as exc:
        print(f"jtcse: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("jtcse: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        # a writer that does not go through jtcse.fs (logs, third-party code): still one line, exit 2
        filename = getattr(exc, "filename", None)
        where = f"{filename}: " if filename else ""
        print(
            f"jtcse: error: {where}no space left on the device; free some space and run again",
            file=sys.stderr,
        )
        sys.exit(JtcseError.exit_code)
    finally:
        warnings.showwarning = previous
    sys.exit(code or 0)


if __name__ == "__main__":
    main()
