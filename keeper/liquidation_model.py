"""Reference model of vyperp's liquidation, insurance and ADL math
(PROTOCOL.md §9-11).

Exact integer arithmetic in WAD, no chain I/O: each function gives, to the
wei, what ``contracts/Clearinghouse.vy`` computes (differential tests compare
them), and the keepers and the ADL auditor use the same functions to decide
and to check. Names follow the contract: ``equity``, ``im``, ``mm`` are the
account's cross-margin figures at mark; ``size`` is signed (long > 0).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from keeper.model import WAD, ceil_div


@dataclass(frozen=True)
class LiquidationParams:
    """``Clearinghouse.LiquidationParams`` of one market (WAD fractions)."""

    liquidation_fee: int
    liquidator_share: int
    bankrupt_band: int
    takeover_discount: int
    small_position_notional: int


def round_up(x: int, step: int) -> int:
    return ceil_div(x, step) * step


def bankruptcy_price(mark: int, equity: int, size: int) -> int:
    """The price at which closing the whole position leaves equity at zero:
    ``mark - equity / size``, rounded in favour of the account (a long sells
    at it: rounded up; a short buys at it: rounded down); never below 0."""
    if size == 0:
        raise ValueError("bankruptcy_price: flat position")
    abs_size = abs(size)
    if equity >= 0:
        per_unit = equity * WAD // abs_size
        return mark - min(per_unit, mark) if size > 0 else mark + per_unit
    per_unit_up = ceil_div(-equity * WAD, abs_size)
    if size > 0:
        return mark + per_unit_up
    return 0 if per_unit_up >= mark else mark - per_unit_up


def close_size(q: int, abs_size: int, mark: int, small_position_notional: int) -> int:
    """What a liquidation or takeover closes: ``q``, or the whole position
    when what would be left is worth at most ``small_position_notional``."""
    if q <= 0:
        raise ValueError("zero size")
    if (abs_size - q) * mark // WAD <= small_position_notional:
        return abs_size
    return q


def restore_size(
    equity: int, im: int, mark: int, imr: int, liquidation_fee: int, lot: int, abs_size: int
) -> int:
    """Size to close so that ``equity >= IM`` again, assuming fills at mark:
    ``q x mark x (imr - fee) >= IM - equity``, rounded up to a lot; the
    whole position when the fee is not below imr or nothing is missing."""
    gap = im - equity
    if imr <= liquidation_fee or gap <= 0:
        return abs_size
    return min(abs_size, round_up(ceil_div(gap * WAD * WAD, mark * (imr - liquidation_fee)), lot))


def liquidation_limit(mark: int, equity: int, size: int, bankrupt_band: int, tick: int) -> int:
    """The IOC's price bound, on the tick grid on the safe side: the
    bankruptcy price for a solvent account, ``mark -+ bankrupt_band`` for a
    bankrupt one."""
    if equity >= 0:
        limit = bankruptcy_price(mark, equity, size)
    else:
        band = mark * bankrupt_band // WAD
        limit = mark - band if size > 0 else mark + band
    return round_up(limit, tick) if size > 0 else limit // tick * tick


def liquidation_fee(notional: int, rate: int, equity_after: int) -> int:
    """``rate x notional`` rounded up, capped at the equity left (never
    creates bad debt); 0 when no equity is left."""
    if equity_after <= 0:
        return 0
    return min(ceil_div(notional * rate, WAD), equity_after)


def keeper_share(fee: int, share: int, self_liquidation: bool) -> int:
    """The caller's part of the fee: nothing when it owns the account."""
    return 0 if self_liquidation else fee * share // WAD


def worst_case_deficit(equity: int, abs_size: int, mark: int, bankrupt_band: int) -> int:
    """What closing a bankrupt account within the band can cost the fund."""
    return -equity + abs_size * mark // WAD * bankrupt_band // WAD


def insurance_capacity(
    stored_assets_units: int, pending_cash_wad: int, payout_cap: int, precision: int
) -> int:
    """The most the fund pays for one bad-debt event, WAD:
    ``payout_cap x (assets + pending cash)``, in whole token units."""
    assets = stored_assets_units + (max(pending_cash_wad, 0) // precision)
    return assets * payout_cap // WAD * precision


def takeover_price(mark: int, equity: int, size: int, discount: int) -> int:
    """``mark x (1 -+ discount)``, bounded by the bankruptcy price while the
    account is solvent (a bankrupt account is taken over at the discount;
    the insurance fund pays its deficit)."""
    d = mark * discount // WAD
    if equity < 0:
        return mark - d if size > 0 else mark + d
    bk = bankruptcy_price(mark, equity, size)
    return max(mark - d, bk) if size > 0 else min(mark + d, bk)


ADL_ROUNDING = 4  # wei of a counterparty's equity the contract keeps for the PnL roundings


def adl_price(bankruptcy: int, mark: int, counterparty_equity: int, take: int, bankrupt_is_long: bool) -> int:
    """The price a counterparty is deleveraged at: the bankrupt account's
    bankruptcy price, but never costing the counterparty more than its
    equity (less ADL_ROUNDING wei) against the mark; what it cannot absorb
    stays with the bankrupt account for the fund, then bad_debt."""
    per_unit = max(counterparty_equity - ADL_ROUNDING, 0) * WAD // take
    if bankrupt_is_long:  # the counterparty is short and buys
        return min(bankruptcy, mark + per_unit)
    return max(bankruptcy, mark - min(per_unit, mark))


def adl_score(unrealized_pnl: int, open_notional: int, size: int, mark: int, equity: int) -> int:
    """``pnl_pct x effective_leverage`` (WAD): unrealized PnL / |open
    notional| x (|size| x mark) / equity; 0 when not profitable or not
    solvent (such positions are not ADL candidates)."""
    if size == 0 or unrealized_pnl <= 0 or equity <= 0:
        return 0
    pnl_pct = unrealized_pnl * WAD // abs(open_notional)
    notional = abs(size) * mark // WAD
    return pnl_pct * notional // equity


@dataclass(frozen=True)
class Candidate:
    account: int
    size: int  # signed
    score: int


def adl_queue(bankrupt_size: int, candidates: Iterable[Candidate]) -> list[tuple[int, int]]:
    """The ADL order (PROTOCOL.md §11): opposite-side positions with a
    positive score, highest score first (ties: lower account id first), each
    taking min(remaining, |size|) until the bankrupt size is absorbed.
    Returns [(account, size taken)]."""
    eligible = [c for c in candidates if c.score > 0 and c.size != 0 and (c.size > 0) != (bankrupt_size > 0)]
    eligible.sort(key=lambda c: (-c.score, c.account))
    remaining = abs(bankrupt_size)
    out: list[tuple[int, int]] = []
    for c in eligible:
        if remaining == 0:
            break
        take = min(remaining, abs(c.size))
        out.append((c.account, take))
        remaining -= take
    return out
