"""Test-side helpers around the one deployer (keeper.deploy) on titanoboa."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace

import boa

from keeper.deploy import BoaBackend, DeployConfig, Deployment, MarketConfig, deploy_protocol, to_wad
from keeper.model import position_change_of_fill

GTC, POST_ONLY, IOC = 0, 1, 2
MAX_UINT = 2**256 - 1


def test_markets() -> tuple[MarketConfig, ...]:
    """Markets for unit tests: BTC with a $1 tick and 0.001 lot, no fees by default."""
    return (
        MarketConfig(
            "BTC-PERP",
            Decimal("100000"),
            tick_size=Decimal("1"),
            lot_size=Decimal("0.001"),
            taker_fee=Decimal("0"),
            maker_fee=Decimal("0"),
            min_order_notional=Decimal("10"),
            max_open_orders=20,
            max_fills=8,
        ),
        MarketConfig(
            "ETH-PERP",
            Decimal("4000"),
            tick_size=Decimal("0.1"),
            lot_size=Decimal("0.01"),
            taker_fee=Decimal("0"),
            maker_fee=Decimal("0"),
        ),
    )


@dataclass
class Protocol:
    """A deployed protocol on boa plus the actors tests use."""

    d: Deployment
    backend: BoaBackend
    decimals: int

    @property
    def token(self):
        return self.d.collateral

    @property
    def ch(self):
        return self.d.clearinghouse

    @property
    def engine(self):
        """The LiquidationEngine (liquidate, takeover, adl, settle_bad_debt, liquidation parameters)."""
        return self.d.liquidation_engine

    @property
    def lens(self):
        """The Lens (account_summary)."""
        return self.d.lens

    @property
    def insurance(self):
        """The InsuranceFund."""
        return self.d.insurance_fund

    def market(self, symbol: str = "BTC-PERP"):
        return self.d.markets[symbol].market

    def params(self, symbol: str = "BTC-PERP"):
        """The market's parameters (IPerpMarket.MarketParams, decoded by Lens.market_params)."""
        return self.lens.market_params(self.market(symbol).address)

    def oracle(self, symbol: str = "BTC-PERP"):
        return self.d.markets[symbol].oracle

    @property
    def owner(self) -> str:
        return self.backend.deployer

    def units(self, amount: str | int | Decimal) -> int:
        """Human amount -> token units."""
        return int(Decimal(str(amount)) * 10**self.decimals)

    def actor(self, name: str, deposit: str | int | Decimal | None = None, sub: int = 0) -> str:
        addr = boa.env.generate_address(name)
        if deposit is not None:
            self.fund(addr, deposit, sub)
        return addr

    def fund_insurance(self, amount, who: str | None = None) -> None:
        """Deposit `amount` into the insurance fund (ERC-4626) from `who`."""
        who = who or boa.env.generate_address("insurance-depositor")
        units = self.units(amount)
        self.token.mint(who, units, sender=self.owner)
        with boa.env.prank(who):
            self.token.approve(self.insurance.address, MAX_UINT)
            self.insurance.deposit(units, who)

    def fund(self, who: str, amount, sub: int = 0) -> None:
        units = self.units(amount)
        self.token.mint(who, units, sender=self.owner)
        with boa.env.prank(who):
            self.token.approve(self.ch.address, MAX_UINT)
            self.ch.deposit(sub, units)

    def account(self, who: str, sub: int = 0) -> int:
        return self.ch.account_of(who, sub)

    def set_index(self, price, symbol: str = "BTC-PERP", confirm: bool = True) -> None:
        """Every reporter of the market's oracle reports `price` now. A move the
        index guard holds back (PROTOCOL.md §4) is confirmed by the owner
        (`reset_reference`), unless `confirm` is False: these tests move the
        index by design, the guard has tests of its own."""
        md = self.d.markets[symbol]
        now = boa.env.evm.patch.timestamp
        for r in md.reporters:
            md.oracle.report(to_wad(price), now, sender=r)
        if confirm and not md.oracle.index_status()[0]:
            md.oracle.reset_reference(sender=self.owner)

    def order(
        self,
        who: str,
        side: str,
        size,
        price,
        kind: int = GTC,
        symbol: str = "BTC-PERP",
        reduce_only: bool = False,
        hint: int = 0,
        sub: int = 0,
        sender: str | None = None,
    ) -> int:
        with boa.env.prank(sender or who):
            return self.ch.place_order(
                who,
                sub,
                self.market(symbol).address,
                side == "buy",
                to_wad(size),
                to_wad(price),
                kind,
                reduce_only,
                hint,
            )

    def cancel(
        self, who: str, order_id: int, symbol: str = "BTC-PERP", sub: int = 0, sender: str | None = None
    ):
        with boa.env.prank(sender or who):
            self.ch.cancel_order(who, sub, self.market(symbol).address, order_id)

    def margin(self, who: str, sub: int = 0):
        """(equity, im, mm, withdrawable) in WAD."""
        return self.ch.margin(self.account(who, sub))

    def position(self, who: str, symbol: str = "BTC-PERP", sub: int = 0):
        return self.market(symbol).position(self.account(who, sub))

    def warp(self, seconds: int) -> None:
        boa.env.time_travel(seconds=seconds)

    def total_cash(self) -> int:
        return sum(self.ch.cash(i) for i in range(1, self.ch.account_count() + 1))


