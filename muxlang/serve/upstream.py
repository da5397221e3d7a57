"""The gateway's seams to the backends layer: retries, ``${VAR}`` expansion, HTTP errors.

Everything here delegates to :mod:`muxlang.runtime.backends` and
:mod:`muxlang.config` so that ``muxlang serve`` retries, expands and classifies
exactly like ``muxlang run``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, TypeVar

from muxlang.config.models import BackendConfig
from muxlang.llm import Backend

T = TypeVar("T")


class RetryFn(Protocol):
    """Runs ``call`` with the retry rules of SPEC section 6 for backend ``name``."""

    def __call__(
        self, name: str, config: BackendConfig, call: Callable[[], Awaitable[T]]
    ) -> Awaitable[T]: ...


class BackendSource(Protocol):
    """What the gateway needs from the backends' router."""

    def backend(self, name: str) -> Backend: ...


async def no_retry(name: str, config: BackendConfig, call: Callable[[], Awaitable[T]]) -> T:
    """A single attempt (tests that count upstream requests use it)."""
    return await call()


def expand_backend(name: str, config: BackendConfig, environ: Mapping[str, str]) -> BackendConfig:
    """``${VAR}`` expanded in every string of the backend (raises naming the variable)."""
    from muxlang.config import expand_env

    return expand_env(name, config, environ)
