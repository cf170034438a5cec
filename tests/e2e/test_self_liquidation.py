"""Self-liquidation and liquidation blocking.

* An owner liquidating its own account (any subaccount) earns nothing, and a
  second account of a colluder earns the liquidator's share of a fee the
  liquidated account pays in full: self-liquidation always costs the pair
  the insurance fund's part of the fee (PROTOCOL.md §9).
* Dust top-ups (1 token unit, from anyone) do not lift an account above its
  maintenance margin, and resting orders cannot shield it: liquidate cancels
  the listed orders (up to 200, above the per-account cap) before it closes,
  and skips one its owner cancelled first (a front-run of the keeper's list)."""

from tests.e2e.replay_helpers import WAD, assert_solvent, open_position
from tests.utils.protocol import GTC

FEE = 5 * 10**15  # liquidation_fee 0.5%
SHARE = WAD // 2  # liquidator_share 50%


def _underwater(p, deposit=1_000):
    """An account 0.1 BTC long at 100,000 (10x); after `_drop`, the index at
    96,000 and the mark 96,001: equity 600.1 < MM 624.0065, solvent; a bid to
    close into."""
    p.set_index(100_000)
    maker = p.actor("maker", 1_000_000)
    owner = p.actor("owner", deposit)
    open_position(p, owner, maker, "buy", "0.1", 100_000)
    return maker, owner


def _drop(p, maker, index=96_000):
    p.set_index(index)
    p.order(maker, "buy", "1", index, GTC)
    p.order(maker, "sell", "1", index + 1, GTC)


# The order-spam accounts: resting orders, reduce-only included, reserve margin
# (PROTOCOL.md §8), so the owner rests its asks from more than the position's IM.
# Asks of 0.001 at 101,000 + i (within the 2% price band of the index 100,000):
# with all 20 (the cap) resting, asks = 2,020.19 and IM = ceil((10,000 + 2,020.19)
# x 10%) + risk, risk = ceil(2,020.19 x k) = 74.7264..., k = 3.6989796%: 1,276.745...
# <= 1,300. Then the index drops to 93,000 (the mark 93,001): equity 1,300 - 699.9
# = 600.1 < MM ceil(9,300.1 x 6.5%) + risk = 679.23..., solvent.
SPAM_DEPOSIT, SPAM_DROP = 1_300, 93_000


def _spam_asks(p, owner, n):
    return [p.order(owner, "sell", "0.001", 101_000 + i, GTC, reduce_only=True) for i in range(n)]


def test_self_liquidation__second_account_earns_less_than_the_fee_paid(protocol):
    p = protocol
    maker, owner = _underwater(p)
    colluder = p.actor("colluder", 10)  # the owner's second account (another address)
    _drop(p, maker)
    a = p.account(owner)
    equity, _im, mm, _ = p.margin(owner)
    assert 0 <= equity < mm
    ins = p.ch.insurance_account()
    ins0, col0 = p.ch.cash(ins), p.ch.cash(p.account(colluder))
    pair0 = equity + p.margin(colluder)[0]

    closed = p.engine.liquidate(a, p.market().address, 2**200, [], sender=colluder)

    assert closed > 0
    (liq,) = [e for e in p.engine.get_logs() if type(e).__name__ == "Liquidation"]
    reward = p.ch.cash(p.account(colluder)) - col0
    assert liq.fee > 0 and reward == liq.liquidator_fee == liq.fee * SHARE // WAD
    assert reward < liq.fee  # the pair loses the fund's part
    assert p.ch.cash(ins) - ins0 == liq.fee - reward
    # the pair together lost at least the fund's share of the fee
    assert p.margin(owner)[0] + p.margin(colluder)[0] <= pair0 - (liq.fee - reward)
    assert_solvent(p)


def test_self_liquidation__owner_of_the_account_earns_nothing(protocol):
    p = protocol
    maker, owner = _underwater(p)
    p.fund(owner, 10, sub=1)  # its own second subaccount
    _drop(p, maker)
    a = p.account(owner)
    ins = p.ch.insurance_account()
    ins0, sub0 = p.ch.cash(ins), p.ch.cash(p.account(owner, 1))

    p.engine.liquidate(a, p.market().address, 2**200, [], sender=owner)

    (liq,) = [e for e in p.engine.get_logs() if type(e).__name__ == "Liquidation"]
    assert liq.fee > 0 and liq.liquidator_fee == 0
    assert p.ch.cash(ins) - ins0 == liq.fee  # the whole fee to the fund
    assert p.ch.cash(p.account(owner, 1)) == sub0
    assert_solvent(p)


def test_dust_top_ups__do_not_block_liquidation(protocol):
    p = protocol
    maker, owner = _underwater(p)
    _drop(p, maker)
    griefer = p.actor("griefer")
    p.token.mint(griefer, 100, sender=p.owner)
    p.token.approve(p.ch.address, 2**256 - 1, sender=griefer)
    for _ in range(100):  # 100 top-ups of 1 unit (1e-6 USDC) each
        p.ch.deposit(0, 1, owner, sender=griefer)
    equity, _im, mm, _ = p.margin(owner)
    assert equity < mm  # still below maintenance margin

    closed = p.engine.liquidate(p.account(owner), p.market().address, 2**200, [], sender=p.actor("keeper"))

    assert closed > 0
    assert p.margin(owner)[0] >= 0
    assert_solvent(p)


def test_order_spam__liquidate_cancels_the_listed_orders(protocol):
    p = protocol
    maker, owner = _underwater(p, deposit=SPAM_DEPOSIT)
    # while healthy: fill its open-order cap with reduce-only asks
    cap = p.params().max_open_orders
    assert cap == 20
    ids = _spam_asks(p, owner, cap)
    assert all(ids) and p.market().open_order_stats(p.account(owner))[0] == cap
    _drop(p, maker, SPAM_DROP)
    a, m = p.account(owner), p.market().address
    equity, _im, mm, _ = p.margin(owner)
    assert 0 <= equity < mm  # the orders' risk does not keep it above maintenance
    keeper = p.actor("keeper")

    # unlisted orders: the call only makes progress (cancels what it is given)
    assert p.engine.liquidate(a, m, 2**200, ids[:5], sender=keeper) == 0
    assert p.market().open_order_stats(a)[0] == cap - 5
    # new orders while below maintenance margin cannot add risk
    closed = p.engine.liquidate(a, m, 2**200, ids[5:], sender=keeper)

    assert closed > 0 and p.market().open_order_stats(a)[0] == 0
    assert all(p.lens.order(p.market().address, i)[0] == 0 for i in ids)
    assert_solvent(p)


def test_front_run__owner_cancels_a_listed_order__liquidation_still_lands(protocol):
    """The owner sees the keeper's liquidation (listing its two orders) in the
    mempool and cancels one of them first; the liquidation skips it and closes."""
    p = protocol
    maker, owner = _underwater(p, deposit=SPAM_DEPOSIT)
    ids = _spam_asks(p, owner, 2)
    _drop(p, maker, SPAM_DROP)
    a, m = p.account(owner), p.market().address
    equity, _im, mm, _ = p.margin(owner)
    assert 0 <= equity < mm
    p.market().cancel(ids[0], sender=owner)  # the front-run
    closed = p.engine.liquidate(a, m, 2**200, ids, sender=p.actor("keeper"))
    assert closed > 0 and p.market().open_order_stats(a)[0] == 0
    assert_solvent(p)
