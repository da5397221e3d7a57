"""The ASGI layer: endpoints, auth, limits, error shapes, and same-format pass-through."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_support import FakeBackend, FakeBackends, call, make_gateway

from muxlang.compiler.plan import ResolvedConfig
from muxlang.config.models import BackendConfig, RoleConfig
from muxlang.llm import BackendError, ErrorKind
from muxlang.serve.app import GatewayApp
from muxlang.serve.gateway import Gateway
from muxlang.serve.passthrough import Passthrough
from muxlang.serve.server import ServeError, backend_secrets, check_bind, is_loopback
from tests.fakes.llm_server import FakeLLMServer, Reply, fake_llm_server

CHAT = "/v1/chat/completions"
USER = [{"role": "user", "content": "hi"}]


# --------------------------------------------------------------------------- endpoints


async def test_models_lists_roles_and_backends_in_both_shapes() -> None:
    app, _ = make_gateway(["a", "b"], {"duo": (["a", "b"], "fallback")})
    listing = await call(app, "GET", "/v1/models")
    assert listing.json["object"] == "list"
    assert [m["id"] for m in listing.json["data"]] == ["duo", "a", "b"]
    assert listing.json["data"][0]["object"] == "model"
    anth = await call(app, "GET", "/v1/models", headers={"anthropic-version": "2023-06-01"})
    assert [m["id"] for m in anth.json["data"]] == ["duo", "a", "b"]
    assert anth.json["data"][0]["type"] == "model"
    assert anth.json["has_more"] is False
    one = await call(app, "GET", "/v1/models/duo")
    assert one.json["id"] == "duo"
    missing = await call(app, "GET", "/v1/models/nope")
    assert missing.status == 404
    assert missing.json["error"]["code"] == "model_not_found"
    gone = await call(app, "GET", "/v1/models/nope", headers={"anthropic-version": "2023-06-01"})
    assert gone.status == 404
    assert gone.json["error"]["type"] == "not_found_error"


async def test_unknown_model_is_a_404_in_the_clients_shape() -> None:
    app, _ = make_gateway(["a"], {"duo": (["a"], "first")})
    o = await call(app, "POST", CHAT, {"model": "gpt-9", "messages": USER})
    assert o.status == 404
    # exactly what OpenAI answers, so SDKs and tools that match on the code work
    assert o.json == {
        "error": {
            "message": "The model `gpt-9` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
    a = await call(
        app, "POST", "/v1/messages", {"model": "gpt-9", "max_tokens": 5, "messages": USER}
    )
    assert a.status == 404
    assert a.json == {
        "type": "error",
        "error": {
            "type": "not_found_error",
            "message": "model `gpt-9` is not a muxlang role or backend; known models: a, duo",
        },
    }


@pytest.mark.parametrize(
    ("method", "path", "raw", "status", "needle"),
    [
        ("POST", CHAT, b"{not json", 400, "not valid JSON"),
        ("POST", CHAT, b"[1, 2]", 400, "must be a JSON object"),
        ("POST", CHAT, b'{"messages": []}', 400, "`model` is required"),
        ("POST", CHAT, b'{"model": "a", "messages": []}', 400, "must not be empty"),
        ("GET", CHAT, b"", 405, "use POST"),
        ("POST", "/v1/models", b"", 405, "use GET"),
        ("POST", "/v1/embeddings", b"{}", 404, "no such endpoint"),
    ],
)
async def test_bad_requests(method: str, path: str, raw: bytes, status: int, needle: str) -> None:
    app, fakes = make_gateway(["a"])
    result = await call(app, method, path, raw=raw)
    assert result.status == status
    assert needle in result.json["error"]["message"]
    assert fakes["a"].requests == []


async def test_paths_without_v1_work_too() -> None:
    app, _ = make_gateway(["a"])
    result = await call(app, "POST", "/chat/completions", {"model": "a", "messages": USER})
    assert result.json["choices"][0]["message"]["content"] == "a: hi"
    assert (await call(app, "GET", "/health")).json == {"status": "ok"}


async def test_body_limit_answers_413_in_the_clients_shape() -> None:
    app, fakes = make_gateway(["a"], max_body_bytes=200)
    big = {"model": "a", "max_tokens": 5, "messages": [{"role": "user", "content": "x" * 500}]}
    declared = await call(app, "POST", "/v1/messages", big)
    assert declared.status == 413
    assert declared.json["error"]["type"] == "request_too_large"
    # a body without a usable content-length is counted as it arrives
    streamed = await call(
        app,
        "POST",
        CHAT,
        raw=json.dumps(big).encode(),
        headers={"content-length": "x"},
        body_pieces=5,
    )
    assert streamed.status == 413
    assert "larger than 200 bytes" in streamed.json["error"]["message"]
    small = await call(app, "POST", CHAT, {"model": "a", "messages": USER})
    assert small.status == 200
    assert len(fakes["a"].requests) == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong"}, 401),
        ({"authorization": "Bearer k-123456"}, 200),
        ({"x-api-key": "k-123456"}, 200),
        ({"x-api-key": "k-654321"}, 200),
    ],
)
async def test_api_keys_are_required_when_configured(headers: dict[str, str], status: int) -> None:
    app, _ = make_gateway(["a"], api_keys=["k-123456", "k-654321"])
    result = await call(app, "POST", CHAT, {"model": "a", "messages": USER}, headers)
    assert result.status == status
    if status == 401:
        assert result.json["error"]["type"] == "authentication_error"
        assert "k-123456" not in result.body.decode()
    models = await call(app, "GET", "/v1/models", headers={**headers, "anthropic-version": "x"})
    assert models.status == status
    if status == 401:
        assert models.json["type"] == "error"


# --------------------------------------------------------------------------- pass-through


@pytest.fixture
def upstream() -> Iterator[FakeLLMServer]:
    with fake_llm_server() as server:
        yield server


def passthrough_app(server: FakeLLMServer, environ: dict[str, str] | None = None) -> GatewayApp:
    if environ is None:
        environ = {"UP_KEY": "sk-very-secret-1234"}
    config = ResolvedConfig(
        project_root=Path("."),
        backends={
            "oa": BackendConfig(
                command=server.base_url("openai"),
                protocol="openai",
                model="gpt-up",
                api_key="${UP_KEY}",
                max_retries=0,
            ),
            "an": BackendConfig(
                command=server.base_url("anthropic"),
                protocol="anthropic",
                model="claude-up",
                api_key="${UP_KEY}",
                max_retries=0,
            ),
            "local": BackendConfig(command="fake-local"),
        },
        roles={
            "chain": RoleConfig(backends=["oa", "local"], execution="fallback"),
            "achain": RoleConfig(backends=["an", "local"], execution="fallback"),
        },
    )
    from muxlang.config.env import EnvVarError, expand_env

    def expand(name: str, cfg: BackendConfig) -> BackendConfig:
        try:
            return expand_env(name, cfg, environ)
        except EnvVarError as exc:
            raise BackendError(name, ErrorKind.CONFIG, str(exc)) from None

    fakes = FakeBackends({n: FakeBackend(n) for n in config.backends})
    gateway = Gateway(config, fakes, passthrough=Passthrough(config, expand))
    return GatewayApp(gateway, secrets=backend_secrets(config, environ))


async def test_openai_to_openai_passes_the_body_through(upstream: FakeLLMServer) -> None:
    app = passthrough_app(upstream)
    body: dict[str, Any] = {
        "model": "oa",
        "messages": USER,
        "logit_bias": {"50256": -100},  # not in the internal type: survives only pass-through
        "seed": 7,
    }
    result = await call(app, "POST", CHAT, body)
    assert result.status == 200
    assert result.json["choices"][0]["message"]["content"] == "hi"
    seen = upstream.requests[0]
    assert seen.path == "/v1/chat/completions"
    assert seen.json == {**body, "model": "gpt-up"}
    assert seen.headers["authorization"] == "Bearer sk-very-secret-1234"


async def test_anthropic_stream_bytes_are_relayed(upstream: FakeLLMServer) -> None:
    app = passthrough_app(upstream)
    upstream.script(Reply.answer("one two three"))
    body = {"model": "an", "max_tokens": 9, "messages": USER, "stream": True, "top_k": 3}
    result = await call(app, "POST", "/v1/messages", body, {"anthropic-version": "2023-06-01"})
    assert result.headers["x-muxlang-backend"] == "an"
    kinds = [e for e, _ in result.events]
    assert kinds[0] == "message_start"
    assert kinds[-1] == "message_stop"
    text = "".join(
        d["delta"].get("text", "") for d in result.data if d.get("type") == "content_block_delta"
    )
    assert text == "one two three"
    seen = upstream.requests[0]
    assert seen.json == {**body, "model": "claude-up"}
    assert seen.headers["x-api-key"] == "sk-very-secret-1234"
    assert seen.headers["anthropic-version"] == "2023-06-01"


async def test_passthrough_rate_limit_falls_back_to_the_next(upstream: FakeLLMServer) -> None:
    app = passthrough_app(upstream)
    upstream.script(Reply.rate_limited(retry_after="2"))
    result = await call(app, "POST", CHAT, {"model": "chain", "messages": USER, "stream": True})
    assert result.status == 200
    assert result.headers["x-muxlang-backend"] == "local"
    assert result.data[-1] == "[DONE]"


async def test_a_dropped_passthrough_stream_ends_with_an_error_event(
    upstream: FakeLLMServer,
) -> None:
    app = passthrough_app(upstream)
    upstream.script(Reply(text="a b c d e f g h i j k l m n o p", drop_after=200))
    result = await call(app, "POST", CHAT, {"model": "chain", "messages": USER, "stream": True})
    assert result.status == 200
    assert result.headers["x-muxlang-backend"] == "oa"
    assert "error" in result.data[-1]
    assert result.data[-1]["error"]["message"].startswith(
        "oa: connection to backend `oa` dropped mid-stream"
    )


async def test_upstream_secrets_never_reach_the_client(upstream: FakeLLMServer) -> None:
    app = passthrough_app(upstream)
    upstream.script(Reply.fail(401, "Incorrect API key provided: sk-very-secret-1234"))
    result = await call(app, "POST", CHAT, {"model": "oa", "messages": USER})
    assert result.status == 401
    assert "sk-very-secret-1234" not in result.body.decode()
    assert "Incorrect API key provided: ***" in result.json["error"]["message"]


async def test_a_missing_key_variable_is_a_config_error_naming_it(upstream: FakeLLMServer) -> None:
    app = passthrough_app(upstream, environ={})
    result = await call(app, "POST", CHAT, {"model": "oa", "messages": USER})
    assert result.status == 503
    assert "UP_KEY" in result.json["error"]["message"]
    assert upstream.requests == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_only_loopback_may_go_without_api_keys(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    check_bind(host, ["k"])  # with keys anything goes
    if loopback:
        check_bind(host, [])
    else:
        with pytest.raises(ServeError, match="api_keys"):
            check_bind(host, [])


async def test_a_body_that_is_not_declared_json_is_refused() -> None:
    app, fakes = make_gateway(["a"])
    form = await call(
        app,
        "POST",
        CHAT,
        {"model": "a", "messages": USER},
        {"content-type": "text/plain"},
    )
    assert form.status == 415
    assert "application/json" in form.json["error"]["message"]
    charset = await call(
        app,
        "POST",
        CHAT,
        {"model": "a", "messages": USER},
        {"content-type": "application/json; charset=utf-8"},
    )
    assert charset.status == 200
    assert len(fakes["a"].requests) == 1


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("127.0.0.1:8317", 200),
        ("localhost:8317", 200),
        ("[::1]:8317", 200),
        ("localhost", 200),
        ("evil.example:8317", 403),
        ("192.168.1.4:8317", 403),
    ],
)
async def test_a_loopback_gateway_answers_only_loopback_host_names(host: str, status: int) -> None:
    app, _ = make_gateway(["a"], loopback_only=True)
    result = await call(app, "GET", "/v1/models", headers={"host": host})
    assert result.status == status


@pytest.mark.parametrize(
    ("path", "body", "needle"),
    [
        ("/v1/messages", {"model": "an", "messages": USER}, "`max_tokens` is required"),
        ("/v1/messages", {"model": "an", "max_tokens": -5, "messages": USER}, "got -5"),
        (CHAT, {"model": "oa", "max_tokens": -5, "messages": USER}, "got -5"),
        (CHAT, {"model": "oa", "max_completion_tokens": 0, "messages": USER}, "got 0"),
    ],
)
async def test_token_limits_are_checked_before_any_pass_through(
    upstream: FakeLLMServer, path: str, body: dict[str, Any], needle: str
) -> None:
    app = passthrough_app(upstream)
    result = await call(app, "POST", path, body)
    assert result.status == 400
    error = result.json["error"]
    assert error["type"] == "invalid_request_error"
    assert needle in error["message"]
    if path == "/v1/messages":
        assert result.json["type"] == "error"  # Anthropic's shape
    assert upstream.requests == []  # never forwarded


IMAGE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ],
    }
]


@pytest.mark.parametrize("extra", [{"n": 2}, {"messages": IMAGE}], ids=["n", "image"])
@pytest.mark.parametrize("model", ["oa", "chain"])
async def test_what_only_pass_through_carries_is_forwarded_untouched(
    upstream: FakeLLMServer, model: str, extra: dict[str, Any]
) -> None:
    app = passthrough_app(upstream)
    body = {"model": model, "messages": USER, **extra}
    result = await call(app, "POST", CHAT, body)
    assert result.status == 200, result.body
    assert result.headers["x-muxlang-backend"] == "oa"
    assert upstream.requests[0].json == {**body, "model": "gpt-up"}


async def test_what_only_pass_through_carries_is_refused_by_a_translated_backend(
    upstream: FakeLLMServer,
) -> None:
    app = passthrough_app(upstream)
    direct = await call(app, "POST", CHAT, {"model": "local", "messages": USER, "n": 2})
    assert direct.status == 400
    assert "`n` other than 1" in direct.json["error"]["message"]
    # the pass-through entry of a role is rate limited: the next one cannot take it
    upstream.script(Reply.rate_limited())
    fell = await call(app, "POST", CHAT, {"model": "chain", "messages": USER, "n": 2})
    assert fell.status == 400
    assert "local: `n` other than 1" in fell.json["error"]["message"]
    assert len(upstream.requests) == 1


OA_ERROR = (
    b'{\n  "error": {\n    "message": "Invalid value for \'temperature\': 7",\n'
    b'    "type": "invalid_request_error",\n    "param": "temperature",\n'
    b'    "code": "invalid_value"\n  }\n}\n'
)
AN_ERROR = (
    b'{"type":"error","error":{"type":"invalid_request_error",'
    b'"message":"temperature: Input should be less than or equal to 1"}}'
)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("path", "model", "raw", "status"),
    [
        (CHAT, "oa", OA_ERROR, 400),
        (CHAT, "oa", OA_ERROR, 422),
        ("/v1/messages", "an", AN_ERROR, 400),
    ],
)
async def test_a_pass_through_upstream_4xx_is_relayed_as_it_is(
    upstream: FakeLLMServer, path: str, model: str, raw: bytes, status: int, stream: bool
) -> None:
    app = passthrough_app(upstream)
    upstream.script(Reply(status=status, body=raw, content_type="application/json"))
    body = {"model": model, "max_tokens": 5, "messages": USER, "temperature": 7, "stream": stream}
    result = await call(app, "POST", path, body)
    assert result.status == status
    assert result.body == raw  # the upstream's own error, byte for byte
    assert result.headers["content-type"] == "application/json"
    assert result.headers["x-muxlang-backend"] == model


async def test_a_relayed_upstream_error_never_echoes_a_secret(upstream: FakeLLMServer) -> None:
    app = passthrough_app(upstream)
    raw = b'{"error": {"message": "key sk-very-secret-1234 is revoked", "type": "x"}}'
    upstream.script(Reply(status=403, body=raw, content_type="application/json"))
    result = await call(app, "POST", CHAT, {"model": "oa", "messages": USER})
    assert result.status == 403
    assert result.json == {"error": {"message": "key *** is revoked", "type": "x"}}


@pytest.mark.parametrize(
    ("reply", "status"),
    [
        # not JSON (a proxy's page): no SDK could read it, so it is said in our words
        (Reply(status=404, body=b"<html>Not Found</html>", content_type="text/html"), 404),
        # upstream trouble stays the gateway's 502 (fallback and cooldown semantics)
        (Reply.fail(500, "boom"), 502),
    ],
)
async def test_upstream_errors_that_are_not_relayed(
    upstream: FakeLLMServer, reply: Reply, status: int
) -> None:
    app = passthrough_app(upstream)
    upstream.script(reply)
    result = await call(app, "POST", CHAT, {"model": "oa", "messages": USER})
    assert result.status == status
    assert result.json["error"]["message"].startswith("`oa` failed: oa: HTTP")


async def test_a_relayed_rate_limit_keeps_its_retry_after(upstream: FakeLLMServer) -> None:
    app = passthrough_app(upstream)
    upstream.script(Reply.rate_limited("Rate limit reached for gpt-up", retry_after="7"))
    result = await call(app, "POST", CHAT, {"model": "oa", "messages": USER})
    assert result.status == 429
    assert result.headers["retry-after"] == "7"
    assert result.json["error"]["message"] == "Rate limit reached for gpt-up"
