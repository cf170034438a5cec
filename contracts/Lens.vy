# pragma version 0.4.3
"""
@title Lens
@license MIT
@notice Read-only views over a Clearinghouse and its markets for people,
        front ends, keepers' off-chain helpers and tests (PROTOCOL.md §7,
        §15): everything about one account in one call, and the order-book
        views no contract needs during a call (market summary with depth,
        hints, an account's order ids, one order), read from the markets'
        packed words (contracts/modules/book_layout.vy). It holds no state
        but the clearinghouse's address and changes nothing; the contracts
        keep the views that another contract or a keeper's per-block path
        needs (Clearinghouse.margin and health, PerpMarket.position,
        mark_price, best_bid/best_ask, FundingRate.impact_prices,
        LiquidationEngine.adl_score).
"""

from .interfaces import IIndexOracle
from .interfaces import IPerpMarket
from .modules import book_layout as layout
from .modules import params_layout as pl

MAX_MARKETS: constant(uint256) = 16
MAX_DEPTH: constant(uint256) = 50
MAX_SCAN: constant(uint256) = 10_000
MAX_ORDER_PAGE: constant(uint256) = 1000


struct Level:
    price: uint256
    size: uint256
    orders: uint256


struct MarketSummary:
    index: uint256
    index_valid: bool
    mark: uint256
    best_bid: uint256
    best_ask: uint256
    last_trade: uint256
    open_interest: uint256
    bids: DynArray[Level, MAX_DEPTH]
    asks: DynArray[Level, MAX_DEPTH]


struct MarketPosition:
    market: address
    size: int256
    entry_price: uint256
    mark: uint256
    unrealized_pnl: int256
    funding_owed: int256
    open_orders: uint256


struct AccountSummary:
    account: uint256
    valid: bool                 # the price-dependent fields are known (see account_summary)
    cash: int256                # WAD
    cash_units: int256          # token units, rounded down (toward -inf)
    equity: int256              # WAD
    equity_units: int256        # token units, rounded down (toward -inf)
    initial_margin: uint256     # WAD
    maintenance_margin: uint256 # WAD
    withdrawable: uint256       # WAD: what withdraw accepts now
    withdrawable_units: uint256 # token units, rounded down: pass it to withdraw
    positions: DynArray[MarketPosition, MAX_MARKETS]


interface IClearinghouseView:
    def PRECISION() -> uint256: view
    def account_of(owner: address, subaccount: uint256) -> uint256: view
    def cash(account: uint256) -> int256: view
    def active_markets(account: uint256) -> uint256: view
    def markets(index: uint256) -> address: view
    def margin(account: uint256) -> (int256, uint256, uint256, uint256): view


interface IMarketView:
    def ORACLE() -> address: view
    def TICK_SIZE() -> uint256: view
    def LOT_SIZE() -> uint256: view
    def mark_price() -> uint256: view
    def open_interest() -> uint256: view
    def book_word() -> uint256: view
    def level_word(key: uint256) -> uint256: view
    def order_word(order_id: uint256) -> uint256: view
    def params_word() -> uint256: view
    def max_open_interest() -> uint256: view
    def position_size(account: uint256) -> int256: view
    def open_order_stats(account: uint256) -> (uint256, uint256, uint256): view


CLEARINGHOUSE: public(immutable(address))
# the clearinghouse's token units -> WAD factor, 10 ** (18 - collateral decimals)
PRECISION: public(immutable(uint256))


@deploy
def __init__(clearinghouse: address):
    assert clearinghouse != empty(address), "zero address"
    CLEARINGHOUSE = clearinghouse
    PRECISION = staticcall IClearinghouseView(clearinghouse).PRECISION()


