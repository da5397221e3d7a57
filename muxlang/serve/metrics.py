"""``GET /metrics``: the gateway's counters in Prometheus text, via ``prometheus-client``.

Each app has its own ``CollectorRegistry`` (never the library's global one), so
several gateways in one process, and the tests, never share counters. These
counters are the replica's own: Prometheus sums replicas itself.

| metric | labels | what |
|---|---|---|
| ``muxlang_requests_total`` | model, backend, status | answered requests (backend ``none``: none) |
| ``muxlang_request_duration_seconds`` | model | from the request to the end of its answer |
| ``muxlang_tokens_total`` | model, backend, direction (in/out) | tokens the backends reported |
| ``muxlang_cost_usd_total`` | key | USD by backend ``price``, per named key |
| ``muxlang_cooldowns_total`` | backend | cooldowns started by this replica |
| ``muxlang_backend_cooldown_seconds`` | backend | left in its cooldown (all replicas') |
| ``muxlang_rate_limited_total`` | key, limit | requests refused by a key's limit |
| ``muxlang_shared_state_up`` | | 1 while the state is reachable (always 1 in memory) |
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from muxlang.llm import Usage
from muxlang.serve import state as st

#: the content type of :meth:`Metrics.render` (the text format every Prometheus reads)
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: request duration buckets, seconds: LLM answers take from milliseconds to minutes
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    """One gateway's counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "muxlang_requests",
            "Requests answered, by model asked, backend that answered and HTTP status.",
            ["model", "backend", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "muxlang_request_duration_seconds",
            "Seconds from a request to the end of its answer.",
            ["model"],
            buckets=BUCKETS,
            registry=r,
        )
        self.tokens = Counter(
            "muxlang_tokens",
            "Tokens the backends reported, in (prompt) and out (completion).",
            ["model", "backend", "direction"],
            registry=r,
        )
        self.cost = Counter(
            "muxlang_cost_usd", "USD spent by named keys (backend price).", ["key"], registry=r
        )
        self.cooldowns = Counter(
            "muxlang_cooldowns", "Cooldowns started by this replica.", ["backend"], registry=r
        )
        self.cooling = Gauge(
            "muxlang_backend_cooldown_seconds",
            "Seconds left in each backend's cooldown when scraped (0: usable).",
            ["backend"],
            registry=r,
        )
        self.rate_limited = Counter(
            "muxlang_rate_limited",
            "Requests refused because a key reached a limit.",
            ["key", "limit"],
            registry=r,
        )
        self.state_up = Gauge(
            "muxlang_shared_state_up",
            "1 while the cooldown/limit state is reachable (in memory: always).",
            registry=r,
        )

        # each request's labelled children, looked up once per label set: ``labels()``
        # checks and copies its arguments under a lock on every call (the label values
        # are few: configured names, "unknown"/"none" and HTTP statuses)
        self._answered: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._tokens: dict[tuple[str, str, str], Counter] = {}

    def answered(self, model: str, backend: str, status: int, seconds: float) -> None:
        key = (model, backend, status)
        children = self._answered.get(key)
        if children is None:
            children = self._answered[key] = (
                self.requests.labels(model, backend, str(status)),
                self.duration.labels(model),
            )
        children[0].inc()
        children[1].observe(max(0.0, seconds))

    def used(self, model: str, backend: str, usage: Usage) -> None:
        if usage.input_tokens:
            self._counted(model, backend, "in").inc(usage.input_tokens)
        if usage.output_tokens:
            self._counted(model, backend, "out").inc(usage.output_tokens)

    def _counted(self, model: str, backend: str, direction: str) -> Counter:
        key = (model, backend, direction)
        child = self._tokens.get(key)
        if child is None:
            child = self._tokens[key] = self.tokens.labels(model, backend, direction)
        return child

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


class MeteredState:
    """A :class:`~muxlang.serve.state.State` that counts cooldowns and refusals."""

    def __init__(self, inner: st.State, metrics: Metrics) -> None:
        self.inner = inner
        self.metrics = metrics
        metrics.state_up.set_function(lambda: 1 if getattr(inner, "shared", True) else 0)

    async def cooldown_until(self, backend: str) -> float | None:
        return await self.inner.cooldown_until(backend)

    async def cool(self, backend: str, seconds: float) -> None:
        self.metrics.cooldowns.labels(backend).inc()
        await self.inner.cool(backend, seconds)

    async def note_failure(self, backend: str, window_s: float) -> int:
        return await self.inner.note_failure(backend, window_s)

    async def clear(self, backend: str) -> None:
        await self.inner.clear(backend)

    async def admit(self, key: str, limits: st.KeyLimits) -> st.Refusal | None:
        refusal = await self.inner.admit(key, limits)
        if refusal is not None:
            self.metrics.rate_limited.labels(key, refusal.limit).inc()
        return refusal

    async def add_usage(self, key: str, tokens: int, cost: float) -> None:
        if cost > 0:
            self.metrics.cost.labels(key).inc(cost)
        await self.inner.add_usage(key, tokens, cost)

    async def usage(self, key: str) -> st.Usage:
        return await self.inner.usage(key)

    async def aclose(self) -> None:
        await self.inner.aclose()
