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
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import requests
from web3 import Web3
from web3.contract.contract import ContractFunction
from web3.exceptions import Web3RPCError

T = TypeVar("T")

READ_RETRIES = 3
READ_ATTEMPTS = READ_RETRIES + 1
READ_BACKOFF_S = 0.5  # before the n-th retry: READ_BACKOFF_S * 2 ** (n - 1)
#: JSON-RPC requests per batch at most (reads and raw transactions alike), unless the settings'
#: `max_batch` lowers it for a connection (`set_max_batch`), or a provider refusing a batch does
DEFAULT_MAX_BATCH = 200

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


# ---------------------------------------------------------------- JSON-RPC batches


def set_max_batch(w3: Web3, n: int) -> None:
    """At most `n` requests per JSON-RPC batch on this connection (a provider's cap)."""
    if n < 1:
        raise ValueError("max_batch must be at least 1")
    w3.provider.vyperp_max_batch = n  # type: ignore[attr-defined]


def max_batch(provider: Any) -> int:
    """The connection's batch cap: the settings' `max_batch`, lowered by refused batches."""
    return int(getattr(provider, "vyperp_max_batch", DEFAULT_MAX_BATCH))


def batch_request(
    provider: Any,
    requests_: Sequence[tuple[str, list[Any]]],
    *,
    retry: bool = True,
    logger: logging.Logger | None = None,
) -> list[dict[str, Any]]:
    """The JSON-RPC responses (``{"result": ...}`` or ``{"error": ...}``) of `requests_`, in
    order, sent in batches of at most `max_batch(provider)`. A batch the provider refuses (an
    error object instead of a list, a list of another length, an HTTP error such as 413, a
    provider without batches) is split in halves down to single requests, and the connection's
    cap is lowered to the half that is tried next, once, with a warning: hosted RPCs cap or
    refuse batches. Reads are retried on transport errors (`retry`, :func:`call_with_retry`);
    sends are not (``retry=False``): a raw transaction sent again is the same transaction (same
    nonce and hash), so a split after a refusal never sends anything twice."""
    out: list[dict[str, Any]] = []
    n = max_batch(provider)
    for start in range(0, len(requests_), n):
        out.extend(_batch(provider, list(requests_[start : start + n]), retry, logger))
    return out


def _batch(
    provider: Any, reqs: list[tuple[str, list[Any]]], retry: bool, logger: logging.Logger | None
) -> list[dict[str, Any]]:
    def run(fn: Callable[[], Any]) -> Any:
        return call_with_retry(fn, logger=logger) if retry else fn()

    if len(reqs) == 1 or not hasattr(provider, "make_batch_request"):
        return [run(lambda r=r: provider.make_request(*r)) for r in reqs]
    refused: Any
    try:
        refused = responses = run(lambda: provider.make_batch_request(reqs))
    except (requests.HTTPError, Web3RPCError, ValueError) as exc:
        refused, responses = exc, None
    if isinstance(responses, list) and len(responses) == len(reqs):
        return responses
    half = len(reqs) // 2
    if max_batch(provider) > half:
        provider.vyperp_max_batch = half
        (logger or logging.getLogger("keeper.rpc")).warning(
            "the node refused a JSON-RPC batch: smaller batches from now on",
            extra={"refused_size": len(reqs), "max_batch": half, "answer": str(refused)[:200]},
        )
    return _batch(provider, reqs[:half], retry, logger) + _batch(provider, reqs[half:], retry, logger)
