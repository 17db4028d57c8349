"""No module of the package leads back to itself through its imports, and none imports inside a function.

Read from the source (``ast``), type-checking imports included: a cycle
that only ``if TYPE_CHECKING`` hides still ties the modules together for
a reader and for mypy.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

# Reads the package's source with ast: no site, no database.
pytestmark = pytest.mark.one_database

PACKAGE = Path(__file__).resolve().parent.parent / "flask_smtp_accounts"


def _name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_name(path): path for path in PACKAGE.rglob("*.py")}


@functools.cache  # each module parsed once in the run, not once per test that reaches it
def _imported(module: str) -> tuple[set[str], list[str]]:
    """The package's modules ``module`` imports anywhere, and the imports inside its functions."""
    path = MODULES[module]
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: set[str] = set()
    nested: list[str] = []
    tree = ast.parse(path.read_text(encoding="utf-8"))
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    inside = {id(n) for f in functions for n in ast.walk(f) if n is not f}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = ".".join(here[: len(here) - node.level + 1] + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        elif isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        else:
            continue
        targets = [t for t in targets if t in MODULES]
        found.update(targets)
        # Importing a module of another subpackage runs that subpackage's __init__ first.
        parents = {t.rsplit(".", 1)[0] for t in targets if t.count(".") > 1}
        found.update(p for p in parents if p in MODULES and not module.startswith(p + "."))
        if targets and id(node) in inside:
            nested.append(f"{module}:{node.lineno}")
    found.discard(module)
    return found, nested


def _reachable(start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for found in _imported(todo.pop())[0] - seen:
            seen.add(found)
            todo.append(found)
    return seen


#: Every module of the package: the imports run one way, typing imports included.
CHECKED = sorted(MODULES)


@pytest.mark.parametrize("module", CHECKED)
def test_no_import_of_the_module_leads_back_to_it(module: str) -> None:
    assert module not in _reachable(module)
    assert _imported(module)[1] == []


def test_the_oauth2_package_needs_nothing_of_the_models_or_the_validation() -> None:
    package = [m for m in MODULES if m.split(".")[:2] == ["flask_smtp_accounts", "oauth2"]]
    reached = set().union(*(_reachable(m) for m in package))
    assert sorted(reached - set(package)) == [
        "flask_smtp_accounts.check_result",
        "flask_smtp_accounts.crypto",
        "flask_smtp_accounts.deadlines",
        "flask_smtp_accounts.errors",
        "flask_smtp_accounts.texts",
    ]
