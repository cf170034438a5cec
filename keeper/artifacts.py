"""Compiled contract artifacts: the single source of ABIs and bytecode.

Every deployable Vyper contract under ``contracts/`` (CamelCase file names,
mocks included) is compiled with the pinned vyper 0.4.3 into
``build/artifacts/<Name>.json`` = ``{"abi", "bytecode", "bytecode_runtime",
"source", "source_hash"}``. A cache key over every ``.vy``/``.vyi`` file and
the compiler version makes recompilation happen only when a source changes.

``python -m keeper.artifacts`` compiles everything and prints sizes;
``--check-warnings`` fails when the compiler warns (part of ``make lint``).
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONTRACTS = REPO / "contracts"
BUILD = REPO / "build" / "artifacts"
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
        "source": str(path.relative_to(REPO)),
    }
    return artifact, [f"{name}: {w.message}" for w in caught]


def build_all(force: bool = False) -> list[str]:
    """Compile every deployable whose cache is out of date; return warnings."""
    key = _sources_hash()
    BUILD.mkdir(parents=True, exist_ok=True)
    stamp = BUILD / "_hash"
    if not force and stamp.exists() and stamp.read_text() == key:
        if all((BUILD / f"{n}.json").exists() for n in deployables()):
            return []
    found: list[str] = []
    for name, path in deployables().items():
        artifact, warns = _compile(name, path)
        found += warns
        (BUILD / f"{name}.json").write_text(json.dumps(artifact, indent=1))
    stamp.write_text(key)
    _load.cache_clear()
    return found


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
