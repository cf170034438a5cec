"""StorageKeyTrace (tests/utils/protocol.py): the fuzz machines reset boa's
trace of written storage keys at each example, so it does not grow with
every example; the keys known at the start are kept."""

import boa

from tests.utils.protocol import StorageKeyTrace


def _keys(address) -> set:
    return set(boa.env.sstore_trace.get(address, set()))


def test_reset__forgets_keys_written_since__keeps_the_ones_known_then(protocol):
    ch = protocol.ch.address
    before = _keys(ch)
    trace = StorageKeyTrace()
    with boa.env.anchor():
        protocol.actor("trace-alice", 1_000)
        assert _keys(ch) > before  # the deposit wrote new keys
    assert _keys(ch) > before  # reverting the anchor does not forget them
    trace.reset()
    assert _keys(ch) == before


def test_reset__hashmaps_known_at_the_start_still_decode(protocol):
    who = protocol.actor("trace-bob", 1_000)
    account = protocol.ch.account_of(who, 0)
    cash = protocol.ch._storage.cash.get()
    assert cash[account] != 0
    trace = StorageKeyTrace()
    with boa.env.anchor():
        protocol.actor("trace-carol", 1_000)
    trace.reset()
    assert protocol.ch._storage.cash.get() == cash
