"""Fault injection: every failure class of SPEC section 6, in every execution mode.

The upstream is the shared fake server (real HTTP on 127.0.0.1) and the fake CLIs.
After each fault the run's own report must be true — statuses, errors, who
answered — and nothing may be left behind: no process, no temp file.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
from rel_support import (
    FAKE_BIN,
    kill_all,
    marker,
    plan_from_toml,
    processes_with,
    stray_files,
    wait_gone,
)

from muxlang.runtime import execute
from muxlang.runtime.backends import open_router
from tests.fakes.llm_server import FakeLLMServer, RecordedRequest, Reply, echo

MODES = ["first", "fallback", "parallel", "race"]


def closed_port() -> int:
    """A port nothing listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: failure class -> (the bad backend's reply, words its error must contain, retried?)
FAULTS: dict[str, tuple[Callable[[], Reply] | None, str, bool]] = {
    "rate_limit": (lambda: Reply.rate_limited("slow down please"), "429", True),
    "server_5xx": (lambda: Reply.fail(503, "overloaded right now"), "503", True),
    "refused": (None, "cannot connect", True),
    "dropped": (lambda: Reply.dropped("x" * 400, after=30), "dropped", True),
    "timeout": (Reply.hanging, "within 1 s", False),
    "client_4xx": (lambda: Reply.fail(400, "bad request, no retry"), "400", False),
    "malformed": (Reply.malformed, "malformed", True),
    "wrong_shape": (
        lambda: Reply(
            json={"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "abc"}}
        ),
        "malformed",
        True,
    ),
    "html": (Reply.wrong_content_type, "content type", True),
}


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as srv:
        yield srv


def config_toml(url: str, bad_url: str, mode: str, *, stream_timeout: int = 1) -> str:
    return f"""
        [backends.bad]
        command = "{bad_url}"
        model = "bad"
        max_retries = 1
        retry_delay = 1
        timeout = {stream_timeout}

        [backends.good]
        command = "{url}"
        model = "good"
        max_retries = 0
        timeout = 10

        [roles.r]
        backends = ["bad", "good"]
        execution = "{mode}"
        min_success = 1

        [roles.only_bad]
        backends = ["bad"]
        execution = "{mode}"
    """


def respond_with(fault: Callable[[], Reply] | None) -> Callable[[RecordedRequest], Reply]:
    def respond(request: RecordedRequest) -> Reply:
        if request.model == "bad" and fault is not None:
            return fault()
        return echo(request)

    return respond


async def run_plan(plan: Any, environ: dict[str, str] | None = None) -> Any:
    env = environ or {"PATH": f"{FAKE_BIN}:/usr/bin:/bin"}
    async with open_router(plan.config, environ=env) as router:
        return await execute(plan, args={}, query=router, environ=env)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fault", list(FAULTS))
async def test_http_fault_in_every_mode(
    tmp_path: Path, server: FakeLLMServer, fault: str, mode: str
) -> None:
    reply, words, retried = FAULTS[fault]
    server.reset()
    server.default = respond_with(reply)
    bad_url = f"http://127.0.0.1:{closed_port()}/v1" if reply is None else server.url + "/v1"
    body = (
        config_toml(server.url + "/v1", bad_url, mode)
        + """
        [[steps]]
        name = "ask"
        type = "query"
        role = "r"
        prompt = "hello there"
        continue_on_error = true

        [[steps]]
        name = "alone"
        type = "query"
        role = "only_bad"
        prompt = "just the bad one"
        continue_on_error = true
    """
    )
    plan = plan_from_toml(tmp_path, body)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = await run_plan(plan)
    ask, alone = result.steps["ask"], result.steps["alone"]

    # a role whose only backend fails: the step failed, with the server's reason
    assert alone["status"] == "failed"
    assert words in alone["error"], alone["error"]
    assert "bad" in alone["error"]
    bad_calls = [r for r in server.requests if r.model == "bad" and r.prompt == "just the bad one"]
    if reply is not None:  # refused connections never reach the server
        assert len(bad_calls) == (2 if retried else 1), (fault, len(bad_calls))

    if mode == "first":  # no failover: the first backend's failure is the step's
        assert ask["status"] == "failed"
        assert words in ask["error"]
        assert not [r for r in server.requests if r.model == "good"]
    else:
        assert ask["status"] == "success", ask["error"]
        assert ask["backend"] == "good"
        assert "hello there" in ask["output"]
        if mode == "parallel":
            assert list(ask["outputs"]) == ["good"]
    assert result.success is True  # both steps have continue_on_error (as in GitHub Actions)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert stray_files(tmp_path) == []


async def test_fault_inside_for_each_reports_each_item_truly(
    tmp_path: Path, server: FakeLLMServer
) -> None:
    """Items 2 and 4 hit a 500 (no retry); the others answer; results are in item order."""
    server.reset()

    def respond(request: RecordedRequest) -> Reply:
        if request.prompt.startswith(("item 2", "item 4")):
            return Reply.fail(500, f"boom on {request.prompt}")
        return echo(request)

    server.default = respond
    body = f"""
        [backends.b]
        command = "{server.url}/v1"
        max_retries = 0

        [[steps]]
        name = "each"
        type = "query"
        backend = "b"
        for_each = "[1, 2, 3, 4, 5]"
        fail_fast = false
        max_parallel = 3
        prompt = "item {{{{ item }}}}"
    """
    result = await run_plan(plan_from_toml(tmp_path, body))
    step = result.steps["each"]
    assert step["status"] == "failed"
    statuses = [r["status"] for r in step["results"]]
    assert statuses == ["success", "failed", "success", "failed", "success"]
    assert step["results"][1]["error"] is not None
    assert "boom on item 2" in step["results"][1]["error"]
    assert [r["output"] for r in step["results"]][::2] == ["item 1", "item 3", "item 5"]
    assert len(server.requests) == 5


async def test_fail_fast_for_each_cancels_the_rest_and_says_so(
    tmp_path: Path, server: FakeLLMServer
) -> None:
    server.reset()

    def respond(request: RecordedRequest) -> Reply:
        if request.prompt == "item 1":
            return Reply.fail(400, "item one is bad")
        return Reply.hanging()

    server.default = respond
    body = f"""
        [backends.b]
        command = "{server.url}/v1"
        max_retries = 0
        timeout = 30

        [[steps]]
        name = "each"
        type = "query"
        backend = "b"
        for_each = "[1, 2, 3]"
        prompt = "item {{{{ item }}}}"
    """
    with trio.fail_after(15):
        result = await run_plan(plan_from_toml(tmp_path, body))
    step = result.steps["each"]
    assert step["status"] == "failed"
    assert "item one is bad" in (step["results"][0]["error"] or "")
    assert [r["status"] for r in step["results"]][1:] != ["success", "success"]


async def test_slow_byte_by_byte_answer_arrives_whole(
    tmp_path: Path, server: FakeLLMServer
) -> None:
    server.reset()
    text = "slowly but surely, every byte"
    server.default = Reply(text=text, byte_by_byte=True, chunk_delay=0.002)
    body = f"""
        [backends.b]
        command = "{server.url}/v1"
        timeout = 5

        [[steps]]
        name = "ask"
        type = "query"
        backend = "b"
        prompt = "go"
    """
    result = await run_plan(plan_from_toml(tmp_path, body))
    assert result.steps["ask"]["status"] == "success", result.steps["ask"]["error"]
    assert result.steps["ask"]["output"] == text


async def test_enormous_answer_is_taken_whole(tmp_path: Path, server: FakeLLMServer) -> None:
    server.reset()
    text = ("0123456789abcdef" * 64 + "\n") * 20_000  # ~20 MB
    server.default = Reply(text=text)
    body = f"""
        [backends.b]
        command = "{server.url}/v1"
        timeout = 60

        [[steps]]
        name = "ask"
        type = "query"
        backend = "b"
        prompt = "everything"

        [[steps]]
        name = "count"
        type = "shell"
        run = "printf %s \\"$ANSWER\\" | wc -c"
        env = {{ ANSWER = "{{{{ steps.ask.output }}}}" }}
    """
    result = await run_plan(plan_from_toml(tmp_path, body))
    ask = result.steps["ask"]
    assert ask["status"] == "success", ask["error"]
    assert ask["output"] == text
    # 20 MB does not fit in one environment variable: a clear failure naming it
    count = result.steps["count"]
    assert count["status"] == "failed"
    assert "environment variable ANSWER" in count["error"]
    assert "128 KiB" in count["error"]


# --------------------------------------------------------------------------- CLI backends


def cli_toml(mark: str, mode: str, **env: str) -> str:
    extra = ", ".join(f'{k} = "{v}"' for k, v in env.items())
    return f"""
        [backends.bad]
        command = "fake-llm"
        args = ["--mode", "{mode}"]
        max_retries = 1
        retry_delay = 1
        timeout = 1
        env = {{ {extra} }}

        [backends.good]
        command = "fake-llm"
        args = ["--mode", "echo"]

        [[steps]]
        name = "ask"
        type = "query"
        role = "r"
        prompt = "{mark} hello"
        continue_on_error = true
    """


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("cli_mode", "words"),
    [("fail", "the model crashed"), ("ratelimit", "429"), ("slow", "no answer within 1 s")],
)
async def test_cli_fault_in_every_mode(
    tmp_path: Path, mode: str, cli_mode: str, words: str
) -> None:
    mark = marker()
    body = (
        cli_toml(mark, cli_mode, FAKE_LLM_DELAY="30")
        + f"""
        [roles.r]
        backends = ["bad", "good"]
        execution = "{mode}"
    """
    )
    try:
        with trio.fail_after(20):
            result = await run_plan(plan_from_toml(tmp_path, body))
        ask = result.steps["ask"]
        if mode == "first":
            assert ask["status"] == "failed"
            assert words in ask["error"], ask["error"]
        else:
            assert ask["status"] == "success", ask["error"]
            assert ask["backend"] == "good"
            expected = f"{mark} hello"
            assert ask["output"] == (
                f"=== good ===\n{expected}" if mode == "parallel" else expected
            )
        assert wait_gone(mark, 3) == []
        assert stray_files(tmp_path) == []
    finally:
        kill_all(mark)


async def test_cli_that_ignores_sigterm_is_killed_after_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`stubborn` ignores SIGTERM; with the grace at 0.5 s the group is SIGKILLed."""
    monkeypatch.setenv("MUXLANG_KILL_GRACE", "0.5")
    mark = marker()
    body = (
        cli_toml(mark, "stubborn", FAKE_LLM_DELAY="60")
        + """
        [roles.r]
        backends = ["bad"]
    """
    )
    try:
        started = trio.current_time()
        with trio.fail_after(10):
            result = await run_plan(plan_from_toml(tmp_path, body))
        elapsed = trio.current_time() - started
        assert result.steps["ask"]["status"] == "failed"
        assert "no answer within 1 s" in result.steps["ask"]["error"]
        assert processes_with(mark) == []  # gone when the step is reported
        assert elapsed < 6  # 1 s timeout + 0.5 s grace, not the default 5 s
    finally:
        kill_all(mark)


def test_default_grace_is_five_seconds(monkeypatch: pytest.MonkeyPatch) -> None:
    from muxlang.runtime import process

    monkeypatch.delenv("MUXLANG_KILL_GRACE", raising=False)
    assert process.GRACE_SECONDS == 5.0
    assert process.kill_grace() == 5.0
    monkeypatch.setenv("MUXLANG_KILL_GRACE", "nonsense")
    assert process.kill_grace() == 5.0


async def test_daemon_forked_by_a_shell_step_is_gone_afterwards(tmp_path: Path) -> None:
    """A daemon that stays in the group (nohup, double fork) is stopped with it."""
    mark = marker()
    body = f"""
        [[steps]]
        name = "daemon"
        type = "shell"
        run = '''
        nohup sh -c 'sleep 300; : {mark}' >/dev/null 2>&1 &
        (sh -c 'sleep 300; : {mark}' &)
        echo started'''
    """
    try:
        result = await run_plan(plan_from_toml(tmp_path, body))
        assert result.steps["daemon"]["status"] == "success"
        assert result.steps["daemon"]["output"] == "started"
        assert processes_with(mark) == []
    finally:
        kill_all(mark)


async def test_a_setsid_child_is_stopped_with_its_step(tmp_path: Path) -> None:
    """A child that makes itself a new session (setsid) left the step's group, but
    not muxlang's reach: it is stopped when the step ends (it was not, before)."""
    mark = marker()
    body = f"""
        [[steps]]
        name = "escape"
        type = "shell"
        run = '''
        setsid sh -c 'touch escaped; sleep 30; : {mark}' >/dev/null 2>&1 < /dev/null &
        while [ ! -e escaped ]; do sleep 0.02; done
        echo ok'''
    """
    try:
        result = await run_plan(plan_from_toml(tmp_path, body))
        assert result.steps["escape"]["status"] == "success"
        assert processes_with(mark) == []  # docs/reliability.md, "What escapes"
    finally:
        kill_all(mark)


async def test_cli_daemon_is_gone_after_a_race_is_lost(tmp_path: Path) -> None:
    """The losing CLI of a race left a grandchild: the whole group goes with it."""
    mark = marker()
    script = tmp_path / "slow-llm"
    script.write_text(f"#!/bin/sh\n(sleep 300; : {mark}) &\nsleep 30\necho late\n")
    script.chmod(0o755)
    body = f"""
        [backends.slow]
        command = "{script}"

        [backends.fast]
        command = "fake-llm"

        [roles.r]
        backends = ["slow", "fast"]
        execution = "race"

        [[steps]]
        name = "ask"
        type = "query"
        role = "r"
        prompt = "{mark} quick"
    """
    try:
        with trio.fail_after(15):
            result = await run_plan(plan_from_toml(tmp_path, body))
        assert result.steps["ask"]["status"] == "success"
        assert result.steps["ask"]["backend"] == "fast"
        assert wait_gone(mark, 3) == []
    finally:
        kill_all(mark)


# --------------------------------------------------------------------------- gateway streams

GATEWAY_FAULTS: dict[str, Callable[[], Reply]] = {
    "rate_limit": lambda: Reply.rate_limited("slow down"),
    "server_5xx": lambda: Reply.fail(502, "bad gateway upstream"),
    "timeout": Reply.hanging,
    "client_4xx": lambda: Reply.fail(400, "nope"),
    "malformed": lambda: Reply(body=b"data: {not json\n\n", content_type="text/event-stream"),
    "html": Reply.wrong_content_type,
    "wrong_shape": lambda: Reply(
        body=b'data: {"choices": 1}\n\ndata: [DONE]\n\n', content_type="text/event-stream"
    ),
}


def gateway_responder(request: RecordedRequest) -> Reply:
    prompt = request.prompt
    if request.model == "bad":
        for name, fault in GATEWAY_FAULTS.items():
            if prompt.startswith(name):
                return fault()
        if prompt.startswith("drop"):
            return Reply(text="partial answer " * 50, drop_after=400, chunk_delay=0.001)
        if prompt.startswith("instream"):
            return Reply(text="half an answer", stream_error="upstream exploded")
        if prompt.startswith("bytewise"):
            return Reply(text=f"slow but whole: {prompt}", byte_by_byte=True, chunk_delay=0.001)
    return Reply(text=f"good says {prompt}")


async def stream_openai(client: Any, url: str, prompt: str) -> tuple[str, list[Any]]:
    payload = {"model": "fb", "stream": True, "messages": [{"role": "user", "content": prompt}]}
    text, errors = [], []
    async with client.stream("POST", url + "/v1/chat/completions", json=payload) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            import json

            chunk = json.loads(line[6:])
            if "error" in chunk:
                errors.append(chunk["error"])
            for choice in chunk.get("choices") or []:
                text.append((choice.get("delta") or {}).get("content") or "")
    return "".join(text), errors


async def stream_anthropic(client: Any, url: str, prompt: str) -> tuple[str, list[Any]]:
    import json

    payload = {
        "model": "fb",
        "stream": True,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": prompt}],
    }
    text, errors = [], []
    async with client.stream("POST", url + "/v1/messages", json=payload) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event.get("type") == "content_block_delta":
                text.append(event["delta"].get("text", ""))
            elif event.get("type") == "error":
                errors.append(event["error"])
    return "".join(text), errors


@pytest.mark.slow
async def test_gateway_streams_survive_every_fault(tmp_path: Path) -> None:
    import httpx
    from rel_support import gateway_project, start_gateway, stop_gateway, subprocess_env

    with FakeLLMServer(default=gateway_responder) as upstream:
        root, home = gateway_project(
            tmp_path,
            f"""
[serve]
cooldown = 0

[backends.bad]
command = "{upstream.url}/v1"
model = "bad"
max_retries = 1
retry_delay = 1
timeout = 1

[backends.refused]
command = "http://127.0.0.1:{closed_port()}/v1"
max_retries = 0

[backends.good]
command = "{upstream.url}/v1"
model = "good"

[roles.fb]
backends = ["refused", "bad", "good"]
execution = "fallback"
""",
        )
        proc, url = await trio.to_thread.run_sync(lambda: start_gateway(root, subprocess_env(home)))
        try:
            async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
                for fault in GATEWAY_FAULTS:
                    for stream in (stream_openai, stream_anthropic):
                        if fault == "wrong_shape" and stream is stream_openai:
                            continue  # pass-through relays valid JSON as is (docs/reliability.md)
                        prompt = f"{fault} via {stream.__name__}"
                        text, errors = await stream(client, url, prompt)
                        assert errors == [], (prompt, errors)
                        assert text == f"good says {prompt}", (prompt, text)
                # after the first byte: reported in the stream, never spliced
                for prompt in ("drop now", "instream now"):
                    for stream in (stream_openai, stream_anthropic):
                        text, errors = await stream(client, url, prompt)
                        assert errors, (prompt, text)
                        assert "good says" not in text
                        bad_answer = (
                            "partial answer " * 50 if "drop" in prompt else "half an answer"
                        )
                        assert bad_answer.startswith(text), text  # a prefix, then the error
                # an answer trickling in one byte at a time arrives whole, in both formats
                for stream in (stream_openai, stream_anthropic):
                    prompt = f"bytewise {stream.__name__}"
                    text, errors = await stream(client, url, prompt)
                    assert (text, errors) == (f"slow but whole: {prompt}", [])
                # and the gateway is still fine
                text, errors = await stream_openai(client, url, "all well")
                assert (text, errors) == ("good says all well", [])
        finally:
            _out, err = await trio.to_thread.run_sync(lambda: stop_gateway(proc))
        assert b"Traceback" not in err, err.decode()[-3000:]


# --------------------------------------------------------------------------- stopping for real


@pytest.mark.slow
def test_ctrl_c_during_cli_queries_leaves_nothing(tmp_path: Path) -> None:
    """`muxlang run` with a race and a for_each of slow CLIs gets SIGINT: exit 130,
    every CLI process group gone, the report says interrupted."""
    import json
    import signal
    import subprocess
    import time

    from rel_support import muxlang_argv, subprocess_env

    mark = marker()
    (tmp_path / ".git").mkdir()
    home = tmp_path / "home"
    home.mkdir()
    wf = tmp_path / "slow.toml"
    wf.write_text(
        f"""
[backends.slow1]
command = "fake-llm"
args = ["--mode", "slow", "--delay", "60"]

[backends.slow2]
command = "fake-llm"
args = ["--mode", "stubborn", "--delay", "60"]

[roles.r]
backends = ["slow1", "slow2"]
execution = "race"

[[steps]]
name = "race"
type = "query"
role = "r"
prompt = "{mark} race"

[[steps]]
name = "each"
type = "query"
backend = "slow1"
for_each = "[1, 2, 3, 4]"
prompt = "{mark} item {{{{ item }}}}"
"""
    )
    env = subprocess_env(home, MUXLANG_KILL_GRACE="1")
    proc = subprocess.Popen(
        muxlang_argv("-C", str(tmp_path), "run", str(wf), "--output", "json"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while len(processes_with(mark)) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(processes_with(mark)) >= 6
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - started < 10
        assert proc.returncode == 130, err.decode()
        report = json.loads(out)
        assert report["interrupted"] is True
        assert report["success"] is False
        assert processes_with(mark) == [], processes_with(mark)
        assert list((home / "tmp").iterdir()) == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        kill_all(mark)


@pytest.mark.slow
async def test_gateway_client_disconnect_stops_the_cli(tmp_path: Path) -> None:
    """A client that goes away mid-stream: the CLI answering it is stopped."""
    import httpx
    from rel_support import gateway_project, start_gateway, stop_gateway, subprocess_env

    mark = marker()
    root, home = gateway_project(
        tmp_path,
        """
[backends.talker]
command = "fake-llm"
env = { FAKE_LLM_CHUNK_DELAY = "0.3" }
""",
    )
    proc, url = await trio.to_thread.run_sync(
        lambda: start_gateway(root, subprocess_env(home, MUXLANG_KILL_GRACE="1"))
    )
    try:
        words = " ".join(f"w{i}" for i in range(200))
        payload = {
            "model": "talker",
            "stream": True,
            "messages": [{"role": "user", "content": f"{mark} {words}"}],
        }
        async with (
            httpx.AsyncClient(timeout=30, trust_env=False) as client,
            client.stream("POST", url + "/v1/chat/completions", json=payload) as response,
        ):
            assert response.status_code == 200
            alive: list[int] = []
            async for line in response.aiter_lines():
                if "w1" in line:
                    alive = processes_with(mark)
                    break  # leave mid-answer
        assert alive, "the CLI was not running when the client left"
        with trio.fail_after(30):
            while processes_with(mark):
                await trio.sleep(0.1)
        # the gateway is fine afterwards
        async with httpx.AsyncClient(timeout=30, trust_env=False) as client:
            r = await client.get(url + "/v1/models")
            assert r.status_code == 200
    finally:
        await trio.to_thread.run_sync(lambda: stop_gateway(proc))
        kill_all(mark)


async def test_binary_output_passed_on_is_a_clear_error(tmp_path: Path) -> None:
    """Output with a NUL byte reaching an env value, a shell command or a CLI prompt:
    the OS cannot pass it; the step says so (not 'internal error: ValueError')."""
    body = """
        [backends.f]
        command = "fake-llm"

        [backends.f_stdin]
        command = "fake-llm"
        prompt_via = "stdin"

        [[steps]]
        name = "bin"
        type = "shell"
        run = "printf 'a\\\\000b'"

        [[steps]]
        name = "env"
        type = "shell"
        run = 'echo "$X"'
        env = { X = "{{ steps.bin.output }}" }
        continue_on_error = true

        [[steps]]
        name = "cmd"
        type = "shell"
        run = "echo {{ steps.bin.output | shell_escape }}"
        continue_on_error = true

        [[steps]]
        name = "ask"
        type = "query"
        backend = "f"
        prompt = "{{ steps.bin.output }}"
        continue_on_error = true

        [[steps]]
        name = "ask_stdin"
        type = "query"
        backend = "f_stdin"
        prompt = "{{ steps.bin.output }}"
    """
    result = await run_plan(plan_from_toml(tmp_path, body))
    steps = result.steps
    assert steps["bin"]["output"] == "a\0b"
    assert "environment variable 'X' contains a NUL byte" in steps["env"]["error"]
    assert "contains a NUL byte" in steps["cmd"]["error"]
    assert "contains a NUL byte" in steps["ask"]["error"]
    assert "prompt_via" in steps["ask"]["error"]
    for name in ("env", "cmd", "ask"):
        assert "internal error" not in steps[name]["error"]
    assert steps["ask_stdin"]["status"] == "success"  # stdin takes any bytes
    assert steps["ask_stdin"]["output"] == "a\0b"


async def test_values_too_big_for_the_os_are_named(tmp_path: Path) -> None:
    """A 200 kB output put into an env value or a command line: the error names the
    variable or argument and its size (Linux caps each at 128 KiB); a NUL in cwd too."""
    body = """
        [[steps]]
        name = "big"
        type = "shell"
        run = "head -c 200000 /dev/zero | tr '\\\\000' x"

        [[steps]]
        name = "nul"
        type = "shell"
        run = "printf 'a\\\\000b'"

        [[steps]]
        name = "huge_env"
        type = "shell"
        run = "echo ok"
        env = { BIG_VALUE = "{{ steps.big.output }}" }
        continue_on_error = true

        [[steps]]
        name = "huge_arg"
        type = "shell"
        run = "echo {{ steps.big.output }} | wc -c"
        continue_on_error = true

        [[steps]]
        name = "nul_cwd"
        type = "shell"
        run = "pwd"
        cwd = "{{ steps.nul.output }}"
        continue_on_error = true
    """
    result = await run_plan(plan_from_toml(tmp_path, body))
    steps = result.steps
    assert len(steps["big"]["output"]) == 200_000
    assert "environment variable BIG_VALUE, 200,000 bytes" in steps["huge_env"]["error"]
    assert "argument 2 of sh" in steps["huge_arg"]["error"]
    assert "128 KiB" in steps["huge_arg"]["error"]
    assert "NUL byte" in steps["nul_cwd"]["error"]
    assert "internal error" not in steps["nul_cwd"]["error"]


BIG = ("0123456789abcdef" * 64 + "\n") * 20_000  # ~20 MB


async def test_enormous_cli_answer_is_taken_whole(tmp_path: Path) -> None:
    script = tmp_path / "big-llm"
    script.write_text(f"#!/bin/sh\nhead -c {len(BIG)} /dev/zero | tr '\\000' x\n")
    script.chmod(0o755)
    body = f"""
        [backends.big]
        command = "{script}"

        [[steps]]
        name = "ask"
        type = "query"
        backend = "big"
        prompt = "everything"
    """
    result = await run_plan(plan_from_toml(tmp_path, body))
    assert result.steps["ask"]["status"] == "success", result.steps["ask"]["error"]
    assert len(result.steps["ask"]["output"]) == len(BIG)


@pytest.mark.slow
async def test_enormous_answer_through_the_gateway(tmp_path: Path) -> None:
    import httpx
    from rel_support import gateway_project, start_gateway, stop_gateway, subprocess_env

    def respond(request: RecordedRequest) -> Reply:
        return Reply(text=BIG, chunks=(BIG[: len(BIG) // 2], BIG[len(BIG) // 2 :]))

    with FakeLLMServer(default=respond, record=False) as upstream:
        root, home = gateway_project(
            tmp_path, f'[backends.up]\ncommand = "{upstream.url}/v1"\nmodel = "m"\ntimeout = 120\n'
        )
        proc, url = await trio.to_thread.run_sync(lambda: start_gateway(root, subprocess_env(home)))
        try:
            async with httpx.AsyncClient(timeout=120, trust_env=False) as client:
                messages = [{"role": "user", "content": "all of it"}]
                r = await client.post(
                    url + "/v1/chat/completions", json={"model": "up", "messages": messages}
                )
                assert r.status_code == 200
                assert r.json()["choices"][0]["message"]["content"] == BIG
                r = await client.post(
                    url + "/v1/messages",
                    json={"model": "up", "max_tokens": 10, "messages": messages},
                )
                assert r.status_code == 200
                assert r.json()["content"][0]["text"] == BIG
                text, errors = await stream_anthropic_model(client, url, "up", "all of it")
                assert errors == []
                assert text == BIG
        finally:
            await trio.to_thread.run_sync(lambda: stop_gateway(proc))


async def stream_anthropic_model(
    client: Any, url: str, model: str, prompt: str
) -> tuple[str, list[Any]]:
    import json

    payload = {
        "model": model,
        "stream": True,
        "max_tokens": 50,
        "messages": [{"role": "user", "content": prompt}],
    }
    text, errors = [], []
    async with client.stream("POST", url + "/v1/messages", json=payload) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                if event.get("type") == "content_block_delta":
                    text.append(event["delta"].get("text", ""))
                elif event.get("type") == "error":
                    errors.append(event["error"])
    return "".join(text), errors


def strict_json(text: str) -> Any:
    """Parse as standard JSON (RFC 8259): NaN and Infinity are errors, as in jq or JS."""
    import json

    def refuse(constant: str) -> Any:
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=refuse)


def test_run_output_is_standard_json_even_with_nan(tmp_path: Path) -> None:
    """from_json of NaN / 1e400 and a TOML `nan` make non-finite floats; --output json
    and jsonl, and the `json` filter, still write standard JSON (null, as JS does)."""

    from rel_support import run_muxlang, subprocess_env

    (tmp_path / ".git").mkdir()
    home = tmp_path / "home"
    home.mkdir()
    wf = tmp_path / "nan.toml"
    wf.write_text(
        """
[args.limit]
default = nan

[[steps]]
name = "src"
type = "shell"
run = "echo '[NaN, 1e400, -Infinity, 1.5]'"

[[steps]]
name = "each"
type = "shell"
for_each = "steps.src.output | from_json"
run = "echo {{ [item, args.limit] | json }}"
"""
    )
    for mode in ("json", "jsonl"):
        done = run_muxlang(tmp_path, "run", str(wf), "--output", mode, env=subprocess_env(home))
        assert done.returncode == 0, done.stderr.decode()
        lines = done.stdout.decode().splitlines() if mode == "jsonl" else [done.stdout.decode()]
        documents = [strict_json(line) for line in lines if line.strip()]
        assert documents
    done = run_muxlang(tmp_path, "run", str(wf), "--output", "json", env=subprocess_env(home))
    report = strict_json(done.stdout.decode())
    outputs = [r["output"] for r in report["steps"]["each"]["results"]]
    assert outputs == ["[null,null]", "[null,null]", "[null,null]", "[1.5,null]"]
    for text in outputs:
        strict_json(text)


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini", "ollama"])
@pytest.mark.parametrize("stream", [False, True])
async def test_body_not_matching_its_content_encoding(
    tmp_path: Path, server: FakeLLMServer, protocol: str, stream: bool
) -> None:
    """`Content-Encoding: gzip` over a body that is not gzip: a server error that says
    so (streamed too — it used to be 'unexpected error: DecodingError(...)')."""
    from muxlang.compiler.plan import ResolvedConfig
    from muxlang.config.models import BackendConfig
    from muxlang.llm import BackendError, ChatRequest, ErrorKind

    ctype = {"ollama": "application/x-ndjson"}.get(protocol, "text/event-stream")
    if not stream:
        ctype = "application/json"
    server.reset()
    server.default = Reply(
        body=b"\x1f\x8b not gzip at all", headers={"Content-Encoding": "gzip"}, content_type=ctype
    )
    base = server.url + ("/v1" if protocol == "openai" else "")
    config = ResolvedConfig(
        project_root=tmp_path,
        backends={
            "b": BackendConfig.model_validate(
                {"command": base, "protocol": protocol, "model": "m", "max_retries": 0}
            )
        },
    )
    request = ChatRequest.from_prompt("hi")
    async with open_router(config, environ={}) as router:
        with pytest.raises(BackendError) as caught:
            if stream:
                async for _event in router.stream("b", request, kind="backend"):
                    pass
            else:
                await router.complete("b", request, kind="backend")
    assert caught.value.kind is ErrorKind.SERVER
    assert "undecodable" in caught.value.message
    assert "unexpected error" not in caught.value.message


async def test_cli_backend_that_leaves_a_daemon_behind(tmp_path: Path) -> None:
    """A CLI answers and exits 0 but leaves a child in its group: the answer counts,
    the child is stopped before the step is reported."""
    mark = marker()
    script = tmp_path / "leaky-llm"
    script.write_text(
        f"#!/bin/sh\nnohup sh -c 'sleep 300; : {mark}' >/dev/null 2>&1 &\necho \"answer: $1\"\n"
    )
    script.chmod(0o755)
    body = f"""
        [backends.leaky]
        command = "{script}"

        [[steps]]
        name = "ask"
        type = "query"
        backend = "leaky"
        prompt = "hello"
    """
    try:
        result = await run_plan(plan_from_toml(tmp_path, body))
        assert result.steps["ask"]["status"] == "success", result.steps["ask"]["error"]
        assert result.steps["ask"]["output"] == "answer: hello"
        assert processes_with(mark) == []
    finally:
        kill_all(mark)
