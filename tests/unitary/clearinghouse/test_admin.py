"""Clearinghouse admin: constructor checks, markets, insurance fee share,
two-step ownership, within hard bounds (PROTOCOL.md §13)."""

import boa

from keeper.deploy import to_wad
from keeper.units import WAD
from tests.utils.protocol import IOC

ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
MAX_MARKETS = 16
ENGINE_DELAY = 2 * 86400

# a token whose decimals() is out of the supported 2..18 range (test-only stub)
_BAD_DECIMALS_TOKEN = """
# pragma version 0.4.3
DECIMALS: immutable(uint8)

@deploy
def __init__(d: uint8):
    DECIMALS = d

@external
@view
def decimals() -> uint8:
    return DECIMALS
"""


def _events(contract, name: str) -> list:
    return [e for e in contract.get_logs() if type(e).__name__ == name]


def _new_market(p, clearinghouse: str, symbol: str = "NEW-PERP"):
    """A PerpMarket on the BTC oracle with the BTC parameters."""
    md = p.d.markets["BTC-PERP"]
    return p.backend.deploy(
        "PerpMarket",
        symbol,
        clearinghouse,
        md.oracle.address,
        to_wad("1"),
        to_wad("0.001"),
        md.config.params(),
    )


def _set_fees(p, taker: str, maker: str, symbol: str = "BTC-PERP") -> None:
    params = list(p.d.markets[symbol].config.params())
    params[2], params[3] = to_wad(taker), to_wad(maker)
    p.market(symbol).set_params(tuple(params), sender=p.owner)


# ---------------------------------------------------------------- constructor


def test_init__deployed_state(protocol):
    p = protocol
    assert p.ch.owner() == p.owner
    assert p.ch.pending_owner() == ZERO_ADDRESS
    assert p.ch.COLLATERAL() == p.token.address
    assert p.ch.insurance_fee_share() == WAD // 2
    assert p.ch.paused_ops() == 0
    assert p.ch.market_count() == 2
    assert p.ch.account_key(p.ch.insurance_account()) == (p.ch.insurance_fund(), 0)
    assert p.ch.account_key(p.ch.treasury_account()) == (p.ch.treasury(), 0)
    assert (p.ch.insurance_account(), p.ch.treasury_account()) == (1, 2)


def test_init__two_decimal_collateral__precision(protocol):
    p = protocol
    token = p.backend.deploy("MockStablecoin", "Cents", "CENT", 2)
    ch = p.backend.deploy("Clearinghouse", token.address, p.actor("fund"), p.actor("treasury"), 0)
    assert ch.PRECISION() == 10**16


def test_init__collateral_decimals_out_of_range__reverts(protocol):
    p = protocol
    for decimals in (1, 19):
        token = boa.loads(_BAD_DECIMALS_TOKEN, decimals)
        with boa.reverts("collateral decimals out of range"):
            p.backend.deploy("Clearinghouse", token.address, p.actor("fund"), p.actor("treasury"), 0)


def test_init__zero_addresses__revert(protocol):
    p = protocol
    fund, treasury = p.actor("fund"), p.actor("treasury")
    with boa.reverts("zero address"):
        p.backend.deploy("Clearinghouse", ZERO_ADDRESS, fund, treasury, 0)
    with boa.reverts("zero address"):
        p.backend.deploy("Clearinghouse", p.token.address, ZERO_ADDRESS, treasury, 0)
    with boa.reverts("zero address"):
        p.backend.deploy("Clearinghouse", p.token.address, fund, ZERO_ADDRESS, 0)


def test_init__insurance_fund_is_treasury__reverts(protocol):
    p = protocol
    fund = p.actor("fund")
    with boa.reverts("insurance fund is the treasury"):
        p.backend.deploy("Clearinghouse", p.token.address, fund, fund, 0)


def test_init__insurance_fee_share_above_one__reverts(protocol):
    p = protocol
    with boa.reverts("insurance fee share above 1"):
        p.backend.deploy("Clearinghouse", p.token.address, p.actor("fund"), p.actor("treasury"), WAD + 1)


# ---------------------------------------------------------------- insurance fee share


def test_set_insurance_fee_share__bounds(protocol):
    p = protocol
    p.ch.set_insurance_fee_share(WAD, sender=p.owner)
    (event,) = _events(p.ch, "InsuranceFeeShareSet")
    assert event.share == WAD
    assert p.ch.insurance_fee_share() == WAD

    with boa.reverts("insurance fee share above 1"):
        p.ch.set_insurance_fee_share(WAD + 1, sender=p.owner)

    p.ch.set_insurance_fee_share(0, sender=p.owner)
    assert p.ch.insurance_fee_share() == 0


def test_set_insurance_fee_share__non_owner__reverts(protocol):
    p = protocol
    with boa.reverts("ownable: caller is not the owner"):
        p.ch.set_insurance_fee_share(0, sender=p.actor("attacker"))
    assert p.ch.insurance_fee_share() == WAD // 2


