"""mkdocs hooks (mkdocs.yml ``hooks:``): the pages that are generated when the site is built.

* ``reference/cli.md`` from ``jtcse.cli.main.build_parser()`` (:mod:`cli_reference`);
* ``reference/config.md`` from the config schema (:mod:`config_reference`);
* ``study/``: ``experiments/README.md`` and its committed results, where they live in the repository.

Nothing generated is committed, so no page can fall behind the code.
"""

from __future__ import annotations

import re
from pathlib import Path

import cli_reference
import config_reference
from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = REPO / "experiments"
# the study's committed files that the site shows or links to (its Python scripts and caches stay out)
STUDY_SUFFIXES = {".md", ".png", ".json", ".csv", ".toml"}


def generated_pages() -> dict[str, str]:
    """``{site path: Markdown}`` of the generated reference pages."""
    from jtcse.cli.main import build_parser

    return {
        cli_reference.PAGE: cli_reference.render(build_parser()),
        config_reference.PAGE: config_reference.render(),
    }


def study_files() -> dict[str, Path]:
    """``{site path: file}`` for experiments/: README.md becomes study/index.md, the rest keep their paths
    (results/, and files beside the README such as a sweep space) so the README's relative links work."""
    out = {"study/index.md": EXPERIMENTS / "README.md"}
    for path in sorted(EXPERIMENTS.rglob("*")):
        if path.is_file() and path.suffix in STUDY_SUFFIXES and path != EXPERIMENTS / "README.md":
            out[f"study/{path.relative_to(EXPERIMENTS).as_posix()}"] = path
    return out


# Sphinx roles in docstrings (:class:`x`) reach the HTML as ":class:<code>x</code>": keep the code
_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|obj|exc):(?=<code>)")


# an RST literal block's "text::" ends its paragraph with a single colon in Markdown
_LITERAL = re.compile(r"::</p>")


def on_page_content(html: str, **kwargs: object) -> str:
    return _LITERAL.sub(":</p>", _ROLE.sub("", html))


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for uri, text in generated_pages().items():
        files.append(File.generated(config, uri, content=text))
    for uri, path in study_files().items():
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files
