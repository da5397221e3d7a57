"""Whatever JSON a client sends, the gateway answers in the client's shape, never crashes."""

from __future__ import annotations

from typing import Any

import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serve_support import call, make_gateway

KEYS = [
    "model", "messages", "role", "content", "type", "text", "tool_calls", "function", "name",
    "arguments", "tool_call_id", "tools", "parameters", "tool_choice", "stop", "max_tokens",
    "temperature", "top_p", "stream", "stream_options", "include_usage", "system", "input",
    "tool_use_id", "input_schema", "stop_sequences", "id", "n", "max_completion_tokens",
]  # fmt: skip
ROLES = ["user", "assistant", "system", "tool", "developer", "a", "duo"]
VALUES = ["text", "tool_use", "tool_result", "function", "auto", "any", "tool", "image"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(ROLES + VALUES)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)
    ),
    max_leaves=20,
)
VALID = {"model": "a", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
random_bodies = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=8).map(
    lambda d: {**d, "model": d.get("model", "a")}
)
# a valid request with a few fields replaced: reaches the code past the messages
tweaked_bodies = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=3).map(
    lambda d: {**VALID, **{k: v for k, v in d.items() if k not in ("model", "messages")}}
)
bodies = random_bodies | tweaked_bodies


def _run(body: dict[str, Any], path: str) -> None:
    async def main() -> None:
        app, _ = make_gateway(["a"], {"duo": (["a"], "fallback")})
        result = await call(app, "POST", path, body)
        assert result.status in (200, 400, 404), (result.status, result.body)
        if result.status != 200:
            data = result.json
            if path.endswith("/messages"):
                assert data["type"] == "error"
                assert data["error"]["message"]
            else:
                assert data["error"]["message"]

    trio.run(main)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_any_openai_body_gets_an_answer_or_a_clear_error(body: dict[str, Any]) -> None:
    _run(body, "/v1/chat/completions")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_any_anthropic_body_gets_an_answer_or_a_clear_error(body: dict[str, Any]) -> None:
    _run(body, "/v1/messages")
