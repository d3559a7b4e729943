"""``jtcse configs list | show NAME | copy NAME DEST [--overwrite]``: the training configs that ship
inside the package (jtcse.configs), which ``jtcse train/distill/ablate`` take by name and ``jtcse
reproduce`` reads."""

from __future__ import annotations

import argparse
from pathlib import Path

from jtcse.errors import JtcseError

EPILOG = """\
examples:
  jtcse configs list
  jtcse configs show simcse-minilm
  jtcse configs copy simcse-minilm my_simcse.toml      (edit it, then: jtcse train my_simcse.toml)
  jtcse train simcse-minilm --set seed=7               (a name works wherever a config path does)
"""


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "configs",
        help="list, show or copy the packaged paper and example training configs",
        description="The paper and example training configs shipped with jtcse, by name.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="configs_command", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", help="the packaged configs' names and what each trains")
    listing.set_defaults(func=run_list)
    show = actions.add_parser("show", help="print a packaged config")
    show.add_argument("name", help="a name from `jtcse configs list`, e.g. simcse-minilm")
    show.set_defaults(func=run_show)
    copy = actions.add_parser("copy", help="copy a packaged config to a file or folder, to edit it")
    copy.add_argument("name", help="a name from `jtcse configs list`, e.g. simcse-minilm")
    copy.add_argument("dest", type=Path, help="the new file, or an existing folder to copy it into")
    copy.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    copy.set_defaults(func=run_copy)


def run_list(args: argparse.Namespace) -> int:
    from jtcse.configs import names, require, summary

    all_names = names()
    width = max(len(name) for name in all_names)
    for name in all_names:
        print(f"{name:<{width}}  {summary(require(name))}")
    return 0


def run_show(args: argparse.Namespace) -> int:
    from jtcse.configs import require

    print(require(args.name).read_text(encoding="utf-8"), end="")
    return 0


def run_copy(args: argparse.Namespace) -> int:
    from jtcse.configs import require
    from jtcse.fs import atomic_write_text

    source = require(args.name)
    dest: Path = args.dest / source.name if args.dest.is_dir() else args.dest
    if dest.is_dir():
        raise JtcseError(f"{dest}: is a folder")
    if dest.exists() and not args.overwrite:
        raise JtcseError(f"{dest}: already exists; pass --overwrite to replace it")
    if not dest.parent.is_dir():
        raise JtcseError(f"{dest}: no such folder {dest.parent}")
    atomic_write_text(dest, source.read_text(encoding="utf-8"))
    print(dest)
    return 0
