"""The report's text: ``report.md`` from a run's data, its key numbers and its plots
(:func:`render_markdown`), one function per section."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from keeper.report.numbers import (
    WAD,
    _decimals,
    _event_minutes,
    _get,
    _int_keys,
    crash_moves,
    latencies,
    maker_summary,
)
from keeper.report.plots import PLOTS


def _money(x: float) -> str:
    return f"${x:,.0f}" if abs(x) >= 100 else f"${x:,.2f}"


def _pct(values: Mapping[str, float], unit: str) -> str:
    if not values:
        return "n/a"
    return ", ".join(f"{k} {v:g}{unit}" for k, v in values.items())


def _who(labels: Mapping[int, str], account: int) -> str:
    return f"#{account} {labels.get(account, '?')}"


def render_markdown(data: Any, numbers: Mapping[str, Any], plots: Mapping[str, Path]) -> str:
    n = numbers
    lines = [
        *_intro_section(data, n),
        *_what_happened_section(data, n),
        *_key_numbers_section(n),
        *_losses_section(data),
        *_plots_section(plots),
        *_keepers_section(data, n),
        *_maker_section(data),
        *_solvency_section(data),
        *_run_section(data),
        *_reproduce_section(data),
    ]
    return "\n".join(lines) + "\n"


def _intro_section(data: Any, n: Mapping[str, Any]) -> list[str]:
    """The title and how the run was made."""
    run = _get(data, "run")
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
    return lines


def _what_happened_section(data: Any, n: Mapping[str, Any]) -> list[str]:
    """The run's story: calm, crash, recovery, and what they cost."""
    cfg = _get(data, "config")
    lines: list[str] = []
    add = lines.append
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
    return lines


def _key_numbers_section(n: Mapping[str, Any]) -> list[str]:
    """The key numbers as a two-column table."""
    lines: list[str] = []
    add = lines.append
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
    return lines


def _losses_section(data: Any) -> list[str]:
    """Who took the losses: the bad debt the insurance fund covered, then ADL."""
    labels = _int_keys(_get(data, "labels"))
    events = _get(data, "events")
    lines: list[str] = []
    add = lines.append
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
    return lines


def _plots_section(plots: Mapping[str, Path]) -> list[str]:
    """Every plot written, in :data:`PLOTS` order."""
    lines: list[str] = []
    add = lines.append
    add("## Plots")
    add("")
    for name, title in PLOTS.items():
        if name in plots:
            add(f"### {title}")
            add("")
            add(f"![{title}]({plots[name].name})")
            add("")
    return lines


def _keepers_section(data: Any, n: Mapping[str, Any]) -> list[str]:
    """Each keeper's rounds, transactions, logs and counters; reverts; latency."""
    lines: list[str] = []
    add = lines.append
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
    return lines


def _maker_section(data: Any) -> list[str]:
    """The market maker's basis trade: funding, perp position, hedge."""
    maker = maker_summary(data)
    lines: list[str] = []
    add = lines.append
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
    return lines


def _solvency_section(data: Any) -> list[str]:
    """The solvency identity at the final block, term by term."""
    solvency = _get(data, "solvency")
    lines: list[str] = []
    add = lines.append
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
    return lines


def _reproduce_section(data: Any) -> list[str]:
    """The commands that reproduce the run and rebuild the report; the files."""
    run = _get(data, "run")
    lines: list[str] = []
    add = lines.append
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
    return lines


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


__all__ = ["render_markdown"]
