# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title PerpMarket
@license MIT
@notice One perpetual-futures market (PROTOCOL.md §5-8): a price-time
        priority limit order book, signed positions with average entry
        price, open interest, fees, the mark price and the funding
        accumulator. Cash lives in the Clearinghouse: every mutating call
        comes from it, and returns the cash deltas it must book.
@custom:security Gas per call is bounded whatever the depth of the book:
        insertion is O(1) given a hint (a level at or better than the new
        price, verified on-chain; a walk of at most MAX_WALK levels
        otherwise), cancel is O(1), a taker walks at most `max_fills`
        maker orders. Sizes are whole lots, prices whole ticks.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

from .interfaces import IPerpMarket
from .interfaces import IIndexOracle
from .modules import book_layout as layout
from .modules import params_layout as pl

implements: IPerpMarket

initializes: ownable
initializes: ownable_2step[ownable := ownable]

exports: (
    # two-step ownership (parameters)
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)


WAD: constant(uint256) = 10**18
SWAD: constant(int256) = 10**18
MAX_FILLS: constant(uint256) = 64
MAX_WALK: constant(uint256) = 32

GTC: constant(uint8) = 0
POST_ONLY: constant(uint8) = 1
IOC: constant(uint8) = 2
# an IOC, reduce-only close sent by the clearinghouse's liquidation: no taker fee
LIQUIDATION: constant(uint8) = 3

# _remove_order's book argument when the caller holds no copy of the book word
BOOK_IN_STORAGE: constant(uint256) = max_value(uint256)

REMOVED_CANCELLED: constant(uint8) = 1
REMOVED_FILLED: constant(uint8) = 2
REMOVED_SELF_TRADE: constant(uint8) = 3
REMOVED_REDUCE_ONLY_VOID: constant(uint8) = 4
# a resting order reached by a taker while its price is beyond the price band
REMOVED_OFF_MARKET: constant(uint8) = 5

# position word: size + 2**111 (112) | open_notional + 2**111 (112) | funding epoch (32)
# The epoch is the accumulator's epoch at the word's last write, when the
# funding snapshot was brought to the accumulator: while the accumulator has
# not moved since, the account owes nothing and its snapshot is not read.
P_OFFSET: constant(int256) = 2**111
P_NOTIONAL: constant(uint256) = 112
P_EPOCH: constant(uint256) = 224
# funding word: cumulative funding + 2**223 (224) | epoch (32), the epoch
# counting the accumulator's moves
F_OFFSET: constant(int256) = 2**223
F_EPOCH: constant(uint256) = 224
# a maker's cash delta in TradeResult.maker_deltas: (amount + DELTA_OFFSET) << DELTA_SHIFT | account
DELTA_OFFSET: constant(int256) = 2**207
DELTA_SHIFT: constant(uint256) = 48
MASK128: constant(uint256) = 2**128 - 1
M112: constant(uint256) = 2**112 - 1
M224: constant(uint256) = 2**224 - 1

# hard bounds on parameters
MAX_IMR: constant(uint256) = WAD                # 1x
MIN_MMR: constant(uint256) = WAD // 1_000        # 0.1%  (at most 1000x)
MAX_FEE: constant(uint256) = WAD // 100          # 1%
MIN_BAND: constant(uint256) = WAD // 10_000      # 0.01%: 4 x mark_band <= mmr, mmr >= 0.1%
# one trade moves the mark at most 2 x mark_band: at most half the maintenance margin
MARK_BAND_PER_MMR: constant(uint256) = 4
MIN_PRICE_BAND: constant(uint256) = WAD // 1_000  # 0.1%
MAX_PRICE_BAND: constant(uint256) = WAD // 5      # 20%
MAX_OPEN_ORDERS: constant(uint256) = 1_000

SYMBOL: public(immutable(String[16]))
CLEARINGHOUSE: public(immutable(address))
ORACLE: public(immutable(IIndexOracle))
TICK_SIZE: public(immutable(uint256))
LOT_SIZE: public(immutable(uint256))
# quote wei per (tick x lot): fill notional = ticks x lots x UNIT, exactly
UNIT: immutable(uint256)

# parameters, packed in one word read once per call (modules/params_layout.vy;
# Lens.market_params decodes it)
params_word: public(uint256)
max_open_interest: public(uint256)
_book: uint256
_levels: HashMap[uint256, uint256]
_orders: HashMap[uint256, uint256]
_account_orders: HashMap[uint256, uint256]
# account -> its owner (the Clearinghouse's account key), kept at the account's
# first resting order here: `cancel` lets the owner cancel without the router
_owners: HashMap[uint256, address]
_positions: HashMap[uint256, uint256]
funding_snapshot: public(HashMap[uint256, int256])
_funding: uint256
# the FundingRate contract that settles this market's funding (set once)
funding_rate: public(address)
# rounding residue of funding in 1e-18 wei, swept whole to the insurance fund
_funding_dust: uint256
# open interest: long side (128) | short side (128), base WAD
_open_interest: uint256
# index read once per transaction
_index_cache: transient(uint256)


