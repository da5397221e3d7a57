"""CLI and HTTP backends, roles and retries: the runtime's :class:`~muxlang.llm.QueryService`.

``async with open_router(config) as router:`` gives a :class:`Router` with
``query`` (the QueryService), ``complete`` (whole ChatResponse), ``stream`` (events,
fallback only before the first), ``backend(name)`` (single attempts),
``resolve(target)`` and ``availability(target)``. :func:`with_retries` is the one
retry loop, for callers that drive single attempts themselves (the gateway).
:class:`Engine` is the one role engine both use; :class:`Cooldowns` its policy
that ``muxlang serve`` turns on.
"""

from __future__ import annotations

from muxlang.runtime.backends import sse
from muxlang.runtime.backends.base import events_of, parse_retry_after, redact
from muxlang.runtime.backends.bounded import over_limit, read_bounded
from muxlang.runtime.backends.cli import RATE_LIMIT_WORDING, CliBackend
from muxlang.runtime.backends.cooldown import Cooldowns, CooldownStore
from muxlang.runtime.backends.engine import (
    Cooling,
    Engine,
    Policy,
    RoleFailed,
    Routed,
    Unusable,
    leaves,
)
from muxlang.runtime.backends.http import HttpBackend, Phase, transport_error
from muxlang.runtime.backends.retry import backoff, is_retryable, with_retries
from muxlang.runtime.backends.router import (
    Resolution,
    Router,
    open_router,
    parallel_output,
)
from muxlang.runtime.backends.transports import (
    CONNECTIONS_PER_CLIENT,
    LeastBusy,
    env_proxy,
    new_transport,
    send,
)

__all__ = [
    "CONNECTIONS_PER_CLIENT",
    "RATE_LIMIT_WORDING",
    "CliBackend",
    "CooldownStore",
    "Cooldowns",
    "Cooling",
    "Engine",
    "HttpBackend",
    "LeastBusy",
    "Phase",
    "Policy",
    "Resolution",
    "RoleFailed",
    "Routed",
    "Router",
    "Unusable",
    "backoff",
    "env_proxy",
    "events_of",
    "is_retryable",
    "leaves",
    "new_transport",
    "open_router",
    "over_limit",
    "parallel_output",
    "parse_retry_after",
    "read_bounded",
    "redact",
    "send",
    "sse",
    "transport_error",
    "with_retries",
]
