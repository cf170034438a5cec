"""`keeper status` and `keeper trade`: the exchange from a live chain, for people.

    keeper status [--account ADDRESS [--subaccount N]] [--json] [--rpc URL] [--manifest PATH] [--config FILE]
    keeper trade place --market SYMBOL --side buy|sell --size SIZE [--price PRICE]
                       [--type gtc|post-only|ioc|market] [--reduce-only] [--subaccount N] [--key KEY]
                       [--rpc URL] [--manifest PATH] [--config FILE]
    keeper trade cancel --market SYMBOL --order ID [--subaccount N] [--key KEY] [--rpc URL] [--manifest PATH]
    keeper trade cancel-all --market SYMBOL [--subaccount N] [--key KEY] [--rpc URL] [--manifest PATH]

The node and the manifest come from the keeper settings (``--rpc``, ``--manifest``,
``$VYPERP_RPC_URL``, ``$VYPERP_MANIFEST``, ``--config FILE``), as for ``keeper run``.

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

`trade` sends from the key in ``--key`` or ``$VYPERP_TRADER_KEY`` (prefer the
variable: a command line is visible to other users of the machine). Sizes and
prices are human decimals (``0.1``, ``86000.5``), checked against the market's
lot and tick size before anything is sent; every transaction is simulated first
(`eth_call`), so a revert prints the contract's reason and sends nothing.
``--type`` defaults to ``gtc`` with ``--price`` and to ``market`` without: a
market order is an IOC whose limit is the mark x (1 +- 50%) rounded inwards to
the tick (the scenario runner's rule); ``market`` with ``--price`` uses that
price as the limit.

Layout: pure helpers (units, order checks, formatting), chain reads
(:func:`read_status`), trading (:func:`place`, :func:`cancel`,
:func:`cancel_all`), then the CLI glue (:func:`add_people_commands`, registered
in ``keeper.cli.COMMANDS``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any, Literal

from keeper.cli import CliError
from keeper.scenario import (
    MARKET_SLIPPAGE,
    REMOVED_REASONS,
    cancelled_rest,
    fmt,
    format_duration,
    from_wad,
    to_units,
)

WAD = 10**18
TRADER_KEY_ENV = "VYPERP_TRADER_KEY"
# the CLI's order types -> Clearinghouse.place_order's order_type
ORDER_TYPES = {"gtc": 0, "post-only": 1, "ioc": 2, "market": 2}
SIDES = ("buy", "sell")
Health = Literal["healthy", "liquidatable", "bankrupt"]

_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


class PeopleError(CliError):
    """A user-facing problem of `status` / `trade` (the CLI prints it as `keeper: error: ...`)."""


# ================================================================ pure helpers


def parse_amount(text: str | int | Decimal, what: str) -> Decimal:
    """A positive human decimal ("0.1", "86_000", 5)."""
    try:
        d = Decimal(str(text).strip().replace("_", ""))
    except InvalidOperation:
        raise PeopleError(f"{what} {text!r} is not a decimal number") from None
    if not d.is_finite() or d <= 0:
        raise PeopleError(f"{what} must be a positive number, got {text}")
    return d


def on_grid(value: Decimal, step: int, what: str, symbol: str, step_name: str) -> int:
    """`value` as WAD, refused unless a whole multiple of `step` (WAD): the market's lot or tick."""
    try:
        wad = to_units(value, 18)
    except ValueError:
        wad = None
    if wad is None or wad % step != 0:
        below = int(value.scaleb(18)) // step * step
        hints = [fmt(from_wad(x)) for x in (below, below + step) if x > 0]
        raise PeopleError(
            f"{what} {fmt(value)} is not a multiple of {symbol}'s {step_name} {fmt(from_wad(step))}"
            f" (nearest: {' or '.join(hints)})"
        )
    return wad


