"""Compiled contract artifacts: the single source of ABIs and bytecode.

Every deployable Vyper contract (CamelCase file names, mocks included) is compiled with the
pinned vyper 0.4.3 into ``<BUILD>/<Name>.json`` = ``{"abi", "bytecode", "bytecode_runtime",
"immutables_size", "source"}``. A cache key over every ``.vy``/``.vyi`` file and the compiler
version makes recompilation happen only when a source changes.

Where the sources are and where the artifacts go:

* in a checkout (``pip install -e .`` included): ``contracts/`` beside ``keeper/``, compiled
  into ``build/artifacts/``;
* from an installed wheel: the same sources ship as package data, ``keeper/contracts/``
  (pyproject.toml maps ``contracts/`` to the package ``keeper.contracts``); they are compiled
  on first use (about 10 s) into the user's cache, ``$XDG_CACHE_HOME/vyperp/artifacts`` or
  ``~/.cache/vyperp/artifacts``, or ``$VYPERP_ARTIFACTS_DIR`` when set. Nothing is written
  into the installed package.

``python -m keeper.artifacts`` compiles everything and prints sizes;
``--check-warnings`` fails when the compiler warns (part of ``make lint``).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
PACKAGED_CONTRACTS = PACKAGE / "contracts"  # present in an installed wheel only
# the checkout keeper/ belongs to; None when keeper is an installed wheel
REPO: Path | None = None if PACKAGED_CONTRACTS.is_dir() else PACKAGE.parent


def _user_cache() -> Path:
    """Where an installed keeper writes its artifacts (never into the package)."""
    if os.environ.get("VYPERP_ARTIFACTS_DIR"):
        return Path(os.environ["VYPERP_ARTIFACTS_DIR"])
    user_cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(user_cache) / "vyperp" / "artifacts"


CONTRACTS = PACKAGED_CONTRACTS if REPO is None else REPO / "contracts"
BUILD = _user_cache() if REPO is None else REPO / "build" / "artifacts"
EIP170_LIMIT = 24_576
# every deployable keeps 2 KB of room under EIP-170, so a fix can land without
# deleting a check first (docs/PROTOCOL.md §15)
SIZE_TARGET = EIP170_LIMIT - 2_048


def deployables() -> dict[str, Path]:
    """Name -> source path of every deployable contract (CamelCase ``.vy``)."""
    out = {}
    for path in sorted(CONTRACTS.rglob("*.vy")):
        if path.stem[:1].isupper():
            out[path.stem] = path
    return out


def _sources_hash() -> str:
    import vyper

    h = hashlib.sha256(vyper.__version__.encode())
    for path in sorted(CONTRACTS.rglob("*.vy*")):
        h.update(str(path.relative_to(CONTRACTS)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _layout_size(layout: dict) -> int:
    """Bytes of a code layout (module layouts nest)."""
    return sum(v["length"] if "length" in v else _layout_size(v) for v in layout.values())


def _compile(name: str, path: Path) -> tuple[dict, list[str]]:
    from vyper.cli.vyper_compile import compile_files

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = compile_files([path], ("abi", "bytecode", "bytecode_runtime", "layout"))
    result = next(iter(out.values()))
    code_layout = result["layout"].get("code_layout", {})
    artifact = {
        "contractName": name,
        "abi": result["abi"],
        "bytecode": result["bytecode"],
        "bytecode_runtime": result["bytecode_runtime"],
        # immutables are appended to the runtime code at deploy time
        "immutables_size": _layout_size(code_layout),
        "source": path.relative_to(CONTRACTS.parent).as_posix(),  # contracts/<...>.vy
    }
    return artifact, [f"{name}: {w.message}" for w in caught]


def build_all(force: bool = False) -> list[str]:
    """Compile every deployable whose cache is out of date; return warnings."""
    key = _sources_hash()
    try:
        BUILD.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(
            f"cannot create the artifacts directory {BUILD} ({exc}): set VYPERP_ARTIFACTS_DIR"
        ) from None
    stamp = BUILD / "_hash"
    if not force and stamp.exists() and stamp.read_text() == key:
        if all((BUILD / f"{n}.json").exists() for n in deployables()):
            return []
    found: list[str] = []
    for name, path in deployables().items():
        artifact, warns = _compile(name, path)
        found += warns
        _write(BUILD / f"{name}.json", json.dumps(artifact, indent=1))
    _write(stamp, key)
    _load.cache_clear()
    return found


def _write(path: Path, text: str) -> None:
    """Whole or not at all: another process compiling at the same time never reads half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@cache
def _load(name: str) -> dict:
    build_all()
    path = BUILD / f"{name}.json"
    if not path.exists():
        raise KeyError(f"no contract named {name!r}; deployables: {', '.join(deployables())}")
    return json.loads(path.read_text())


def abi(name: str) -> list:
    """The ABI of a deployable contract, e.g. ``abi("IndexOracle")``."""
    return _load(name)["abi"]


def bytecode(name: str) -> str:
    """Init code (hex, 0x-prefixed)."""
    return _load(name)["bytecode"]


def runtime_size(name: str) -> int:
    """Deployed code size in bytes (runtime code plus the immutables Vyper
    appends to it at deploy time); EIP-170 allows 24,576."""
    a = _load(name)
    return (len(a["bytecode_runtime"]) - 2) // 2 + a["immutables_size"]


def source_path(name: str) -> Path:
    return deployables()[name]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    warns = build_all(force="--check-warnings" in argv)
    for name in deployables():
        size = runtime_size(name)
        flag = (
            "ok" if size <= SIZE_TARGET else "OVER the 2 KB room" if size <= EIP170_LIMIT else "OVER EIP-170"
        )
        print(f"{name:<24} {size:>6} bytes  {flag}")
    for w in warns:
        print("warning:", w)
    if "--check-warnings" in argv and warns:
        return 1
    if any(runtime_size(n) > SIZE_TARGET for n in deployables()):
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
