"""The package as users get it: one version source, the licence and citation files, every extra named in
the README, docs that name the packaged configs as they are. (The README's links, which must work as PyPI's
long description: tests/test_docs.py.)"""

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
    assert all(url.startswith("https://") for url in project["urls"].values())  # they show on PyPI


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
