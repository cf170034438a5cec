"""The simulation's report: ``report.md``, its PNG plots and ``summary.json``, from the
:class:`keeper.sim.engine.SimData` a run collected (or its ``data.json``).

Numbers first (:func:`key_numbers`, :func:`latencies`: pure functions of the data, every one
from the protocol's events and views, none computed by the simulation's participants), files
after (:func:`write_report`). ``summary.json`` holds the key numbers only, the ones a run with
the same seed reproduces exactly (no wall-clock times): the integration test compares two runs
with it.

    python -m keeper.report out/data.json      # rebuild out/report.md and the plots
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

WAD = 10**18
PLOTS = {
    "index_mark": "index vs mark",
    "funding_apr": "funding rate (APR)",
    "open_interest": "open interest",
    "book_depth": "order-book depth",
    "liquidations": "liquidations per minute",
    "insurance_fund": "insurance fund",
    "adl": "ADL events",
}
COLORS = {"BTC-PERP": "tab:orange", "ETH-PERP": "tab:blue", "SOL-PERP": "tab:purple"}


# ---------------------------------------------------------------- numbers (pure)


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


# ---------------------------------------------------------------- plots


def _minutes(data: Any, seconds: float) -> float:
    return (seconds - _get(data, "crash_start")) / 60


def _event_minutes(data: Any, ev: Mapping[str, Any]) -> float:
    return _minutes(data, _int_keys(_get(data, "block_times")).get(int(ev["block"]), 0))


def _shade_crash(ax: Any, data: Any, *, hours: bool = False) -> None:
    phases = _get(data, "phases")
    if "crash" in phases:
        lo, hi = (_minutes(data, x) for x in phases["crash"])
        scale = 60 if hours else 1
        ax.axvspan(lo / scale, hi / scale, color="tab:red", alpha=0.08, label="crash")


def _zoom(data: Any) -> tuple[float, float]:
    phases = _get(data, "phases")
    lo, hi = phases.get("crash", (0, 0))
    return _minutes(data, lo) - 10, _minutes(data, phases.get("recovery", (hi, hi))[1])


def _series(data: Any, symbol: str, key: str) -> list[float]:
    return [s["markets"][symbol][key] for s in _get(data, "steps")]


def _times(data: Any) -> list[float]:
    return [_minutes(data, s["t"]) for s in _get(data, "steps")]


def plot_all(data: Any, out: Path) -> dict[str, Path]:
    """Every plot of the report as PNG in `out`; returns name -> path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"figure.dpi": 100, "axes.grid": True, "grid.alpha": 0.3, "font.size": 9})
    paths: dict[str, Path] = {}
    for name, fn in (
        ("index_mark", _plot_index_mark),
        ("funding_apr", _plot_funding),
        ("open_interest", _plot_open_interest),
        ("book_depth", _plot_depth),
        ("liquidations", _plot_liquidations),
        ("insurance_fund", _plot_insurance),
        ("adl", _plot_adl),
    ):
        fig = fn(plt, data)
        path = out / f"{name}.png"
        fig.savefig(path, bbox_inches="tight")
        plt.close(fig)
        paths[name] = path
    return paths


def _plot_index_mark(plt: Any, data: Any) -> Any:
    symbols = _get(data, "symbols")
    fig, axes = plt.subplots(len(symbols), 2, figsize=(13, 3.1 * len(symbols)), squeeze=False)
    t = _times(data)
    lo, hi = _zoom(data)
    for row, symbol in enumerate(symbols):
        for col, (ax, zoom) in enumerate(zip(axes[row], (False, True), strict=True)):
            x = t if zoom else [m / 60 for m in t]
            ax.plot(x, _series(data, symbol, "fair"), color="0.6", lw=1, label="spot (off-chain fair price)")
            ax.plot(
                x, _series(data, symbol, "index"), color="tab:blue", lw=1.4, label="index (oracle median)"
            )
            ax.plot(x, _series(data, symbol, "mark"), color="tab:orange", lw=1.2, ls="--", label="mark")
            _shade_crash(ax, data, hours=not zoom)
            if zoom:
                ax.set_xlim(lo, hi)
            ax.set_xlabel(
                "minutes from the start of the crash" if zoom else "hours from the start of the crash"
            )
            ax.set_ylabel("price (USD)")
            ax.set_title(f"{symbol}: index vs mark" + (" (the crash, zoomed)" if zoom else " (whole run)"))
            if row == 0 and col == 0:
                ax.legend(loc="lower left")
    fig.suptitle(
        "Index (median of the oracle sources) and mark (median of best bid, best ask, last trade), per market"
    )
    fig.tight_layout()
    return fig


