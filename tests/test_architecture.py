"""The layout stays easy to work in: short functions, and content/ keeps its private modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "cds_service"
MODULES = sorted(PACKAGE.rglob("*.py"))
LONGEST_FUNCTION = 80


def _relative(path: Path) -> str:
    return str(path.relative_to(PACKAGE))


def _long_functions(source: str) -> list[str]:
    return [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > LONGEST_FUNCTION
    ]


def imported_modules(source: str, package: str) -> list[str]:
    """Absolute names of the modules a module of ``package`` imports from."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = parts[: len(parts) - node.level + 1]
                found.append(".".join([*base, *([node.module] if node.module else [])]))
            elif node.module:
                found.append(node.module)
        elif isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
    return found


def _package_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts if path.name == "__init__.py" else parts[:-1]).removesuffix(".__init__")


@pytest.mark.parametrize("path", MODULES, ids=_relative)
def test_no_function_is_longer_than_80_lines(path: Path) -> None:
    assert not _long_functions(path.read_text(encoding="utf-8")), _relative(path)


@pytest.mark.parametrize(
    "path", [p for p in MODULES if "content" not in p.relative_to(PACKAGE).parts], ids=_relative
)
def test_no_module_outside_content_imports_its_private_modules(path: Path) -> None:
    imported = imported_modules(path.read_text(encoding="utf-8"), _package_of(path))
    private = [name for name in imported if name.startswith("cds_service.content._")]
    assert not private, f"{_relative(path)} imports {private}"


def test_the_checks_can_fail() -> None:
    assert imported_modules("from .content._schema import Topic\n", "cds_service") == [
        "cds_service.content._schema"
    ]
    assert imported_modules("from ..content._loader import x\n", "cds_service.rules") == [
        "cds_service.content._loader"
    ]
    body = "\n".join(f"    x = {i}" for i in range(LONGEST_FUNCTION))
    assert _long_functions(f"def too_long():\n{body}\n") == ["too_long (81 lines)"]
