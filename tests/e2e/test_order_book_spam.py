"""Order book spam: 10,000 dust orders (one lot, 0.001 BTC, the minimum size)
at one price, from 500 subaccounts (the per-account cap is 20 open orders;
the first order of each goes through the clearinghouse, the other 19 are
routed to the market as the clearinghouse routes them, for speed);
then a market order, a liquidation and a cancel in the middle of the queue
each still fit in a block (< 30,000,000 gas), because a taker walks at most
`max_fills` maker orders and insertion / cancel are O(1) (PROTOCOL.md §5).

Gas is measured as a real transaction is charged, as in
tests/unitary/index_oracle/test_gas.py: in a separate boa.Env, the state
committed before each measured call (cold slots, fresh original values),
plus the intrinsic cost, less the capped refund."""

import boa

from tests.e2e.replay_helpers import assert_solvent, open_position
from tests.fuzz.liquidation_helpers import MarketState
from tests.utils.protocol import GTC, IOC, MAX_UINT, deploy_for_tests, to_wad

BLOCK_GAS_LIMIT = 30_000_000
ORDERS = 10_000
SPAM_PRICE = 95_000  # within the price band of the index 96,000
TX_BASE_GAS = 21_000


def _tx_gas(computation) -> int:
    data = bytes(computation.msg.data)
    zeros = data.count(0)
    tokens = zeros + 4 * (len(data) - zeros)
    used = TX_BASE_GAS + 4 * tokens + computation.get_gas_used()
    used -= min(computation.get_gas_refund(), used // 5)
    return max(used, TX_BASE_GAS + 10 * tokens)


def _measured(env, contract, fn):
    env.evm.vm.state._account_db.lock_changes()  # end the previous "transaction"
    out = fn()
    return out, _tx_gas(contract._computation)


def test_order_book_spam__market_order_and_liquidation_fit_in_a_block():
    env = boa.Env()
    with boa.swap_env(env):
        p = deploy_for_tests(6)
        m, ch = p.market(), p.ch
        # the victim: 1 BTC long at 103,000 on 10,500; then the index falls to 96,000 (mark
        # 96,000: equity 3,500 < MM 6,240, bankruptcy price 92,500) and the spam arrives
        # inside the price band, under the mark, above the bankruptcy price
        p.set_index(103_000)
        maker = p.actor("maker", 1_000_000)
        victim = p.actor("victim", 10_500)
        open_position(p, victim, maker, "buy", "1", 103_000)
        p.set_index(96_000)
        cap = p.params().max_open_orders
        n_subs = ORDERS // cap
        spammer = p.actor("spammer")
        p.token.mint(spammer, p.units(1_000) * n_subs, sender=p.owner)
        p.token.approve(ch.address, MAX_UINT, sender=spammer)
        size, price = to_wad("0.001"), to_wad(SPAM_PRICE)
        tick = SPAM_PRICE  # BTC-PERP: a $1 tick
        with boa.env.prank(spammer):
            for sub in range(n_subs):
                ch.deposit(sub, p.units(1_000))
                # the first order of each subaccount through the clearinghouse (margin
                # check, active-market bit), the next ones routed to the market as the
                # clearinghouse routes them (twice as fast on boa; the same book)
                ch.place_order(
                    spammer, sub, m.address, True, size, price, GTC, False, 0 if sub == 0 else tick
                )
        with boa.env.prank(ch.address):
            for sub in range(n_subs):
                account = ch.account_of(spammer, sub)
                for _ in range(cap - 1):
                    m.place_order(account, spammer, True, size, price, GTC, False, tick)
        for sub in (0, n_subs - 1):  # each subaccount still meets its initial margin
            equity, im, _mm, _ = ch.margin(ch.account_of(spammer, sub))
            assert im > 0 and equity >= im
        state = MarketState.read(m)
        assert len(state.orders) == ORDERS and m.best_bid() == price
        assert p.lens.market_summary(m.address, 1).bids[0].orders == ORDERS

        equity, _im, mm, _ = p.margin(victim)
        assert m.mark_price() == to_wad(96_000) and 0 <= equity < mm
        taker = p.actor("taker", 100_000)

        # a market order (at the price band's low edge) walks at most max_fills dust orders
        _, order_gas = _measured(env, ch, lambda: p.order(taker, "sell", "1", 94_080, IOC))
        assert p.position(taker).size == -p.params().max_fills * size
        # so does a limit order; its rest would cross the dust still resting: it is
        # cancelled, and the book is never crossed
        assert p.order(taker, "sell", "1", 94_080) == 0
        assert p.position(taker).size == -2 * p.params().max_fills * size
        assert m.best_ask() == 0 or m.best_ask() > m.best_bid()

        # a liquidation into the same dust
        keeper = p.actor("keeper")
        closed, liq_gas = _measured(
            env, p.engine, lambda: p.engine.liquidate(p.account(victim), m.address, 2**200, [], sender=keeper)
        )
        assert closed == p.params().max_fills * size  # progress every call, bounded

        # a cancel deep inside the queue
        middle = sorted(MarketState.read(m).orders, key=lambda o: o.oid)[ORDERS // 2]
        _owner, sub = ch.account_key(middle.account)
        _, cancel_gas = _measured(
            env, ch, lambda: ch.cancel_order(spammer, sub, m.address, middle.oid, sender=spammer)
        )
        assert p.lens.order(m.address, middle.oid)[0] == 0

        print(f"gas: market order {order_gas:,}, liquidation {liq_gas:,}, cancel {cancel_gas:,}")
        for gas in (order_gas, liq_gas, cancel_gas):
            assert gas < BLOCK_GAS_LIMIT
        assert order_gas < 1_000_000 and liq_gas < 1_500_000 and cancel_gas < 100_000
        assert_solvent(p)
