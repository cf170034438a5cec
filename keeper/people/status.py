"""`keeper status`: the exchange at one block, from a live chain.

`status` reads everything at one block (JSON-RPC batches of `eth_call`s pinned to
it): per market the index (valid, fresh sources / sources; when invalid the
newest report and its age), the mark, best bid and ask with their sizes, last
trade, open interest (base, and its notional at the mark), the funding rate as
APR (the last settled one with its rate per interval, the predicted one, the
running interval's mean premium and the next settlement); the insurance fund's
assets, payout cap and what it could pay for one bad-debt event now; the
clearinghouse's unabsorbed bad debt; and with ``--account`` that account's
positions (size, entry, mark, notional, unrealized PnL, funding owed, resting
orders), cash, equity, IM, MM, withdrawable, leverage and health state:
``bankrupt`` (equity < 0), ``liquidatable`` (equity < MM) or ``healthy``, read
from the clearinghouse's ``margin``/``cash`` and the markets' ``position`` views.
``--json`` prints the same snapshot as JSON, every amount an exact decimal
string. Exit codes: 0; 1 when the account's margin could not be read (a market
it trades has no valid index: everything else is printed, with a note); 2 for
errors (unreachable node, bad manifest, unknown account, ...).

Layout: data (the :class:`Status` snapshot and its parts), formatting (:func:`format_status`),
then the chain reads (:func:`read_status`)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, localcontext
from typing import Any, Literal

from keeper.people.common import Chain, Health, PeopleError, health_state, num
from keeper.units import fmt, format_duration, from_wad


def exact(d: Decimal) -> Decimal:
    """A derived ratio (leverage, a mean) to 18 decimals, as precise as the chain's WAD values."""
    with localcontext() as ctx:
        ctx.prec = 100
        return d.quantize(Decimal(1).scaleb(-18))


# ================================================================ status: data


@dataclass
class FundingStatus:
    interval_s: int
    last_rate: Decimal  # per interval, fraction
    last_apr: Decimal  # fraction per year (simple)
    predicted_rate: Decimal | None  # None: the index is invalid
    predicted_apr: Decimal | None
    current_premium: Decimal | None  # mean of the running interval's samples; None before the first
    samples: int
    next_funding_time: int
    next_funding_in_s: int  # from the block's time; <= 0: due


@dataclass
class MarketStatus:
    symbol: str
    address: str
    index: Decimal | None  # None when the oracle has no price
    index_valid: bool
    # fresh with a quorum, yet invalid: the oracle's guard holds a move back (PROTOCOL.md §4)
    index_held: bool
    index_median: Decimal | None  # the fresh sources' median, valid or not
    index_fresh_sources: int
    index_sources: int
    index_quorum: int
    last_report: Decimal | None  # the newest source's price and its age (s): what a stale index last was
    last_report_age_s: int | None
    mark: Decimal | None  # None when the index is invalid
    best_bid: Decimal | None
    best_ask: Decimal | None
    bid_size: Decimal | None
    ask_size: Decimal | None
    last_trade: Decimal | None
    open_interest: Decimal  # base units, one side
    open_interest_notional: Decimal | None  # at the mark
    tick_size: Decimal
    lot_size: Decimal
    funding: FundingStatus | None


@dataclass
class InsuranceStatus:
    address: str
    total_assets: Decimal  # collateral units (ERC-4626 totalAssets)
    payout_cap: Decimal  # fraction of its assets per bad-debt event
    capacity: Decimal  # the most it pays for one bad-debt event now


@dataclass
class PositionStatus:
    market: str
    side: Literal["long", "short", "flat"]
    size: Decimal  # signed, base units
    entry_price: Decimal
    mark: Decimal
    notional: Decimal  # |size| x mark
    unrealized_pnl: Decimal
    funding_owed: Decimal  # + the account pays, - it receives
    open_orders: int


