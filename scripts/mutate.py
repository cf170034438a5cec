"""The mutation run over the money path of every deployable (`make mutate`).

Each mutant is a small deliberate bug in one contract (a flipped comparison,
a rounding turned the other way, a dropped assert or storage write, a wrong
sign, an off-by-one in a bound): a few exact-text edits under contracts/,
each of which must occur exactly once (so the list cannot rot while the
contracts change: tests/integration/test_mutate.py checks it in `make test`).
Every rounding docs/PROTOCOL.md §2 promises has at least one mutant.

The run first takes one snapshot of the working tree (every file git knows
or would add, as it is on disk), so that every mutant sees the same tree
while people keep editing, and checks that its tests collect (else exit
status 2: nothing to learn from the mutants). Each mutant is built in a copy
of the snapshot (contracts/ is never touched) and runs

    python -m pytest -q -x -p no:cacheprovider <its contract's tests> tests/e2e

there, with HYPOTHESIS_PROFILE=mutation (tests/conftest.py: the quick
profile, derandomized, without shrinking) and a time limit per mutant.

Verdicts: "caught" when a test of the chosen files fails or errors (exit
status 1, a test id in the summary); "timeout" when the run passes the time
limit (killed; counted as caught: a mutant that makes a test loop or stall
changed behaviour); "survived" when every test passes (exit status 0);
"broken" when the mutant does not compile, a test file does not import or
pytest fails otherwise (not caught: fix the mutant). The score is (caught + timeout) / mutants run; exit status 0 only when it is
at least 95%. The table (name, contract, what, verdict, seconds, first
failing test) is printed and written to out/mutation.md after each mutant.

    .venv/bin/python scripts/mutate.py                 # every mutant, hours
    .venv/bin/python scripts/mutate.py pm-taker-fee-floor io-quorum-strict
    .venv/bin/python scripts/mutate.py --list
    .venv/bin/python scripts/mutate.py -n 2 --timeout-s 300 --keep /tmp/mutants
    .venv/bin/python scripts/mutate.py --base /tmp/tree   # mutants of another tree
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository's root is on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.mutants_common import REPO, Edit, apply_edits, copy_tree, run_pytest  # noqa: E402

PM = "tests/unitary/perp_market"
CH = "tests/unitary/clearinghouse"  # the liquidation engine's tests live here too
FR = "tests/unitary/funding_rate"
IO = "tests/unitary/index_oracle"
IF = "tests/unitary/insurance_fund"
E2E = "tests/e2e"
MIN_SCORE = 0.95
REPORT = REPO / "out" / "mutation.md"


@dataclass(frozen=True)
class Mutant:
    name: str  # a short name
    contract: str  # its path under contracts/
    what: str  # what it breaks, in words
    tests: tuple[str, ...]  # the unit tests that should catch it (tests/e2e runs too)
    edits: tuple[Edit, ...]  # (exact text, replacement): each text occurs once


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    verdict: str  # caught, timeout, survived, broken
    seconds: float
    detail: str  # the first failing test, or why not caught


def _m(name: str, contract: str, what: str, tests: tuple[str, ...], old: str, new: str) -> Mutant:
    """A mutant of one edit."""
    return Mutant(name, contract, what, tests, ((old, new),))


MUTANTS: tuple[Mutant, ...] = (
    # ---------------------------------------------------------------- PerpMarket: roundings (§2, §6, §8)
    _m(
        "pm-taker-fee-floor",
        "PerpMarket.vy",
        "the taker fee rounded down, not up",
        (PM,),
        "tfee = self._ceil_div(filled_value * ((pw >> pl.K_TAKER) & pl.M24), pl.RATE)",
        "tfee = filled_value * ((pw >> pl.K_TAKER) & pl.M24) // pl.RATE",
    ),
    _m(
        "pm-maker-fee-floor",
        "PerpMarket.vy",
        "the maker fee rounded down, not up",
        (PM,),
        "mfee: uint256 = (fill_value * ((pw >> pl.K_MAKER) & pl.M24) + pl.RATE - 1) // pl.RATE",
        "mfee: uint256 = fill_value * ((pw >> pl.K_MAKER) & pl.M24) // pl.RATE",
    ),
    _m(
        "pm-removed-trunc",
        "PerpMarket.vy",
        "a reduction's removed cost basis truncated toward zero, not rounded toward +inf",
        (PM,),
        "removed = self._ceil_div_signed(on * abs(delta), abs(size))",
        "removed = on * abs(delta) // abs(size)",
    ),
    _m(
        "pm-removed-floor",
        "PerpMarket.vy",
        "a reduction's removed cost basis rounded toward -inf, not +inf",
        (PM,),
        "removed = self._ceil_div_signed(on * abs(delta), abs(size))",
        "removed = self._floor_div_signed(on * abs(delta), abs(size))",
    ),
    _m(
        "pm-flip-close-floor",
        "PerpMarket.vy",
        "a flip's closed value rounded toward -inf, not +inf (for the account)",
        (PM,),
        "close_value: int256 = self._ceil_div_signed(signed_value * abs(size), abs(delta))",
        "close_value: int256 = self._floor_div_signed(signed_value * abs(size), abs(delta))",
    ),
    _m(
        "pm-transfer-value-floor",
        "PerpMarket.vy",
        "a transfer's value rounded down both ways (a seller of the account not rounded up)",
        (PM,),
        "v = self._ceil_div(v, WAD) if size > 0 else v // WAD",
        "v = v // WAD",
    ),
    _m(
        "pm-transfer-value-swapped",
        "PerpMarket.vy",
        "a transfer's value rounded against the account, not for it",
        (PM,),
        "v = self._ceil_div(v, WAD) if size > 0 else v // WAD",
        "v = v // WAD if size > 0 else self._ceil_div(v, WAD)",
    ),
    _m(
        "pm-funding-paid-floor",
        "PerpMarket.vy",
        "funding settled to cash rounded toward -inf (a payer rounded down)",
        (FR, PM),
        "paid: int256 = self._ceil_div_signed(exact, SWAD)",
        "paid: int256 = self._floor_div_signed(exact, SWAD)",
    ),
    _m(
        "pm-funding-owed-floor",
        "PerpMarket.vy",
        "funding owed in equity rounded toward -inf (a payer rounded down)",
        (FR, PM),
        "return self._ceil_div_signed(size * (self._cum(fw) - self.funding_snapshot[account]), SWAD)",
        "return self._floor_div_signed(size * (self._cum(fw) - self.funding_snapshot[account]), SWAD)",
    ),
    _m(
        "pm-funding-dust-kept",
        "PerpMarket.vy",
        "the funding residue swept to the insurance fund but also kept (swept again later)",
        (FR, PM),
        "    self._funding_dust = dust % WAD\n",
        "    self._funding_dust = dust\n",
    ),
    _m(
        "pm-upnl-ceil",
        "PerpMarket.vy",
        "unrealized PnL size x mark rounded up, not down",
        (PM,),
        "return self._floor_div_signed(size * convert(mark, int256), SWAD) - self._notional(word)",
        "return self._ceil_div_signed(size * convert(mark, int256), SWAD) - self._notional(word)",
    ),
    _m(
        "pm-notional-floor",
        "PerpMarket.vy",
        "the position notional for margins rounded down, not up",
        (PM,),
        "notional: uint256 = self._ceil_div(convert(abs(size), uint256) * mark, WAD)",
        "notional: uint256 = convert(abs(size), uint256) * mark // WAD",
    ),
    _m(
        "pm-im-floor",
        "PerpMarket.vy",
        "the initial margin rounded down, not up",
        (PM,),
        "im=self._ceil_div((notional + max(bids, asks)) * (pw & pl.M30), pl.RATE) + risk,",
        "im=(notional + max(bids, asks)) * (pw & pl.M30) // pl.RATE + risk,",
    ),
    _m(
        "pm-mm-floor",
        "PerpMarket.vy",
        "the maintenance margin rounded down, not up",
        (PM,),
        "mm=self._ceil_div(notional * ((pw >> pl.K_MMR) & pl.M30), pl.RATE) + risk,",
        "mm=notional * ((pw >> pl.K_MMR) & pl.M30) // pl.RATE + risk,",
    ),
    _m(
        "pm-band-lo-floor",
        "PerpMarket.vy",
        "the price band's lowest tick rounded down, not up (a bid just below the band rests)",
        (PM,),
        "lo: uint256 = (index - band + TICK_SIZE - 1) // TICK_SIZE",
        "lo: uint256 = (index - band) // TICK_SIZE",
    ),
    _m(
        "pm-band-hi-ceil",
        "PerpMarket.vy",
        "the price band's highest tick rounded up, not down (an ask just above the band rests)",
        (PM,),
        "hi: uint256 = (index + band) // TICK_SIZE",
        "hi: uint256 = (index + band + TICK_SIZE - 1) // TICK_SIZE",
    ),
    # ---------------------------------------------------------------- PerpMarket: checks and writes
    _m(
        "pm-mm-no-order-risk",
        "PerpMarket.vy",
        "the maintenance margin without the order risk of resting orders",
        (PM,),
        "mm=self._ceil_div(notional * ((pw >> pl.K_MMR) & pl.M30), pl.RATE) + risk,",
        "mm=self._ceil_div(notional * ((pw >> pl.K_MMR) & pl.M30), pl.RATE),",
    ),
    _m(
        "pm-maker-fee-not-charged",
        "PerpMarket.vy",
        "the maker fee booked to the house but not charged to the maker",
        (PM,),
        "unsafe_add(realized - fpaid - convert(mfee, int256), DELTA_OFFSET)",
        "unsafe_add(realized - fpaid, DELTA_OFFSET)",
    ),
    _m(
        "pm-snapshot-not-written",
        "PerpMarket.vy",
        "the funding snapshot not moved on settlement (funding charged again)",
        (FR, PM),
        "    self.funding_snapshot[account] = cum\n",
        "",
    ),
    _m(
        "pm-oi-shorts-kept",
        "PerpMarket.vy",
        "open interest: a short reduced or closed leaves the short side unchanged",
        (PM,),
        "        shorts -= convert(-size, uint256)\n",
        "        pass\n",
    ),
    _m(
        "pm-self-trade-fills",
        "PerpMarket.vy",
        "self-trade prevention removed (a taker fills its own resting order)",
        (PM,),
        "            if maker == account:\n",
        "            if False:\n",
    ),
    _m(
        "pm-post-only-crosses",
        "PerpMarket.vy",
        "a crossing post-only order is accepted (it takes)",
        (PM,),
        '        assert not crosses, "post-only would cross"\n',
        "        pass\n",
    ),
    _m(
        "pm-reduce-only-whole-refused",
        "PerpMarket.vy",
        "a reduce-only order of the whole position refused (<= became <)",
        (PM,),
        "size <= convert(abs(size0), uint256), ",
        "size < convert(abs(size0), uint256), ",
    ),
    _m(
        "pm-max-orders-off-by-one",
        "PerpMarket.vy",
        "one resting order more than max_open_orders allowed (< became <=)",
        (PM,),
        "< ((pw >> pl.K_ORDERS) & pl.M10), ",
        "<= ((pw >> pl.K_ORDERS) & pl.M10), ",
    ),
    _m(
        "pm-mark-last-trade",
        "PerpMarket.vy",
        "the mark is the last trade, not the median of bid, ask and last",
        (PM,),
        "    m: uint256 = max(min(bid, ask), min(max(bid, ask), last))\n",
        "    m: uint256 = last\n",
    ),
    _m(
        "pm-mark-no-floor",
        "PerpMarket.vy",
        "the mark not clamped from below (index x (1 - mark_band))",
        (PM, CH),
        "    return min(max(m, index - band), index + band)\n",
        "    return min(m, index + band)\n",
    ),
    # ---------------------------------------------------------------- modules
    _m(
        "bl-reduce-only-is-buy",
        "modules/book_layout.vy",
        "the reduce-only bit of an order word is its is_buy bit",
        (PM,),
        "O_RO: constant(uint256) = 249",
        "O_RO: constant(uint256) = 248",
    ),
    _m(
        "bl-kept-in-count",
        "modules/book_layout.vy",
        "the account word's kept flag inside the order count (an account's orders counted 16,384 too many)",
        (PM,),
        "A_KEPT: constant(uint256) = 1 << 15",
        "A_KEPT: constant(uint256) = 1 << 14",
    ),
    _m(
        "pl-order-risk-k-floor",
        "modules/params_layout.vy",
        "the order risk's rate k rounded down, not up",
        (PM, CH),
        "k: uint256 = self._ceil_div((pb + ((pw >> K_BAND) & M30)) * RATE, RATE - pb) + ((pw >> K_MAKER) & M24)",
        "k: uint256 = (pb + ((pw >> K_BAND) & M30)) * RATE // (RATE - pb) + ((pw >> K_MAKER) & M24)",
    ),
    _m(
        "pl-order-risk-floor",
        "modules/params_layout.vy",
        "the order risk rounded down, not up",
        (PM, CH),
        "return self._ceil_div((bids + asks) * k, RATE)",
        "return (bids + asks) * k // RATE",
    ),
    _m(
        "pl-order-risk-one-side",
        "modules/params_layout.vy",
        "the order risk of one side only (the larger), not both",
        (PM, CH),
        "return self._ceil_div((bids + asks) * k, RATE)",
        "return self._ceil_div(max(bids, asks) * k, RATE)",
    ),
    _m(
        "pl-decode-mmr-is-imr",
        "modules/params_layout.vy",
        "Lens.market_params reports the imr as the mmr",
        (PM, CH),
        "mmr=((pw >> K_MMR) & M30) * RATE_WEI,",
        "mmr=(pw & M30) * RATE_WEI,",
    ),
    # ---------------------------------------------------------------- Clearinghouse
    _m(
        "ch-funding-paid-sign",
        "Clearinghouse.vy",
        "settled funding added to the payer's cash instead of taken",
        (FR, CH),
        "self.cash[account] -= paid",
        "self.cash[account] += paid",
    ),
    _m(
        "ch-insurance-share-ceil",
        "Clearinghouse.vy",
        "the insurance fund's share of fees rounded up, not down",
        (CH, PM),
        "to_insurance: uint256 = r.fees * self.insurance_fee_share // WAD",
        "to_insurance: uint256 = (r.fees * self.insurance_fee_share + WAD - 1) // WAD",
    ),
    _m(
        "ch-treasury-fee-dropped",
        "Clearinghouse.vy",
        "the treasury's share of fees not booked (cash lost)",
        (CH, PM),
        "        self.cash[treasury_account] += convert(r.fees - to_insurance, int256)\n",
        "",
    ),
    _m(
        "ch-deposit-unscaled",
        "Clearinghouse.vy",
        "a deposit credited in token units, not scaled to WAD",
        (CH,),
        "new_cash: int256 = self.cash[account] + convert(amount * PRECISION, int256)",
        "new_cash: int256 = self.cash[account] + convert(amount, int256)",
    ),
    _m(
        "ch-withdraw-im-strict",
        "Clearinghouse.vy",
        "a withdrawal down to exactly the initial margin refused (>= became >)",
        (CH,),
        'assert equity - amount >= convert(im, int256), "below initial margin"',
        'assert equity - amount > convert(im, int256), "below initial margin"',
    ),
    _m(
        "ch-withdraw-profit",
        "Clearinghouse.vy",
        "unrealized profit withdrawable (the cash check dropped)",
        (CH,),
        '    assert self.cash[account] >= amount, "unrealized profit not withdrawable"\n',
        "",
    ),
    _m(
        "ch-withdrawable-no-cash-cap",
        "Clearinghouse.vy",
        "margin()'s withdrawable not capped at cash (unrealized profit shown withdrawable)",
        (CH, PM),
        "    free: int256 = min(cash, equity - convert(im, int256))\n",
        "    free: int256 = equity - convert(im, int256)\n",
    ),
    _m(
        "ch-liquidatable-at-mm",
        "Clearinghouse.vy",
        "health() flags an account at exactly its maintenance margin (< became <=)",
        (CH,),
        "h.liquidatable = h.equity < convert(h.maintenance_margin, int256)",
        "h.liquidatable = h.equity <= convert(h.maintenance_margin, int256)",
    ),
    _m(
        "ch-close-below-zero",
        "Clearinghouse.vy",
        "an order that only reduces risk may leave the account below zero",
        (CH,),
        '        assert equity >= 0, "order would leave the account below zero"\n',
        "        pass\n",
    ),
    _m(
        "ch-trade-pause-ignored",
        "Clearinghouse.vy",
        "risk-increasing orders go through while trading is paused",
        (CH,),
        '        assert word & TRADE_PAUSED == 0, "trading paused"\n',
        "        pass\n",
    ),
    _m(
        "ch-cover-floor",
        "Clearinghouse.vy",
        "bad debt asked of the insurance fund in token units rounded down, not up",
        (CH,),
        "self._ceil_div(deficit, PRECISION))",
        "deficit // PRECISION)",
    ),
    _m(
        "ch-liquidator-share-ceil",
        "Clearinghouse.vy",
        "the liquidator's share of the fee rounded up, not down",
        (CH,),
        "keeper_fee = fee * liquidator_share // WAD",
        "keeper_fee = (fee * liquidator_share + WAD - 1) // WAD",
    ),
    _m(
        "ch-liquidation-fee-lost",
        "Clearinghouse.vy",
        "the insurance fund's part of a liquidation fee not booked (cash lost)",
        (CH,),
        "        self.cash[insurance_account] += convert(fee - keeper_fee, int256)\n",
        "",
    ),
    _m(
        "ch-funding-residue-lost",
        "Clearinghouse.vy",
        "the funding residue of a settlement not booked to the insurance fund",
        (FR, CH),
        "            if residue != 0:\n                self.cash[insurance_account] += convert(residue, int256)\n",
        "            if residue != 0:\n                pass\n",
    ),
    _m(
        "ch-engine-delay-strict",
        "Clearinghouse.vy",
        "a replacement engine refused at exactly its delay (>= became >)",
        (CH,),
        "block.timestamp >= self.pending_liquidation_engine_at",
        "block.timestamp > self.pending_liquidation_engine_at",
    ),
    # ---------------------------------------------------------------- LiquidationEngine: roundings (§10, §11)
    _m(
        "le-fee-floor",
        "LiquidationEngine.vy",
        "the liquidation fee rounded down, not up",
        (CH,),
        "return min(self._ceil_div(notional * lp.liquidation_fee, WAD), convert(equity, uint256))",
        "return min(notional * lp.liquidation_fee // WAD, convert(equity, uint256))",
    ),
    _m(
        "le-short-limit-up",
        "LiquidationEngine.vy",
        "a short's liquidation limit rounded up onto the tick grid (beyond its bankruptcy price)",
        (CH,),
        "limit = limit // tick * tick",
        "limit = self._round_up(limit, tick)",
    ),
    _m(
        "le-long-limit-down",
        "LiquidationEngine.vy",
        "a long's liquidation limit rounded down onto the tick grid (beyond its bankruptcy price)",
        (CH,),
        "limit = self._round_up(limit, tick)",
        "limit = limit // tick * tick",
    ),
    _m(
        "le-adl-per-unit-ceil",
        "LiquidationEngine.vy",
        "an ADL counterparty's equity per unit rounded up (it may end below zero)",
        (CH,),
        "per_unit: uint256 = convert(max(ce - ADL_ROUNDING, 0), uint256) * WAD // take",
        "per_unit: uint256 = self._ceil_div(convert(max(ce - ADL_ROUNDING, 0), uint256) * WAD, take)",
    ),
    _m(
        "le-adl-short-uncapped",
        "LiquidationEngine.vy",
        "a short ADL counterparty pays the bankruptcy price whatever its equity",
        (CH,),
        "cp: uint256 = min(price, v.mark + per_unit)",
        "cp: uint256 = price",
    ),
    _m(
        "le-adl-long-uncapped",
        "LiquidationEngine.vy",
        "a long ADL counterparty pays the bankruptcy price whatever its equity",
        (CH,),
        "cp = max(price, v.mark - min(per_unit, v.mark))",
        "cp = price",
    ),
    _m(
        "le-adl-rounding-zero",
        "LiquidationEngine.vy",
        "no wei of an ADL counterparty's equity kept for the PnL roundings",
        (CH,),
        "ADL_ROUNDING: constant(int256) = 4",
        "ADL_ROUNDING: constant(int256) = 0",
    ),
    _m(
        "le-bankruptcy-solvent-ceil",
        "LiquidationEngine.vy",
        "a solvent account's bankruptcy price: equity per unit rounded up (against the account)",
        (CH,),
        "per_unit: uint256 = convert(equity, uint256) * WAD // abs_size",
        "per_unit: uint256 = self._ceil_div(convert(equity, uint256) * WAD, abs_size)",
    ),
    _m(
        "le-bankruptcy-deficit-floor",
        "LiquidationEngine.vy",
        "a bankrupt account's bankruptcy price: deficit per unit rounded down (against the account)",
        (CH,),
        "per_unit_up: uint256 = self._ceil_div(convert(-equity, uint256) * WAD, abs_size)",
        "per_unit_up: uint256 = convert(-equity, uint256) * WAD // abs_size",
    ),
    # ---------------------------------------------------------------- LiquidationEngine: checks
    _m(
        "le-fee-uncapped",
        "LiquidationEngine.vy",
        "the liquidation fee not capped at the equity left (the fee creates bad debt)",
        (CH,),
        "return min(self._ceil_div(notional * lp.liquidation_fee, WAD), convert(equity, uint256))",
        "return self._ceil_div(notional * lp.liquidation_fee, WAD)",
    ),
    _m(
        "le-small-position-rule",
        "LiquidationEngine.vy",
        "the small-position rule dropped (a liquidation leaves dust)",
        (CH,),
        "    if (abs_size - q) * mark // WAD <= lp.small_position_notional:\n",
        "    if False:\n",
    ),
    _m(
        "le-close-whole",
        "LiquidationEngine.vy",
        "a solvent account closed whole, not just enough to restore its initial margin",
        (CH,),
        "            q = min(q, self._round_up(",
        "            q = max(q, self._round_up(",
    ),
    _m(
        "le-restore-size-lot-down",
        "LiquidationEngine.vy",
        "the size that restores initial margin rounded down to the lot, not up (too little closed)",
        (CH,),
        "q = min(q, self._round_up(self._ceil_div(convert(gap, uint256) * WAD * WAD, v.mark * (imr - lp.liquidation_fee)), lot))",
        "q = min(q, self._ceil_div(convert(gap, uint256) * WAD * WAD, v.mark * (imr - lp.liquidation_fee)) // lot * lot)",
    ),
    _m(
        "le-takeover-discount-sign",
        "LiquidationEngine.vy",
        "a long taken over at mark x (1 + discount), not (1 - discount)",
        (CH,),
        "price = max(v.mark - discount, bk)",
        "price = max(v.mark + discount, bk)",
    ),
    _m(
        "le-takeover-own-account",
        "LiquidationEngine.vy",
        "an owner may take over its own account",
        (CH,),
        '    assert owner != msg.sender, "takeover: own account"\n',
        "",
    ),
    _m(
        "le-adl-order-unchecked",
        "LiquidationEngine.vy",
        "ADL candidates in any order (scores not checked non-increasing)",
        (CH,),
        '        assert score <= prev, "adl: candidates out of order"\n',
        "",
    ),
    _m(
        "le-settle-open-account",
        "LiquidationEngine.vy",
        "settle_bad_debt books the deficit of an account with positions or orders",
        (CH,),
        '    assert im == 0, "settle: account has positions or orders"\n',
        "",
    ),
    # ---------------------------------------------------------------- FundingRate
    _m(
        "fr-settle-at-due-refused",
        "FundingRate.vy",
        "settle() refused at exactly next_funding_time (>= became >)",
        (FR,),
        'assert block.timestamp >= nft, "funding: too early"',
        'assert block.timestamp > nft, "funding: too early"',
    ),
    _m(
        "fr-sample-interval-strict",
        "FundingRate.vy",
        "a sample refused at exactly sample_interval after the last (>= became >)",
        (FR,),
        "assert block.timestamp >= (samples & M64) + p.sample_interval",
        "assert block.timestamp > (samples & M64) + p.sample_interval",
    ),
    _m(
        "fr-due-off-by-one",
        "FundingRate.vy",
        "the due intervals counted one short",
        (FR,),
        "(block.timestamp - nft) // p.funding_interval + 1, MAX_CATCHUP)",
        "(block.timestamp - nft) // p.funding_interval, MAX_CATCHUP)",
    ),
    _m(
        "fr-clamp-sign",
        "FundingRate.vy",
        "the clamped interest part subtracted from the premium, not added",
        (FR,),
        "f_period: int256 = premium + max(-clamp_, min(clamp_, p.interest_rate - premium))",
        "f_period: int256 = premium - max(-clamp_, min(clamp_, p.interest_rate - premium))",
    ),
    _m(
        "fr-cap-no-floor",
        "FundingRate.vy",
        "a negative rate not capped at -cap",
        (FR,),
        "    return max(-cap_, min(cap_, f))\n",
        "    return min(cap_, f)\n",
    ),
    _m(
        "fr-catch-up-one-interval",
        "FundingRate.vy",
        "next_funding_time moves one interval whatever the intervals settled",
        (FR,),
        "self._pack_settled(nft + due * p.funding_interval, rate, premium)",
        "self._pack_settled(nft + p.funding_interval, rate, premium)",
    ),
    _m(
        "fr-samples-not-reset",
        "FundingRate.vy",
        "a settlement keeps its samples (they count again in the next interval)",
        (FR,),
        "    self._samples = (convert(OFF128, uint256) << 128) | (samples & M64)\n",
        "",
    ),
    _m(
        "fr-delta-one-truncation",
        "FundingRate.vy",
        "the accumulator's delta truncated once, not each part (rate, then base x (due - 1))",
        (FR,),
        "delta: int256 = rate * i // SWAD + (base * i // SWAD) * convert(due - 1, int256)",
        "delta: int256 = (rate * i + base * i * convert(due - 1, int256)) // SWAD",
    ),
    _m(
        "fr-premium-band-sign",
        "FundingRate.vy",
        "impact_band premium: an ask below the index adds to the premium, not subtracts",
        (FR,),
        "premium = (max(0, b - i) - max(0, i - a)) * SWAD // i",
        "premium = (max(0, b - i) + max(0, i - a)) * SWAD // i",
    ),
    # ---------------------------------------------------------------- IndexOracle
    _m(
        "io-even-median-up",
        "IndexOracle.vy",
        "an even count's median (mean of the middle two) rounded up, not down",
        (IO,),
        "return (unsafe_add(lo, hi) // 2, oldest, m,",
        "return ((unsafe_add(lo, hi) + 1) // 2, oldest, m,",
    ),
    _m(
        "io-max-age-exclusive",
        "IndexOracle.vy",
        "a source exactly max_age old counted stale (> became >=)",
        (IO,),
        "block.timestamp - t > max_age_:",
        "block.timestamp - t >= max_age_:",
    ),
    _m(
        "io-report-now-refused",
        "IndexOracle.vy",
        "a report timestamped now refused as future (<= became <)",
        (IO,),
        'assert timestamp <= block.timestamp, "oracle: future timestamp"',
        'assert timestamp < block.timestamp, "oracle: future timestamp"',
    ),
    _m(
        "io-equal-timestamp-refused",
        "IndexOracle.vy",
        "a report with its source's previous timestamp refused (>= became >)",
        (IO,),
        'assert timestamp >= word & TS_MASK, "oracle: timestamp went backwards"',
        'assert timestamp > word & TS_MASK, "oracle: timestamp went backwards"',
    ),
    _m(
        "io-quorum-strict",
        "IndexOracle.vy",
        "exactly quorum fresh sources refused (>= became >)",
        (IO,),
        'assert fresh >= (config >> 8) & 255, "oracle: below quorum"',
        'assert fresh > (config >> 8) & 255, "oracle: below quorum"',
    ),
    _m(
        "io-spread-strict",
        "IndexOracle.vy",
        "two middle prices exactly max_spread apart refused (<= became <)",
        (IO,),
        "hi * WAD <= lo * (WAD + self._max_spread * BPS))",
        "hi * WAD < lo * (WAD + self._max_spread * BPS))",
    ),
    _m(
        "io-reference-twice-as-fast",
        "IndexOracle.vy",
        "the reference price moves twice its reference_rate per hour",
        (IO,),
        "* BPS * elapsed // 3600",
        "* BPS * elapsed // 1800",
    ),
    _m(
        "io-cache-outlives-sources",
        "IndexOracle.vy",
        "the cached index expires max_age after now, not after its oldest source",
        (IO,),
        "self._cache = (price << TS_BITS) | (oldest + ((config >> C_MAX_AGE) & MASK24))",
        "self._cache = (price << TS_BITS) | (block.timestamp + ((config >> C_MAX_AGE) & MASK24))",
    ),
    _m(
        "io-reference-follows-disagreement",
        "IndexOracle.vy",
        "the reference price follows a median whose middle prices disagree",
        (IO,),
        "if fresh == 0 or fresh < (config >> 8) & 255 or not agree:",
        "if fresh == 0 or fresh < (config >> 8) & 255:",
    ),
    _m(
        "io-feed-scale-off-by-one",
        "IndexOracle.vy",
        "a Chainlink answer scaled by 10^(17 - decimals), not 10^(18 - decimals)",
        (IO,),
        "scale: uint256 = 10 ** convert(18 - dec, uint256)",
        "scale: uint256 = 10 ** convert(17 - dec, uint256)",
    ),
    # ---------------------------------------------------------------- InsuranceFund (rounded for the vault, §11.0)
    _m(
        "if-deposit-round-up",
        "InsuranceFund.vy",
        "deposit's shares rounded up, not down",
        (IF,),
        "shares: uint256 = self._to_shares(assets, self.total_assets_stored, False)",
        "shares: uint256 = self._to_shares(assets, self.total_assets_stored, True)",
    ),
    _m(
        "if-mint-round-down",
        "InsuranceFund.vy",
        "mint's assets rounded down, not up",
        (IF,),
        "assets: uint256 = self._to_assets(shares, self.total_assets_stored, True)",
        "assets: uint256 = self._to_assets(shares, self.total_assets_stored, False)",
    ),
    _m(
        "if-withdraw-round-down",
        "InsuranceFund.vy",
        "withdraw's burned shares rounded down, not up",
        (IF,),
        "shares: uint256 = self._to_shares(assets, self.total_assets_stored, True)",
        "shares: uint256 = self._to_shares(assets, self.total_assets_stored, False)",
    ),
    _m(
        "if-redeem-round-up",
        "InsuranceFund.vy",
        "redeem's assets rounded up, not down",
        (IF,),
        "assets: uint256 = self._to_assets(shares, self.total_assets_stored, False)",
        "assets: uint256 = self._to_assets(shares, self.total_assets_stored, True)",
    ),
    _m(
        "if-cover-cap-round-up",
        "InsuranceFund.vy",
        "the payout cap of a cover rounded up, not down",
        (IF,),
        "math._mul_div(total, self.payout_cap, WAD, False)",
        "math._mul_div(total, self.payout_cap, WAD, True)",
    ),
    _m(
        "if-one-virtual-share",
        "InsuranceFund.vy",
        "one virtual share, not 10^6 (the inflation defence weakened)",
        (IF,),
        "VIRTUAL_SHARES: constant(uint256) = 10**6",
        "VIRTUAL_SHARES: constant(uint256) = 1",
    ),
    _m(
        "if-cooldown-strict",
        "InsuranceFund.vy",
        "a withdrawal refused at exactly its unlock time (>= became >)",
        (IF,),
        'assert block.timestamp >= r.unlock_time, "insurance: cooldown not over"',
        'assert block.timestamp > r.unlock_time, "insurance: cooldown not over"',
    ),
    _m(
        "if-window-strict",
        "InsuranceFund.vy",
        "a withdrawal refused in the last second of its window (<= became <)",
        (IF,),
        'assert block.timestamp <= r.expiry_time, "insurance: withdraw window expired"',
        'assert block.timestamp < r.expiry_time, "insurance: withdraw window expired"',
    ),
    _m(
        "if-hold-ignored",
        "InsuranceFund.vy",
        "withdraw and redeem go through while an account is on hold",
        (IF,),
        '    assert self.hold_count == 0, "insurance: account on hold, withdrawals wait"\n',
        "",
    ),
    _m(
        "if-requested-shares-unlocked",
        "InsuranceFund.vy",
        "shares under a withdraw request may be transferred",
        (IF,),
        "        return 0\n    return r.shares\n",
        "        return 0\n    return 0\n",
    ),
    _m(
        "if-collect-not-booked",
        "InsuranceFund.vy",
        "collected tokens not booked into the assets",
        (IF,),
        "    self.total_assets_stored = total\n    log IInsuranceFund.Collected",
        "    log IInsuranceFund.Collected",
    ),
    # ---------------------------------------------------------------- Lens (views)
    _m(
        "lens-hint-past-the-price",
        "Lens.vy",
        "find_hint walks past the order's price (a hint worse than the price)",
        (PM,),
        "if nxt == 0 or not self._at_or_better(nxt, tick, is_buy):",
        "if nxt == 0:",
    ),
    _m(
        "lens-orders-of-anyone",
        "Lens.vy",
        "orders_of lists every account's orders",
        (PM, CH),
        "if o != 0 and ((o >> layout.O_ACCT) & layout.M48) == account:",
        "if o != 0:",
    ),
)


def apply(m: Mutant, source: str) -> str:
    """The mutant's source; each edit's text must occur exactly once."""
    return apply_edits(m.name, m.contract, m.edits, source)


def _first_test(output: str) -> str:
    """The first failing or erroring test of a run and pytest's reason (short
    summary); a test file that does not import has no test id (no `::`)."""
    hit = re.search(r"^(?:FAILED|ERROR) (\S+::\S+)(?: - (.*))?$", output, re.M)
    if hit is None:
        return ""
    return f"{hit.group(1)}: {hit.group(2)[:100]}" if hit.group(2) else hit.group(1)


def verdict(code: int | None, output: str, tests: tuple[str, ...]) -> tuple[str, str]:
    """(caught | timeout | survived | broken, the first failing test or why)."""
    if code is None:
        return "timeout", "(killed at the time limit)"
    compile_error = re.search(r"^E\s+(vyper\.exceptions\.\S+.*)$", output, re.M)
    if compile_error:
        return "broken", compile_error.group(1)[:140]
    first = _first_test(output)
    if code == 1 and first.startswith(tests):
        return "caught", first
    summary = (output.strip().splitlines() or ["(no output)"])[-1]
    return ("survived" if code == 0 else "broken"), f"exit {code}: {summary}"


def run(m: Mutant, base: Path, work: Path, timeout_s: float) -> Outcome:
    """Build the mutant in a copy of the snapshot `base` and run its tests there."""
    tree = work / m.name
    shutil.copytree(base, tree, dirs_exist_ok=True)
    path = tree / "contracts" / m.contract
    path.write_text(apply(m, path.read_text()))
    tests = (*m.tests, E2E)
    args = ["-q", "-x", "-p", "no:cacheprovider", *tests]
    code, out, err, seconds = run_pytest(tree, args, timeout_s, {"HYPOTHESIS_PROFILE": "mutation"})
    (work / f"{m.name}.log").write_text(out + err)
    v, detail = verdict(code, out, tests)
    return Outcome(m, v, seconds, detail)


def score(outcomes: list[Outcome]) -> tuple[int, int]:
    """(caught, including timeouts; mutants run)."""
    return sum(o.verdict in ("caught", "timeout") for o in outcomes), len(outcomes)


def table(outcomes: list[Outcome], planned: int) -> str:
    """The markdown report: the score, then one row per mutant run."""
    caught, total = score(outcomes)
    rows = [
        "# Mutation run (`make mutate`, scripts/mutate.py)",
        "",
        f"{total} of {planned} mutants run; score {caught} / {total}"
        + (f" = {caught / total:.1%}" if total else "")
        + f" (needed: {MIN_SCORE:.0%}; a timeout counts as caught, a broken mutant does not).",
        "",
        "| name | contract | what | verdict | seconds | first failing test |",
        "| --- | --- | --- | --- | ---: | --- |",
    ]
    for o in outcomes:
        cells = (o.mutant.name, o.mutant.contract, o.mutant.what, o.verdict, f"{o.seconds:.0f}", o.detail)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"


def _collects(base: Path, chosen: list[Mutant]) -> str:
    """'' when every test the mutants run collects in `base`, else pytest's errors."""
    tests = sorted({t for m in chosen for t in m.tests} | {E2E})
    args = ["--collect-only", "-q", "-p", "no:cacheprovider", *tests]
    code, out, err, _ = run_pytest(base, args, 600, {"HYPOTHESIS_PROFILE": "mutation"})
    return "" if code == 0 else f"exit {code}\n{out[-3000:]}{err[-2000:]}"


