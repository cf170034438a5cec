"""Differential test: random sequences of reports, time jumps and admin
changes against a small Python model of PROTOCOL.md §4 (median of the fresh
sources, quorum, max_age, the spread of an even count's middle prices, the
reference price and its guard). Catches any divergence of the median cache."""

import boa
from hypothesis import given
from hypothesis import strategies as st

from .conftest import MAX_AGE, QUORUM, WAD

DIVERGENCE = WAD // 2
RATE = WAD // 2  # 50% per hour
BPS = 10**14
DEFAULT_SPREAD = 100 * BPS  # 1%
LAST_ANSWER_AGE = 2**24 - 1  # latestRoundData's last answer: reports up to this old

FAR_PRICES = st.sampled_from([1, WAD, 2 * WAD, 3 * WAD, 100 * WAD, 2**128 - 1])
# within a few percent of 100: even counts agree or not depending on max_spread
# (100.5 and 101 agree at 1%, 101 + 1 wei does not, 104 only at 4%)
CLOSE_PRICES = st.sampled_from(
    [
        99 * WAD,
        100 * WAD,
        100 * WAD + WAD // 200,
        101 * WAD,
        101 * WAD + 1,
        102 * WAD + 7,
        104 * WAD,
    ]
)
PRICES = st.one_of(FAR_PRICES, CLOSE_PRICES, CLOSE_PRICES, CLOSE_PRICES)
# in bounds (0.1% .. 4%, whole basis points) and not
SPREADS = st.sampled_from(
    [10 * BPS, 50 * BPS, 100 * BPS, 200 * BPS, 400 * BPS, 0, 9 * BPS, 401 * BPS, 100 * BPS + 1, WAD]
)

# seconds before now a report was observed: mostly fresh, sometimes stale
BACK = st.one_of(st.just(0), st.integers(0, 90))
REPORT = st.tuples(st.just("report"), st.integers(0, 7), PRICES, BACK)
# sources 0, 1, ... report one price each at the same time: a quorum of odd
# or even size in one step
ROUND = st.tuples(st.just("round"), st.lists(PRICES, min_size=1, max_size=8), BACK)
# reports drawn more often than each other op: sequences reach a quorum
OPS = st.one_of(
    REPORT,
    REPORT,
    ROUND,
    ROUND,
    st.tuples(st.just("warp"), st.integers(0, 90)),
    st.tuples(st.just("quorum"), st.integers(1, 8)),
    st.tuples(st.just("max_age"), st.integers(5, 120)),
    st.tuples(st.just("spread"), SPREADS),
    st.tuples(st.just("remove"), st.integers(0, 7)),
    st.tuples(st.just("add")),
    st.tuples(st.just("reset")),
    st.tuples(st.just("update")),
)


