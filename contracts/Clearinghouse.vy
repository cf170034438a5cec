# pragma version 0.4.3
# pragma nonreentrancy on
"""
@title Clearinghouse
@license MIT
@notice The vault of vyperp (PROTOCOL.md §1-3, §7, §13): custody of the
        collateral token, accounts as (owner, subaccount id), operators,
        cash in 18-decimal fixed point, cross-margin across every market of
        a subaccount, and the router for orders: markets never hold cash,
        they return the cash deltas of each trade and the clearinghouse
        books them, then checks the taker's initial margin.
@custom:security Token amounts convert at the edge only, rounding against
        the account. Withdrawable = max(0, min(cash, equity - IM)):
        unrealized profit is never withdrawable. Pauses never block
        withdrawing free collateral, cancels or reducing risk. Fee-on-transfer
        and rebasing collateral tokens are not supported.
"""

from ethereum.ercs import IERC20
from ethereum.ercs import IERC20Detailed

from snekmate.auth import ownable
from snekmate.auth import ownable_2step

from .interfaces import IClearinghouse
from .interfaces import IInsuranceFund
from .interfaces import IPerpMarket

implements: IClearinghouse

initializes: ownable
initializes: ownable_2step[ownable := ownable]

exports: (
    # two-step ownership
    ownable_2step.owner,
    ownable_2step.pending_owner,
    ownable_2step.transfer_ownership,
    ownable_2step.accept_ownership,
)


struct AccountHealth:
    account: uint256
    equity: int256
    initial_margin: uint256
    maintenance_margin: uint256
    liquidatable: bool


struct LiquidationParams:
    liquidation_fee: uint256        # WAD fraction of closed notional
    liquidator_share: uint256       # WAD fraction of the fee paid to the caller
    bankrupt_band: uint256          # a bankrupt account closes within mark x (1 -+ band)
    takeover_discount: uint256      # backstop takeover at mark x (1 -+ discount)
    small_position_notional: uint256  # positions and remainders at or below close whole


struct PositionView:
    size: int256
    open_notional: int256
    entry_price: uint256
    mark: uint256
    unrealized_pnl: int256
    funding_owed: int256
    open_orders: uint256


interface IPositionView:
    def position(account: uint256) -> PositionView: view
    def CLEARINGHOUSE() -> address: view
    def open_order_stats(account: uint256) -> (uint256, uint256, uint256): view
    def TICK_SIZE() -> uint256: view
    def LOT_SIZE() -> uint256: view
    def params() -> MarketParamsView: view


struct MarketParamsView:
    imr: uint256
    mmr: uint256
    taker_fee: uint256
    maker_fee: uint256
    mark_band: uint256
    min_order_notional: uint256
    max_open_orders: uint256
    max_fills: uint256
    max_open_interest: uint256


WAD: constant(uint256) = 10**18
SWAD: constant(int256) = 10**18
MAX_MARKETS: constant(uint256) = 16
MAX_HEALTH_PAGE: constant(uint256) = 500
MAX_CANCELS: constant(uint256) = 200
MAX_ADL: constant(uint256) = 32
ADL_ROUNDING: constant(int256) = 4         # wei of a counterparty's equity kept for the PnL roundings
LIQUIDATION_ORDER: constant(uint8) = 3     # PerpMarket: IOC, reduce-only, no taker fee

# hard bounds of the liquidation parameters
MAX_LIQUIDATION_FEE: constant(uint256) = WAD // 20    # 5%
MIN_BANKRUPT_BAND: constant(uint256) = WAD // 1_000   # 0.1%
MAX_BANKRUPT_BAND: constant(uint256) = WAD // 2       # 50%
MAX_TAKEOVER_DISCOUNT: constant(uint256) = WAD // 10  # 10%

# a maker's cash delta in TradeResult.maker_deltas (PerpMarket): (amount + DELTA_OFFSET) << DELTA_SHIFT | account
DELTA_OFFSET: constant(int256) = 2**207
DELTA_SHIFT: constant(uint256) = 48

PAUSE_DEPOSIT: constant(uint256) = 1
PAUSE_TRADE: constant(uint256) = 2        # risk-increasing orders only
PAUSE_ALL: constant(uint256) = 3
# a listed market's word: index + 1 (MARKET_INDEX) | TRADE_PAUSED (PAUSE_TRADE is set)
MARKET_INDEX: constant(uint256) = 255
TRADE_PAUSED: constant(uint256) = 256

