"""`make fuzz` (and `make test`) report how much the stateful machines ran
and that every invariant held (tests/fuzz/stats.py counts)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.fuzz.stats import STATS


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    machines = sorted({m for m, _ in STATS})
    stats_file = os.environ.get("FUZZ_STATS_FILE")
    if stats_file:  # scripts/fuzz.py adds up its shards
        counts = {m: {w: n for (mm, w), n in STATS.items() if mm == m} for m in machines}
        Path(stats_file).write_text(json.dumps(counts))
    if not machines:
        return
    tr = terminalreporter
    failed = bool(tr.stats.get("failed")) or bool(tr.stats.get("error"))
    tr.section("stateful fuzzing")
    for m in machines:
        tr.write_line(f"{m}: {STATS[(m, 'examples')]:,} examples, {STATS[(m, 'steps')]:,} steps checked")
    tr.write_line("some invariant FAILED (see above)" if failed else "all invariants held after every step")
