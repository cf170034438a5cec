"""The specification's numbers cannot drift from the code: every default and
bound in the parameter tables of docs/PROTOCOL.md (§9 funding, §12 market
and liquidation parameters) is parsed from the document and checked
against a protocol deployed with the default DeployConfig: the deployed
value equals the documented default, a setter accepts the documented bound
and reverts one step beyond it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import boa
import pytest

from keeper.deploy import BoaBackend, DeployConfig, deploy_protocol
from keeper.units import WAD

DOC = Path(__file__).resolve().parents[2] / "docs" / "PROTOCOL.md"
ROW = re.compile(r"^\| `(\w+)` \| (.+?) \| (.+?) \|$")


def doc_tables() -> dict[str, tuple[str, str]]:
    """parameter -> (default text, bound text), from every parameter table."""
    rows = {}
    for line in DOC.read_text().splitlines():
        m = ROW.match(line.strip())
        if m:
            rows[m.group(1)] = (m.group(2), m.group(3))
    return rows


_NUMBER = r"(\$?)([0-9][0-9,]*(?:\.[0-9]+)?)(?:\^([0-9]+))?\s*(%|h|s|day|days)?"


def parse_value(text: str, unit: str) -> int:
    """The first number of `text` in the contract's unit: `wad` (percentages
    and dollar amounts), `seconds` or `count`."""
    m = re.search(_NUMBER, text.replace("10^9", "1000000000"))
    assert m, f"no number in {text!r}"
    value = Decimal(m.group(2).replace(",", ""))
    suffix = m.group(4)
    if suffix == "%":
        value /= 100
    elif suffix == "h":
        value *= 3600
    elif suffix in ("day", "days"):
        value *= 86_400
    if unit == "wad":
        return int(value * WAD)
    return int(value)


def parse_bound(text: str, unit: str) -> tuple[int | None, int | None]:
    """(lowest allowed, highest allowed) from a bound cell: `A .. B`, `≤ B`,
    `≥ A`, `0 < x ≤ B`, `mmr < imr ≤ B`, `A ≤ mmr < imr`, `> 0, < 2^N`,
    `0 or 1`."""
    text = text.replace("`", "")
    if ".." in text:
        lo, hi = text.split("..")
        lo_v = None if re.search(r"[a-z_]{4,}", lo) and not re.search(r"\d", lo) else parse_value(lo, unit)
        hi_v = None if not re.search(r"\d", hi) else parse_value(hi, unit)
        return lo_v, hi_v
    lo = hi = None
    for op, num in re.findall(r"(≤|≥)\s*([$0-9][^ ,]*%?)", text):
        # "A ≤ mmr" is a lower bound, "≤ B" alone an upper bound
        before = text[: text.index(op + " " + num)] if (op + " " + num) in text else ""
        if op == "≥":
            lo = parse_value(num, unit)
        elif re.search(r"\d%?\s*$", before.strip()) is None:
            hi = parse_value(num, unit)
    m = re.match(r"\s*([0-9.]+%)\s*≤", text)
    if m:
        lo = parse_value(m.group(1), unit)
    if re.match(r"\s*(> 0|0 <)", text):
        lo = 1  # raw: one wei above zero
    m = re.search(r"< 2\^(\d+)", text)
    if m:
        hi = 2 ** int(m.group(1)) - 1  # raw
    if re.match(r"\s*0 or 1", text):
        lo, hi = 0, 1
    return lo, hi


@dataclass(frozen=True)
class Param:
    name: str
    unit: str  # "wad", "seconds" or "count"
    kind: str  # "market", "liquidation" or "funding": which setter
    index: int  # position in the setter's tuple
    step: int = 1  # the value grid: the market's rates are whole multiples of 1e-9 (10**9 wei)


RATE_STEP = 10**9
PARAMS = [
    Param("imr", "wad", "market", 0, RATE_STEP),
    Param("mmr", "wad", "market", 1, RATE_STEP),
    Param("taker_fee", "wad", "market", 2, RATE_STEP),
    Param("maker_fee", "wad", "market", 3, RATE_STEP),
    Param("mark_band", "wad", "market", 4, RATE_STEP),
    Param("min_order_notional", "wad", "market", 5),
    Param("max_open_orders", "count", "market", 6),
    Param("max_fills", "count", "market", 7),
    Param("max_open_interest", "wad", "market", 8),
    Param("price_band", "wad", "market", 9, RATE_STEP),
    Param("liquidation_fee", "wad", "liquidation", 0),
    Param("liquidator_share", "wad", "liquidation", 1),
    Param("bankrupt_band", "wad", "liquidation", 2),
    Param("takeover_discount", "wad", "liquidation", 3),
    Param("small_position_notional", "wad", "liquidation", 4),
    Param("funding_interval", "seconds", "funding", 0),
    Param("funding_period", "seconds", "funding", 1),
    Param("interest_rate", "wad", "funding", 2),
    Param("clamp", "wad", "funding", 3),
    Param("cap", "wad", "funding", 4),
    Param("impact_notional", "wad", "funding", 5),
    Param("sample_interval", "seconds", "funding", 6),
    Param("premium_mode", "count", "funding", 7),
]


@pytest.fixture(scope="module")
def deployed():
    with boa.env.anchor():
        d = deploy_protocol(BoaBackend(), DeployConfig())
        yield d


def _current(d, kind: str) -> list:
    md = d.markets["BTC-PERP"]
    if kind == "market":
        return list(d.lens.market_params(md.market.address))
    if kind == "liquidation":
        return list(d.liquidation_engine.liquidation_params(md.market.address))
    return list(md.funding.params())


def _set(d, kind: str, values: list) -> None:
    md = d.markets["BTC-PERP"]
    owner = d.backend.deployer
    if kind == "market":
        md.market.set_params(tuple(values), sender=owner)
    elif kind == "liquidation":
        d.liquidation_engine.set_liquidation_params(md.market.address, tuple(values), sender=owner)
    else:
        md.funding.set_params(tuple(values), sender=owner)


def test_every_documented_parameter_is_checked():
    assert {p.name for p in PARAMS} <= set(doc_tables())
    assert len(PARAMS) == 23


@pytest.mark.parametrize("param", PARAMS, ids=lambda p: p.name)
def test_documented_default__is_deployed(deployed, param):
    default_text, _bound = doc_tables()[param.name]
    if param.name == "premium_mode":
        expected = 0 if "impact_band" in default_text else 1
    else:
        expected = parse_value(default_text, param.unit)
    assert _current(deployed, param.kind)[param.index] == expected, default_text


@pytest.mark.parametrize("param", PARAMS, ids=lambda p: p.name)
def test_documented_bound__accepted_and_one_step_beyond_reverts(deployed, param):
    _default, bound_text = doc_tables()[param.name]
    lo, hi = parse_bound(bound_text, param.unit)
    if param.name == "interest_rate":
        lo = -hi  # "abs value ≤ 1%"
    if lo is None and hi is None:
        pytest.skip(f"bound {bound_text!r} is relational only")
    values = _current(deployed, param.kind)
    for edge, beyond in ((lo, -param.step), (hi, param.step)):
        if edge is None:
            continue
        with boa.env.anchor():
            trial = list(values)
            trial[param.index] = edge
            _fix_relations(param, trial)
            _set(deployed, param.kind, trial)  # the bound itself is allowed
            assert _current(deployed, param.kind)[param.index] == edge
        if edge + beyond < 0:
            continue
        with boa.env.anchor():
            trial = list(values)
            trial[param.index] = edge + beyond
            _fix_relations(param, trial)
            with boa.reverts():
                _set(deployed, param.kind, trial)


def _fix_relations(param: Param, trial: list) -> None:
    """Keep the other fields consistent with the one under test (mmr < imr,
    sample_interval <= funding_interval <= funding_period)."""
    if param.kind == "market" and param.name == "imr":
        trial[1] = min(trial[1], max(trial[0] - param.step, 0))
    if param.kind == "market" and param.name == "mmr":
        trial[0] = max(trial[0], min(trial[1] + param.step, WAD))
    if param.kind == "market" and param.name != "mark_band":
        trial[4] = min(trial[4], trial[1] // 4 // RATE_STEP * RATE_STEP)  # mark_band <= mmr / 4
    if param.kind == "funding":
        if param.name == "funding_interval":
            trial[1] = max(trial[1], trial[0])
            trial[6] = min(trial[6], trial[0])
        if param.name == "sample_interval":
            trial[0] = max(trial[0], trial[6])
            trial[1] = max(trial[1], trial[0])
        if param.name == "funding_period":
            trial[0] = min(trial[0], trial[1])
            trial[6] = min(trial[6], trial[0])


ORACLE_PARAMS = ["max_age", "max_divergence", "reference_rate"]


@pytest.mark.parametrize("name", ORACLE_PARAMS)
def test_oracle_parameter__documented_default_deployed_and_bounds(deployed, name):
    """§4's table: max_age in seconds, max_divergence and reference_rate (per
    hour) as WAD fractions. Each bound is accepted, one step beyond (a second,
    a basis point) reverts."""
    default_text, bound_text = doc_tables()[name]
    unit = "seconds" if name == "max_age" else "wad"
    oracle = deployed.markets["BTC-PERP"].oracle
    assert getattr(oracle, name)() == parse_value(default_text, unit), default_text
    lo, hi = parse_bound(bound_text, unit)
    assert lo is not None and hi is not None, bound_text
    step = 1 if name == "max_age" else 10**14
    owner = deployed.backend.deployer

    def set_(value):
        if name == "max_age":
            oracle.set_max_age(value, sender=owner)
        elif name == "max_divergence":
            oracle.set_guard(value, oracle.reference_rate(), sender=owner)
        else:
            oracle.set_guard(oracle.max_divergence(), value, sender=owner)

    for edge, beyond in ((lo, lo - step), (hi, hi + step)):
        with boa.env.anchor():
            set_(edge)
            assert getattr(oracle, name)() == edge
        with boa.env.anchor():
            with boa.reverts():
                set_(beyond)


def test_insurance_fund_and_clearinghouse_defaults_match_the_document(deployed):
    text = DOC.read_text()
    m = re.search(
        r"`payout_cap` (\d+)% of\s+assets per event.*?`cooldown` (\d+) days.*?`withdraw_window` (\d+) days",
        text,
        re.S,
    )
    assert m, "the insurance fund paragraph of §12 changed shape"
    fund = deployed.insurance_fund
    assert fund.payout_cap() == int(m.group(1)) * WAD // 100
    assert fund.cooldown() == int(m.group(2)) * 86_400
    assert fund.withdraw_window() == int(m.group(3)) * 86_400
    share = re.search(r"`insurance_fee_share` \(default (\d+)%", text)
    assert deployed.clearinghouse.insurance_fee_share() == int(share.group(1)) * WAD // 100


@pytest.mark.parametrize("param", [p for p in PARAMS if p.step > 1], ids=lambda p: p.name)
def test_market_rate__off_its_1e9_grid__reverts_and_changes_nothing(deployed, param):
    """The rates pack into one word in units of 1e-9: a rate off that grid is
    refused with its reason, and the parameters stay as they were."""
    values = _current(deployed, param.kind)
    trial = list(values)
    # half a step down: the default mark_band is at its bound (mmr / 4)
    trial[param.index] = values[param.index] - param.step // 2
    _fix_relations(param, trial)
    with boa.reverts("market: rates must be whole multiples of 1e-9"):
        _set(deployed, param.kind, trial)
    assert _current(deployed, param.kind) == values


def test_mark_band__a_quarter_of_mmr_accepted_one_step_more_reverts(deployed):
    """§12: mark_band ≤ mmr / 4 (one trade moves the mark at most half the maintenance
    margin), checked when the parameters change; the default is that largest value."""
    values = _current(deployed, "market")
    assert values[4] * 4 == values[1]
    for mmr in (values[1], 5 * 10**15 + 4 * RATE_STEP):
        with boa.env.anchor():
            trial = list(values)
            trial[1], trial[4] = mmr, mmr // 4
            _set(deployed, "market", trial)
            assert _current(deployed, "market")[4] == mmr // 4
        with boa.env.anchor():
            trial = list(values)
            trial[1], trial[4] = mmr, mmr // 4 + RATE_STEP
            with boa.reverts("market: mark band out of bounds"):
                _set(deployed, "market", trial)
