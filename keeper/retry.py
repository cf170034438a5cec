"""Reads that survive a flaky node, with one layer of retries: :func:`call_with_retry`.

A read wrapped in ``call_with_retry(read, retries=R)`` makes at most ``R + 1`` requests
(``READ_ATTEMPTS``, 4, by default) when the node drops or times out every one; anything not
wrapped is tried once. The HTTP connection every keeper uses (:func:`connect`) has web3's own
transport retries switched off (``exception_retry_configuration=None``; web3.py's
``HTTPProvider`` retries by default). Both layers used to be on, 3 web3 attempts under each of
``call_with_retry``'s 4: up to 12 requests for one read.

Why this layer and not web3's: the keepers call it explicitly around each read (the call sites
show what is retried), it logs each retry (given a logger), it covers JSON-RPC batches (web3
never retries ``make_batch_request``) and it only ever wraps reads. Sends are never retried (see
:mod:`keeper.chain`): with no transport retries, ``eth_sendRawTransaction`` goes out once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests
from web3 import Web3
from web3.contract.contract import ContractFunction

T = TypeVar("T")

READ_RETRIES = 3
READ_ATTEMPTS = READ_RETRIES + 1
READ_BACKOFF_S = 0.5  # before the n-th retry: READ_BACKOFF_S * 2 ** (n - 1)

# Transport errors worth retrying for reads; never for sends.
RETRYABLE_READ_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    TimeoutError,
    requests.ConnectionError,
    requests.Timeout,
)


def connect(rpc_url: str, *, timeout_s: float = 10.0) -> Web3:
    """Web3 over HTTP with a request timeout and no transport retries (each request is made once;
    reads are retried by :func:`call_with_retry`)."""
    provider = Web3.HTTPProvider(
        rpc_url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None
    )
    return Web3(provider)


def call_with_retry(
    fn: Callable[[], T] | ContractFunction,
    retries: int = READ_RETRIES,
    backoff: float = READ_BACKOFF_S,
    *,
    logger: logging.Logger | None = None,
) -> T | Any:
    """Run a read (a zero-argument callable, or a ContractFunction to `.call()`), retrying
    connection errors: at most `retries + 1` attempts.

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


__all__ = ["READ_ATTEMPTS", "READ_RETRIES", "RETRYABLE_READ_ERRORS", "call_with_retry", "connect"]
