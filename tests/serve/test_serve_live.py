"""A live ``muxlang serve`` subprocess driven by the official openai and anthropic SDKs.

The gateway runs on a random loopback port in front of fake upstreams on
loopback (tests/fakes/llm_server.py) and a fake CLI (tests/fakes/bin/fake-llm).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anthropic
import httpx
import openai
import pytest

from tests.fakes.llm_server import FakeLLMServer, Reply, ToolCallSpec, fake_llm_server
from tests.serve.replica_support import clean_env as replica_env
from tests.serve.replica_support import upstream_backend

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
FAKE_CLI = REPO / "tests" / "fakes" / "bin" / "fake-llm"
MUXLANG = [sys.executable, "-m", "muxlang"]
KEY = "sk-upstream-secret-9876"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


@pytest.fixture(scope="module")
def limited() -> Iterator[FakeLLMServer]:
    """An upstream that is always rate limited."""
    with fake_llm_server(Reply.rate_limited(retry_after="1")) as server:
        yield server


def write_project(root: Path, upstream: FakeLLMServer, limited: FakeLLMServer) -> None:
    (root / ".muxlang").mkdir(parents=True)
    (root / ".muxlang" / "config.toml").write_text(
        f"""
[serve]
cooldown = 30

{upstream_backend("up-openai", upstream, "openai", "gpt-up")}

{upstream_backend("up-anthropic", upstream, "anthropic", "claude-up")}

{upstream_backend("up-gemini", upstream, "gemini", "gemini-up")}

[backends.up-ollama]
command = "{upstream.base_url("ollama")}"
protocol = "ollama"
model = "llama-up"
max_retries = 0

{upstream_backend("flaky", upstream, "anthropic", "claude-flaky")}

{upstream_backend("limited", limited, "openai", "gpt-limited")}

[backends.cli]
command = "{FAKE_CLI}"
env = {{ FAKE_LLM_PREFIX = "cli says: ", FAKE_LLM_CHUNK_DELAY = "0.05" }}

[backends.slowcli]
command = "{FAKE_CLI}"
env = {{ FAKE_LLM_CHUNK_DELAY = "0.5", FAKE_LLM_PIDFILE = "{root / "slowcli.pid"}" }}