def test_set_insurance_fee_share__splits_trading_fees(protocol):
    # taker 0.05% + maker 0.02% of a 10,000 fill = 5 + 2 = 7
    p = protocol
    _set_fees(p, "0.0005", "0.0002")
    trader = p.actor("trader", 10_000)
    maker = p.actor("maker", 10_000)
    ins, tre = p.ch.insurance_account(), p.ch.treasury_account()

    p.order(maker, "sell", "0.1", 100_000)
    p.order(trader, "buy", "0.05", 100_000, IOC)
    assert (p.ch.cash(ins), p.ch.cash(tre)) == (175 * 10**16, 175 * 10**16)  # 3.5 = 7/2 / 2 trades

    p.ch.set_insurance_fee_share(WAD, sender=p.owner)
    p.order(trader, "buy", "0.05", 100_000, IOC)
    assert (p.ch.cash(ins), p.ch.cash(tre)) == (525 * 10**16, 175 * 10**16)
    assert p.ch.cash(p.account(trader)) == 10_000 * WAD - 5 * WAD
    assert p.ch.cash(p.account(maker)) == 10_000 * WAD - 2 * WAD


# ---------------------------------------------------------------- markets


def test_add_market__lists_market(protocol):
    p = protocol
    market = _new_market(p, p.ch.address)

    p.ch.add_market(market.address, sender=p.owner)
    (event,) = _events(p.ch, "MarketAdded")

    assert (event.market, event.market_index) == (market.address, 2)
    assert p.ch.market_count() == 3
    assert p.ch.markets(2) == market.address
    assert p.ch.market_index(market.address) == 3


def test_add_market__twice__reverts(protocol):
    p = protocol
    with boa.reverts("market already listed"):
        p.ch.add_market(p.market().address, sender=p.owner)
    assert p.ch.market_count() == 2


def test_add_market__market_of_another_clearinghouse__reverts(protocol):
    p = protocol
    elsewhere = p.backend.deploy("Clearinghouse", p.token.address, p.actor("fund"), p.actor("treasury"), 0)
    market = _new_market(p, elsewhere.address)

    with boa.reverts("market of another clearinghouse"):
        p.ch.add_market(market.address, sender=p.owner)

    assert p.ch.market_count() == 2
    assert p.ch.market_index(market.address) == 0


def test_add_market__non_owner__reverts(protocol):
    p = protocol
    market = _new_market(p, p.ch.address)
    with boa.reverts("ownable: caller is not the owner"):
        p.ch.add_market(market.address, sender=p.actor("attacker"))


def test_add_market__more_than_max__reverts(protocol):
    p = protocol
    for i in range(MAX_MARKETS - p.ch.market_count()):
        p.ch.add_market(_new_market(p, p.ch.address, f"M{i}").address, sender=p.owner)
    assert p.ch.market_count() == MAX_MARKETS

    with boa.reverts("too many markets"):
        p.ch.add_market(_new_market(p, p.ch.address, "ONE-TOO-MANY").address, sender=p.owner)


# ---------------------------------------------------------------- liquidation engine


def _engine_of(p, clearinghouse: str):
    return p.backend.deploy("LiquidationEngine", clearinghouse)


def test_liquidation_engine__deployed_state(protocol):
    p = protocol
    assert p.ch.liquidation_engine() == p.engine.address
    assert p.engine.CLEARINGHOUSE() == p.ch.address
    assert p.engine.owner() == p.owner
    assert p.ch.pending_liquidation_engine() == ZERO_ADDRESS


def test_liquidation_engine__zero_clearinghouse__reverts(protocol):
    with boa.reverts("zero address"):
        protocol.backend.deploy("LiquidationEngine", ZERO_ADDRESS)


def test_set_liquidation_engine__checks(protocol):
    p = protocol
    elsewhere = p.backend.deploy("Clearinghouse", p.token.address, p.actor("fund"), p.actor("treasury"), 0)
    for engine, sender, reason in (
        (_engine_of(p, p.ch.address).address, p.actor("attacker"), "ownable: caller is not the owner"),
        (ZERO_ADDRESS, p.owner, "zero address"),
        (_engine_of(p, elsewhere.address).address, p.owner, "engine of another clearinghouse"),
    ):
        with boa.reverts(reason):
            p.ch.set_liquidation_engine(engine, sender=sender)
    assert p.ch.liquidation_engine() == p.engine.address
    assert p.ch.pending_liquidation_engine() == ZERO_ADDRESS


def test_set_liquidation_engine__first__takes_effect_at_once(protocol):
    p = protocol
    ch = p.backend.deploy("Clearinghouse", p.token.address, p.actor("fund"), p.actor("treasury"), 0)
    engine = _engine_of(p, ch.address)
    ch.set_liquidation_engine(engine.address, sender=p.owner)
    (ev,) = _events(ch, "LiquidationEngineSet")
    assert ev.engine == engine.address and ch.liquidation_engine() == engine.address


