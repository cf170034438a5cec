"""Each attack replay (tests/e2e/) against a deliberately broken protocol.

For every replay this breaks a check it exercises (a mutant: a text
substitution in contracts/), runs the replay on the mutant, and expects it to
FAIL. A replay that still passes on its mutant does not test its check. Three
replays have two or more mutants: spam (the max_fills bound, the uncrossed book),
the off-market drain (the price band, the off-market cancel, the order risk),
self-liquidation (the fee rule, the skip of an order gone from the list) and
the rogue liquidation engine (the engine check, the replacement's delay).

The mutant is built in a temporary copy of the working tree (every file git
knows, as it is on disk), so contracts/ is never touched and the copy compiles
its own artifacts. Exit status 0 only if every mutant is caught.

    .venv/bin/python scripts/replay_mutants.py            # all replays, about 5 min
    .venv/bin/python scripts/replay_mutants.py mango drift
    .venv/bin/python scripts/replay_mutants.py --list
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: the repository's root is on sys.path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scripts.mutants_common import REPO, apply_edits, build, first_failure, run_pytest  # noqa: E402


@dataclass(frozen=True)
class Mutant:
    replay: str  # a short name
    test: str  # the replay's test file (tests/e2e/...)
    what: str  # the check it breaks, in words
    contract: str  # contracts/<contract>
    edits: tuple[tuple[str, str], ...]  # (exact text, replacement): each text occurs once


MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "mango",
        "tests/e2e/test_mango_2022.py",
        "the index guard removed: a report any distance from the reference counts",
        "IndexOracle.vy",
        (
            (
                "    return median * WAD <= reference * band and reference * WAD <= median * band",
                "    return True",
            ),
        ),
    ),
    Mutant(
        "drift",
        "tests/e2e/test_drift_v1_2022.py",
        "withdraw's initial-margin check removed",
        "Clearinghouse.vy",
        (
            (
                '    assert equity - amount >= convert(im, int256), "below initial margin"',
                "    pass",
            ),
        ),
    ),
    Mutant(
        "oracle",
        "tests/e2e/test_oracle_battery.py",
        "the oracle's staleness test removed (a source of any age is fresh)",
        "IndexOracle.vy",
        (
            (
                "if p == 0 or t > block.timestamp or block.timestamp - t > max_age_:",
                "if p == 0 or t > block.timestamp:",
            ),
        ),
    ),
    Mutant(
        "self-liquidation",
        "tests/e2e/test_self_liquidation.py",
        "the liquidation fee's owner check removed (an owner is paid for liquidating itself)",
        "Clearinghouse.vy",
        (
            (
                "if liquidator != empty(address) and convert(self._account_key[account] >> 96, uint160) != convert(liquidator, uint160):",
                "if liquidator != empty(address):",
            ),
        ),
    ),
    Mutant(
        "rogue-engine",
        "tests/e2e/test_rogue_liquidation_engine.py",
        "the engine_* functions callable by anyone (the engine check removed)",
        "Clearinghouse.vy",
        (
            (
                '    assert msg.sender == self.liquidation_engine, "not the liquidation engine"',
                "    pass",
            ),
        ),
    ),
    Mutant(
        "engine-delay",
        "tests/e2e/test_rogue_liquidation_engine.py",
        "a replacement liquidation engine applied at once (its delay not checked)",
        "Clearinghouse.vy",
        (
            (
                '    assert block.timestamp >= self.pending_liquidation_engine_at, "engine delay not over"\n',
                "",
            ),
        ),
    ),
    Mutant(
        "spam",
        "tests/e2e/test_order_book_spam.py",
        "the match loop's max_fills bound removed (a taker walks up to 64 orders)",
        "PerpMarket.vy",
        (
            (
                "if remaining == 0 or i >= ((pw >> pl.K_FILLS) & pl.M7):",
                "if remaining == 0:",
            ),
        ),
    ),
    Mutant(
        "front-run",
        "tests/e2e/test_self_liquidation.py",
        "a listed order that no longer rests reverts the batch (no such order)",
        "PerpMarket.vy",
        (
            (
                "    if order == 0:\n        return False\n",
                '    assert order != 0, "no such order"\n',
            ),
        ),
    ),
    Mutant(
        "spam-cross",
        "tests/e2e/test_order_book_spam.py",
        "a limit order's rest left crossing by max_fills rests (the book crosses)",
        "PerpMarket.vy",
        (
            (
                "    if remaining > 0 and order_type < IOC and not crosses:",
                "    if remaining > 0 and order_type < IOC:",
            ),
        ),
    ),
    Mutant(
        "reentrancy",
        "tests/e2e/test_reentrancy_hook_token.py",
        "the clearinghouse's reentrancy lock removed",
        "Clearinghouse.vy",
        (("# pragma nonreentrancy on", "# pragma nonreentrancy off"),),
    ),
    Mutant(
        "precision",
        "tests/e2e/test_precision.py",
        "the funding payer rounded down, not up",
        "PerpMarket.vy",
        (
            (
                "    paid: int256 = self._ceil_div_signed(exact, SWAD)\n",
                "    paid: int256 = exact // SWAD\n",
            ),
            (
                "convert(paid * SWAD - exact, uint256)",
                "convert(abs(paid * SWAD - exact), uint256)",
            ),
        ),
    ),
    Mutant(
        "malformed",
        "tests/e2e/test_malformed_calls.py",
        'cancel\'s "not your order" check removed',
        "PerpMarket.vy",
        (('    assert ((order >> layout.O_ACCT) & layout.M48) == account, "not your order"\n', ""),),
    ),
    Mutant(
        "off-market-band",
        "tests/e2e/test_off_market_drain.py",
        "the price band removed: an order rests at any price",
        "PerpMarket.vy",
        (('        assert tick >= lo and tick <= hi, "price beyond the price band"\n', "        pass\n"),),
    ),
    Mutant(
        "off-market-void",
        "tests/e2e/test_off_market_drain.py",
        "a resting order beyond the price band filled, not cancelled",
        "PerpMarket.vy",
        (("            if best < lo or best > hi:\n", "            if False:\n"),),
    ),
    Mutant(
        "order-risk",
        "tests/e2e/test_off_market_drain.py",
        "no order risk in the margin (a fill may lose more than the initial margin reserved)",
        "PerpMarket.vy",
        (("    risk: uint256 = pl.order_risk(pw, bids, asks)\n", "    risk: uint256 = 0\n"),),
    ),
    Mutant(
        "mark-band-bound",
        "tests/e2e/test_mark_push.py",
        "the mark band's bound removed (any band up to 50% of the index)",
        "PerpMarket.vy",
        (("p.mark_band * MARK_BAND_PER_MMR <= p.mmr", "p.mark_band <= WAD // 2"),),
    ),
    Mutant(
        "mark-clamp",
        "tests/e2e/test_mark_push.py",
        "the mark clamped to 16 x the band",
        "PerpMarket.vy",
        (
            (
                "    band: uint256 = index * ((self.params_word >> pl.K_BAND) & pl.M30) // pl.RATE",
                "    band: uint256 = 16 * index * ((self.params_word >> pl.K_BAND) & pl.M30) // pl.RATE",
            ),
        ),
    ),
    Mutant(
        "reduce-only-rest",
        "tests/e2e/test_reduce_only_beyond_bankruptcy.py",
        "a resting reduce-only order needs only equity >= 0 (no initial margin)",
        "PerpMarket.vy",
        (
            (
                "    result.risk_increased = grew or rested\n",
                "    result.risk_increased = grew or (rested and not reduce_only)\n",
            ),
        ),
    ),
    Mutant(
        "liquidation-across-markets",
        "tests/e2e/test_liquidation_across_markets.py",
        "a solvent account's close spends the order risk of its other markets' orders",
        "LiquidationEngine.vy",
        (("    return max(equity - convert(risk, int256), 0)\n", "    return equity\n"),),
    ),
    Mutant(
        "one-reporter",
        "tests/e2e/test_one_reporter_moves_index.py",
        "an even count of fresh sources is valid whatever its middle prices' spread",
        "IndexOracle.vy",
        (("m, hi * WAD <= lo * (WAD + self._max_spread * BPS))", "m, True)"),),
    ),
    Mutant(
        "late-settlement",
        "tests/e2e/test_late_settlement.py",
        "settle()'s total clamp removed: one call moves rate + base x (due - 1), beyond one interval's cap",
        "FundingRate.vy",
        (("    delta = max(-bound, min(bound, delta))\n", ""),),
    ),
    Mutant(
        "insurance-exit",
        "tests/e2e/test_insurance_exit_before_loss.py",
        "withdraw and redeem no longer wait while an index is invalid (the guard holds a crash back)",
        "InsuranceFund.vy",
        (
            (
                '    assert self._indexes_valid(), "insurance: index invalid, withdrawals wait"',
                "    pass",
            ),
        ),
    ),
)


def apply(m: Mutant, source: str) -> str:
    """The mutant's source; each edit's text must occur exactly once."""
    return apply_edits(m.replay, m.contract, m.edits, source)


def _first_failure(output: str) -> str:
    """Where the replay first failed (`file:line`, its test), the failing
    line and pytest's error, from the log."""
    return first_failure(output, "tests/e2e/")