@deploy
def __init__(
    symbol_: String[16],
    clearinghouse_: address,
    oracle_: address,
    tick_size_: uint256,
    lot_size_: uint256,
    params_: IPerpMarket.MarketParams,
):
    """
    @notice Deploy a market.
    @param symbol_ e.g. "BTC-PERP".
    @param clearinghouse_ The Clearinghouse that owns cash and routes orders.
    @param oracle_ The market's IndexOracle.
    @param tick_size_ Price grid, quote WAD per base unit.
    @param lot_size_ Size grid, base WAD. tick x lot must be a whole wei.
    @param params_ Initial parameters, within the hard bounds.
    """
    assert clearinghouse_ != empty(address) and oracle_ != empty(address), "market: zero address"
    assert tick_size_ > 0 and lot_size_ > 0, "market: zero tick or lot"
    assert (tick_size_ * lot_size_) % WAD == 0, "market: tick x lot not a whole wei"
    ownable.__init__()
    ownable_2step.__init__()
    SYMBOL = symbol_
    CLEARINGHOUSE = clearinghouse_
    ORACLE = IIndexOracle(oracle_)
    TICK_SIZE = tick_size_
    LOT_SIZE = lot_size_
    UNIT = tick_size_ * lot_size_ // WAD
    self._set_params(params_)
    self._book = 1 << layout.B_NEXT_ID
    self._funding = convert(F_OFFSET, uint256)


# ================================================================ trading

