"""The CLI glue of `keeper status` and `keeper trade` (:func:`add_people_commands`, registered
in ``keeper.cli.COMMANDS``): options, the trader's key, and the handlers."""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

from keeper.people.common import Chain, PeopleError, _read, connect_chain
from keeper.people.status import format_status, read_status, status_json
from keeper.people.trade import ORDER_TYPES, SIDES, cancel, cancel_all, order_args, place

TRADER_KEY_ENV = "VYPERP_TRADER_KEY"

_KEY_RE = re.compile(r"^(0x)?[0-9a-fA-F]{64}$")
_ADDRESS_RE = re.compile(r"^0x[0-9a-fA-F]{40}$")


# ================================================================ CLI


def _subaccount(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"a subaccount is a whole number >= 0, not {text!r}")
    return n


def _add_chain_options(p: argparse.ArgumentParser, *, key: bool = False) -> None:
    """--subaccount, [--key], --rpc, --manifest, --config (after each command's own options)."""
    p.add_argument("--subaccount", metavar="N", type=_subaccount, default=0, help="subaccount (default 0)")
    if key:
        p.add_argument(
            "--key", help=f"the trader's private key (default: ${TRADER_KEY_ENV}; prefer the variable)"
        )
    p.add_argument(
        "--rpc", metavar="URL", dest="rpc_url", help="JSON-RPC URL (default: settings, $VYPERP_RPC_URL)"
    )
    p.add_argument(
        "--manifest",
        metavar="PATH",
        help="deployment manifest JSON (default: settings, deployments/local.json)",
    )
    p.add_argument("--config", metavar="FILE", help="YAML or TOML settings file (default: $VYPERP_CONFIG)")


def add_people_commands(sub: Any) -> None:
    """`keeper status` and `keeper trade place|cancel|cancel-all` (registered in keeper.cli.COMMANDS)."""
    st = sub.add_parser("status", help="markets, insurance fund and an account's margin from a live chain")
    st.add_argument("--account", metavar="ADDRESS", help="owner address of the account to show")
    st.add_argument("--json", action="store_true", help="print the snapshot as JSON")
    _add_chain_options(st)
    st.set_defaults(handler=_cli_status)
    trade = sub.add_parser("trade", help="place and cancel orders")
    actions = trade.add_subparsers(dest="action", metavar="ACTION", required=True)
    p = actions.add_parser("place", help="place an order")
    p.add_argument("--market", metavar="SYMBOL", required=True, help="market symbol, e.g. BTC-PERP")
    p.add_argument("--side", required=True, choices=SIDES)
    p.add_argument("--size", required=True, help="base units, a multiple of the lot size (e.g. 0.1)")
    p.add_argument("--price", help="limit price, a multiple of the tick size (omit for a market order)")
    p.add_argument(
        "--type", dest="order_type", choices=list(ORDER_TYPES), help="default: gtc with --price, else market"
    )
    p.add_argument("--reduce-only", action="store_true", help="only ever reduce the position")
    c = actions.add_parser("cancel", help="cancel one resting order")
    c.add_argument("--market", metavar="SYMBOL", required=True, help="market symbol, e.g. BTC-PERP")
    c.add_argument("--order", metavar="ID", dest="order_id", type=int, required=True, help="order id")
    a = actions.add_parser("cancel-all", help="cancel every resting order of the account in a market")
    a.add_argument("--market", metavar="SYMBOL", required=True, help="market symbol, e.g. BTC-PERP")
    for parser, handler in ((p, _cli_place), (c, _cli_cancel), (a, _cli_cancel_all)):
        _add_chain_options(parser, key=True)
        parser.set_defaults(handler=handler)


def _context(args: argparse.Namespace) -> Any:
    from keeper.context import RunContext
    from keeper.settings import load_settings

    settings = load_settings(args.config, rpc_url=args.rpc_url, manifest=args.manifest)
    return RunContext(settings, args)


def _address(text: str) -> str:
    from web3 import Web3

    if not _ADDRESS_RE.match(text.strip()):
        raise PeopleError(f"--account: {text!r} is not an address (0x and 40 hex digits)")
    return Web3.to_checksum_address(text.strip())


def _cli_status(args: argparse.Namespace) -> int:
    account = (_address(args.account), args.subaccount) if args.account else None
    status = read_status(connect_chain(_context(args)), account)
    print(status_json(status) if args.json else format_status(status))
    return 1 if account is not None and status.account is None else 0


def _trader(args: argparse.Namespace) -> tuple[Chain, Any]:
    key = (args.key or os.environ.get(TRADER_KEY_ENV) or "").strip()
    if not key:
        raise PeopleError(f"no trader key: set ${TRADER_KEY_ENV} (or pass --key)")
    if not _KEY_RE.match(key):
        raise PeopleError("the trader key is not a 32-byte hex private key (64 hex digits, optional 0x)")
    ctx = _context(args)
    chain = connect_chain(ctx)
    chain.market(args.market)  # an unknown market fails before anything else
    return chain, ctx.client(key)


def _print(lines: Sequence[str]) -> int:
    print("\n".join(lines))
    sys.stdout.flush()
    return 0


def _cli_place(args: argparse.Namespace) -> int:
    chain, client = _trader(args)
    mkt = chain.market(args.market)
    order = order_args(
        args.side, args.size, args.price, args.order_type,
        tick=_read(mkt.functions.TICK_SIZE(), "TICK_SIZE"), lot=_read(mkt.functions.LOT_SIZE(), "LOT_SIZE"),
        symbol=args.market, reduce_only=args.reduce_only,
    )  # fmt: skip
    return _print(place(chain, client, args.market, order, args.subaccount))


def _cli_cancel(args: argparse.Namespace) -> int:
    chain, client = _trader(args)
    return _print(cancel(chain, client, args.market, args.order_id, args.subaccount))


def _cli_cancel_all(args: argparse.Namespace) -> int:
    chain, client = _trader(args)
    return _print(cancel_all(chain, client, args.market, args.subaccount))


__all__ = ["TRADER_KEY_ENV", "add_people_commands"]