def _plot_funding(plt: Any, data: Any) -> Any:
    fig, ax = plt.subplots(figsize=(12, 4))
    events = _get(data, "events").get("FundingSettled", [])
    markets = _get(data, "config")["markets"]
    t = [m / 60 for m in _times(data)]
    for symbol in _get(data, "symbols"):
        per_year = 365 * 86_400 / markets[symbol]["funding_interval"] * 100
        ax.plot(
            t,
            [r * per_year for r in _series(data, symbol, "predicted_rate")],
            color=COLORS.get(symbol),
            lw=0.8,
            ls=":",
            alpha=0.8,
        )
        settled = [e for e in events if e["symbol"] == symbol]
        if settled:
            ax.step(
                [_event_minutes(data, e) / 60 for e in settled],
                [int(e["rate"]) / WAD * per_year for e in settled],
                where="post", color=COLORS.get(symbol), lw=1.6, marker="o", ms=4, label=f"{symbol} settled",
            )  # fmt: skip
    _shade_crash(ax, data, hours=True)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("hours from the start of the crash")
    ax.set_ylabel("funding rate (APR, %)")
    ax.set_title(
        "Funding rate as APR: settled each interval (solid, markers) and predicted for the running interval (dotted); > 0: longs pay shorts"
    )
    ax.legend(loc="upper left")
    return fig


def _plot_open_interest(plt: Any, data: Any) -> Any:
    fig, axes = plt.subplots(1, 2, figsize=(13, 4))
    t = _times(data)
    lo, hi = _zoom(data)
    for ax, zoom in zip(axes, (False, True), strict=True):
        x = t if zoom else [m / 60 for m in t]
        for symbol in _get(data, "symbols"):
            oi = [
                o * i / 1e6
                for o, i in zip(
                    _series(data, symbol, "open_interest"), _series(data, symbol, "index"), strict=True
                )
            ]
            ax.plot(x, oi, color=COLORS.get(symbol), lw=1.4, label=symbol)
        _shade_crash(ax, data, hours=not zoom)
        if zoom:
            ax.set_xlim(lo, hi)
        ax.set_xlabel("minutes from the start of the crash" if zoom else "hours from the start of the crash")
        ax.set_ylabel("open interest (USD millions, at the index)")
        ax.set_title("Open interest" + (" (the crash, zoomed)" if zoom else " (whole run)"))
        ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def _plot_depth(plt: Any, data: Any) -> Any:
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4), sharey=True)
    t = _times(data)
    lo, hi = _zoom(data)
    for symbol in _get(data, "symbols"):
        bids, asks = _series(data, symbol, "quoted_bid_usd"), _series(data, symbol, "quoted_ask_usd")
        quoted = [(b + a) / 1e6 for b, a in zip(bids, asks, strict=True)]
        left = [d / 1e6 for d in _series(data, symbol, "depth_bid_usd")]
        ax.step(t, quoted, where="post", color=COLORS.get(symbol), lw=1.4, label=symbol)
        ax2.step(t, left, where="post", color=COLORS.get(symbol), lw=1.4, label=symbol)
    for a in (ax, ax2):
        _shade_crash(a, data)
        a.set_xlim(lo - 60, hi)
        a.set_xlabel("minutes from the start of the crash")
        a.legend(loc="upper right")
    ax.set_ylabel("USD millions within 2% of the index")
    ax.set_title("Depth the maker quotes each step (bids + asks)")
    ax2.set_title("Bids left in the book at the end of each step")
    fig.suptitle(
        "Order-book depth: the maker pulls its liquidity when the index moves fast, the selling eats the rest"
    )
    fig.tight_layout()
    return fig


