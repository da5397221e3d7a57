"""How the gateway tells a client that a request could not be routed.

Roles are run by the one role engine (:mod:`muxlang.runtime.backends.engine`,
shared with ``muxlang run``) with the gateway's cooldown policy turned on;
:func:`route_error` turns the engine's error into the HTTP status and message
the client sees: a 404 for an unknown model, a 429 with Retry-After when every
usable backend is cooling down, a 503 when none can be used, else the status
that follows the last backend's error (502, 504, 429 ...).
"""

from __future__ import annotations

import math

from muxlang.llm import BackendError, ErrorKind
from muxlang.runtime.backends import Cooling, Unusable, leaves


class RouteError(Exception):
    """A request the gateway cannot route: carries the HTTP status for the client."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        retry_after: float | None = None,
        backend: str = "none",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after
        #: the backend concerned (``x-muxlang-backend``), ``none`` when there is none
        self.backend = backend


class UnknownModel(RouteError):
    def __init__(self, model: str, known: list[str]) -> None:
        hint = f"; known models: {', '.join(known)}" if known else ""
        super().__init__(404, f"model `{model}` is not a muxlang role or backend{hint}")
        self.model = model


class AllCooling(RouteError):
    """Every usable backend is cooling down; ``backend``: the one usable soonest."""

    def __init__(self, target: str, retry_after: float, backend: str = "none") -> None:
        super().__init__(
            429,
            f"`{target}` is cooling down after rate limits or server errors; retry in "
            f"{math.ceil(retry_after)} s",
            retry_after=retry_after,
            backend=backend,
        )


class Unavailable(RouteError):
    def __init__(self, target: str, reasons: list[str], backend: str = "none") -> None:
        detail = "; ".join(reasons) or "no backends"
        super().__init__(503, f"no backend of `{target}` can be used: {detail}", backend=backend)


class Failed(RouteError):
    """Every backend tried failed before answering; the status follows the last error."""

    def __init__(self, target: str, errors: list[BackendError]) -> None:
        last = errors[-1]
        status = status_for(last)
        retry_after = None
        if status == 429:
            hints = [e.retry_after for e in errors if e.retry_after is not None]
            retry_after = min(hints) if hints else None
        detail = "; ".join(f"{e.backend}: {e.message}" for e in errors)
        super().__init__(
            status, f"`{target}` failed: {detail}", retry_after=retry_after, backend=last.backend
        )
        self.errors = errors


def status_for(error: BackendError) -> int:
    """The HTTP status a client sees for a backend's final error."""
    match error.kind:
        case ErrorKind.RATE_LIMIT:
            return 429
        case ErrorKind.CLIENT:
            status = error.status or 400
            return status if 400 <= status < 500 else 400
        case ErrorKind.TIMEOUT:
            return 504
        case ErrorKind.CONFIG:
            return 503
        case _:
            return 502


def route_error(target: str, error: BackendError) -> RouteError:
    """The engine's final error for ``target`` as the client's error."""
    found = leaves(error)
    failures = [e for e in found if not isinstance(e, Unusable | Cooling)]
    if failures:
        return Failed(target, failures)
    cooling = [e for e in found if isinstance(e, Cooling)]
    if cooling:
        soonest = min(cooling, key=lambda e: e.retry_after or 0.0)
        return AllCooling(target, soonest.retry_after or 0.0, soonest.backend)
    reasons = [
        e.message if f"`{e.backend}`" in e.message else f"{e.backend}: {e.message}" for e in found
    ]
    return Unavailable(target, reasons, found[0].backend if found else "none")


def retry_after_header(seconds: float | None) -> dict[str, str]:
    """``Retry-After`` in whole seconds (at least 1) when a wait is known."""
    if seconds is None:
        return {}
    return {"retry-after": str(max(1, math.ceil(seconds)))}
