"""Conservation of collateral (PROTOCOL.md §2, §14.1-2): the vault's token
balance, in WAD, equals the cash of all accounts plus their unrealized PnL
(to the wei of rounding, always against the accounts), and equals the cash
exactly once every position is closed."""

from keeper.deploy import to_wad
from tests.utils.protocol import GTC, IOC

SYMBOLS = ("BTC-PERP", "ETH-PERP")


def _vault_wad(p) -> int:
    return p.token.balanceOf(p.ch.address) * 10 ** (18 - p.decimals)


def _positions(p) -> list:
    return [p.market(sym).position(a) for a in range(1, p.ch.account_count() + 1) for sym in SYMBOLS]


def _check_balance_covers_cash_and_pnl(p) -> None:
    """Σ cash + Σ uPnL (exact) = vault; each uPnL is rounded down, by < 1 wei."""
    open_positions = [v for v in _positions(p) if v.size != 0]
    gap = _vault_wad(p) - p.total_cash() - sum(v.unrealized_pnl for v in open_positions)
    assert 0 <= gap <= len(open_positions)


def _assert_flat(p) -> None:
    for sym in SYMBOLS:
        assert p.market(sym).open_interest_sides() == (0, 0)
    assert all(v.size == 0 for v in _positions(p))


def _set_fees(p, taker: str, maker: str) -> None:
    for sym in SYMBOLS:
        params = list(p.d.markets[sym].config.params())
        params[2], params[3] = to_wad(taker), to_wad(maker)
        p.market(sym).set_params(tuple(params), sender=p.owner)


def _trading_session(p, move_index) -> tuple[str, str, str]:
    """Fills at several prices, a partial close (rounded cost basis), a flip,
    index moves and withdrawals; every position is closed at the end."""
    maker = p.actor("maker", 50_000)
    trader = p.actor("trader", 10_000)
    arbitrageur = p.actor("arbitrageur", "5000.000001")

    # trader long 0.003 BTC from two asks: cost basis 100 + 200.002
    p.order(maker, "sell", "0.001", 100_000, GTC)
    p.order(maker, "sell", "0.002", 100_001, GTC)
    p.order(trader, "buy", "0.003", 100_001, IOC)
    _check_balance_covers_cash_and_pnl(p)

    # index up; trader sells a third of it: 300.002 / 3 is rounded
    move_index(p, 101_000)
    p.order(maker, "buy", "0.001", 100_999, GTC)
    p.order(trader, "sell", "0.001", 100_999, IOC)
    _check_balance_covers_cash_and_pnl(p)
    p.ch.withdraw(0, p.units("123.456789"), sender=trader)

    # arbitrageur short 0.07 ETH, then flips to long 0.04
    p.order(maker, "buy", "0.07", "4000.3", GTC, symbol="ETH-PERP")
    p.order(arbitrageur, "sell", "0.07", "4000.3", IOC, symbol="ETH-PERP")
    move_index(p, "3950.7", "ETH-PERP")
    p.order(maker, "sell", "0.11", "3950.9", GTC, symbol="ETH-PERP")
    p.order(arbitrageur, "buy", "0.11", "3950.9", IOC, symbol="ETH-PERP")
    _check_balance_covers_cash_and_pnl(p)
    p.ch.withdraw(0, p.units(7), sender=maker)

    # everybody closes
    move_index(p, 99_500)
    p.order(maker, "buy", "0.002", 99_500, GTC)
    p.order(trader, "sell", "0.002", 99_500, IOC, reduce_only=True)
    p.order(maker, "buy", "0.04", "3999.9", GTC, symbol="ETH-PERP")
    p.order(arbitrageur, "sell", "0.04", "3999.9", IOC, symbol="ETH-PERP", reduce_only=True)
    _assert_flat(p)
    return maker, trader, arbitrageur


def test_conservation__all_positions_closed__vault_equals_total_cash(protocol_any_decimals, move_index):
    p = protocol_any_decimals
    _trading_session(p, move_index)

    assert _vault_wad(p) == p.total_cash()


def test_conservation__zero_fees__flat_accounts_net_to_zero(protocol_any_decimals, move_index):
    # without fees, what one account realized another lost: once flat, the
    # cost-basis rounding of partial closes and flips has cancelled out
    p = protocol_any_decimals
    maker, trader, arbitrageur = _trading_session(p, move_index)
    deposited = to_wad(50_000) + to_wad(10_000) + to_wad("5000.000001")
    withdrawn = to_wad("123.456789") + to_wad(7)

    assert p.total_cash() == deposited - withdrawn
    assert p.ch.cash(p.ch.insurance_account()) == 0
    assert p.ch.cash(p.ch.treasury_account()) == 0


def test_conservation__with_fees__vault_equals_total_cash(protocol_any_decimals, move_index):
    p = protocol_any_decimals
    _set_fees(p, "0.0005", "0.0002")
    _trading_session(p, move_index)

    fees = p.ch.cash(p.ch.insurance_account()) + p.ch.cash(p.ch.treasury_account())
    assert fees > 0
    assert _vault_wad(p) == p.total_cash()


def test_conservation__everyone_withdraws_everything__vault_keeps_only_dust(
    protocol_any_decimals, move_index
):
    # cash is WAD, withdrawals are whole token units: at most one unit of
    # dust per account stays in the vault, still owned by its account
    p = protocol_any_decimals
    _set_fees(p, "0.0005", "0.0002")
    _trading_session(p, move_index)
    precision = 10 ** (18 - p.decimals)

    for account in range(1, p.ch.account_count() + 1):
        owner, sub = p.ch.account_key(account)
        units = p.ch.cash(account) // precision
        if units > 0:
            p.ch.withdraw(sub, units, sender=owner)

    assert _vault_wad(p) == p.total_cash()
    for account in range(1, p.ch.account_count() + 1):
        assert 0 <= p.ch.cash(account) < precision
