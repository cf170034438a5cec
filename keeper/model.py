"""Reference model of vyperp's PnL and margin math (PROTOCOL.md §2, §5-8).

Exact integer arithmetic in 18-decimal fixed point, no chain I/O: every
function here is meant to give, to the wei, what ``contracts/PerpMarket.vy``
and ``contracts/Clearinghouse.vy`` compute, so that differential tests can
compare the contracts with it and auditors can read the rules in one place.

Units (§2): amounts and prices are ``WAD`` (10**18) fixed point; a price is
quote per one base unit; sizes are signed base amounts (long > 0); rates are
WAD fractions. Rounding goes against the account: what an account owes is
rounded up, what it is paid is rounded down. The helpers below say which way
each quantity rounds; :func:`apply_trade` documents the one place where the
contract's rule is a truncation rather than a floor or a ceiling.

Not modelled here: the order book itself (which orders match is the
contract's business; the model takes the resulting fills as input) and the
funding accumulator (premium samples, settlements), apart from what an
account owes against it (:func:`funding_owed`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from keeper.units import WAD

#: PerpMarket keeps its rates in units of 1e-9 (RATE), in one parameter word
RATE = 10**9
#: packed position fields hold |size| and |open notional| below 2**111
POSITION_LIMIT = 2**111


# ---------------------------------------------------------------- rounding (§2)


def ceil_div(x: int, y: int) -> int:
    """ceil(x / y) for x >= 0, y > 0 (the contract's ``_ceil_div``)."""
    if x < 0 or y <= 0:
        raise ValueError("ceil_div: x >= 0 and y > 0")
    return -(-x // y)


def floor_div_signed(x: int, y: int) -> int:
    """floor(x / y) toward -inf for y > 0 (``_floor_div_signed``)."""
    if y <= 0:
        raise ValueError("floor_div_signed: y > 0")
    return x // y


def ceil_div_signed(x: int, y: int) -> int:
    """ceil(x / y) toward +inf for y > 0 (``_ceil_div_signed``)."""
    if y <= 0:
        raise ValueError("ceil_div_signed: y > 0")
    return -(-x // y)


def trunc_div(x: int, y: int) -> int:
    """x / y truncated toward zero: Vyper's ``//`` on ``int256``.

    Python's ``//`` floors instead, so ``trunc_div(-7, 2) == -3`` while
    ``-7 // 2 == -4``.
    """
    if y == 0:
        raise ZeroDivisionError("trunc_div: y == 0")
    q = abs(x) // abs(y)
    return q if (x < 0) == (y < 0) else -q


# ---------------------------------------------------------------- positions (§5)


@dataclass(frozen=True)
class Position:
    """A position in one market (PROTOCOL.md §5).

    ``size`` is signed base WAD (long > 0). ``open_notional`` is the signed
    cost basis in quote WAD: the value paid for a long (> 0), minus the value
    received for a short (< 0). A flat position has no cost basis left.
    """

    size: int = 0
    open_notional: int = 0

    def __post_init__(self) -> None:
        if self.size == 0 and self.open_notional != 0:
            raise ValueError("a flat position has no open notional")

    @property
    def entry_price(self) -> int:
        """Average entry price, quote WAD, rounded down; 0 when flat
        (``PerpMarket.position().entry_price``)."""
        if self.size == 0:
            return 0
        return abs(self.open_notional) * WAD // abs(self.size)


FLAT = Position()


def fill_value(size: int, price: int) -> int:
    """Notional of a fill, quote WAD: ``size x price``.

    Exact for any size on the lot grid and price on the tick grid, because
    the contract requires ``tick x lot`` to be a whole wei (it computes
    ``lots x ticks x UNIT``). Raises when the product is not whole.
    """
    if size < 0 or price < 0:
        raise ValueError("fill_value: size and price are unsigned")
    value, rest = divmod(size * price, WAD)
    if rest:
        raise ValueError("fill_value: off the tick x lot grid")
    return value


def apply_trade(pos: Position, delta: int, value: int) -> tuple[Position, int]:
    """Change ``pos`` by ``delta`` (signed base WAD) traded for ``value``
    (quote WAD, unsigned: the fill notional). Returns (new position,
    realized PnL). PROTOCOL.md §5: realized PnL uses the average entry price.
    Mirrors ``PerpMarket._apply_trade`` (funding is settled separately first).

    With ``signed = +value`` for a buy and ``-value`` for a sell:

    * open or increase (flat, or same side): ``open_notional += signed``,
      nothing realized;
    * reduce (``|delta| < |size|``): the removed cost basis
      ``open_notional x |delta| / |size|`` is rounded **toward +inf**
      (against the account: a long removes more basis, a short less credit),
      ``realized = -signed - removed``, ``open_notional -= removed``;
    * close (``|delta| == |size|``): the whole basis is removed,
      ``realized = -signed - open_notional``, the position is flat;
    * flip (``|delta| > |size|``): the value is split pro rata,
      ``close_value = signed x |size| / |delta|`` **truncated toward zero**
      (Vyper's signed ``//``), ``realized = -close_value - open_notional``;
      the new position opens with ``open_notional = signed - close_value``.

    In every case ``realized - (new.open_notional - pos.open_notional) ==
    -signed``, so from flat back to flat an account realizes exactly minus
    the sum of its signed trade values, and counterparties' realized PnL
    sums to zero.

    Note (a departure from §2, mirrored on purpose): the flip's truncation
    rounds against the account for long -> short (``signed < 0``), but in
    its favour for short -> long (``signed > 0``), by less than 1e-18 quote,
    whenever the taker's value is not divisible (several price levels).
    Rounding ``close_value`` toward +inf, as the reduce branch rounds
    ``removed``, would be against the account both ways. The differential
    test ``test_apply_trade__flip_at_vwap__...`` pins this down.
    """
    if delta == 0:
        raise ValueError("apply_trade: zero delta")
    if value < 0:
        raise ValueError("apply_trade: value is unsigned")
    size, on = pos.size, pos.open_notional
    signed = value if delta > 0 else -value
    new_size = size + delta
    realized = 0
    if size == 0 or (size > 0) == (delta > 0):
        on += signed
    elif abs(delta) <= abs(size):
        removed = on if abs(delta) == abs(size) else ceil_div_signed(on * abs(delta), abs(size))
        realized = -signed - removed
        on -= removed
    else:
        # the closed part's value rounds toward +inf: against the account either way
        close_value = ceil_div_signed(signed * abs(size), abs(delta))
        realized = -close_value - on
        on = signed - close_value
    if abs(new_size) >= POSITION_LIMIT or abs(on) >= POSITION_LIMIT:
        raise OverflowError("position too large")
    return (Position(new_size, on) if new_size != 0 else FLAT), realized


def grew(before: Position, after: Position) -> bool:
    """Whether a trade increased risk: the position opened, flipped or grew
    (``risk_increased`` of a taker's fills; resting a non-reduce-only order
    also adds risk). Such orders must meet initial margin afterwards (§7)."""
    s0, s1 = before.size, after.size
    return s1 != 0 and (s0 == 0 or (s1 > 0) != (s0 > 0) or abs(s1) > abs(s0))


# ---------------------------------------------------------------- mark price (§6)


def mark_price(index: int, best_bid: int, best_ask: int, last_trade: int, band: int) -> int:
    """Mark price, quote WAD (PROTOCOL.md §6, ``PerpMarket._mark``).

    ``median(best_bid, best_ask, last_trade)``, each missing value (0)
    replaced by ``index``, then clamped to ``index +- index x band / WAD``
    (the half-width rounded down). ``band`` is a WAD fraction in
    [0.01%, mmr / 4]: one trade moves the mark at most half the maintenance margin.
    """
    values = sorted(v if v != 0 else index for v in (best_bid, best_ask, last_trade))
    half_width = index * band // WAD
    return min(max(values[1], index - half_width), index + half_width)


def unrealized_pnl(pos: Position, mark: int) -> int:
    """``size x mark - open_notional``, the product rounded toward -inf
    (against the account; ``PerpMarket._upnl``)."""
    return floor_div_signed(pos.size * mark, WAD) - pos.open_notional


def position_notional(size: int, mark: int) -> int:
    """``|size| x mark``, rounded up (a margin requirement; §7)."""
    return ceil_div(abs(size) * mark, WAD)


# ---------------------------------------------------------------- funding (§8)


def funding_owed(size: int, cumulative: int, snapshot: int) -> int:
    """Funding an account owes since its snapshot, quote WAD (§8):
    ``size x (cumulative - snapshot)``, longs pay when positive; positive =
    paid, negative = received. Rounded toward +inf: the payer pays the
    rounding, the receiver gets less (``PerpMarket._funding_owed``)."""
    if size == 0:
        return 0
    return ceil_div_signed(size * (cumulative - snapshot), WAD)


# ---------------------------------------------------------------- fees (§5)


def position_change_of_fill(fill: Mapping) -> dict:
    """A maker's ``Fill`` event as the ``PositionChanged`` it stands for: a maker's fill
    emits no ``PositionChanged`` (one event per fill), its ``maker_*`` fields carry the
    maker's new position, what the fill realized and the funding it settled."""
    return {
        "account": fill["maker"],
        "size": fill["maker_size"],
        "open_notional": fill["maker_open_notional"],
        "realized_pnl": fill["maker_realized_pnl"],
        "funding_paid": fill["maker_funding_paid"],
        "fee_paid": fill["maker_fee"],
    }


def fee(value: int, rate: int) -> int:
    """Trading fee on a fill notional, quote WAD, rounded up
    (``PerpMarket._fee``)."""
    return ceil_div(value * rate, WAD)


def split_fees(fees: int, insurance_share: int, funding_residue: int = 0) -> tuple[int, int]:
    """(to the insurance account, to the treasury account) for one order
    (``Clearinghouse.place_order``): the insurance share of the fees rounded
    down plus any funding residue; the treasury gets the rest of the fees,
    so nothing is lost."""
    to_insurance = fees * insurance_share // WAD
    return to_insurance + funding_residue, fees - to_insurance


@dataclass(frozen=True)
class Fill:
    """One maker order filled against a taker: ``size`` base WAD (> 0) at the
    maker's ``price``."""

    maker: Hashable
    size: int
    price: int


@dataclass(frozen=True)
class Settlement:
    """The outcome of one taker order: positions after, cash delta and
    realized PnL per account (cash = realized - fee, funding aside), total
    fees (for :func:`split_fees`)."""

    positions: dict = field(default_factory=dict)
    cash: dict = field(default_factory=dict)
    realized: dict = field(default_factory=dict)
    fees: int = 0


def settle_taker_order(
    positions: Mapping[Hashable, Position],
    taker: Hashable,
    taker_is_buy: bool,
    fills: Sequence[Fill],
    taker_fee: int = 0,
    maker_fee: int = 0,
) -> Settlement:
    """Apply the fills of one taker order (``PerpMarket.place_order``).

    Each fill is a separate trade of its maker, in order, at the maker's
    price, with a maker fee ``fee(value, maker_fee)`` per fill. The taker's
    fills are applied as **one** trade at the summed value (the
    volume-weighted price), with one taker fee on the sum. Positions not in
    ``positions`` are flat. Assumes no funding is due (cumulative funding
    equal to every snapshot); the caller books :func:`funding_owed` first.
    """
    pos = dict(positions)
    cash: dict = {}
    realized: dict = {}
    fees = 0
    total_size = 0
    total_value = 0
    for f in fills:
        if f.maker == taker:
            raise ValueError("self-trade: the contract cancels the resting order instead")
        value = fill_value(f.size, f.price)
        mfee = fee(value, maker_fee)
        new, r = apply_trade(pos.get(f.maker, FLAT), -f.size if taker_is_buy else f.size, value)
        pos[f.maker] = new
        realized[f.maker] = realized.get(f.maker, 0) + r
        cash[f.maker] = cash.get(f.maker, 0) + r - mfee
        fees += mfee
        total_size += f.size
        total_value += value
    if total_size > 0:
        tfee = fee(total_value, taker_fee)
        new, r = apply_trade(pos.get(taker, FLAT), total_size if taker_is_buy else -total_size, total_value)
        pos[taker] = new
        realized[taker] = realized.get(taker, 0) + r
        cash[taker] = cash.get(taker, 0) + r - tfee
        fees += tfee
    return Settlement(pos, cash, realized, fees)


# ---------------------------------------------------------------- margin (§7)


def order_notional(size: int, price: int) -> int:
    """Notional a resting order reserves, quote WAD (exact on the grid)."""
    return fill_value(size, price)


def worst_order_notional(bid_notional: int, ask_notional: int) -> int:
    """The worse side of an account's resting orders in one market: the
    larger of its total bid and total ask notional (every resting order,
    reduce-only included, at its own price)."""
    return max(bid_notional, ask_notional)


def price_band_ticks(index: int, price_band: int, tick_size: int) -> tuple[int, int]:
    """The ticks an order may be priced at (PROTOCOL.md §5, price protection):
    ``[ceil((index - band) / tick), floor((index + band) / tick)]`` with
    ``band = floor(index x price_band)``; a resting order reached outside them
    is cancelled, never filled."""
    band = index * price_band // WAD
    return ceil_div(index - band, tick_size), (index + band) // tick_size


def order_risk(bid_notional: int, ask_notional: int, price_band: int, mark_band: int, maker_fee: int) -> int:
    """What the resting orders' fills can lose against the mark (PROTOCOL.md §7), added to
    both the initial and the maintenance margin: ``ceil((bids + asks) x k)`` with
    ``k = ceil((price_band + mark_band) / (1 - price_band)) + maker_fee`` (to the 1e-9):
    a fill is within index x (1 +- price_band), the mark within index x (1 +- mark_band)."""
    pb, mb, fee = price_band // (WAD // RATE), mark_band // (WAD // RATE), maker_fee // (WAD // RATE)
    k = ceil_div((pb + mb) * RATE, RATE - pb) + fee
    return ceil_div((bid_notional + ask_notional) * k, RATE)


@dataclass(frozen=True)
class MarketMargin:
    """One market's contribution to an account's cross-margin
    (``PerpMarket.account_margin``): ``pnl`` = unrealized PnL minus unsettled
    funding, ``im`` and ``mm`` the initial and maintenance margin."""

    pnl: int = 0
    im: int = 0
    mm: int = 0


def account_margin(
    pos: Position, mark: int, imr: int, mmr: int, worst_orders: int = 0, funding: int = 0, risk: int = 0
) -> MarketMargin:
    """One market's margin of an account (PROTOCOL.md §7), all rounded
    against the account:

    * ``notional = ceil(|size| x mark)``;
    * ``pnl = unrealized_pnl(pos, mark) - funding`` (``funding`` from
      :func:`funding_owed`, rounded up);
    * ``im = ceil((notional + worst_orders) x imr) + risk``, ``worst_orders`` from
      :func:`worst_order_notional`, ``risk`` from :func:`order_risk`;
    * ``mm = ceil(notional x mmr) + risk``.
    """
    notional = position_notional(pos.size, mark)
    return MarketMargin(
        pnl=unrealized_pnl(pos, mark) - funding,
        im=ceil_div((notional + worst_orders) * imr, WAD) + risk,
        mm=ceil_div(notional * mmr, WAD) + risk,
    )


@dataclass(frozen=True)
class CrossMargin:
    """An account's cross-margin over its markets (``Clearinghouse.margin``)."""

    equity: int
    im: int
    mm: int
    withdrawable: int


def withdrawable(cash: int, equity: int, im: int) -> int:
    """``max(0, min(cash, equity - IM))``: free collateral, never including
    unrealized profit (PROTOCOL.md §7)."""
    return max(0, min(cash, equity - im))


def cross_margin(cash: int, markets: Iterable[MarketMargin]) -> CrossMargin:
    """Sum the markets of one account (PROTOCOL.md §7):
    ``equity = cash + sum(pnl)``, ``IM = sum(im)``, ``MM = sum(mm)``,
    ``withdrawable = max(0, min(cash, equity - IM))``."""
    markets = list(markets)
    equity = cash + sum(m.pnl for m in markets)
    im = sum(m.im for m in markets)
    mm = sum(m.mm for m in markets)
    return CrossMargin(equity, im, mm, withdrawable(cash, equity, im))


def meets_initial_margin(equity: int, im: int) -> bool:
    """An order that adds risk passes iff ``equity >= IM`` afterwards (§7)."""
    return equity >= im


def liquidatable(equity: int, mm: int) -> bool:
    """Liquidatable iff ``equity < MM`` (PROTOCOL.md §7, §9)."""
    return equity < mm
