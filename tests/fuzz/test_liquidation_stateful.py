"""Stateful fuzzing of margin, liquidation, takeover, insurance and ADL
(PROTOCOL.md §7, §9-11, §14) on titanoboa.

A hypothesis ``RuleBasedStateMachine`` over one market (BTC-PERP): two
makers quote around the index (both sides, or one); five trading accounts
(four traders, one of them also through its subaccount 1) open positions
at 1x-20x by market orders, rest limit orders, cancel, reduce; the index
moves a little or gaps by 2-30% in one step; time passes with premium
samples and funding settlement; the insurance fund takes deposits; anyone
liquidates anyone (a keeper, the owner itself, another trader), a
well-capitalized liquidator takes positions over, and ADL runs with
candidates in the contract's ``adl_score`` order, or deliberately wrong
(mis-ordered, same side, unprofitable, one too many: all must revert);
the index can go stale or lose its quorum. Market, liquidation, insurance
and funding parameters and the collateral decimals (6 or 18) are drawn per
example. Every example runs inside its own ``boa.env.anchor()``
(titanoboa's pytest plugin); profiles "quick" (default) and "deep" come
from tests/conftest.py.

Invariants, derived from the code (WAD = 1e18, P = Clearinghouse.PRECISION
= 10**(18 - decimals), vault = token.balanceOf(CH) x P, U = Σ size x
(cumulative - snapshot) the unsettled funding in 1e-18 wei, dust the
market's funding dust, on = open notional):

1. conservation, exactly (every cash movement is zero-sum or backed by a
   token transfer; realized PnL - Δon = -signed fill value sums to 0 over
   both sides of every fill and transfer; an uncovered deficit set to 0 is
   the only cash created, and it is booked in bad_debt)::

       (Σ cash - Σ on - vault - bad_debt) x WAD == U - dust

   and the insurance fund holds exactly its booked assets:
   token.balanceOf(IF) == IF.total_assets_stored.
2. closing everything (teardown of every example that passed its steps:
   every order cancelled, every position closed pairwise, reduce-only):
   all flat, U = dust = 0 and Σ cash == vault + bad_debt; then everybody
   withdraws all whole token units it has, the fund collects, and
   Σ withdrawn + balanceOf(CH) + IF.total_assets_stored == Σ deposits
   (clearinghouse and fund), every withdrawal succeeding unless bad debt or
   an unrecognized deficit (a flat account with cash < 0) exists.
3. per market Σ long sizes == Σ short sizes == open_interest_sides().
4. funding zero-sum up to the booked residue: every PositionChanged
   funding_paid is summed (Σ paid), the insurance account's cash is
   modelled from the events (fee share of every trade call, liquidation fee
   less the keeper's share, takeover fee, pushes to and covers from the
   fund, collects); the rest is the funding residue R >= 0, and exactly
   Σ paid x WAD + U == R x WAD + dust. The treasury's cash is modelled
   exactly too. Settling an account twice changes nothing.
5. per-account sums equal market aggregates: each account's order word
   (count, reserved bid/ask tick-lots) is the sum of its resting orders,
   each level's lots the sum of its orders, best bid/ask are the best
   levels, the book is not crossed; an account with a position or an order
   has its market bit in active_markets.
6. a successful withdrawal happens iff amount x P <= min(cash - funding
   owed, equity - IM) (and the vault holds the tokens), and leaves
   equity >= IM and cash >= 0.
7. liquidate of a healthy account (equity >= MM) reverts "not liquidatable"
   (takeover too; adl reverts unless equity < 0). Health as the views
   (margin(), health()) see it, before the listed orders are cancelled; if
   the cancels (its own quotes count in the mark) make it healthy, the call
   only cancels.
8. a liquidation or takeover of a solvent account never leaves it with
   equity < 0; no liquidation, takeover or ADL changes bad_debt; the fee is
   liquidation_fee x closed notional (rounded up) capped at the equity left,
   the keeper's share goes to the caller's subaccount 0, none when the
   caller owns the account (self-liquidation: the owner's other
   subaccounts' cash does not move, the account's cash moves only by its
   realized PnL - funding - fee). Fills stay within the limit price
   (bankruptcy price when solvent, mark -+ bankrupt_band when bankrupt).
   The restore-IM size and the limit price match keeper.liquidation_model.
   A close that would leave a solvent account below zero (it moves the
   mark) reverts; so does any order that would leave its account below
   zero (a voluntary close beyond the bankruptcy price). A bankrupt account
   is taken over only whole, when the fund can cover it.
9. the insurance fund pays before ADL: adl succeeds only when the
   worst-case deficit (-equity + |size| x mark x band) exceeds
   insurance_capacity(); liquidate of a bankrupt account succeeds only
   when it does not. Accounts not party to a liquidation, takeover or adl
   (not the account, the caller's keeper account, a maker filled, a
   counterparty, the fund or the treasury) keep their cash to the wei; a
   bystander that only deposits and withdraws has exactly its net deposits.
10. ADL reduces only profitable opposite positions (never increases or
   flips one), in non-increasing live score order (the events' scores are
   the adl_score views read before), at the bankruptcy price, and leaves
   the bankrupt account flat with cash >= 0 and bad_debt unchanged (except
   a short whose deficit exceeds its notional: bankruptcy price 0, the rest
   goes to the fund and bad_debt); each counterparty pays at most its
   equity: its price is capped so it keeps equity >= 0, the rest of the
   deficit goes to the fund, then bad_debt. A flat account below zero (a
   resting order in another market filled after a liquidation closed it at
   its bankruptcy price, PROTOCOL.md §15) is booked by settle_bad_debt
   (checked in an anchor after every step).
   The insurer's stake: deposits, withdraw requests and redemptions, which
   succeed only between the cooldown and the end of the window, while every
   listed market's index is valid (PROTOCOL.md §11.0), and pay what the
   shares are worth then (they bore the losses meanwhile).
11. with every oracle source stale, or fewer fresh than the quorum, or a
   majority of sources pushing the index x11 or /11 (beyond the guard),
   liquidate, takeover, adl, risk-increasing orders, withdrawals of
   exposed accounts and funding samples/settlements revert with the
   oracle's reason; cancels and deposits still work.

Contract bugs this machine found (six, fixed after 07b1c1d) are kept as
deterministic regression tests at the end of this file (test_regression__*).
"""

from __future__ import annotations

import sys

import boa
from hypothesis import event as count
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from keeper import funding_model as fm
from keeper import liquidation_model as lm
from keeper.deploy import to_wad
from keeper.model import ceil_div, price_band_ticks
from keeper.units import WAD
from tests.fuzz.liquidation_helpers import MarketState, attempt, events
from tests.fuzz.stats import record
from tests.utils.protocol import GTC, IOC, MAX_UINT, StorageKeyTrace, position_changes

TICK = WAD  # BTC-PERP of tests.utils.protocol.test_markets
LOT = 10**15
INDEX0 = 100_000 * WAD
MIN_INDEX, MAX_INDEX = 30_000 * WAD, 400_000 * WAD
MAX_AGE = 60  # oracle max_age of the test markets


BELOW_ZERO = "order would leave the account below zero"
BAND = "price beyond the price band"
ENGINE_FUNCTIONS = (
    "liquidate",
    "takeover",
    "adl",
    "settle_bad_debt",
)  # LiquidationEngine, not the clearinghouse
MAKERS = ("maker_a", "maker_b")
TRADERS = ("trader_0", "trader_1", "trader_2", "trader_3")

