"""Differential test: random sequences of reports, time jumps and admin
changes against a small Python model of PROTOCOL.md §4 (median of the fresh
sources, quorum, max_age). Catches any divergence of the median cache."""

import boa
from hypothesis import given
from hypothesis import strategies as st

from .conftest import MAX_AGE, QUORUM, WAD

PRICES = st.sampled_from([1, WAD, 2 * WAD, 3 * WAD, 100 * WAD, 2**128 - 1])

OPS = st.one_of(
    st.tuples(st.just("report"), st.integers(0, 7), PRICES, st.integers(0, 90)),
    st.tuples(st.just("warp"), st.integers(0, 90)),
    st.tuples(st.just("quorum"), st.integers(1, 8)),
    st.tuples(st.just("max_age"), st.integers(5, 120)),
    st.tuples(st.just("remove"), st.integers(0, 7)),
    st.tuples(st.just("add")),
)


class Model:
    def __init__(self, reporters):
        self.sources = [[r, 0, 0] for r in reporters]  # [address, price, timestamp]
        self.max_age = MAX_AGE
        self.quorum = QUORUM

    def status(self, now):
        fresh = [(p, t) for _, p, t in self.sources if p > 0 and t <= now and now - t <= self.max_age]
        prices = sorted(p for p, _ in fresh)
        m = len(prices)
        if m == 0:
            return False, 0, 0, 0
        med = prices[m // 2] if m % 2 else (prices[m // 2 - 1] + prices[m // 2]) // 2
        return m >= self.quorum, med, m, min(t for _, t in fresh)


def _check(oracle, model):
    now = boa.env.timestamp
    valid, med, fresh, oldest = model.status(now)
    assert oracle.index_status() == (valid, med, fresh)
    if valid:
        assert oracle.index() == med
        assert oracle.latestRoundData() == (oldest, med, oldest, oldest, oldest)
    else:
        reason = "oracle: stale index" if fresh == 0 else "oracle: below quorum"
        with boa.reverts(reason):
            oracle.index()
        with boa.reverts(reason):
            oracle.latestRoundData()


@given(ops=st.lists(OPS, max_size=25))
def test_index__matches_model_over_random_sequences(make_oracle, reporters, owner, ops):
    oracle = make_oracle(reporters)
    model = Model(reporters)
    added = 0
    for op in ops:
        kind = op[0]
        n = len(model.sources)
        if kind == "report":
            _, i, price, back = op
            src = model.sources[i % n]
            ts = boa.env.timestamp - back
            if ts < src[2]:
                with boa.reverts("oracle: timestamp went backwards"):
                    oracle.report(price, ts, sender=src[0])
            else:
                oracle.report(price, ts, sender=src[0])
                src[1], src[2] = price, ts
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
        _check(oracle, model)
    for i, (addr, price, ts) in enumerate(model.sources):
        assert oracle.source(i) == (1, addr, price, ts)
