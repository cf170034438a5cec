"""The report's plots: one PNG per :data:`PLOTS` entry, from a run's data (:func:`plot_all`)."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from keeper.report.numbers import WAD, _event_minutes, _events_by_symbol, _get, _int_keys, _minutes

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


def _plot_mark_premium(ax: Any, data: Any, symbol: str, x: list) -> None:
    """Mark - index in basis points of the index, with the clamp (+- mark_band) the mark cannot leave."""
    index, mark = _series(data, symbol, "index"), _series(data, symbol, "mark")
    ax.plot(x, [(m - i) / i * 10_000 for i, m in zip(index, mark, strict=True)], color="tab:orange", lw=1.2)
    band = _get(data, "config").get("markets", {}).get(symbol, {}).get("mark_band")
    if band:
        for sign in (1, -1):
            ax.axhline(
                sign * band * 10_000,
                color="tab:red",
                lw=0.8,
                ls=":",
                label="+- mark_band" if sign > 0 else None,
            )
        ax.legend(loc="lower left")
    ax.axhline(0, color="tab:blue", lw=0.8)


def _plot_index_mark(plt: Any, data: Any) -> Any:
    symbols = _get(data, "symbols")
    fig, axes = plt.subplots(len(symbols), 2, figsize=(13, 3.1 * len(symbols)), squeeze=False)
    t = _times(data)
    lo, hi = _zoom(data)
    for row, symbol in enumerate(symbols):
        for col, (ax, zoom) in enumerate(zip(axes[row], (False, True), strict=True)):
            x = t if zoom else [m / 60 for m in t]
            if zoom:
                _plot_mark_premium(ax, data, symbol, x)
            else:
                ax.plot(
                    x, _series(data, symbol, "fair"), color="0.6", lw=1, label="spot (off-chain fair price)"
                )
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
            ax.set_ylabel("mark - index (bp)" if zoom else "price (USD)")
            what = "mark - index (the crash, zoomed)" if zoom else "index vs mark (whole run)"
            ax.set_title(f"{symbol}: {what}")
            if row == 0 and col == 0:
                ax.legend(loc="lower left")
    fig.suptitle(
        "Index (median of the oracle sources) and mark (median of best bid, best ask, last trade, clamped to "
        "index x (1 +- mark_band)), per market"
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


__all__ = ["COLORS", "PLOTS", "plot_all"]
