"""The code's shape, checked from the source (ast): no function of 80 lines or more, no import cycle, no
module importing from a layer above its own. The layers, lowest first (docs/CONTRIBUTING.md shows them):

0 base        jtcse (the package root: ``__version__`` and lazy re-exports), errors, fs, integrity,
              benchmark, run_files, records
1 losses/data losses/, data/
2 model       model/
3 evaluation/inference
              evaluation/, analysis/ (readings of a model), encoder.py, engines.py, ensemble.py,
              model_card.py, export/, tools/, corpus_scale/ (everything that uses a saved model)
4 training    training/
5 pipeline    pipeline/ (runner, ablate, reproduce, the study), plotting.py (draws runs' outputs),
              serve/ (the HTTP server)
6 cli         cli/, __main__.py

Imports inside functions count (they are dependencies too); imports under ``if TYPE_CHECKING:`` do not. The
package root's lazy ``__getattr__`` imports are a facade, not dependencies: ``from jtcse import Encoder``
counts as an import of ``jtcse.encoder``.

Exemptions are listed below, each with its reason; keep the lists short and remove entries as code is fixed.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MAX_FUNCTION_LINES = 80  # a function must be shorter than this (decorators and docstring included)

LAYERS: dict[str, int] = {
    "jtcse.errors": 0,
    "jtcse.fs": 0,
    "jtcse.integrity": 0,
    "jtcse.benchmark": 0,
    "jtcse.run_files": 0,
    "jtcse.console": 0,
    "jtcse.protocols": 0,
    "jtcse.locks": 0,
    "jtcse.text_gate": 0,
    "jtcse.output_policy": 0,
    "jtcse.records": 0,
    "jtcse.configs": 0,
    "jtcse.launcher": 0,
    "jtcse.losses": 1,
    "jtcse.data": 1,
    "jtcse.model": 2,
    "jtcse.evaluation": 3,
    "jtcse.analysis": 3,
    "jtcse.encoder": 3,
    "jtcse.engines": 3,
    "jtcse.ensemble": 3,
    "jtcse.model_card": 3,
    "jtcse.export": 3,
    "jtcse.tools": 3,
    "jtcse.corpus_scale": 3,
    "jtcse.training": 4,
    "jtcse.pipeline": 5,
    "jtcse.serve": 5,
    "jtcse.plotting": 5,
    "jtcse.cli": 6,
    "jtcse.__main__": 6,
}
ROOT = "jtcse"  # layer 0; its own (lazy) imports are not edges

# Functions allowed to be long, as "path under src/jtcse::qualified name".
LONG_FUNCTIONS_ALLOWED: set[str] = set()
# Import edges (importer, imported) allowed although they break a rule.
EDGES_ALLOWED: set[tuple[str, str]] = set()


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def source_modules(src: Path) -> dict[str, Path]:
    return {module_name(p, src): p for p in sorted((src / ROOT).rglob("*.py"))}


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the import nodes under ``if TYPE_CHECKING:``."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return skipped


def _facade(modules: dict[str, Path]) -> dict[str, str]:
    """Names the package root re-exports lazily -> the module they come from."""
    tree = ast.parse(modules[ROOT].read_text(encoding="utf-8"))
    return {
        alias.asname or alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(f"{ROOT}.")
        for alias in node.names
    }


def import_edges(modules: dict[str, Path]) -> Iterator[Edge]:
    facade = _facade(modules) if ROOT in modules else {}
    for name, path in modules.items():
        if name == ROOT:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skipped = _type_checking_nodes(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                yield from (
                    Edge(name, a.name, node.lineno) for a in node.names if a.name.split(".")[0] == ROOT
                )
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([base] if base else [])])
                if base.split(".")[0] != ROOT:
                    continue
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in modules:
                        yield Edge(name, target, node.lineno)
                    elif base == ROOT and alias.name in facade:
                        yield Edge(name, facade[alias.name], node.lineno)
                    else:
                        yield Edge(name, base, node.lineno)


def layer_of(module: str) -> int | None:
    if module == ROOT:
        return 0
    matches = [prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def upward_imports(modules: dict[str, Path]) -> list[str]:
    problems = []
    for edge in import_edges(modules):
        if (edge.importer, edge.imported) in EDGES_ALLOWED:
            continue
        low, high = layer_of(edge.importer), layer_of(edge.imported)
        if low is not None and high is not None and high > low:
            problems.append(
                f"{edge.importer}:{edge.line} imports {edge.imported} (layer {high} above its own {low})"
            )
    return problems


def import_cycles(modules: dict[str, Path]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for edge in import_edges(modules):
        allowed = (edge.importer, edge.imported) in EDGES_ALLOWED
        if not allowed and edge.imported in graph and edge.imported != edge.importer:
            graph[edge.importer].add(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return cycles


def long_functions(src: Path) -> list[str]:
    found = []
    for path in sorted((src / ROOT).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for qualname, node in _functions(tree):
            first = min([d.lineno for d in node.decorator_list] + [node.lineno])
            length = (node.end_lineno or node.lineno) - first + 1
            key = f"{path.relative_to(src / ROOT).as_posix()}::{qualname}"
            if length >= MAX_FUNCTION_LINES and key not in LONG_FUNCTIONS_ALLOWED:
                found.append(f"{key}: {length} lines")
    return found


def _functions(tree: ast.AST, prefix: str = "") -> Iterator[tuple[str, ast.AST]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield f"{prefix}{node.name}", node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")
        else:
            yield from _functions(node, prefix)


# ---------------------------------------------------------------------------------------------- the rules
def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in source_modules(SRC) if layer_of(m) is None]
    assert unplaced == [], f"add these to LAYERS here and to docs/CONTRIBUTING.md: {unplaced}"


def test_no_function_of_80_lines_or_more() -> None:
    assert long_functions(SRC) == []


def test_no_import_from_a_higher_layer() -> None:
    assert upward_imports(source_modules(SRC)) == []


def test_no_import_cycle() -> None:
    assert import_cycles(source_modules(SRC)) == []


def test_exemptions_are_still_needed() -> None:
    """An allow-list entry whose problem is gone must be removed (the lists only shrink)."""
    modules = source_modules(SRC)
    edges = {(e.importer, e.imported) for e in import_edges(modules)}
    assert edges >= EDGES_ALLOWED
    for key in LONG_FUNCTIONS_ALLOWED:
        path, _, qualname = key.partition("::")
        tree = ast.parse((SRC / ROOT / path).read_text(encoding="utf-8"))
        lengths = [n.end_lineno - n.lineno + 1 for q, n in _functions(tree) if q == qualname]
        assert lengths and max(lengths) >= MAX_FUNCTION_LINES, f"{key} is short now: remove it from the list"


# ------------------------------------------------------------------------------------------ the checks fail
@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    """A small package with one of each problem: a long function, an upward import and a cycle."""
    pkg = tmp_path / ROOT
    (pkg / "model").mkdir(parents=True)
    (pkg / "cli").mkdir()
    (pkg / "__init__.py").write_text("def __getattr__(name):\n    from jtcse.cli.main import run\n")
    (pkg / "model" / "__init__.py").write_text("")
    (pkg / "cli" / "__init__.py").write_text("")
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    (pkg / "model" / "a.py").write_text(f"from jtcse.model import b\n\n\ndef long():\n{body}\n")
    (pkg / "model" / "b.py").write_text(
        "def f():\n    from jtcse.model.a import long\n    from jtcse import run\n"
    )
    (pkg / "cli" / "main.py").write_text("def run():\n    pass\n")
    return tmp_path


def test_the_checks_find_each_problem(bad_tree: Path) -> None:
    modules = source_modules(bad_tree)
    assert long_functions(bad_tree) == [f"model/a.py::long: {MAX_FUNCTION_LINES + 1} lines"]
    assert import_cycles(modules) == [["jtcse.model.a", "jtcse.model.b"]]
    # model.b reaches cli.main through the root facade: an upward import
    assert upward_imports(modules) == ["jtcse.model.b:3 imports jtcse.cli.main (layer 6 above its own 2)"]


# ----------------------------------------------------------------------------------------- the map stays true
def test_every_path_in_the_contributing_map_exists() -> None:
    repo = SRC.parent
    text = (repo / "docs" / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text.split("## Where to change what", 1)[1].split("\n## ", 1)[0]
    paths = [p for p in re.findall(r"`([^`]+)`", section) if "<" not in p and ("/" in p or p.endswith(".py"))]
    assert len(paths) > 20
    package_files = {p.name for p in (SRC / ROOT).rglob("*.py")}
    missing = [p for p in paths if not ((repo / p).exists() if "/" in p else p in package_files)]
    assert missing == []


# ------------------------------------------------------------------------------------------ file size
MAX_FILE_LINES = 400  # a source file longer than this holds more than one concept: split it
# Files allowed to be longer, "path under src/jtcse" -> why; the list only shrinks.
LONG_FILES_ALLOWED: dict[str, str] = {
    # issue 19 (zero-shot) is extending it in parallel: split once that has landed
    "evaluation/mteb.py": "being extended",
    # one concept (the public Encoder and its batch plan); issue 21 is restructuring its imports
    "encoder.py": "one concept",
}


def long_files(src: Path) -> list[str]:
    found = []
    for path in sorted((src / ROOT).rglob("*.py")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        key = path.relative_to(src / ROOT).as_posix()
        if lines > MAX_FILE_LINES and key not in LONG_FILES_ALLOWED:
            found.append(f"{key}: {lines} lines")
    return found


def test_no_source_file_over_400_lines() -> None:
    assert long_files(SRC) == []


def test_long_file_exemptions_are_still_needed() -> None:
    for key in LONG_FILES_ALLOWED:
        path = SRC / ROOT / key
        assert path.exists(), f"{key} is gone: remove it from LONG_FILES_ALLOWED"
        lines = len(path.read_text(encoding="utf-8").splitlines())
        assert lines > MAX_FILE_LINES, f"{key} is short now: remove it from LONG_FILES_ALLOWED"


def test_the_file_size_check_finds_a_long_file(tmp_path: Path) -> None:
    pkg = tmp_path / ROOT
    pkg.mkdir()
    (pkg / "short.py").write_text("x = 1\n" * MAX_FILE_LINES)
    (pkg / "long.py").write_text("x = 1\n" * (MAX_FILE_LINES + 1))
    assert long_files(tmp_path) == [f"long.py: {MAX_FILE_LINES + 1} lines"]


# ------------------------------------------------------------------------------------------ type checker
def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    """mypy as `make lint` runs it (pyproject.toml's [tool.mypy]), on the given files."""
    repo = SRC.parent
    command = [sys.executable, "-m", "mypy", "--config-file", str(repo / "pyproject.toml"), *args]
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=600)


def test_the_type_checker_fails_on_a_type_error(tmp_path: Path) -> None:
    """A scratch copy of a small source module passes mypy; the same copy with one wrong type fails."""
    pytest.importorskip("mypy")
    source = (SRC / ROOT / "losses" / "info_nce.py").read_text(encoding="utf-8")
    good, bad = tmp_path / "good_module.py", tmp_path / "bad_module.py"
    good.write_text(source, encoding="utf-8")
    bad.write_text(source + "\n\ndef broken() -> int:\n    return 'not an int'\n", encoding="utf-8")
    passed = _mypy(str(good))
    assert passed.returncode == 0, passed.stdout + passed.stderr
    failed = _mypy(str(bad))
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "bad_module.py:" in failed.stdout and "[return-value]" in failed.stdout