@external
def place_order(
    account: uint256,
    owner: address,
    is_buy: bool,
    size: uint256,
    price: uint256,
    order_type: uint8,
    reduce_only: bool,
    hint: uint256,
) -> IPerpMarket.TradeResult:
    """
    @notice Match and/or rest an order for `account` (clearinghouse only).
    @param owner The account's owner (kept at its first resting order, for `cancel`).
    @param size Base WAD, a whole number of lots.
    @param price Limit price, quote WAD per base unit, on the tick grid.
    @param order_type 0 limit (GTC), 1 post-only, 2 IOC (market with a limit),
           3 liquidation (an IOC without taker fee; the clearinghouse never
           routes it for a user).
    @param reduce_only Only ever reduces the position.
    @param hint A bid (ask) level tick at or above (below) the price, or 0.
    @return The cash deltas for the clearinghouse to book, and the taker's
            margin here after the trade (what account_margin would return).
    """
    self._only_clearinghouse()
    assert size > 0, "zero size"
    assert price > 0, "zero price"
    assert order_type <= LIQUIDATION, "bad order type"
    assert size % LOT_SIZE == 0, "size off lot"
    assert price % TICK_SIZE == 0, "price off tick"
    lots: uint256 = size // LOT_SIZE
    tick: uint256 = price // TICK_SIZE
    assert lots < 2**64 and tick < 2**56, "size or price too large"
    index: uint256 = staticcall ORACLE.index()
    self._index_cache = index
    pw: uint256 = self.params_word
    # the price band, in whole ticks: [ceil((index - band) / tick), floor((index + band) / tick)]
    band: uint256 = index * ((pw >> pl.K_PBAND) & pl.M29) // pl.RATE
    lo: uint256 = (index - band + TICK_SIZE - 1) // TICK_SIZE
    hi: uint256 = (index + band) // TICK_SIZE

    size0: int256 = self._size(self._positions[account])
    if reduce_only:
        assert size0 != 0 and (size0 > 0) != is_buy and size <= convert(abs(size0), uint256), "reduce-only would increase position"
    if not (reduce_only and order_type >= IOC):
        assert lots * tick * UNIT >= (pw >> pl.K_MIN), "order below min notional"
    if order_type != LIQUIDATION:
        # a liquidation's limit is the engine's, bounded by the account's bankruptcy price
        assert tick >= lo and tick <= hi, "price beyond the price band"

    book: uint256 = self._book
    best: uint256 = 0
    crosses: bool = self._crosses(book, is_buy, tick)
    if order_type == POST_ONLY:
        assert not crosses, "post-only would cross"

    result: IPerpMarket.TradeResult = empty(IPerpMarket.TradeResult)
    fw: uint256 = 0
    # open interest (long side | short side), read once and written once for all fills
    oi: uint256 = 0
    if crosses:
        fw = self._funding
        oi = self._open_interest
    remaining: uint256 = lots
    filled: uint256 = 0
    filled_value: uint256 = 0
    residue: uint256 = 0
    # ---- match against the opposite side, at most max_fills maker orders
    if crosses:
        maker_bid: uint256 = 0 if is_buy else 1
        for i: uint256 in range(MAX_FILLS):
            if remaining == 0 or i >= ((pw >> pl.K_FILLS) & pl.M7):
                break
            # dev: not _crosses, inline (an internal call per maker is 100 gas over its budget)
            best = ((book >> layout.B_ASK) & layout.M56) if is_buy else (book & layout.M56)
            if best == 0 or (is_buy and best > tick) or (not is_buy and best < tick):
                break
            lkey: uint256 = best * 2 + maker_bid
            level: uint256 = self._levels[lkey]
            oid: uint256 = ((level >> layout.L_HEAD) & layout.M40)
            order: uint256 = self._orders[oid]
            maker: uint256 = ((order >> layout.O_ACCT) & layout.M48)
            if best < lo or best > hi:
                # an off-market order (the index moved since it rested) is never filled
                book = self._remove_order(oid, order, book, REMOVED_OFF_MARKET)
                continue
            if maker == account:
                # self-trade prevention: the resting order is cancelled
                book = self._remove_order(oid, order, book, REMOVED_SELF_TRADE)
                continue
            take: uint256 = min(remaining, ((order >> layout.O_LOTS) & layout.M64))
            if ((order >> layout.O_RO) & layout.M1) == 1:
                # a reduce-only maker order never increases its position
                msize: int256 = self._size(self._positions[maker])
                reducible: uint256 = 0
                if (maker_bid == 1 and msize < 0) or (maker_bid == 0 and msize > 0):
                    reducible = convert(abs(msize), uint256) // LOT_SIZE
                if reducible == 0:
                    book = self._remove_order(oid, order, book, REMOVED_REDUCE_ONLY_VOID)
                    continue
                take = min(take, reducible)
            fill_value: uint256 = take * best * UNIT
            mdelta: int256 = convert(take * LOT_SIZE, int256)
            if is_buy:
                mdelta = -mdelta
            # dev: the maker fee, rounded up (_ceil_div, inline)
            mfee: uint256 = (fill_value * ((pw >> pl.K_MAKER) & pl.M24) + pl.RATE - 1) // pl.RATE
            realized: int256 = 0
            fpaid: int256 = 0
            res: uint256 = 0
            msize1: int256 = 0
            mon1: int256 = 0
            realized, fpaid, res, msize1, mon1, oi = self._apply_trade(maker, mdelta, fill_value, fw, mfee, True, oi)
            residue += res
            result.fees += mfee
            # dev: the delta + DELTA_OFFSET, as an unsigned word: one comparison checks that it
            # fits its 208-bit field (a delta below -DELTA_OFFSET wraps to a huge word)
            packed: uint256 = convert(convert(unsafe_add(realized - fpaid - convert(mfee, int256), DELTA_OFFSET), bytes32), uint256)
            assert packed < 2**208
            result.maker_deltas.append((packed << DELTA_SHIFT) | maker)
            left: uint256 = ((order >> layout.O_LOTS) & layout.M64) - take
            log IPerpMarket.Fill(
                maker=maker, taker=account, order_id=oid, price=best * TICK_SIZE, size=take * LOT_SIZE,
                maker_fee=mfee, remaining=left * LOT_SIZE, maker_size=msize1,
                maker_open_notional=mon1, maker_realized_pnl=realized, maker_funding_paid=fpaid
            )
            if left == 0 and ((level >> layout.L_LOTS) & layout.M64) != take:
                # the filled head leaves a level that keeps other orders (_remove_order's
                # head case, inline): its successor becomes the head
                # dev: the level holds at least the order's lots, the account word its reservation: no borrow
                self._levels[lkey] = ((level & ~(layout.M40 << layout.L_HEAD)) | ((order & layout.M40) << layout.L_HEAD)) - (take << layout.L_LOTS)
                self._orders[oid] = 0
                self._account_orders[maker] -= 1 + ((take * best) << (layout.A_ASKS if is_buy else layout.A_BIDS))
            elif left == 0:
                book = self._remove_order(oid, order, book, REMOVED_FILLED)
            else:
                self._reduce_order(oid, order, lkey, take)
            remaining -= take
            filled += take
            filled_value += fill_value
            book = (book & ~(layout.M56 << layout.B_LAST)) | (best << layout.B_LAST)

    # ---- the taker's fills, applied as one trade at the volume-weighted price
    size1: int256 = size0
    if filled > 0:
        tdelta: int256 = convert(filled * LOT_SIZE, int256)
        if not is_buy:
            tdelta = -tdelta
        tfee: uint256 = 0
        if order_type != LIQUIDATION:
            tfee = self._ceil_div(filled_value * ((pw >> pl.K_TAKER) & pl.M24), pl.RATE)
        realized: int256 = 0
        fpaid: int256 = 0
        res: uint256 = 0
        tsize1: int256 = 0
        ton1: int256 = 0
        realized, fpaid, res, tsize1, ton1, oi = self._apply_trade(account, tdelta, filled_value, fw, tfee, False, oi)
        self._open_interest = oi
        residue += res
        result.fees += tfee
        result.taker_delta = realized - fpaid - convert(tfee, int256)
        size1 = size0 + tdelta

    # ---- rest the remainder (limit and post-only), unless it still crosses: a
    # walk cut short by max_fills leaves it crossing, and then it is cancelled
    # like an IOC's (resting, it would cross the book)
    rested: bool = False
    if crosses and remaining > 0:
        crosses = self._crosses(book, is_buy, tick)
    if remaining > 0 and order_type < IOC and not crosses:
        if reduce_only:
            assert size1 != 0 and (size1 > 0) != is_buy and remaining * LOT_SIZE <= convert(abs(size1), uint256), "reduce-only would increase position"
        assert (self._account_orders[account] & layout.M15) < ((pw >> pl.K_ORDERS) & pl.M10), "too many open orders"
        oid: uint256 = 0
        oid, book = self._insert_order(account, owner, is_buy, tick, remaining, reduce_only, hint, book)
        result.order_id = oid
        rested = True

    self._book = book
    if residue > 0:
        result.funding_residue = residue
    if filled > 0 and abs(size1) > abs(size0):
        assert oi & MASK128 <= self.max_open_interest, "open interest cap"
    grew: bool = size1 != 0 and (size0 == 0 or (size1 > 0) != (size0 > 0) or abs(size1) > abs(size0))
    # a resting order, reduce-only included, reserves margin: its fill may lose against the mark
    result.risk_increased = grew or rested
    result.taker_active = size1 != 0 or (self._account_orders[account] & layout.M15) > 0
    result.margin = self._account_margin(account)
    return result


@external
def cancel_order(account: uint256, order_id: uint256) -> bool:
    """
    @notice Cancel one resting order of `account` (clearinghouse only: its
            owner or an operator through Clearinghouse.cancel_order or
            cancel_all, or the liquidation and ADL).
    @return False, and nothing done, when the order does not rest (filled
            or cancelled since it was listed, or unknown): a batch of
            cancels goes on.
    """
    self._only_clearinghouse()
    order: uint256 = self._orders[order_id]
    if order == 0:
        return False
    assert ((order >> layout.O_ACCT) & layout.M48) == account, "not your order"
    self._remove_order(order_id, order, BOOK_IN_STORAGE, REMOVED_CANCELLED)
    return True


