"""The `jtcse` command.

Each sub-command lives in its own module under ``jtcse.cli`` and exposes two functions:
``add_parser(subparsers)`` (declares its flags) and ``run(args) -> int | None`` (does the work).
Modules are imported lazily so ``jtcse --help`` stays fast.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from jtcse import __version__
from jtcse.console import cli_output
from jtcse.errors import JtcseError, JtcseWarning
from jtcse.fs import is_disk_full
from jtcse.output_policy import checked_outputs

# what the user's file system, not jtcse, causes: one line when the path is the user's (user_path_error)
_USER_ERRNOS = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.EEXIST,
        errno.ENOTEMPTY,
        errno.EBUSY,
        errno.ENAMETOOLONG,
        errno.ELOOP,
        errno.EIO,
        errno.EXDEV,
        errno.ETXTBSY,
    }
)

# sub-command name -> module under jtcse.cli
COMMANDS: dict[str, str] = {
    "demo": "jtcse.cli.demo",
    "eval": "jtcse.cli.eval",
    "train": "jtcse.cli.train",
    "distill": "jtcse.cli.distill",
    "configs": "jtcse.cli.configs",
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


def _user_paths(args: argparse.Namespace) -> list[Path]:
    """Every path the user named: the command line's string values, and the outputs the commands checked
    (a config's output_dir too), absolute."""
    values: list[object] = []
    for value in vars(args).values():
        values.extend(value if isinstance(value, (list, tuple)) else [value])
    named = [Path(v) for v in values if isinstance(v, (str, Path)) and str(v).strip()]
    return [Path(os.path.abspath(p.expanduser())) for p in named] + checked_outputs()


def user_path_error(exc: BaseException, args: argparse.Namespace) -> str | None:
    """``PATH: reason`` for an OSError (or one it was raised from) on a path at or under one the user named
    (a read-only folder, a permission, a file where a folder should be); None for anything else, which
    is a bug and keeps its traceback. A full disk is not handled here (its line says how much is needed)."""
    if is_disk_full(exc):
        return None
    roots = _user_paths(args)
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _USER_ERRNOS:
            for name in (current.filename, current.filename2):
                if isinstance(name, (str, Path)) and _under(Path(os.path.abspath(name)), roots):
                    return f"{name}: {current.strerror or os.strerror(current.errno)}"
        current = current.__cause__ or current.__context__
    return None


def _under(path: Path, roots: list[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)


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
        line = user_path_error(exc, args)
        if line is not None:
            print(f"jtcse: error: {line}", file=sys.stderr)
            sys.exit(JtcseError.exit_code)
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