def _args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="mutant names, run in this order (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument(
        "--keep", type=Path, help="build the mutants and their logs here (default: a temporary directory)"
    )
    ap.add_argument("--timeout-s", type=float, default=600, help="time limit per mutant (default 600 s)")
    ap.add_argument("-n", "--workers", type=int, default=1, help="mutants run at once (default 1)")
    ap.add_argument(
        "--base", type=Path, help="mutate a copy of this tree (default: a snapshot of the working tree)"
    )
    args = ap.parse_args(argv)
    unknown = sorted(set(args.names) - {m.name for m in MUTANTS})
    if unknown:
        ap.error(f"unknown mutant {', '.join(unknown)}; see --list")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    by_name = {m.name: m for m in MUTANTS}
    chosen = [by_name[n] for n in dict.fromkeys(args.names)] or list(MUTANTS)  # in the order named
    if args.list:
        for m in chosen:
            print(f"{m.name:34} {m.contract:24} {m.what}  ({', '.join((*m.tests, E2E))})")
        return 0
    work = args.keep or Path(tempfile.mkdtemp(prefix="mutants-"))
    work.mkdir(parents=True, exist_ok=True)
    base = args.base
    if base is None:
        base = work / "_snapshot"
        copy_tree(base, untracked=True)
    for m in chosen:  # every edit applies before anything runs
        apply(m, (base / "contracts" / m.contract).read_text())
    errors = _collects(base, chosen)
    if errors:
        print(f"the tests do not collect in {base} (unmutated): fix them first\n{errors}", file=sys.stderr)
        return 2
    REPORT.parent.mkdir(exist_ok=True)
    done: dict[str, Outcome] = {}
    try:
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            for o in pool.map(lambda m: run(m, base, work, args.timeout_s), chosen):
                done[o.mutant.name] = o
                print(f"{o.verdict:8} {o.mutant.name:34} {o.seconds:5.0f} s  {o.detail}", flush=True)
                REPORT.write_text(table([done[m.name] for m in chosen if m.name in done], len(chosen)))
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    outcomes = [done[m.name] for m in chosen]
    print("\n" + table(outcomes, len(chosen)))
    caught, total = score(outcomes)
    print(f"score {caught} / {total} = {caught / total:.1%} (report: {REPORT.relative_to(REPO)})")
    return 0 if caught >= MIN_SCORE * total else 1


if __name__ == "__main__":
    sys.exit(main())