@dataclass
class AccountStatus:
    owner: str
    subaccount: int
    account: int
    cash: Decimal
    equity: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    withdrawable: Decimal
    health: Health
    leverage: Decimal | None  # total notional / equity; None when equity <= 0
    positions: list[PositionStatus] = field(default_factory=list)


@dataclass
class Status:
    chain_id: int
    block: int
    timestamp: int
    clearinghouse: str
    collateral: str  # symbol
    markets: dict[str, MarketStatus]
    insurance_fund: InsuranceStatus | None
    bad_debt: Decimal
    account: AccountStatus | None = None
    problems: list[str] = field(default_factory=list)  # reads that reverted (e.g. a stale index)


def status_json(s: Status) -> str:
    """The snapshot as JSON; amounts are exact decimal strings, missing values null."""

    def enc(x: Any) -> Any:
        if isinstance(x, Decimal):
            return fmt(x)
        if isinstance(x, dict):
            return {k: enc(v) for k, v in x.items()}
        if isinstance(x, list):
            return [enc(v) for v in x]
        return x

    return json.dumps(enc(asdict(s)), indent=2)


# ================================================================ status: formatting


def utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def pct(d: Decimal | None, places: int = 2) -> str:
    return "-" if d is None else f"{num(d * 100, places)}%"


