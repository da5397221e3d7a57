"""Usage, cost, budgets and the answer cache, around any query service (SPEC section 10).

:class:`Accounting` wraps the run's :class:`~muxlang.llm.QueryService`:

- before a call: when the workflow's ``max_tokens`` or ``max_cost`` is spent,
  no further backend call starts — the query fails with a message naming the
  budget;
- the cache: a query step with ``cache = true`` or an age (``"7d"``), or
  ``[defaults] cache``, is answered from an earlier identical question when
  there is one — keyed by a hash of the backend's identity (command or URL,
  protocol, model, options, args; for a role its mode and members), the
  system and prompt, and :data:`CACHE_VERSION`. Errors are never cached;
- after a call: tokens and ``cost`` (from the answering backends' ``price``)
  are counted and returned with the answer.

Which step is asking comes from :func:`muxlang.runtime.trace.current_step`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from muxlang.compiler.plan import Plan
from muxlang.config.models import BackendConfig
from muxlang.llm import BackendError, ChatRequest, ErrorKind, QueryResult, QueryService, Usage
from muxlang.runtime import trace
from muxlang.workflow import QueryStep

log = logging.getLogger("muxlang.query")

#: bump when the cached value's shape or the key's recipe changes
CACHE_VERSION = 1

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_AGE_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """Seconds from ``30d``, ``12h``, ``90m``, ``2w``, ``45s``."""
    match = _AGE.match(text)
    if not match:
        raise ValueError(f"invalid age {text!r}: use a number and a unit, e.g. 30d, 12h, 90m, 2w")
    return float(match.group(1)) * _AGE_SECONDS[match.group(2)]


class CacheStore(Protocol):
    def cache_get(
        self, key: str, max_age: float | None
    ) -> tuple[str, str | None, dict[str, Any]] | None: ...

    def cache_put(
        self, key: str, output: str, backend: str | None, fields: Mapping[str, Any]
    ) -> None: ...


@dataclass
class Budget:
    """The workflow's ``max_tokens`` / ``max_cost`` and what the run spent so far."""

    max_tokens: int | None = None
    max_cost: float | None = None
    tokens: int = 0
    cost: float = 0.0

    def spent(self) -> str | None:
        """Why no further call may start (None while within budget)."""
        if self.max_tokens is not None and self.tokens >= self.max_tokens:
            return (
                f"the run's token budget is spent: max_tokens = {self.max_tokens}, "
                f"{self.tokens} used; no further backend call starts"
            )
        if self.max_cost is not None and self.cost >= self.max_cost:
            return (
                f"the run's cost budget is spent: max_cost = {self.max_cost:g} USD, "
                f"{self.cost:.4f} USD used; no further backend call starts"
            )
        return None


def cost_of(usage: Usage | None, price_of: list[BackendConfig]) -> float | None:
    """USD for ``usage`` at the prices of the backends that answered (their mean when
    several answered a parallel role); None when none of them has a price."""
    prices = [b.price for b in price_of if b.price is not None]
    if not prices:
        return None
    usage = usage or Usage()
    input_price = sum(p.input for p in prices) / len(prices)
    output_price = sum(p.output for p in prices) / len(prices)
    return (usage.input_tokens * input_price + usage.output_tokens * output_price) / 1_000_000


