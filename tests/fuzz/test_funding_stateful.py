"""Stateful fuzzing of funding (PROTOCOL.md §9, §14.4) on titanoboa.

A hypothesis ``RuleBasedStateMachine`` trades between four traders (opening,
reducing, flipping), lets a quoter make the book and traders hit it, moves
time (re-pushing the index, possibly moved; long gaps force catch-up),
takes premium samples, settles the market (each sample, predicted rate and
settlement compared with ``keeper.funding_model.Funding`` to the wei),
replays keeper outages (several intervals without samples, then the book
shaped and one settlement: it moves the accumulator by the interest part
only, and by at most one interval's cap), settles accounts explicitly and
through small withdrawals. After every step it checks:

* funding is zero-sum up to the booked residue. Derived from the contracts:
  each account settlement pays ``paid = ceil(exact / WAD)`` where
  ``exact = size x (cum - snapshot)`` (1e-18 wei) and adds
  ``paid x WAD - exact`` to the market's dust, whose whole wei are swept to
  the insurance account; since Σ size = 0 at every cumulative step,
  Σ over history of exact = 0, hence exactly::

      Σ paid x WAD + Σ unsettled exact == residue x WAD + dust

  and, as realized PnL sums to the open notional (Σ realized = Σ
  open_notional) and trading fees are zero here::

      (Σ cash - Σ open_notional - vault) x WAD == Σ unsettled exact - dust

  so ``Σ cash - Σ open_notional - Σ funding_owed <= vault``, within one wei
  per account. (``Σ cash == vault`` with all funding settled holds only
  while Σ open_notional = 0, e.g. when every position was opened at one
  price or everything is closed.)
* every account settlement moves cash by exactly the model's amount and the
  dust and residue follow the model (``keeper.funding_model.settle_account``);
  with every open position settled the dust is 0 and Σ paid = Σ received +
  residue exactly;
* settling an account twice changes nothing;
* settling over [t0, t2] equals [t0, t1] then [t1, t2]: two identical
  shadow pairs (a long and a short opened together at one price), one
  settled at random times and one never: the 1e-18-exact amounts add up, so
  the rounded cash of the split one is the same up to one wei per extra
  settlement, always against the account (the model predicts it exactly).

The protocol deployment comes from the session fixture; titanoboa's pytest
plugin runs every hypothesis example inside its own ``boa.env.anchor()``
(the machine asserts it starts fresh). The quick/deep profiles of
tests/conftest.py set the number of examples and steps.
"""

from __future__ import annotations

import boa
from hypothesis import event as count
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from keeper import funding_model as fm
from tests.fuzz.liquidation_helpers import MarketState, unpack_position
from tests.fuzz.stats import record
from tests.utils.protocol import GTC, IOC, StorageKeyTrace, position_changes

WAD = fm.WAD
TICK = WAD
LOT = 10**15
INDEX0 = 100_000 * WAD
TRADERS = ("market_maker", "arbitrageur", "speculator", "hedger")
SHADOW_LOTS = 37
PARAMS = [
    fm.FundingParams(),
    fm.FundingParams(
        funding_interval=600, funding_period=3600, sample_interval=30, premium_mode=fm.IMPACT_MID
    ),
    fm.FundingParams(
        funding_interval=1800,
        funding_period=86_400,
        interest_rate=-(10**14),
        clamp=0,
        cap=fm.MAX_CAP,
        impact_notional=300 * WAD,
        sample_interval=1,
    ),
]


