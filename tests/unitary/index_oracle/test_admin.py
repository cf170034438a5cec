"""Owner-only configuration: sources, max_age, quorum, two-step ownership."""

import boa
import pytest

from .conftest import WAD, now, report_all

ZERO = "0x0000000000000000000000000000000000000000"
NOT_OWNER = "ownable: caller is not the owner"


def event_names(contract):
    return [type(e).__name__ for e in contract.get_logs()]


# ---------------------------------------------------------------- access control


@pytest.mark.parametrize(
    "call",
    [
        lambda o, x: o.add_reporter(x, sender=x),
        lambda o, x: o.add_aggregator(x, sender=x),
        lambda o, x: o.remove_source(0, sender=x),
        lambda o, x: o.set_max_age(120, sender=x),
        lambda o, x: o.set_quorum(1, sender=x),
        lambda o, x: o.transfer_ownership(x, sender=x),
    ],
    ids=[
        "add_reporter",
        "add_aggregator",
        "remove_source",
        "set_max_age",
        "set_quorum",
        "transfer_ownership",
    ],
)
def test_admin__not_owner__reverts(oracle, attacker, call):
    with boa.reverts(NOT_OWNER):
        call(oracle, attacker)


def test_admin__reporter_is_not_owner__reverts(oracle, reporters):
    reporter = reporters[0]
    with boa.reverts(NOT_OWNER):
        oracle.set_quorum(1, sender=reporter)
    with boa.reverts(NOT_OWNER):
        oracle.remove_source(1, sender=reporter)


# ---------------------------------------------------------------- add_reporter


def test_add_reporter__new_reporter_can_report(oracle, owner, reporters):
    reporter = boa.env.generate_address("new-reporter")
    assert oracle.add_reporter(reporter, sender=owner) == 3
    assert oracle.get_logs()[0].source == 3
    assert oracle.source_count() == 4
    assert oracle.reporter_source(reporter) == 4
    assert oracle.source(3) == (1, reporter, 0, 0)
    report_all(oracle, [reporters[0], reporter], [300 * WAD, 302 * WAD])
    assert oracle.index() == 301 * WAD


def test_add_reporter__duplicate__reverts(oracle, owner, reporters):
    with boa.reverts("oracle: duplicate reporter"):
        oracle.add_reporter(reporters[1], sender=owner)


def test_add_reporter__zero_address__reverts(oracle, owner):
    with boa.reverts("oracle: zero address"):
        oracle.add_reporter(ZERO, sender=owner)


def test_add_reporter__ninth_source__reverts(oracle, owner):
    for i in range(5):
        oracle.add_reporter(boa.env.generate_address(f"extra-{i}"), sender=owner)
    assert oracle.source_count() == 8
    with boa.reverts("oracle: too many sources"):
        oracle.add_reporter(boa.env.generate_address("ninth"), sender=owner)


def test_add_aggregator__ninth_source__reverts(oracle, owner, make_aggregator):
    for i in range(5):
        oracle.add_reporter(boa.env.generate_address(f"extra-{i}"), sender=owner)
    feed = make_aggregator(decimals=8)
    with boa.reverts("oracle: too many sources"):
        oracle.add_aggregator(feed.address, sender=owner)


def test_add_reporter__after_removal_slot_reusable(oracle, owner):
    """Removing a source frees room under the cap of 8."""
    for i in range(5):
        oracle.add_reporter(boa.env.generate_address(f"extra-{i}"), sender=owner)
    oracle.remove_source(0, sender=owner)
    newcomer = boa.env.generate_address("newcomer")
    assert oracle.add_reporter(newcomer, sender=owner) == 7


# ---------------------------------------------------------------- remove_source


def test_remove_source__last__removed(oracle, owner, reporters):
    oracle.remove_source(2, sender=owner)
    assert oracle.source_count() == 2
    assert oracle.reporter_source(reporters[2]) == 0
    with boa.reverts("oracle: no such source"):
        oracle.source(2)


