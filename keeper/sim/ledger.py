"""The solvency check of a deployment, from chain state at one block, to the wei.

The identity is the conservation invariant of the stateful fuzz tests
(tests/fuzz/test_liquidation_stateful.py, invariant 1; PROTOCOL.md §14.1-2), summed over every
market and read from a live chain instead of titanoboa's storage::

    (Σ cash - Σ open_notional - vault - bad_debt) x WAD == U - dust

with `vault` the clearinghouse's token balance x PRECISION, `U = Σ size x (cumulative_funding -
funding_snapshot)` the funding not yet settled into cash (in 10^-18 wei) and `dust` the funding
rounding residue not yet swept (``PerpMarket._funding_dust``, read from its storage slot, which
the compiler's storage layout gives). Σ -open_notional is every position's PnL (Σ size x mark
is zero, longs and shorts being equal), so the right side of

    vault + bad_debt == Σ cash + Σ PnL - unsettled funding

is the sum of every claim on the clearinghouse (the insurance fund's account included), and
`bad_debt` the part of them nobody pays. The insurance fund itself must hold exactly its booked
assets: ``token.balanceOf(fund) == fund.total_assets_stored()``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import cache
from typing import Any

from keeper.bots.scan import CallFailed, batch_call
from keeper.chain import TxError
from keeper.units import WAD


@cache
def funding_dust_slot() -> int:
    """Storage slot of ``PerpMarket._funding_dust`` (the compiler's storage layout)."""
    from vyper.cli.vyper_compile import compile_files

    from keeper import artifacts

    out = compile_files([artifacts.source_path("PerpMarket")], ("layout",))
    layout = next(iter(out.values()))["layout"]["storage_layout"]
    return int(layout["_funding_dust"]["slot"])


@dataclass(frozen=True)
class Solvency:
    """Both sides of the identity at `block` (token units, WAD, or 10^-36 for funding)."""

    block: int
    precision: int  # Clearinghouse.PRECISION: 10**(18 - token decimals)
    token_clearinghouse: int  # token units
    token_insurance: int  # token units
    insurance_assets: int  # InsuranceFund.total_assets_stored(), token units
    cash: int  # Σ cash of every account, WAD
    open_notional: int  # Σ open notional of every position, WAD
    unsettled_funding: int  # U, WAD x WAD
    funding_dust: int  # Σ dust, WAD x WAD
    bad_debt: int  # WAD
    accounts: int
    positions: int

    @property
    def backing(self) -> int:
        """(vault + bad debt) x WAD."""
        return (self.token_clearinghouse * self.precision + self.bad_debt) * WAD

    @property
    def claims(self) -> int:
        """(Σ cash + Σ PnL) x WAD - (U - dust): what every account is owed, x WAD."""
        return (self.cash - self.open_notional) * WAD - (self.unsettled_funding - self.funding_dust)

    @property
    def difference(self) -> int:
        return self.backing - self.claims

    @property
    def fund_difference(self) -> int:
        return self.token_insurance - self.insurance_assets

    @property
    def holds(self) -> bool:
        return self.difference == 0 and self.fund_difference == 0

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "difference": self.difference,
            "fund_difference": self.fund_difference,
            "holds": self.holds,
        }


def _values(results: list[Any], what: str) -> list[Any]:
    for r in results:
        if isinstance(r, CallFailed):
            raise TxError(f"solvency check: reading {what} failed: {r.reason}")
    return results


def check_solvency(ch: Any, token: Any, fund: Any, markets: dict[str, Any], block: int) -> Solvency:
    """Read every account's cash and every position of every market at `block` and both sides
    of the identity (see the module docstring)."""
    w3 = ch.w3
    n, precision, bad_debt = _values(
        batch_call(
            w3, [ch.functions.account_count(), ch.functions.PRECISION(), ch.functions.bad_debt()], block
        ),
        "the clearinghouse",
    )
    accounts = list(range(1, int(n) + 1))
    cash = _values(batch_call(w3, [ch.functions.cash(a) for a in accounts], block), "cash")
    balances = _values(
        batch_call(
            w3,
            [
                token.functions.balanceOf(ch.address),
                token.functions.balanceOf(fund.address),
                fund.functions.total_assets_stored(),
            ],
            block,
        ),
        "balances",
    )
    slot = funding_dust_slot()
    open_notional = unsettled = dust = positions = 0
    for market in markets.values():
        fns = [market.functions.cumulative_funding()]
        for a in accounts:
            fns += [market.functions.position(a), market.functions.funding_snapshot(a)]
        results = _values(batch_call(w3, fns, block), f"positions of {market.address}")
        cumulative = int(results[0])
        for k in range(len(accounts)):
            pos, snapshot = results[1 + 2 * k], int(results[2 + 2 * k])
            size, notional = int(pos[0]), int(pos[1])
            positions += size != 0
            open_notional += notional
            unsettled += size * (cumulative - snapshot)
        dust += int.from_bytes(bytes(w3.eth.get_storage_at(market.address, slot, block)), "big")
    return Solvency(
        block=block,
        precision=int(precision),
        token_clearinghouse=int(balances[0]),
        token_insurance=int(balances[1]),
        insurance_assets=int(balances[2]),
        cash=sum(int(c) for c in cash),
        open_notional=open_notional,
        unsettled_funding=unsettled,
        funding_dust=dust,
        bad_debt=int(bad_debt),
        accounts=len(accounts),
        positions=positions,
    )


__all__ = ["Solvency", "check_solvency", "funding_dust_slot"]
