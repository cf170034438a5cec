"""Fixtures of the InsuranceFund unit tests: per collateral decimals, one
session-scoped deployment of a collateral token, the fund and a real
Clearinghouse whose insurance fund it is; every test runs in its own
`boa.env.anchor()`, so state never leaks."""

from __future__ import annotations

from dataclasses import dataclass

import boa
import pytest

from keeper.deploy import BoaBackend
from keeper.units import WAD

DAY = 86_400
MAX_UINT = 2**256 - 1
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

DECIMALS_OFFSET = 6
VIRTUAL_SHARES = 10**DECIMALS_OFFSET
PAYOUT_CAP = WAD // 2
COOLDOWN = 7 * DAY
WITHDRAW_WINDOW = 2 * DAY
INSURANCE_FEE_SHARE = WAD // 2


# ---------------------------------------------------------------- the ERC-4626 math, in Python


def _div(x: int, d: int, roundup: bool) -> int:
    return -(-x // d) if roundup else x // d


def to_shares(assets: int, supply: int, total: int, roundup: bool = False) -> int:
    """assets x (supply + 10**6) / (total + 1), as the fund computes it."""
    return _div(assets * (supply + VIRTUAL_SHARES), total + 1, roundup)


def to_assets(shares: int, supply: int, total: int, roundup: bool = False) -> int:
    """shares x (total + 1) / (supply + 10**6), as the fund computes it."""
    return _div(shares * (total + 1), supply + VIRTUAL_SHARES, roundup)


def events(contract, name: str) -> list:
    """Events `name` emitted by `contract` itself during the last call made
    to it (call it before any view of the same contract: a view call is a
    call too)."""
    return [
        e
        for e in contract.get_logs(strict=False)
        if type(e).__name__ == name and getattr(e, "address", None) == contract.address
    ]


def now() -> int:
    return boa.env.timestamp


def warp(seconds: int) -> None:
    boa.env.time_travel(seconds=seconds)


# ---------------------------------------------------------------- deployment


@dataclass
class FundEnv:
    """A deployed token + InsuranceFund + Clearinghouse and the helpers tests use."""

    backend: BoaBackend
    decimals: int
    token: object
    fund: object
    ch: object
    treasury: str

    @property
    def owner(self) -> str:
        return self.backend.deployer

    def units(self, amount: int | float) -> int:
        """Whole tokens -> token units."""
        return int(amount * 10**self.decimals)

    def actor(self, name: str, tokens: int | float = 0) -> str:
        """A fresh address holding `tokens` whole tokens, fund and
        clearinghouse approved."""
        addr = boa.env.generate_address(name)
        if tokens:
            self.token.mint(addr, self.units(tokens), sender=self.owner)
        self.token.approve(self.fund.address, MAX_UINT, sender=addr)
        self.token.approve(self.ch.address, MAX_UINT, sender=addr)
        return addr

    def deposit(self, who: str, assets: int) -> int:
        """`who` deposits `assets` token units for itself; returns the shares."""
        return self.fund.deposit(assets, who, sender=who)

    def request_and_wait(self, who: str, shares: int | None = None) -> None:
        """Request `shares` (default all) and wait until the window opens."""
        self.fund.request_withdraw(self.fund.balanceOf(who) if shares is None else shares, sender=who)
        warp(self.fund.withdraw_request(who)[1] - now())

    def credit_fund_cash(self, units: int) -> None:
        """Credit the fund's clearinghouse account with `units` of cash (as
        fee inflows would), by depositing into it for owner = fund."""
        payer = boa.env.generate_address("fee-payer")
        self.token.mint(payer, units, sender=self.owner)
        self.token.approve(self.ch.address, units, sender=payer)
        self.ch.deposit(0, units, self.fund.address, sender=payer)

    def donate(self, who: str, units: int) -> None:
        """Send tokens straight to the fund (not a deposit)."""
        self.token.transfer(self.fund.address, units, sender=who)

    def cover(self, inflow: int, deficit: int, account: int = 7) -> int:
        """As the clearinghouse: push `inflow` tokens to the fund, then call cover."""
        if inflow:
            self.token.mint(self.ch.address, inflow, sender=self.owner)
            self.token.transfer(self.fund.address, inflow, sender=self.ch.address)
        return self.fund.cover(account, inflow, deficit, sender=self.ch.address)

    def supply_total(self) -> tuple[int, int]:
        """(totalSupply, totalAssets) for the Python model."""
        return self.fund.totalSupply(), self.fund.totalAssets()


def deploy_fund_env(decimals: int) -> FundEnv:
    backend = BoaBackend()
    token = backend.deploy("MockStablecoin", "USD Coin (mock)", "USDC", decimals)
    fund = backend.deploy(
        "InsuranceFund", token.address, "vyperp insurance", "vpINS", PAYOUT_CAP, COOLDOWN, WITHDRAW_WINDOW
    )
    treasury = boa.env.generate_address("treasury")
    ch = backend.deploy("Clearinghouse", token.address, fund.address, treasury, INSURANCE_FEE_SHARE)
    backend.transact(fund, "set_clearinghouse", ch.address)
    return FundEnv(backend, decimals, token, fund, ch, treasury)


@pytest.fixture(scope="session")
def _fund_env_6():
    return deploy_fund_env(6)


@pytest.fixture(scope="session")
def _fund_env_18():
    return deploy_fund_env(18)


@pytest.fixture(params=[6, 18], ids=["usdc6", "token18"])
def env(request) -> FundEnv:
    """The deployment, once with 6 and once with 18 collateral decimals."""
    e = request.getfixturevalue(f"_fund_env_{request.param}")
    with boa.env.anchor():
        yield e


@pytest.fixture
def env6(_fund_env_6) -> FundEnv:
    """The 6-decimal deployment only (for tests where decimals do not matter)."""
    with boa.env.anchor():
        yield _fund_env_6


@pytest.fixture
def depositor(env) -> str:
    return env.actor("depositor", 1_000_000)


@pytest.fixture
def attacker(env) -> str:
    return env.actor("attacker", 1_000_000)


@pytest.fixture
def victim(env) -> str:
    return env.actor("victim", 1_000_000)
