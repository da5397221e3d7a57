"""Shared pieces of the backends layer: expansion, secrets, Retry-After, streaming glue."""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import field

import trio

from muxlang._frozen import frozen
from muxlang.config.models import BackendConfig
from muxlang.llm import (
    Availability,
    BackendError,
    ChatResponse,
    ErrorKind,
    Finish,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
)
from muxlang.redaction import SECRET_NAME, redact_cut
from muxlang.redaction import redact as redact  # re-exported: muxlang.runtime.backends.redact

#: names of variables whose values are treated as secrets wherever they end up
_SECRET_NAME = SECRET_NAME
_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
#: shortest value worth redacting (shorter ones would shred ordinary messages)
_MIN_SECRET = 4


@frozen(slots=True)
class Prepared:
    """A backend's configuration with ``${VAR}`` expanded, or why it could not be."""

    name: str
    raw: BackendConfig
    #: None when expansion failed; holds expanded secrets, so never in a repr
    config: BackendConfig | None = field(repr=False)
    problem: str | None  # the expansion error (names backend and variable)
    secrets: tuple[str, ...] = field(repr=False)

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def redact_cut(self, text: str, limit: int, *, keep: str = "head") -> str:
        """Redacted first, then cut (a cut key would no longer match)."""
        return redact_cut(text, self.secrets, limit, keep=keep)

    @property
    def problem_message(self) -> str:
        """The expansion problem without the ``backend `NAME`: `` prefix (errors add it)."""
        problem = self.problem or "cannot be used"
        return problem.removeprefix(f"backend `{self.name}`: ")

    def usable(self) -> BackendConfig:
        """The expanded configuration a request may use; a CONFIG :class:`BackendError`
        when expansion failed or the backend is disabled (every backend kind alike)."""
        if self.config is None:
            raise BackendError(self.name, ErrorKind.CONFIG, self.problem_message)
        if not self.config.enabled:
            raise BackendError(self.name, ErrorKind.CONFIG, f"backend `{self.name}` is disabled")
        return self.config


class PreparedBackend:
    """What a configured backend of either kind (command line, HTTP) holds: its
    prepared configuration, the nursery its streams run in and its timeout; and
    whether the configuration alone lets it be used."""

    def __init__(self, prepared: Prepared, nursery: trio.Nursery) -> None:
        self.name = prepared.name
        self._prepared = prepared
        self._nursery = nursery
        self.timeout = prepared.raw.timeout

    def availability(self) -> Availability:
        """Unusable when disabled, or when its ``${VAR}`` references did not expand."""
        if not self._prepared.raw.enabled:
            return Availability(False, f"backend `{self.name}` is disabled")
        if self._prepared.config is None:
            return Availability(False, self._prepared.problem or "unusable")
        return Availability(True)


def prepare(name: str, raw: BackendConfig, environ: Mapping[str, str]) -> Prepared:
    """Expand the backend's ``${VAR}`` references and collect the secret values it holds."""
    from muxlang.config import EnvVarError, expand_env

    try:
        config = expand_env(name, raw, environ)
    except EnvVarError as exc:
        return Prepared(name, raw, None, str(exc), _secret_values(raw, None, environ))
    return Prepared(name, raw, config, None, _secret_values(raw, config, environ))


def _secret_values(
    raw: BackendConfig, config: BackendConfig | None, environ: Mapping[str, str]
) -> tuple[str, ...]:
    found: set[str] = set()
    if config is not None:
        if config.api_key:
            found.add(config.api_key)
        found.update(config.headers.values())
    # any variable with a secret-looking name that this backend refers to
    texts: list[str] = [raw.command, *raw.args, *raw.env.values(), *raw.headers.values()]
    texts += [raw.api_key or "", raw.model or "", raw.system or ""]
    for text in texts:
        for var in _REFERENCE.findall(text):
            if _SECRET_NAME.search(var) and environ.get(var):
                found.add(environ[var])
    if raw.api_key:
        for var in _REFERENCE.findall(raw.api_key):
            if environ.get(var):
                found.add(environ[var])
    return tuple(sorted((s for s in found if len(s) >= _MIN_SECRET), key=len, reverse=True))


@frozen(slots=True)
class Probe:
    """What ``doctor`` found by actually trying a backend."""

    ok: bool
    detail: str = ""
    problems: tuple[str, ...] = ()


# --------------------------------------------------------------------------- Retry-After


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the server asked to wait, from ``retry-after-ms`` and ``Retry-After``
    (seconds or an HTTP date). When both are readable the larger wins: the wait is
    never shorter than anything the server sent. None when absent or unreadable."""
    lower = {k.lower(): v for k, v in headers.items()}
    waits = [
        value
        for value in (
            _retry_after_ms(lower.get("retry-after-ms")),
            _retry_after(lower.get("retry-after"), now),
        )
        if value is not None
    ]
    return max(waits) if waits else None


def _retry_after_ms(raw: str | None) -> float | None:
    """``retry-after-ms`` in seconds, or None when absent or unreadable."""
    if raw is None:
        return None
    try:
        value = float(raw) / 1000.0
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _retry_after(raw: str | None, now: float | None) -> float | None:
    """``Retry-After`` (seconds or an HTTP date) in seconds, or None."""
    if raw is None:
        return None
    after = raw.strip()
    try:
        value = float(after)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(after)
        except (TypeError, ValueError, IndexError):
            return None
        current = time.time() if now is None else now
        return max(0.0, when.timestamp() - current)
    return value if math.isfinite(value) and value >= 0 else None


# --------------------------------------------------------------------------- streaming glue


def events_of(response: ChatResponse) -> list[StreamEvent]:
    """A whole answer as the events a stream of it would have been."""
    events: list[StreamEvent] = []
    if response.text:
        events.append(TextDelta(response.text))
    for i, call in enumerate(response.tool_calls):
        events.append(ToolCallDelta(i, id=call.id, name=call.name, arguments=call.arguments))
    events.append(Finish(response.finish_reason, response.usage))
    return events


class _Failure:
    __slots__ = ("error",)

    def __init__(self, error: BackendError) -> None:
        self.error = error


Producer = Callable[[Callable[[StreamEvent], Awaitable[None]]], Awaitable[None]]


async def channel_stream(
    nursery: trio.Nursery, name: str, producer: Producer
) -> AsyncIterator[StreamEvent]:
    """Run ``producer(emit)`` as a task in ``nursery`` and yield what it emits.

    The generator holds no cancel scope or nursery across its yields (trio forbids
    that); closing it cancels the producer, which stops its process or request.
    Errors of the producer come out of the generator as :class:`BackendError`.
    """
    send, receive = trio.open_memory_channel[StreamEvent | _Failure](0)
    scope = trio.CancelScope()

    async def run() -> None:
        with scope:
            async with send:
                try:
                    await producer(send.send)
                except BackendError as exc:
                    await send.send(_Failure(exc))
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
                except Exception as exc:  # a bug must not take the router's nursery down
                    error = BackendError(name, ErrorKind.SERVER, f"unexpected error: {exc!r}")
                    await send.send(_Failure(error))

    nursery.start_soon(run)
    try:
        async with receive:
            async for item in receive:
                if isinstance(item, _Failure):
                    raise item.error
                yield item
    finally:
        scope.cancel()
