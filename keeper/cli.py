"""`keeper` command line.

    keeper run BOT [BOT ...] [--config FILE] [--rpc URL] [--manifest PATH] [--dry-run] [--once]
        [--steps N] [--metrics-port PORT]      BOT: oracle, funding, liquidation, adl (keeper/service.py)
    keeper scenario run FILE.yaml [--rpc URL] [--verbose]     (keeper/scenario/)
    keeper audit adl --tx HASH | --block N [--rpc URL] [--manifest PATH] [--json]   (keeper/audit.py)
    keeper status [--rpc URL] [--manifest PATH] [--account ADDRESS [--subaccount N]] [--json]   (keeper/people/)
    keeper trade place --market SYMBOL --side buy|sell --size SIZE [--price PRICE]
        [--type gtc|post-only|ioc|market] [--reduce-only] [--subaccount N] [--key KEY]   (keeper/people/)
    keeper trade cancel --market SYMBOL --order ID | cancel-all --market SYMBOL [--subaccount N] [--key KEY]

Extension points:
  * a new bot: write `run_<name>(ctx: RunContext) -> BotRun` (the bot, built, and its interval)
    and add it to `BOTS` (`keeper run <name>` then gets the common options, the supervisor,
    /health and /metrics for free);
  * a new top-level command (e.g. `keeper scenario run FILE`): add a
    `(register, handler)` pair to `COMMANDS`; see `_add_run_command`.

What the commands share lives below them: `RunContext` (keeper/context.py), the deployment
`Manifest` (keeper/manifest.py), `CliError` (keeper/errors.py). Nothing imports this module
but the entry point: the commands' modules (keeper/scenario/, keeper/people/, keeper/audit.py)
are loaded from here, never the other way round.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from keeper.context import RunContext
from keeper.errors import CliError
from keeper.logs import get_logger, setup_logging
from keeper.service import BotRun
from keeper.settings import SettingsError, load_settings

log = get_logger("keeper.cli")


# ---------------------------------------------------------------- bots


def build_feed(ctx: RunContext, oracles: dict[str, Any]) -> Any:
    """The configured feed; a random walk starts from the on-chain index when valid (restart), else the manifest."""
    from keeper.feeds import CsvReplayFeed, RandomWalkFeed
    from keeper.retry import call_with_retry

    o = ctx.settings.oracle
    if o.feed == "csv":
        assert o.csv_path is not None  # enforced by OracleSettings
        return CsvReplayFeed(o.csv_path, seed=o.seed, venue_noise=o.venue_noise)
    initial: dict[str, float] = {}
    for market, oracle in oracles.items():
        valid, price, _fresh = call_with_retry(oracle.functions.index_status())
        initial[market] = (
            price / 10**18 if valid and price > 0 else float(ctx.manifest.markets[market].initial_price)
        )
    return RandomWalkFeed(initial, seed=o.seed, volatility=o.volatility, venue_noise=o.venue_noise)


def run_oracle(ctx: RunContext) -> BotRun:
    from keeper.bots.oracle import OracleReporter

    s = ctx.settings
    markets = ctx.manifest.markets
    keys = [k.get_secret_value() for k in s.oracle.reporter_keys]
    if not keys and s.private_key is not None:
        keys = [s.private_key.get_secret_value()]
    if not keys:
        raise CliError("no reporter keys: set oracle.reporter_keys (or private_key) in the config or env")
    clients = {}
    for key in keys:
        c = ctx.client(key)
        clients[c.address] = c
    oracles = {m: ctx.contract("IndexOracle", info.oracle) for m, info in markets.items()}
    bot = OracleReporter(
        clients,
        oracles,
        build_feed(ctx, oracles),
        dry_run=s.dry_run,
        reference_interval_s=s.oracle.reference_interval_s,
        logger=get_logger("keeper.oracle"),
    )
    return BotRun(bot, s.oracle.interval_s)


def run_funding(ctx: RunContext) -> BotRun:
    from keeper.bots.funding import FundingKeeper

    s = ctx.settings
    dry_run = s.dry_run or s.funding.dry_run
    key = _bot_key(ctx, s.funding.key, "funding", dry_run)
    contracts = {}
    for market, info in ctx.manifest.markets.items():
        address = info.funding
        if not address:
            raise CliError(
                f"the manifest has no funding contract for {market} (redeploy with the current deployer)"
            )
        contracts[market] = ctx.contract("FundingRate", address)
    bot = FundingKeeper(ctx.client(key), contracts, dry_run=dry_run, logger=get_logger("keeper.funding"))
    return BotRun(bot, s.funding.interval_s)


def _bot_key(ctx: RunContext, secret: Any, section: str, dry_run: bool) -> str:
    """The bot's key: its section's `key`, else the shared `private_key`; any key for a dry run."""
    from eth_account import Account

    secret = secret or ctx.settings.private_key
    if secret is not None:
        return str(secret.get_secret_value())
    if dry_run:
        return str(Account.create().key.hex())  # a dry run sends nothing: any address reads the chain
    raise CliError(f"no {section} keeper key: set {section}.key (or private_key) in the config or env")


def _clearinghouse_and_markets(ctx: RunContext) -> tuple[Any, dict[str, Any]]:
    ch = ctx.clearinghouse()
    markets = {s: ctx.contract("PerpMarket", m.market) for s, m in ctx.manifest.markets.items() if m.market}
    return ch, markets


def _run_clearinghouse_bot(ctx: RunContext, bot_class: Any, section: str, **options: Any) -> BotRun:
    """Start a bot that works on the clearinghouse, its liquidation engine, its lens and its
    markets (liquidation, ADL) from its settings section; every address from the manifest."""
    bs = getattr(ctx.settings, section)
    dry_run = ctx.settings.dry_run or bs.dry_run
    key = _bot_key(ctx, bs.key, section, dry_run)
    for name in ("clearinghouse", "liquidation_engine", "lens"):
        ctx.manifest_address(name)  # an older manifest fails here, before the node is asked
    ch, markets = _clearinghouse_and_markets(ctx)
    engine, lens = ctx.liquidation_engine(), ctx.lens()
    bot = bot_class(
        ctx.client(key),
        ch,
        markets,
        engine=engine,
        lens=lens,
        max_per_round=bs.max_per_round,
        health_page=bs.health_page,
        dry_run=dry_run,
        logger=get_logger(f"keeper.{section}"),
        **options,
    )
    return BotRun(bot, bs.interval_s)


def run_liquidation(ctx: RunContext) -> BotRun:
    from keeper.bots.liquidation import LiquidationBot

    ls = ctx.settings.liquidation
    cap = ls.takeover_max_notional
    return _run_clearinghouse_bot(
        ctx,
        LiquidationBot,
        "liquidation",
        gas=ls.gas,
        no_fill_backoff_blocks=ls.no_fill_backoff_blocks,
        takeover_subaccount=ls.takeover_subaccount,
        takeover_max_notional=None if cap is None else int(Decimal(str(cap)) * 10**18),  # quote WAD
    )


def run_adl(ctx: RunContext) -> BotRun:
    from keeper.bots.adl import AdlBot

    return _run_clearinghouse_bot(ctx, AdlBot, "adl")


BotRunner = Callable[[RunContext], BotRun]

# `keeper run <name>`
BOTS: dict[str, tuple[str, BotRunner]] = {
    "oracle": ("push index prices from a feed to the IndexOracles", run_oracle),
    "funding": ("take premium samples and settle funding when due", run_funding),
    "liquidation": ("liquidate accounts below maintenance margin, worst first", run_liquidation),
    "adl": ("auto-deleverage bankrupt positions the insurance fund cannot cover", run_adl),
}


# ---------------------------------------------------------------- parser


def _add_common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML or TOML settings file (default: $VYPERP_CONFIG)")
    p.add_argument("--rpc", dest="rpc_url", help="JSON-RPC URL (overrides settings)")
    p.add_argument("--manifest", type=Path, help="deployment manifest JSON (overrides settings)")
    p.add_argument("--dry-run", action="store_true", help="log what would be sent, send nothing")
    p.add_argument("--log-level", help="DEBUG, INFO, WARNING, ...")
    p.add_argument(
        "--once", action="store_true", help="run one step of each bot and exit (non-zero if one failed)"
    )
    p.add_argument("--steps", type=int, help="stop after N steps (of each bot)")
    p.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve /health and /metrics on 127.0.0.1:PORT, 0 for a free port (overrides metrics_port)",
    )


class _BotNames(argparse.Action):
    """`keeper run BOT [BOT ...]`: the names in order, each once (`bot` too when only one, as before)."""

    def __call__(
        self, parser: Any, namespace: argparse.Namespace, values: Any, option_string: Any = None
    ) -> None:
        names = list(dict.fromkeys(values))
        namespace.bots = names
        namespace.bot = names[0] if len(names) == 1 else None


def _add_run_command(sub: Any) -> None:
    bots = "\n".join(f"  {name:<12} {help_text}" for name, (help_text, _) in BOTS.items())
    run = sub.add_parser(
        "run",
        help="run keeper bots (one or several, in one process)",
        description="Run the chosen keeper bots in one process, one thread each, until SIGINT/SIGTERM.",
        epilog=f"bots:\n{bots}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "bots",
        nargs="+",
        choices=list(BOTS),
        metavar="BOT",
        action=_BotNames,
        help=f"one or more of: {', '.join(BOTS)}",
    )
    _add_common_options(run)
    run.set_defaults(handler=_run_bot)


def _run_bot(args: argparse.Namespace) -> int:
    settings = load_settings(
        args.config,
        rpc_url=args.rpc_url,
        manifest=args.manifest,
        log_level=args.log_level,
        dry_run=True if args.dry_run else None,
        metrics_port=args.metrics_port,
    )
    setup_logging(settings.log_level)
    # each bot its own context: its own web3 connection (and key, from its section)
    runs = [BOTS[name][1](RunContext(settings, args)) for name in args.bots]
    if args.once:
        return _run_once(runs)
    from keeper.service import Supervisor

    supervisor = Supervisor(
        runs,
        rpc_url=settings.rpc_url,
        max_steps=args.steps,
        health_max_age_s=settings.health_max_age_s,
        shutdown_timeout_s=settings.shutdown_timeout_s,
    )
    return supervisor.run(metrics_port=settings.metrics_port)


def _run_once(runs: list[BotRun]) -> int:
    """`--once`: one step of each bot in turn; 1 if any of their actions failed."""
    code = 0
    for r in runs:
        result = r.bot.run_once()
        log.info(f"{r.bot.name} step done", extra={"result": result, **r.bot.health()})
        if result is None or result["failed"] != 0:
            code = 1
    return code


def _add_scenario_command(sub: Any) -> None:
    from keeper.scenario.cli import add_scenario_command  # lazily: `keeper run` need not load it

    add_scenario_command(sub)


def _add_audit_command(sub: Any) -> None:
    from keeper.audit import add_audit_command  # lazily, as scenario

    add_audit_command(sub)


def _add_people_commands(sub: Any) -> None:
    # `keeper status`, `keeper trade`; lazily, as scenario
    from keeper.people.commands import add_people_commands

    add_people_commands(sub)


# (register subparsers, ...) per top-level command; `scenario` goes here
COMMANDS: list[Callable[[Any], None]] = [
    _add_run_command,
    _add_scenario_command,
    _add_audit_command,
    _add_people_commands,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="keeper", description="vyperp keeper bots")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (CliError, SettingsError) as exc:
        print(f"keeper: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