COLLATERAL: public(immutable(address))
# token units -> WAD: amount x PRECISION
PRECISION: public(immutable(uint256))

account_of: public(HashMap[address, HashMap[uint256, uint256]])
# account id -> owner (160 bits) | subaccount (96 bits)
_account_key: HashMap[uint256, uint256]
account_count: public(uint256)
cash: public(HashMap[uint256, int256])
is_operator: public(HashMap[uint256, HashMap[address, bool]])
# bit i set: the account may have a position or orders in markets[i]
active_markets: public(HashMap[uint256, uint256])

markets: public(HashMap[uint256, address])        # index -> market
market_count: public(uint256)
# market -> index + 1 (8 bits) | TRADE_PAUSED: the one word an order reads
# about its market (the pause of risk-increasing orders, copied from
# paused_ops into every listed market's word, costs that order no extra read)
_market_word: HashMap[address, uint256]

insurance_fund: public(immutable(address))
insurance_account: public(immutable(uint256))
treasury: public(immutable(address))
treasury_account: public(immutable(uint256))
insurance_fee_share: public(uint256)
paused_ops: public(uint256)

# liquidation parameters of a market, packed in one word read once per call:
# liquidation_fee (64) | liquidator_share (64) | bankrupt_band (64) | takeover_discount (64)
_liquidation_rates: HashMap[address, uint256]
_small_position_notional: HashMap[address, uint256]
# market -> tick size (128) | lot size (128), read at listing
_grid: HashMap[address, uint256]
# bad debt neither the insurance fund nor ADL absorbed, WAD (cash set to 0)
bad_debt: public(uint256)


@deploy
def __init__(collateral_: address, insurance_fund_: address, treasury_: address, insurance_fee_share_: uint256):
    """
    @notice Deploy the vault for one collateral token.
    @param collateral_ The collateral token (2..18 decimals).
    @param insurance_fund_ Receives the insurance share of fees and the
           funding residue (as the cash of its subaccount 0).
    @param treasury_ Receives the rest of the fees (its subaccount 0).
    @param insurance_fee_share_ WAD fraction of fees to the insurance fund.
    """
    assert collateral_ != empty(address), "zero address"
    assert insurance_fund_ != empty(address) and treasury_ != empty(address), "zero address"
    assert insurance_fund_ != treasury_, "insurance fund is the treasury"
    dec: uint8 = staticcall IERC20Detailed(collateral_).decimals()
    assert dec >= 2 and dec <= 18, "collateral decimals out of range"
    ownable.__init__()
    ownable_2step.__init__()
    COLLATERAL = collateral_
    PRECISION = 10 ** convert(18 - dec, uint256)
    insurance_fund = insurance_fund_
    insurance_account = self._create_account(insurance_fund_, 0)
    treasury = treasury_
    treasury_account = self._create_account(treasury_, 0)
    self._set_insurance_fee_share(insurance_fee_share_)


# ================================================================ collateral

@external
def deposit(subaccount: uint256, amount: uint256, owner: address = msg.sender):
    """
    @notice Deposit `amount` token units into `owner`'s subaccount (created
            on first use). Anyone may top up anyone's account.
    """
    assert self.paused_ops & PAUSE_DEPOSIT == 0, "deposits paused"
    assert amount > 0, "zero amount"
    assert owner != empty(address), "zero address"
    account: uint256 = self.account_of[owner][subaccount]
    if account == 0:
        account = self._create_account(owner, subaccount)
    assert extcall IERC20(COLLATERAL).transferFrom(msg.sender, self, amount, default_return_value=True), "transfer failed"
    new_cash: int256 = self.cash[account] + convert(amount * PRECISION, int256)
    self.cash[account] = new_cash
    log IClearinghouse.Deposit(sender=msg.sender, owner=owner, account=account, amount=amount, cash=new_cash)


@external
def withdraw(subaccount: uint256, amount: uint256, to: address = msg.sender):
    """
    @notice Withdraw `amount` token units from the caller's subaccount. Only
            the owner withdraws (never an operator). Funding is settled
            first; the account must keep equity >= initial margin and cannot
            withdraw unrealized profit. Never paused.
    """
    assert amount > 0, "zero amount"
    assert to != empty(address), "zero address"
    account: uint256 = self.account_of[msg.sender][subaccount]
    assert account != 0, "no such account"
    self._settle_all_funding(account)
    wad: uint256 = amount * PRECISION
    self._check_withdraw(account, wad)
    new_cash: int256 = self.cash[account] - convert(wad, int256)
    self.cash[account] = new_cash
    assert extcall IERC20(COLLATERAL).transfer(to, amount, default_return_value=True), "transfer failed"
    log IClearinghouse.Withdraw(owner=msg.sender, to=to, account=account, amount=amount, cash=new_cash)


