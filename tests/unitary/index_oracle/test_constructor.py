import boa
import pytest

from .conftest import MAX_AGE, QUORUM


def test_constructor__sets_config_and_reporter_sources(oracle, owner, reporters):
    assert oracle.description() == "BTC-PERP index"
    assert oracle.max_age() == MAX_AGE
    assert oracle.quorum() == QUORUM
    assert oracle.source_count() == 3
    assert oracle.owner() == owner
    assert oracle.pending_owner() == "0x0000000000000000000000000000000000000000"
    for i, r in enumerate(reporters):
        assert oracle.reporter_source(r) == i + 1
        assert oracle.source(i) == (1, r, 0, 0)


def test_constructor__emits_source_added_max_age_and_quorum_events(make_oracle, reporters):
    oracle = make_oracle(reporters, max_age=30, quorum=3)
    logs = oracle.get_logs()
    added = [e for e in logs if type(e).__name__ == "SourceAdded"]
    assert [(e.addr, e.source, e.kind) for e in added] == [(r, i, 1) for i, r in enumerate(reporters)]
    assert [e.max_age for e in logs if type(e).__name__ == "MaxAgeSet"] == [30]
    assert [e.quorum for e in logs if type(e).__name__ == "QuorumSet"] == [3]


@pytest.mark.parametrize("quorum", [1, 3])
def test_constructor__quorum_at_bounds__accepted(make_oracle, reporters, quorum):
    assert make_oracle(reporters, quorum=quorum).quorum() == quorum


@pytest.mark.parametrize("quorum", [0, 4])
def test_constructor__quorum_out_of_bounds__reverts(make_oracle, reporters, quorum):
    with boa.reverts("oracle: quorum out of bounds"):
        make_oracle(reporters, quorum=quorum)


def test_constructor__no_reporters__reverts_on_quorum(make_oracle):
    with boa.reverts("oracle: quorum out of bounds"):
        make_oracle([], quorum=1)


@pytest.mark.parametrize("max_age", [5, 86_400])
def test_constructor__max_age_at_bounds__accepted(make_oracle, reporters, max_age):
    assert make_oracle(reporters, max_age=max_age).max_age() == max_age


@pytest.mark.parametrize("max_age", [0, 4, 86_401])
def test_constructor__max_age_out_of_bounds__reverts(make_oracle, reporters, max_age):
    with boa.reverts("oracle: max_age out of bounds"):
        make_oracle(reporters, max_age=max_age)


def test_constructor__duplicate_reporter__reverts(make_oracle, reporters):
    with boa.reverts("oracle: duplicate reporter"):
        make_oracle([reporters[0], reporters[1], reporters[0]])


def test_constructor__zero_address_reporter__reverts(make_oracle, reporters):
    with boa.reverts("oracle: zero address"):
        make_oracle([reporters[0], "0x0000000000000000000000000000000000000000"], quorum=1)


def test_constructor__eight_reporters__accepted(make_oracle):
    reporters = [boa.env.generate_address(f"reporter-{i}") for i in range(8)]
    oracle = make_oracle(reporters, quorum=5)
    assert oracle.source_count() == 8


def test_decimals__is_18(oracle):
    assert oracle.decimals() == 18
