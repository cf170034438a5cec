"""`make fuzz` (and `make test`) report how much the stateful machines ran
and that every invariant held (tests/fuzz/stats.py counts)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.fuzz.stats import STATS

_OUTCOMES: dict[str, str] = {}


def _write_stats() -> None:
    """The counts so far, and each finished test's outcome, for scripts/fuzz.py
    to add up over the shards; rewritten after every test, so a shard stopped
    midway still tells what it checked."""
    stats_file = os.environ.get("FUZZ_STATS_FILE")
    if not stats_file:
        return
    machines = sorted({m for m, _ in STATS})
    counts: dict = {m: {w: n for (mm, w), n in STATS.items() if mm == m} for m in machines}
    counts["_tests"] = dict(_OUTCOMES)
    tmp = Path(stats_file + ".tmp")
    tmp.write_text(json.dumps(counts))
    tmp.replace(stats_file)


def pytest_runtest_logreport(report) -> None:
    if report.when == "call" or report.outcome != "passed":
        _OUTCOMES[report.nodeid] = report.outcome
        _write_stats()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    _write_stats()
    machines = sorted({m for m, _ in STATS})
    if not machines:
        return
    tr = terminalreporter
    failed = bool(tr.stats.get("failed")) or bool(tr.stats.get("error"))
    tr.section("stateful fuzzing")
    for m in machines:
        tr.write_line(f"{m}: {STATS[(m, 'examples')]:,} examples, {STATS[(m, 'steps')]:,} steps checked")
    tr.write_line("some invariant FAILED (see above)" if failed else "all invariants held after every step")
