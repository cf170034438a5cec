"""The report's numbers: pure functions of a run's data (:class:`keeper.sim.results.SimData` or
its ``data.json``), every one from the protocol's events and views, none computed by the
simulation's participants. :func:`key_numbers` is the table ``summary.json`` holds."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from keeper.units import WAD


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


# ---------------------------------------------------------------- what report.md tells


def report_facts(data: Any) -> dict[str, Any]:
    """Everything ``report.md`` tells beyond :func:`key_numbers`, as data: the template
    (``report.md.j2``) only formats it. Not reproducible as a whole (wall times)."""
    maker = maker_summary(data)
    return {
        "run": run_facts(data),
        "story": story_facts(data),
        "bad_debt": bad_debt_rows(data),
        "adl": adl_rows(data),
        "keepers": keeper_rows(data),
        "reverted": reverted_reasons(data),
        "latency_accounts": len(latencies(data)),
        "maker": {**maker, "net_pnl_usd": maker["perp_pnl_usd"] + maker["hedge_pnl_usd"]},
        "solvency": solvency_terms(data),
    }


def run_facts(data: Any) -> dict[str, Any]:
    """How the run was made and where its wall time and transactions went."""
    run, steps = _get(data, "run"), _get(data, "steps")
    laps: dict[str, float] = defaultdict(float)
    for s in steps:
        for k, v in s.get("laps", {}).items():
            laps[k] += v
    sent = run.get("participant_txs", {})
    keepers = _get(data, "keepers").get("transactions", {})
    return {
        "seed": run.get("seed"),
        "quick": bool(run.get("quick")),
        "wall_s": run.get("wall_s", "?"),
        "steps": run.get("steps"),
        "first_block": run.get("first_block"),
        "final_block": run.get("final_block"),
        "blocks": int(run.get("final_block", 0)) - int(run.get("first_block", 0)) + 1,
        "laps": dict(laps),
        "participant_txs": sent,
        "participant_txs_total": sum(sent.values()),
        "keeper_txs": sum(o.get("mined", 0) for o in keepers.values()),
        "crowd_reverted": run.get("crowd_reverted", 0),
    }


def story_facts(data: Any) -> dict[str, Any]:
    """The schedule (calm, crash, recovery), the crowd's side and how far each index fell."""
    sched = _get(data, "config")["schedule"]
    traders = _get(data, "traders")
    return {
        "calm_h": sched["calm_s"] / 3600,
        "crash_min": sched["crash_s"] // 60,
        "recovery_min": sched["recovery_s"] // 60,
        "longs_pct": 100 * (sum(1 for t in traders if t["side"] > 0) / max(len(traders), 1)),
        "moves": crash_moves(data),
    }


def bad_debt_rows(data: Any) -> list[dict[str, Any]]:
    """One row per `BadDebt` event: when, whose, and how the fund covered it (USD)."""
    labels = _int_keys(_get(data, "labels"))
    return [
        {
            "block": e["block"],
            "minutes": _event_minutes(data, e),
            "account": int(e["account"]),
            "label": labels.get(int(e["account"]), "?"),
            "deficit_usd": int(e["deficit"]) / WAD,
            "covered_usd": int(e["covered"]) / WAD,
            "uncovered_usd": int(e["uncovered"]) / WAD,
        }
        for e in _get(data, "events").get("BadDebt", [])
    ]


def adl_rows(data: Any) -> list[dict[str, Any]]:
    """One row per `AutoDeleverage` event, with the counterparties its `Deleveraged` events name."""
    labels = _int_keys(_get(data, "labels"))
    events = _get(data, "events")
    delev = events.get("Deleveraged", [])
    rows = []
    for e in events.get("AutoDeleverage", []):
        account = int(e["account"])
        cps = [d for d in delev if d["tx"] == e["tx"] and int(d["account"]) == account]
        rows.append(
            {
                "block": e["block"],
                "minutes": _event_minutes(data, e),
                "account": account,
                "label": labels.get(account, "?"),
                "size": int(e["size"]) / WAD,
                "price": int(e["price"]) / WAD,
                "deficit_usd": -int(e["equity_before"]) / WAD,
                "counterparties": [
                    {
                        "account": int(d["counterparty"]),
                        "label": labels.get(int(d["counterparty"]), "?"),
                        "size": int(d["size"]) / WAD,
                    }
                    for d in cps
                ],
            }
        )
    return rows


KEEPER_COUNTERS = (
    "pushes",
    "samples",
    "settles",
    "liquidations",
    "adls",
    "adl_handoffs",
    "failures",
    "skipped",
)


def keeper_rows(data: Any) -> list[dict[str, Any]]:
    """Per keeper: rounds, transactions mined and reverted, log lines per level, its own counters."""
    keepers = _get(data, "keepers")
    outcomes = keepers.get("transactions", {})
    rows = []
    for bot, g in keepers.get("gate", {}).items():
        proc = keepers.get("processes", {}).get(bot, {})
        final = proc.get("final", {})
        o = outcomes.get(bot, {})
        rows.append(
            {
                "bot": bot,
                "rounds": g["rounds"],
                "mined": o.get("mined", g["transactions"]),
                "reverted": len(o.get("reverted", [])),
                "levels": dict(sorted(proc.get("levels", {}).items())),
                "counters": {k: final[k] for k in KEEPER_COUNTERS if k in final},
            }
        )
    return rows


def reverted_reasons(data: Any) -> list[dict[str, Any]]:
    """Keeper transactions that reverted on-chain, by keeper and reason, the most frequent first."""
    outcomes = _get(data, "keepers").get("transactions", {})
    counts = Counter((bot, r["reason"]) for bot, o in outcomes.items() for r in o.get("reverted", []))
    return [{"bot": bot, "reason": reason, "count": n} for (bot, reason), n in counts.most_common()]


def solvency_terms(data: Any) -> dict[str, Any]:
    """Both sides of the solvency identity at the final block, term by term, in WAD x WAD (the
    insurance fund's balances in tokens); empty when the run has no solvency check."""
    s = _get(data, "solvency")
    if not s:
        return {}
    tokens = 10 ** _decimals(data)
    backing = s["token_clearinghouse"] * s["precision"] * WAD + s["bad_debt"] * WAD
    claims = (s["cash"] - s["open_notional"]) * WAD - s["unsettled_funding"] + s["funding_dust"]
    return {
        "block": s["block"],
        "accounts": s["accounts"],
        "positions": s["positions"],
        "tokens": s["token_clearinghouse"] * s["precision"] * WAD,
        "bad_debt": s["bad_debt"] * WAD,
        "backing": backing,
        "cash": s["cash"] * WAD,
        "pnl": -s["open_notional"] * WAD,
        "unsettled_funding": -s["unsettled_funding"],
        "funding_dust": s["funding_dust"],
        "claims": claims,
        "difference": s["difference"],
        "difference_usd": s["difference"] / (WAD * WAD),
        "fund_tokens": s["token_insurance"] / tokens,
        "fund_booked": s["insurance_assets"] / tokens,
        "fund_difference": s["fund_difference"],
        "tokens_held": (s["token_clearinghouse"] + s["token_insurance"]) / tokens,
        "holds": s["holds"],
    }


__all__ = [
    "adl_rows",
    "bad_debt_rows",
    "crash_moves",
    "keeper_rows",
    "key_numbers",
    "latencies",
    "maker_summary",
    "percentile",
    "report_facts",
    "reverted_reasons",
    "run_facts",
    "solvency_terms",
    "story_facts",
]
