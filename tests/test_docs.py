"""The documentation: the README stays a landing page whose links work on PyPI, and the site's generated
references (tools/docs/) cover every command, option and config key. ``make docs`` builds the site itself
with ``mkdocs build --strict`` (broken links and anchors fail there); these checks need no mkdocs."""

from __future__ import annotations

import argparse
import re
import sys
import unicodedata
from pathlib import Path

import pytest
import yaml

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from jtcse.cli.main import build_parser
from jtcse.training.config.schema import key_types

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
README = REPO / "README.md"
MAX_README_LINES = 150
sys.path.insert(0, str(REPO / "tools" / "docs"))

import cli_reference  # noqa: E402  (tools/docs is not a package: it is what mkdocs.yml's hook imports)
import config_reference  # noqa: E402

# inline links and images, autolinks, reference definitions, HTML href/src
LINK = re.compile(
    r"\]\(([^)\s]+)[^)]*\)|<(https?://[^>]+)>|^\[[^\]]+\]:\s*(\S+)|(?:href|src)=\"([^\"]+)\"", re.M
)


def site_url() -> str:
    return yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))["site_url"]


def slug(heading: str) -> str:
    """Python-Markdown's toc slug of a heading (inline code keeps its text)."""
    text = unicodedata.normalize("NFKD", heading.replace("`", "")).encode("ascii", "ignore").decode()
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(markdown: str) -> set[str]:
    """The heading ids of a Markdown page (explicit ``{#id}`` or the toc slug), outside code blocks."""
    found: set[str] = set()
    in_code = False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (match := re.match(r"#{1,6} (.+)", line)):
            explicit = re.search(r"\{#([\w-]+)\}\s*$", match.group(1))
            found.add(explicit.group(1) if explicit else slug(match.group(1)))
    return found


# the pages tools/docs/hooks.py generates at build time, with their Markdown
GENERATED = {
    cli_reference.PAGE: lambda: cli_reference.render(build_parser()),
    config_reference.PAGE: config_reference.render,
}


def page_text(url: str) -> str:
    """The Markdown of the page behind a site URL (``use_directory_urls``: ``evaluate/`` is evaluate.md)."""
    path = url[len(site_url()) :].split("#", 1)[0].strip("/")
    candidates = [f"{path}.md", f"{path}/index.md"] if path else ["index.md"]
    for name in candidates:
        if name in GENERATED:
            return GENERATED[name]()
        if (DOCS / name).is_file():
            return (DOCS / name).read_text(encoding="utf-8")
    raise AssertionError(f"{url}: no page docs/{candidates[0]}")


def links(markdown: str) -> list[str]:
    return ["".join(groups) for groups in LINK.findall(markdown)]


def readme_links() -> list[str]:
    return links(README.read_text(encoding="utf-8"))


def test_the_readme_is_a_short_landing_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= MAX_README_LINES, f"README.md has {len(lines)} lines; move detail to docs/"
    assert lines[0] == "# jtcse"
    commands = [line.split("#")[0].strip() for line in lines if line.startswith("make ")]
    assert commands[:2] == ["make demo", "make test"], "the two commands come first"


def test_every_readme_link_is_absolute_or_in_page_and_reaches_a_page() -> None:
    """The README is PyPI's long description too: a relative link would break there."""
    links = readme_links()
    base = site_url()
    assert base.startswith("https://") and base.endswith("/")
    assert any(link.startswith(base) for link in links)
    own = anchors(README.read_text(encoding="utf-8"))
    for link in links:
        if link.startswith("#"):
            assert link[1:] in own, link
            continue
        assert link.startswith("https://"), f"{link}: README links must be absolute (https://...)"
        if not link.startswith(base):
            continue  # another site (arXiv)
        text = page_text(link)
        if "#" in link:
            assert link.split("#", 1)[1] in anchors(text), link


def test_the_documentation_url_is_the_site_url() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["urls"]["Documentation"] == site_url()


def test_every_docs_page_is_in_the_nav() -> None:
    """mkdocs only warns about a page missing from the nav; a page nobody can reach is a lost page."""
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages and {p for p in pages if f": {p}" not in nav} == set()


@pytest.fixture(scope="module")
def cli_page() -> str:
    return cli_reference.render(build_parser())


def test_the_cli_reference_has_every_command_and_option(cli_page: str) -> None:
    commands = list(cli_reference.walk(build_parser()))
    assert len(commands) > 20  # jtcse, its commands and the nested ones (eval sts, data download, ...)
    assert cli_page.count("\n```text\nusage: jtcse") == len(commands)
    for words, _, parser in commands:
        assert f"{{#{cli_reference.anchor(words)}}}" in cli_page, words
        for action in parser._actions:
            if action.help == argparse.SUPPRESS or isinstance(
                action, (argparse._SubParsersAction, argparse._HelpAction)
            ):
                continue
            invocation = parser._get_formatter()._format_action_invocation(action)
            assert f"`{invocation}`" in cli_page, (words, invocation)


def test_the_cli_reference_expands_defaults_into_help(cli_page: str) -> None:
    assert "%(default)" not in cli_page
    assert "| `--max-queue MAX_QUEUE` | `4096` |" in cli_page


def test_the_config_reference_has_every_key_with_its_meaning() -> None:
    page = config_reference.render()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([\w.]+)` \| [^|]* \| (.*) \|$", page, re.M)}
    assert set(rows) == set(key_types())
    undocumented = [key for key, meaning in rows.items() if meaning.startswith(("*Type:*", "*Values:*"))]
    assert undocumented == [], "give these keys a docstring in training/config/schema.py"
    assert '*Values:* `"cls"` \\| `"cls_before_pooler"`' in page  # a choice key lists its Literal's values
    assert "jtcse `1.3e-06`" in rows["train.lr"].split("*Method defaults:*")[1]  # METHOD_DEFAULTS


def test_attribute_docs_reads_the_string_under_each_field() -> None:
    from jtcse.training.config.schema import DataConfig

    docs = config_reference.attribute_docs(DataConfig)
    assert docs["dedup"].startswith("Drop repeated sentences")
    assert "\n" not in docs["dedup"] and docs["batching"].count("\n") >= 1  # cleandoc keeps its lines


def test_links_finds_every_kind() -> None:
    text = '[a](x.md) ![b](img.png "t") <https://e.example/p> <a href="h.md">h</a>\n[ref]: ../y.md\n'
    assert links(text) == ["x.md", "img.png", "https://e.example/p", "h.md", "../y.md"]


def test_table_cells_escape_markdown() -> None:
    from md_text import cell

    assert cell("a | b") == "a \\| b"
    assert cell("runs/<method> and 2 * n * k") == "runs/&lt;method> and 2 \\* n \\* k"
    assert cell("see :class:`x.Y` and ``a<b``") == "see `x.Y` and `a<b`"