@external
@view
def account_summary(owner: address, subaccount: uint256) -> AccountSummary:
    """
    @notice Everything about one account: cash, equity, IM, MM, withdrawable
            (WAD) and each market where it has a position or resting orders:
            size, entry, mark, unrealized PnL, funding owed and resting
            orders. Cash, equity and withdrawable also in token units
            (`*_units`, WAD // PRECISION rounded down, toward -inf: never
            more than the account has, a debt never smaller).
            `withdrawable` is what `Clearinghouse.withdraw` accepts in this
            block: min(cash - funding owed, equity - IM), at least 0, as
            withdraw settles the funding first (`Clearinghouse.margin`'s
            uses the cash before); `withdrawable_units` of it passes withdraw.
            Never reverts on an invalid index: `valid` is False when a market
            where the account has a position or orders has an invalid index
            (`Clearinghouse.margin` reverts); then equity, IM, MM,
            withdrawable and their units are 0, and such a market lists its
            position's size and orders with entry, mark, PnL and funding 0.
            Empty (valid) for an unknown account.
    """
    ch: IClearinghouseView = IClearinghouseView(CLEARINGHOUSE)
    account: uint256 = staticcall ch.account_of(owner, subaccount)
    s: AccountSummary = empty(AccountSummary)
    s.valid = True
    if account == 0:
        return s
    s.account = account
    s.cash = staticcall ch.cash(account)
    s.cash_units = self._floor_units(s.cash)
    ok: bool = False
    res: Bytes[224] = b""
    # dev: margin reverts only on an invalid index of a market with exposure (the price views
    # do): a failed call is the flag, at no cost to a valid read (an index_status per market
    # would add two calls each)
    ok, res = raw_call(
        CLEARINGHOUSE, abi_encode(account, method_id=method_id("margin(uint256)")), max_outsize=128,
        is_static_call=True, revert_on_failure=False
    )
    s.valid = ok
    owed: int256 = 0
    mask: uint256 = staticcall ch.active_markets(account)
    for i: uint256 in range(MAX_MARKETS):
        if mask == 0:
            break
        if mask & 1 == 1:
            market: address = staticcall ch.markets(i)
            v: IPerpMarket.PositionView = self._position(market, account)
            owed += v.funding_owed
            if v.size != 0 or v.open_orders != 0:
                s.positions.append(MarketPosition(
                    market=market, size=v.size, entry_price=v.entry_price, mark=v.mark,
                    unrealized_pnl=v.unrealized_pnl, funding_owed=v.funding_owed, open_orders=v.open_orders
                ))
        mask >>= 1
    if not ok:
        return s
    s.equity, s.initial_margin, s.maintenance_margin, s.withdrawable = abi_decode(res, (int256, uint256, uint256, uint256))
    s.equity_units = self._floor_units(s.equity)
    # dev: withdraw's two checks after its funding settlement (which pays exactly `owed`,
    # the same rounding): equity - amount >= IM and cash - owed >= amount
    free: int256 = min(s.cash - owed, s.equity - convert(s.initial_margin, int256))
    s.withdrawable = convert(max(free, 0), uint256)
    s.withdrawable_units = s.withdrawable // PRECISION
    return s


@external
@view
def market_params(market: address) -> IPerpMarket.MarketParams:
    """
    @notice The market's parameters, as PerpMarket.set_params takes them
            (decoded from PerpMarket.params_word, modules/params_layout.vy).
    """
    return pl.decode(staticcall IMarketView(market).params_word(), staticcall IMarketView(market).max_open_interest())


@external
@view
def market_summary(market: address, depth: uint256) -> MarketSummary:
    """
    @notice Best bid/ask, depth by level (up to `depth` <= 50 per side:
            price, size, orders), mark, index (index_valid False and mark 0
            when invalid), last trade and open interest of a market.
    """
    m: IMarketView = IMarketView(market)
    tick: uint256 = staticcall m.TICK_SIZE()
    s: MarketSummary = empty(MarketSummary)
    fresh: uint256 = 0
    s.index_valid, s.index, fresh = staticcall IIndexOracle(staticcall m.ORACLE()).index_status()
    if s.index_valid:
        s.mark = staticcall m.mark_price()
    book: uint256 = staticcall m.book_word()
    s.best_bid = ((book >> layout.B_BID) & layout.M56) * tick
    s.best_ask = ((book >> layout.B_ASK) & layout.M56) * tick
    s.last_trade = ((book >> layout.B_LAST) & layout.M56) * tick
    s.open_interest = staticcall m.open_interest()
    lot: uint256 = staticcall m.LOT_SIZE()
    s.bids = self._depth(m, (book >> layout.B_BID) & layout.M56, 1, depth, tick, lot)
    s.asks = self._depth(m, (book >> layout.B_ASK) & layout.M56, 0, depth, tick, lot)
    return s


@external
@view
def find_hint(market: address, is_buy: bool, price: uint256) -> uint256:
    """
    @notice The best hint for an order at `price` (Clearinghouse.place_order's
            `hint`): the nearest existing level on the same side at or
            better than it, as a price tick; 0 when none.
    """
    m: IMarketView = IMarketView(market)
    tick: uint256 = price // staticcall m.TICK_SIZE()
    side: uint256 = 1 if is_buy else 0
    book: uint256 = staticcall m.book_word()
    cur: uint256 = (book >> layout.B_BID) & layout.M56 if is_buy else (book >> layout.B_ASK) & layout.M56
    if cur == 0 or not self._at_or_better(cur, tick, is_buy):
        return 0
    for _i: uint256 in range(MAX_SCAN):
        nxt: uint256 = (staticcall m.level_word(cur * 2 + side) >> layout.L_NEXT) & layout.M56
        if nxt == 0 or not self._at_or_better(nxt, tick, is_buy):
            break
        cur = nxt
    return cur


