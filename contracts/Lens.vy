# pragma version 0.4.3
"""
@title Lens
@license MIT
@notice Read-only views over a Clearinghouse for people, front ends and
        tests (PROTOCOL.md §7): everything about one account in one call.
        It holds no state but the clearinghouse's address and changes
        nothing; the Clearinghouse keeps the views keepers need on its own
        (margin, health, adl_score).
"""

MAX_MARKETS: constant(uint256) = 16


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
    cash: int256
    equity: int256
    initial_margin: uint256
    maintenance_margin: uint256
    withdrawable: uint256
    positions: DynArray[MarketPosition, MAX_MARKETS]


struct PositionView:
    size: int256
    open_notional: int256
    entry_price: uint256
    mark: uint256
    unrealized_pnl: int256
    funding_owed: int256
    open_orders: uint256


interface IClearinghouseView:
    def account_of(owner: address, subaccount: uint256) -> uint256: view
    def cash(account: uint256) -> int256: view
    def active_markets(account: uint256) -> uint256: view
    def markets(index: uint256) -> address: view
    def margin(account: uint256) -> (int256, uint256, uint256, uint256): view


interface IPositionView:
    def position(account: uint256) -> PositionView: view


CLEARINGHOUSE: public(immutable(address))


@deploy
def __init__(clearinghouse: address):
    assert clearinghouse != empty(address), "zero address"
    CLEARINGHOUSE = clearinghouse


@external
@view
def account_summary(owner: address, subaccount: uint256) -> AccountSummary:
    """
    @notice Everything about one account: cash, equity, IM, MM, withdrawable
            (WAD, as Clearinghouse.margin) and each market where it has a
            position or resting orders: size, entry, mark, unrealized PnL,
            funding owed and resting orders. Empty for an unknown account.
    """
    ch: IClearinghouseView = IClearinghouseView(CLEARINGHOUSE)
    account: uint256 = staticcall ch.account_of(owner, subaccount)
    s: AccountSummary = empty(AccountSummary)
    if account == 0:
        return s
    s.account = account
    s.cash = staticcall ch.cash(account)
    s.equity, s.initial_margin, s.maintenance_margin, s.withdrawable = staticcall ch.margin(account)
    mask: uint256 = staticcall ch.active_markets(account)
    for i: uint256 in range(MAX_MARKETS):
        if mask == 0:
            break
        if mask & 1 == 1:
            market: address = staticcall ch.markets(i)
            v: PositionView = staticcall IPositionView(market).position(account)
            if v.size != 0 or v.open_orders != 0:
                s.positions.append(MarketPosition(
                    market=market, size=v.size, entry_price=v.entry_price, mark=v.mark,
                    unrealized_pnl=v.unrealized_pnl, funding_owed=v.funding_owed, open_orders=v.open_orders
                ))
        mask >>= 1
    return s