@external
def cancel(order_id: uint256):
    """
    @notice Cancel one of your resting orders, as the account's owner,
            straight at the market: the same as Clearinghouse.cancel_order
            without the router's hop (operators go through the router).
            Works whatever the index or pause state.
    """
    order: uint256 = self._orders[order_id]
    assert order != 0, "no such order"
    assert self._owners[(order >> layout.O_ACCT) & layout.M48] == msg.sender, "not your order"
    self._remove_order(order_id, order, BOOK_IN_STORAGE, REMOVED_CANCELLED)


@external
def transfer_position(account: uint256, counterparty: uint256, size: int256, price: uint256) -> (int256, int256, uint256):
    """
    @notice Move `size` of position from `account` to `counterparty` at
            `price`, outside the book and without fees (clearinghouse only:
            backstop takeover and ADL): the counterparty's position changes by
            `size`, the account's by `-size`. The value |size| x price is
            rounded in favour of `account`; the last trade price (and so the
            mark) does not move.
    @return (cash delta of the account, cash delta of the counterparty,
            funding residue), for the clearinghouse to book.
    """
    self._only_clearinghouse()
    assert size != 0 and counterparty != account, "market: bad transfer"
    fw: uint256 = self._funding
    # the account sells when the counterparty buys: the value is rounded up then
    v: uint256 = convert(abs(size), uint256) * price
    v = self._ceil_div(v, WAD) if size > 0 else v // WAD
    r0: int256 = 0
    f0: int256 = 0
    res0: uint256 = 0
    r1: int256 = 0
    f1: int256 = 0
    res1: uint256 = 0
    s1: int256 = 0
    on1: int256 = 0
    oi: uint256 = self._open_interest
    r1, f1, res1, s1, on1, oi = self._apply_trade(counterparty, size, v, fw, 0, False, oi)
    r0, f0, res0, s1, on1, oi = self._apply_trade(account, -size, v, fw, 0, False, oi)
    self._open_interest = oi
    return (r0 - f0, r1 - f1, res0 + res1)


@external
def settle_funding(account: uint256) -> (int256, uint256):
    """
    @notice Apply the account's funding owed since its snapshot (clearinghouse
            only). Returns (funding paid: + paid / - received, residue).
    """
    self._only_clearinghouse()
    word: uint256 = self._positions[account]
    if word == 0:
        return (0, 0)
    paid: int256 = 0
    residue: uint256 = 0
    size: int256 = self._size(word)
    # the word keeps its epoch: a later settlement reads the snapshot, now current
    paid, residue = self._settle_funding(account, word, size, self._funding)
    if paid != 0:
        # every cash movement of a position is an event (indexers, auditors)
        log IPerpMarket.PositionChanged(
            account=account, size=size, open_notional=self._notional(word), realized_pnl=0, funding_paid=paid,
            fee_paid=0, open_interest=self._open_interest & MASK128
        )
    return (paid, residue)


# ================================================================ views

@external
@view
def account_margin(account: uint256) -> IPerpMarket.AccountMargin:
    """
    @notice The account's contribution to its cross-margin: unrealized PnL
            minus unsettled funding, initial and maintenance margin.
            Rounded against the account. Reverts on an invalid index when the
            account has exposure here.
    """
    return self._account_margin(account)


@internal
@view
def _account_margin(account: uint256) -> IPerpMarket.AccountMargin:
    word: uint256 = self._positions[account]
    orders: uint256 = self._account_orders[account]
    if word == 0 and orders <= layout.A_KEPT:
        return empty(IPerpMarket.AccountMargin)
    pw: uint256 = self.params_word
    mark: uint256 = self._mark(self._index())
    size: int256 = self._size(word)
    notional: uint256 = self._ceil_div(convert(abs(size), uint256) * mark, WAD)
    bids: uint256 = ((orders >> layout.A_BIDS) & layout.M120) * UNIT
    asks: uint256 = ((orders >> layout.A_ASKS) & layout.M120) * UNIT
    # order risk (params_layout.order_risk), in the maintenance margin too, so an account
    # at maintenance stays solvent whatever of its resting orders fills
    risk: uint256 = pl.order_risk(pw, bids, asks)
    return IPerpMarket.AccountMargin(
        pnl=self._upnl(word, mark) - self._funding_owed(account, word, size),
        im=self._ceil_div((notional + max(bids, asks)) * (pw & pl.M30), pl.RATE) + risk,
        mm=self._ceil_div(notional * ((pw >> pl.K_MMR) & pl.M30), pl.RATE) + risk,
    )


