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
        books them, then checks the taker's initial margin. Liquidation,
        takeover, ADL and bad-debt settlement are decided by the
        LiquidationEngine and booked here through the engine_* functions,
        which only that engine may call (connected by the owner, replaced
        only after ENGINE_DELAY).
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
from .interfaces import ILiquidationEngine
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


interface IPositionView:
    def CLEARINGHOUSE() -> address: view
    def open_order_stats(account: uint256) -> (uint256, uint256, uint256): view


WAD: constant(uint256) = 10**18
SWAD: constant(int256) = 10**18
MAX_MARKETS: constant(uint256) = 16
MAX_HEALTH_PAGE: constant(uint256) = 500
MAX_CANCELS: constant(uint256) = 200
LIQUIDATION_ORDER: constant(uint8) = 3     # PerpMarket: IOC, reduce-only, no taker fee
# a replacement liquidation engine takes effect this long after it is proposed
ENGINE_DELAY: constant(uint256) = 2 * 86400

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

# bad debt neither the insurance fund nor ADL absorbed, WAD (cash set to 0)
bad_debt: public(uint256)
# the LiquidationEngine: the only caller of the engine_* functions
liquidation_engine: public(address)
pending_liquidation_engine: public(address)
pending_liquidation_engine_at: public(uint256)


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


# ================================================================ liquidation engine

@external
def engine_cancel(account: uint256, market: address, order_ids: DynArray[uint256, MAX_CANCELS]):
    """
    @notice Cancel listed orders of an account being liquidated or
            deleveraged (liquidation engine only); an order that no longer
            rests is skipped.
    """
    self._only_engine()
    self._listed(market)
    for oid: uint256 in order_ids:
        self._cancel(market, account, oid)


@external
def engine_close(account: uint256, market: address, is_buy: bool, size: uint256, limit: uint256) -> int256:
    """
    @notice Close part of an account's position by a liquidation order into
            the book (liquidation engine only): IOC, reduce-only, no taker
            fee, bounded by `limit`. Books every party's cash.
    @return The account's equity after the close, WAD.
    """
    self._only_engine()
    idx: uint256 = self._listed(market) & MARKET_INDEX
    # (an IOC never rests: the owner is not needed)
    r: IPerpMarket.TradeResult = extcall IPerpMarket(market).place_order(
        account, empty(address), is_buy, size, limit, LIQUIDATION_ORDER, True, 0
    )
    self._book_trade(account, idx, r)
    equity: int256 = 0
    im: uint256 = 0
    mm: uint256 = 0
    # this market's margin came back with the trade
    equity, im, mm = self._margin_after(account, idx, r.margin)
    return equity


@external
def engine_transfer(account: uint256, counterparty: uint256, market: address, size: int256, price: uint256, last: bool):
    """
    @notice Move `size` of position from `account` to `counterparty` at
            `price` outside the book (liquidation engine only: takeover,
            ADL) and book both cash deltas; with `last`, clear the account's
            market bit when it is left flat there.
    """
    self._only_engine()
    idx: uint256 = self._listed(market) & MARKET_INDEX
    d0: int256 = 0
    d1: int256 = 0
    residue: uint256 = 0
    d0, d1, residue = extcall IPerpMarket(market).transfer_position(account, counterparty, size, price)
    self.cash[account] += d0
    self.cash[counterparty] += d1
    if residue > 0:
        self.cash[insurance_account] += convert(residue, int256)
    bit: uint256 = 1 << (idx - 1)
    # dev: a takeover may open the counterparty's first position here
    self.active_markets[counterparty] |= bit
    # dev: the account never has orders here then (takeover and adl check)
    if last and staticcall IPerpMarket(market).position_size(account) == 0:
        self.active_markets[account] &= ~bit


