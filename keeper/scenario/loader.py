"""The scenario loader: YAML that keeps the line of every key, validation against the
schema (:mod:`keeper.scenario.schema`) with errors naming the line and the key, and the
static checks of the names used (:func:`load_scenario`)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from keeper.scenario.errors import ScenarioError
from keeper.scenario.schema import (
    ACCOUNT_WIDE_FIELDS,
    PER_MARKET_FIELDS,
    STEP_KINDS,
    STEP_MODELS,
    STEP_SIBLING_KEYS,
    AccountExpect,
    EventExpect,
    Expectation,
    InsuranceExpect,
    KeeperName,
    MarketExpect,
    Scenario,
    ScenarioSpec,
    Step,
    _Model,
)
from keeper.units import parse_duration, to_units


@dataclass
class _Doc:
    data: Any
    lines: dict[tuple, int]
    source: str

    def line(self, path: Sequence[Any]) -> int | None:
        path = tuple(path)
        while True:
            if path in self.lines:
                return self.lines[path]
            if not path:
                return None
            path = path[:-1]

    def error(self, path: Sequence[Any], problem: str) -> ScenarioError:
        line = self.line(path)
        where = _where(tuple(path))
        parts = [self.source]
        if line is not None:
            parts.append(f"line {line}")
        if where:
            parts.append(where)
        parts.append(problem)
        return ScenarioError(": ".join(parts))


def _where(path: tuple) -> str:
    """A human name for the container of a key path: "step 3 (order)", "markets.BTC-PERP"."""
    if len(path) >= 2 and path[0] == "steps" and isinstance(path[1], int):
        out = f"step {path[1] + 1}"
        if len(path) >= 3:
            out += f" ({path[2]})"
            if path[2] == "expect" and len(path) >= 4 and isinstance(path[3], int):
                out += f" item {path[3] + 1}"
        return out
    if len(path) >= 2 and path[0] in ("markets", "accounts"):
        return f"{path[0]}.{path[1]}"
    return ""


def _compose(text: str, source: str) -> _Doc:
    """YAML -> plain data (every scalar kept as the text written, null as None) + line of every key."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ScenarioError(f"{source}: {where}YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: YAML error: {exc}") from None
    if node is None:
        raise ScenarioError(f"{source}: empty scenario file")
    lines: dict[tuple, int] = {}
    return _Doc(_node_data(node, (), lines, source), lines, source)


def _node_data(node: yaml.Node, path: tuple, lines: dict[tuple, int], source: str) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for knode, vnode in node.value:
            kline = knode.start_mark.line + 1
            if not isinstance(knode, yaml.ScalarNode):
                raise ScenarioError(f"{source}: line {kline}: a key must be a plain name")
            key = knode.value
            if key in out:
                raise ScenarioError(f"{source}: line {kline}: duplicate key '{key}'")
            lines[path + (key,)] = kline
            out[key] = _node_data(vnode, path + (key,), lines, source)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_node_data(n, path + (i,), lines, source) for i, n in enumerate(node.value)]
    if node.tag == "tag:yaml.org,2002:null" and not node.style:
        return None
    return node.value


