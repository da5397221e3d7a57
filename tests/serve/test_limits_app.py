"""Per-key limits in the gateway app, on a controlled clock (no minute boundaries)."""

from __future__ import annotations

import calendar

from muxlang.serve.limits import ClientKey, KeyRing
from muxlang.serve.state import KeyLimits, MemoryState
from tests.serve.serve_support import Clock, answer, call, make_gateway

USER = [{"role": "user", "content": "hi"}]
#: 2026-12-04 18:00:45 UTC
T0 = float(calendar.timegm((2026, 12, 4, 18, 0, 45)))


def keyed(limits: KeyLimits, models: frozenset[str] | None = None) -> tuple[KeyRing, Clock]:
    ring = KeyRing(
        (
            ClientKey(None, b"sk-admin-0001"),
            ClientKey("team", b"sk-team-0002", models, limits),
        )
    )
    return ring, Clock(T0)


TEAM = {"authorization": "Bearer sk-team-0002"}
TEAM_ANTHROPIC = {"x-api-key": "sk-team-0002", "anthropic-version": "2023-06-01"}


async def test_rpm_in_both_error_shapes_with_retry_after_and_the_next_minute() -> None:
    ring, clock = keyed(KeyLimits(rpm=1))
    app, fakes = make_gateway(["a"], keys=ring, state=MemoryState(now=clock))
    fakes["a"].default = answer("fine")
    body = {"model": "a", "messages": USER, "max_tokens": 10}
    assert (await call(app, "POST", "/v1/chat/completions", body, TEAM)).status == 200
    refused = await call(app, "POST", "/v1/chat/completions", body, TEAM)
    assert refused.status == 429
    assert refused.headers["retry-after"] == "15"
    assert refused.headers["x-muxlang-backend"] == "none"
    assert refused.json["error"]["type"] == "rate_limit_error"
    assert (
        "key `team` reached its limit of 1 requests per minute" in refused.json["error"]["message"]
    )
    anthropic = await call(app, "POST", "/v1/messages", body, TEAM_ANTHROPIC)
    assert anthropic.status == 429
    assert anthropic.json["type"] == "error"
    assert anthropic.json["error"]["type"] == "rate_limit_error"
    assert len(fakes["a"].requests) == 1  # refusals never reach a backend
    admin = {"authorization": "Bearer sk-admin-0001"}
    assert (await call(app, "POST", "/v1/chat/completions", body, admin)).status == 200
    clock.t += 15  # the next minute
    assert (await call(app, "POST", "/v1/chat/completions", body, TEAM)).status == 200


async def test_a_key_with_models_refuses_a_request_without_a_model_name() -> None:
    ring, clock = keyed(KeyLimits(), frozenset({"a"}))
    app, fakes = make_gateway(["a", "b"], keys=ring, state=MemoryState(now=clock))
    fakes["a"].default = fakes["b"].default = answer("fine")
    for body in ({"messages": USER}, {"model": ["a"], "messages": USER}):
        refused = await call(app, "POST", "/v1/chat/completions", body, TEAM)
        assert refused.status == 403
        assert refused.json["error"]["type"] == "permission_error"
    refused = await call(app, "POST", "/v1/messages", {"model": "b", "messages": USER}, TEAM)
    assert refused.status == 403
    assert refused.json["error"]["message"] == "key `team` may not use model `b`; it may use: a"
    listed = await call(app, "GET", "/v1/models", headers=TEAM)
    assert [m["id"] for m in listed.json["data"]] == ["a"]
    tags = await call(app, "GET", "/api/tags", headers=TEAM)
    assert [m["name"] for m in tags.json["models"]] == ["a"]
    admin = await call(app, "GET", "/api/tags", headers={"x-api-key": "sk-admin-0001"})
    assert {"a", "b"} <= {m["name"] for m in admin.json["models"]}
    assert fakes["b"].requests == []
