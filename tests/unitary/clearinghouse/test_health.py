"""Clearinghouse.health(from, count): the keepers' paginated view
(PROTOCOL.md §7, §9, §12). Liquidatable iff equity < MM."""

import boa

from keeper.units import WAD


def _accounts(p, n: int) -> list[str]:
    """n traders with 100 each (account ids 3.. after insurance and treasury)."""
    return [p.actor(f"trader-{i}", 100) for i in range(n)]


def test_health__all_accounts__ids_one_to_account_count(protocol):
    p = protocol
    _accounts(p, 4)
    n = p.ch.account_count()
    assert n == 6

    page = p.ch.health(1, n)

    assert [h.account for h in page] == list(range(1, n + 1))
    for h in page:
        equity, im, mm, _ = p.ch.margin(h.account)
        assert (h.equity, h.initial_margin, h.maintenance_margin) == (equity, im, mm)
        assert not h.liquidatable


def test_health__pagination(protocol):
    p = protocol
    _accounts(p, 5)
    n = p.ch.account_count()  # 7

    pages = [[h.account for h in p.ch.health(start, 3)] for start in (1, 4, 7)]

    assert pages == [[1, 2, 3], [4, 5, 6], [7]]
    assert [h.account for h in p.ch.health(n - 1, 500)] == [n - 1, n]


def test_health__past_the_end__empty(protocol):
    p = protocol
    n = p.ch.account_count()
    assert list(p.ch.health(n + 1, 10)) == []
    assert list(p.ch.health(1, 0)) == []


def test_health__from_zero__skips_account_zero(protocol):
    p = protocol
    _accounts(p, 2)
    assert [h.account for h in p.ch.health(0, 3)] == [1, 2]


def test_health__count_above_page_bound__reverts(protocol):
    with boa.reverts():
        protocol.ch.health(1, 501)


def test_health__long_after_index_drop__liquidatable(protocol, trade, move_index):
    # 1,000 cash, long 0.1 BTC at 100,000 (IM 1,000 = equity, MM 650)
    p = protocol
    trader = p.actor("trader", 1_000)
    maker = p.actor("maker", 10_000)
    trade(p, trader, maker, "0.1", 100_000)
    account = p.account(trader)
    assert not p.ch.health(account, 1)[0].liquidatable

    # empty book: mark = median(index, index, last 100,000) = index = 96,000,
    # inside the 1.625% mark band. uPnL -400: equity 600 < MM 0.1 x 96,000 x 6.5% = 624
    move_index(p, 96_000)

    (h,) = p.ch.health(account, 1)
    assert p.market().mark_price() == 96_000 * WAD
    assert h.account == account
    assert (h.equity, h.initial_margin, h.maintenance_margin) == (600 * WAD, 960 * WAD, 624 * WAD)
    assert h.liquidatable
    (maker_health,) = p.ch.health(p.account(maker), 1)
    assert not maker_health.liquidatable  # the short gained 400


def test_health__equity_equal_to_mm__not_liquidatable(protocol, trade, move_index):
    # equity = MM at mark m: 1,000 + 0.1 (m - 100,000) = 0.0065 m -> m = 96,256.684...,
    # not on the grid; at 96,257: equity 625.7, MM 625.6705 (rounded up): healthy
    p = protocol
    trader = p.actor("trader", 1_000)
    maker = p.actor("maker", 10_000)
    trade(p, trader, maker, "0.1", 100_000)

    move_index(p, 96_257)
    (h,) = p.ch.health(p.account(trader), 1)
    assert h.equity == 6257 * 10**17
    assert h.maintenance_margin == 6256705 * 10**14
    assert not h.liquidatable

    move_index(p, 96_256)
    (h,) = p.ch.health(p.account(trader), 1)
    assert h.equity < h.maintenance_margin
    assert h.liquidatable


def test_health__mark_clamped_to_band__resting_book_cannot_hide_a_drop(protocol, trade, move_index):
    # a bid at 99,999 and an ask at 100,001 hold the median at 100,000, but the
    # mark is clamped to index x (1 +- 1.625%), the mark band (mmr / 4): at index
    # 96,000 it is 97,560
    p = protocol
    trader = p.actor("trader", 1_000)
    maker = p.actor("maker", 100_000)
    trade(p, trader, maker, "0.1", 100_000)
    p.order(maker, "buy", "0.001", 99_999)
    p.order(maker, "sell", "0.001", 100_001)

    move_index(p, 96_000)
    assert p.market().mark_price() == 97_560 * WAD
    (h,) = p.ch.health(p.account(trader), 1)
    # uPnL = 0.1 x 97,560 - 10,000 = -244: equity 756 >= MM 634.14
    assert (h.equity, h.maintenance_margin, h.liquidatable) == (756 * WAD, 63414 * 10**16, False)

    move_index(p, 90_000)  # mark clamped to 91,462.5: equity 146.25 < MM 594.50625
    assert p.market().mark_price() == 914625 * 10**17
    (h,) = p.ch.health(p.account(trader), 1)
    assert (h.equity, h.maintenance_margin, h.liquidatable) == (14625 * 10**16, 59450625 * 10**13, True)


def test_health__flags_only_unhealthy_accounts_in_a_page(protocol, trade, move_index):
    p = protocol
    weak = p.actor("weak-trader", 1_000)
    strong = p.actor("strong-trader", 10_000)
    maker = p.actor("maker", 100_000)
    trade(p, weak, maker, "0.1", 100_000)
    trade(p, strong, maker, "0.1", 100_000)
    move_index(p, 95_000)

    flagged = [h.account for h in p.ch.health(1, p.ch.account_count()) if h.liquidatable]

    assert flagged == [p.account(weak)]