def test_remove_source__emits_source_removed(oracle, owner, reporters):
    oracle.remove_source(1, sender=owner)
    logs = oracle.get_logs()
    assert len(logs) == 1
    assert type(logs[0]).__name__ == "SourceRemoved"
    assert (logs[0].addr, logs[0].source) == (reporters[1], 1)


def test_remove_source__swap_and_pop__moved_reporter_keeps_reporting(oracle, owner, reporters):
    ts = now()
    oracle.report(300 * WAD, ts, sender=reporters[2])
    oracle.remove_source(0, sender=owner)
    # the last source (reporter 2) moved to index 0 with its price and timestamp
    assert oracle.source_count() == 2
    assert oracle.source(0) == (1, reporters[2], 300 * WAD, ts)
    assert oracle.source(1)[1] == reporters[1]
    assert oracle.reporter_source(reporters[2]) == 1
    assert oracle.reporter_source(reporters[1]) == 2
    # its timestamp history moved with it
    with boa.reverts("oracle: timestamp went backwards"):
        oracle.report(301 * WAD, ts - 1, sender=reporters[2])
    boa.env.time_travel(seconds=1)
    oracle.report(302 * WAD, ts + 1, sender=reporters[2])
    event = oracle.get_logs()[0]
    assert (event.reporter, event.price) == (reporters[2], 302 * WAD)
    assert oracle.source(0)[2:] == (302 * WAD, ts + 1)
    oracle.report(304 * WAD, ts + 1, sender=reporters[1])
    assert oracle.index() == 303 * WAD


def test_remove_source__removed_reporter__reverts(oracle, owner, reporters):
    oracle.remove_source(0, sender=owner)
    with boa.reverts("oracle: not a reporter"):
        oracle.report(100 * WAD, now(), sender=reporters[0])


def test_remove_source__removed_reporter_price_no_longer_counts(oracle, owner, reporters):
    report_all(oracle, reporters, [1_000 * WAD, 300 * WAD, 302 * WAD])
    assert oracle.index() == 302 * WAD
    oracle.remove_source(0, sender=owner)
    assert oracle.index() == 301 * WAD


def test_remove_source__readded_reporter_starts_fresh(oracle, owner, reporters):
    ts = now()
    oracle.report(100 * WAD, ts, sender=reporters[0])
    oracle.remove_source(0, sender=owner)
    assert oracle.add_reporter(reporters[0], sender=owner) == 2
    assert oracle.source(2) == (1, reporters[0], 0, 0)
    # the old timestamp no longer binds it
    oracle.report(99 * WAD, ts - 10, sender=reporters[0])


def test_remove_source__no_such_source__reverts(oracle, owner):
    with boa.reverts("oracle: no such source"):
        oracle.remove_source(3, sender=owner)


def test_remove_source__quorum_would_exceed_sources__reverts(make_oracle, owner, reporters):
    oracle = make_oracle(reporters, quorum=3)
    with boa.reverts("oracle: quorum above sources"):
        oracle.remove_source(0, sender=owner)
    oracle.set_quorum(2, sender=owner)
    oracle.remove_source(0, sender=owner)
    assert oracle.source_count() == 2


def test_remove_source__only_source__reverts(make_oracle, owner, reporters):
    oracle = make_oracle(reporters[:1], quorum=1)
    with boa.reverts("oracle: quorum above sources"):
        oracle.remove_source(0, sender=owner)


def test_remove_source__keeps_max_age_and_quorum(oracle, owner):
    oracle.remove_source(1, sender=owner)
    assert oracle.max_age() == 60
    assert oracle.quorum() == 2


# ---------------------------------------------------------------- set_max_age


