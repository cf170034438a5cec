"""The package as a newcomer installs it: `pip install vyperp`, no extras.

The distribution is built from a copy of the sources in a temporary directory (the checkout
gets no build/ or *.egg-info) and installed with its runtime dependencies only into a fresh
virtualenv; the CLI must then answer `--help` without the extras (titanoboa, ape, matplotlib,
pytest, hypothesis, Jinja2). Needs a package index (PyPI or the configured one); pip's cache
makes a repeated run fast. Without an index the test fails and says so.

The contracts' sources ship in the wheel (keeper/contracts/, pyproject.toml's package-dir), so
the installed keeper compiles its ABIs and bytecode on first use, into the user's cache (here
a temporary XDG_CACHE_HOME), never into site-packages.

A second, fast check in this venv (where the extras are installed): the CLI's `--help` paths
import none of them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# import names of what the extras bring (dev, sim, ape): never needed by the CLI's help
EXTRAS_MODULES = ("boa", "ape", "matplotlib", "pytest", "hypothesis", "jinja2")
HELP_COMMANDS = (
    ["--help"],
    ["run", "--help"],
    ["status", "--help"],
    ["trade", "--help"],
    ["audit", "--help"],
    ["scenario", "--help"],
)
PIP = ["-m", "pip", "--disable-pip-version-check", "--retries", "2", "--timeout", "30"]

# argv from the command line: the CLI's `--help` with the extras' modules recorded
_CHECK_IMPORTS = f"""
import json, sys
from keeper.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {EXTRAS_MODULES!r} if m in sys.modules)))
"""


def _clean_env() -> dict[str, str]:
    """The environment minus what would point a subprocess back at this venv or checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.pop("PYTEST_ADDOPTS", None)
    return env


def _run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout)


def _pip(python: Path, args: list[str], cwd: Path, what: str) -> None:
    out = _run([str(python), *PIP, *args], cwd)
    if out.returncode != 0:
        pytest.fail(
            f"pip could not {what} (rc {out.returncode}). This test needs a package index "
            "(PyPI, or PIP_INDEX_URL/PIP_FIND_LINKS) or a pip cache holding the runtime dependencies.\n"
            f"--- pip stderr (tail) ---\n{out.stderr[-3000:]}",
            pytrace=False,
        )


def _copy_sources(dest: Path) -> Path:
    """pyproject.toml, keeper/ and contracts/ (what the distribution is built from), without caches."""
    dest.mkdir()
    shutil.copy2(REPO / "pyproject.toml", dest / "pyproject.toml")
    for tree in ("keeper", "contracts"):
        shutil.copytree(REPO / tree, dest / tree, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def _package_files(site_packages: Path) -> set[str]:
    """Every file of the installed package but its bytecode caches."""
    return {
        p.relative_to(site_packages).as_posix()
        for p in (site_packages / "keeper").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bin directory, wheel) of a fresh venv holding vyperp and its runtime dependencies only."""
    root = tmp_path_factory.mktemp("install")
    src = _copy_sources(root / "src")
    venv = root / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], root)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    _pip(python, ["wheel", "--no-deps", "--wheel-dir", str(root / "dist"), str(src)], root, "build the wheel")
    (wheel,) = (root / "dist").glob("vyperp-*.whl")
    _pip(python, ["install", str(wheel)], root, "install vyperp without extras into a fresh venv")
    return venv / "bin", wheel


def test_wheel__holds_the_package_and_its_templates(installed: tuple[Path, Path]) -> None:
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "keeper/cli.py" in names
    templates = {p.relative_to(REPO).as_posix() for p in (REPO / "keeper").rglob("*.j2")}
    assert templates <= names, f"templates missing from the wheel: {sorted(templates - names)}"


def test_wheel__holds_every_module_and_contract_source(installed: tuple[Path, Path]) -> None:
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "keeper").rglob("*.py")}
    assert modules <= names, f"modules missing from the wheel: {sorted(modules - names)}"
    contracts = {f"keeper/{p.relative_to(REPO).as_posix()}" for p in (REPO / "contracts").rglob("*.vy*")}
    assert contracts <= names, f"contract sources missing from the wheel: {sorted(contracts - names)}"


def test_plain_install__compiles_the_abis_into_the_user_cache(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    """What `keeper run` and `keeper status` need first: every deployable's ABI and bytecode."""
    bin_dir, _ = installed
    (site_packages,) = bin_dir.parent.glob("lib/python*/site-packages")
    before = _package_files(site_packages)
    probe = (
        "import json; from keeper import artifacts as a; "
        "print(json.dumps({'names': sorted(a.deployables()), 'build': str(a.BUILD), "
        "'events': sorted(e['name'] for e in a.abi('PerpMarket') if e['type'] == 'event'), "
        "'bytecode': len(a.bytecode('Clearinghouse'))}))"
    )
    env = {**_clean_env(), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("VYPERP_ARTIFACTS_DIR", None)
    out = subprocess.run(
        [str(bin_dir / "python"), "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert set(got["names"]) >= {"Clearinghouse", "LiquidationEngine", "PerpMarket", "IndexOracle", "Lens"}
    assert Path(got["build"]) == tmp_path / "cache" / "vyperp" / "artifacts"
    assert {f"{n}.json" for n in got["names"]} <= {p.name for p in Path(got["build"]).iterdir()}
    assert {"Fill", "PositionChanged"} <= set(got["events"]), got["events"]
    assert got["bytecode"] > 1_000
    assert _package_files(site_packages) == before, "the installed keeper wrote into its package"
    assert not (site_packages / "build").exists(), "the installed keeper wrote into site-packages"


def test_plain_install__has_no_extras(installed: tuple[Path, Path]) -> None:
    bin_dir, _ = installed
    probe = f"import importlib.util as u, json; print(json.dumps([m for m in {EXTRAS_MODULES!r} if u.find_spec(m)]))"
    out = _run([str(bin_dir / "python"), "-c", probe], bin_dir.parent)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"a plain install brought extras' packages: {out.stdout}"


@pytest.mark.parametrize("argv", HELP_COMMANDS, ids=lambda a: " ".join(a))
def test_plain_install__keeper_help__exits_0(installed: tuple[Path, Path], argv: list[str]) -> None:
    bin_dir, _ = installed
    out = _run([str(bin_dir / "keeper"), *argv], bin_dir.parent, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: keeper" in out.stdout


@pytest.mark.parametrize("argv", HELP_COMMANDS, ids=lambda a: " ".join(a))
def test_keeper_help__imports_no_extras(argv: list[str]) -> None:
    """In the dev venv, where the extras are installed: the help paths leave them unimported."""
    out = _run([sys.executable, "-c", _CHECK_IMPORTS, *argv], REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", f"keeper {' '.join(argv)} imported: {out.stdout}"