RISK = [(WAD // 10, 65 * WAD // 1000), (WAD // 20, 3 * WAD // 100)]  # (imr, mmr)
FEES = [(0, 0), (5 * WAD // 10_000, 2 * WAD // 10_000)]  # (taker, maker)
LIQ = [  # (fee, keeper share, bankrupt band, takeover discount, small position notional)
    (5 * WAD // 1000, WAD // 2, WAD // 20, WAD // 100, 1_000 * WAD),
    (2 * WAD // 100, WAD, WAD // 5, 2 * WAD // 100, 0),
    (0, 0, WAD // 100, 0, 20_000 * WAD),
    (WAD // 100, 3 * WAD // 10, WAD // 1000, 5 * WAD // 1000, 100 * WAD),
]
PAYOUT_CAPS = [WAD, WAD // 2, WAD // 20]
FUNDING = [
    fm.FundingParams(),
    fm.FundingParams(funding_interval=600, funding_period=3600, sample_interval=30, cap=fm.MAX_CAP),
]
CRASHES = [-3000, -2000, -1000, -500, -400, -300, -200, 200, 300, 400, 500, 1000, 2000, 3000]


class LiquidationMachine(RuleBasedStateMachine):
    protocols: dict = {}  # decimals -> Protocol, set by the test function
    key_trace: StorageKeyTrace  # set by the test function

    # ================================================================ setup

    @initialize(
        decimals=st.sampled_from([6, 18]),
        risk=st.sampled_from(RISK),
        fees=st.sampled_from(FEES),
        liq=st.sampled_from(LIQ),
        payout_cap=st.sampled_from(PAYOUT_CAPS),
        insurance=st.sampled_from([0, 2_000, 100_000]),
        funding=st.sampled_from(FUNDING),
        deposits=st.lists(st.integers(1_000, 50_000), min_size=5, max_size=5),
        gap=st.sampled_from([None, *CRASHES]),
        opens=st.lists(
            st.tuples(st.sampled_from([0, 30, 60, 90, 97]), st.booleans()), min_size=5, max_size=5
        ),
    )
    def setup(self, decimals, risk, fees, liq, payout_cap, insurance, funding, deposits, gap, opens):
        type(self).key_trace.reset()
        p = self.p = type(self).protocols[decimals]
        record("liquidation", "examples")
        assert p.ch.account_count() == 2, "state leaked from another example"
        self.ch, self.m, self.token, self.fund = p.ch, p.market(), p.token, p.insurance
        self.engine = p.engine
        md = p.d.markets["BTC-PERP"]
        self.f, self.oracle, self.reporters = md.funding, md.oracle, md.reporters
        self.P = p.ch.PRECISION()
        self.index = INDEX0
        self._push()

        imr, mmr = risk
        params = list(md.config.params())
        params[0], params[1], params[2], params[3] = imr, mmr, fees[0], fees[1]
        params[4] = min(params[4], mmr // 4 // 10**9 * 10**9)  # mark_band <= mmr / 4
        self.m.set_params(tuple(params), sender=p.owner)
        self.imr = imr
        self.price_band, self.mark_band = params[9], params[4]
        self.lp = lm.LiquidationParams(*liq)
        self.engine.set_liquidation_params(self.m.address, liq, sender=p.owner)
        self.fund.set_params(payout_cap, 7 * 86_400, 2 * 86_400, sender=p.owner)
        self.f.set_params(funding.as_tuple(), sender=p.owner)
        self.fparams = funding
        self.fee_share = self.ch.insurance_fee_share()

        self.ins, self.treasury = self.ch.insurance_account(), self.ch.treasury_account()
        assert self.ch.cash(self.ins) == 0 and self.ch.cash(self.treasury) == 0
        # ledgers (token units for deposits/withdrawals, WAD for the models)
        self.deposited = 0  # into the clearinghouse and the fund, by users
        self.withdrawn = 0  # out of the clearinghouse, to users
        self.net = {}  # account -> deposits - withdrawals, WAD
        self.fpaid = 0  # Σ funding_paid of PositionChanged events
        self.ins_model = 0  # insurance account cash without the funding residue
        self.treasury_model = 0

        # actors: owner address, subaccount, account id
        self.owner_of: dict[int, str] = {}
        self.sub_of: dict[int, int] = {}
        self.makers = [self._open_account(boa.env.generate_address(n), 0, 3_000_000) for n in MAKERS]
        traders = [boa.env.generate_address(n) for n in TRADERS]
        self.traders = [self._open_account(w, 0, d) for w, d in zip(traders, deposits[:4], strict=True)]
        self.traders.append(self._open_account(traders[0], 1, deposits[4]))  # trader_0's subaccount 1
        self.liquidator = self._open_account(boa.env.generate_address("liquidator"), 0, 5_000_000)
        self.bystander = self._open_account(boa.env.generate_address("bystander"), 0, 10_000)
        self.trading = [*self.makers, *self.traders, self.liquidator]
        self.everyone = [*self.trading, self.bystander]
        self.insurer = boa.env.generate_address("insurer")
        self.fund_request = None  # (shares, requested at) of the insurer's open request
        if insurance:
            self.deposit_insurance(insurance)

        # a two-sided book, then the traders open at their drawn leverage
        for i in range(2):
            self.quote(i, 5 + 10 * i, 0, 3000, 2, "both")
        # the traders open at a share of their maximum leverage (1 / imr)
        for a, (pct, buy) in zip(self.traders, opens, strict=True):
            if pct:
                self._open(a, buy, pct * WAD // imr, 300)
        if gap is not None:
            self.gap_index(gap, False, False)
        health = self._health()
        count("setup", f"{sum(health[a][0] < health[a][2] for a in self.trading)} liquidatable")
        count("setup", f"{sum(health[a][0] < 0 for a in self.trading)} bankrupt")

    def _open_account(self, owner: str, sub: int, dollars: int) -> int:
        self._deposit(owner, sub, dollars * 10**self.p.decimals)
        a = self.ch.account_of(owner, sub)
        self.owner_of[a], self.sub_of[a] = owner, sub
        return a

    # ================================================================ plumbing

    def _push(self, reporters=None, confirm: bool = True) -> None:
        """The reporters report the index now. A gap the guard holds back
        (PROTOCOL.md §4) is confirmed by the owner, unless `confirm` is False:
        the machine's gaps stand for genuine moves."""
        t = boa.env.evm.patch.timestamp
        for r in reporters if reporters is not None else self.reporters:
            self.oracle.report(self.index, t, sender=r)
        valid, _median, fresh = self.oracle.index_status()
        if confirm and not valid and fresh >= self.oracle.quorum():
            self.oracle.reset_reference(sender=self.p.owner)
            count("index", "guard held a gap: owner confirmed")

    def _push_other_markets(self) -> None:
        """The reporters of the other listed markets report their initial
        price now (the fund's withdrawals wait for every listed index)."""
        t = boa.env.evm.patch.timestamp
        for md in self.p.d.markets.values():
            if md.oracle.address != self.oracle.address:
                for r in md.reporters:
                    md.oracle.report(to_wad(md.config.initial_price), t, sender=r)

    def _book(self, logs) -> None:
        """Book a successful call's events into the models (invariant 4)."""
        fees = 0
        covered = 0
        for e in logs:
            name = type(e).__name__
            if name in ("PositionChanged", "Fill"):
                # a maker's fill tells its position change in the Fill (no PositionChanged)
                (change,) = position_changes([e])
                self.fpaid += change.funding_paid
                fees += change.fee_paid
            elif name == "Liquidation":
                self.ins_model += e.fee - e.liquidator_fee
            elif name == "Takeover":
                self.ins_model += e.fee
            elif name == "Covered":
                self.ins_model -= e.inflow * self.P
                covered = e.paid
            elif name == "BadDebt":
                if e.uncovered == 0:
                    self.ins_model += covered * self.P - e.deficit
            elif name == "Collected":
                self.ins_model -= e.amount * self.P
        to_ins = fees * self.fee_share // WAD
        self.ins_model += to_ins
        self.treasury_model += fees - to_ins

    def _ch(self, fn: str, *args, sender: str):
        """Call the clearinghouse, or the liquidation engine for its functions;
        (ok, result or revert reason), events of every contract booked."""
        target = self.engine if fn in ENGINE_FUNCTIONS else self.ch
        ok, out = attempt(lambda: getattr(target, fn)(*args, sender=sender))
        if ok:
            self.logs = target.get_logs(strict=False)
            self._book(self.logs)
        return ok, out

    def _deposit(self, owner: str, sub: int, units: int) -> None:
        self.token.mint(owner, units, sender=self.p.owner)
        self.token.approve(self.ch.address, MAX_UINT, sender=owner)
        ok, out = self._ch("deposit", sub, units, sender=owner)
        assert ok, out
        a = self.ch.account_of(owner, sub)
        self.deposited += units
        self.net[a] = self.net.get(a, 0) + units * self.P

    def _in_band(self, price: int) -> bool | None:
        """Whether an order at `price` is within the price band of the index now
        (None when the index is invalid: the order reverts with the oracle's reason)."""
        valid, median, _fresh = self.oracle.index_status()
        if not valid:
            return None
        lo, hi = price_band_ticks(median, self.price_band, TICK)
        return lo <= price // TICK <= hi

    def _place(self, a: int, is_buy: bool, lots: int, price: int, kind: int, reduce_only: bool = False):
        """Place an order; the price band and the order-risk guarantee checked
        (PROTOCOL.md §5, §8): an order beyond the band never succeeds, one within it
        is never refused for the band, and every account at or above its maintenance
        margin before the order is at or above zero after it (the index unchanged)."""
        price = max(price // TICK * TICK, TICK)
        in_band = self._in_band(price)
        before = self._health() if in_band else {}
        ok, out = self._place_raw(a, is_buy, lots, price, kind, reduce_only)
        if ok:
            assert in_band, f"an order at {price / WAD:,.0f} beyond the price band succeeded"
            after = self._health()
            for acct, (equity, _im, mm) in before.items():
                if equity >= mm:
                    assert after[acct][0] >= 0, f"account {acct} at maintenance went below zero by a fill"
        elif BAND in out:
            assert in_band is False, out
            count("price band", "refused")
        return ok, out

    def _place_raw(self, a: int, is_buy: bool, lots: int, price: int, kind: int, reduce_only: bool = False):
        return self._ch(
            "place_order",
            self.owner_of[a],
            self.sub_of[a],
            self.m.address,
            is_buy,
            lots * LOT,
            price,
            kind,
            reduce_only,
            0,
            sender=self.owner_of[a],
        )

    def _price(self, bp: int) -> int:
        return self.index * (10_000 + bp) // 10_000 // TICK * TICK

    def _cash(self) -> dict[int, int]:
        return dict(self.ch._storage.cash.get())

    def _health(self) -> dict[int, tuple[int, int, int]]:
        """(equity, IM, MM) of every account (one view call)."""
        return {
            h.account: (h.equity, h.initial_margin, h.maintenance_margin)
            for h in self.ch.health(1, self.ch.account_count())
        }

    def _pick(self, pool: list[int], fallback: list[int], pick: int) -> int:
        src = pool or fallback
        return src[pick % len(src)]

    def _worst(self, equity: int, v) -> int:
        return lm.worst_case_deficit(equity, abs(v.size), v.mark, self.lp.bankrupt_band)

    def _check_bystanders(self, before: dict[int, int], parties: set[int]) -> None:
        """Invariant 9: nobody outside the operation's parties sees its cash move."""
        after = self._cash()
        parties = parties | {self.ins, self.treasury}
        for a in set(before) | set(after):
            if a not in parties:
                assert after.get(a, 0) == before.get(a, 0), f"account {a} not party to it, cash moved"

    def _fill_makers(self) -> set[int]:
        return {e.maker for e in events(self.logs, "Fill")}

    # ================================================================ rules: collateral

    @rule(who=st.integers(0, 7), dollars=st.integers(1, 200_000))
    def deposit(self, who, dollars):
        a = self.everyone[who]
        self._deposit(self.owner_of[a], self.sub_of[a], dollars * 10**self.p.decimals)

    @rule(
        who=st.integers(0, 7),
        how=st.sampled_from(["fraction", "all", "all+1", "one", "huge"]),
        fraction=st.integers(1, 120),
    )
    def withdraw(self, who, how, fraction):
        """Any amount; succeeds iff within min(cash - owed, equity - IM) (invariant 6)."""
        a = self.everyone[who]
        equity, im, _mm, _wd = self.ch.margin(a)
        v = self.m.position(a)
        cash = self.ch.cash(a) - v.funding_owed
        free = max(0, min(cash, equity - im))
        units = {
            "fraction": free * fraction // 100 // self.P,
            "all": free // self.P,
            "all+1": free // self.P + 1,
            "one": 1,
            "huge": 10**30,
        }[how]
        if units == 0:
            return
        wad = units * self.P
        vault = self.token.balanceOf(self.ch.address)
        expected = wad <= cash and equity - wad >= im and units <= vault
        ok, out = self._ch("withdraw", self.sub_of[a], units, sender=self.owner_of[a])
        assert ok == expected, f"withdraw {units} of {free // self.P} free: {out}"
        if ok:
            self.withdrawn += units
            self.net[a] -= wad
            equity, im, _mm, _wd = self.ch.margin(a)
            assert equity >= im, "a withdrawal left equity below IM"
            assert self.ch.cash(a) >= 0, "a withdrawal left negative cash"
            count("withdraw", "all free collateral" if how == "all" else "some")
        else:
            count("withdraw", "reverted as predicted")

    @rule(dollars=st.sampled_from([1, 100, 1_000, 10_000]))
    def deposit_insurance(self, dollars):
        units = dollars * 10**self.p.decimals
        self.token.mint(self.insurer, units, sender=self.p.owner)
        self.token.approve(self.fund.address, MAX_UINT, sender=self.insurer)
        ok, out = attempt(lambda: self.fund.deposit(units, self.insurer, sender=self.insurer))
        assert ok, out
        self._book(self.fund.get_logs(strict=False))
        self.deposited += units

    @rule(fraction=st.integers(1, 100))
    def request_insurance_withdrawal(self, fraction):
        """The insurer asks to withdraw part of its stake (a new request replaces the old)."""
        shares = self.fund.balanceOf(self.insurer) * fraction // 100
        ok, out = attempt(lambda: self.fund.request_withdraw(shares, sender=self.insurer))
        assert ok == (shares > 0), out
        if ok:
            self.fund_request = (shares, boa.env.evm.patch.timestamp)

    @rule(wait=st.sampled_from(["none", "cooldown", "past window"]), part=st.integers(1, 100))
    def redeem_insurance(self, wait, part):
        """Redeem out of the request: only between cooldown and the end of the
        window, and while every listed index is valid; the shares kept bearing
        losses meanwhile (they are valued now)."""
        if not self.fund_request:
            return
        shares, at = self.fund_request
        cooldown, window = self.fund.cooldown(), self.fund.withdraw_window()
        now = boa.env.evm.patch.timestamp
        target = {"none": now, "cooldown": at + cooldown, "past window": at + cooldown + window + 1}[wait]
        if target > now:
            boa.env.time_travel(seconds=target - now)
            self._push()
            self._push_other_markets()
        now = boa.env.evm.patch.timestamp
        waits = not all(md.oracle.index_status()[0] for md in self.p.d.markets.values())
        amount = max(shares * part // 100, 1)
        preview = self.fund.previewRedeem(amount)
        assets0, balance0 = self.fund.totalAssets(), self.token.balanceOf(self.insurer)
        ok, out = attempt(lambda: self.fund.redeem(amount, self.insurer, self.insurer, sender=self.insurer))
        if now < at + cooldown:
            assert not ok and "cooldown not over" in out, out
            count("insurance redeem", "cooldown not over: reverted")
        elif now > at + cooldown + window:
            assert not ok and "window expired" in out, out
            self.fund_request = None
            count("insurance redeem", "window expired: reverted")
        elif preview == 0:
            assert not ok and "zero assets" in out, out
        elif waits:
            assert not ok and "index invalid, withdrawals wait" in out, out
            count("insurance redeem", "an index invalid: waited")
        else:
            assert ok, out
            self._book(self.fund.get_logs(strict=False))
            assert out == preview and self.token.balanceOf(self.insurer) - balance0 == out
            assert self.fund.totalAssets() == assets0 - out
            self.withdrawn += out
            left = shares - amount
            self.fund_request = (left, at) if left else None
            count("insurance redeem", "paid")

    # ================================================================ rules: trading

    @rule(
        i=st.integers(0, 1),
        bp=st.integers(1, 100),
        step=st.integers(0, 50),
        lots=st.integers(50, 3000),
        levels=st.integers(1, 3),
        sides=st.sampled_from(["both", "both", "bids", "asks"]),
    )
    def quote(self, i, bp, step, lots, levels, sides):
        """A maker replaces its quotes around the index (one side, or both)."""
        a = self.makers[i]
        for oid in MarketState.read(self.m).orders_of(a):
            assert self._ch(
                "cancel_order", self.owner_of[a], 0, self.m.address, oid, sender=self.owner_of[a]
            )[0]
        for k in range(levels):
            off = bp + k * step
            if sides != "asks":
                self._place(a, True, lots, self._price(-off), GTC)
            if sides != "bids":
                self._place(a, False, lots, self._price(off) + TICK, GTC)

    @rule(who=st.integers(0, 4), buy=st.booleans(), leverage=st.integers(1, 20), slippage=st.integers(1, 500))
    def open_position(self, who, buy, leverage, slippage):
        """A market order (IOC) for leverage x equity of notional."""
        self._open(self.traders[who], buy, leverage * 100, slippage)

    def _open(self, a, buy, leverage_pct, slippage):
        equity = self._health()[a][0]
        lots = min(max(equity, 0) * leverage_pct * WAD // 100 // self.index // LOT, 20_000)
        if lots == 0:
            return
        price = self._price(slippage if buy else -slippage)
        ok, out = self._place(a, buy, lots, price, IOC)
        if not ok:
            assert any(r in out for r in ("below initial margin", "open interest cap", BELOW_ZERO, BAND)), out
        count("open position", "ok" if ok else out)

    @rule(who=st.integers(0, 4), buy=st.booleans(), bp=st.integers(-300, 300), lots=st.integers(1, 500))
    def limit_order(self, who, buy, bp, lots):
        a = self.traders[who]
        ok, out = self._place(a, buy, lots, self._price(bp), GTC)
        if not ok:
            assert any(
                r in out for r in ("below initial margin", "too many open orders", BELOW_ZERO, BAND)
            ), out

    @rule(who=st.integers(0, 4), part=st.integers(1, 100), slippage=st.integers(1, 2000))
    def reduce_position(self, who, part, slippage):
        """The owner closes part of its position reduce-only into the book."""
        a = self.traders[who]
        size = MarketState.read(self.m).size(a)
        lots = abs(size) * part // 100 // LOT
        if lots == 0:
            return
        price = self._price(-slippage if size > 0 else slippage)
        equity = self._health()[a][0]
        ok, out = self._place(a, size < 0, lots, price, IOC, reduce_only=True)
        if ok:
            assert self._health()[a][0] >= 0, "a voluntary close left the account below zero"
        else:
            # invariant 8: no close beyond the bankruptcy price, none below zero
            assert BELOW_ZERO in out or BAND in out, out
            if BAND in out:
                return
            count("reduce position", "below zero: reverted" if equity < 0 else "beyond bankruptcy: reverted")

    @rule(
        who=st.integers(0, 4),
        buy=st.booleans(),
        beyond=st.integers(1, 3000),
        kind=st.sampled_from([GTC, IOC]),
    )
    def off_market_order(self, who, buy, beyond, kind):
        """An order priced beyond the price band (a bid above it, an ask below it, or the
        far side): refused with its reason, nothing changes."""
        band_bp = self.price_band * 10_000 // WAD
        bp = band_bp + beyond
        price = self._price(bp if buy == (beyond % 2 == 1) else -bp)
        state = MarketState.read(self.m)
        ok, out = self._place(self.traders[who], buy, 1 + beyond % 50, price, kind)
        assert not ok, "an off-market order was accepted"
        assert BAND in out or "oracle:" in out, out
        assert MarketState.read(self.m) == state

    @rule(pick=st.integers(0, 10**6), bp=st.integers(-150, 150), reduce_only=st.booleans())
    def order_while_liquidatable(self, pick, bp, reduce_only):
        """An account below its maintenance margin tries to rest an order (reduce-only or
        not, within the band) before the keeper's call: refused (resting needs initial
        margin), the market unchanged, so its liquidation is never one order short."""
        health = self._health()
        state = MarketState.read(self.m)
        below = [a for a in self.trading if state.size(a) != 0 and health[a][0] < health[a][2]]
        if not below:
            return
        a = below[pick % len(below)]
        price = self._price(bp)
        if self._in_band(price // TICK * TICK) is not True:
            return
        # post-only: it can only rest (a crossing one is refused for crossing)
        ok, out = self._place(a, state.size(a) < 0, 1, price, 1, reduce_only=reduce_only)
        count("order while liquidatable", out if not ok else "rested")
        assert not ok, "an account below maintenance rested an order"
        assert MarketState.read(self.m).orders_of(a) == state.orders_of(a)

    @rule(who=st.integers(0, 4), buy=st.booleans())
    def thin_book_push(self, who, buy):
        """One trader walks a side of the book to the price band's edge and rests a lot
        just inside it on the other side (the mark push): the mark stays within
        index x (1 +- mark_band), and no account outside the trade that had twice its
        maintenance margin falls below it."""
        if self._in_band(self.index) is None:
            return
        a = self.traders[who]
        before = self._health()
        lo, hi = price_band_ticks(self.index, self.price_band, TICK)
        edge = (hi if buy else lo) * TICK
        ok, out = self._place(a, buy, 20_000, edge, IOC)
        parties = {a} | (self._fill_makers() if ok else set())
        count("thin book push", "pushed" if ok else out)
        self._place(a, not buy, 1, edge - TICK if buy else edge + TICK, 1)  # post-only, just inside
        mark = self.m.mark_price()
        half = self.index * self.mark_band // WAD
        assert self.index - half <= mark <= self.index + half
        after = self._health()
        for acct, (equity, _im, mm) in before.items():
            if acct not in parties and equity >= 2 * mm:
                assert after[acct][0] >= after[acct][2], (
                    f"account {acct} pushed below maintenance by one trader"
                )

    @rule(pick=st.integers(0, 10**6), direct=st.booleans())
    def cancel(self, pick, direct):
        state = MarketState.read(self.m)
        if not state.orders:
            return
        o = state.orders[pick % len(state.orders)]
        owner = self.owner_of[o.account]
        if direct:
            # the owner's path at the market (PerpMarket.cancel): the same effect, no cash moves
            ok, out = attempt(lambda: self.m.cancel(o.oid, sender=owner))
            count("cancel", "at the market")
        else:
            ok, out = self._ch(
                "cancel_order", owner, self.sub_of[o.account], self.m.address, o.oid, sender=owner
            )
            count("cancel", "through the clearinghouse")
        assert ok, out

    # ================================================================ rules: index, time, funding

    @rule(move=st.sampled_from(CRASHES), requote=st.booleans(), keepers=st.booleans())
    def gap_index(self, move, requote, keepers):
        """A crash or gap of 5-30% in one step (small moves: time_step); the
        makers' quotes stay where they were, or follow; keepers may act at once."""
        self.index = min(max(self.index * (10_000 + move) // 10_000, MIN_INDEX), MAX_INDEX)
        self._push()
        if requote:
            for i in range(2):
                self.quote(i, 5 + 20 * i, 10, 1000, 2, "both")
        count("index", "gap")
        if keepers:
            self.keeper_round(None, "all")

    @rule(
        seconds=st.sampled_from([1, 59, 600, 3600, 49 * 3600, 3 * 86_400]) | st.integers(1, 4 * 3600),
        move=st.none() | st.integers(-150, 150),
    )
    def time_step(self, seconds, move):
        boa.env.time_travel(seconds=seconds)
        if move is not None:
            self.index = min(max(self.index * (10_000 + move) // 10_000, MIN_INDEX), MAX_INDEX)
        self._push()

    @rule(late=st.sampled_from([0, 1, 47, 100]))
    def advance_and_settle(self, late):
        target = self.f.next_funding_time() + late * self.fparams.funding_interval
        boa.env.time_travel(seconds=max(target - boa.env.evm.patch.timestamp, 0))
        self._push()
        ok, out = attempt(self.f.settle)
        assert ok, out

    @rule()
    def sample(self):
        ok, out = attempt(self.f.sample)
        if not ok:
            assert "sample too early" in out or "settle first" in out, out

    @rule(who=st.integers(0, 7))
    def settle_funding_twice(self, who):
        """Settling an account's funding twice: the second changes nothing (§14.4)."""
        a = self.everyone[who]
        owed = self.m.position(a).funding_owed
        cash = self.ch.cash(a)
        ok, out = self._ch("settle_funding", self.owner_of[a], self.sub_of[a], sender=self.insurer)
        assert ok, out
        assert self.ch.cash(a) == cash - owed
        state = (self._cash(), self.m._storage._funding_dust.get(), self.m.funding_snapshot(a))
        ok, out = self._ch("settle_funding", self.owner_of[a], self.sub_of[a], sender=self.insurer)
        assert ok, out
        assert (self._cash(), self.m._storage._funding_dust.get(), self.m.funding_snapshot(a)) == state

    # ================================================================ rules: liquidation

    @rule(
        pick=st.integers(0, 10**6),
        prefer=st.integers(0, 3),
        caller=st.sampled_from(["keeper", "keeper", "owner", "other"]),
        max_lots=st.sampled_from([0, 1, 10, 100, 1000, None]),
        cancel=st.sampled_from(["all", "all", "none", "half", "stale"]),
    )
    def liquidate(self, pick, prefer, caller, max_lots, cancel):
        health = self._health()
        liquidatable = [a for a in self.trading if health[a][0] < health[a][2]]
        self._liquidate(
            self._pick(liquidatable if prefer else [], self.everyone, pick), caller, max_lots, cancel
        )

    @rule(
        probe=st.sampled_from([None, "misordered", "same side", "unprofitable", "one too many"]),
        listed=st.sampled_from(["all", "stale"]),
    )
    def keeper_round(self, probe, listed):
        """What the keepers do: liquidate every liquidatable account (whole,
        all orders cancelled, the list maybe holding an order gone since it
        was read), then ADL what is still bankrupt (after a deliberately
        wrong candidate list, which must revert)."""
        health = self._health()
        for a in self.trading:
            if health[a][0] < health[a][2]:
                self._liquidate(a, "keeper", None, listed)
        health = self._health()
        state = MarketState.read(self.m)
        for a in self.trading:
            if health[a][0] < 0 and state.size(a) != 0:
                if probe:
                    self._adl(a, probe, a)
                self._adl(a, "correct", 0)

    def _as_if_cancelled(self, a: int, ids: list[int], read):
        """What `read()` returns once the account's orders `ids` are
        cancelled, as liquidate and adl do first (its own quotes count in
        the mark, so they can move equity, MM and scores), in an anchor."""
        with boa.env.anchor():
            for oid in ids:
                if (
                    self.p.lens.order(self.m.address, oid)[0] != 0
                ):  # a listed order that no longer rests is skipped
                    self.ch.cancel_order(
                        self.owner_of[a], self.sub_of[a], self.m.address, oid, sender=self.owner_of[a]
                    )
            return read()

    def _liquidate(self, a, caller, max_lots, cancel):
        equity_view, _, mm_view = self._health()[a]
        state = MarketState.read(self.m)
        oids = state.orders_of(a)
        if cancel == "stale":
            # all of them, and first an id that no longer rests (filled or cancelled since a
            # keeper listed it) or was never used: liquidate skips it
            resting = {o.oid for o in state.orders}
            nid = self.p.lens.next_order_id(self.m.address)
            gone = next((i for i in range(nid - 1, 0, -1) if i not in resting), nid)
            count("liquidate", "lists an order that no longer rests" if gone < nid else "lists an unused id")
            oids = [gone, *oids]
        ids = {"all": oids, "stale": oids, "none": [], "half": oids[: len(oids) // 2]}[cancel]
        (equity, _, mm), v = self._as_if_cancelled(a, ids, lambda: (self._health()[a], self.m.position(a)))
        owner = self.owner_of[a]
        sender = {
            "keeper": self.owner_of[self.liquidator],
            "owner": owner,
            "other": self.owner_of[self.traders[(self.traders.index(a) + 1) % 5]]
            if a in self.traders
            else self.owner_of[self.traders[0]],
        }[caller]
        self_liq = sender == owner
        keeper = self.ch.account_of(sender, 0)
        max_size = MAX_UINT if max_lots is None else max_lots * LOT
        capacity = self.engine.insurance_capacity()
        bad0 = self.ch.bad_debt()
        cash0 = self._cash()
        owner_accounts = [x for x in self.owner_of if self.owner_of[x] == owner]

        ok, out = self._ch("liquidate", a, self.m.address, max_size, ids, sender=sender)

        if equity_view >= mm_view:
            # invariant 7: a healthy account (as the views see it) cannot be liquidated
            assert not ok and "not liquidatable" in out, f"healthy account liquidated: {out}"
            count("liquidate", "healthy: reverted")
            return
        if v.size == 0:
            assert not ok and "no position" in out, out
            count("liquidate", "flat with negative equity: reverted")
            return
        if v.open_orders > 0 or equity >= mm:
            # orders remain after the listed ones (v is read as if they were cancelled), or the
            # cancels made the account healthy: the call only cancels
            assert ok and out == 0, out
            count("liquidate", "cancels only")
            return
        if equity < 0 and self._worst(equity, v) > capacity:
            # invariant 9: beyond the insurance fund, only ADL
            assert not ok and "insurance fund cannot cover" in out, out
            count("liquidate", "bankrupt beyond the fund: reverted")
            return
        if max_size == 0:
            assert not ok and "zero size" in out, out
            return
        if not ok and equity >= 0 and "would leave the account below zero" in out:
            # invariant 8: the close moved the mark past the bankruptcy price
            count("liquidate", "would sink a solvent account: reverted")
            return
        assert ok, f"liquidation of a liquidatable account reverted: {out}"
        closed = out
        logs = self.logs
        (liq,) = events(logs, "Liquidation")
        assert liq.equity_before == equity and liq.mark == v.mark
        assert liq.limit_price == lm.liquidation_limit(v.mark, equity, v.size, self.lp.bankrupt_band, TICK)
        size_after = MarketState.read(self.m).size(a)
        assert size_after == liq.size_after
        assert size_after == 0 or (size_after > 0) == (v.size > 0), "liquidation flipped the position"
        assert closed == abs(v.size) - abs(size_after) == liq.closed_size
        # at most what the rule allows
        q = abs(v.size)
        if equity >= 0:
            # IM once its orders are cancelled: the position's alone (one market)
            im = ceil_div(ceil_div(abs(v.size) * v.mark, WAD) * self.imr, WAD)
            q = lm.restore_size(equity, im, v.mark, self.imr, self.lp.liquidation_fee, LOT, abs(v.size))
        q = lm.close_size(min(q, max_size), abs(v.size), v.mark, self.lp.small_position_notional)
        assert closed <= q
        # fills within the limit price
        for fill in events(logs, "Fill"):
            assert fill.taker == a
            if v.size > 0:
                assert fill.price >= liq.limit_price, "liquidation sold below its limit"
            else:
                assert fill.price <= liq.limit_price, "liquidation bought above its limit"
        # the fee: rate x closed notional, capped at the equity left; keeper share
        if closed > 0:
            fee = lm.liquidation_fee(
                closed * v.mark // WAD, self.lp.liquidation_fee, liq.equity_after + liq.fee
            )
            assert liq.fee == fee
        else:
            assert liq.fee == 0
        assert liq.liquidator_fee == lm.keeper_share(liq.fee, self.lp.liquidator_share, self_liq)
        makers = self._fill_makers()
        cash1 = self._cash()
        if keeper != a and keeper not in makers and not self_liq:
            assert cash1.get(keeper, 0) - cash0.get(keeper, 0) == liq.liquidator_fee
        if self_liq:
            # self-liquidation never pays: the owner's other subaccounts do not
            # move, the account only by its realized PnL - funding - fee
            for x in owner_accounts:
                if x != a and x not in makers:
                    assert cash1.get(x, 0) == cash0.get(x, 0), "self-liquidation paid the owner"
            pc = [e for e in position_changes(logs) if e.account == a]
            flow = sum(e.realized_pnl - e.funding_paid - e.fee_paid for e in pc) - liq.fee
            if not events(logs, "BadDebt"):
                assert cash1.get(a, 0) - cash0.get(a, 0) == flow
        # invariant 8: solvent stays solvent, bad debt never grows
        if equity >= 0:
            assert liq.equity_after >= 0, f"liquidation left a solvent account at equity {liq.equity_after}"
            assert not events(logs, "BadDebt")
        assert self.ch.bad_debt() == bad0, "a liquidation changed bad_debt"
        if size_after == 0 and equity < 0:
            # flat: any deficit went to the fund (a fill better than mark may leave cash > 0)
            assert cash1.get(a, 0) >= 0, f"a closed bankrupt account kept a deficit: {cash1.get(a, 0)}"
        self._check_bystanders(cash0, {a, keeper, *makers})
        count(
            "liquidate",
            f"{'solvent' if equity >= 0 else 'bankrupt'}, closed {'all' if size_after == 0 else 'part'}",
        )
        if self_liq:
            count("liquidate", "self-liquidation")

    @rule(
        pick=st.integers(0, 10**6),
        prefer=st.integers(0, 3),
        lots=st.sampled_from([0, 1, 10, 100, 1000, 100_000]),
        own=st.integers(0, 9),
    )
    def takeover(self, pick, prefer, lots, own):
        """The well-capitalized liquidator takes over (part of) a position."""
        health = self._health()
        pool = [a for a in self.trading if a != self.liquidator and health[a][0] < health[a][2]]
        a = self._pick(pool if prefer else [], self.everyone, pick)
        taker = self.liquidator
        if own == 0 and a in self.traders and self.sub_of[a] == 1:
            taker = self.traders[0]  # the same owner's subaccount 0
        equity, _im, mm = health[a]
        v = self.m.position(a)
        mark = self.m.mark_price()
        cash0 = self._cash()
        bad0 = self.ch.bad_debt()
        capacity = self.engine.insurance_capacity()
        ok, out = self._ch(
            "takeover", a, self.m.address, lots * LOT, self.sub_of[taker], sender=self.owner_of[taker]
        )
        if self.owner_of[taker] == self.owner_of[a]:
            assert not ok and "own account" in out, out
            return
        if equity >= mm:
            assert not ok and "not liquidatable" in out, out
            return
        expected = (
            "no position"
            if v.size == 0
            else "open orders"
            if v.open_orders
            else "zero size"
            if lots == 0
            else "insurance fund cannot cover"
            if equity < 0
            and lm.worst_case_deficit(equity, abs(v.size), v.mark, self.lp.takeover_discount) > capacity
            else None
        )
        if expected:
            assert not ok and expected in out, (expected, out)
            return
        if not ok:
            assert "liquidator below initial margin" in out, out
            count("takeover", "liquidator short of margin")
            return
        price = out
        q = lm.close_size(min(lots * LOT, abs(v.size)), abs(v.size), v.mark, self.lp.small_position_notional)
        if equity < 0:
            q = abs(v.size)  # a bankrupt account is taken over whole; the fund pays its deficit
            count("takeover", "bankrupt, the fund covers")
        assert price == lm.takeover_price(v.mark, equity, v.size, self.lp.takeover_discount)
        (t,) = events(self.logs, "Takeover")
        assert t.size == q and t.price == price
        size_after = MarketState.read(self.m).size(a)
        assert abs(size_after) == abs(v.size) - q and (size_after == 0 or (size_after > 0) == (v.size > 0))
        equity_after, im_after, _mm, _wd = self.ch.margin(a)
        te, tim, _tmm, _twd = self.ch.margin(taker)
        assert te >= tim, "takeover left the liquidator below IM"
        assert equity_after >= 0, f"takeover left a solvent account at equity {equity_after}"
        assert t.fee == lm.liquidation_fee(q * v.mark // WAD, self.lp.liquidation_fee, equity_after + t.fee)
        assert self.m.mark_price() == mark, "a takeover moved the mark"
        if equity >= 0:
            assert self.ch.bad_debt() == bad0 and not events(self.logs, "BadDebt")
        else:
            assert self.ch.cash(a) == 0, "a bankrupt account taken over kept a deficit"
            # the worst case was within the fund's capacity: it covered all but rounding
            assert self.ch.bad_debt() - bad0 <= 10**6, "the fund could cover, yet bad debt grew"
        self._check_bystanders(cash0, {a, taker})
        count("takeover", "whole" if size_after == 0 else "part")

    def _adl_candidates(self, a: int, size: int) -> tuple[list[tuple[int, int, int]], list[int], list[int]]:
        """(eligible (score, account, |size|) best first, same-side, unprofitable opposite)."""
        state = MarketState.read(self.m)
        eligible, same, unprofitable = [], [], []
        for c in self.trading:
            cs = state.size(c)
            if c == a or cs == 0:
                continue
            if (cs > 0) == (size > 0):
                same.append(c)
                continue
            score = self.engine.adl_score(c, self.m.address)
            if score > 0:
                eligible.append((score, c, abs(cs)))
            else:
                unprofitable.append(c)
        eligible.sort(key=lambda x: (-x[0], x[1]))
        return eligible, same, unprofitable

    @rule(
        pick=st.integers(0, 10**6),
        prefer=st.integers(0, 3),
        variant=st.sampled_from(
            [
                "correct",
                "correct",
                "correct",
                "misordered",
                "same side",
                "unprofitable",
                "one too many",
                "skip top",
            ]
        ),
    )
    def adl(self, pick, prefer, variant):
        health = self._health()
        state = MarketState.read(self.m)
        bankrupt = [a for a in self.trading if health[a][0] < 0 and state.size(a) != 0]
        self._adl(self._pick(bankrupt if prefer else [], self.everyone, pick), variant, pick)

    def _adl(self, a, variant, pick):
        oids = MarketState.read(self.m).orders_of(a)

        def read():
            v = self.m.position(a)
            cands = self._adl_candidates(a, v.size) if v.size else ([], [], [])
            return self._health(), v, cands

        equity_view = self._health()[a][0]
        health, v, (eligible, same, unprofitable) = self._as_if_cancelled(a, oids, read)
        equity = health[a][0]
        capacity = self.engine.insurance_capacity()
        prefix, covered = [], 0
        for score, c, cs in eligible:
            if covered >= abs(v.size):
                break
            prefix.append((score, c, cs))
            covered += cs
        cands = [c for _, c, _ in prefix]
        valid = True
        if variant == "misordered":
            distinct = [i for i in range(1, len(prefix)) if prefix[i][0] < prefix[0][0]]
            if not distinct:
                return
            j = distinct[0]
            cands[0], cands[j] = cands[j], cands[0]
            valid = False
        elif variant == "same side":
            if not same:
                return
            cands.insert(pick % (len(cands) + 1), same[pick % len(same)])
            valid = False
        elif variant == "unprofitable":
            if not unprofitable:
                return
            cands.insert(pick % (len(cands) + 1), unprofitable[pick % len(unprofitable)])
            valid = False
        elif variant == "one too many":
            if len(prefix) == len(eligible):
                return
            cands.append(eligible[len(prefix)][1])
            valid = False
        elif variant == "skip top":
            if len(eligible) < 2:
                return
            prefix, covered = [], 0
            for score, c, cs in eligible[1:]:
                if covered >= abs(v.size):
                    break
                prefix.append((score, c, cs))
                covered += cs
            cands = [c for _, c, _ in prefix]
            # still a valid call: the contract checks the order of what it is
            # given; skipping is for the off-chain auditor to catch (§11)
        cash0 = self._cash()
        bad0 = self.ch.bad_debt()
        assets0 = self.fund.total_assets_stored()
        before, scores = self._as_if_cancelled(
            a,
            oids,
            lambda: (
                {c: self.m.position(c) for c in cands},
                {c: self.engine.adl_score(c, self.m.address) for c in cands},
            ),
        )

        ok, out = self._ch("adl", a, self.m.address, cands, oids, sender=self.owner_of[self.liquidator])

        if not cands:
            assert not ok and "no candidates" in out, out
            return
        if equity_view >= 0 or equity >= 0:
            assert not ok and "not bankrupt" in out, out
            count("adl", "solvent: reverted")
            return
        if v.size == 0:
            assert not ok, out
            return
        if self._worst(equity, v) <= capacity:
            # invariant 9: the insurance fund pays first
            assert not ok and "insurance fund can cover" in out, out
            count("adl", "fund can cover: reverted")
            return
        if not valid:
            assert not ok, f"adl with {variant} candidates succeeded"
            count("adl", f"{variant}: reverted")
            return
        assert ok, f"adl reverted: {out}"
        logs = self.logs
        price = lm.bankruptcy_price(v.mark, equity, v.size)
        dels = events(logs, "Deleveraged")
        assert [d.counterparty for d in dels] == cands
        prev = None
        remaining = abs(v.size)
        for d in dels:
            c = d.counterparty
            b = before[c]
            assert (b.size > 0) != (v.size > 0), "ADL against a same-side position"
            assert d.score == scores[c] > 0, "ADL score differs from the adl_score view"
            assert prev is None or d.score <= prev, "ADL out of score order"
            prev = d.score
            assert d.size == min(remaining, abs(b.size))
            # the bankruptcy price, capped at what the counterparty's equity absorbs
            assert d.price == lm.adl_price(price, v.mark, health[c][0], d.size, v.size > 0)
            remaining -= d.size
            after = MarketState.read(self.m).size(c)
            assert after == d.counterparty_size
            assert abs(after) == abs(b.size) - d.size and (after == 0 or (after > 0) == (b.size > 0))
            assert health[c][0] >= 0 and self._health()[c][0] >= 0, "ADL left a counterparty below zero"
        assert out == abs(v.size) - remaining
        size_after = MarketState.read(self.m).size(a)
        assert abs(size_after) == remaining
        # invariant 10: the deficit is absorbed, no bad debt, the fund untouched
        cash1 = self._cash()
        capped = any(d.price != price for d in dels)
        if capped:
            # a counterparty could not absorb its share: the rest went to the fund, then bad_debt
            count("adl", "a counterparty capped at its equity")
            if size_after == 0:
                assert cash1.get(a, 0) == 0 and events(logs, "BadDebt")
        elif price == 0:
            # a short whose deficit exceeds its notional: its bankruptcy price
            # would be below 0; the counterparties sell at 0 and the rest of
            # the deficit goes to the fund, then bad_debt (documented edge)
            count("adl", "bankruptcy price 0: deficit beyond the notional")
            if size_after == 0:
                assert cash1.get(a, 0) == 0
        else:
            if size_after == 0:
                assert cash1.get(a, 0) >= 0, "ADL left the bankrupt account with a deficit"
                assert not events(logs, "BadDebt")
            assert self.ch.bad_debt() == bad0
            assert self.fund.total_assets_stored() == assets0
        self._check_bystanders(cash0, {a, *cands})
        count("adl", f"{variant}: {len(cands)} counterparties, {'all' if size_after == 0 else 'part'}")

    @rule(lie=st.integers(-5_000, 5_000) | st.sampled_from([-100, -99, 99, 100, 101]))
    def one_reporter_lies(self, lie):
        """Invariant 16: one reporter late (past max_age), another lying by
        `lie` basis points: the index is invalid or within 2% of the honest
        one (the spread rule, PROTOCOL.md §4). Then every reporter is honest."""
        boa.env.time_travel(seconds=MAX_AGE + 1)
        t = boa.env.evm.patch.timestamp
        self.oracle.report(self.index, t, sender=self.reporters[0])
        self.oracle.report(self.index * (10_000 + lie) // 10_000, t, sender=self.reporters[2])
        valid, median, fresh = self.oracle.index_status()
        assert fresh == 2
        assert not valid or abs(median - self.index) * 50 <= self.index, (
            f"one reporter moved the index {lie} bp"
        )
        count("index", f"one reporter lies: {'valid' if valid else 'invalid'}")
        self._push()

    @rule(kind=st.sampled_from(["stale", "quorum", "pumped", "dumped"]), pick=st.integers(0, 10**6))
    def stale_index(self, kind, pick):
        """Invariant 11: past max_age without reports (or with one fresh
        source of a quorum of 2), or with two of three sources pushing the
        index x11 or /11 (beyond the guard), nothing price-dependent runs."""
        if kind in ("stale", "quorum"):
            boa.env.time_travel(seconds=MAX_AGE + 1)
        if kind == "quorum":
            self._push(self.reporters[:1])
        if kind in ("pumped", "dumped"):
            honest = self.index
            self.index = honest * 11 if kind == "pumped" else honest // 11
            self._push(self.reporters[:2], confirm=False)
            self.index = honest
            assert not self.oracle.index_status()[0], "the guard let a x11 move through"
        state = MarketState.read(self.m)
        exposed = [a for a in self.trading if state.size(a) != 0 and a != self.liquidator]
        if exposed:
            a = exposed[pick % len(exposed)]
            owner = self.owner_of[a]
            calls = [
                (
                    "liquidate",
                    (a, self.m.address, MAX_UINT, state.orders_of(a)),
                    self.owner_of[self.liquidator],
                ),
                ("takeover", (a, self.m.address, LOT, 0), self.owner_of[self.liquidator]),
                (
                    "adl",
                    (a, self.m.address, [self.liquidator], state.orders_of(a)),
                    self.owner_of[self.liquidator],
                ),
                ("withdraw", (self.sub_of[a], 1), owner),
            ]
            for fn, args, sender in calls:
                ok, out = self._ch(fn, *args, sender=sender)
                assert not ok and "oracle:" in out, f"{fn} on a {kind} index: {out}"
            ok, out = self._place(a, True, 1, self._price(-100), GTC)
            assert not ok and "oracle:" in out, out
            count("stale index", kind)
        for fn in (self.f.sample, self.f.settle):
            ok, out = attempt(fn)
            assert not ok, f"{fn} on a {kind} index"
        if state.orders:  # cancels still work
            o = state.orders[pick % len(state.orders)]
            owner = self.owner_of[o.account]
            ok, out = self._ch(
                "cancel_order", owner, self.sub_of[o.account], self.m.address, o.oid, sender=owner
            )
            assert ok, out
        self._deposit(self.owner_of[self.bystander], 0, 10**self.p.decimals)
        self._push()

    # ================================================================ closing everything

    def _close_all(self) -> None:
        """Cancel every order, then close every position pairwise (reduce-only
        on both sides) at the index."""
        self._push()
        for o in MarketState.read(self.m).orders:
            owner = self.owner_of[o.account]
            ok, out = self._ch(
                "cancel_order", owner, self.sub_of[o.account], self.m.address, o.oid, sender=owner
            )
            assert ok, out
        price = self.index // TICK * TICK
        # a close may not leave an account below zero: top up those that
        # would be (deposits, booked like any other)
        health = self._health()
        for a, (size, _on) in MarketState.read(self.m).positions.items():
            # the resting close reserves margin: IM of the position and of the order, and the
            # order's risk (k below 5% at these bands), fees and rounding
            need = abs(size) * self.index // WAD * (2 * self.imr + 10 * WAD // 100) // WAD - health[a][0]
            if need > 0:
                self._deposit(self.owner_of[a], self.sub_of[a], need // self.P + 1)
        while True:
            state = MarketState.read(self.m)
            longs = [a for a, (s, _) in state.positions.items() if s > 0]
            shorts = [a for a, (s, _) in state.positions.items() if s < 0]
            if not longs:
                assert not shorts
                break
            lo, sh = longs[0], shorts[0]
            lots = min(state.size(lo), -state.size(sh)) // LOT
            ok, out = self._place(lo, False, lots, price, GTC, reduce_only=True)
            assert ok, out
            ok, out = self._place(sh, True, lots, price, IOC, reduce_only=True)
            assert ok, out
        state = MarketState.read(self.m)
        assert state.positions == {} and state.open_interest == (0, 0)
        assert state.dust == 0, "funding dust left with every position closed"

    def teardown(self):
        if sys.exc_info()[1] is not None or not hasattr(self, "p"):
            return  # a step failed: report that, not this
        self._close_all()
        self.check_accounting()
        # everybody withdraws every whole token unit it has; the fund collects
        owners = {a: (self.owner_of[a], self.sub_of[a]) for a in self.everyone}
        owners[self.treasury] = (self.p.owner, 0)
        short = False
        pending = self.ch.cash(self.ins) // self.P
        ok, out = attempt(self.fund.collect)
        if ok:
            self._book(self.fund.get_logs(strict=False))
        else:
            short = True
            assert pending > self.token.balanceOf(self.ch.address), out
        for a, (owner, sub) in owners.items():
            units = self.ch.cash(a) // self.P
            if units <= 0:
                continue
            ok, out = self._ch("withdraw", sub, units, sender=owner)
            if ok:
                self.withdrawn += units
            else:
                short = True
                assert units > self.token.balanceOf(self.ch.address), out
        cash = self._cash()
        vault = self.token.balanceOf(self.ch.address)
        bad = self.ch.bad_debt()
        assert sum(cash.values()) == vault * self.P + bad
        # Σ free collateral withdrawn + what stays in the vault + the fund's assets = net deposits
        assert self.withdrawn + vault + self.fund.total_assets_stored() == self.deposited
        assert self.token.balanceOf(self.fund.address) == self.fund.total_assets_stored()
        negative = any(c < 0 for c in cash.values())
        if bad == 0 and not negative:
            assert not short, "a withdrawal failed with no bad debt"
            assert all(0 <= c < self.P for c in cash.values())
        count("teardown", "vault short" if short else "everyone withdrew")

    # ================================================================ invariants

    @invariant()
    def check_accounting(self):
        if not hasattr(self, "p"):
            return
        record("liquidation", "steps")
        state = MarketState.read(self.m)
        cash = self._cash()
        vault = self.token.balanceOf(self.ch.address) * self.P
        bad = self.ch._storage.bad_debt.get()
        u = state.unsettled_exact()
        on = sum(o for _, o in state.positions.values())

        # 1. conservation, exactly
        assert (sum(cash.values()) - on - vault - bad) * WAD == u - state.dust, "collateral not conserved"
        assert self.token.balanceOf(self.fund.address) == self.fund._storage.total_assets_stored.get()

        # 3. and 5. open interest, order and level aggregates, book
        state.check_aggregates()
        state.check_funding_epochs()
        active = self.ch._storage.active_markets.get()
        for a in {*state.positions, *(o.account for o in state.orders)}:
            assert active.get(a, 0) & 1, f"account {a} has exposure but no active market bit"

        # 4. funding zero-sum up to the booked residue; fee ledgers exact
        residue = cash.get(self.ins, 0) - self.ins_model
        assert residue >= 0, "insurance cash below its model"
        assert self.fpaid * WAD + u == residue * WAD + state.dust, "funding not zero-sum"
        assert cash.get(self.treasury, 0) == self.treasury_model

        # 9. the bystander only ever deposits and withdraws
        assert cash.get(self.bystander, 0) == self.net[self.bystander]

        # flat accounts below zero (a resting order in another market filled after a
        # liquidation, PROTOCOL.md §15): settle_bad_debt books each, and nothing else moves
        flat_negative = [
            a
            for a, c in cash.items()
            if c < 0 and a not in state.positions and not any(o.account == a for o in state.orders)
        ]
        for a in flat_negative:
            count("flat account below zero", "settle_bad_debt books it")
            with boa.env.anchor():
                bad0, owed = self.ch.bad_debt(), -cash[a]
                self.engine.settle_bad_debt(a, sender=self.insurer)
                assert self.ch.cash(a) == 0 and self.ch.bad_debt() - bad0 <= owed


def test_liquidation_stateful(_protocol_6, _protocol_18):
    LiquidationMachine.protocols = {6: _protocol_6, 18: _protocol_18}
    LiquidationMachine.key_trace = StorageKeyTrace()
    run_state_machine_as_test(LiquidationMachine)


# ==================================================================== contract bugs
# Minimal deterministic reproductions of what the machine found (each failed
# on the contracts of 07b1c1d); kept as regression tests of the fixes.


def _long_at_ten_x(p, who: str, maker: str) -> None:
    """`who` (1,000 deposited) buys 0.1 BTC at 100,000 from `maker`: 10x, at IM."""
    p.order(maker, "sell", "0.1", 100_000, GTC)
    p.order(who, "buy", "0.1", 100_000, IOC)


def test_regression__reduce_only_close_beyond_bankruptcy_price__reverts(protocol):
    # Was: a reduce-only order was never margin-checked, so a solvent account
    # could dump into a colluder's bid far below the index and end flat with
    # cash < 0 (the colluder holding its loss as profit). Now every order
    # must leave equity >= 0 (PROTOCOL.md §7, §9.3).
    p = protocol
    p.set_index(100_000)
    maker = p.actor("maker", 1_000_000)
    account = p.actor("account", 1_000)
    colluder = p.actor("colluder", 10_000)
    _long_at_ten_x(p, account, maker)
    p.set_index(91_000)  # the price band's low edge is 89,180, below the bankruptcy price
    p.order(colluder, "buy", "0.1", 89_180, GTC)
    assert p.margin(account)[0] > 0  # solvent: bankruptcy price 90,000

    ok, out = attempt(lambda: p.order(account, "sell", "0.1", 89_180, IOC, reduce_only=True))

    assert not ok and "order would leave the account below zero" in out, out
    assert p.position(account).size == to_wad("0.1") and p.ch.cash(p.account(account)) >= 0
    # a close within the bankruptcy price still passes
    p.order(maker, "buy", "0.1", 91_000, GTC)
    p.order(account, "sell", "0.1", 91_000, IOC, reduce_only=True)
    assert p.position(account).size == 0 and p.ch.cash(p.account(account)) > 0


def test_regression__bankrupt_account_cannot_close_itself__adl_absorbs_it(protocol):
    # Was: an account already below zero closed itself at market and was
    # left flat with cash < 0 that no entry point ever booked. Now its own
    # orders revert; liquidate (fund empty) says adl; adl closes it at the
    # bankruptcy price against the profitable short (PROTOCOL.md §9.6, §11).
    p = protocol
    p.set_index(100_000)
    maker = p.actor("maker", 1_000_000)
    account = p.actor("account", 1_000)
    keeper = p.actor("keeper", 1_000)
    _long_at_ten_x(p, account, maker)
    p.set_index(80_000)
    p.order(maker, "buy", "0.1", 79_990, GTC)
    assert p.margin(account)[0] < 0  # bankrupt
    a = p.account(account)

    ok, out = attempt(lambda: p.order(account, "sell", "0.1", 79_000, IOC, reduce_only=True))
    assert not ok and "order would leave the account below zero" in out, out
    ok, out = attempt(lambda: p.engine.liquidate(a, p.market().address, 2**255, [], sender=keeper))
    assert not ok and "insurance fund cannot cover, adl" in out, out
    p.engine.adl(a, p.market().address, [p.account(maker)], [], sender=keeper)

    assert p.position(account).size == 0 and p.ch.cash(a) == 0 and p.ch.bad_debt() == 0


def test_regression__adl_never_pushes_the_counterparty_below_zero(protocol):
    # Was: adl transferred at the bankrupt account's bankruptcy price whatever
    # the deficit; a counterparty whose equity was smaller than its share
    # ended below zero. Now each counterparty pays at most its equity (less
    # ADL_ROUNDING wei); what it cannot absorb goes to the fund, then
    # bad_debt (PROTOCOL.md §11, §14.10).
    p = protocol
    p.set_index(100_000)
    m = p.market()
    bankrupt = p.actor("bankrupt", 10_000)
    whale = p.actor("whale", 1_000_000)
    late_short = p.actor("late_short", 7_200)
    maker = p.actor("maker", 1_000_000)
    p.order(whale, "sell", "1", 100_000, GTC)
    p.order(bankrupt, "buy", "1", 100_000, IOC)
    p.set_index(70_000)  # gap: bankrupt's equity -20,000 at mark 70,000
    p.order(maker, "buy", "1", 71_000, GTC)
    p.order(late_short, "sell", "1", 71_000, IOC)  # profitable short, the top ADL score
    a, c = p.account(bankrupt), p.account(late_short)
    assert p.engine.adl_score(c, m.address) > p.engine.adl_score(p.account(whale), m.address) > 0
    assert p.engine.insurance_capacity() == 0
    equity_c = p.margin(late_short)[0]
    mark = m.mark_price()
    bk = lm.bankruptcy_price(mark, p.margin(bankrupt)[0], to_wad(1))

    p.engine.adl(a, m.address, [c], [], sender=whale)
    logs = p.engine.get_logs(strict=False)

    (d,) = events(logs, "Deleveraged")
    assert d.price == lm.adl_price(bk, mark, equity_c, to_wad(1), True) < bk
    assert 0 <= p.margin(late_short)[0] <= lm.ADL_ROUNDING
    assert p.position(bankrupt).size == 0 and p.ch.cash(a) == 0
    (bd,) = events(logs, "BadDebt")
    assert bd.uncovered == p.ch.bad_debt() > 0  # the fund is empty


def test_regression__partial_liquidation_that_would_sink_a_solvent_account__reverts(protocol):
    # Was: liquidate bounded each fill by the bankruptcy price at the mark
    # read before the close; the close took every bid, the mark fell to the
    # index and the rest of a solvent account's position, revalued, left it
    # at equity -719.44. Now such a close reverts (its state unchanged); the
    # backstop takeover (mark fixed, bounded by the bankruptcy price) closes
    # it (PROTOCOL.md §9.3, §9.5, §14.8).
    p = protocol
    m = p.market()
    p.set_index(109_440)
    maker = p.actor("maker", 10_000_000)
    other = p.actor("other", 10_000_000)
    account = p.actor("account", 11_000)
    keeper = p.actor("keeper", 1_000)
    backstop = p.actor("backstop", 1_000_000)
    p.order(maker, "sell", "1", 109_440, GTC)
    p.order(account, "buy", "1", 109_440, IOC)  # 1 BTC long at IM
    p.set_index(97_000)  # the price band: 95,060 .. 98,940
    p.order(other, "sell", "0.001", 98_900, GTC)
    p.order(maker, "buy", "0.001", 98_900, IOC)  # last trade 98,900
    p.order(maker, "buy", "0.001", 98_600, GTC)
    p.order(maker, "buy", "0.499", 98_440, GTC)  # at the bankruptcy price
    equity, _im, mm = p.margin(account)[:3]
    # median(98,600, index, 98,900) clamped to index + mark_band (1.625%)
    assert m.mark_price() == to_wad("98576.25")
    assert 0 < equity < mm  # solvent, liquidatable: bankruptcy price 98,440

    ok, out = attempt(
        lambda: p.engine.liquidate(p.account(account), m.address, to_wad("0.5"), [], sender=keeper)
    )

    assert not ok and "would leave the account below zero" in out, out
    assert p.margin(account)[0] == equity
    p.engine.takeover(p.account(account), m.address, to_wad(1), 0, sender=backstop)
    assert p.position(account).size == 0 and p.margin(account)[0] >= 0


def test_regression__bankrupt_position_the_fund_can_cover__taken_over_whole(protocol):
    # Was (liveness): a bankrupt account whose worst case the fund could
    # cover could only be closed through the book; with no bid in the band
    # nothing could close it. Now the backstop takes it over whole at
    # mark -+ takeover_discount and the fund pays the deficit (§9.5, §11).
    p = protocol
    m = p.market()
    p.set_index(100_000)
    maker = p.actor("maker", 1_000_000)
    account = p.actor("account", 1_000)
    keeper = p.actor("keeper", 1_000_000)
    p.fund_insurance(1_000_000)
    _long_at_ten_x(p, account, maker)
    p.set_index(85_000)  # bankrupt (equity -500); the book is empty
    a = p.account(account)
    assert p.margin(account)[0] < 0 and p.engine.insurance_capacity() > to_wad(1_000)
    assets = p.insurance.totalAssets()

    assert p.engine.liquidate(a, m.address, 2**200, [], sender=keeper) == 0  # no bid in the band
    price = p.engine.takeover(a, m.address, to_wad("0.1"), 0, sender=keeper)

    assert price == to_wad(85_000) * 99 // 100  # mark - 1% (the test markets' discount)
    assert p.position(account).size == 0 and p.ch.cash(a) == 0 and p.ch.bad_debt() == 0
    assert p.position(keeper).size == to_wad("0.1")
    deficit = 1_000 + (price - to_wad(100_000)) // 10 // 10**18  # cash after the transfer, dollars
    assert p.insurance.totalAssets() == assets + p.units(deficit)  # the fund paid -deficit


def test_regression__liquidate_checks_health_before_cancelling(protocol):
    # Was: liquidate cancelled the listed orders before its health check and
    # the account's own bid counted in its mark, so an account healthy by
    # margin()/health() was liquidated. Now the check comes first, as the
    # views see it (PROTOCOL.md §9: check, then cancel).
    p = protocol
    m = p.market()
    p.set_index(100_000)
    p.set_index(4000, "ETH-PERP")
    maker = p.actor("maker", 1_000_000)
    account = p.actor("account", 2_000)
    keeper = p.actor("keeper", 1_000)
    p.order(account, "buy", "0.1", 100_000, GTC)
    p.order(maker, "sell", "0.1", 100_000, IOC)  # account long 0.1 BTC, last trade 100,000
    p.order(maker, "sell", "0.5", 4000, GTC, symbol="ETH-PERP")
    p.order(account, "buy", "0.5", 4000, IOC, symbol="ETH-PERP")
    own_bid = p.order(account, "buy", "0.001", 101_000, GTC)
    p.order(maker, "sell", "0.1", 102_000, GTC)
    p.order(maker, "buy", "0.1", 98_000, GTC)
    p.set_index(1300, "ETH-PERP")  # cross-margin loss on ETH
    a = p.account(account)
    (health,) = p.ch.health(a, 1)
    # equity 750 >= MM 698.75 + the own bid's order risk 3.76
    assert m.mark_price() == to_wad(101_000) and not health.liquidatable

    ok, out = attempt(lambda: p.engine.liquidate(a, m.address, 2**200, [own_bid], sender=keeper))

    assert not ok and "not liquidatable" in out, out
    assert p.lens.order(m.address, own_bid)[0] != 0  # its order still rests
