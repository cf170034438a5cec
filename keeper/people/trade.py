"""`keeper trade`: place and cancel orders from a key, checked before anything is sent.

`trade` sends from the key in ``--key`` or ``$VYPERP_TRADER_KEY`` (prefer the
variable: a command line is visible to other users of the machine). Sizes and
prices are human decimals (``0.1``, ``86000.5``), checked against the market's
lot and tick size before anything is sent; every transaction is simulated first
(`eth_call`), so a revert prints the contract's reason and sends nothing.
``--type`` defaults to ``gtc`` with ``--price`` and to ``market`` without: a
market order is an IOC whose limit is the price band's edge around the index,
index x (1 +- price_band) rounded inwards to the tick (the widest price the
market takes; the scenario runner's rule, ``keeper.orders.market_limit``);
``market`` with ``--price`` uses that price as the limit.

Layout: the order checks (:func:`order_args`, pure), then the transactions (:func:`place`,
:func:`cancel`, :func:`cancel_all`)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from keeper.orders import REMOVED_REASONS, cancelled_rest, market_limit
from keeper.people.common import WAD, Chain, PeopleError, _read, health_state, num
from keeper.units import fmt, from_wad, to_units

# the CLI's order types -> Clearinghouse.place_order's order_type
ORDER_TYPES = {"gtc": 0, "post-only": 1, "ioc": 2, "market": 2}
SIDES = ("buy", "sell")


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


# ================================================================ trading


def _send(client: Any, fn: Any, what: str) -> Any:
    """Simulate, send and wait; a revert becomes a PeopleError with the contract's reason."""
    from keeper.chain import TxError, TxReverted
    from keeper.scenario.cli import _quiet_chain_logs

    with _quiet_chain_logs(False):  # the client warns about the revert; the error below says it
        try:
            return client.send(fn)
        except TxReverted as exc:
            where = f"in tx {exc.tx_hash.to_0x_hex()}" if exc.tx_hash else "(simulated, nothing sent)"
            raise PeopleError(f"{what} reverted {where}: {exc.reason or '(no reason)'}") from None
        except TxError as exc:
            raise PeopleError(f"{what} failed: {exc}") from None


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
        index = _read(mkt.functions.index_price(), f"{symbol} index_price")
        band = _read(chain.lens.functions.market_params(mkt.address), f"{symbol} market_params")[9]
        price = market_limit(index, band, _read(mkt.functions.TICK_SIZE(), "TICK_SIZE"), order.is_buy)
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
    from keeper.bots.scan import MAX_CANCELS, resting_order_ids

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


__all__ = [
    "OrderArgs",
    "cancel",
    "cancel_all",
    "market_limit",
    "order_args",
    "place",
]
