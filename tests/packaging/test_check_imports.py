"""scripts/check_imports.py (run by `make lint`): it finds the cycles lazy imports hide, and
keeper/ has none."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.check_imports import ROOT, import_graph, main, strongly_connected


def _package(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return package


def test_check_imports__lazy_cycle__listed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "cli.py": "from pkg.people import commands\n",
            "people/__init__.py": "",
            "people/commands.py": "def run():\n    from pkg.cli import main  # lazily: still a cycle\n",
        },
    )
    assert strongly_connected(import_graph(package)) == [["pkg.cli", "pkg.people.commands"]]
    assert main([str(package)]) == 1
    out = capsys.readouterr().out
    assert "import cycle: pkg.cli -> pkg.people.commands -> pkg.cli" in out
    assert "pkg/people/commands.py:2 imports pkg.cli" in out


def test_check_imports__relative_and_type_checking_imports(tmp_path: Path) -> None:
    """`from . import x` resolves to the submodule; an `if TYPE_CHECKING:` import never runs."""
    package = _package(
        tmp_path,
        {
            "__init__.py": "",
            "low.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.high import H\n",
            "high.py": "from . import low\n",
        },
    )
    graph = import_graph(package)
    assert graph["pkg.high"] == {"pkg.low": 1}
    assert graph["pkg.low"] == {}
    assert main([str(package)]) == 0


def test_keeper__no_import_cycle() -> None:
    assert strongly_connected(import_graph(ROOT / "keeper")) == []
