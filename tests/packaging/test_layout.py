"""The keeper package's shape (../STYLE.md, "Package shape"): a file holds one concern, a
function one step; and every package under keeper/ is one the wheel ships.

Every Python file under keeper/ stays within MAX_FILE_LINES lines and every function (methods
and nested functions included; from ``def`` to its last line, decorators not counted) within
MAX_FUNCTION_LINES. A failure lists each offender with its size, so the fix (split the file,
give the hidden helper a name) starts from the list.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "keeper"
MAX_FILE_LINES = 800
MAX_FUNCTION_LINES = 80


def _sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _where(path: Path) -> str:
    return path.relative_to(REPO).as_posix() if path.is_relative_to(REPO) else str(path)


def long_files(paths: list[Path], limit: int = MAX_FILE_LINES) -> list[str]:
    """`path: N lines` of each file over `limit` lines."""
    out = []
    for path in paths:
        lines = len(path.read_text().splitlines())
        if lines > limit:
            out.append(f"{_where(path)}: {lines} lines")
    return out


def long_functions(paths: list[Path], limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """`path:line name: N lines` of each function over `limit` lines, in file order."""
    found = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    found.append((path, node.lineno, node.name, lines))
    return [f"{_where(path)}:{line} {name}: {lines} lines" for path, line, name, lines in sorted(found)]


def test_keeper__no_file_over_800_lines() -> None:
    offenders = long_files(_sources())
    assert not offenders, f"files over {MAX_FILE_LINES} lines (split by concern):\n" + "\n".join(offenders)


def test_keeper__no_function_over_80_lines() -> None:
    offenders = long_functions(_sources())
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines (name their steps):\n" + "\n".join(
        offenders
    )


def test_long_functions__finds_a_long_method(tmp_path: Path) -> None:
    """The check itself: a method, a nested function and an async one are measured too."""
    source = tmp_path / "sample.py"
    source.write_text(
        textwrap.dedent(
            """\
            class A:
                def short(self):
                    pass

                def long(self):
                    x = 1
                    y = 2
                    return x + y


            async def outer():
                def inner():
                    x = 1
                    y = 2
                    return x + y

                return inner
            """
        )
    )
    found = long_functions([source], limit=3)
    assert [line.split(" ", 1)[1] for line in found] == ["long: 4 lines", "outer: 7 lines", "inner: 4 lines"]


def test_pyproject__lists_every_keeper_package() -> None:
    """pyproject.toml lists the packages (so that contracts/ can ship as keeper.contracts): a new
    directory of modules under keeper/ must be added there, or the wheel leaves it out."""
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in _sources()}
    assert found <= listed, f"keeper packages missing from pyproject.toml: {sorted(found - listed)}"
    assert "keeper.contracts" in listed
