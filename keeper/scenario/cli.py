"""`keeper scenario run FILE` and `keeper scenario check FILE`."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from keeper.scenario.errors import ScenarioEnvironmentError, ScenarioError
from keeper.scenario.loader import load_scenario
from keeper.scenario.runner import run_scenario


@contextmanager
def _quiet_chain_logs(verbose: bool) -> Iterator[None]:
    """The chain client warns on every pre-flight revert; expected reverts are part of a scenario."""
    logger = logging.getLogger("keeper.chain")
    level = logger.level
    logger.setLevel(logging.WARNING if verbose else logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _cli_run(args: argparse.Namespace) -> int:
    from keeper.errors import CliError

    try:
        scenario = load_scenario(args.file)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    with _quiet_chain_logs(args.verbose):
        try:
            result = run_scenario(
                scenario, args.rpc_url, verbose=args.verbose, out=lambda s: print(s, flush=True)
            )
        except ScenarioEnvironmentError as exc:
            raise CliError(str(exc)) from None
    return 0 if result.ok else 1


def _cli_check(args: argparse.Namespace) -> int:
    from keeper.errors import CliError

    try:
        scenario = load_scenario(args.file)
    except ScenarioError as exc:
        raise CliError(str(exc)) from None
    print(f"{args.file}: ok ({len(scenario.steps)} steps)")
    missing = scenario.missing_features()
    if missing:
        print(f"note: requires {', '.join(missing)}: not implemented yet")
    return 0


def add_scenario_command(sub: Any) -> None:
    """`keeper scenario run FILE [--rpc URL] [--verbose]` and `keeper scenario check FILE`."""
    p = sub.add_parser("scenario", help="run YAML scenarios against a fresh deployment")
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    run = actions.add_parser(
        "run",
        help="run a scenario (exit 0: every expectation holds, 1: one fails, 2: malformed file)",
    )
    run.add_argument("file", type=Path, help="scenario YAML file")
    run.add_argument("--rpc", dest="rpc_url", help="use this node (must know anvil's dev mnemonic)")
    run.add_argument("--verbose", "-v", action="store_true", help="print every transaction")
    run.set_defaults(handler=_cli_run)
    check = actions.add_parser("check", help="parse and validate a scenario without running it")
    check.add_argument("file", type=Path, help="scenario YAML file")
    check.set_defaults(handler=_cli_check)