def _unwrap(t: Any) -> Any:
    while True:
        origin = get_origin(t)
        if origin is Annotated:
            t = get_args(t)[0]
        elif origin is Union or type(t).__name__ == "UnionType":
            args = [a for a in get_args(t) if a is not type(None)]
            if len(args) != 1:
                return t
            t = args[0]
        else:
            return t


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the model reached by `loc` (a pydantic error location without its last key)."""
    t: Any = model
    for part in loc:
        t = _unwrap(t)
        if isinstance(t, type) and issubclass(t, BaseModel):
            f = t.model_fields.get(part) if isinstance(part, str) else None
            if f is None:
                return []
            t = f.annotation
        elif get_origin(t) in (dict, list):
            t = get_args(t)[-1]
        else:
            return []
    t = _unwrap(t)
    if isinstance(t, type) and issubclass(t, BaseModel):
        return list(t.model_fields)
    return []


def _validate(doc: _Doc, model: type[BaseModel] | TypeAdapter, data: Any, base: tuple) -> Any:
    """Validate `data` (found at path `base` of the document); a failure becomes a ScenarioError."""
    try:
        if isinstance(model, TypeAdapter):
            return model.validate_python(data)
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # the earliest line first; on one line an unknown key (often a misspelt required one) first
        errors.sort(key=lambda e: (doc.line(base + tuple(e["loc"])) or 0, e["type"] != "extra_forbidden"))
        err = errors[0]
        loc = tuple(err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        last = loc[-1] if loc else None
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(model, loc[:-1]) if isinstance(model, type) else []
            close = difflib.get_close_matches(str(last), allowed, n=1)
            problem = f"unknown key '{last}'"
            if close:
                problem += f" (did you mean '{close[0]}'?)"
            elif allowed:
                problem += f" (allowed: {', '.join(allowed)})"
        elif err["type"] == "missing":
            problem = f"missing required key '{last}'"
        elif last is None or (isinstance(model, type) and _allowed_keys(model, loc)):
            problem = msg  # a check of the whole mapping (model validator)
        else:
            keys = [k for k in base + loc if isinstance(k, str)]
            name = f"key '{keys[-1]}'" if keys else "value"
            if isinstance(last, int):
                name += f" item {last + 1}"
            problem = f"{name}: {msg}"
            if "input" in err and not isinstance(err["input"], dict | list) and "got " not in msg:
                problem += f" (got {err['input']!r})"
        raise doc.error(base + loc, problem) from None


def load_scenario(source: str | Path | Mapping[str, Any]) -> Scenario:
    """Parse and validate a scenario file (or an already loaded mapping). Raises ScenarioError."""
    if isinstance(source, Mapping):
        doc = _Doc(dict(source), {}, "<scenario>")
    else:
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ScenarioError(f"{path}: cannot read: {exc.strerror or exc}") from None
        doc = _compose(text, str(path))
    if not isinstance(doc.data, dict):
        raise doc.error((), "a scenario is a mapping (name, markets, accounts, steps, ...)")
    spec: ScenarioSpec = _validate(doc, ScenarioSpec, doc.data, ())
    steps = [_parse_step(doc, raw, i) for i, raw in enumerate(spec.steps)]
    scenario = Scenario(spec, steps, doc.source)
    _check_references(doc, scenario)
    return scenario


_keepers_adapter = TypeAdapter(list[KeeperName])


def _parse_step(doc: _Doc, raw: Any, i: int) -> Step:
    path = ("steps", i)
    if not isinstance(raw, dict):
        raise doc.error(path, f"a step is a mapping with one kind ({', '.join(STEP_KINDS)}), got {raw!r}")
    for key in raw:
        if key not in STEP_KINDS and key not in STEP_SIBLING_KEYS:
            close = difflib.get_close_matches(key, (*STEP_KINDS, *STEP_SIBLING_KEYS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(STEP_KINDS)}"
            raise doc.error(path + (key,), f"unknown step kind '{key}' ({hint})")
    kinds = [k for k in raw if k in STEP_KINDS]
    if len(kinds) != 1:
        raise doc.error(path, f"a step has exactly one kind, found {kinds or 'none'}")
    kind = kinds[0]
    body = raw[kind]
    base = path + (kind,)
    expect_revert = raw.get("expect_revert")
    note = raw.get("note")
    for key, value in (("expect_revert", expect_revert), ("note", note)):
        if value is not None and not isinstance(value, str):
            raise doc.error(path + (key,), f"key '{key}': expected a string")
    item_lines: tuple[int | None, ...] = ()
    if kind in STEP_MODELS:
        if not isinstance(body, dict):
            raise doc.error(base, f"'{kind}' takes a mapping of keys, got {body!r}")
        spec: Any = _validate(doc, STEP_MODELS[kind], body, base)
        if spec.expect_revert is not None:
            if expect_revert is not None:
                raise doc.error(path + ("expect_revert",), "expect_revert given twice")
            expect_revert = spec.expect_revert
    elif kind == "advance":
        try:
            spec = parse_duration(body)
        except ValueError as exc:
            raise doc.error(base, f"key 'advance': {exc}") from None
    elif kind == "keepers":
        spec = tuple(_validate(doc, _keepers_adapter, body, base))
    else:  # expect
        if not isinstance(body, list) or not body:
            raise doc.error(base, "'expect' takes a non-empty list of expectations")
        if expect_revert is not None:
            raise doc.error(path + ("expect_revert",), "an expect step cannot carry expect_revert")
        spec = tuple(_parse_expectation(doc, item, base + (j,)) for j, item in enumerate(body))
        item_lines = tuple(doc.line(base + (j,)) for j in range(len(body)))
    if expect_revert is not None and not expect_revert:
        raise doc.error(path + ("expect_revert",), "expect_revert needs a reason substring")
    return Step(i + 1, doc.line(path), kind, spec, expect_revert, note, item_lines)


def _parse_expectation(doc: _Doc, item: Any, path: tuple) -> Expectation:
    if not isinstance(item, dict):
        raise doc.error(path, f"an expectation is a mapping, got {item!r}")
    if "event" in item:
        model: type[_Model] = EventExpect
    elif "insurance_fund" in item:
        model = InsuranceExpect
    elif "account" in item:
        model = AccountExpect
    elif "market" in item:
        model = MarketExpect
    else:
        raise doc.error(path, "an expectation names one of: account, market, insurance_fund, event")
    return _validate(doc, model, item, path)


# the protocol's contracts, whose events `{event: NAME, count: N}` counts
PROTOCOL_CONTRACTS = (
    "Clearinghouse", "LiquidationEngine", "PerpMarket", "IndexOracle", "FundingRate", "InsuranceFund",
)  # fmt: skip


def _contract_events(contract: str) -> dict[str, list[dict]]:
    """Event name -> ABI entries of one contract."""
    from keeper import artifacts

    out: dict[str, list[dict]] = {}
    for entry in artifacts.abi(contract):
        if entry.get("type") == "event":
            out.setdefault(entry["name"], []).append(entry)
    return out


def _protocol_events() -> dict[str, list[dict]]:
    """Event name -> ABI entries, over the contracts whose logs are counted."""
    out: dict[str, list[dict]] = {}
    for contract in PROTOCOL_CONTRACTS:
        for name, entries in _contract_events(contract).items():
            out.setdefault(name, []).extend(entries)
    return out


def _check_references(doc: _Doc, sc: Scenario) -> None:
    """Names used by steps exist; labels are defined before use; per-market fields have a market."""
    markets = sc.spec.markets
    accounts = sc.spec.accounts
    single = next(iter(markets)) if len(markets) == 1 else None
    dec = sc.spec.collateral_decimals
    labels: set[str] = set()
    events: dict[str, list[dict]] | None = None

    def need(kind: str, name: str | None, known: Mapping[str, Any], path: tuple) -> None:
        if name is not None and name not in known:
            raise doc.error(
                path, f"key '{path[-1]}': unknown {kind} '{name}' (declared: {', '.join(known) or 'none'})"
            )

    def amount(value: Decimal | None, path: tuple) -> None:
        if value is not None:
            try:
                to_units(value, dec)
            except ValueError as exc:
                raise doc.error(path, f"key '{path[-1]}': {exc} (collateral_decimals {dec})") from None

    amount(sc.spec.insurance_fund, ("insurance_fund",))
    for name, acc in accounts.items():
        amount(acc.deposit, ("accounts", name, "deposit"))
    for step in sc.steps:
        base = ("steps", step.index - 1, step.kind)
        s = step.spec
        if step.kind in STEP_MODELS and step.kind != "oracle":
            need("account", s.account, accounts, base + ("account",))
        if step.kind in ("oracle", "order", "liquidate"):
            need("market", s.market, markets, base + ("market",))
        if step.kind == "liquidate":
            need("account", s.by, accounts, base + ("by",))
        if step.kind in ("deposit", "withdraw"):
            amount(s.amount, base + ("amount",))
        if step.kind == "order" and s.label is not None:
            labels.add(s.label)
        if step.kind == "cancel":
            if s.label is not None and s.label not in labels:
                raise doc.error(base + ("label",), f"key 'label': no earlier order has label '{s.label}'")
            need("market", s.market, markets, base + ("market",))
            if s.order_id is not None and s.market is None and single is None:
                raise doc.error(base, "a cancel by order_id needs 'market' (the scenario has several)")
        if step.kind == "expect":
            for j, e in enumerate(s):
                p = base + (j,)
                if isinstance(e, AccountExpect | MarketExpect):
                    need("market", e.market, markets, p + ("market",))
                if isinstance(e, AccountExpect):
                    need("account", e.account, accounts, p + ("account",))
                    if e.field in PER_MARKET_FIELDS and e.market is None and single is None:
                        raise doc.error(p, f"field '{e.field}' needs 'market' (the scenario has several)")
                    if e.field in ACCOUNT_WIDE_FIELDS and e.market is not None:
                        raise doc.error(
                            p + ("market",),
                            f"key 'market': field '{e.field}' is of the whole account, not per market",
                        )
                if isinstance(e, EventExpect):
                    if events is None:
                        events = _protocol_events()
                    if e.event not in events:
                        raise doc.error(
                            p + ("event",),
                            f"key 'event': unknown event '{e.event}' (known: {', '.join(sorted(events))})",
                        )
