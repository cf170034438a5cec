"""How much the stateful machines ran, for the summary `tests/fuzz/conftest.py`
prints: examples (one per `@initialize`) and steps (each invariant check
runs after every step), per machine."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

STATS: Counter = Counter()


def record(machine: str, what: str) -> None:
    """Count one example (`what="examples"`) or one checked step (`"steps"`).
    Under scripts/fuzz.py each new example also rewrites `<stats file>.progress`
    with the live counts, so a long test can be watched while it runs."""
    STATS[(machine, what)] += 1
    stats_file = os.environ.get("FUZZ_STATS_FILE")
    if what == "examples" and stats_file:
        live = {f"{m} {w}": n for (m, w), n in sorted(STATS.items())}
        Path(stats_file + ".progress").write_text(json.dumps(live) + "\n")
