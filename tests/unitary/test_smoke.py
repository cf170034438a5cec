def test_deploy__index_and_mark_at_initial_price(protocol):
    m = protocol.market()
    assert protocol.oracle().index() == 100_000 * 10**18
    assert m.mark_price() == 100_000 * 10**18
