"""CLI and HTTP backends, roles and retries: the runtime's :class:`~muxlang.llm.QueryService`.

``async with open_router(config) as router:`` gives a :class:`Router` with
``query`` (the QueryService), ``complete`` (whole ChatResponse), ``stream`` (events,
fallback only before the first), ``backend(name)`` (single attempts),
``resolve(target)`` and ``availability(target)``. :func:`with_retries` is the one
retry loop, for callers that drive single attempts themselves (the gateway).
"""

from __future__ import annotations

from muxlang.runtime.backends.base import parse_retry_after, redact
from muxlang.runtime.backends.cli import RATE_LIMIT_WORDING, CliBackend
from muxlang.runtime.backends.http import HttpBackend
from muxlang.runtime.backends.retry import backoff, is_retryable, with_retries
from muxlang.runtime.backends.router import Resolution, Router, open_router, parallel_output

__all__ = [
    "RATE_LIMIT_WORDING",
    "CliBackend",
    "HttpBackend",
    "Resolution",
    "Router",
    "backoff",
    "is_retryable",
    "open_router",
    "parallel_output",
    "parse_retry_after",
    "redact",
    "with_retries",
]