def market_limit(mark: int, tick: int, is_buy: bool) -> int:
    """The limit of a market order: mark x (1 +- 50%), on the tick grid, rounded inwards."""
    slip = to_units(MARKET_SLIPPAGE, 18)
    if is_buy:
        return max(mark * (WAD + slip) // WAD // tick * tick, tick)
    return max(-(-(mark * (WAD - slip) // WAD) // tick) * tick, tick)


@dataclass(frozen=True)
class OrderArgs:
    """Clearinghouse.place_order's arguments after the client-side checks (WAD, on the grid)."""

    is_buy: bool
    size: int
    price: int | None  # None: a market order, limit from the mark
    order_type: int
    reduce_only: bool


def order_args(
    side: str,
    size: str | int | Decimal,
    price: str | int | Decimal | None,
    order_type: str | None,
    *,
    tick: int,
    lot: int,
    symbol: str,
    reduce_only: bool = False,
) -> OrderArgs:
    """Check and convert an order given in human units; raises PeopleError naming the problem."""
    if side not in SIDES:
        raise PeopleError(f"side must be buy or sell, not {side!r}")
    kind = order_type or ("gtc" if price is not None else "market")
    if kind not in ORDER_TYPES:
        raise PeopleError(f"order type must be one of {', '.join(ORDER_TYPES)}, not {kind!r}")
    if price is None and kind != "market":
        raise PeopleError(f"{kind} orders need a price (or use type market)")
    wad_size = on_grid(parse_amount(size, "size"), lot, "size", symbol, "lot size")
    wad_price = (
        None if price is None else on_grid(parse_amount(price, "price"), tick, "price", symbol, "tick size")
    )
    return OrderArgs(side == "buy", wad_size, wad_price, ORDER_TYPES[kind], reduce_only)


def exact(d: Decimal) -> Decimal:
    """A derived ratio (leverage, a mean) to 18 decimals, as precise as the chain's WAD values."""
    with localcontext() as ctx:
        ctx.prec = 100
        return d.quantize(Decimal(1).scaleb(-18))


def health_state(equity: int, maintenance_margin: int) -> Health:
    if equity < 0:
        return "bankrupt"
    if equity < maintenance_margin:
        return "liquidatable"
    return "healthy"


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


def num(d: Decimal | None, places: int = 6) -> str:
    """A human number: thousands separators, at most `places` decimals, no trailing zeros."""
    if d is None:
        return "-"
    with localcontext() as ctx:
        ctx.prec = 100
        text = f"{d.quantize(Decimal(1).scaleb(-places)):,f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


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


@dataclass
class Chain:
    """The contracts of one deployment, from its manifest, on a connected node."""

    w3: Any
    clearinghouse: Any
    liquidation_engine: Any  # insurance_capacity
    lens: Any  # market_summary, find_hint, order, orders_of
    markets: dict[str, Any]  # symbol -> PerpMarket
    oracles: dict[str, Any]
    fundings: dict[str, Any]
    insurance_fund: Any | None
    collateral_symbol: str
    collateral_decimals: int

    def market(self, symbol: str) -> Any:
        if symbol not in self.markets:
            known = ", ".join(self.markets) or "none"
            raise PeopleError(f"unknown market {symbol!r}: this deployment has {known}")
        return self.markets[symbol]


def check_reachable(rpc_url: str, timeout_s: float = 3.0) -> None:
    """One `eth_chainId`, no retries: a person waiting at a prompt wants to know now."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    req = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            json.loads(resp.read())
    except (OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise PeopleError(f"cannot reach the node at {rpc_url}: {reason}") from None


def connect_chain(ctx: Any) -> Chain:
    """Contracts of `ctx.manifest` on `ctx.w3` (a keeper.cli.RunContext), checked to exist."""
    check_reachable(ctx.settings.rpc_url)
    manifest = ctx.manifest
    ch = ctx.clearinghouse()  # a CliError when the manifest has none
    w3 = ctx.w3
    if not w3.eth.get_code(ch.address):
        raise PeopleError(
            f"no contract at the clearinghouse {manifest.clearinghouse} on chain {manifest.chain_id}: the manifest "
            f"{ctx.settings.manifest} is from another deployment (a restarted node?); redeploy or pass --manifest"
        )
    engine, lens = ctx.liquidation_engine(), ctx.lens()
    markets, oracles, fundings = {}, {}, {}
    for symbol, info in manifest.markets.items():
        if not info.market:
            continue
        markets[symbol] = ctx.contract("PerpMarket", info.market)
        oracles[symbol] = ctx.contract("IndexOracle", info.oracle)
        if info.funding:
            fundings[symbol] = ctx.contract("FundingRate", info.funding)
    collateral = manifest.collateral
    return Chain(
        w3,
        ch,
        engine,
        lens,
        markets,
        oracles,
        fundings,
        ctx.protocol_contract("insurance_fund") if manifest.insurance_fund else None,
        collateral.symbol if collateral and collateral.symbol else "USD",
        collateral.decimals if collateral else 18,
    )


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
        from keeper.bots.liquidation import batch_call

        self.results.update(zip(self._keys, batch_call(self.w3, self._fns, self.block), strict=True))
        self._keys, self._fns = [], []
        return self

    def failed(self, key: str) -> str | None:
        from keeper.bots.liquidation import CallFailed

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
    r = _Reads(w3, block)
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
    r.run()
    status = Status(
        chain_id=int(w3.eth.chain_id),
        block=block,
        timestamp=now,
        clearinghouse=ch.address,
        collateral=chain.collateral_symbol,
        markets={},
        insurance_fund=None,
        bad_debt=from_wad(r["bad_debt"]),
    )
    # second round, on the first's results: the predicted rates as APR and the account's margin
    # and positions (the views Lens.account_summary is made of, here in the same batch at the block)
    r2 = _Reads(w3, block)
    for s in chain.fundings:
        if r.failed(f"{s}.predicted") is None:
            r2.add(f"{s}.predicted_apr", chain.fundings[s].functions.rate_apr(r[f"{s}.predicted"]))
    for s, o in chain.oracles.items():
        for i in range(int(r[f"{s}.sources"])):
            r2.add(f"{s}.source{i}", o.functions.source(i))
    account_id = 0
    if account is not None:
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


# ================================================================ trading


def _send(client: Any, fn: Any, what: str) -> Any:
    """Simulate, send and wait; a revert becomes a PeopleError with the contract's reason."""
    from keeper.chain import TxError, TxReverted
    from keeper.scenario import _quiet_chain_logs

    with _quiet_chain_logs(False):  # the client warns about the revert; the error below says it
        try:
            return client.send(fn)
        except TxReverted as exc:
            where = f"in tx {exc.tx_hash.to_0x_hex()}" if exc.tx_hash else "(simulated, nothing sent)"
            raise PeopleError(f"{what} reverted {where}: {exc.reason or '(no reason)'}") from None
        except TxError as exc:
            raise PeopleError(f"{what} failed: {exc}") from None


def _read(fn: Any, what: str) -> Any:
    from web3.exceptions import ContractLogicError, Web3RPCError

    from keeper.chain import call_with_retry, revert_reason

    try:
        return call_with_retry(fn)
    except (ContractLogicError, Web3RPCError) as exc:
        raise PeopleError(f"{what} reverted: {revert_reason(exc)}") from None


def _events(contract: Any, name: str, receipt: Any) -> list[Any]:
    from web3.logs import DISCARD

    return [
        e["args"]
        for e in getattr(contract.events, name)().process_receipt(receipt, errors=DISCARD)
        if e["address"] == contract.address
    ]


def _account_id(chain: Chain, owner: str, subaccount: int) -> int:
    account = int(_read(chain.clearinghouse.functions.account_of(owner, subaccount), "account_of"))
    if account == 0:
        raise PeopleError(
            f"{owner} has no subaccount {subaccount} at the clearinghouse {chain.clearinghouse.address}:"
            " deposit collateral first"
        )
    return account


def _tx_line(what: str, receipt: Any) -> str:
    return (
        f"{what}: tx {receipt['transactionHash'].to_0x_hex()} in block {receipt['blockNumber']},"
        f" gas used {receipt['gasUsed']:,}"
    )


def _position_lines(chain: Chain, symbol: str, account: int) -> list[str]:
    mkt = chain.market(symbol)
    size, _on, entry, mark, upnl, owed, orders = _read(mkt.functions.position(account), "position")
    if size == 0:
        pos = f"position {symbol}: flat"
    else:
        side = "long" if size > 0 else "short"
        pos = (
            f"position {symbol}: {side} {num(abs(from_wad(size)))} @ {num(from_wad(entry))}, mark {num(from_wad(mark))},"
            f" unrealized PnL {num(from_wad(upnl))}, funding owed {num(from_wad(owed))}"
        )
    equity, im, mm, free = _read(chain.clearinghouse.functions.margin(account), "margin")
    c = chain.collateral_symbol
    return [
        f"{pos}; {orders} resting order{'s' * (orders != 1)}",
        f"account #{account}: equity {num(from_wad(equity))} {c}, IM {num(from_wad(im))}, MM {num(from_wad(mm))},"
        f" withdrawable {num(from_wad(free))}; {health_state(equity, mm)}",
    ]


def place(chain: Chain, client: Any, symbol: str, order: OrderArgs, subaccount: int = 0) -> list[str]:
    """Place an order (checked by :func:`order_args`); the report's lines."""
    mkt = chain.market(symbol)
    account = _account_id(chain, client.address, subaccount)
    price = order.price
    if price is None:
        mark = _read(mkt.functions.mark_price(), f"{symbol} mark_price")
        price = market_limit(mark, _read(mkt.functions.TICK_SIZE(), "TICK_SIZE"), order.is_buy)
    hint = _read(chain.lens.functions.find_hint(mkt.address, order.is_buy, price), "find_hint")
    fn = chain.clearinghouse.functions.place_order(
        client.address, subaccount, mkt.address, order.is_buy, order.size, price, order.order_type,
        order.reduce_only, hint,
    )  # fmt: skip
    kind = next(k for k, v in ORDER_TYPES.items() if v == order.order_type)
    at = (
        f"at market (limit {fmt(from_wad(price))})"
        if order.price is None
        else f"@ {fmt(from_wad(price))} ({kind})"
    )
    what = (
        f"place {'buy' if order.is_buy else 'sell'} {fmt(from_wad(order.size))} {symbol} {at}"
        f"{' reduce-only' if order.reduce_only else ''}"
    )
    receipt = _send(client, fn, what)
    lines = [_tx_line(what, receipt)]
    fills = [f for f in _events(mkt, "Fill", receipt) if f["taker"] == account]
    if fills:
        filled = sum(f["size"] for f in fills)
        avg = Decimal(sum(f["size"] * f["price"] for f in fills)) / filled / WAD
        fee = sum(e["fee_paid"] for e in _events(mkt, "PositionChanged", receipt) if e["account"] == account)
        lines.append(
            f"filled {num(from_wad(filled))} @ {num(avg)} ({len(fills)} fill{'s' * (len(fills) > 1)}),"
            f" fee {num(from_wad(fee))} {chain.collateral_symbol}"
        )
    rested = _events(mkt, "OrderPlaced", receipt)
    for e in rested:
        lines.append(
            f"rests {num(from_wad(e['size']))} @ {num(from_wad(e['price']))} as order #{e['order_id']}"
        )
    rest = cancelled_rest(
        order.size, sum(f["size"] for f in fills), sum(e["size"] for e in rested), order.order_type, num
    )
    if rest:
        lines.append(rest)
    for e in _events(mkt, "OrderRemoved", receipt):
        if e["reason"] in (3, 4):
            lines.append(f"order #{e['order_id']}: {REMOVED_REASONS[e['reason']]}")
    if not fills and not rested:
        lines.append("nothing filled, nothing rests")
    return lines + _position_lines(chain, symbol, account)


def cancel(chain: Chain, client: Any, symbol: str, order_id: int, subaccount: int = 0) -> list[str]:
    mkt = chain.market(symbol)
    account = _account_id(chain, client.address, subaccount)
    owner, is_buy, price, remaining, _ro = _read(chain.lens.functions.order(mkt.address, order_id), "order")
    if owner == 0:
        raise PeopleError(f"order #{order_id} does not rest in {symbol} (filled, cancelled or unknown)")
    if owner != account:
        raise PeopleError(
            f"order #{order_id} in {symbol} belongs to account #{owner}, not to {client.address}"
            f" subaccount {subaccount} (#{account})"
        )
    what = (
        f"cancel {symbol} order #{order_id} ({'buy' if is_buy else 'sell'} {num(from_wad(remaining))}"
        f" @ {num(from_wad(price))})"
    )
    # the owner cancels at the market (PerpMarket.cancel): no router hop, about 6,700 gas less
    fn = mkt.functions.cancel(order_id)
    return [_tx_line(what, _send(client, fn, what)), *_position_lines(chain, symbol, account)]


def cancel_all(chain: Chain, client: Any, symbol: str, subaccount: int = 0) -> list[str]:
    """Cancel every resting order of the account in `symbol`: `cancel_all` takes at most 200 ids
    and reverts unless none is left, so beyond 200 the rest go one by one first."""
    from keeper.bots.liquidation import MAX_CANCELS, resting_order_ids

    mkt = chain.market(symbol)
    account = _account_id(chain, client.address, subaccount)
    count = int(_read(mkt.functions.open_order_stats(account), "open_order_stats")[0])
    if count == 0:
        return [f"no resting orders in {symbol}", *_position_lines(chain, symbol, account)]
    ids = resting_order_ids(chain.lens, mkt, account, count, limit=10**6)
    ch, owner = chain.clearinghouse, client.address
    lines = []
    for oid in ids[MAX_CANCELS:]:
        what = f"cancel {symbol} order #{oid}"
        try:
            lines.append(_tx_line(what, _send(client, mkt.functions.cancel(oid), what)))
        except PeopleError as exc:
            if not str(exc).endswith(": no such order"):
                raise
            # filled (or cancelled) since it was listed, as cancel_all skips it below
            lines.append(f"{what}: no longer rests")
    head = ids[:MAX_CANCELS]
    what = f"cancel-all {symbol}: {len(head)} order{'s' * (len(head) != 1)} (#{', #'.join(map(str, head))})"
    fn = ch.functions.cancel_all(owner, subaccount, mkt.address, head)
    lines.append(_tx_line(what, _send(client, fn, what)))
    return lines + _position_lines(chain, symbol, account)


# ================================================================ CLI


def _subaccount(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"a subaccount is a whole number >= 0, not {text!r}")
    return n


def _add_chain_options(p: argparse.ArgumentParser, *, key: bool = False) -> None:
    """--subaccount, [--key], --rpc, --manifest, --config (after each command's own options)."""
    p.add_argument("--subaccount", metavar="N", type=_subaccount, default=0, help="subaccount (default 0)")
    if key:
        p.add_argument(
            "--key", help=f"the trader's private key (default: ${TRADER_KEY_ENV}; prefer the variable)"
        )
    p.add_argument(
        "--rpc", metavar="URL", dest="rpc_url", help="JSON-RPC URL (default: settings, $VYPERP_RPC_URL)"
    )
    p.add_argument(
        "--manifest",
        metavar="PATH",
        help="deployment manifest JSON (default: settings, deployments/local.json)",
    )
    p.add_argument("--config", metavar="FILE", help="YAML or TOML settings file (default: $VYPERP_CONFIG)")


def add_people_commands(sub: Any) -> None:
    """`keeper status` and `keeper trade place|cancel|cancel-all` (registered in keeper.cli.COMMANDS)."""
    st = sub.add_parser("status", help="markets, insurance fund and an account's margin from a live chain")
    st.add_argument("--account", metavar="ADDRESS", help="owner address of the account to show")
    st.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    _add_chain_options(st)
    st.set_defaults(handler=_cli_status)
    trade = sub.add_parser("trade", help="place and cancel orders")
    actions = trade.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("place", help="place an order")
    p.add_argument("--market", metavar="SYMBOL", required=True, help="market symbol, e.g. BTC-PERP")
    p.add_argument("--side", required=True, choices=SIDES)
    p.add_argument("--size", required=True, help="base units, a multiple of the lot size (e.g. 0.1)")
    p.add_argument("--price", help="limit price, a multiple of the tick size (omit for a market order)")
    p.add_argument(
        "--type", dest="order_type", choices=list(ORDER_TYPES), help="default: gtc with --price, else market"
    )
    p.add_argument("--reduce-only", action="store_true", help="only ever reduce the position")
    c = actions.add_parser("cancel", help="cancel one resting order")
    c.add_argument("--market", metavar="SYMBOL", required=True, help="market symbol, e.g. BTC-PERP")
    c.add_argument("--order", metavar="ID", dest="order_id", type=int, required=True, help="order id")
    a = actions.add_parser("cancel-all", help="cancel every resting order of the account in a market")
    a.add_argument("--market", metavar="SYMBOL", required=True, help="market symbol, e.g. BTC-PERP")
    for parser, handler in ((p, _cli_place), (c, _cli_cancel), (a, _cli_cancel_all)):
        _add_chain_options(parser, key=True)
        parser.set_defaults(handler=handler)


def _context(args: argparse.Namespace) -> Any:
    from keeper.cli import RunContext
    from keeper.settings import load_settings

    settings = load_settings(args.config, rpc_url=args.rpc_url, manifest=args.manifest)
    return RunContext(settings, args)


def _address(text: str) -> str:
    from web3 import Web3

    if not _ADDRESS_RE.match(text.strip()):
        raise PeopleError(f"--account: {text!r} is not an address (0x and 40 hex digits)")
    return Web3.to_checksum_address(text.strip())


def _cli_status(args: argparse.Namespace) -> int:
    account = (_address(args.account), args.subaccount) if args.account else None
    status = read_status(connect_chain(_context(args)), account)
    print(status_json(status) if args.json else format_status(status))
    return 1 if account is not None and status.account is None else 0


def _trader(args: argparse.Namespace) -> tuple[Chain, Any]:
    key = (args.key or os.environ.get(TRADER_KEY_ENV) or "").strip()
    if not key:
        raise PeopleError(f"no trader key: set ${TRADER_KEY_ENV} (or pass --key)")
    if not _KEY_RE.match(key):
        raise PeopleError("the trader key is not a 32-byte hex private key (64 hex digits, optional 0x)")
    ctx = _context(args)
    chain = connect_chain(ctx)
    chain.market(args.market)  # an unknown market fails before anything else
    return chain, ctx.client(key)


def _print(lines: Sequence[str]) -> int:
    print("\n".join(lines))
    sys.stdout.flush()
    return 0


def _cli_place(args: argparse.Namespace) -> int:
    chain, client = _trader(args)
    mkt = chain.market(args.market)
    order = order_args(
        args.side, args.size, args.price, args.order_type,
        tick=_read(mkt.functions.TICK_SIZE(), "TICK_SIZE"), lot=_read(mkt.functions.LOT_SIZE(), "LOT_SIZE"),
        symbol=args.market, reduce_only=args.reduce_only,
    )  # fmt: skip
    return _print(place(chain, client, args.market, order, args.subaccount))


def _cli_cancel(args: argparse.Namespace) -> int:
    chain, client = _trader(args)
    return _print(cancel(chain, client, args.market, args.order_id, args.subaccount))


def _cli_cancel_all(args: argparse.Namespace) -> int:
    chain, client = _trader(args)
    return _print(cancel_all(chain, client, args.market, args.subaccount))


__all__ = [
    "AccountStatus",
    "Chain",
    "MarketStatus",
    "OrderArgs",
    "PeopleError",
    "Status",
    "add_people_commands",
    "cancel",
    "cancel_all",
    "connect_chain",
    "format_status",
    "health_state",
    "market_limit",
    "order_args",
    "place",
    "read_status",
    "status_json",
]