def _plot_liquidations(plt: Any, data: Any) -> Any:
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    events = _get(data, "events").get("Liquidation", [])
    lo, hi = _zoom(data)
    minutes = list(range(math.floor(lo), math.ceil(hi) + 1))
    symbols = _get(data, "symbols")
    by_symbol = _events_by_symbol(data, events)
    bottom = [0] * len(minutes)
    bottom_usd = [0.0] * len(minutes)
    for symbol in symbols:
        counts = Counter(
            math.floor(_event_minutes(data, e))
            for e in by_symbol.get(symbol, [])
            if int(e["closed_size"]) > 0
        )
        usd: dict[int, float] = defaultdict(float)
        for e in by_symbol.get(symbol, []):
            usd[math.floor(_event_minutes(data, e))] += (
                int(e["closed_size"]) * int(e["mark"]) / WAD / WAD / 1e6
            )
        ys = [counts.get(m, 0) for m in minutes]
        ax.bar(minutes, ys, bottom=bottom, width=0.9, color=COLORS.get(symbol), label=symbol)
        bottom = [b + y for b, y in zip(bottom, ys, strict=True)]
        ys_usd = [usd.get(m, 0.0) for m in minutes]
        ax2.bar(minutes, ys_usd, bottom=bottom_usd, width=0.9, color=COLORS.get(symbol), label=symbol)
        bottom_usd = [b + y for b, y in zip(bottom_usd, ys_usd, strict=True)]
    no_fill = Counter(math.floor(_event_minutes(data, e)) for e in events if int(e["closed_size"]) == 0)
    if no_fill:
        xs = sorted(no_fill)
        label = "calls that closed nothing (no bid within the bound)"
        ax.plot(xs, [no_fill[m] for m in xs], "kx", ms=6, label=label)
    for a in (ax, ax2):
        _shade_crash(a, data)
        a.set_xlim(lo, hi)
        a.legend(loc="upper right")
    ax.set_ylabel("liquidations per minute (count)")
    ax.set_title("Liquidations per minute of chain time (Liquidation events closing something), by market")
    ax2.set_ylabel("notional liquidated (USD millions / minute)")
    ax2.set_xlabel("minutes from the start of the crash")
    fig.tight_layout()
    return fig


def _events_by_symbol(data: Any, events: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    addresses = _get(data, "config").get("market_addresses", {})
    names = {str(a).lower(): s for s, a in addresses.items()}
    out: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for e in events:
        out[names.get(str(e.get("market", "")).lower(), "?")].append(e)
    return out


def _plot_insurance(plt: Any, data: Any) -> Any:
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4))
    t = _times(data)
    fund = [s["insurance_assets"] / 1e3 for s in _get(data, "steps")]
    covers = _get(data, "events").get("BadDebt", [])
    lo, hi = _zoom(data)
    for a, zoom in ((ax, False), (ax2, True)):
        x = t if zoom else [m / 60 for m in t]
        a.step(x, fund, where="post", color="tab:green", lw=1.6, label="insurance fund assets (end of step)")
        if covers and zoom:
            twin = a.twinx()
            twin.bar(
                [_event_minutes(data, e) for e in covers], [int(e["covered"]) / WAD / 1e3 for e in covers],
                width=0.8, color="tab:red", alpha=0.5, label="bad debt covered (right axis)",
            )  # fmt: skip
            twin.set_ylabel("bad debt covered per event (USD thousands)")
            twin.grid(False)
            twin.legend(loc="upper right")
        _shade_crash(a, data, hours=not zoom)
        if zoom:
            a.set_xlim(lo, hi)
        a.set_xlabel("minutes from the start of the crash" if zoom else "hours from the start of the crash")
        a.set_ylabel("USD thousands")
        a.set_title(
            "Insurance fund (ERC-4626 totalAssets)" + (" (the crash, zoomed)" if zoom else " (whole run)")
        )
        a.legend(loc="lower left")
    fig.tight_layout()
    return fig