def position_changes(logs) -> list[SimpleNamespace]:
    """Every position change told by `logs` (titanoboa events), in order: each PositionChanged,
    and each Fill as the maker's change (a maker's fill emits no PositionChanged;
    keeper.model.position_change_of_fill). Fields: account, size, open_notional,
    realized_pnl, funding_paid, fee_paid."""
    out = []
    for e in logs:
        name = type(e).__name__
        if name == "PositionChanged":
            out.append(
                SimpleNamespace(
                    account=e.account,
                    size=e.size,
                    open_notional=e.open_notional,
                    realized_pnl=e.realized_pnl,
                    funding_paid=e.funding_paid,
                    fee_paid=e.fee_paid,
                )
            )
        elif name == "Fill":
            out.append(SimpleNamespace(**position_change_of_fill({k: getattr(e, k) for k in FILL_FIELDS})))
    return out


FILL_FIELDS = (
    "maker",
    "maker_size",
    "maker_open_notional",
    "maker_realized_pnl",
    "maker_funding_paid",
    "maker_fee",
)


def deploy_for_tests(decimals: int = 6, markets: tuple[MarketConfig, ...] | None = None) -> Protocol:
    backend = BoaBackend()
    reporters = {}
    for mc in markets or test_markets():
        reporters[mc.symbol] = [
            boa.env.generate_address(f"{mc.symbol}-reporter-{i}") for i in range(mc.oracle_sources)
        ]
    config = DeployConfig(
        collateral_decimals=decimals,
        markets=markets or test_markets(),
        reporters=reporters,
    )
    return Protocol(deploy_protocol(backend, config), backend, decimals)


def _fresh_transient_storage_per_call() -> None:
    """titanoboa 0.2.8 keeps transient storage (EIP-1153) across top-level
    calls (titanoboa issue #218); on a real chain it is cleared after every
    transaction. Clear it before each top-level call and deploy, so tests see
    real transaction boundaries (the market caches the index per tx)."""
    from boa.environment import Env

    if getattr(Env, "_vyperp_tstore_patch", False):
        return

    def wrap(fn):
        def wrapped(self, *args, **kwargs):
            self.evm.vm.state.clear_transient_storage()
            return fn(self, *args, **kwargs)

        return wrapped

    Env.execute_code = wrap(Env.execute_code)
    Env.deploy = wrap(Env.deploy)
    Env._vyperp_tstore_patch = True


_fresh_transient_storage_per_call()


class StorageKeyTrace:
    """boa decodes a HashMap (a storage dump on every revert, the fuzz
    helpers' reads) by walking every storage key it has seen written at the
    contract's address (`env.sstore_trace`). Reverting an anchor does not
    forget them, so each example of a stateful machine was slower than the
    last. Made at a test's start, `reset()` (at each example's start) brings
    the trace back to the keys known then: every key live at that moment,
    since each example starts from the test's start state."""

    def __init__(self) -> None:
        self._kept = {a: frozenset(keys) for a, keys in boa.env.sstore_trace.items()}

    def reset(self) -> None:
        boa.env.sstore_trace = {a: set(keys) for a, keys in self._kept.items()}


#: a market on a 1e-6 grid (tick $0.000001, lot 0.000001: tick x lot = 1e6 wei), where a
#: fill's value is not a multiple of 1e15 wei and a 1e-9 rate leaves fractions of a wei
FINE = "FINE-PERP"


def deploy_fine_grid() -> Protocol:
    """The protocol with FINE-PERP alone (index $100,000, no fees, 20 orders, 8 fills)."""
    market = MarketConfig(
        FINE,
        Decimal("100000"),
        tick_size=Decimal("0.000001"),
        lot_size=Decimal("0.000001"),
        taker_fee=Decimal("0"),
        maker_fee=Decimal("0"),
        min_order_notional=Decimal("10"),
        max_open_orders=20,
        max_fills=8,
    )
    return deploy_for_tests(6, markets=(market,))