@external
def set_operator(subaccount: uint256, operator: address, allowed: bool):
    """
    @notice Let `operator` trade and cancel for the caller's subaccount (or
            revoke it). Operators can never withdraw.
    """
    assert operator != empty(address), "zero address"
    account: uint256 = self.account_of[msg.sender][subaccount]
    if account == 0:
        account = self._create_account(msg.sender, subaccount)
    self.is_operator[account][operator] = allowed
    log IClearinghouse.OperatorSet(owner=msg.sender, operator=operator, account=account, allowed=allowed)


@external
def settle_funding(owner: address, subaccount: uint256):
    """
    @notice Apply an account's funding owed in every market to its cash
            (permissionless: it only books what is due).
    """
    account: uint256 = self.account_of[owner][subaccount]
    assert account != 0, "no such account"
    self._settle_all_funding(account)


# ================================================================ trading

@external
def place_order(
    owner: address,
    subaccount: uint256,
    market: address,
    is_buy: bool,
    size: uint256,
    price: uint256,
    order_type: uint8,
    reduce_only: bool,
    hint: uint256,
) -> uint256:
    """
    @notice Place an order for (owner, subaccount) in `market`, as the owner
            or an operator. Orders that add risk need equity >= initial
            margin afterwards; orders that only reduce risk pass when equity
            stays >= 0 (no close beyond the bankruptcy price; an account
            already below zero is closed by liquidate, takeover or adl).
    @param size Base units, WAD (a whole number of lots).
    @param price Limit price, quote WAD per base unit (bounds slippage of IOC).
    @param order_type 0 limit (GTC), 1 post-only, 2 IOC / market.
    @param hint Price tick of an existing level at or better than `price` on
           the same side, or 0 (see PerpMarket.find_hint).
    @return The resting order id, 0 when nothing rests.
    """
    account: uint256 = self._authorized(owner, subaccount)
    word: uint256 = self._listed(market)
    idx: uint256 = word & MARKET_INDEX
    assert order_type <= 2, "bad order type"
    r: IPerpMarket.TradeResult = extcall IPerpMarket(market).place_order(
        account, owner, is_buy, size, price, order_type, reduce_only, hint
    )
    if r.risk_increased:
        assert word & TRADE_PAUSED == 0, "trading paused"
    self._book_trade(account, idx, r)
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._margin_after(account, idx, r.margin)
    if r.risk_increased:
        assert equity >= convert(im, int256), "below initial margin"
    else:
        # dev: a close never goes beyond the bankruptcy price; below zero only liquidation acts
        assert equity >= 0, "order would leave the account below zero"
    return r.order_id


@external
def cancel_order(owner: address, subaccount: uint256, market: address, order_id: uint256):
    """
    @notice Cancel one resting order, as the owner or an operator. Works
            whatever the index or pause state. (The market's bit in
            active_markets stays set; a market without exposure adds nothing
            to the margin.)
    """
    account: uint256 = self._authorized(owner, subaccount)
    self._listed(market)
    assert self._cancel(market, account, order_id), "no such order"


@external
def cancel_all(owner: address, subaccount: uint256, market: address, order_ids: DynArray[uint256, MAX_CANCELS]):
    """
    @notice Cancel all resting orders of the account in `market`. The caller
            lists them (from OrderPlaced events or PerpMarket.orders_of);
            the call reverts unless none remains afterwards.
    """
    account: uint256 = self._authorized(owner, subaccount)
    self._listed(market)
    for oid: uint256 in order_ids:
        self._cancel(market, account, oid)
    count: uint256 = 0
    a: uint256 = 0
    b: uint256 = 0
    count, a, b = staticcall IPositionView(market).open_order_stats(account)
    assert count == 0, "cancel-all: orders missing from the list"


# ================================================================ liquidation