[roles.duo]
description = "rate limited first, then anthropic"
backends = ["limited", "up-anthropic"]
execution = "fallback"
""",
        encoding="utf-8",
    )


def clean_env(tmp: Path) -> dict[str, str]:
    env = replica_env(tmp)
    env["FAKE_UPSTREAM_KEY"] = KEY
    return env


def start_gateway(root: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [*MUXLANG, "-C", str(root), "serve", "--port", "0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    seen: list[str] = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"muxlang serve: listening on (http://127\.0\.0\.1:\d+)", line)
        if match:
            return proc, match.group(1)
    proc.kill()
    raise AssertionError("the gateway did not start:\n" + "".join(seen))


@contextmanager
def running_gateway(root: Path, env: dict[str, str], *args: str) -> Iterator[str]:
    """A live ``muxlang serve`` for the ``with`` block: its URL; then SIGTERM (SIGKILL
    after 10 s) and the exit status checked to be a clean 0."""
    proc, url = start_gateway(root, env, *args)
    try:
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.returncode == 0


gateway_root: dict[str, str] = {}


@pytest.fixture(scope="module")
def gateway(
    tmp_path_factory: pytest.TempPathFactory, upstream: FakeLLMServer, limited: FakeLLMServer
) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("live")
    root = tmp / "project"
    write_project(root, upstream, limited)
    with running_gateway(root, clean_env(tmp)) as url:
        gateway_root[url] = str(root)
        yield url


USER = [{"role": "user", "content": "hello there"}]


# --------------------------------------------------------------------------- openai SDK


def test_openai_sdk_lists_roles_and_backends(oa: openai.OpenAI) -> None:
    models = list(oa.models.list())
    ids = [m.id for m in models]
    names = ("duo", "up-openai", "up-anthropic", "up-gemini", "up-ollama", "flaky", "limited")
    assert [i for i in ids if i in names] == list(names)
    # roles (the built-in ones too) come first, then backends
    kinds = [getattr(m, "muxlang_kind", None) for m in models]
    assert kinds == sorted(kinds, key=lambda k: k != "role")
    assert "analyzer" in ids


def test_openai_sdk_passthrough_to_an_openai_backend(
    oa: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    reply = oa.chat.completions.create(model="up-openai", messages=USER, seed=3)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "upstream heard: hello there"
    sent = upstream.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.json["model"] == "gpt-up"
    assert sent.json["seed"] == 3


def test_openai_sdk_translated_to_an_anthropic_backend(
    oa: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    reply = oa.chat.completions.create(
        model="up-anthropic",
        messages=[{"role": "system", "content": "Be brief."}, *USER],  # type: ignore[list-item]
        max_tokens=33,
        temperature=0.25,
        stop=["STOP"],
    )
    assert reply.choices[0].message.content == "upstream heard: hello there"
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None
    assert reply.usage.completion_tokens > 0
    sent = upstream.requests[-1].json
    assert upstream.requests[-1].path == "/v1/messages"
    assert sent["system"] == "Be brief."
    assert sent["max_tokens"] == 33
    assert sent["temperature"] == 0.25
    assert sent["stop_sequences"] == ["STOP"]
    assert sent["model"] == "claude-up"


def test_a_rate_limited_first_backend_falls_back_to_the_second(
    oa: openai.OpenAI, upstream: FakeLLMServer, limited: FakeLLMServer
) -> None:
    limited.reset()
    stream = oa.chat.completions.create(model="duo", messages=USER, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "upstream heard: hello there"
    assert limited.request_count == 1
    assert upstream.requests[-1].path == "/v1/messages"
    # the rate-limited backend now cools down: the next request goes straight on
    raw = oa.chat.completions.with_raw_response.create(model="duo", messages=USER)
    assert raw.headers["x-muxlang-backend"] == "up-anthropic"
    assert limited.request_count == 1


def test_openai_sdk_tool_call_round_trip_through_an_anthropic_backend(
    oa: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "weather", "description": "Weather now", "parameters": WEATHER},
        }
    ]
    upstream.script(Reply.tools(ToolCallSpec("weather", {"city": "Paris"}, id="toolu_7")))
    stream = oa.chat.completions.create(
        model="up-anthropic",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "function", "function": {"name": "weather"}},
        stream=True,
    )
    calls: dict[int, dict[str, str]] = {}
    finish = None
    for chunk in stream:
        for choice in chunk.choices:
            for delta in choice.delta.tool_calls or []:
                slot = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                slot["id"] = delta.id or slot["id"]
                if delta.function is not None:
                    slot["name"] = delta.function.name or slot["name"]
                    slot["arguments"] += delta.function.arguments or ""
            finish = choice.finish_reason or finish
    assert finish == "tool_calls"
    assert calls[0]["id"] == "toolu_7"
    assert calls[0]["name"] == "weather"
    assert json.loads(calls[0]["arguments"]) == {"city": "Paris"}
    sent = upstream.requests[-1].json
    assert sent["tools"] == [
        {"name": "weather", "description": "Weather now", "input_schema": WEATHER}
    ]
    assert sent["tool_choice"] == {"type": "tool", "name": "weather"}

    upstream.script(Reply.answer("18C and sunny"))
    reply = oa.chat.completions.create(
        model="up-anthropic",
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": calls[0]["id"],
                        "type": "function",
                        "function": {"name": "weather", "arguments": calls[0]["arguments"]},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": calls[0]["id"], "content": "18C, sunny"},
        ],
        tools=tools,  # type: ignore[arg-type]
    )
    assert reply.choices[0].message.content == "18C and sunny"
    turns = upstream.requests[-1].json["messages"]
    assert turns[1]["content"][-1]["type"] == "tool_use"
    assert turns[1]["content"][-1]["id"] == "toolu_7"
    assert turns[1]["content"][-1]["input"] == {"city": "Paris"}
    result = turns[2]["content"][0]
    assert result["type"] == "tool_result"
    assert result["tool_use_id"] == "toolu_7"
    assert "18C, sunny" in json.dumps(result["content"])


def test_openai_sdk_streams_a_cli_backend_as_it_writes(oa: openai.OpenAI) -> None:
    stream = oa.chat.completions.create(model="cli", messages=USER, stream=True)
    pieces = [
        c.choices[0].delta.content for c in stream if c.choices and c.choices[0].delta.content
    ]
    assert "".join(pieces).strip() == "cli says: hello there"
    assert len(pieces) > 1  # chunks, not one answer at the end


def test_a_client_hanging_up_stops_the_cli_process(gateway: str) -> None:
    pidfile = Path(gateway_root[gateway]) / "slowcli.pid"
    words = " ".join(f"w{i}" for i in range(40))  # 20 s at 0.5 s a word
    body = {"model": "slowcli", "stream": True, "messages": [{"role": "user", "content": words}]}
    with httpx.stream("POST", gateway + "/v1/chat/completions", json=body, timeout=20) as r:
        for line in r.iter_lines():
            if "w0" in line:
                break
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    raise AssertionError(f"the CLI process {pid} is still running after the client left")


def test_openai_sdk_sees_unknown_models_and_mid_stream_errors(
    oa: openai.OpenAI, upstream: FakeLLMServer
) -> None:
    with pytest.raises(openai.NotFoundError, match="`gpt-9` does not exist") as missing:
        oa.chat.completions.create(model="gpt-9", messages=USER)
    assert missing.value.code == "model_not_found"
    upstream.script(Reply(text="one two three four five six", stream_error="upstream fell over"))
    stream = oa.chat.completions.create(model="flaky", messages=USER, stream=True)
    got: list[str] = []
    with pytest.raises(openai.APIError, match="upstream fell over"):
        for chunk in stream:
            got.extend(c.delta.content or "" for c in chunk.choices)
    assert "".join(got).startswith("one")
    # the only backend a request can reach is never cooled down (SPEC 15): tried again
    again = oa.chat.completions.create(model="flaky", messages=USER)
    assert again.choices[0].message.content


@pytest.mark.parametrize(
    ("model", "path"), [("up-gemini", "streamGenerateContent"), ("up-ollama", "/api/chat")]
)
def test_openai_sdk_streams_from_gemini_and_ollama_backends(
    oa: openai.OpenAI, upstream: FakeLLMServer, model: str, path: str
) -> None:
    stream = oa.chat.completions.create(model=model, messages=USER, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == "upstream heard: hello there"
    assert path in upstream.requests[-1].path


@pytest.mark.parametrize("model", ["up-gemini", "up-ollama"])
def test_anthropic_sdk_answers_from_gemini_and_ollama_backends(
    an: anthropic.Anthropic, model: str
) -> None:
    message = an.messages.create(model=model, max_tokens=20, messages=USER)  # type: ignore[arg-type]
    assert message.content[0].text == "upstream heard: hello there"  # type: ignore[union-attr]


# --------------------------------------------------------------------------- anthropic SDK


def test_anthropic_sdk_translated_to_an_openai_backend(
    an: anthropic.Anthropic, upstream: FakeLLMServer
) -> None:
    message = an.messages.create(
        model="up-openai",
        max_tokens=50,
        system="Be brief.",
        messages=USER,  # type: ignore[arg-type]
    )
    assert message.content[0].type == "text"
    assert message.content[0].text == "upstream heard: hello there"
    assert message.stop_reason == "end_turn"
    sent = upstream.requests[-1].json
    assert upstream.requests[-1].path == "/v1/chat/completions"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["model"] == "gpt-up"


def test_anthropic_sdk_stream_passthrough(an: anthropic.Anthropic, upstream: FakeLLMServer) -> None:
    with an.messages.stream(model="up-anthropic", max_tokens=50, messages=USER) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "upstream heard: hello there"
    assert final.stop_reason == "end_turn"
    assert upstream.requests[-1].json["model"] == "claude-up"


def test_anthropic_sdk_tool_call_round_trip_through_an_openai_backend(
    an: anthropic.Anthropic, upstream: FakeLLMServer
) -> None:
    tools = [{"name": "weather", "description": "Weather now", "input_schema": WEATHER}]
    upstream.script(
        Reply.tools(ToolCallSpec("weather", {"city": "Oslo"}, id="call_42"), text="Checking.")
    )
    with an.messages.stream(
        model="up-openai",
        max_tokens=100,
        messages=[{"role": "user", "content": "Weather in Oslo?"}],
        tools=tools,  # type: ignore[arg-type]
        tool_choice={"type": "any"},
    ) as stream:
        message = stream.get_final_message()
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens > 0  # from the upstream's usage, at the end of the stream
    assert message.usage.output_tokens > 0
    blocks = {b.type: b for b in message.content}
    assert blocks["text"].text == "Checking."  # type: ignore[union-attr]
    use = blocks["tool_use"]
    assert use.id == "call_42"  # type: ignore[union-attr]
    assert use.name == "weather"  # type: ignore[union-attr]
    assert use.input == {"city": "Oslo"}  # type: ignore[union-attr]
    assert upstream.requests[-1].json["tools"][0]["function"]["parameters"] == WEATHER
    assert upstream.requests[-1].json["tool_choice"] == "required"

    upstream.script(Reply.answer("-3C, snow"))
    reply = an.messages.create(
        model="up-openai",
        max_tokens=100,
        tools=tools,  # type: ignore[arg-type]
        messages=[
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [b.model_dump() for b in message.content]},  # type: ignore[misc]
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "call_42", "content": "-3C"}],
            },
        ],
    )
    assert reply.content[0].text == "-3C, snow"  # type: ignore[union-attr]
    turns = upstream.requests[-1].json["messages"]
    assert turns[1]["role"] == "assistant"
    assert turns[1]["tool_calls"][0]["id"] == "call_42"
    assert json.loads(turns[1]["tool_calls"][0]["function"]["arguments"]) == {"city": "Oslo"}
    assert turns[2] == {"role": "tool", "content": "-3C", "tool_call_id": "call_42"}


def test_anthropic_sdk_errors(an: anthropic.Anthropic, upstream: FakeLLMServer) -> None:
    with pytest.raises(anthropic.NotFoundError, match="not a muxlang role or backend"):
        an.messages.create(model="gpt-9", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    upstream.script(Reply.fail(401, f"Incorrect API key provided: {KEY}"))
    with pytest.raises(anthropic.AuthenticationError) as caught:
        an.messages.create(model="up-openai", max_tokens=5, messages=USER)  # type: ignore[arg-type]
    assert KEY not in str(caught.value.body)
    assert KEY not in caught.value.response.text


def test_models_in_anthropic_shape(gateway: str) -> None:
    listing = httpx.get(gateway + "/v1/models", headers={"anthropic-version": "2023-06-01"}).json()
    assert "duo" in [m["id"] for m in listing["data"]]
    assert {m["type"] for m in listing["data"]} == {"model"}


# --------------------------------------------------------------------------- start-up rules


def run_serve(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*MUXLANG, "-C", str(root), "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_refuses_a_public_address_without_api_keys(
    tmp_path: Path, upstream: FakeLLMServer, limited: FakeLLMServer
) -> None:
    write_project(tmp_path / "p", upstream, limited)
    done = run_serve(tmp_path / "p", clean_env(tmp_path), "--host", "0.0.0.0", "--port", "0")
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0" in done.stderr
    assert "api_keys" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_unset_gateway_key_variable_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "p" / ".muxlang").mkdir(parents=True)
    (tmp_path / "p" / ".muxlang" / "config.toml").write_text(
        '[serve]\napi_keys = ["${MUXLANG_GATEWAY_KEY}"]\n'
    )
    done = run_serve(tmp_path / "p", clean_env(tmp_path), "--port", "0")
    assert done.returncode == 2
    assert "MUXLANG_GATEWAY_KEY is not set" in done.stderr


def test_api_keys_guard_a_live_gateway(
    tmp_path: Path, upstream: FakeLLMServer, limited: FakeLLMServer
) -> None:
    root = tmp_path / "p"
    write_project(root, upstream, limited)
    text = (root / ".muxlang" / "config.toml").read_text()
    text = text.replace("[serve]\n", '[serve]\napi_keys = ["${GATEWAY_KEY}"]\n')
    (root / ".muxlang" / "config.toml").write_text(text)
    env = {**clean_env(tmp_path), "GATEWAY_KEY": "gw-key-123456"}
    proc, url = start_gateway(root, env)
    try:
        upstream.reset()
        upstream.default = Reply(text="hello there")
        bad = openai.OpenAI(base_url=url + "/v1", api_key="wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()
        good = anthropic.Anthropic(base_url=url, api_key="gw-key-123456", max_retries=0)
        message = good.messages.create(model="up-anthropic", max_tokens=5, messages=USER)  # type: ignore[arg-type]
        assert message.content[0].text == "hello there"  # type: ignore[union-attr]
        # the gateway's key is not the upstream's: the upstream gets the backend's own key
        assert upstream.requests[-1].headers["x-api-key"] == KEY
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert proc.returncode == 130


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "p" / ".muxlang").mkdir(parents=True)
    (tmp_path / "p" / ".muxlang" / "config.toml").write_text("")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve(tmp_path / "p", clean_env(tmp_path), "--port", str(port))
    assert done.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_config_errors_stop_the_start_with_positions(tmp_path: Path) -> None:
    (tmp_path / "p" / ".muxlang").mkdir(parents=True)
    (tmp_path / "p" / ".muxlang" / "config.toml").write_text("[serve]\napi_kyes = []\n")
    done = run_serve(tmp_path / "p", clean_env(tmp_path), "--port", "0")
    assert done.returncode == 2
    assert "config.toml:2:1" in done.stderr
    assert "api_kyes" in done.stderr
    assert "Traceback" not in done.stderr


def start_serve(root: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen[str], str]:
    """A gateway started with ``args``; its ``listening on`` line (whatever its form)."""
    proc = subprocess.Popen(
        [*MUXLANG, "-C", str(root), "serve", "--port", "0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if "listening on" in line:
            return proc, line.rstrip("\n")
    proc.kill()
    raise AssertionError("the gateway did not start:\n" + "".join(seen))


def stop_serve(proc: subprocess.Popen[str]) -> str:
    """SIGTERM; the rest of its stderr."""
    proc.send_signal(signal.SIGTERM)
    return proc.communicate(timeout=10)[1]


def test_the_address_is_shown_as_the_user_asked_for_it(
    tmp_path: Path, upstream: FakeLLMServer, limited: FakeLLMServer
) -> None:
    write_project(tmp_path / "p", upstream, limited)
    proc, line = start_serve(tmp_path / "p", clean_env(tmp_path), "--host", "localhost")
    stop_serve(proc)
    # the name the user gave, then the address it resolved to
    assert re.search(r"listening on http://localhost:\d+ \((127\.0\.0\.1|::1)\)$", line), line


def test_debug_logs_muxlang_records_not_the_http_clients(
    tmp_path: Path, upstream: FakeLLMServer, limited: FakeLLMServer
) -> None:
    write_project(tmp_path / "p", upstream, limited)
    proc, line = start_serve(tmp_path / "p", clean_env(tmp_path), "--debug")
    try:
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, line
        upstream.reset()
        upstream.default = Reply(text="hi")
        reply = httpx.post(
            match.group(1) + "/v1/chat/completions",
            json={"model": "up-openai", "messages": USER},
            timeout=20,
        )
        assert reply.status_code == 200
    finally:
        err = stop_serve(proc)
    assert "model=up-openai -> up-openai" in err  # muxlang's own debug record
    # the pass-through's httpx client connected upstream: none of its chatter shows
    assert "httpcore" not in err
    assert "connect_tcp" not in err
