"""``jtcse data``: fetch the STS data / training corpus, and show which data directory is used."""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("data", help="download the STS data and corpus; show the data directory")
    commands = parser.add_subparsers(dest="data_command", metavar="ACTION")
    commands.required = True

    download = commands.add_parser(
        "download", help="fetch and sha256-verify the data (STS files by default) into a data directory"
    )
    download.add_argument("--dest", help="target data directory (default: the per-user cache)")
    download.add_argument(
        "--what",
        choices=("sts", "wiki", "transfer", "all"),
        default="sts",
        help="sts: the 7 STS tasks (~6 MB, verified); wiki: the 1M-sentence corpus (unverified); "
        "transfer: SentEval's MR CR SUBJ MPQA SST2 TREC MRPC (~9 MB, verified); all",
    )
    download.add_argument(
        "--base-url",
        help="a mirror laid out like a data directory (http(s)://, file:// or a local path); "
        "default: $JTCSE_DATA_URL, else each file's pinned origin",
    )
    download.add_argument("--quiet", action="store_true", help="no progress bar")
    download.set_defaults(func=run_download)

    where = commands.add_parser("where", help="print the data directory that commands will use")
    where.add_argument("--data-dir", help="check this directory instead of the default lookup")
    where.add_argument(
        "--need", choices=("sts", "wiki", "transfer"), default="sts", help="what the directory must hold"
    )
    where.set_defaults(func=run_where)


def run_download(args: argparse.Namespace) -> int:
    from jtcse.data.download import download_data
    from jtcse.data.paths import user_cache_dir
    from jtcse.output_policy import check_output

    dest = args.dest or str(user_cache_dir())
    check_output(dest, option="--dest", ours=None)  # adds its own files (verified) to any folder
    fetched = download_data(dest, what=args.what, base_url=args.base_url, show_progress=not args.quiet)
    print(f"{dest}: {len(fetched)} file(s) fetched, the rest already present and verified")
    if args.what in ("wiki", "all") and fetched:
        print("note: wiki1m_for_simcse.txt has no published checksum; it was not verified", file=sys.stderr)
    return 0


def run_where(args: argparse.Namespace) -> int:
    from jtcse.data.paths import locate_data_dir

    path, how = locate_data_dir(args.data_dir, need=args.need, download=False)
    print(path)
    print(f"(chosen by: {how})", file=sys.stderr)
    return 0