@pytest.mark.parametrize("max_age", [5, 3_600, 86_400])
def test_set_max_age__within_bounds__set_and_emitted(oracle, owner, max_age):
    oracle.set_max_age(max_age, sender=owner)
    assert oracle.get_logs()[0].max_age == max_age
    assert oracle.max_age() == max_age
    # the other packed fields are untouched
    assert oracle.quorum() == 2
    assert oracle.source_count() == 3


@pytest.mark.parametrize("max_age", [0, 4, 86_401, 2**64])
def test_set_max_age__out_of_bounds__reverts(oracle, owner, max_age):
    with boa.reverts("oracle: max_age out of bounds"):
        oracle.set_max_age(max_age, sender=owner)


# ---------------------------------------------------------------- set_quorum


@pytest.mark.parametrize("quorum", [1, 2, 3])
def test_set_quorum__within_bounds__set_and_emitted(oracle, owner, quorum):
    oracle.set_quorum(quorum, sender=owner)
    assert oracle.get_logs()[0].quorum == quorum
    assert oracle.quorum() == quorum
    assert oracle.max_age() == 60
    assert oracle.source_count() == 3


@pytest.mark.parametrize("quorum", [0, 4, 256])
def test_set_quorum__out_of_bounds__reverts(oracle, owner, quorum):
    with boa.reverts("oracle: quorum out of bounds"):
        oracle.set_quorum(quorum, sender=owner)


def test_set_quorum__raise_invalidates_index(oracle, owner, reporters):
    report_all(oracle, reporters[:2], [300 * WAD, 302 * WAD])
    assert oracle.index() == 301 * WAD
    oracle.set_quorum(3, sender=owner)
    with boa.reverts("oracle: below quorum"):
        oracle.index()


def test_set_quorum__after_add_reporter__new_bound(oracle, owner):
    oracle.add_reporter(boa.env.generate_address("fourth"), sender=owner)
    oracle.set_quorum(4, sender=owner)
    assert oracle.quorum() == 4


# ---------------------------------------------------------------- ownership


def test_transfer_ownership__two_step(oracle, owner, attacker):
    new_owner = boa.env.generate_address("new-owner")
    oracle.transfer_ownership(new_owner, sender=owner)
    assert "OwnershipTransferStarted" in event_names(oracle)
    assert oracle.pending_owner() == new_owner
    # nothing changes until accepted
    assert oracle.owner() == owner
    with boa.reverts(NOT_OWNER):
        oracle.set_quorum(1, sender=new_owner)
    oracle.set_quorum(1, sender=owner)
    with boa.reverts("ownable_2step: caller is not the new owner"):
        oracle.accept_ownership(sender=attacker)
    oracle.accept_ownership(sender=new_owner)
    assert oracle.owner() == new_owner
    assert oracle.pending_owner() == ZERO
    oracle.set_quorum(2, sender=new_owner)
    with boa.reverts(NOT_OWNER):
        oracle.set_quorum(1, sender=owner)


def test_accept_ownership__no_pending__reverts(oracle, owner):
    with boa.reverts("ownable_2step: caller is not the new owner"):
        oracle.accept_ownership(sender=owner)


def test_transfer_ownership__replaced_pending_owner_cannot_accept(oracle, owner):
    first = boa.env.generate_address("first-candidate")
    second = boa.env.generate_address("second-candidate")
    oracle.transfer_ownership(first, sender=owner)
    oracle.transfer_ownership(second, sender=owner)
    with boa.reverts("ownable_2step: caller is not the new owner"):
        oracle.accept_ownership(sender=first)
    oracle.accept_ownership(sender=second)
    assert oracle.owner() == second


def test_transfer_ownership__to_zero_cancels(oracle, owner):
    candidate = boa.env.generate_address("candidate")
    oracle.transfer_ownership(candidate, sender=owner)
    oracle.transfer_ownership(ZERO, sender=owner)
    with boa.reverts("ownable_2step: caller is not the new owner"):
        oracle.accept_ownership(sender=candidate)
    assert oracle.owner() == owner
