# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title LiquidationEngine
@license MIT
@notice Liquidation, backstop takeover, auto-deleveraging and bad-debt
        settlement of vyperp (PROTOCOL.md §9-11), beside the Clearinghouse
        it was deployed for. It holds no tokens: it reads margins and
        positions, decides, and changes cash and positions only through the
        Clearinghouse's engine_* functions, which accept no other caller. It
        keeps the liquidation parameters of every listed market.
@custom:security Every rule of the liquidation lives here and every booking
        in the Clearinghouse: a bug here can move positions and cash between
        accounts at the prices it computes, never take tokens out (only
        Clearinghouse.withdraw moves tokens, under its margin check). The
        Clearinghouse's owner replaces this contract only with a delay.
"""

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

from .interfaces import IClearinghouse
from .interfaces import IInsuranceFund
from .interfaces import ILiquidationEngine
from .interfaces import IPerpMarket
from .modules import params_layout as pl

implements: ILiquidationEngine

initializes: ownable
initializes: ownable_2step[ownable := ownable]

exports: (
    # two-step ownership (liquidation parameters)
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)


struct LiquidationParams:
    liquidation_fee: uint256        # WAD fraction of closed notional
    liquidator_share: uint256       # WAD fraction of the fee paid to the caller
    bankrupt_band: uint256          # a bankrupt account closes within mark x (1 -+ band)
    takeover_discount: uint256      # backstop takeover at mark x (1 -+ discount)
    small_position_notional: uint256  # positions and remainders at or below close whole


interface IMarketView:
    def TICK_SIZE() -> uint256: view
    def LOT_SIZE() -> uint256: view
    def params_word() -> uint256: view
    def open_order_stats(account: uint256) -> (uint256, uint256, uint256): view


interface IClearinghouseMarkets:
    def active_markets(account: uint256) -> uint256: view
    def markets(i: uint256) -> address: view


WAD: constant(uint256) = 10**18
MAX_CANCELS: constant(uint256) = 200
MAX_ADL: constant(uint256) = 32
MAX_MARKETS: constant(uint256) = 16
ADL_ROUNDING: constant(int256) = 4         # wei of a counterparty's equity kept for the PnL roundings

# hard bounds of the liquidation parameters
MAX_LIQUIDATION_FEE: constant(uint256) = WAD // 20    # 5%
MIN_BANKRUPT_BAND: constant(uint256) = WAD // 1_000   # 0.1%
MAX_BANKRUPT_BAND: constant(uint256) = WAD // 2       # 50%
MAX_TAKEOVER_DISCOUNT: constant(uint256) = WAD // 10  # 10%

CLEARINGHOUSE: public(immutable(address))
# read from the clearinghouse at deployment (immutables there too)
INSURANCE_FUND: immutable(address)
INSURANCE_ACCOUNT: immutable(uint256)
PRECISION: immutable(uint256)

# liquidation parameters of a market, packed in one word read once per call:
# liquidation_fee (64) | liquidator_share (64) | bankrupt_band (64) | takeover_discount (64)
_liquidation_rates: HashMap[address, uint256]
_small_position_notional: HashMap[address, uint256]
# market -> tick size (128) | lot size (128), read at listing; 0: not listed here
_grid: HashMap[address, uint256]


@deploy
def __init__(clearinghouse_: address):
    """
    @notice Deploy the engine of one clearinghouse. The clearinghouse's owner
            then connects it (Clearinghouse.set_liquidation_engine).
    """
    assert clearinghouse_ != empty(address), "zero address"
    ownable.__init__()
    ownable_2step.__init__()
    CLEARINGHOUSE = clearinghouse_
    INSURANCE_FUND = staticcall IClearinghouse(clearinghouse_).insurance_fund()
    INSURANCE_ACCOUNT = staticcall IClearinghouse(clearinghouse_).insurance_account()
    PRECISION = staticcall IClearinghouse(clearinghouse_).PRECISION()


# ================================================================ liquidation

@external
def liquidate(account: uint256, market: address, max_size: uint256, order_ids: DynArray[uint256, MAX_CANCELS]) -> uint256:
    """
    @notice Liquidate an account whose equity is below its maintenance
            margin (permissionless; PROTOCOL.md §9). Cancels its orders in
            `market` (listed by the caller; while some remain, or where it
            holds orders only, the call only cancels), then closes part of
            its position by an IOC into the book: enough to restore initial
            margin, at most `max_size`, the whole of it when it or the
            remainder is at most small_position_notional. A solvent account
            never fills beyond its bankruptcy price, the order risk of its
            other markets' orders kept out of it; a bankrupt one (equity < 0) closes whole within
            mark x (1 -+ bankrupt_band), and only when the insurance fund can
            cover the worst case (else: adl). Fee: liquidation_fee x closed
            notional at mark, capped at the equity left; the caller's share
            goes to its subaccount 0 (none when it owns the account), the
            rest to the insurance fund. A flat account left below zero has
            its bad debt covered by the insurance fund.
    @return The size closed (base WAD), 0 when nothing filled.
    """
    grid: uint256 = self._grid_of(market)
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._check_and_cancel(account, market, order_ids, False)
    v: IPerpMarket.PositionView = staticcall IPerpMarket(market).position(account)
    if v.size == 0:
        # dev: a market of the account's orders only: they are cancelled, so
        # their order risk no longer holds back the close in its other markets
        assert len(order_ids) > 0, "liquidate: no position"
        return 0
    if v.open_orders > 0 or equity >= convert(mm, int256):
        # dev: more orders than one call cancels: progress, no close yet
        return 0
    lp: LiquidationParams = self._liquidation_params(market)
    tick: uint256 = grid >> 128
    lot: uint256 = grid & (2**128 - 1)
    is_long: bool = v.size > 0
    abs_size: uint256 = convert(abs(v.size), uint256)
    q: uint256 = abs_size
    limit: uint256 = 0
    if equity >= 0:
        # enough to restore initial margin: q x mark x (imr - fee) >= IM - equity
        imr: uint256 = ((staticcall IMarketView(market).params_word()) & pl.M30) * pl.RATE_WEI
        gap: int256 = convert(im, int256) - equity
        if imr > lp.liquidation_fee and gap > 0:
            q = min(q, self._round_up(self._ceil_div(convert(gap, uint256) * WAD * WAD, v.mark * (imr - lp.liquidation_fee)), lot))
        # never beyond the bankruptcy price (where equity reaches zero), the
        # order risk of its other markets' resting orders kept out of it
        limit = self._bankruptcy_price(v.mark, self._spendable(account, market, equity), v.size)
    else:
        assert self._worst(equity, abs_size, v.mark, lp.bankrupt_band) <= self._insurance_capacity(), "liquidate: insurance fund cannot cover, adl"
        band: uint256 = v.mark * lp.bankrupt_band // WAD
        limit = v.mark - band if is_long else v.mark + band
    q = self._close_size(min(q, max_size), abs_size, v.mark, lp)
    # the limit on the tick grid, on the safe side of the bound
    if is_long:
        limit = self._round_up(limit, tick)
    else:
        limit = limit // tick * tick
    if limit == 0:
        return 0
    # the equity after the close: the clearinghouse books the trade and
    # returns the margin with this market's part from the trade itself
    equity_after: int256 = extcall IClearinghouse(CLEARINGHOUSE).engine_close(account, market, not is_long, q, limit)
    after: int256 = staticcall IPerpMarket(market).position_size(account)
    closed: uint256 = abs_size - convert(abs(after), uint256)
    fee: uint256 = self._fee(equity_after, closed * v.mark // WAD, lp)
    equity_after -= convert(fee, int256)
    # dev: the close moves the mark; the rest revalued may not sink a solvent account
    assert equity < 0 or equity_after >= 0, "liquidate: would leave the account below zero, takeover"
    keeper_fee: uint256 = extcall IClearinghouse(CLEARINGHOUSE).engine_settle(account, fee, msg.sender, lp.liquidator_share, False)
    log ILiquidationEngine.Liquidation(
        account=account, market=market, liquidator=msg.sender, closed_size=closed, mark=v.mark, limit_price=limit,
        fee=fee, liquidator_fee=keeper_fee, equity_before=equity, equity_after=equity_after, size_after=after,
        bankrupt=equity < 0
    )
    return closed


@external
def takeover(account: uint256, market: address, size: uint256, subaccount: uint256) -> uint256:
    """
    @notice Backstop takeover (PROTOCOL.md §9.5): the caller's subaccount
            takes over `size` of a liquidatable account's position that the
            book could not absorb, at mark x (1 -+ takeover_discount) bounded
            by the bankruptcy price, and must meet initial margin afterwards.
            A bankrupt account (equity < 0) is taken over whole at
            mark x (1 -+ takeover_discount), only when the insurance fund can
            cover the worst case; its deficit then goes to the fund. The
            account must have no resting orders here (call
            liquidate first). The liquidation fee on the taken notional goes
            to the insurance fund; the discount is the taker's reward.
    @return The takeover price, quote WAD.
    """
    lot: uint256 = self._grid_of(market) & (2**128 - 1)
    ch: IClearinghouse = IClearinghouse(CLEARINGHOUSE)
    taker: uint256 = staticcall ch.account_of(msg.sender, subaccount)
    assert taker != 0, "no such account"
    owner: address = empty(address)
    sub: uint256 = 0
    owner, sub = staticcall ch.account_key(account)
    assert owner != msg.sender, "takeover: own account"
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._margin(account)
    assert equity < convert(mm, int256), "not liquidatable"
    v: IPerpMarket.PositionView = staticcall IPerpMarket(market).position(account)
    assert v.size != 0, "takeover: no position"
    assert v.open_orders == 0, "takeover: account has open orders, liquidate first"
    lp: LiquidationParams = self._liquidation_params(market)
    abs_size: uint256 = convert(abs(v.size), uint256)
    assert size % lot == 0, "size off lot"
    q: uint256 = self._close_size(min(size, abs_size), abs_size, v.mark, lp)
    # a solvent account: bounded by its bankruptcy price; a bankrupt one
    # (the book could not close it): whole, the fund pays the discount
    discount: uint256 = v.mark * lp.takeover_discount // WAD
    bk: uint256 = 0 if v.size > 0 else max_value(uint256)  # no bound
    if equity < 0:
        assert self._worst(equity, abs_size, v.mark, lp.takeover_discount) <= self._insurance_capacity(), "takeover: insurance fund cannot cover, adl"
        q = abs_size
    else:
        bk = self._bankruptcy_price(v.mark, self._spendable(account, market, equity), v.size)
    price: uint256 = 0
    delta: int256 = convert(q, int256)
    if v.size > 0:
        price = max(v.mark - discount, bk)
    else:
        price = min(v.mark + discount, bk)
        delta = -delta
    extcall ch.engine_transfer(account, taker, market, delta, price, True)
    equity_after: int256 = 0
    equity_after, im, mm = self._margin(account)
    fee: uint256 = self._fee(equity_after, q * v.mark // WAD, lp)
    extcall ch.engine_settle(account, fee, empty(address), 0, False)
    te: int256 = 0
    tim: uint256 = 0
    tmm: uint256 = 0
    te, tim, tmm = self._margin(taker)
    assert te >= convert(tim, int256), "takeover: liquidator below initial margin"
    log ILiquidationEngine.Takeover(
        account=account, market=market, liquidator=taker, size=q, price=price, mark=v.mark, fee=fee
    )
    return price


@external
def adl(account: uint256, market: address, candidates: DynArray[uint256, MAX_ADL], order_ids: DynArray[uint256, MAX_CANCELS]) -> uint256:
    """
    @notice Auto-deleverage (PROTOCOL.md §11): close a bankrupt account's
            position (equity < 0, beyond what the insurance fund can cover
            within its payout cap) against profitable opposite positions at
            its bankruptcy price, so no bad debt remains; no counterparty pays
            more than its equity (the rest of the deficit goes to the fund,
            then bad_debt). The caller lists
            candidates by score, highest first; the contract recomputes each
            live score (adl_score) and requires the opposite side, a profit,
            non-increasing scores and that the deficit is not yet absorbed.
            One Deleveraged event per counterparty.
    @return The size closed, base WAD.
    """
    assert len(candidates) > 0, "adl: no candidates"
    self._grid_of(market)
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._check_and_cancel(account, market, order_ids, True)
    assert equity < 0, "adl: account not bankrupt"
    v: IPerpMarket.PositionView = staticcall IPerpMarket(market).position(account)
    assert v.size != 0, "adl: no position"
    assert v.open_orders == 0, "adl: account has open orders"
    lp: LiquidationParams = self._liquidation_params(market)
    abs_size: uint256 = convert(abs(v.size), uint256)
    assert self._worst(equity, abs_size, v.mark, lp.bankrupt_band) > self._insurance_capacity(), "adl: insurance fund can cover, liquidate"
    price: uint256 = self._bankruptcy_price(v.mark, equity, v.size)
    remaining: uint256 = abs_size
    prev: uint256 = max_value(uint256)
    n: uint256 = 0
    last: uint256 = len(candidates) - 1
    for c: uint256 in candidates:
        assert remaining > 0, "adl: deficit already absorbed"
        assert c != account, "adl: candidate is the account"
        cv: IPerpMarket.PositionView = staticcall IPerpMarket(market).position(c)
        assert cv.size != 0, "adl: candidate has no position"
        assert (cv.size > 0) != (v.size > 0), "adl: candidate on the same side"
        score: uint256 = 0
        ce: int256 = 0
        score, ce = self._adl_score(c, cv)
        assert score > 0, "adl: candidate not profitable"
        assert score <= prev, "adl: candidates out of order"
        prev = score
        take: uint256 = min(remaining, convert(abs(cv.size), uint256))
        remaining -= take
        # at most the counterparty's equity (less rounding): never below zero;
        # what it cannot absorb stays a deficit for the fund, then bad_debt
        per_unit: uint256 = convert(max(ce - ADL_ROUNDING, 0), uint256) * WAD // take
        cp: uint256 = min(price, v.mark + per_unit)
        delta: int256 = convert(take, int256)
        if cv.size > 0:
            delta = -delta
            cp = max(price, v.mark - min(per_unit, v.mark))
        # the account's market bit is cleared after the last transfer when flat
        extcall IClearinghouse(CLEARINGHOUSE).engine_transfer(account, c, market, delta, cp, n == last)
        n += 1
        log ILiquidationEngine.Deleveraged(
            account=account, counterparty=c, market=market, size=take, price=cp, score=score,
            counterparty_size=cv.size + delta
        )
    closed: uint256 = abs_size - remaining
    log ILiquidationEngine.AutoDeleverage(
        account=account, market=market, size=closed, price=price, mark=v.mark, equity_before=equity,
        counterparties=n
    )
    extcall IClearinghouse(CLEARINGHOUSE).engine_settle(account, 0, empty(address), 0, False)
    return closed


@external
def settle_bad_debt(account: uint256):
    """
    @notice Book the deficit of an account left below zero with no position
            and no order in any market (permissionless): the insurance fund
            covers it within its payout cap, the rest is recognized in
            Clearinghouse.bad_debt (PROTOCOL.md §11). Liquidate, takeover and
            adl do this themselves when they leave an account flat.
    """
    assert staticcall IClearinghouse(CLEARINGHOUSE).cash(account) < 0, "settle: no deficit"
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._margin(account)
    assert im == 0, "settle: account has positions or orders"
    extcall IClearinghouse(CLEARINGHOUSE).engine_settle(account, 0, empty(address), 0, True)


# ================================================================ views

@external
@view
def adl_score(account: uint256, market: address) -> uint256:
    """
    @notice ADL rank of the account's position in `market` (PROTOCOL.md §11):
            pnl_pct x effective_leverage, WAD, where pnl_pct = unrealized PnL /
            |open notional| and effective_leverage = notional at mark /
            equity. 0 when flat, not profitable or not solvent.
    """
    self._grid_of(market)
    v: IPerpMarket.PositionView = staticcall IPerpMarket(market).position(account)
    if v.size == 0:
        return 0
    return self._adl_score(account, v)[0]


@external
@view
def liquidation_params(market: address) -> LiquidationParams:
    """
    @notice The market's liquidation parameters (see set_liquidation_params).
    """
    return self._liquidation_params(market)


@external
@view
def insurance_capacity() -> uint256:
    """
    @notice The most the insurance fund pays for one bad-debt event now:
            payout_cap x (its assets + its pending cash in the
            clearinghouse), WAD.
    """
    return self._insurance_capacity()


# ================================================================ admin

@external
def add_market(market: address):
    """
    @notice Start liquidating a market of the clearinghouse, with the default
            parameters (docs/PROTOCOL.md §9): called by the clearinghouse when
            it lists a market, or by the owner for a market listed before
            this engine was connected.
    """
    if msg.sender != CLEARINGHOUSE:
        ownable._check_owner()
        assert staticcall IClearinghouse(CLEARINGHOUSE).market_index(market) != 0, "unknown market"
    assert self._grid[market] == 0, "market already listed"
    self._grid[market] = (staticcall IMarketView(market).TICK_SIZE() << 128) | staticcall IMarketView(market).LOT_SIZE()
    # seed 001: "a nominal fee of 0.5%"; see docs/PROTOCOL.md §9 for the rest
    self._set_liquidation_params(market, LiquidationParams(
        liquidation_fee=WAD // 200, liquidator_share=WAD // 2, bankrupt_band=WAD // 20,
        takeover_discount=WAD // 100, small_position_notional=1_000 * WAD
    ))


@external
def set_liquidation_params(market: address, params_: LiquidationParams):
    """
    @notice Liquidation parameters of a listed market (owner), within hard
            bounds: liquidation_fee <= 5%, liquidator_share <= 100%,
            0.1% <= bankrupt_band <= 50%, takeover_discount <= 10%.
    """
    ownable._check_owner()
    self._grid_of(market)
    self._set_liquidation_params(market, params_)


# ================================================================ internals

@internal
@view
def _grid_of(market: address) -> uint256:
    """
    @dev The market's tick (128) | lot (128); reverts for a market not listed here.
    """
    grid: uint256 = self._grid[market]
    assert grid != 0, "unknown market"
    return grid


@internal
@view
def _margin(account: uint256) -> (int256, uint256, uint256):
    """
    @dev (equity, IM, MM) as the clearinghouse computes them.
    """
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    free: uint256 = 0
    equity, im, mm, free = staticcall IClearinghouse(CLEARINGHOUSE).margin(account)
    return (equity, im, mm)


@internal
@view
def _spendable(account: uint256, market: address, equity: int256) -> int256:
    """
    @dev The equity a solvent account's close in `market` may spend: its
         equity less the order risk (params_layout.order_risk) of its
         resting orders in its other markets, at least 0. Those orders stay
         live; what their fills can lose stays in the account, so it ends at
         or above zero whatever of them fills (PROTOCOL.md §10).
    """
    ch: IClearinghouseMarkets = IClearinghouseMarkets(CLEARINGHOUSE)
    mask: uint256 = staticcall ch.active_markets(account)
    risk: uint256 = 0
    for i: uint256 in range(MAX_MARKETS):
        if mask == 0:
            break
        if mask & 1 == 1:
            m: address = staticcall ch.markets(i)
            if m != market:
                n: uint256 = 0
                bids: uint256 = 0
                asks: uint256 = 0
                n, bids, asks = staticcall IMarketView(m).open_order_stats(account)
                if n > 0:
                    risk += pl.order_risk(staticcall IMarketView(m).params_word(), bids, asks)
        mask >>= 1
    return max(equity - convert(risk, int256), 0)


@internal
def _check_and_cancel(account: uint256, market: address, order_ids: DynArray[uint256, MAX_CANCELS], adl_: bool) -> (int256, uint256, uint256):
    """
    @dev The health check as the views see it (below MM; below zero for
         ADL), then cancel the listed orders; returns the margin after the
         cancels (the account's own quotes count in the mark).
    """
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._margin(account)
    if adl_:
        assert equity < 0, "adl: account not bankrupt"
    else:
        assert equity < convert(mm, int256), "not liquidatable"
    if len(order_ids) > 0:
        extcall IClearinghouse(CLEARINGHOUSE).engine_cancel(account, market, order_ids)
        equity, im, mm = self._margin(account)
    return (equity, im, mm)


@internal
@pure
def _fee(equity: int256, notional: uint256, lp: LiquidationParams) -> uint256:
    """
    @dev liquidation_fee x notional (rounded up), capped at `equity`, the
         account's equity left before the fee: the fee never creates bad debt.
    """
    if equity <= 0 or notional == 0:
        return 0
    return min(self._ceil_div(notional * lp.liquidation_fee, WAD), convert(equity, uint256))


@internal
@pure
def _worst(equity: int256, abs_size: uint256, mark: uint256, rate: uint256) -> uint256:
    """
    @dev The worst-case deficit of a bankrupt account: -equity + |size| x mark x rate.
    """
    return convert(-equity, uint256) + abs_size * mark // WAD * rate // WAD


@internal
@pure
def _close_size(q: uint256, abs_size: uint256, mark: uint256, lp: LiquidationParams) -> uint256:
    """
    @dev The size a liquidation or takeover closes: the whole position when
         it or what it would leave is at most small_position_notional.
    """
    assert q > 0, "zero size"
    if (abs_size - q) * mark // WAD <= lp.small_position_notional:
        return abs_size
    return q


@internal
@view
def _liquidation_params(market: address) -> LiquidationParams:
    w: uint256 = self._liquidation_rates[market]
    m: uint256 = 2**64 - 1
    return LiquidationParams(
        liquidation_fee=w & m, liquidator_share=(w >> 64) & m, bankrupt_band=(w >> 128) & m,
        takeover_discount=w >> 192, small_position_notional=self._small_position_notional[market]
    )


@internal
@view
def _insurance_capacity() -> uint256:
    pending: int256 = staticcall IClearinghouse(CLEARINGHOUSE).cash(INSURANCE_ACCOUNT)
    assets: uint256 = staticcall IInsuranceFund(INSURANCE_FUND).total_assets_stored()
    if pending > 0:
        assets += convert(pending, uint256) // PRECISION
    return assets * staticcall IInsuranceFund(INSURANCE_FUND).payout_cap() // WAD * PRECISION


@internal
@view
def _adl_score(account: uint256, v: IPerpMarket.PositionView) -> (uint256, int256):
    """
    @dev (score, equity): pnl_pct x effective leverage; 0 when not profitable or not solvent.
    """
    if v.unrealized_pnl <= 0:
        return (0, 0)
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._margin(account)
    if equity <= 0:
        return (0, equity)
    pnl_pct: uint256 = convert(v.unrealized_pnl, uint256) * WAD // convert(abs(v.open_notional), uint256)
    notional: uint256 = convert(abs(v.size), uint256) * v.mark // WAD
    return (pnl_pct * notional // convert(equity, uint256), equity)


@internal
@pure
def _bankruptcy_price(mark: uint256, equity: int256, size: int256) -> uint256:
    """
    @dev The price at which closing the whole position leaves equity at
         zero: mark - equity / size, rounded in favour of the account (a
         long sells at it: up; a short buys at it: down); 0 when a short's
         deficit exceeds the mark.
    """
    abs_size: uint256 = convert(abs(size), uint256)
    if equity >= 0:
        per_unit: uint256 = convert(equity, uint256) * WAD // abs_size
        if size > 0:
            return mark - min(per_unit, mark)
        return mark + per_unit
    per_unit_up: uint256 = self._ceil_div(convert(-equity, uint256) * WAD, abs_size)
    if size > 0:
        return mark + per_unit_up
    if per_unit_up >= mark:
        return 0
    return mark - per_unit_up


@internal
def _set_liquidation_params(market: address, p: LiquidationParams):
    assert p.liquidation_fee <= MAX_LIQUIDATION_FEE, "liquidation fee out of bounds"
    assert p.liquidator_share <= WAD, "liquidator share above 1"
    assert p.bankrupt_band >= MIN_BANKRUPT_BAND and p.bankrupt_band <= MAX_BANKRUPT_BAND, "bankrupt band out of bounds"
    assert p.takeover_discount <= MAX_TAKEOVER_DISCOUNT, "takeover discount out of bounds"
    self._liquidation_rates[market] = (
        p.liquidation_fee | (p.liquidator_share << 64) | (p.bankrupt_band << 128) | (p.takeover_discount << 192)
    )
    self._small_position_notional[market] = p.small_position_notional
    log ILiquidationEngine.LiquidationParamsSet(
        market=market, liquidation_fee=p.liquidation_fee, liquidator_share=p.liquidator_share,
        bankrupt_band=p.bankrupt_band, takeover_discount=p.takeover_discount,
        small_position_notional=p.small_position_notional
    )


@internal
@pure
def _ceil_div(x: uint256, y: uint256) -> uint256:
    return (x + y - 1) // y


@internal
@pure
def _round_up(x: uint256, step: uint256) -> uint256:
    return self._ceil_div(x, step) * step