@dataclass
class Accounting:
    """A query service that counts, budgets and caches around ``inner``."""

    inner: QueryService
    plan: Plan
    budget: Budget = field(default_factory=Budget)
    cache: CacheStore | None = None
    #: ``--refresh-cache``: ask again and replace what is cached
    refresh: bool = False
    #: called once if the cache cannot be used (a broken database)
    on_cache_error: Any = None

    async def query(
        self, target: str, request: ChatRequest, *, kind: Literal["role", "backend"]
    ) -> QueryResult:
        step = trace.current_step()
        plan, max_age = self._cache_age(step[0]) if step is not None else (self.plan, None)
        key = None
        if max_age is not None and self.cache is not None:
            key = cache_key(plan, target, kind, request)
            if not self.refresh:
                hit = self._get(key, max_age)
                if hit is not None:
                    log.debug("step %s: answered from the cache", step[0] if step else "?")
                    run_trace = trace.current_trace()
                    if run_trace is not None and step is not None:
                        run_trace.mark(step, origin="cache")
                    return hit
        reason = self.budget.spent()
        if reason is not None:
            raise BackendError(target, ErrorKind.CONFIG, reason)
        asker = f"step {step[0]}" + (f" item {step[1] + 1}" if step[1] >= 0 else "") if step else ""
        if log.isEnabledFor(logging.DEBUG):
            size = sum(len(m.content) for m in request.messages) + len(request.system or "")
            log.debug("%s asks %s %s: prompt of %d characters", asker, kind, target, size)
        try:
            result = await self.inner.query(target, request, kind=kind)
        except BackendError as exc:
            log.debug("%s: %s gave no answer after %d attempt(s)", asker, target, exc.attempts)
            raise
        backends = plan.config.backends
        answered = [
            backends[name]
            for name in (result.outputs or ({result.backend: ""} if result.backend else {}))
            if name in backends
        ]
        cost = cost_of(result.usage, answered)
        usage = result.usage or Usage()
        log.debug(
            "%s: %s answered (%d input / %d output tokens)",
            asker,
            result.backend or target,
            usage.input_tokens,
            usage.output_tokens,
        )
        self.budget.tokens += usage.input_tokens + usage.output_tokens
        self.budget.cost += cost or 0.0
        if key is not None:
            self._put(key, result)
        return QueryResult(
            output=result.output,
            outputs=result.outputs,
            backend=result.backend,
            usage=result.usage,
            cost=cost,
        )

    # ------------------------------------------------------------------ cache

    def _cache_age(self, name: str) -> tuple[Plan, float | None]:
        """The plan that defines step ``name`` (a nested step's, ``outer.inner``, is
        the called workflow's) and the step's cache age in seconds (``inf`` for
        ``true``; None when off): its own ``cache``, else its workflow's
        ``[defaults] cache``."""
        plan = step_plan(self.plan, name)
        if plan is None:
            return self.plan, None
        step = plan.step(_base(name.rpartition(".")[2])).step
        setting = step.cache if isinstance(step, QueryStep) else None
        if setting is None:
            setting = getattr(plan.config.defaults, "cache", None)
        if setting is None or setting is False:
            return plan, None
        if setting is True:
            return plan, float("inf")
        return plan, parse_age(str(setting))

    def _get(self, key: str, max_age: float) -> QueryResult | None:
        assert self.cache is not None
        try:
            found = self.cache.cache_get(key, None if max_age == float("inf") else max_age)
        except Exception as exc:  # a broken database: run without the cache
            self._broken(exc)
            return None
        if found is None:
            return None
        output, backend, fields = found
        outputs = fields.get("outputs")
        return QueryResult(
            output=output,
            outputs=dict(outputs) if isinstance(outputs, Mapping) else {},
            backend=backend,
            usage=Usage(),
            cost=None,
        )

    def _put(self, key: str, result: QueryResult) -> None:
        if self.cache is None:
            return
        try:
            self.cache.cache_put(
                key, result.output, result.backend, {"outputs": dict(result.outputs)}
            )
        except Exception as exc:
            self._broken(exc)

    def _broken(self, exc: Exception) -> None:
        self.cache = None
        if self.on_cache_error is not None:
            self.on_cache_error(exc)


def caches(plan: Plan) -> bool:
    """Whether a query step of ``plan``, or of a workflow it calls, may use the cache
    (its ``cache``, or its workflow's ``[defaults] cache``)."""
    if plan.config.defaults.cache not in (None, False):
        return True
    if any(isinstance(s.step, QueryStep) and s.step.cache for s in plan.steps()):
        return True
    return any(caches(called) for called in plan.calls.values())


def _base(segment: str) -> str:
    """``fix#2[3]`` -> ``fix``: a group's step as defined."""
    return segment.partition("#")[0].partition("[")[0]


def step_plan(plan: Plan, name: str) -> Plan | None:
    """The plan whose step ``name`` is (qualified: ``outer.inner``, ``fix#2.inner``,
    ``each[3].inner``, through calls within calls), None when there is none."""
    *groups, own = name.split(".")
    for segment in groups:
        called = plan.calls.get(_base(segment))
        if called is None:
            return None
        plan = called
    return plan if _base(own) in plan.graph else None


def identity(plan: Plan, target: str, kind: str, seen: tuple[str, ...] = ()) -> Any:
    """What makes a backend or role answer as it does (never its secrets: ``${VAR}``
    references stay unexpanded)."""
    config = plan.config
    if kind == "role" or (target in config.roles and target not in config.backends):
        role = config.roles.get(target)
        if role is None or target in seen:
            return {"role": target}
        return {
            "execution": role.execution,
            "min_success": role.min_success,
            "members": [
                identity(plan, m, "role" if m in config.roles else "backend", (*seen, target))
                for m in role.backends
            ],
        }
    backend = config.backends.get(target)
    if backend is None:
        return {"backend": target}
    return {
        "command": backend.command,
        "args": list(backend.args),
        "prompt_via": backend.prompt_via,
        "protocol": backend.protocol if backend.is_http else None,
        "model": backend.model,
        "options": dict(backend.options),
        "system": backend.system,
    }


def cache_key(plan: Plan, target: str, kind: str, request: ChatRequest) -> str:
    material = {
        "version": CACHE_VERSION,
        "target": identity(plan, target, kind),
        "system": request.system,
        "messages": [[m.role, m.content] for m in request.messages],
        "options": dict(request.options),
    }
    text = json.dumps(material, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