@external
@view
def position(account: uint256) -> IPerpMarket.PositionView:
    """
    @notice The account's position: size (base WAD, long > 0), open notional,
            average entry price, mark, unrealized PnL, funding owed, and the
            number of its resting orders. Needs a valid index when open.
    """
    word: uint256 = self._positions[account]
    size: int256 = self._size(word)
    count: uint256 = (self._account_orders[account] & layout.M15)
    if size == 0:
        return IPerpMarket.PositionView(size=0, open_notional=0, entry_price=0, mark=0, unrealized_pnl=0, funding_owed=0, open_orders=count)
    mark: uint256 = self._mark(self._index())
    on: int256 = self._notional(word)
    return IPerpMarket.PositionView(
        size=size,
        open_notional=on,
        entry_price=convert(abs(on) * SWAD // abs(size), uint256),
        mark=mark,
        unrealized_pnl=self._upnl(word, mark),
        funding_owed=self._funding_owed(account, word, size),
        open_orders=count,
    )


@external
@view
def position_size(account: uint256) -> int256:
    """
    @notice The account's position size alone (base WAD, long > 0): no
            index read, for the liquidation engine after a close.
    """
    return self._size(self._positions[account])


@external
@view
def open_order_stats(account: uint256) -> (uint256, uint256, uint256):
    """
    @notice (resting orders, bid notional, ask notional) of the account, quote WAD.
    """
    w: uint256 = self._account_orders[account]
    return ((w & layout.M15), ((w >> layout.A_BIDS) & layout.M120) * UNIT, ((w >> layout.A_ASKS) & layout.M120) * UNIT)


@external
@view
def book_word() -> uint256:
    """
    @notice The packed book word (contracts/modules/book_layout.vy: best
            bid, best ask, last trade, next order id), for Lens.
    """
    return self._book


@external
@view
def level_word(key: uint256) -> uint256:
    """
    @notice The packed word of the level at key tick x 2 + is_bid
            (book_layout.vy), for Lens; an emptied level's word is stale.
    """
    return self._levels[key]


@external
@view
def order_word(order_id: uint256) -> uint256:
    """
    @notice The packed word of a resting order (book_layout.vy), 0 when it
            does not rest, for Lens.
    """
    return self._orders[order_id]


@external
@view
def mark_price() -> uint256:
    """
    @notice median(best bid, best ask, last trade), a missing value replaced
            by the index, clamped to index x (1 +- mark_band). Quote WAD.
    """
    return self._mark(self._index())


@external
@view
def index_price() -> uint256:
    """
    @notice The oracle's index (reverts when invalid).
    """
    return self._index()


@external
@view
def best_bid() -> uint256:
    """
    @notice Best bid price, 0 when the side is empty.
    """
    return (self._book & layout.M56) * TICK_SIZE


@external
@view
def best_ask() -> uint256:
    """
    @notice Best ask price, 0 when the side is empty.
    """
    return ((self._book >> layout.B_ASK) & layout.M56) * TICK_SIZE


@external
@view
def open_interest() -> uint256:
    """
    @notice Open interest, base WAD: the sum of long sizes.
    """
    return self._open_interest & MASK128


@external
@view
def open_interest_sides() -> (uint256, uint256):
    """
    @notice (sum of long sizes, sum of short sizes); always equal.
    """
    oi: uint256 = self._open_interest
    return (oi & MASK128, oi >> 128)


# ================================================================ funding

@external
def set_funding_rate(funding_rate_: address):
    """
    @notice Connect the FundingRate contract that moves the accumulator
            (owner, once).
    """
    ownable._check_owner()
    assert self.funding_rate == empty(address), "market: funding rate already set"
    assert funding_rate_ != empty(address), "market: zero address"
    self.funding_rate = funding_rate_


@external
def add_cumulative_funding(delta: int256) -> int256:
    """
    @notice Move the funding accumulator by `delta` (FundingRate only): quote
            per unit of base owed by longs (negative: shorts pay).
    @return The new cumulative funding.
    """
    assert msg.sender == self.funding_rate, "market: not funding rate"
    fw: uint256 = self._funding
    cum: int256 = self._cum(fw) + delta
    epoch: uint256 = (fw >> F_EPOCH) + 1
    assert abs(cum) < F_OFFSET and epoch < 2**32, "funding accumulator overflow"
    self._funding = (epoch << F_EPOCH) | convert(cum + F_OFFSET, uint256)
    return cum


@external
@view
def cumulative_funding() -> int256:
    """
    @notice The funding accumulator: quote WAD owed per unit of base by a long
            since the market opened (negative: shorts have paid).
    """
    return self._cum(self._funding)


@external
@view
def funding_epoch() -> uint256:
    """
    @notice How many times the funding accumulator has moved.
    """
    return self._funding >> F_EPOCH


# ================================================================ admin

@external
def set_params(params_: IPerpMarket.MarketParams):
    """
    @notice Set every parameter at once (owner), within the hard bounds:
            0.1% <= mmr < imr <= 100%, fees <= 1%, 0.01% <= mark_band <= mmr / 4,
            0.1% <= price_band <= 20%, 0 < min_order_notional < 2**72 wei,
            1 <= max_open_orders <= 1000,
            1 <= max_fills <= 64, max_open_interest > 0.
    """
    ownable._check_owner()
    self._set_params(params_)


# ================================================================ internals: book

@internal
def _insert_order(
    account: uint256,
    owner: address,
    is_buy: bool,
    tick: uint256,
    lots: uint256,
    reduce_only: bool,
    hint: uint256,
    book_: uint256,
) -> (uint256, uint256):
    book: uint256 = book_
    oid: uint256 = ((book >> layout.B_NEXT_ID) & layout.M40)
    book = self._with(book, layout.B_NEXT_ID, 40, oid + 1)
    side: uint256 = 1 if is_buy else 0
    lkey: uint256 = tick * 2 + side
    level: uint256 = self._levels[lkey]
    # a level is live while its tail order rests (an emptied level's word stays, dead)
    prev_oid: uint256 = ((level >> layout.L_TAIL) & layout.M40)
    tail: uint256 = 0
    if level != 0:
        tail = self._orders[prev_oid]
    if tail == 0:
        prev_oid = 0
        # a new price level: link it between its better and worse neighbours
        best_shift: uint256 = layout.B_BID if is_buy else layout.B_ASK
        best: uint256 = ((book >> best_shift) & layout.M56)
        better: uint256 = 0
        worse: uint256 = 0
        if best == 0 or self._at_or_better(tick, best, is_buy):
            worse = best
            book = self._with(book, best_shift, 56, tick)
        else:
            better = best
            if hint != 0:
                assert self._orders[((self._levels[hint * 2 + side]) >> layout.L_TAIL) & layout.M40] != 0 and self._at_or_better(hint, tick, is_buy), "book: bad hint"
                better = hint
            walked: bool = False
            for _i: uint256 in range(MAX_WALK):
                worse = ((self._levels[better * 2 + side]) & layout.M56)
                if worse == 0 or self._at_or_better(tick, worse, is_buy):
                    walked = True
                    break
                better = worse
            assert walked, "book: hint too far"
            bkey: uint256 = better * 2 + side
            self._levels[bkey] = self._with(self._levels[bkey], layout.L_NEXT, 56, tick)
        if worse != 0:
            wkey: uint256 = worse * 2 + side
            self._levels[wkey] = self._with(self._levels[wkey], layout.L_PREV, 56, tick)
        level = (worse << layout.L_NEXT) | (better << layout.L_PREV) | (oid << layout.L_HEAD) | (oid << layout.L_TAIL) | (lots << layout.L_LOTS)
    else:
        self._orders[prev_oid] = (tail & ~layout.M40) | oid
        level = self._with((level & ~(layout.M40 << layout.L_TAIL)) | (oid << layout.L_TAIL), layout.L_LOTS, 64, ((level >> layout.L_LOTS) & layout.M64) + lots)
    self._levels[lkey] = level
    ro: uint256 = 1 if reduce_only else 0
    self._orders[oid] = (
        (prev_oid << layout.O_PREV) | (tick << layout.O_TICK) | (lots << layout.O_LOTS) | (account << layout.O_ACCT) | (side << layout.O_BUY) | (ro << layout.O_RO)
    )
    # every resting order reserves margin, reduce-only included (its fill may lose against the mark)
    a: uint256 = self._account_orders[account]
    if a == 0:
        # the account's first resting order here: its owner may cancel directly from now on
        self._owners[account] = owner
    a = (a + 1) | layout.A_KEPT
    sh: uint256 = layout.A_BIDS if is_buy else layout.A_ASKS
    a = self._with(a, sh, 120, ((a >> sh) & layout.M120) + lots * tick)
    self._account_orders[account] = a
    log IPerpMarket.OrderPlaced(
        account=account, order_id=oid, is_buy=is_buy, price=tick * TICK_SIZE, size=lots * LOT_SIZE, reduce_only=reduce_only
    )
    return (oid, book)


@internal
def _remove_order(oid: uint256, order: uint256, book_: uint256, reason: uint8) -> uint256:
    """
    @dev Unlink a resting order from its level (and the level from the side
         when it empties), release its margin reservation. O(1). Links that
         are never read again stay stale ("book links" at the top): the tail's
         next link, the best level's prev link, an emptied level's word.
    """
    book: uint256 = book_
    is_buy: bool = ((order >> layout.O_BUY) & layout.M1) == 1
    side: uint256 = 1 if is_buy else 0
    tick: uint256 = ((order >> layout.O_TICK) & layout.M56)
    lots: uint256 = ((order >> layout.O_LOTS) & layout.M64)
    account: uint256 = ((order >> layout.O_ACCT) & layout.M48)
    prev_oid: uint256 = ((order >> layout.O_PREV) & layout.M40)
    next_oid: uint256 = (order & layout.M40)
    lkey: uint256 = tick * 2 + side
    level: uint256 = self._levels[lkey]
    left: uint256 = ((level >> layout.L_LOTS) & layout.M64) - lots
    if left == 0:
        # the level empties: unlink it. Its own word is left as it is, dead:
        # its tail order (this one) is cleared below, and nothing links to it.
        b: uint256 = book
        if book == BOOK_IN_STORAGE:
            b = self._book
        best_shift: uint256 = layout.B_BID if is_buy else layout.B_ASK
        worse: uint256 = (level & layout.M56)
        if ((b >> best_shift) & layout.M56) == tick:
            # the best level: the next worse becomes the best (its prev link, never
            # read while it is the best, is rewritten when a better level arrives)
            b = self._with(b, best_shift, 56, worse)
            if book == BOOK_IN_STORAGE:
                self._book = b
            else:
                book = b
        else:
            # dev: a level that is not the best has its live better neighbour as prev
            better: uint256 = ((level >> layout.L_PREV) & layout.M56)
            bkey: uint256 = better * 2 + side
            self._levels[bkey] = self._with(self._levels[bkey], layout.L_NEXT, 56, worse)
            if worse != 0:
                wkey: uint256 = worse * 2 + side
                self._levels[wkey] = self._with(self._levels[wkey], layout.L_PREV, 56, better)
    else:
        if ((level >> layout.L_HEAD) & layout.M40) == oid:
            # the head leaves (a fill, mostly): its successor becomes the head.
            # A head's prev link is never read, so the successor is not rewritten.
            level = (level & ~(layout.M40 << layout.L_HEAD)) | (next_oid << layout.L_HEAD)
        elif ((level >> layout.L_TAIL) & layout.M40) == oid:
            # the tail leaves: its predecessor becomes the tail. A tail's next
            # link is never read (the next order placed here rewrites it).
            level = (level & ~(layout.M40 << layout.L_TAIL)) | (prev_oid << layout.L_TAIL)
        else:
            # dev: an order inside its level has live neighbours both ways
            self._orders[prev_oid] = (self._orders[prev_oid] & ~layout.M40) | next_oid
            self._orders[next_oid] = (self._orders[next_oid] & ~(layout.M40 << layout.O_PREV)) | (prev_oid << layout.O_PREV)
        # dev: the fields below hold at least what is taken out: no borrow
        self._levels[lkey] = level - (lots << layout.L_LOTS)
    self._orders[oid] = 0
    self._account_orders[account] -= 1 + ((lots * tick) << (layout.A_BIDS if is_buy else layout.A_ASKS))
    if reason != REMOVED_FILLED:
        # a filled order's end is already told by its Fill (remaining 0)
        log IPerpMarket.OrderRemoved(account=account, order_id=oid, remaining=lots * LOT_SIZE, reason=reason)
    return book


@internal
def _reduce_order(oid: uint256, order: uint256, lkey: uint256, lots: uint256):
    """
    @dev A partial fill of a resting order: it keeps its place in the queue.
    """
    # dev: each field holds at least `lots` (x tick): no borrow
    self._orders[oid] = order - (lots << layout.O_LOTS)
    self._levels[lkey] -= lots << layout.L_LOTS
    sh: uint256 = layout.A_BIDS if ((order >> layout.O_BUY) & layout.M1) == 1 else layout.A_ASKS
    self._account_orders[((order >> layout.O_ACCT) & layout.M48)] -= (lots * ((order >> layout.O_TICK) & layout.M56)) << sh


@internal
@view
def _only_clearinghouse():
    assert msg.sender == CLEARINGHOUSE, "market: not clearinghouse"


@internal
@pure
def _crosses(book: uint256, is_buy: bool, tick: uint256) -> bool:
    """
    @dev An order at `tick` crosses the opposite side's best level.
    """
    best: uint256 = ((book >> layout.B_ASK) & layout.M56) if is_buy else (book & layout.M56)
    return best != 0 and ((is_buy and tick >= best) or (not is_buy and tick <= best))


@internal
@pure
def _at_or_better(a: uint256, b: uint256, is_buy: bool) -> bool:
    """
    @dev Price tick `a` is at or better than `b` for the side (bids: higher).
    """
    if is_buy:
        return a >= b
    return a <= b


# ================================================================ internals: positions

@internal
def _apply_trade(
    account: uint256, delta: int256, trade_value: uint256, fw: uint256, fee: uint256, maker_fill: bool, oi_: uint256
) -> (int256, int256, uint256, int256, int256, uint256):
    """
    @dev Change a position by `delta` (base WAD, signed) for `value` (quote
         WAD, the fill notional). Settles funding first. Realized PnL uses
         the average entry price; open interest follows. Returns (realized
         PnL, funding paid, funding residue, new size, new open notional,
         open interest): the caller reads open interest (`oi_`, long side |
         short side) once and writes it once after all its trades.
         A maker's fill (`maker_fill`) logs no PositionChanged: its Fill tells it.
    """
    word: uint256 = self._positions[account]
    # dev: the position word's fields, inline (a flat word is 0: size and notional 0)
    size: int256 = 0
    on: int256 = 0
    if word != 0:
        size = convert(word & M112, int256) - P_OFFSET
        on = convert((word >> P_NOTIONAL) & M112, int256) - P_OFFSET
    fpaid: int256 = 0
    residue: uint256 = 0
    if word == 0 or (word >> P_EPOCH) != (fw >> F_EPOCH):
        fpaid, residue = self._settle_funding(account, word, size, fw)
    signed_value: int256 = convert(trade_value, int256)
    if delta < 0:
        signed_value = -signed_value
    realized: int256 = 0
    new_size: int256 = size + delta
    if size == 0 or (size > 0) == (delta > 0):
        on += signed_value
    elif abs(delta) <= abs(size):
        # reduce or close: the closed part's cost basis, rounded up (against the account)
        removed: int256 = on
        if abs(delta) < abs(size):
            removed = self._ceil_div_signed(on * abs(delta), abs(size))
        realized = -signed_value - removed
        on -= removed
    else:
        # flip: close all at the pro-rata value (rounded toward +inf: against
        # the account whichever the side), open the rest
        close_value: int256 = self._ceil_div_signed(signed_value * abs(size), abs(delta))
        realized = -close_value - on
        on = signed_value - close_value
    assert abs(new_size) < P_OFFSET and abs(on) < P_OFFSET, "position too large"
    if new_size == 0:
        # dev: a flat position has no cost basis left (close removes it all)
        self._positions[account] = 0
    else:
        self._positions[account] = (
            ((fw >> F_EPOCH) << P_EPOCH) | (convert(on + P_OFFSET, uint256) << P_NOTIONAL) | convert(new_size + P_OFFSET, uint256)
        )
    # open interest: long side | short side
    longs: uint256 = oi_ & MASK128
    shorts: uint256 = oi_ >> 128
    if size > 0:
        longs -= convert(size, uint256)
    elif size < 0:
        shorts -= convert(-size, uint256)
    if new_size > 0:
        longs += convert(new_size, uint256)
    elif new_size < 0:
        shorts += convert(-new_size, uint256)
    if not maker_fill:
        # a maker's fill tells its new position in the Fill event instead
        log IPerpMarket.PositionChanged(
            account=account, size=new_size, open_notional=on, realized_pnl=realized, funding_paid=fpaid,
            fee_paid=fee, open_interest=longs
        )
    return (realized, fpaid, residue, new_size, on, (shorts << 128) | longs)


@internal
def _settle_funding(account: uint256, word: uint256, size: int256, fw: uint256) -> (int256, uint256):
    """
    @dev Funding owed since the snapshot, payer rounded up, receiver down;
         the rounding residue (in 1e-18 wei) accrues and is swept whole.
         A position written in the accumulator's current epoch owes nothing:
         its snapshot is not read.
    """
    if word != 0 and (word >> P_EPOCH) == (fw >> F_EPOCH):
        return (0, 0)
    cum: int256 = self._cum(fw)
    snap: int256 = self.funding_snapshot[account]
    if snap == cum:
        return (0, 0)
    self.funding_snapshot[account] = cum
    if size == 0:
        return (0, 0)
    exact: int256 = size * (cum - snap)
    paid: int256 = self._ceil_div_signed(exact, SWAD)
    dust: uint256 = self._funding_dust + convert(paid * SWAD - exact, uint256)
    self._funding_dust = dust % WAD
    return (paid, dust // WAD)


@internal
@view
def _funding_owed(account: uint256, word: uint256, size: int256) -> int256:
    if size == 0:
        return 0
    fw: uint256 = self._funding
    if (word >> P_EPOCH) == (fw >> F_EPOCH):
        return 0
    return self._ceil_div_signed(size * (self._cum(fw) - self.funding_snapshot[account]), SWAD)


@internal
@view
def _upnl(word: uint256, mark: uint256) -> int256:
    """
    @dev size x mark - open notional, rounded down (against the account).
    """
    size: int256 = self._size(word)
    return self._floor_div_signed(size * convert(mark, int256), SWAD) - self._notional(word)


@internal
@view
def _index() -> uint256:
    cached: uint256 = self._index_cache
    if cached != 0:
        return cached
    return staticcall ORACLE.index()


@internal
@view
def _mark(index: uint256) -> uint256:
    book: uint256 = self._book
    bid: uint256 = (book & layout.M56) * TICK_SIZE
    ask: uint256 = ((book >> layout.B_ASK) & layout.M56) * TICK_SIZE
    last: uint256 = ((book >> layout.B_LAST) & layout.M56) * TICK_SIZE
    if bid == 0:
        bid = index
    if ask == 0:
        ask = index
    if last == 0:
        last = index
    m: uint256 = max(min(bid, ask), min(max(bid, ask), last))
    band: uint256 = index * ((self.params_word >> pl.K_BAND) & pl.M30) // pl.RATE
    return min(max(m, index - band), index + band)


# ================================================================ internals: params

@internal
def _set_params(p: IPerpMarket.MarketParams):
    assert p.mmr >= MIN_MMR and p.mmr < p.imr and p.imr <= MAX_IMR, "market: margin rates out of bounds"
    assert p.taker_fee <= MAX_FEE and p.maker_fee <= MAX_FEE, "market: fee out of bounds"
    assert p.mark_band >= MIN_BAND and p.mark_band * MARK_BAND_PER_MMR <= p.mmr, "market: mark band out of bounds"
    assert p.price_band >= MIN_PRICE_BAND and p.price_band <= MAX_PRICE_BAND, "market: price band out of bounds"
    assert p.min_order_notional > 0, "market: min order notional is zero"
    assert p.max_open_orders >= 1 and p.max_open_orders <= MAX_OPEN_ORDERS, "market: max open orders out of bounds"
    assert p.max_fills >= 1 and p.max_fills <= MAX_FILLS, "market: max fills out of bounds"
    assert p.max_open_interest > 0 and p.max_open_interest < 2**127, "market: open interest cap out of bounds"
    assert p.min_order_notional < 2**72, "market: min order notional out of bounds"
    r: uint256 = pl.RATE_WEI
    for x: uint256 in [p.imr, p.mmr, p.taker_fee, p.maker_fee, p.mark_band, p.price_band]:
        assert x % r == 0, "market: rates must be whole multiples of 1e-9"
    self.params_word = (
        (p.imr // r) | ((p.mmr // r) << pl.K_MMR) | ((p.taker_fee // r) << pl.K_TAKER) | ((p.maker_fee // r) << pl.K_MAKER)
        | ((p.mark_band // r) << pl.K_BAND) | (p.max_open_orders << pl.K_ORDERS) | (p.max_fills << pl.K_FILLS)
        | ((p.price_band // r) << pl.K_PBAND) | (p.min_order_notional << pl.K_MIN)
    )
    self.max_open_interest = p.max_open_interest
    log IPerpMarket.ParamsSet(
        imr=p.imr, mmr=p.mmr, taker_fee=p.taker_fee, maker_fee=p.maker_fee, mark_band=p.mark_band,
        min_order_notional=p.min_order_notional, max_open_orders=p.max_open_orders, max_fills=p.max_fills,
        max_open_interest=p.max_open_interest, price_band=p.price_band
    )


# ================================================================ internals: bits and math

@internal
@pure
def _with(word: uint256, sh: uint256, nbits: uint256, v: uint256) -> uint256:
    assert v < (1 << nbits)  # dev: packed field overflow
    mask: uint256 = ((1 << nbits) - 1) << sh
    return (word & ~mask) | (v << sh)


@internal
@pure
def _size(word: uint256) -> int256:
    if word == 0:
        return 0
    return convert(word & M112, int256) - P_OFFSET


@internal
@pure
def _notional(word: uint256) -> int256:
    if word == 0:
        return 0
    return convert((word >> P_NOTIONAL) & M112, int256) - P_OFFSET


@internal
@pure
def _cum(fw: uint256) -> int256:
    return convert(fw & M224, int256) - F_OFFSET


@internal
@pure
def _ceil_div(x: uint256, y: uint256) -> uint256:
    return (x + y - 1) // y


@internal
@pure
def _floor_div_signed(x: int256, y: int256) -> int256:
    # dev: y > 0; Vyper's // truncates toward zero
    q: int256 = x // y
    if x < 0 and q * y != x:
        q -= 1
    return q


@internal
@pure
def _ceil_div_signed(x: int256, y: int256) -> int256:
    # dev: y > 0
    q: int256 = x // y
    if x > 0 and q * y != x:
        q += 1
    return q