def eta(seconds: int) -> str:
    """Seconds from now as "in 41m 20s", "due now" or "due 5s ago"."""
    if seconds == 0:
        return "due now"
    s = abs(seconds)
    text = " ".join(f"{n}{u}" for n, u in ((s // 3600, "h"), (s % 3600 // 60, "m"), (s % 60, "s")) if n)
    return f"in {text}" if seconds > 0 else f"due {text} ago"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned first column, right-aligned numbers, two spaces apart."""
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]

    def line(r: Sequence[str]) -> str:
        cells = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        return "  ".join(cells).rstrip()

    return [line(header), *(line(r) for r in rows)]


def format_status(s: Status) -> str:
    out = [
        f"vyperp on chain {s.chain_id} at block {s.block} ({utc(s.timestamp)}), clearinghouse {s.clearinghouse}",
        "",
    ]
    rows = []
    for m in s.markets.values():
        fresh = f"{m.index_fresh_sources}/{m.index_sources}"
        if m.index_valid:
            index = f"{num(m.index)} ok {fresh}"
        elif m.index_held:
            index = f"HELD {num(m.index_median)} {fresh}: moved too fast (guard)"
        elif m.last_report is None:
            index = f"INVALID {fresh}, never reported"
        else:
            index = f"INVALID {fresh}, last {num(m.last_report)} {m.last_report_age_s}s ago"
        rows.append([
            m.symbol,
            index,
            num(m.mark),
            "-" if m.best_bid is None else f"{num(m.best_bid)} x {num(m.bid_size)}",
            "-" if m.best_ask is None else f"{num(m.best_ask)} x {num(m.ask_size)}",
            f"{num(m.open_interest)} ({num(m.open_interest_notional, 2)})",
        ])  # fmt: skip
    out += table(
        [
            "MARKET",
            "INDEX (fresh/sources)",
            "MARK",
            "BID x SIZE",
            "ASK x SIZE",
            f"OPEN INTEREST ({s.collateral})",
        ],
        rows,
    )
    out.append("")
    rows = []
    for m in s.markets.values():
        f = m.funding
        if f is None:
            rows.append([m.symbol, "-", "-", "-", "-"])
            continue
        premium = "-" if f.current_premium is None else f"{pct(f.current_premium, 4)} ({f.samples} samples)"
        rows.append([
            m.symbol,
            f"{pct(f.last_apr)} ({pct(f.last_rate, 4)}/{format_duration(f.interval_s)})",
            pct(f.predicted_apr),
            premium,
            eta(f.next_funding_in_s),
        ])  # fmt: skip
    out += table(
        ["FUNDING", "LAST APR (per interval)", "PREDICTED APR", "PREMIUM NOW", "NEXT SETTLEMENT"], rows
    )
    out.append("")
    if s.insurance_fund is not None:
        i = s.insurance_fund
        out.append(
            f"insurance fund {i.address}: {num(i.total_assets)} {s.collateral}, payout cap {pct(i.payout_cap)}"
            f" per bad-debt event (pays up to {num(i.capacity, 2)} {s.collateral} now)"
        )
    out.append(f"bad debt (absorbed by neither the fund nor ADL): {num(s.bad_debt)} {s.collateral}")
    if s.account is not None:
        out += ["", *format_account(s.account, s.collateral)]
    for p in s.problems:
        out.append(f"note: {p}")
    return "\n".join(out)


def format_account(a: AccountStatus, collateral: str) -> list[str]:
    lev = "" if a.leverage is None else f", leverage {num(a.leverage, 2)}x"
    out = [
        f"account {a.owner} subaccount {a.subaccount} (#{a.account}): {a.health.upper()}",
        f"  cash {num(a.cash)}  equity {num(a.equity)}  IM {num(a.initial_margin)}  MM {num(a.maintenance_margin)}"
        f"  withdrawable {num(a.withdrawable)} {collateral}{lev}",
    ]
    if not a.positions:
        return [*out, "  no positions"]
    rows = [
        [p.market, p.side, num(abs(p.size)), num(p.entry_price), num(p.mark), num(p.notional, 2),
         num(p.unrealized_pnl), num(p.funding_owed), str(p.open_orders)]
        for p in a.positions
    ]  # fmt: skip
    header = [
        "POSITION",
        "SIDE",
        "SIZE",
        "ENTRY",
        "MARK",
        "NOTIONAL",
        "UNREALIZED PNL",
        "FUNDING OWED",
        "ORDERS",
    ]
    return [*out, *("  " + line for line in table(header, rows))]


# ================================================================ chain


class _Reads:
    """Queue view calls, run them as one JSON-RPC batch pinned to a block, then read results by key."""

    def __init__(self, w3: Any, block: int):
        self.w3, self.block = w3, block
        self._keys: list[str] = []
        self._fns: list[Any] = []
        self.results: dict[str, Any] = {}

    def add(self, key: str, fn: Any) -> None:
        self._keys.append(key)
        self._fns.append(fn)

    def run(self) -> _Reads:
        from keeper.bots.scan import batch_call

        self.results.update(zip(self._keys, batch_call(self.w3, self._fns, self.block), strict=True))
        self._keys, self._fns = [], []
        return self

    def failed(self, key: str) -> str | None:
        from keeper.bots.scan import CallFailed

        r = self.results[key]
        return r.reason if isinstance(r, CallFailed) else None

    def __getitem__(self, key: str) -> Any:
        reason = self.failed(key)
        if reason is not None:
            raise PeopleError(f"reading {key} failed at block {self.block}: {reason}")
        return self.results[key]


def read_status(chain: Chain, account: tuple[str, int] | None = None) -> Status:
    """Everything `keeper status` shows, read at the latest block."""
    w3 = chain.w3
    head = w3.eth.get_block("latest")
    block, now = int(head["number"]), int(head["timestamp"])
    r = _protocol_reads(chain, block, account).run()
    status = Status(
        chain_id=int(w3.eth.chain_id),
        block=block,
        timestamp=now,
        clearinghouse=chain.clearinghouse.address,
        collateral=chain.collateral_symbol,
        markets={},
        insurance_fund=None,
        bad_debt=from_wad(r["bad_debt"]),
    )
    r2, account_id = _dependent_reads(chain, block, r, account)
    r2.run()
    for s, m in chain.markets.items():
        status.markets[s] = _market_status(s, m.address, r, r2, now)
        if status.markets[s].funding is not None and status.markets[s].funding.predicted_apr is None:
            status.problems.append(f"{s}: no predicted funding rate: {r.failed(f'{s}.predicted')}")
    if chain.insurance_fund is not None:
        status.insurance_fund = InsuranceStatus(
            chain.insurance_fund.address,
            Decimal(r["fund.assets"]).scaleb(-chain.collateral_decimals),
            from_wad(r["fund.cap"]),
            from_wad(r["fund.capacity"]),
        )
    if account is not None:
        reason = r2.failed("margin")
        if reason is None:
            status.account = _account_status(chain, account, account_id, r2)
        else:  # a market of the account has no valid index: show the rest
            status.problems.append(
                f"account {account[0]} subaccount {account[1]}: margin unreadable: {reason}"
            )
    return status


def _protocol_reads(chain: Chain, block: int, account: tuple[str, int] | None) -> _Reads:
    """First round (not yet run): the clearinghouse, the insurance fund, every market with its
    oracle and funding rate, and the account's id when one is asked for."""
    r = _Reads(chain.w3, block)
    ch = chain.clearinghouse
    r.add("bad_debt", ch.functions.bad_debt())
    if chain.insurance_fund is not None:
        r.add("fund.assets", chain.insurance_fund.functions.totalAssets())
        r.add("fund.cap", chain.insurance_fund.functions.payout_cap())
        r.add("fund.capacity", chain.liquidation_engine.functions.insurance_capacity())
    for s, m in chain.markets.items():
        o = chain.oracles[s]
        r.add(f"{s}.summary", chain.lens.functions.market_summary(m.address, 1))
        r.add(f"{s}.tick", m.functions.TICK_SIZE())
        r.add(f"{s}.lot", m.functions.LOT_SIZE())
        r.add(f"{s}.index_status", o.functions.index_status())
        r.add(f"{s}.sources", o.functions.source_count())
        r.add(f"{s}.quorum", o.functions.quorum())
        if s in chain.fundings:
            f = chain.fundings[s]
            r.add(f"{s}.params", f.functions.params())
            r.add(f"{s}.last_rate", f.functions.last_rate())
            r.add(f"{s}.last_apr", f.functions.funding_apr())
            r.add(f"{s}.predicted", f.functions.predicted_rate())
            r.add(f"{s}.samples", f.functions.sample_count())
            r.add(f"{s}.premium_sum", f.functions.premium_sum())
            r.add(f"{s}.next", f.functions.next_funding_time())
    if account is not None:
        r.add("account", ch.functions.account_of(*account))
    return r


def _dependent_reads(
    chain: Chain, block: int, r: _Reads, account: tuple[str, int] | None
) -> tuple[_Reads, int]:
    """Second round (not yet run) on the first's results, and the account id (0 without an
    account): the predicted rates as APR, each oracle's sources, the account's margin and
    positions (the views Lens.account_summary is made of, here in the same batch at the block).
    A PeopleError when the account has never deposited."""
    r2 = _Reads(chain.w3, block)
    for s in chain.fundings:
        if r.failed(f"{s}.predicted") is None:
            r2.add(f"{s}.predicted_apr", chain.fundings[s].functions.rate_apr(r[f"{s}.predicted"]))
    for s, o in chain.oracles.items():
        for i in range(int(r[f"{s}.sources"])):
            r2.add(f"{s}.source{i}", o.functions.source(i))
    if account is None:
        return r2, 0
    ch = chain.clearinghouse
    account_id = int(r["account"])
    if account_id == 0:
        raise PeopleError(
            f"no account {account[0]} subaccount {account[1]} at the clearinghouse {ch.address}"
            " (it has never deposited)"
        )
    r2.add("cash", ch.functions.cash(account_id))
    r2.add("margin", ch.functions.margin(account_id))
    for s, m in chain.markets.items():
        r2.add(f"{s}.position", m.functions.position(account_id))
    return r2, account_id


def _market_status(s: str, address: str, r: _Reads, r2: _Reads, now: int) -> MarketStatus:
    index, valid, mark, bid, ask, last, oi, bids, asks = r[f"{s}.summary"]
    funding = None
    if f"{s}.params" in r.results:
        interval, nxt, samples = int(r[f"{s}.params"][0]), int(r[f"{s}.next"]), int(r[f"{s}.samples"])
        funding = FundingStatus(
            interval_s=interval,
            last_rate=from_wad(r[f"{s}.last_rate"]),
            last_apr=from_wad(r[f"{s}.last_apr"]),
            predicted_rate=None if r.failed(f"{s}.predicted") else from_wad(r[f"{s}.predicted"]),
            predicted_apr=from_wad(r2[f"{s}.predicted_apr"]) if f"{s}.predicted_apr" in r2.results else None,
            current_premium=exact(from_wad(r[f"{s}.premium_sum"]) / samples) if samples else None,
            samples=samples,
            next_funding_time=nxt,
            next_funding_in_s=nxt - now,
        )
    mark_d = from_wad(mark) if valid else None
    reports = [r2[f"{s}.source{i}"][2:] for i in range(int(r[f"{s}.sources"]))]
    newest = max((x for x in reports if x[1] > 0), key=lambda x: x[1], default=None)
    return MarketStatus(
        symbol=s,
        address=address,
        index=from_wad(index) if index else None,
        index_valid=bool(valid),
        index_held=not valid and 0 < int(r[f"{s}.index_status"][2]) >= int(r[f"{s}.quorum"]),
        index_median=from_wad(r[f"{s}.index_status"][1]) if r[f"{s}.index_status"][1] else None,
        index_fresh_sources=int(r[f"{s}.index_status"][2]),
        last_report=from_wad(newest[0]) if newest else None,
        last_report_age_s=now - newest[1] if newest else None,
        index_sources=int(r[f"{s}.sources"]),
        index_quorum=int(r[f"{s}.quorum"]),
        mark=mark_d,
        best_bid=from_wad(bid) if bid else None,
        best_ask=from_wad(ask) if ask else None,
        bid_size=from_wad(bids[0][1]) if bids else None,
        ask_size=from_wad(asks[0][1]) if asks else None,
        last_trade=from_wad(last) if last else None,
        open_interest=from_wad(oi),
        open_interest_notional=from_wad(oi) * mark_d if mark_d is not None else None,
        tick_size=from_wad(r[f"{s}.tick"]),
        lot_size=from_wad(r[f"{s}.lot"]),
        funding=funding,
    )


def _account_status(chain: Chain, account: tuple[str, int], account_id: int, r: _Reads) -> AccountStatus:
    equity, im, mm, withdrawable = r["margin"]
    rows = []
    total = Decimal(0)
    for s in chain.markets:
        size, _open_notional, entry, mark, upnl, owed, orders = r[f"{s}.position"]
        if size == 0 and orders == 0:
            continue
        notional = abs(from_wad(size)) * from_wad(mark)
        total += notional
        rows.append(PositionStatus(
            market=s,
            side="long" if size > 0 else "short" if size < 0 else "flat",
            size=from_wad(size),
            entry_price=from_wad(entry),
            mark=from_wad(mark),
            notional=notional,
            unrealized_pnl=from_wad(upnl),
            funding_owed=from_wad(owed),
            open_orders=int(orders),
        ))  # fmt: skip
    eq = from_wad(equity)
    return AccountStatus(
        owner=account[0],
        subaccount=account[1],
        account=account_id,
        cash=from_wad(r["cash"]),
        equity=eq,
        initial_margin=from_wad(im),
        maintenance_margin=from_wad(mm),
        withdrawable=from_wad(withdrawable),
        health=health_state(equity, mm),
        leverage=exact(total / eq) if eq > 0 and total > 0 else None,
        positions=rows,
    )


__all__ = [
    "AccountStatus",
    "MarketStatus",
    "Status",
    "eta",
    "format_status",
    "read_status",
    "status_json",
]
