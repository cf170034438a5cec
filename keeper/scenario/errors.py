"""The scenario runner's errors."""

from __future__ import annotations


class ScenarioError(ValueError):
    """A malformed scenario: the message is one line naming the line and the key."""


class ScenarioEnvironmentError(RuntimeError):
    """The node could not be started or reached."""


class UnobservableValue(Exception):
    """A field the runner cannot compute exactly from the chain (e.g. funding settled without an event)."""


def _describe_error(exc: BaseException) -> str:
    from keeper.chain import TxReverted

    if isinstance(exc, TxReverted):
        return f"reverted: {exc.reason or '(no reason)'}"
    return f"{type(exc).__name__}: {exc}"
