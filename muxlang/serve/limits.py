"""Client keys and their limits: ``[serve] api_keys`` and ``[serve.keys.NAME]``.

A request is identified by the key it sends (``Authorization: Bearer KEY`` or
``x-api-key: KEY``, compared in constant time). Keys of ``api_keys`` are
unlimited; a ``[serve.keys.NAME]`` key may be limited to some ``models`` (others
are refused with a 403) and to ``rpm`` / ``tpm`` / ``max_cost`` (over a limit:
a 429 with Retry-After), counted in the gateway's :class:`~muxlang.serve.state.State`.
When no key at all is configured, every request is let in, unlimited.
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Callable, Mapping
from dataclasses import field

from muxlang._frozen import frozen
from muxlang.config.models import BackendConfig, ServeConfig
from muxlang.llm import Usage
from muxlang.serve.state import KeyLimits, Refusal


@frozen
class ClientKey:
    """One configured key: its name (``None`` for ``api_keys``), secret and limits."""

    name: str | None
    secret: bytes
    models: frozenset[str] | None = None
    limits: KeyLimits = field(default_factory=KeyLimits)

    def allows(self, model: str) -> bool:
        return self.models is None or model in self.models


@frozen
class KeyRing:
    """Every key the gateway accepts."""

    keys: tuple[ClientKey, ...] = ()

    @property
    def required(self) -> bool:
        """Whether requests must carry a key."""
        return bool(self.keys)

    def identify(self, headers: Mapping[str, str]) -> ClientKey | None:
        """The key a request carries, or None when it carries none that is configured."""
        given: list[bytes] = []
        auth = headers.get("authorization", "")
        if auth[:7].lower() == "bearer ":
            given.append(auth[7:].strip().encode())
        if "x-api-key" in headers:
            given.append(headers["x-api-key"].strip().encode())
        if "x-goog-api-key" in headers:  # Gemini clients
            given.append(headers["x-goog-api-key"].strip().encode())
        found: ClientKey | None = None
        for candidate in given:
            for key in self.keys:  # every comparison is made: constant time
                if hmac.compare_digest(candidate, key.secret) and found is None:
                    found = key
        return found


def key_ring(serve: ServeConfig, api_keys: list[str], expand: Callable[[str, str], str]) -> KeyRing:
    """``api_keys`` (already expanded) and ``[serve.keys.NAME]``, each ``key`` through
    ``expand(value, name)`` (``${VAR}``). Raises ValueError for an empty key."""
    keys = [ClientKey(None, k.encode()) for k in api_keys]
    for name, spec in serve.keys.items():
        secret = expand(spec.key, name).strip()
        if not secret:
            raise ValueError(f"[serve.keys.{name}] key is empty")
        limits = KeyLimits(rpm=spec.rpm, tpm=spec.tpm, max_cost=spec.max_cost)
        models = None if spec.models is None else frozenset(spec.models)
        keys.append(ClientKey(name, secret.encode(), models, limits))
    return KeyRing(tuple(keys))


def cost_of(backend: BackendConfig | None, usage: Usage) -> float:
    """USD an answer cost by ``backend``'s ``price`` (0 when it has none)."""
    if backend is None or backend.price is None:
        return 0.0
    price = backend.price
    return (usage.input_tokens * price.input + usage.output_tokens * price.output) / 1_000_000


_WHAT = {"rpm": "requests per minute", "tpm": "tokens per minute", "max_cost": "USD per month"}


def refusal_message(key: ClientKey, refusal: Refusal) -> str:
    """The 429's message: which key, which limit, when to come back."""
    value = getattr(key.limits, refusal.limit)
    return (
        f"key `{key.name}` reached its limit of {value:g} {_WHAT[refusal.limit]} "
        f"(`{refusal.limit}`); retry in {math.ceil(refusal.retry_after)} s"
    )
