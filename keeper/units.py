"""Exact decimal conversions shared by the scenario runner and the trading CLI.

Decimals and durations as written by people ("86000.5", "1h30m") to values, and back
(:func:`fmt`, :func:`format_duration`); WAD integers and token units to decimals and back
(:func:`from_wad`, :func:`to_units`), exactly, refusing a fraction of a unit.
"""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from typing import Any

WAD = 10**18


_DECIMAL_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_DURATION_RE = re.compile(r"(\d+)([smhd])")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_decimal(v: Any) -> Decimal:
    """A decimal from a string ("86000", "0.065", "1_000"), an int or a Decimal. YAML values arrive
    as the text written, so they are exact; a float (Python API only) goes through its repr."""
    if isinstance(v, bool):
        raise ValueError(f"expected a decimal number, got {v!r}")
    if isinstance(v, Decimal):
        if not v.is_finite():
            raise ValueError(f"expected a finite decimal, got {v}")
        return v
    if isinstance(v, int):
        return Decimal(v)
    if isinstance(v, float):
        return Decimal(repr(v))
    if isinstance(v, str):
        s = v.strip().replace("_", "")
        if _DECIMAL_RE.fullmatch(s):
            return Decimal(s)
    raise ValueError(f'expected a decimal number as a string, e.g. "86000.5", got {v!r}')


def parse_duration(v: Any) -> int:
    """Seconds of a duration: "30s", "5m", "8h", "1d" (or a sum like "1h30m")."""
    if isinstance(v, str):
        s = v.strip()
        if s and _DURATION_RE.sub("", s) == "":
            return sum(int(n) * _DURATION_UNITS[u] for n, u in _DURATION_RE.findall(s))
    raise ValueError(f"bad duration {v!r}: use a whole number with a unit s, m, h or d (30s, 5m, 8h, 1d)")


def format_duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def fmt(d: Decimal | int | None) -> str:
    """A decimal without exponent or trailing zeros: 400, 0.1, -2.0495."""
    if d is None:
        return "-"
    if isinstance(d, int):
        return str(d)
    with localcontext() as ctx:
        ctx.prec = 100
        s = format(d.normalize(), "f")
    return "0" if s in ("-0", "+0") else s


def from_wad(x: int) -> Decimal:
    """Exact: WAD integer -> human decimal."""
    with localcontext() as ctx:
        ctx.prec = 100
        return Decimal(x) / WAD


def to_units(x: Decimal, decimals: int) -> int:
    """Exact: human decimal -> integer units with `decimals` (refuses a fraction of a unit)."""
    with localcontext() as ctx:
        ctx.prec = 100
        scaled = x.scaleb(decimals)
        if scaled != scaled.to_integral_value():
            raise ValueError(f"{fmt(x)} has more than {decimals} decimals")
        return int(scaled)
