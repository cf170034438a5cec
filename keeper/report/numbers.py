"""The report's numbers: pure functions of a run's data (:class:`keeper.sim.results.SimData` or
its ``data.json``), every one from the protocol's events and views, none computed by the
simulation's participants. :func:`key_numbers` is the table ``summary.json`` holds."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

WAD = 10**18


def _get(data: Any, key: str) -> Any:
    return data[key] if isinstance(data, Mapping) else getattr(data, key)


def _int_keys(d: Mapping[Any, Any]) -> dict[int, Any]:
    return {int(k): v for k, v in d.items()}


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latencies(data: Any, *, first_call: bool = False) -> list[dict[str, Any]]:
    """Keeper latency, from chain data: for each account that became liquidatable (the first
    block where `Clearinghouse.health` showed equity < MM after a block where it did not) and
    was then liquidated (its first `Liquidation` event closing something, or `Takeover`, after
    that block; `first_call`: its first `Liquidation` call, closing something or not: the keeper's own
    reaction, whatever the book), the blocks and seconds of chain time in between."""
    transitions = {
        a: [(int(b), bool(v)) for b, v in ts] for a, ts in _int_keys(_get(data, "liquidatable")).items()
    }
    times = _int_keys(_get(data, "block_times"))
    out: list[dict[str, Any]] = []
    used: set[tuple[int, int]] = set()
    events = _get(data, "events")
    closings = list(events.get("Liquidation", []))
    if not first_call:
        closings = [e for e in closings if int(e["closed_size"]) > 0] + list(events.get("Takeover", []))
        closings.sort(key=lambda e: (int(e["block"]), int(e["log_index"])))
    for ev in closings:
        account, block = int(ev["account"]), int(ev["block"])
        start = None
        for b, liquidatable in transitions.get(account, []):
            if b >= block:
                break
            start = b if liquidatable else None
        if start is None or (account, start) in used:
            continue
        used.add((account, start))
        out.append(
            {
                "account": account,
                "from_block": start,
                "block": block,
                "blocks": block - start,
                "seconds": times.get(block, 0) - times.get(start, 0),
            }
        )
    return out


def _usd(wad: int) -> float:
    return round(int(wad) / WAD, 2)


def key_numbers(data: Any) -> dict[str, Any]:
    """The report's table, as numbers (USD rounded to the cent). Reproducible: the same seed
    gives the same dictionary."""
    events = _get(data, "events")
    labels = _int_keys(_get(data, "labels"))
    roles = _int_keys(_get(data, "roles"))
    steps = _get(data, "steps")
    liqs = events.get("Liquidation", [])
    closed = [e for e in liqs if int(e["closed_size"]) > 0]
    takeovers = events.get("Takeover", [])
    bad = events.get("BadDebt", [])
    adls = events.get("AutoDeleverage", [])
    delev = events.get("Deleveraged", [])
    fund = [s["insurance_assets"] for s in steps]
    lat = latencies(data)
    reaction = latencies(data, first_call=True)
    solvency = _get(data, "solvency")
    settled = events.get("FundingSettled", [])
    funding_interval = {s: m["funding_interval"] for s, m in _get(data, "config")["markets"].items()}
    aprs: dict[str, list[float]] = defaultdict(list)
    for e in settled:
        aprs[e["symbol"]].append(int(e["rate"]) / WAD * 365 * 86_400 / funding_interval[e["symbol"]] * 100)
    maker = maker_summary(data)
    peak, trough, drawdown = _drawdown(fund)
    return {
        "accounts_liquidated": len({int(e["account"]) for e in (*closed, *takeovers)}),
        "takeovers": len(takeovers),
        "takeover_notional_usd": round(
            sum(int(e["size"]) * int(e["mark"]) for e in takeovers) / WAD / WAD, 2
        ),
        "liquidation_calls": len(liqs),
        "liquidations_closing": len(closed),
        "liquidations_no_fill": len(liqs) - len(closed),
        "liquidations_bankrupt": sum(1 for e in closed if e["bankrupt"]),
        "notional_liquidated_usd": round(
            sum(int(e["closed_size"]) * int(e["mark"]) for e in closed) / WAD / WAD, 2
        ),
        "liquidation_fees_usd": _usd(sum(int(e["fee"]) for e in closed)),
        "bad_debt_events": len(bad),
        "bad_debt_usd": _usd(sum(int(e["deficit"]) for e in bad)),
        "bad_debt_covered_usd": _usd(sum(int(e["covered"]) for e in bad)),
        "bad_debt_uncovered_usd": _usd(sum(int(e["uncovered"]) for e in bad)),
        "insurance_fund_start_usd": round(fund[0], 2) if fund else 0.0,
        "insurance_fund_end_usd": round(fund[-1], 2) if fund else 0.0,
        "insurance_fund_peak_usd": round(peak, 2),
        "insurance_fund_trough_usd": round(trough, 2),
        "insurance_fund_drawdown_usd": round(drawdown, 2),
        "insurance_fund_paid_usd": round(
            sum(int(e["paid"]) for e in events.get("Covered", [])) / 10 ** _decimals(data), 2
        ),
        "adl_events": len(adls),
        "adl_accounts": sorted({int(e["account"]) for e in adls}),
        "adl_deficit_usd": _usd(sum(-min(int(e["equity_before"]), 0) for e in adls)),
        "adl_notional_usd": round(sum(int(e["size"]) * int(e["price"]) for e in adls) / WAD / WAD, 2),
        "adl_counterparties": sorted({int(e["counterparty"]) for e in delev}),
        "adl_counterparty_roles": dict(
            sorted(Counter(roles.get(int(e["counterparty"]), "?") for e in delev).items())
        ),
        "adl_bankrupt_roles": dict(sorted(Counter(roles.get(int(e["account"]), "?") for e in adls).items())),
        "latency_blocks": _percentiles([x["blocks"] for x in lat]),
        "latency_seconds": _percentiles([x["seconds"] for x in lat]),
        "latency_samples": len(lat),
        "reaction_blocks": _percentiles([x["blocks"] for x in reaction]),
        "reaction_seconds": _percentiles([x["seconds"] for x in reaction]),
        "funding_settlements": len(settled),
        "funding_apr_pct": {s: [round(min(v), 2), round(max(v), 2)] for s, v in sorted(aprs.items())},
        "maker_funding_received_usd": maker["funding_received_usd"],
        "maker_adl_size": maker["adl_size"],
        "solvency_holds": bool(solvency.get("holds")),
        "solvency_difference": int(solvency.get("difference", -1)),
        "insurance_fund_difference": int(solvency.get("fund_difference", -1)),
        "final_block": int(_get(data, "run").get("final_block", 0)),
        "traders": sum(1 for r in roles.values() if r in ("trader", "whale")),
        "labels_of_adl": [labels.get(int(e["account"]), "?") for e in adls],
    }


def _decimals(data: Any) -> int:
    precision = int(_get(data, "solvency").get("precision", 10**12))
    return 18 - round(math.log10(precision))


def _percentiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    return {f"p{q}": percentile(values, q) for q in (50, 90, 99)} | {"max": max(values)}


def _drawdown(series: Sequence[float]) -> tuple[float, float, float]:
    """(peak before the worst trough, the trough, the largest peak-to-trough fall)."""
    peak = best_peak = trough = series[0] if series else 0.0
    worst = 0.0
    for x in series:
        peak = max(peak, x)
        if peak - x > worst:
            worst, best_peak, trough = peak - x, peak, x
    return best_peak, trough, worst


def crash_moves(data: Any) -> dict[str, dict[str, float]]:
    """Per market, from the on-chain index of each step: the fall from the crash's first step to the
    lowest index after it, and the worst step (its change and when, in minutes from the crash)."""
    steps = _get(data, "steps")
    crash = [i for i, s in enumerate(steps) if s["phase"] == "crash"]
    if not crash:
        return {}
    out = {}
    for symbol in _get(data, "symbols"):
        index = [s["markets"][symbol]["index"] for s in steps]
        start = index[crash[0]]
        after = range(crash[0] + 1, len(steps))
        worst = min(after, key=lambda i: index[i] / index[i - 1], default=crash[0])
        out[symbol] = {
            "drop_pct": 100 * (min(index[crash[0] :]) / start - 1),
            "worst_step_pct": 100 * (index[worst] / index[worst - 1] - 1),
            "worst_at_min": _minutes(data, steps[worst - 1]["t"]),
        }
    return out


def maker_summary(data: Any) -> dict[str, Any]:
    """The maker's basis trade: funding received (settled `PositionChanged.funding_paid`, minus
    what it owes now), ADL'd size, and its off-chain hedge, per market and in total."""
    events = _get(data, "events")
    maker = _get(data, "maker")
    steps = _get(data, "steps")
    account = int(maker.get("account", 0))
    per: dict[str, dict[str, float]] = {}
    last = steps[-1]["markets"] if steps else {}
    for symbol in _get(data, "symbols"):
        paid = sum(
            int(e["funding_paid"]) for e in events.get("MakerPositionChanged", []) if e["symbol"] == symbol
        )
        owed = last.get(symbol, {}).get("maker_funding_owed", 0.0)
        adl = sum(
            int(e["size"])
            for e in _events_by_symbol(data, events.get("Deleveraged", [])).get(symbol, [])
            if int(e["counterparty"]) == account
        )
        per[symbol] = {
            "funding_received_usd": round(-paid / WAD - owed, 2),
            "hedge_value_usd": round(last.get(symbol, {}).get("hedge_value", 0.0), 2),
            "perp_size": last.get(symbol, {}).get("maker_size", 0.0),
            "hedge_qty": last.get(symbol, {}).get("hedge_qty", 0.0),
        }
        if adl:
            per[symbol]["adl_size"] = adl / WAD
    equity = [s["maker_equity"] for s in steps]
    return {
        "markets": per,
        "funding_received_usd": round(sum(v["funding_received_usd"] for v in per.values()), 2),
        "adl_size": {s: v["adl_size"] for s, v in per.items() if "adl_size" in v},
        "perp_pnl_usd": round(equity[-1] - float(maker.get("deposit", 0.0)), 2) if equity else 0.0,
        "hedge_pnl_usd": round(sum(v["hedge_value_usd"] for v in per.values()), 2),
    }


def _minutes(data: Any, seconds: float) -> float:
    return (seconds - _get(data, "crash_start")) / 60


def _event_minutes(data: Any, ev: Mapping[str, Any]) -> float:
    return _minutes(data, _int_keys(_get(data, "block_times")).get(int(ev["block"]), 0))


def _events_by_symbol(data: Any, events: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    addresses = _get(data, "config").get("market_addresses", {})
    names = {str(a).lower(): s for s, a in addresses.items()}
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for e in events:
        out[names.get(str(e.get("market", "")).lower(), "?")].append(e)
    return out


__all__ = [
    "crash_moves",
    "key_numbers",
    "latencies",
    "maker_summary",
    "percentile",
]
