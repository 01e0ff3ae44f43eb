"""No module in the code above 400 lines, no function above 60 (issue 12).

A module that long holds more than one concern, a function that long more than one step: split
it by concern, or into named parts. Measured with `ast`: a module's length is its line count; a
function's (def or async def, methods included) runs from its `def` line to its last line, and a
nested function counts by its own length (it is in its enclosing function's too).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED_DIRS = ("services", "sandbox", "steps", "bench")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> Iterator[Path]:
    for folder in CHECKED_DIRS:
        yield from sorted((ROOT / folder).rglob("*.py"))


def function_lengths(path: Path) -> Iterator[tuple[str, int, int]]:
    """(qualified name, def line, length in lines) of every function in the module."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = f"{prefix}{child.name}"
                yield name, child.lineno, (child.end_lineno or child.lineno) - child.lineno + 1
                yield from walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(ast.parse(path.read_text(), filename=str(path)), "")


def test_the_checked_folders_hold_code() -> None:
    for folder in CHECKED_DIRS:
        assert any((ROOT / folder).rglob("*.py")), folder


def test_no_module_above_the_limit() -> None:
    too_long = [
        f"{path.relative_to(ROOT)}: {n} lines"
        for path in modules()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    assert not too_long, f"modules above {MAX_MODULE_LINES} lines (split by concern): {too_long}"


def test_no_function_above_the_limit() -> None:
    too_long = [
        f"{path.relative_to(ROOT)}:{line} {name}: {n} lines"
        for path in modules()
        for name, line, n in function_lengths(path)
        if n > MAX_FUNCTION_LINES
    ]
    assert not too_long, f"functions above {MAX_FUNCTION_LINES} lines (split into named parts): {too_long}"
