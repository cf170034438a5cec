"""What the mutant scripts share (scripts/replay_mutants.py, scripts/mutate.py):
a mutant's exact-text edits applied to a contract's source, a copy of the
working tree to build it in, one pytest run in that copy, and where the run
first failed.

A mutant is built in a temporary copy of the working tree, so contracts/ is
never touched and the copy compiles its own artifacts.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

Edit = tuple[str, str]  # (exact text, replacement): the text occurs exactly once


def apply_edits(name: str, contract: str, edits: tuple[Edit, ...], source: str) -> str:
    """The mutated source; each edit's text must occur exactly once."""
    for old, new in edits:
        n = source.count(old)
        if n != 1:
            raise ValueError(f"{name}: {contract} has {n} copies of {old!r}, not 1")
        source = source.replace(old, new)
    return source


def copy_tree(dst: Path, untracked: bool = False) -> None:
    """Copy every file git knows, as it is on disk, to `dst`; with `untracked`,
    also the files git would add (not ignored), so a new test counts before
    it is committed."""
    cmd = ["git", "ls-files", "-z"] + (["--cached", "--others", "--exclude-standard"] if untracked else [])
    files = subprocess.run(cmd, cwd=REPO, capture_output=True, check=True).stdout
    for rel in filter(None, files.decode().split("\0")):
        src = REPO / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)


def build(tree: Path, contract: str, source: str, untracked: bool = False) -> None:
    """A copy of the working tree in `tree` with contracts/`contract` replaced by `source`."""
    copy_tree(tree, untracked)
    (tree / "contracts" / contract).write_text(source)


def run_pytest(
    tree: Path, args: list[str], timeout_s: float | None = None, env: dict[str, str] | None = None
) -> tuple[int | None, str, str, float]:
    """(exit status, None on a timeout; stdout; stderr; seconds) of
    `python -m pytest ARGS` in `tree`. python -m pytest puts the copy first
    on sys.path: its keeper/ and tests/ (and so its contracts/) are the ones
    imported. A run past `timeout_s` is killed with its process group (the
    run is in a session of its own, so nothing it started outlives it)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", *args],
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"PYTHONDONTWRITEBYTECODE": "1"} | (env or {}),
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        code = None
    except BaseException:  # Ctrl-C: the run is in a session of its own, so end it here
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return code, out, err, time.monotonic() - started


def first_failure(output: str, tests: str = "tests/") -> str:
    """Where a run first failed in a test file under `tests` (`file:line`, its
    test), the failing line and pytest's error, from the log."""
    where = re.search(rf"^\S*?({re.escape(tests)}\S+\.py:\d+): in (\w+)\n\s+(.*)$", output, re.M)
    error = re.search(r"^E\s+(.*)$", output, re.M)
    parts = [
        f"{where.group(1)} ({where.group(2)}): {where.group(3)[:120]}" if where else "",
        f"-> {error.group(1)[:120]}" if error else "",
    ]
    return "\n         ".join(p for p in parts if p) or "(see the log)"