@external
def engine_settle(account: uint256, fee: uint256, liquidator: address, liquidator_share: uint256, flat: bool) -> uint256:
    """
    @notice End of a liquidation step (liquidation engine only): charge the
            liquidation fee (the engine caps it at the account's equity), pay
            `liquidator_share` of it to the liquidator's subaccount 0 (none
            when it owns the account or is empty), the rest to the insurance
            fund; then book the bad debt of an account left flat below zero.
            `flat`: the engine has checked the account holds no position and
            no order anywhere (settle_bad_debt): its market bits are cleared.
    @return The liquidator's share of the fee, WAD.
    """
    self._only_engine()
    keeper_fee: uint256 = 0
    if fee > 0:
        if liquidator != empty(address) and convert(self._account_key[account] >> 96, uint160) != convert(liquidator, uint160):
            keeper_fee = fee * liquidator_share // WAD
        self.cash[account] -= convert(fee, int256)
        if keeper_fee > 0:
            keeper: uint256 = self.account_of[liquidator][0]
            if keeper == 0:
                keeper = self._create_account(liquidator, 0)
            self.cash[keeper] += convert(keeper_fee, int256)
        self.cash[insurance_account] += convert(fee - keeper_fee, int256)
    if flat:
        self.active_markets[account] = 0
    self._settle_bad_debt(account)
    return keeper_fee


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
    @notice List a market (owner). It must point at this clearinghouse; the
            liquidation engine (connected first) lists it too, with the
            default liquidation parameters.
    """
    ownable._check_owner()
    engine: address = self.liquidation_engine
    assert engine != empty(address), "no liquidation engine"
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
    log IClearinghouse.MarketAdded(market=market, market_index=n)
    extcall ILiquidationEngine(engine).add_market(market)


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


@external
def set_liquidation_engine(engine: address):
    """
    @notice Connect the liquidation engine (owner). The first one takes
            effect at once (deployment); a replacement takes effect through
            apply_liquidation_engine, ENGINE_DELAY (2 days) later, so that
            accounts see it coming. The engine must name this clearinghouse.
    """
    ownable._check_owner()
    assert engine != empty(address), "zero address"
    assert staticcall ILiquidationEngine(engine).CLEARINGHOUSE() == self, "engine of another clearinghouse"
    if self.liquidation_engine == empty(address):
        self.liquidation_engine = engine
        log IClearinghouse.LiquidationEngineSet(engine=engine)
        return
    at: uint256 = block.timestamp + ENGINE_DELAY
    self.pending_liquidation_engine = engine
    self.pending_liquidation_engine_at = at
    log IClearinghouse.LiquidationEngineProposed(engine=engine, effective_at=at)


@external
def apply_liquidation_engine():
    """
    @notice Switch to the proposed liquidation engine (owner), once its
            delay has passed. Markets listed before it are listed on it by
            its owner (LiquidationEngine.add_market).
    """
    ownable._check_owner()
    engine: address = self.pending_liquidation_engine
    assert engine != empty(address), "no engine proposed"
    assert block.timestamp >= self.pending_liquidation_engine_at, "engine delay not over"
    self.liquidation_engine = engine
    self.pending_liquidation_engine = empty(address)
    self.pending_liquidation_engine_at = 0
    log IClearinghouse.LiquidationEngineSet(engine=engine)


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
def _only_engine():
    assert msg.sender == self.liquidation_engine, "not the liquidation engine"


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
def _cancel(market: address, account: uint256, order_id: uint256) -> bool:
    """
    @dev Cancel an order of `account` in `market`; False when it does not rest
         (filled or cancelled since it was listed: a batch goes on).
    """
    return extcall IPerpMarket(market).cancel_order(account, order_id)


@internal
@pure
def _ceil_div(x: uint256, y: uint256) -> uint256:
    return (x + y - 1) // y


@internal
def _set_insurance_fee_share(share: uint256):
    assert share <= WAD, "insurance fee share above 1"
    self.insurance_fee_share = share
    log IClearinghouse.InsuranceFeeShareSet(share=share)
