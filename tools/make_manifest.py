"""Rebuild ``src/jtcse/data/manifest.json`` from the shared data folder's ``SOURCES.md``.

Each row of the SOURCES.md file table names a file, its size, its sha256 and a pinned origin
``owner/repo@commit:path``; ``https://raw.githubusercontent.com/owner/repo/commit/path`` serves those bytes.
The manifest keeps what the evaluator reads (``sts/*/senteval/*``) plus the licence and readme files that
must travel with the data, and adds the unsupervised wiki1m corpus, whose checksum is not known.

Usage: python tools/make_manifest.py [SOURCES.md] [manifest.json]
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SOURCES = REPO_ROOT.parent / "shared" / "data" / "SOURCES.md"
DEFAULT_MANIFEST = REPO_ROOT / "src" / "jtcse" / "data" / "manifest.json"

ROW = re.compile(
    r"^\|\s*(?P<path>[^|]+?)\s*\|\s*(?P<size>\d+)\s*\|\s*`(?P<sha>[0-9a-f]{64})`\s*\|"
    r"\s*(?P<repo>[\w.-]+/[\w.-]+)@(?P<commit>[0-9a-f]{40}):(?P<src>[^|]+?)\s*\|\s*(?P<licence>[^|]*?)\s*\|$"
)
# Licence / readme / attribution files that belong next to the evaluation data.
LICENCE_FILE = re.compile(
    r"^sts/[^/]+/raw/(00-readme\.txt|readme\.txt|README\.txt|LICENSE\.txt|.*LICENSE|.*\.zip)$"
)

WIKI = {
    "path": "unsup/wiki1m_for_simcse.txt",
    "group": "wiki",
    "size": None,
    "sha256": None,
    "url": "https://huggingface.co/datasets/princeton-nlp/datasets-for-simcse/resolve/main/wiki1m_for_simcse.txt",
    "licence": "Wikipedia text, CC BY-SA (SimCSE wiki1m_for_simcse.txt); no pinned checksum: not verified",
}


def parse_sources(text: str) -> list[dict]:
    entries = []
    for line in text.splitlines():
        match = ROW.match(line.strip())
        if not match:
            continue
        path, src = match["path"], match["src"]
        if " -> " in src:  # a member of an archive: no direct URL serves it
            continue
        if not (path.startswith("sts/") and ("/senteval/" in path or LICENCE_FILE.match(path))):
            continue
        entries.append(
            {
                "path": path,
                "group": "sts",
                "size": int(match["size"]),
                "sha256": match["sha"],
                "url": f"https://raw.githubusercontent.com/{match['repo']}/{match['commit']}/{src}",
                "licence": match["licence"],
            }
        )
    return entries


def main(argv: list[str]) -> int:
    sources = Path(argv[0]) if argv else DEFAULT_SOURCES
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_MANIFEST
    entries = sorted(parse_sources(sources.read_text(encoding="utf-8")), key=lambda e: e["path"])
    if not entries:
        print(f"no file rows found in {sources}", file=sys.stderr)
        return 1
    manifest = {"manifest_version": 1, "files": [*entries, WIKI]}
    out.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out}: {len(entries)} STS files + wiki1m")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
