"""Reads that survive a flaky node: the HTTP connection every keeper uses (transport retries
for reads only, never ``eth_sendRawTransaction``) and :func:`call_with_retry`, which retries a
read on connection errors. Sends are never retried (see :mod:`keeper.chain`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.providers.rpc.utils import REQUEST_RETRY_ALLOWLIST, ExceptionRetryConfiguration

T = TypeVar("T")

# Transport errors worth retrying for reads; never for sends.
RETRYABLE_READ_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    requests.ConnectionError,
    requests.Timeout,
)


def connect(rpc_url: str, *, timeout_s: float = 10.0) -> Web3:
    """Web3 over HTTP with a request timeout; transport retries for reads only (never eth_sendRawTransaction)."""
    retry = ExceptionRetryConfiguration(
        errors=RETRYABLE_READ_ERRORS,
        retries=3,
        backoff_factor=0.125,
        method_allowlist=[m for m in REQUEST_RETRY_ALLOWLIST if m != "eth_sendRawTransaction"],
    )
    provider = Web3.HTTPProvider(
        rpc_url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=retry
    )
    return Web3(provider)


def call_with_retry(
    fn: Callable[[], T] | ContractFunction,
    retries: int = 3,
    backoff: float = 0.5,
    *,
    logger: logging.Logger | None = None,
) -> T | Any:
    """Run a read (a zero-argument callable, or a ContractFunction to `.call()`), retrying connection errors.

    Only for read-only calls: a reverting call raises immediately.
    """
    read: Callable[[], Any] = fn.call if isinstance(fn, ContractFunction) else fn
    attempt = 0
    while True:
        try:
            return read()
        except RETRYABLE_READ_ERRORS as exc:
            attempt += 1
            if attempt > retries:
                raise
            delay = backoff * 2 ** (attempt - 1)
            if logger is not None:
                logger.warning(
                    "read failed, retrying", extra={"error": repr(exc), "attempt": attempt, "delay_s": delay}
                )
            time.sleep(delay)


__all__ = ["RETRYABLE_READ_ERRORS", "call_with_retry", "connect"]