@external
def liquidate(account: uint256, market: address, max_size: uint256, order_ids: DynArray[uint256, MAX_CANCELS]) -> uint256:
    """
    @notice Liquidate an account whose equity is below its maintenance
            margin (permissionless; PROTOCOL.md §9). Cancels its orders in
            `market` (listed by the caller; while some remain, the call only
            cancels), then closes part of its position by an IOC into the
            book: enough to restore initial margin, at most `max_size`, the
            whole of it when it or the remainder is at most
            small_position_notional. A solvent account never fills beyond its
            bankruptcy price; a bankrupt one (equity < 0) closes whole within
            mark x (1 -+ bankrupt_band), and only when the insurance fund can
            cover the worst case (else: adl). Fee: liquidation_fee x closed
            notional at mark, capped at the equity left; the caller's share
            goes to its subaccount 0 (none when it owns the account), the
            rest to the insurance fund. A flat account left below zero has
            its bad debt covered by the insurance fund.
    @return The size closed (base WAD), 0 when nothing filled.
    """
    idx: uint256 = 0
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    idx, equity, im, mm = self._check_and_cancel(account, market, order_ids, False)
    v: PositionView = staticcall IPositionView(market).position(account)
    assert v.size != 0, "liquidate: no position"
    if v.open_orders > 0 or equity >= convert(mm, int256):
        # dev: more orders than one call cancels: progress, no close yet
        return 0
    lp: LiquidationParams = self._liquidation_params(market)
    grid: uint256 = self._grid[market]
    tick: uint256 = grid >> 128
    lot: uint256 = grid & (2**128 - 1)
    is_long: bool = v.size > 0
    abs_size: uint256 = convert(abs(v.size), uint256)
    q: uint256 = abs_size
    limit: uint256 = 0
    if equity >= 0:
        # enough to restore initial margin: q x mark x (imr - fee) >= IM - equity
        imr: uint256 = (staticcall IPositionView(market).params()).imr
        gap: int256 = convert(im, int256) - equity
        if imr > lp.liquidation_fee and gap > 0:
            q = min(q, self._round_up(self._ceil_div(convert(gap, uint256) * WAD * WAD, v.mark * (imr - lp.liquidation_fee)), lot))
        # never beyond the bankruptcy price (where equity reaches zero)
        limit = self._bankruptcy_price(v.mark, equity, v.size)
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
    # (an IOC never rests: the owner is not needed)
    r: IPerpMarket.TradeResult = extcall IPerpMarket(market).place_order(
        account, empty(address), not is_long, q, limit, LIQUIDATION_ORDER, True, 0
    )
    self._book_trade(account, idx, r)
    after: int256 = (staticcall IPositionView(market).position(account)).size
    closed: uint256 = abs_size - convert(abs(after), uint256)
    fee: uint256 = 0
    keeper_fee: uint256 = 0
    equity_after: int256 = 0
    # the equity after the close: this market's margin came back with the trade
    equity_after, im, mm = self._margin_after(account, idx, r.margin)
    fee, keeper_fee, equity_after = self._charge_liquidation_fee(account, equity_after, closed * v.mark // WAD, lp, True)
    # dev: the close moves the mark; the rest revalued may not sink a solvent account
    assert equity < 0 or equity_after >= 0, "liquidate: would leave the account below zero, takeover"
    log IClearinghouse.Liquidation(
        account=account, market=market, liquidator=msg.sender, closed_size=closed, mark=v.mark, limit_price=limit,
        fee=fee, liquidator_fee=keeper_fee, equity_before=equity, equity_after=equity_after, size_after=after,
        bankrupt=equity < 0
    )
    self._settle_bad_debt(account)
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
    idx: uint256 = self._listed(market) & MARKET_INDEX
    taker: uint256 = self._authorized(msg.sender, subaccount)
    assert self._account_key[taker] >> 96 != self._account_key[account] >> 96, "takeover: own account"
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._margin(account)
    assert equity < convert(mm, int256), "not liquidatable"
    v: PositionView = staticcall IPositionView(market).position(account)
    assert v.size != 0, "takeover: no position"
    assert v.open_orders == 0, "takeover: account has open orders, liquidate first"
    lp: LiquidationParams = self._liquidation_params(market)
    abs_size: uint256 = convert(abs(v.size), uint256)
    assert size % (self._grid[market] & (2**128 - 1)) == 0, "size off lot"
    q: uint256 = self._close_size(min(size, abs_size), abs_size, v.mark, lp)
    # a solvent account: bounded by its bankruptcy price; a bankrupt one
    # (the book could not close it): whole, the fund pays the discount
    discount: uint256 = v.mark * lp.takeover_discount // WAD
    bk: uint256 = 0 if v.size > 0 else max_value(uint256)  # no bound
    if equity < 0:
        assert self._worst(equity, abs_size, v.mark, lp.takeover_discount) <= self._insurance_capacity(), "takeover: insurance fund cannot cover, adl"
        q = abs_size
    else:
        bk = self._bankruptcy_price(v.mark, equity, v.size)
    price: uint256 = 0
    delta: int256 = convert(q, int256)
    if v.size > 0:
        price = max(v.mark - discount, bk)
    else:
        price = min(v.mark + discount, bk)
        delta = -delta
    self._transfer(account, taker, market, idx, delta, price)
    self._clear_if_flat(account, market, idx)
    fee: uint256 = 0
    keeper_fee: uint256 = 0
    equity_after: int256 = 0
    equity_after, im, mm = self._margin(account)
    fee, keeper_fee, equity_after = self._charge_liquidation_fee(account, equity_after, q * v.mark // WAD, lp, False)
    te: int256 = 0
    tim: uint256 = 0
    tmm: uint256 = 0
    te, tim, tmm = self._margin(taker)
    assert te >= convert(tim, int256), "takeover: liquidator below initial margin"
    log IClearinghouse.Takeover(
        account=account, market=market, liquidator=taker, size=q, price=price, mark=v.mark, fee=fee
    )
    self._settle_bad_debt(account)
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
    idx: uint256 = 0
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    idx, equity, im, mm = self._check_and_cancel(account, market, order_ids, True)
    assert equity < 0, "adl: account not bankrupt"
    v: PositionView = staticcall IPositionView(market).position(account)
    assert v.size != 0, "adl: no position"
    assert v.open_orders == 0, "adl: account has open orders"
    lp: LiquidationParams = self._liquidation_params(market)
    abs_size: uint256 = convert(abs(v.size), uint256)
    assert self._worst(equity, abs_size, v.mark, lp.bankrupt_band) > self._insurance_capacity(), "adl: insurance fund can cover, liquidate"
    price: uint256 = self._bankruptcy_price(v.mark, equity, v.size)
    remaining: uint256 = abs_size
    prev: uint256 = max_value(uint256)
    n: uint256 = 0
    for c: uint256 in candidates:
        assert remaining > 0, "adl: deficit already absorbed"
        assert c != account, "adl: candidate is the account"
        cv: PositionView = staticcall IPositionView(market).position(c)
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
        self._transfer(account, c, market, idx, delta, cp)
        n += 1
        log IClearinghouse.Deleveraged(
            account=account, counterparty=c, market=market, size=take, price=cp, score=score,
            counterparty_size=cv.size + delta
        )
    self._clear_if_flat(account, market, idx)
    closed: uint256 = abs_size - remaining
    log IClearinghouse.AutoDeleverage(
        account=account, market=market, size=closed, price=price, mark=v.mark, equity_before=equity,
        counterparties=n
    )
    self._settle_bad_debt(account)
    return closed


@external
def settle_bad_debt(account: uint256):
    """
    @notice Book the deficit of an account left below zero with no position
            and no order in any market (permissionless): the insurance fund
            covers it within its payout cap, the rest is recognized in
            bad_debt (PROTOCOL.md §11). Liquidate, takeover and adl do this
            themselves when they leave an account flat.
    """
    assert self.cash[account] < 0, "settle: no deficit"
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._margin(account)
    assert im == 0, "settle: account has positions or orders"
    self.active_markets[account] = 0
    self._settle_bad_debt(account)


# ================================================================ views

@external
@view
def margin(account: uint256) -> (int256, uint256, uint256, uint256):
    """
    @notice (equity, initial margin, maintenance margin, withdrawable), WAD.
    """
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._margin(account)
    return (equity, im, mm, self._withdrawable(self.cash[account], equity, im))


@external
@view
def health(from_account: uint256, count: uint256) -> DynArray[AccountHealth, MAX_HEALTH_PAGE]:
    """
    @notice Health of accounts [from_account, from_account + count), for
            keepers (count <= 500; ids start at 1, see account_count).
            Liquidatable iff equity < maintenance margin.
    """
    out: DynArray[AccountHealth, MAX_HEALTH_PAGE] = []
    n: uint256 = self.account_count
    for i: uint256 in range(count, bound=MAX_HEALTH_PAGE):
        account: uint256 = from_account + i
        if account == 0:
            continue
        if account > n:
            break
        h: AccountHealth = AccountHealth(account=account, equity=0, initial_margin=0, maintenance_margin=0, liquidatable=False)
        h.equity, h.initial_margin, h.maintenance_margin = self._margin(account)
        h.liquidatable = h.equity < convert(h.maintenance_margin, int256)
        out.append(h)
    return out


@external
@view
def adl_score(account: uint256, market: address) -> uint256:
    """
    @notice ADL rank of the account's position in `market` (PROTOCOL.md §11):
            pnl_pct x effective_leverage, WAD, where pnl_pct = unrealized PnL /
            |open notional| and effective_leverage = notional at mark /
            equity. 0 when flat, not profitable or not solvent.
    """
    self._listed(market)
    v: PositionView = staticcall IPositionView(market).position(account)
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
            payout_cap x (its assets + its pending cash here), WAD.
    """
    return self._insurance_capacity()


@external
@view
def market_index(market: address) -> uint256:
    """
    @notice The market's index + 1 in `markets`, 0 when not listed.
    """
    return self._market_word[market] & MARKET_INDEX


@external
@view
def account_key(account: uint256) -> (address, uint256):
    """
    @notice (owner, subaccount) of an account id.
    """
    key: uint256 = self._account_key[account]
    return (convert(convert(key >> 96, uint160), address), key & (2**96 - 1))


# ================================================================ admin

@external
def add_market(market: address):
    """
    @notice List a market (owner). It must point at this clearinghouse.
    """
    ownable._check_owner()
    assert self._market_word[market] == 0, "market already listed"
    n: uint256 = self.market_count
    assert n < MAX_MARKETS, "too many markets"
    assert staticcall IPositionView(market).CLEARINGHOUSE() == self, "market of another clearinghouse"
    self.markets[n] = market
    self.market_count = n + 1
    word: uint256 = n + 1
    if self.paused_ops & PAUSE_TRADE != 0:
        word |= TRADE_PAUSED
    self._market_word[market] = word
    self._grid[market] = (staticcall IPositionView(market).TICK_SIZE() << 128) | staticcall IPositionView(market).LOT_SIZE()
    log IClearinghouse.MarketAdded(market=market, market_index=n)
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
            0.1% <= bankrupt_band <= 50%, takeover_discount <= 10% and
            below the market's maintenance margin rate.
    """
    ownable._check_owner()
    self._listed(market)
    self._set_liquidation_params(market, params_)


@external
def set_paused(paused_ops_: uint256):
    """
    @notice Pause operations (owner): bit 1 deposits, bit 2 risk-increasing
            orders. Withdrawals of free collateral, cancels and risk-reducing
            orders are never paused.
    """
    ownable._check_owner()
    assert paused_ops_ <= PAUSE_ALL, "unknown pause bits"
    self.paused_ops = paused_ops_
    for i: uint256 in range(MAX_MARKETS):
        if i >= self.market_count:
            break
        market: address = self.markets[i]
        word: uint256 = self._market_word[market] & ~TRADE_PAUSED
        if paused_ops_ & PAUSE_TRADE != 0:
            word |= TRADE_PAUSED
        self._market_word[market] = word
    log IClearinghouse.PauseSet(paused_ops=paused_ops_)


@external
def set_insurance_fee_share(share: uint256):
    """
    @notice WAD fraction of trading fees paid to the insurance fund (owner; <= 1).
    """
    ownable._check_owner()
    self._set_insurance_fee_share(share)


# ================================================================ internals

@internal
def _create_account(owner: address, subaccount: uint256) -> uint256:
    assert subaccount < 2**96, "subaccount too large"
    account: uint256 = self.account_count + 1
    self.account_count = account
    self.account_of[owner][subaccount] = account
    self._account_key[account] = (convert(convert(owner, uint160), uint256) << 96) | subaccount
    log IClearinghouse.AccountCreated(owner=owner, account=account, subaccount=subaccount)
    return account


@internal
@view
def _listed(market: address) -> uint256:
    """
    @dev The market's word (index + 1 in its MARKET_INDEX bits, TRADE_PAUSED);
         reverts for a market not added here.
    """
    word: uint256 = self._market_word[market]
    assert word & MARKET_INDEX != 0, "unknown market"
    return word


@internal
@view
def _authorized(owner: address, subaccount: uint256) -> uint256:
    account: uint256 = self.account_of[owner][subaccount]
    assert account != 0, "no such account"
    assert msg.sender == owner or self.is_operator[account][msg.sender], "not owner or operator"
    return account


@internal
@view
def _margin(account: uint256) -> (int256, uint256, uint256):
    """
    @dev Cross-margin over the account's markets: (equity, IM, MM).
         equity = cash + sum(unrealized PnL - unsettled funding).
    """
    return self._margin_after(account, 0, empty(IPerpMarket.AccountMargin))


@internal
@view
def _margin_after(account: uint256, idx: uint256, known: IPerpMarket.AccountMargin) -> (int256, uint256, uint256):
    """
    @dev `_margin`, where market `idx` (index + 1; 0: none) contributes
         `known`: its margin as place_order returned it, in the same call.
    """
    equity: int256 = self.cash[account]
    im: uint256 = 0
    mm: uint256 = 0
    mask: uint256 = self.active_markets[account]
    for i: uint256 in range(MAX_MARKETS):
        if mask == 0:
            break
        if mask & 1 == 1:
            m: IPerpMarket.AccountMargin = known
            if i + 1 != idx:
                m = staticcall IPerpMarket(self.markets[i]).account_margin(account)
            equity += m.pnl
            im += m.im
            mm += m.mm
        mask >>= 1
    return (equity, im, mm)


@internal
@pure
def _withdrawable(cash: int256, equity: int256, im: uint256) -> uint256:
    free: int256 = min(cash, equity - convert(im, int256))
    if free <= 0:
        return 0
    return convert(free, uint256)


@internal
@view
def _check_withdraw(account: uint256, wad: uint256):
    """
    @dev The one margin check of every withdrawal (PROTOCOL.md §7).
    """
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._margin(account)
    amount: int256 = convert(wad, int256)
    assert equity - amount >= convert(im, int256), "below initial margin"
    assert self.cash[account] >= amount, "unrealized profit not withdrawable"


@internal
def _settle_all_funding(account: uint256):
    mask: uint256 = self.active_markets[account]
    for i: uint256 in range(MAX_MARKETS):
        if mask == 0:
            break
        if mask & 1 == 1:
            paid: int256 = 0
            residue: uint256 = 0
            paid, residue = extcall IPerpMarket(self.markets[i]).settle_funding(account)
            if paid != 0:
                self.cash[account] -= paid
            if residue != 0:
                self.cash[insurance_account] += convert(residue, int256)
        mask >>= 1


@internal
def _book_trade(account: uint256, idx: uint256, r: IPerpMarket.TradeResult):
    """
    @dev Book the cash of every party of a trade, the fees' split and the
         funding residue, and the account's active-market bit.
    """
    if r.taker_delta != 0:
        self.cash[account] += r.taker_delta
    for d: uint256 in r.maker_deltas:
        # dev: d >> DELTA_SHIFT < 2**208: no sign, no overflow
        amount: int256 = unsafe_sub(convert(convert(d >> DELTA_SHIFT, bytes32), int256), DELTA_OFFSET)
        if amount != 0:
            self.cash[d & (2**48 - 1)] += amount
    if r.fees > 0 or r.funding_residue > 0:
        to_insurance: uint256 = r.fees * self.insurance_fee_share // WAD
        self.cash[insurance_account] += convert(to_insurance + r.funding_residue, int256)
        self.cash[treasury_account] += convert(r.fees - to_insurance, int256)
    bit: uint256 = 1 << (idx - 1)
    mask: uint256 = self.active_markets[account]
    if r.taker_active and mask & bit == 0:
        self.active_markets[account] = mask | bit
    elif not r.taker_active and mask & bit != 0:
        self.active_markets[account] = mask ^ bit


@internal
def _transfer(account: uint256, counterparty: uint256, market: address, idx: uint256, size: int256, price: uint256):
    """
    @dev Move `size` of position from `account` to `counterparty` at `price`
         (takeover, ADL) and book both cash deltas and the residue.
    """
    d0: int256 = 0
    d1: int256 = 0
    residue: uint256 = 0
    d0, d1, residue = extcall IPerpMarket(market).transfer_position(account, counterparty, size, price)
    self.cash[account] += d0
    self.cash[counterparty] += d1
    if residue > 0:
        self.cash[insurance_account] += convert(residue, int256)
    # dev: a takeover may open the counterparty's first position here
    self.active_markets[counterparty] |= 1 << (idx - 1)


@internal
def _clear_if_flat(account: uint256, market: address, idx: uint256):
    """
    @dev After transfers out of `account` (takeover, ADL: it never has
         orders then), clear its active bit when it is flat in `market`.
    """
    if (staticcall IPositionView(market).position(account)).size == 0:
        self.active_markets[account] &= ~(1 << (idx - 1))


@internal
def _charge_liquidation_fee(
    account: uint256, equity: int256, notional: uint256, lp: LiquidationParams, pay_caller: bool
) -> (uint256, uint256, int256):
    """
    @dev liquidation_fee x notional, capped at `equity`, the account's equity
         left before the fee (the fee never creates bad debt); the caller's
         share to its subaccount 0 unless it owns the account, the rest to the
         insurance fund. Returns (fee, caller's share, equity after the fee).
    """
    if equity <= 0 or notional == 0:
        return (0, 0, equity)
    fee: uint256 = min(self._ceil_div(notional * lp.liquidation_fee, WAD), convert(equity, uint256))
    if fee == 0:
        return (0, 0, equity)
    keeper_fee: uint256 = 0
    if pay_caller and convert(self._account_key[account] >> 96, uint160) != convert(msg.sender, uint160):
        keeper_fee = fee * lp.liquidator_share // WAD
    self.cash[account] -= convert(fee, int256)
    if keeper_fee > 0:
        keeper: uint256 = self.account_of[msg.sender][0]
        if keeper == 0:
            keeper = self._create_account(msg.sender, 0)
        self.cash[keeper] += convert(keeper_fee, int256)
    self.cash[insurance_account] += convert(fee - keeper_fee, int256)
    return (fee, keeper_fee, equity - convert(fee, int256))


@internal
def _settle_bad_debt(account: uint256):
    """
    @dev An account flat in every market with negative cash: the insurance
         fund covers the deficit (within its payout cap); what it cannot is
         recognized as bad debt. The fund's pending cash here is pushed to
         it first, so the cap applies to all of its assets.
    """
    cash: int256 = self.cash[account]
    if cash >= 0 or self.active_markets[account] != 0:
        return
    deficit: uint256 = convert(-cash, uint256)
    pending: int256 = self.cash[insurance_account]
    inflow: uint256 = 0
    if pending > 0:
        inflow = convert(pending, uint256) // PRECISION
    if inflow > 0:
        self.cash[insurance_account] = pending - convert(inflow * PRECISION, int256)
        assert extcall IERC20(COLLATERAL).transfer(insurance_fund, inflow, default_return_value=True), "transfer failed"
    paid: uint256 = extcall IInsuranceFund(insurance_fund).cover(account, inflow, self._ceil_div(deficit, PRECISION))
    paid_wad: uint256 = paid * PRECISION
    uncovered: uint256 = 0
    if paid_wad >= deficit:
        # the token-unit rounding of the cover stays with the fund
        self.cash[insurance_account] += convert(paid_wad - deficit, int256)
    else:
        uncovered = deficit - paid_wad
        self.bad_debt += uncovered
    self.cash[account] = 0
    log IClearinghouse.BadDebt(account=account, deficit=deficit, covered=min(paid_wad, deficit), uncovered=uncovered)


@internal
def _check_and_cancel(account: uint256, market: address, order_ids: DynArray[uint256, MAX_CANCELS], adl_: bool) -> (uint256, int256, uint256, uint256):
    """
    @dev The health check as the views see it (below MM; below zero for
         ADL), then cancel the listed orders; returns (market index, and the
         margin after the cancels: the account's own quotes count in the mark).
    """
    idx: uint256 = self._listed(market) & MARKET_INDEX
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    equity, im, mm = self._margin(account)
    if adl_:
        assert equity < 0, "adl: account not bankrupt"
    else:
        assert equity < convert(mm, int256), "not liquidatable"
    if len(order_ids) > 0:
        for oid: uint256 in order_ids:
            self._cancel(market, account, oid)
        equity, im, mm = self._margin(account)
    return (idx, equity, im, mm)


@internal
def _cancel(market: address, account: uint256, order_id: uint256) -> bool:
    """
    @dev Cancel an order of `account` in `market`; False when it does not rest
         (filled or cancelled since it was listed: a batch goes on).
    """
    return extcall IPerpMarket(market).cancel_order(account, order_id)


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
    pending: int256 = self.cash[insurance_account]
    assets: uint256 = staticcall IInsuranceFund(insurance_fund).total_assets_stored()
    if pending > 0:
        assets += convert(pending, uint256) // PRECISION
    return assets * staticcall IInsuranceFund(insurance_fund).payout_cap() // WAD * PRECISION


@internal
@view
def _adl_score(account: uint256, v: PositionView) -> (uint256, int256):
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
    log IClearinghouse.LiquidationParamsSet(
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


@internal
def _set_insurance_fee_share(share: uint256):
    assert share <= WAD, "insurance fee share above 1"
    self.insurance_fee_share = share
    log IClearinghouse.InsuranceFeeShareSet(share=share)
