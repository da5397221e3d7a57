"""The one retry loop of a backend call (SPEC section 6).

Retried: rate limits when ``retry_rate_limit``; server errors and connection
errors always; timeouts only with ``retry_timeout``; never client or config
errors. Up to ``max_retries`` retries; the wait before retry *n* (0-based) is
``retry_delay · 2^n`` ms with ±25 % jitter, capped at :data:`MAX_BACKOFF`, and never
shorter than what the failed attempt's own response asked for (``Retry-After`` /
``retry-after-ms``). A server asking for more than :data:`MAX_SERVER_WAIT` is not
retried: the error says how long it asked for. Waits use ``trio.sleep``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import trio

from muxlang.config.models import BackendConfig
from muxlang.llm import BackendError, ErrorKind

log = logging.getLogger("muxlang.backends")

T = TypeVar("T")

MAX_BACKOFF = 60.0
MAX_SERVER_WAIT = 600.0
JITTER = 0.25

OnRetry = Callable[[BackendError, int, float], None]
"""Called before each wait with the error, the retry number (1-based) and the delay."""


def is_retryable(error: BackendError, config: BackendConfig) -> bool:
    if error.kind is ErrorKind.RATE_LIMIT:
        return config.retry_rate_limit
    if error.kind is ErrorKind.TIMEOUT:
        return config.retry_timeout
    return error.kind in (ErrorKind.SERVER, ErrorKind.CONNECTION)


def backoff(
    config: BackendConfig,
    attempt: int,
    retry_after: float | None = None,
    *,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``attempt + 1``."""
    base = config.retry_delay / 1000.0 * (2.0**attempt)
    delay = min(MAX_BACKOFF, base * (1 - JITTER + 2 * JITTER * rand()))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def next_delay(error: BackendError, config: BackendConfig, attempt: int) -> float | None:
    """Seconds to wait before retrying after ``error`` on 0-based ``attempt``; None: give up.

    Sets ``error.attempts``; when the server asked for an excessive wait the
    error is re-raised with that said."""
    error.attempts = attempt + 1
    if attempt >= config.max_retries or not is_retryable(error, config):
        return None
    if error.retry_after is not None and error.retry_after > MAX_SERVER_WAIT:
        raise BackendError(
            error.backend,
            error.kind,
            f"{error.message} (the server asked to retry after {error.retry_after:.0f} s;"
            " not waiting that long)",
            status=error.status,
            retry_after=error.retry_after,
            attempts=error.attempts,
        ) from error
    return backoff(config, attempt, error.retry_after)


async def wait_before_retry(
    name: str,
    config: BackendConfig,
    error: BackendError,
    attempt: int,
    delay: float,
    on_retry: OnRetry | None = None,
) -> None:
    log.info(
        "backend %s: %s; retry %d/%d in %.2f s",
        name,
        error.kind.value,
        attempt,
        config.max_retries,
        delay,
    )
    if on_retry is not None:
        on_retry(error, attempt, delay)
    await trio.sleep(delay)


async def with_retries(
    name: str,
    config: BackendConfig,
    call: Callable[[], Awaitable[T]],
    *,
    on_retry: OnRetry | None = None,
) -> T:
    """``await call()``, retried by the rules above; the final error carries ``attempts``."""
    attempt = 0
    while True:
        try:
            return await call()
        except BackendError as error:
            delay = next_delay(error, config, attempt)
            if delay is None:
                raise
            attempt += 1
            await wait_before_retry(name, config, error, attempt, delay, on_retry)
