"""How much the stateful machines ran, for the summary `tests/fuzz/conftest.py`
prints: examples (one per `@initialize`) and steps (each invariant check
runs after every step), per machine."""

from __future__ import annotations

from collections import Counter

STATS: Counter = Counter()


def record(machine: str, what: str) -> None:
    """Count one example (`what="examples"`) or one checked step (`"steps"`)."""
    STATS[(machine, what)] += 1