def test_set_liquidation_engine__replacement__applies_at_the_delay_not_before(protocol):
    p = protocol
    new = _engine_of(p, p.ch.address)
    p.ch.set_liquidation_engine(new.address, sender=p.owner)
    at = p.ch.pending_liquidation_engine_at()
    assert at == boa.env.evm.patch.timestamp + ENGINE_DELAY
    assert p.ch.liquidation_engine() == p.engine.address  # not yet

    boa.env.time_travel(seconds=ENGINE_DELAY - 1)
    with boa.reverts("engine delay not over"):
        p.ch.apply_liquidation_engine(sender=p.owner)
    boa.env.time_travel(seconds=1)
    with boa.reverts("ownable: caller is not the owner"):
        p.ch.apply_liquidation_engine(sender=p.actor("attacker"))
    p.ch.apply_liquidation_engine(sender=p.owner)

    (ev,) = _events(p.ch, "LiquidationEngineSet")
    assert ev.engine == new.address and p.ch.liquidation_engine() == new.address
    assert (p.ch.pending_liquidation_engine(), p.ch.pending_liquidation_engine_at()) == (ZERO_ADDRESS, 0)
    # the markets listed before it are listed on it by its owner
    m = p.market().address
    assert new.liquidation_params(m) == (0, 0, 0, 0, 0)
    new.add_market(m, sender=p.owner)
    assert new.liquidation_params(m) == p.engine.liquidation_params(m)


def test_apply_liquidation_engine__none_proposed__reverts(protocol):
    with boa.reverts("no engine proposed"):
        protocol.ch.apply_liquidation_engine(sender=protocol.owner)


def test_engine_functions__not_the_engine__revert(protocol):
    p = protocol
    a, m = p.account(p.actor("someone", 1_000)), p.market().address
    for sender in (p.owner, p.actor("attacker"), p.ch.address):
        with boa.env.prank(sender):
            with boa.reverts("not the liquidation engine"):
                p.ch.engine_cancel(a, m, [1])
            with boa.reverts("not the liquidation engine"):
                p.ch.engine_close(a, m, False, 10**15, 1)
            with boa.reverts("not the liquidation engine"):
                p.ch.engine_transfer(a, 1, m, 10**15, 1, True)
            with boa.reverts("not the liquidation engine"):
                p.ch.engine_settle(a, 1, sender, WAD, False)


def test_add_market__no_liquidation_engine__reverts(protocol):
    p = protocol
    ch = p.backend.deploy("Clearinghouse", p.token.address, p.actor("fund"), p.actor("treasury"), 0)
    with boa.reverts("no liquidation engine"):
        ch.add_market(_new_market(p, ch.address).address, sender=p.owner)
    assert ch.market_count() == 0


def test_add_market__lists_it_on_the_engine(protocol):
    p = protocol
    market = _new_market(p, p.ch.address)
    assert p.engine.liquidation_params(market.address) == (0, 0, 0, 0, 0)  # not listed
    p.ch.add_market(market.address, sender=p.owner)
    assert p.engine.liquidation_params(market.address) == p.engine.liquidation_params(p.market().address)


def test_engine_add_market__checks(protocol):
    p = protocol
    unlisted = _new_market(p, p.ch.address)
    with boa.reverts("ownable: caller is not the owner"):
        p.engine.add_market(unlisted.address, sender=p.actor("attacker"))
    with boa.reverts("unknown market"):
        p.engine.add_market(unlisted.address, sender=p.owner)
    with boa.reverts("market already listed"):
        p.engine.add_market(p.market().address, sender=p.owner)


# ---------------------------------------------------------------- ownership


def test_transfer_ownership__two_steps(protocol):
    p = protocol
    new_owner = p.actor("new-owner")
    attacker = p.actor("attacker")

    p.ch.transfer_ownership(new_owner, sender=p.owner)
    assert p.ch.owner() == p.owner  # not yet
    assert p.ch.pending_owner() == new_owner

    with boa.reverts("ownable_2step: caller is not the new owner"):
        p.ch.accept_ownership(sender=attacker)
    with boa.reverts("ownable_2step: caller is not the new owner"):
        p.ch.accept_ownership(sender=p.owner)

    p.ch.accept_ownership(sender=new_owner)
    assert p.ch.owner() == new_owner
    assert p.ch.pending_owner() == ZERO_ADDRESS

    with boa.reverts("ownable: caller is not the owner"):
        p.ch.set_paused(3, sender=p.owner)
    p.ch.set_paused(3, sender=new_owner)
    assert p.ch.paused_ops() == 3


def test_transfer_ownership__non_owner__reverts(protocol):
    p = protocol
    attacker = p.actor("attacker")
    with boa.reverts("ownable: caller is not the owner"):
        p.ch.transfer_ownership(attacker, sender=attacker)
    assert p.ch.pending_owner() == ZERO_ADDRESS


def test_transfer_ownership__replaced_before_accept(protocol):
    p = protocol
    first, second = p.actor("first-owner"), p.actor("second-owner")
    p.ch.transfer_ownership(first, sender=p.owner)
    p.ch.transfer_ownership(second, sender=p.owner)

    with boa.reverts("ownable_2step: caller is not the new owner"):
        p.ch.accept_ownership(sender=first)
    p.ch.accept_ownership(sender=second)
    assert p.ch.owner() == second


def test_renounce_ownership__not_exposed(protocol):
    assert not hasattr(protocol.ch, "renounce_ownership")