@external
@view
def orders_of(market: address, account: uint256, from_id: uint256, count: uint256) -> DynArray[uint256, MAX_ORDER_PAGE]:
    """
    @notice Resting order ids of `account` in `market` among ids
            [from_id, from_id + count) (count <= 1000; ids start at 1, see
            next_order_id): the list Clearinghouse.cancel_all and
            LiquidationEngine.liquidate take.
    """
    out: DynArray[uint256, MAX_ORDER_PAGE] = []
    for i: uint256 in range(count, bound=MAX_ORDER_PAGE):
        o: uint256 = staticcall IMarketView(market).order_word(from_id + i)
        if o != 0 and ((o >> layout.O_ACCT) & layout.M48) == account:
            out.append(from_id + i)
    return out


@external
@view
def order(market: address, order_id: uint256) -> (uint256, bool, uint256, uint256, bool):
    """
    @notice A resting order: (account, is_buy, price, remaining size, reduce_only);
            account 0 when the order does not rest (filled, cancelled, unknown).
    """
    o: uint256 = staticcall IMarketView(market).order_word(order_id)
    return (
        (o >> layout.O_ACCT) & layout.M48,
        ((o >> layout.O_BUY) & layout.M1) == 1,
        ((o >> layout.O_TICK) & layout.M56) * staticcall IMarketView(market).TICK_SIZE(),
        ((o >> layout.O_LOTS) & layout.M64) * staticcall IMarketView(market).LOT_SIZE(),
        ((o >> layout.O_RO) & layout.M1) == 1,
    )


@external
@view
def next_order_id(market: address) -> uint256:
    """
    @notice The id the market's next resting order will get (ids start at 1).
    """
    return (staticcall IMarketView(market).book_word() >> layout.B_NEXT_ID) & layout.M40


@external
@view
def last_trade_price(market: address) -> uint256:
    """
    @notice Price of the market's last fill, 0 before the first.
    """
    book: uint256 = staticcall IMarketView(market).book_word()
    return ((book >> layout.B_LAST) & layout.M56) * staticcall IMarketView(market).TICK_SIZE()


@internal
@view
def _depth(m: IMarketView, start: uint256, side: uint256, depth: uint256, tick: uint256, lot: uint256) -> DynArray[Level, MAX_DEPTH]:
    out: DynArray[Level, MAX_DEPTH] = []
    cur: uint256 = start
    for _i: uint256 in range(MAX_DEPTH):
        if cur == 0 or len(out) >= depth:
            break
        level: uint256 = staticcall m.level_word(cur * 2 + side)
        n: uint256 = 0
        oid: uint256 = (level >> layout.L_HEAD) & layout.M40
        tail: uint256 = (level >> layout.L_TAIL) & layout.M40
        for _j: uint256 in range(MAX_SCAN):
            n += 1
            if oid == tail:
                break
            oid = (staticcall m.order_word(oid) >> layout.O_NEXT) & layout.M40
        out.append(Level(price=cur * tick, size=((level >> layout.L_LOTS) & layout.M64) * lot, orders=n))
        cur = (level >> layout.L_NEXT) & layout.M56
    return out


@internal
@view
def _position(market: address, account: uint256) -> IPerpMarket.PositionView:
    """
    @dev `PerpMarket.position`, or, when it reverts (an open position on an
         invalid index), its size and resting orders alone (no index read).
    """
    ok: bool = False
    res: Bytes[224] = b""
    ok, res = raw_call(
        market, abi_encode(account, method_id=method_id("position(uint256)")), max_outsize=224,
        is_static_call=True, revert_on_failure=False
    )
    if ok:
        return abi_decode(res, IPerpMarket.PositionView)
    v: IPerpMarket.PositionView = empty(IPerpMarket.PositionView)
    v.size = staticcall IMarketView(market).position_size(account)
    bids: uint256 = 0
    asks: uint256 = 0
    v.open_orders, bids, asks = staticcall IMarketView(market).open_order_stats(account)
    return v


@internal
@view
def _floor_units(wad: int256) -> int256:
    """
    @dev Token units of a signed WAD amount, rounded toward -inf.
    """
    p: int256 = convert(PRECISION, int256)
    q: int256 = wad // p
    if wad < 0 and q * p != wad:
        q -= 1
    return q


@internal
@pure
def _at_or_better(a: uint256, b: uint256, is_buy: bool) -> bool:
    """
    @dev Tick `a` is at or better than tick `b` for the side.
    """
    if is_buy:
        return a >= b
    return a <= b