class Model:
    def __init__(self, reporters):
        self.sources = [[r, 0, 0] for r in reporters]  # [address, price, timestamp]
        self.max_age = MAX_AGE
        self.quorum = QUORUM
        self.max_spread = DEFAULT_SPREAD
        self.reference = (0, 0)  # (price, checkpoint time)

    def median(self, now, max_age=None):
        """(median, fresh count, oldest fresh timestamp, the middle prices agree)."""
        max_age = self.max_age if max_age is None else max_age
        fresh = [(p, t) for _, p, t in self.sources if p > 0 and t <= now and now - t <= max_age]
        prices = sorted(p for p, _ in fresh)
        m = len(prices)
        if m == 0:
            return 0, 0, 0, True
        oldest = min(t for _, t in fresh)
        if m % 2:
            return prices[m // 2], m, oldest, True
        lo, hi = prices[m // 2 - 1], prices[m // 2]
        return (lo + hi) // 2, m, oldest, hi * WAD <= lo * (WAD + self.max_spread)

    @staticmethod
    def spread_error(max_spread):
        """The revert reason of set_max_spread(max_spread), None if accepted."""
        if max_spread % BPS:
            return "oracle: spread not in whole basis points"
        if not 10 <= max_spread // BPS <= 400:
            return "oracle: max_spread out of bounds"
        return None

    def reference_now(self, med, now):
        r, t = self.reference
        if r == 0:
            return med
        step = WAD + RATE * (now - t) // 3600
        return min(max(med, r * WAD // step), r * step // WAD)

    def guarded(self, med, now):
        """The median is more than DIVERGENCE away from the reference."""
        r = self.reference_now(med, now)
        band = WAD + DIVERGENCE
        return not (med * WAD <= r * band and r * WAD <= med * band)

    def status(self, now):
        med, m, oldest, agree = self.median(now)
        if m == 0:
            return False, 0, 0, 0, "oracle: stale index"
        if m < self.quorum:
            return False, med, m, oldest, "oracle: below quorum"
        if not agree:
            return False, med, m, oldest, "oracle: sources disagree"
        if self.guarded(med, now):
            return False, med, m, oldest, "oracle: index moved too fast"
        return True, med, m, oldest, None

    def round_data(self, now):
        """latestRoundData: (answer, updatedAt, None) or (0, 0, revert reason). Without a
        fresh quorum the median of every source's latest report (LAST_ANSWER_AGE), the
        spread rule and the guard still apply."""
        med, m, oldest, agree = self.median(now)
        if m == 0 or m < self.quorum:
            med, m, oldest, agree = self.median(now, LAST_ANSWER_AGE)
            if m == 0:
                return 0, 0, "oracle: no answer"
            if m < self.quorum:
                return 0, 0, "oracle: below quorum"
        if not agree:
            return 0, 0, "oracle: sources disagree"
        if self.guarded(med, now):
            return 0, 0, "oracle: index moved too fast"
        return med, oldest, None

    def checkpoint(self, now) -> bool:
        """Move the reference toward a valid median (quorum, agreeing middle)."""
        med, m, _, agree = self.median(now)
        if m == 0 or m < self.quorum or not agree:
            return False
        self.reference = (self.reference_now(med, now), now)
        return True


def _check(oracle, model):
    now = boa.env.timestamp
    valid, med, fresh, oldest, reason = model.status(now)
    assert oracle.index_status() == (valid, med, fresh)
    assert oracle.max_spread() == model.max_spread
    assert oracle.reference_price() == (model.reference_now(med, now), model.reference[1])
    if valid:
        assert oracle.index() == med
    else:
        with boa.reverts(reason):
            oracle.index()
    answer, updated_at, round_reason = model.round_data(now)
    if round_reason is None:
        assert oracle.latestRoundData() == (updated_at, answer, updated_at, updated_at, updated_at)
        assert oracle.getRoundData(updated_at) == oracle.latestRoundData()
        if valid:
            assert (answer, updated_at) == (med, oldest)
    else:
        with boa.reverts(round_reason):
            oracle.latestRoundData()


def _report(oracle, model, src, price, ts):
    """`src` reports `price` observed at `ts`; a report checkpoints the reference."""
    if ts < src[2]:
        with boa.reverts("oracle: timestamp went backwards"):
            oracle.report(price, ts, sender=src[0])
    else:
        oracle.report(price, ts, sender=src[0])
        src[1], src[2] = price, ts
        model.checkpoint(boa.env.timestamp)


@given(ops=st.lists(OPS, min_size=2, max_size=25))
def test_index__matches_model_over_random_sequences(make_oracle, reporters, owner, ops):
    oracle = make_oracle(reporters, max_divergence=DIVERGENCE, reference_rate=RATE)
    model = Model(reporters)
    added = 0
    for op in ops:
        kind = op[0]
        n = len(model.sources)
        if kind == "report":
            _, i, price, back = op
            _report(oracle, model, model.sources[i % n], price, boa.env.timestamp - back)
        elif kind == "round":
            _, prices, back = op
            # as many reports as there are both sources and prices
            for src, price in zip(model.sources, prices, strict=False):
                _report(oracle, model, src, price, boa.env.timestamp - back)
        elif kind == "warp":
            boa.env.time_travel(seconds=op[1])
        elif kind == "quorum":
            if op[1] <= n:
                oracle.set_quorum(op[1], sender=owner)
                model.quorum = op[1]
            else:
                with boa.reverts("oracle: quorum out of bounds"):
                    oracle.set_quorum(op[1], sender=owner)
        elif kind == "max_age":
            oracle.set_max_age(op[1], sender=owner)
            model.max_age = op[1]
        elif kind == "spread":
            error = Model.spread_error(op[1])
            if error is None:
                oracle.set_max_spread(op[1], sender=owner)
                model.max_spread = op[1]
            else:
                with boa.reverts(error):
                    oracle.set_max_spread(op[1], sender=owner)
        elif kind == "remove":
            i = op[1] % n
            if model.quorum > n - 1:
                with boa.reverts("oracle: quorum above sources"):
                    oracle.remove_source(i, sender=owner)
            else:
                oracle.remove_source(i, sender=owner)
                model.sources[i] = model.sources[-1]
                model.sources.pop()
        elif kind == "add" and n < 8:
            added += 1
            reporter = boa.env.generate_address(f"model-reporter-{added}")
            oracle.add_reporter(reporter, sender=owner)
            model.sources.append([reporter, 0, 0])
        elif kind in ("reset", "update"):
            saved = model.reference
            if kind == "reset":
                model.reference = (0, 0)
            if model.checkpoint(boa.env.timestamp):
                if kind == "reset":
                    oracle.reset_reference(sender=owner)
                else:
                    oracle.update_reference()
            else:
                model.reference = saved
                with boa.reverts("oracle: no quorum, or the sources disagree"):
                    if kind == "reset":
                        oracle.reset_reference(sender=owner)
                    else:
                        oracle.update_reference()
        _check(oracle, model)
    for i, (addr, price, ts) in enumerate(model.sources):
        assert oracle.source(i) == (1, addr, price, ts)