def _plot_adl(plt: Any, data: Any) -> Any:
    fig, ax = plt.subplots(figsize=(12, 4))
    adls = _get(data, "events").get("AutoDeleverage", [])
    labels = _int_keys(_get(data, "labels"))
    lo, hi = _zoom(data)
    ax.set_xlim(lo, hi)
    _shade_crash(ax, data)
    if not adls:
        ax.text(
            0.5,
            0.5,
            "no ADL in this run: the insurance fund covered every bankrupt position",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    by_symbol = _events_by_symbol(data, adls)
    for symbol, evs in by_symbol.items():
        xs = [_event_minutes(data, e) for e in evs]
        ys = [int(e["size"]) * int(e["price"]) / WAD / WAD / 1e3 for e in evs]
        ax.scatter(xs, ys, s=40, color=COLORS.get(symbol, "k"), label=f"{symbol}", zorder=3)
        ax.vlines(xs, 0, ys, color=COLORS.get(symbol, "k"), lw=1)
        for x, y, e in zip(xs, ys, evs, strict=True):
            who = labels.get(int(e["account"]), "?").split(" (")[0]
            ax.annotate(
                f"#{e['account']} {who}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7
            )
    ax.set_ylim(bottom=0)
    ax.set_xlabel("minutes from the start of the crash")
    ax.set_ylabel("position deleveraged (USD thousands, at the bankruptcy price)")
    ax.set_title(
        "ADL events: bankrupt positions the insurance fund could not cover, closed against profitable opposite positions"
    )
    if adls:
        ax.legend(loc="upper right")
    return fig


# ---------------------------------------------------------------- markdown


def _money(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _pct(values: Mapping[str, float], unit: str) -> str:
    if not values:
        return "n/a"
    return ", ".join(f"{k} {v:g}{unit}" for k, v in values.items())


def _who(labels: Mapping[int, str], account: int) -> str:
    return f"#{account} {labels.get(account, '?')}"


def render_markdown(data: Any, numbers: Mapping[str, Any], plots: Mapping[str, Path]) -> str:
    labels = _int_keys(_get(data, "labels"))
    events = _get(data, "events")
    run = _get(data, "run")
    cfg = _get(data, "config")
    solvency = _get(data, "solvency")
    maker = maker_summary(data)
    n = numbers
    lines: list[str] = []
    add = lines.append
    mode = "quick" if run.get("quick") else "default"
    add(f"# vyperp under stress: simulation report (seed {run.get('seed')}, {mode} run)")
    add("")
    add(
        f"`python scripts/simulate.py --seed {run.get('seed')}{' --quick' if run.get('quick') else ''}` "
        f"({run.get('wall_s', '?')} s wall time): {run.get('steps')} steps, blocks {run.get('first_block')} to "
        f"{run.get('final_block')}, {n['traders']} traders and a market maker on 3 markets, the four keepers "
        "(`keeper run oracle|funding|liquidation|adl`) as processes. Every number below comes from the "
        "protocol's events and views; the same seed gives the same numbers."
    )
    add("")
    add("## What happened")
    add("")
    sched = cfg["schedule"]
    traders = _get(data, "traders")
    longs = sum(1 for t in traders if t["side"] > 0) / max(len(traders), 1)
    moves = ", ".join(
        f"{s} {m['drop_pct']:+.1f}% (worst step {m['worst_step_pct']:+.1f}% at {m['worst_at_min']:+.0f} min)"
        for s, m in crash_moves(data).items()
    )
    add(
        f"A calm period of {sched['calm_s'] / 3600:g} h: the crowd is long ({100 * longs:.0f}% of the traders), so "
        "the market maker ends up short and, doing the basis trade, lets the perp trade above the index: the "
        f"premium is positive and longs pay funding ({_apr_text(n['funding_apr_pct'])}). Then a crash modelled on "
        f"10 October 2025, {sched['crash_s'] // 60} minutes; the index from the start of the crash to its low: "
        f"{moves}. The maker pulls its liquidity as the index moves fast, so liquidations eat through a thin "
        f"book. Then a partial recovery ({sched['recovery_s'] // 60} minutes)."
    )
    add("")
    add(
        f"**{n['accounts_liquidated']} accounts were liquidated** ({n['liquidations_closing']} liquidations closing "
        f"{_money(n['notional_liquidated_usd'])} of positions; {n['liquidations_no_fill']} more calls closed nothing: "
        f"no bid within the bankruptcy bound"
        + (
            f"; {n['takeovers']} backstop takeovers took over {_money(n['takeover_notional_usd'])} "
            "the book could not absorb"
            if n["takeovers"]
            else ""
        )
        + f"). **Bad debt {_money(n['bad_debt_usd'])}** in {n['bad_debt_events']} "
        f"bankrupt accounts, **paid by the insurance fund** ({_money(n['bad_debt_covered_usd'])} covered, "
        f"{_money(n['bad_debt_uncovered_usd'])} uncovered). **{n['adl_events']} ADL events**: bankrupt positions "
        f"whose worst case exceeded what the fund could pay (deficits {_money(n['adl_deficit_usd'])}) were closed "
        "at their bankruptcy prices against profitable opposite positions, who absorbed those losses. "
        f"The solvency check {'holds to the wei' if n['solvency_holds'] else 'FAILS'}."
    )
    add("")
    add("## Key numbers")
    add("")
    add("| | |")
    add("| --- | --- |")
    rows = [
        ("accounts liquidated", f"{n['accounts_liquidated']} of {n['traders']} traders"),
        (
            "liquidation calls",
            f"{n['liquidation_calls']}: {n['liquidations_closing']} closed something ({n['liquidations_bankrupt']} of bankrupt accounts), {n['liquidations_no_fill']} closed nothing (no bid within the bound; retried)",
        ),
        (
            "backstop takeovers",
            f"{n['takeovers']}, {_money(n['takeover_notional_usd'])} at mark: positions the book could not absorb, taken over at mark -+ the takeover discount",
        ),
        (
            "notional liquidated",
            f"{_money(n['notional_liquidated_usd'])} (closed size x mark at each call); liquidation fees {_money(n['liquidation_fees_usd'])}",
        ),
        (
            "bad debt",
            f"{_money(n['bad_debt_usd'])} in {n['bad_debt_events']} accounts: {_money(n['bad_debt_covered_usd'])} paid by the insurance fund, {_money(n['bad_debt_uncovered_usd'])} uncovered",
        ),
        (
            "insurance fund",
            f"{_money(n['insurance_fund_start_usd'])} at the first step, {_money(n['insurance_fund_end_usd'])} at the end; drawdown {_money(n['insurance_fund_drawdown_usd'])} (from {_money(n['insurance_fund_peak_usd'])} to {_money(n['insurance_fund_trough_usd'])}); paid out {_money(n['insurance_fund_paid_usd'])}",
        ),
        (
            "ADL",
            f"{n['adl_events']} events, {_money(n['adl_notional_usd'])} of positions at bankruptcy prices, deficits {_money(n['adl_deficit_usd'])}; bankrupt: {_roles(n['adl_bankrupt_roles'])}; counterparties: {_roles(n['adl_counterparty_roles'])}",
        ),
        (
            "keeper latency (blocks)",
            _pct(n["latency_blocks"], "")
            + f" ({n['latency_samples']} accounts: first block with equity < MM to the block of their first liquidation)",
        ),
        ("keeper latency (seconds of chain time)", _pct(n["latency_seconds"], " s")),
        (
            "keeper reaction (to its first call)",
            f"{_pct(n['reaction_blocks'], ' blocks')}; {_pct(n['reaction_seconds'], ' s')} (becoming liquidatable "
            "to the first liquidation call, closing something or not)",
        ),
        (
            "funding",
            f"{n['funding_settlements']} settlements; APR {_apr_text(n['funding_apr_pct'])}; the maker received {_money(n['maker_funding_received_usd'])}",
        ),
        (
            "solvency (to the wei)",
            "holds" if n["solvency_holds"] else f"FAILS: difference {n['solvency_difference']}",
        ),
    ]
    for k, v in rows:
        add(f"| {k} | {v} |")
    add("")
    add("## Who took the losses")
    add("")
    bad_rows = [
        [
            str(e["block"]), f"{_event_minutes(data, e):+.0f}", _who(labels, int(e["account"])),
            _money(int(e["deficit"]) / WAD), _money(int(e["covered"]) / WAD), _money(int(e["uncovered"]) / WAD),
        ]
        for e in events.get("BadDebt", [])
    ]  # fmt: skip
    lines += _table(
        "### The insurance fund (bad debt it covered)",
        "",
        ["block", "min from crash", "account", "deficit", "paid by the fund", "uncovered"],
        bad_rows,
        "No bad debt: every liquidated account closed above its bankruptcy price.",
    )
    delev = events.get("Deleveraged", [])
    adl_rows = []
    for e in events.get("AutoDeleverage", []):
        cps = [d for d in delev if d["tx"] == e["tx"] and int(d["account"]) == int(e["account"])]
        adl_rows.append(
            [
                str(e["block"]), f"{_event_minutes(data, e):+.0f}", _who(labels, int(e["account"])),
                f"{int(e['size']) / WAD:g}", f"{int(e['price']) / WAD:,.2f}", _money(-int(e["equity_before"]) / WAD),
                "; ".join(f"{_who(labels, int(d['counterparty']))} ({int(d['size']) / WAD:g})" for d in cps),
            ]
        )  # fmt: skip
    lines += _table(
        "### ADL (losses beyond the fund, absorbed by the counterparties)",
        "When a bankrupt position's worst case (deficit + size x mark x bankrupt band) exceeds what the fund may "
        "pay (its payout cap), the fund pays nothing: the ADL keeper closes the position at its bankruptcy "
        "price against the opposite positions with the highest `adl_score` (profit % x leverage), so the "
        "counterparties give up the deficit out of their unrealized profit (PROTOCOL.md §11.2).",
        [
            "block",
            "min",
            "bankrupt account",
            "size",
            "bankruptcy price",
            "deficit absorbed",
            "counterparties (size taken)",
        ],
        adl_rows,
        "No ADL: the insurance fund could cover every bankrupt position.",
    )
    add("## Plots")
    add("")
    for name, title in PLOTS.items():
        if name in plots:
            add(f"### {title}")
            add("")
            add(f"![{title}]({plots[name].name})")
            add("")
    add("## Keepers")
    add("")
    add(
        "Each keeper is its own process (`keeper run <bot> --config keepers.yaml`, logs in `logs/`). They talk to "
        "the node through the simulation's gate, which holds each at the start of its round until the simulation "
        "mines the next block: every keeper reacts to every block, and only to whole blocks."
    )
    add("")
    add(
        "| keeper | rounds | transactions mined | reverted on-chain | log lines (level: count) | its own counters at exit |"
    )
    add("| --- | ---: | ---: | ---: | --- | --- |")
    keepers = _get(data, "keepers")
    outcomes = keepers.get("transactions", {})
    for bot, g in keepers.get("gate", {}).items():
        proc = keepers.get("processes", {}).get(bot, {})
        final = proc.get("final", {})
        names = (
            "pushes",
            "samples",
            "settles",
            "liquidations",
            "adls",
            "adl_handoffs",
            "failures",
            "skipped",
        )
        counters = ", ".join(f"{k} {final[k]}" for k in names if k in final)
        levels = ", ".join(f"{k}: {v}" for k, v in sorted(proc.get("levels", {}).items()))
        o = outcomes.get(bot, {})
        add(
            f"| {bot} | {g['rounds']} | {o.get('mined', g['transactions'])} | {len(o.get('reverted', []))} | {levels} | {counters} |"
        )
    add("")
    reverted = [(bot, r) for bot, o in outcomes.items() for r in o.get("reverted", [])]
    if reverted:
        reasons = Counter(f"{bot}: {r['reason']}" for bot, r in reverted)
        add(
            "Keeper transactions that reverted on-chain (their pre-flight passed on the previous block; an "
            "earlier transaction of the same block changed the state), with the reason `debug_traceTransaction` "
            "gives: " + "; ".join(f"{k} ({v})" for k, v in reasons.most_common()) + "."
        )
        add("")
    lat = latencies(data)
    if lat:
        add(
            f"Latency, from the block where an account's equity first fell below its maintenance margin to the "
            f"block of its first liquidation ({len(lat)} accounts): {_pct(n['latency_blocks'], ' blocks')}; in "
            f"chain time {_pct(n['latency_seconds'], ' s')}. The oracle's reports are mined one per block, the "
            "participants' orders in the next, and the keepers act in the block after: a price-driven liquidation "
            "takes at least two blocks; a longer one waited for a bid within its bankruptcy price."
        )
        add("")
    add("## The market maker's basis trade")
    add("")
    add(
        "| market | funding received | perp position at the end | off-chain hedge (spot) | hedge PnL | size lost to ADL |"
    )
    add("| --- | ---: | ---: | ---: | ---: | ---: |")
    for symbol, m in maker["markets"].items():
        add(
            f"| {symbol} | {_money(m['funding_received_usd'])} | {m['perp_size']:g} | {m['hedge_qty']:g} | "
            f"{_money(m['hedge_value_usd'])} | {m.get('adl_size', 0):g} |"
        )
    add("")
    add(
        f"Perp account PnL {_money(maker['perp_pnl_usd'])} (equity minus deposit, funding and fees included), hedge "
        f"PnL {_money(maker['hedge_pnl_usd'])}: net {_money(maker['perp_pnl_usd'] + maker['hedge_pnl_usd'])}. "
        "The hedge is re-balanced at the end of every step; an ADL that closes part of the short leaves the maker "
        "long spot until then (seed 001: a basis trader thought it was 100 short and 100 long, and is then 50 short)."
    )
    add("")
    add("## Solvency check")
    add("")
    if solvency:
        s = solvency
        wad2 = WAD * WAD
        add(
            f"At block {s['block']} ({s['accounts']} accounts, {s['positions']} open positions), in 10^-36 USD (WAD x WAD):"
        )
        add("")
        add("```")
        add(
            f"clearinghouse tokens x PRECISION x WAD   {s['token_clearinghouse'] * s['precision'] * WAD:>60,}"
        )
        add(f"+ recognized bad debt x WAD               {s['bad_debt'] * WAD:>60,}")
        add(
            f"= backing                                  {s['token_clearinghouse'] * s['precision'] * WAD + s['bad_debt'] * WAD:>60,}"
        )
        add(f"sum of cash x WAD                         {s['cash'] * WAD:>60,}")
        add(f"+ PnL of every position (-open notional)  {-s['open_notional'] * WAD:>60,}")
        add(f"- unsettled funding (U)                   {-s['unsettled_funding']:>60,}")
        add(f"+ funding dust not yet swept              {s['funding_dust']:>60,}")
        add(
            f"= claims of every account                 {(s['cash'] - s['open_notional']) * WAD - s['unsettled_funding'] + s['funding_dust']:>60,}"
        )
        add(f"backing - claims                           {s['difference']:>60,}")
        add("```")
        add("")
        add(
            f"Insurance fund: {s['token_insurance'] / 10 ** _decimals(data):,.2f} tokens held, "
            f"{s['insurance_assets'] / 10 ** _decimals(data):,.2f} booked (`total_assets_stored`): difference "
            f"{s['fund_difference']}. The token balances of the clearinghouse and the insurance fund "
            f"({(s['token_clearinghouse'] + s['token_insurance']) / 10 ** _decimals(data):,.6f}) equal every claim on them "
            f"(accounts' cash, PnL and funding; the fund's shareholders' assets) less the recognized bad debt: "
            f"**{'holds to the wei' if s['holds'] else 'FAILS'}** (the difference is {s['difference'] / wad2:g} USD)."
        )
    add("")
    lines += _run_section(data)
    add("## Reproduce")
    add("")
    add(
        f"    python scripts/simulate.py --seed {run.get('seed')}{' --quick' if run.get('quick') else ''}   # or: make demo"
    )
    add(
        "    python -m keeper.report out/data.json                     # rebuild this report from the run's data"
    )
    add("")
    add(
        "Files: `data.json` (everything collected), `summary.json` (the key numbers), `manifest.json` (the deployment), "
        "`keepers.yaml` (the keepers' config), `price_path.csv` (the path the oracle keeper replays), `logs/`."
    )
    return "\n".join(lines) + "\n"


def _run_section(data: Any) -> list[str]:
    """Where the wall time went and how many transactions each side sent (not reproducible: timing)."""
    run, steps = _get(data, "run"), _get(data, "steps")
    laps: dict[str, float] = defaultdict(float)
    for s in steps:
        for k, v in s.get("laps", {}).items():
            laps[k] += v
    sent = run.get("participant_txs", {})
    keepers = _get(data, "keepers").get("transactions", {})
    mined = sum(o.get("mined", 0) for o in keepers.values())
    blocks = int(run.get("final_block", 0)) - int(run.get("first_block", 0)) + 1
    out = ["## Run", ""]
    out.append(
        f"{run.get('wall_s', '?')} s of wall time; the steps took "
        + ", ".join(f"{k} {v:.1f} s" for k, v in laps.items())
        + f". {blocks} blocks; transactions: participants {sum(sent.values()):,} "
        f"({', '.join(f'{k} {v:,}' for k, v in sent.items())}), keepers {mined:,}; "
        f"{run.get('crowd_reverted', 0)} crowd orders reverted (e.g. below initial margin after a move)."
    )
    return [*out, ""]


def _table(
    title: str, intro: str, columns: Sequence[str], rows: Sequence[Sequence[str]], empty: str
) -> list[str]:
    """A markdown section: title, intro, then the table (numbers right-aligned), or `empty`."""
    out = [title, ""]
    if not rows:
        return [*out, empty, ""]
    if intro:
        out += [intro, ""]
    numeric = [all(_is_number(r[i]) for r in rows) for i in range(len(columns))]
    out.append("| " + " | ".join(columns) + " |")
    out.append("| " + " | ".join("---:" if n else "---" for n in numeric) + " |")
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return [*out, ""]


def _is_number(cell: str) -> bool:
    return cell.lstrip("+-$").replace(",", "").replace(".", "", 1).isdigit()


def _roles(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{v} {k}" for k, v in counts.items()) or "none"


def _apr_text(aprs: Mapping[str, Sequence[float]]) -> str:
    return ", ".join(f"{s} {lo:g}% to {hi:g}%" for s, (lo, hi) in aprs.items()) or "none settled"


def write_report(data: Any, out: str | Path) -> dict[str, Any]:
    """report.md, the plots and summary.json in `out`; returns the key numbers."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    numbers = key_numbers(data)
    plots = plot_all(data, out)
    (out / "report.md").write_text(render_markdown(data, numbers, plots))
    (out / "summary.json").write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n")
    return numbers


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m keeper.report out/data.json", file=sys.stderr)
        return 2
    path = Path(argv[0])
    numbers = write_report(json.loads(path.read_text()), path.parent)
    print(f"wrote {path.parent / 'report.md'}: {numbers['accounts_liquidated']} accounts liquidated")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "key_numbers",
    "latencies",
    "maker_summary",
    "percentile",
    "plot_all",
    "render_markdown",
    "write_report",
]
