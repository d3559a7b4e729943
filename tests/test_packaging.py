"""The package as users get it: one version source, the licence and citation files, a README that works
as PyPI's long description (no relative links), every extra named in the README, docs that name the
packaged configs as they are."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import jtcse

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
README = (REPO / "README.md").read_text(encoding="utf-8")

# Link targets in Markdown: [text](target "title"), ![alt](target), [ref]: target; and HTML src= / href=.
INLINE_LINK = re.compile(r"\]\(\s*<?([^)\s>]+)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
HTML_LINK = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)


def link_targets(markdown: str) -> list[str]:
    text = FENCE.sub("", markdown)  # code blocks hold commands, not links
    return [m for pattern in (INLINE_LINK, REFERENCE_LINK, HTML_LINK) for m in pattern.findall(text)]


def broken_on_pypi(markdown: str) -> list[str]:
    """The README is PyPI's long description, read away from the repository: a link works there only if
    it is absolute (https://...) or an anchor of the page itself."""
    return [t for t in link_targets(markdown) if not (t.startswith("https://") or t.startswith("#"))]


def test_readme_links_work_outside_the_repository() -> None:
    assert broken_on_pypi(README) == [], "make these absolute (the docs site) or in-page anchors"


def test_the_link_rule_finds_each_kind_of_relative_link() -> None:
    sample = (
        "[a](docs/x.md) ![b](img.png) [c](https://ok.example/x) [d](#here) [e](http://plain.example)\n"
        '<img src="pic.png"> <a href="https://ok.example">x</a>\n[ref]: ../y.md\n'
        "```bash\njtcse train [x](not-a-link)\n```\n"
    )
    assert sorted(broken_on_pypi(sample)) == sorted(
        ["docs/x.md", "img.png", "http://plain.example", "pic.png", "../y.md"]
    )


def test_the_version_has_one_source() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    assert PYPROJECT["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "jtcse.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", jtcse.__version__)
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["version"] == jtcse.__version__
    released = re.findall(r"^## \[(\d[^\]]*)\]", (REPO / "CHANGELOG.md").read_text(encoding="utf-8"), re.M)
    assert released and released[0] == jtcse.__version__, "CHANGELOG.md's newest release"


def test_import_jtcse_stays_light() -> None:
    code = "import sys, jtcse; print(jtcse.__version__, 'torch' in sys.modules, 'numpy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == [jtcse.__version__, "False", "False"]


def test_licence_is_an_spdx_expression_with_its_file() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    assert all(url.startswith("https://") for url in project["urls"].values())


def test_citation_cff_has_the_required_keys() -> None:
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert {"message", "title", "authors", "license", "preferred-citation", "references"} <= set(citation)
    paper = citation["preferred-citation"]
    assert paper["title"].startswith("JTCSE:") and "2505.02366" in paper["url"]
    assert all({"type", "title", "authors"} <= set(ref) for ref in [paper, *citation["references"]])
    titles = " ".join(ref["title"] for ref in citation["references"])
    assert "SimCSE" in titles and "TNCSE" in titles
    for ref in [paper, *citation["references"]]:
        assert all("family-names" in a and "given-names" in a for a in ref["authors"]), ref["title"]


def test_every_extra_is_named_in_the_readme() -> None:
    assert "\n## Install" in README, "the README's Install section lists the extras"
    install = README[README.index("\n## Install") + 1 :]
    listed = install.split("\n## ", 1)[0]
    extras = PYPROJECT["project"]["optional-dependencies"]
    missing = [extra for extra in extras if not re.search(rf"\b{re.escape(extra)}\b", listed)]
    assert missing == [], "add these extras to the README's Install section"


def docs_pages() -> list[Path]:
    return [REPO / "README.md", REPO / "experiments" / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


@pytest.mark.parametrize("page", docs_pages(), ids=lambda p: str(p.relative_to(REPO)))
def test_docs_name_packaged_configs_by_name(page: Path) -> None:
    """configs/ moved into the package: a command with a configs/x.toml path fails (with a hint)."""
    stale = re.findall(r"jtcse \w+ configs/\S+", page.read_text(encoding="utf-8"))
    assert stale == [], "use the config's name (jtcse configs list), e.g. jtcse train simcse-minilm"