def run(m: Mutant, work: Path) -> tuple[bool, str, float]:
    """(caught, first failure or the passing summary, seconds)."""
    tree = work / m.replay
    build(tree, m.contract, apply(m, (REPO / "contracts" / m.contract).read_text()))
    code, output, err, seconds = run_pytest(tree, ["-q", "-x", "-p", "no:cacheprovider", m.test])
    (work / f"{m.replay}.log").write_text(output + err)
    # caught: the replay itself failed, not a build or collection error
    # (a mutant that does not compile also exits 1)
    if code == 1 and re.search(rf"^\S*?{re.escape(m.test)}:\d+: in ", output, re.M):
        return True, _first_failure(output), seconds
    summary = (output.strip().splitlines() or ["(no output)"])[-1]
    return False, f"exit {code}: {summary}", seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("replays", nargs="*", help="replay names (default: all)")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument(
        "--keep", type=Path, help="build the mutants here and keep them (default: a temporary directory)"
    )
    args = ap.parse_args(argv)
    names = {m.replay for m in MUTANTS}
    unknown = sorted(set(args.replays) - names)
    if unknown:
        ap.error(f"unknown replay {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    chosen = [m for m in MUTANTS if not args.replays or m.replay in args.replays]
    if args.list:
        for m in chosen:
            print(f"{m.replay:17} {m.contract:18} {m.what}  ({m.test})")
        return 0
    for m in chosen:  # every edit applies before anything runs
        apply(m, (REPO / "contracts" / m.contract).read_text())
    work = args.keep or Path(tempfile.mkdtemp(prefix="replay-mutants-"))
    work.mkdir(parents=True, exist_ok=True)
    survived = 0
    try:
        for m in chosen:
            caught, detail, seconds = run(m, work)
            survived += not caught
            verdict = "caught  " if caught else "SURVIVED"
            print(f"{verdict} {m.replay:17} {m.what}\n         {detail} ({seconds:.0f} s)", flush=True)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{len(chosen) - survived} of {len(chosen)} mutants caught by their replays")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