class FundingMachine(RuleBasedStateMachine):
    protocol = None  # set by the test function
    key_trace: StorageKeyTrace  # set by the test function

    # ------------------------------------------------------------ setup

    @initialize(params=st.sampled_from(PARAMS))
    def setup(self, params):
        type(self).key_trace.reset()
        p = self.p = type(self).protocol
        record("funding", "examples")
        assert p.ch.account_count() == 2, "state leaked from another example"
        self.m = p.market()
        self.f = p.d.markets["BTC-PERP"].funding
        self.f.set_params(params.as_tuple(), sender=p.owner)
        # the widest price band (20%): this machine's quotes and trades reach a few % from a
        # moving index; price protection has its own rules in the liquidation machine
        self.m.set_params(tuple(p.params()._replace(price_band=WAD // 5)), sender=p.owner)
        self.params = params
        self.model = fm.Funding(
            params, self.f.next_funding_time(), last_sample_time=self.f.last_sample_time()
        )
        self.index = INDEX0
        self.ins = p.ch.insurance_account()
        self.treasury = p.ch.treasury_account()
        self.precision = p.ch.PRECISION()
        self.traders = [p.actor(n, deposit=100_000_000) for n in TRADERS]
        self.quoter = p.actor("quoter", deposit=100_000_000)
        self.quotes: list[int] = []
        # shadow pairs: (long, short) x 2, identical; pair 1 settled at random times, pair 2 never
        self.shadow = [
            (p.actor(f"shadow_long_{k}", deposit=1_000_000), p.actor(f"shadow_short_{k}", deposit=1_000_000))
            for k in (1, 2)
        ]
        for long_, short in self.shadow:
            self._trade(long_, short, SHADOW_LOTS, INDEX0)
        self.shadow_cash0 = {w: p.ch.cash(p.account(w)) for pair in self.shadow for w in pair}
        self.shadow_cums = [0]  # cumulative values at which pair 1 was settled
        # ghost ledger of funding (model side)
        self.paid = 0  # Σ settled funding, signed (+ paid)
        self.residue = 0
        self.dust = 0
        self.ins_cash0 = p.ch.cash(self.ins)
        self.accounts = list(range(1, p.ch.account_count() + 1))
        self.touched: set[int] = set(self.accounts) - {self.ins, self.treasury}

    # ------------------------------------------------------------ helpers

    def _push(self) -> None:
        """The reporters report the index now; a move the guard holds back
        (PROTOCOL.md §4) is confirmed by the owner (the machine's moves stand
        for genuine ones)."""
        t = boa.env.evm.patch.timestamp
        md = self.p.d.markets["BTC-PERP"]
        for r in md.reporters:
            md.oracle.report(self.index, t, sender=r)
        if not md.oracle.index_status()[0]:
            md.oracle.reset_reference(sender=self.p.owner)

    def _settled(self, action, owners) -> dict[int, int]:
        """Run `action`, which may settle the funding of `owners` (and no
        one else); book what the model says each paid when its snapshot
        moved, then check the market's dust and the insurance cash."""
        accounts = [self.p.account(w) for w in owners]
        self.touched.update(accounts)
        before = {a: (self.m.position(a).size, self.m.funding_snapshot(a)) for a in accounts}
        cum = self.m.cumulative_funding()
        action()
        assert self.m.cumulative_funding() == cum
        paid = {}
        for a, (size, snap) in before.items():
            if self.m.funding_snapshot(a) != snap:
                assert self.m.funding_snapshot(a) == cum
                got, self.dust, res = fm.settle_account(size, cum, snap, self.dust)
                paid[a] = got
                self.paid += got
                self.residue += res
        assert self.m._storage._funding_dust.get() == self.dust
        assert self.p.ch.cash(self.ins) == self.ins_cash0 + self.residue
        return paid

    def _place(self, who: str, is_buy: bool, lots: int, price: int, kind: int) -> int:
        with boa.env.prank(who):
            return self.p.ch.place_order(who, 0, self.m.address, is_buy, lots * LOT, price, kind, False, 0)

    def _trade(self, buyer: str, seller: str, lots: int, price: int) -> None:
        oid = self._place(seller, False, lots, price, GTC)
        self._place(buyer, True, lots, price, IOC)
        assert self.p.lens.order(self.m.address, oid)[0] == 0

    def _cancel_quotes(self) -> None:
        for oid in self.quotes:
            if self.p.lens.order(self.m.address, oid)[0] != 0:
                self.p.cancel(self.quoter, oid)
        self.quotes = []

    def _price(self, bp: int) -> int:
        return self.index * (10_000 + bp) // 10_000 // TICK * TICK

    # ------------------------------------------------------------ rules: trading

    @rule(
        parties=st.permutations(range(len(TRADERS))),
        lots=st.integers(1, 300),
        bp=st.integers(-100, 100),
    )
    def trade(self, parties, lots, bp):
        """Two traders trade on a book without quotes: open, add, reduce or flip."""
        buyer, seller = self.traders[parties[0]], self.traders[parties[1]]
        self._cancel_quotes()
        logs = []

        def act():
            self._trade(buyer, seller, lots, self._price(bp))
            logs.extend(position_changes(self.p.ch.get_logs()))

        paid = self._settled(act, [buyer, seller])
        assert {e.account for e in logs} == {self.p.account(buyer), self.p.account(seller)}
        for e in logs:
            assert e.funding_paid == paid.get(e.account, 0)
            if e.funding_paid != 0:
                count("trade", "settles funding")
            if e.realized_pnl != 0:
                count("trade", "reduces or flips")

    @rule(bid_bp=st.integers(-300, 300), spread=st.integers(1, 200), lots=st.integers(1, 60))
    def quote(self, bid_bp, spread, lots):
        """The quoter makes a two-sided book (thin or deep, anywhere near the index)."""
        self._quote(bid_bp, spread, lots)

    def _quote(self, bid_bp: int, spread: int, lots: int) -> None:
        self._cancel_quotes()
        bid = self._price(bid_bp)
        self.quotes = [
            self._place(self.quoter, True, lots, bid, GTC),
            self._place(self.quoter, False, lots, bid + spread * TICK, GTC),
        ]

    @precondition(lambda self: any(self.p.lens.order(self.m.address, o)[0] != 0 for o in self.quotes))
    @rule(who=st.integers(0, len(TRADERS) - 1), buy=st.booleans(), lots=st.integers(1, 60))
    def hit_quote(self, who, buy, lots):
        """A trader takes the quoter's book (IOC): the quoter's position moves too."""
        best = self.m.best_ask() if buy else self.m.best_bid()
        if best == 0:
            return
        self._settled(
            lambda: self._place(self.traders[who], buy, lots, best, IOC), [self.traders[who], self.quoter]
        )

    # ------------------------------------------------------------ rules: time and funding

    @rule(
        seconds=st.sampled_from([1, 59, 60, 600, 1800, 3600, 7200, 49 * 3600, 3 * 86_400])
        | st.integers(1, 4 * 3600),
        move_bp=st.none() | st.integers(-150, 150),
    )
    def time_step(self, seconds, move_bp):
        boa.env.time_travel(seconds=seconds)
        self._move(move_bp)

    def _move(self, move_bp) -> None:
        if move_bp is not None:
            self.index = self.index * (10_000 + move_bp) // 10_000
        self._push()

    @rule(
        late=st.sampled_from([0, 1, -1, 47, 48, 100]) | st.floats(0, 3),
        move_bp=st.none() | st.integers(-150, 150),
    )
    def advance_and_settle(self, late, move_bp):
        """Time runs to the next funding time (plus `late` intervals, -1: just
        before it), then a keeper settles once (a long gap leaves catch-up)."""
        target = self.f.next_funding_time() + int(late * self.params.funding_interval)
        now = boa.env.evm.patch.timestamp
        boa.env.time_travel(seconds=max(target - now, 0))
        self._move(move_bp)
        self.settle()

    @rule()
    def sample(self):
        now = boa.env.evm.patch.timestamp
        bid, ask = self.f.impact_prices(self.params.impact_notional)
        try:
            expected = self.model.sample(now, bid, ask, self.index)
        except ValueError as refused:  # the model refuses with the contract's reason
            with boa.reverts(str(refused)):
                self.f.sample()
            return
        assert self.f.sample() == expected == fm.premium(self.params.premium_mode, bid, ask, self.index)
        assert (self.f.sample_count(), self.f.premium_sum()) == (
            len(self.model.samples),
            sum(self.model.samples),
        )

    @rule()
    def settle(self):
        now = boa.env.evm.patch.timestamp
        nft = self.f.next_funding_time()
        assert nft == self.model.next_funding_time
        if now < nft:
            with boa.reverts("funding: too early"):
                self.f.settle()
            return
        predicted = self.f.predicted_rate()
        assert predicted == self.model.predicted_rate()
        cum = self.m.cumulative_funding()
        assert cum == self.model.cumulative
        rate = self.f.settle()
        (settled,) = [e for e in self.f.get_logs() if type(e).__name__ == "FundingSettled"]
        assert (rate, settled.intervals) == self.model.settle(now, self.index)
        due = settled.intervals
        assert rate == predicted and due == fm.due_intervals(now, nft, self.params.funding_interval)
        assert self.m.cumulative_funding() == self.model.cumulative == settled.cumulative_funding
        assert (settled.premium, self.f.last_premium()) == (self.model.last_premium,) * 2
        # one call moves the accumulator by at most one interval's cap, however many it settles
        bound = self.params.cap * self.index // WAD
        assert abs(self.model.cumulative - cum) <= bound
        assert self.f.next_funding_time() == nft + due * self.params.funding_interval
        count(
            "settle",
            "catch-up of 48" if due == fm.MAX_CATCHUP else "1 interval" if due == 1 else "2-47 intervals",
        )
        if due > 1 and abs(self.model.cumulative - cum) == bound:
            count("settle", "catch-up clamped to one cap")

    @rule(
        intervals=st.sampled_from([2, 10, 48, 60]) | st.integers(2, 60),
        bid_bp=st.integers(-300, 300),
        move_bp=st.none() | st.integers(-150, 150),
        sample_first=st.booleans(),
    )
    def keeper_outage(self, intervals, bid_bp, move_bp, sample_first):
        """The keepers stop: nobody samples or settles for `intervals`
        intervals after the running one (`sample_first`: the settler first
        samples the running interval with its book, if the contract lets it);
        then the settler shapes the book (a deep quote up to 3% off the
        index) and settles once. The move is at most one interval's cap;
        without samples in the running interval it is the interest part of
        every due interval (the book is not read)."""
        if sample_first:
            self._quote(bid_bp, 1, 60)
            self.sample()
        now = boa.env.evm.patch.timestamp
        target = self.model.next_funding_time + (intervals - 1) * self.params.funding_interval
        boa.env.time_travel(seconds=max(target - now, 0))
        self._move(move_bp)
        self._quote(bid_bp, 1, 60)
        sampled = bool(self.model.samples)
        due = fm.due_intervals(
            boa.env.evm.patch.timestamp, self.model.next_funding_time, self.params.funding_interval
        )
        cum = self.m.cumulative_funding()
        self.settle()
        delta = self.m.cumulative_funding() - cum
        assert abs(delta) <= self.params.cap * self.index // WAD
        if not sampled:
            base = fm.rate_for(self.params, 0)
            assert delta == fm.settle(0, base, base, self.index, due, self.params.cap)
        count("keeper outage", "with samples" if sampled else "no samples: interest only")

    # ------------------------------------------------------------ rules: accounts

    @rule(who=st.integers(0, len(TRADERS)))
    def settle_account_twice(self, who):
        """Settle one account (permissionless); a second settlement changes nothing."""
        owner = (self.traders + [self.quoter])[who]
        a = self.p.account(owner)
        owed = self.m.position(a).funding_owed
        cash = self.p.ch.cash(a)
        logs = []

        def act():
            self.p.ch.settle_funding(owner, 0)
            logs.extend((e.account, e.funding_paid) for e in position_changes(self.p.ch.get_logs()))

        paid = self._settled(act, [owner])
        assert logs == ([(a, paid[a])] if paid.get(a) else [])
        assert self.p.ch.cash(a) == cash - owed
        state = (
            self.p.ch.cash(a),
            self.p.ch.cash(self.ins),
            self.m._storage._funding_dust.get(),
            self.m.funding_snapshot(a),
        )
        assert self._settled(lambda: self.p.ch.settle_funding(owner, 0), [owner]) == {}
        assert (
            self.p.ch.cash(a),
            self.p.ch.cash(self.ins),
            self.m._storage._funding_dust.get(),
            self.m.funding_snapshot(a),
        ) == state

    @rule(who=st.integers(0, len(TRADERS) - 1), dollars=st.integers(1, 100))
    def withdraw(self, who, dollars):
        """A small withdrawal settles the account's funding first."""
        owner = self.traders[who]
        a = self.p.account(owner)
        owed = self.m.position(a).funding_owed
        cash = self.p.ch.cash(a)
        units = dollars * 10**self.p.decimals
        self._settled(lambda: self.p.ch.withdraw(0, units, sender=owner), [owner])
        assert self.p.ch.cash(a) == cash - owed - units * self.precision

    @rule()
    def settle_shadow_pair(self):
        """Pair 1 settles now ([t0, t1] then [t1, t2] ...); pair 2 never does."""
        cum = self.m.cumulative_funding()
        for w in self.shadow[0]:
            self._settled(lambda w=w: self.p.ch.settle_funding(w, 0), [w])
        if cum != self.shadow_cums[-1]:
            self.shadow_cums.append(cum)

    @rule()
    def settle_everyone(self):
        """Every open position settled (pair 2 excepted: it nets to zero):
        the dust is gone and Σ paid = Σ received + residue exactly."""
        for w in [*self.traders, self.quoter, *self.shadow[0]]:
            self._settled(lambda w=w: self.p.ch.settle_funding(w, 0), [w])
        cum = self.m.cumulative_funding()
        if cum != self.shadow_cums[-1]:
            self.shadow_cums.append(cum)
        assert self.m._storage._funding_dust.get() == 0
        assert self.paid == self.residue
        count("settle everyone", "residue > 0" if self.residue else "no residue yet")

    # ------------------------------------------------------------ invariants

    def _storage_state(self) -> tuple[dict[int, tuple[int, int, int]], dict[int, int]]:
        """Every account's (size, open notional, funding snapshot) and cash,
        read from storage (titanoboa introspection, no EVM call: the views
        cost ~5 ms each with a position, and this runs after every step).
        PerpMarket packs a position as size + 2**111 (low 112 bits) |
        open_notional + 2**111 (next 112 bits) | funding epoch (high 32
        bits), 0 when flat; the views are compared with it for every account
        a step touched. A word of the accumulator's current epoch must have
        its snapshot at the accumulator (the epoch skips the snapshot read:
        MarketState.check_funding_epochs, shared with the liquidation machine)."""
        MarketState.read(self.m).check_funding_epochs()
        words = self.m._storage._positions.get()
        snaps = self.m._storage.funding_snapshot.get()
        state = {}
        for a in self.accounts:
            size, on = unpack_position(words.get(a, 0))
            state[a] = (size, on, snaps.get(a, 0))
        cash = self.p.ch._storage.cash.get()
        return state, {a: cash.get(a, 0) for a in self.accounts}

    @invariant()
    def funding_invariants(self):
        record("funding", "steps")
        cum = self.m.cumulative_funding()
        dust = self.m._storage._funding_dust.get()
        state, cash = self._storage_state()

        # open interest is symmetric: funding can only be zero-sum if it is
        sizes = [size for size, _, _ in state.values()]
        assert sum(sizes) == 0
        assert self.m.open_interest_sides() == (sum(s for s in sizes if s > 0),) * 2

        # the views of the accounts this step touched, and of the shadows
        shadows = [self.p.account(w) for pair in self.shadow for w in pair]
        views = {a: self.m.position(a) for a in {*self.touched, *shadows}}
        self.touched = set()
        for a, v in views.items():
            size, on, snap = state[a]
            assert (v.size, v.open_notional) == (size, on)
            assert v.funding_owed == fm.funding_owed(size, cum, snap)
            assert self.p.ch.cash(a) == cash[a]

        # zero-sum up to the booked residue, exactly (see the module docstring)
        unsettled_exact = sum(size * (cum - snap) for size, _, snap in state.values())
        owed = sum(fm.funding_owed(size, cum, snap) for size, _, snap in state.values())
        on = sum(on for _, on, _ in state.values())
        total_cash = sum(cash.values())
        vault = self.p.token.balanceOf(self.p.ch.address) * self.precision
        assert dust == self.dust
        assert cash[self.ins] == self.ins_cash0 + self.residue
        assert self.paid * WAD + unsettled_exact == self.residue * WAD + dust
        assert (total_cash - on - vault) * WAD == unsettled_exact - dust
        assert total_cash - on - owed <= vault
        assert total_cash - on - owed > vault - len(state) - 1

        # [t0, t2] in one settlement vs [t0, t1], [t1, t2], ...: shadow pairs
        size = SHADOW_LOTS * LOT
        cums = self.shadow_cums
        for i, s in enumerate((size, -size)):
            split_acct = self.p.account(self.shadow[0][i])
            whole_acct = self.p.account(self.shadow[1][i])
            sv, wv = views[split_acct], views[whole_acct]
            assert sv.size == wv.size == s
            # the one never settled: all of it still owed, from the opening snapshot 0
            assert cash[whole_acct] == self.shadow_cash0[self.shadow[1][i]]
            assert wv.funding_owed == fm.funding_owed(s, cum, 0)
            # the one settled at cums[1], cums[2], ...: each piece rounded on its own
            pieces = [fm.funding_owed(s, c1, c0) for c0, c1 in zip(cums, cums[1:], strict=False)]
            assert cash[split_acct] == self.shadow_cash0[self.shadow[0][i]] - sum(pieces)
            assert sv.funding_owed == fm.funding_owed(s, cum, cums[-1])
            # the exact (1e-18 wei) amounts telescope, so the rounded totals differ
            # by at most a wei per extra settlement, never in the account's favour
            split = cash[split_acct] - sv.funding_owed
            whole = cash[whole_acct] - wv.funding_owed
            assert 0 <= whole - split <= len(cums) - 1
            if whole != split:
                count("split settlement", "rounded differently")


def test_funding_stateful(protocol_any_decimals):
    FundingMachine.protocol = protocol_any_decimals
    FundingMachine.key_trace = StorageKeyTrace()
    run_state_machine_as_test(FundingMachine)
