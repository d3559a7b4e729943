"""Count the parameters annotated ``Any`` and the functions returning ``Any`` under a folder (issue 20).

python tests/any_census.py src          # the two counts
python tests/any_census.py src --list   # and every one, as path:line function(parameter)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path


def _is_any(annotation: ast.expr | None) -> bool:
    return annotation is not None and ast.unparse(annotation) in ("Any", "typing.Any")


def census(root: Path) -> tuple[list[str], list[str]]:
    params, returns = [], []
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs, *(x for x in (a.vararg, a.kwarg) if x)]:
                if _is_any(arg.annotation):
                    params.append(f"{path}:{node.lineno} {node.name}({arg.arg})")
            if _is_any(node.returns):
                returns.append(f"{path}:{node.lineno} {node.name}")
    return params, returns


if __name__ == "__main__":
    found_params, found_returns = census(Path(sys.argv[1] if len(sys.argv) > 1 else "src"))
    print(f"{len(found_params)} parameters typed Any; {len(found_returns)} functions returning Any")
    if "--list" in sys.argv:
        print("\n".join(["parameters:", *found_params, "returns:", *found_returns]))
