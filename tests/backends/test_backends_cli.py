"""CLI backends with the fake executables in tests/fakes/bin."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import trio

from muxlang.llm import BackendError, ChatRequest, ErrorKind, Finish, TextDelta
from muxlang.runtime.backends import open_router
from tests.backends.conftest import FAKE_BIN, MakeConfig


def cli(command: str = "fake-llm", **extra: Any) -> dict[str, Any]:
    return {"command": command, "max_retries": 0, "retry_delay": 0, **extra}


async def ask(config: Any, environ: dict[str, str], prompt: str = "hello world") -> Any:
    async with open_router(config, environ=environ) as router:
        return await router.complete("b", ChatRequest.from_prompt(prompt), kind="backend")


async def fail(config: Any, environ: dict[str, str]) -> BackendError:
    with pytest.raises(BackendError) as info:
        await ask(config, environ)
    return info.value


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] not in "ZX"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.parametrize(
    ("command", "args"),
    [("claude", ["-p"]), ("codex", ["exec", "-q"]), ("ollama", ["run", "llama3"])],
)
async def test_prompt_is_the_last_argument(
    command: str, args: list[str], make_config: MakeConfig, environ: dict[str, str]
) -> None:
    config = make_config(backends={"b": cli(command, args=args)})
    answer = await ask(config, environ, "explain this\ncode")
    assert answer.text == "explain this\ncode"  # trailing newlines removed, inner kept
    assert answer.backend == "b"


async def test_prompt_via_stdin_and_env_with_expansion(
    make_config: MakeConfig, environ: dict[str, str]
) -> None:
    config = make_config(
        backends={
            "stdin": cli(prompt_via="stdin", env={"FAKE_LLM_PREFIX": "${WHO:-someone}: "}),
            "b": cli(env={"FAKE_LLM_MODE": "fixed", "FAKE_LLM_TEXT": "${ANSWER}"}),
        }
    )
    async with open_router(config, environ={**environ, "ANSWER": "forty-two"}) as router:
        via_stdin = await router.complete("stdin", ChatRequest.from_prompt("from stdin"))
        fixed = await router.complete("b", ChatRequest.from_prompt("ignored"))
    assert via_stdin.text == "someone: from stdin"
    assert fixed.text == "forty-two"


async def test_system_prompt_goes_before_the_prompt(
    make_config: MakeConfig, environ: dict[str, str]
) -> None:
    config = make_config(backends={"b": cli(system="You are terse.")})
    answer = await ask(config, environ, "question")
    assert answer.text == "You are terse.\n\nquestion"


async def test_failure_carries_the_tail_of_stderr(
    make_config: MakeConfig, environ: dict[str, str]
) -> None:
    config = make_config(
        backends={
            "b": cli(env={"FAKE_LLM_MODE": "fail", "FAKE_LLM_STDERR": "fatal: no credits left"})
        }
    )
    error = await fail(config, environ)
    assert error.kind is ErrorKind.SERVER
    assert "exited with status 1" in str(error)
    assert "fatal: no credits left" in str(error)


async def test_rate_limit_wording_is_a_rate_limit_and_retried(
    make_config: MakeConfig, environ: dict[str, str], tmp_path: Path
) -> None:
    counter = tmp_path / "count"
    env = {"FAKE_LLM_MODES": "ratelimit,ratelimit,echo", "FAKE_LLM_COUNTER": str(counter)}
    config = make_config(backends={"b": cli(env=env, max_retries=3)})
    answer = await ask(config, environ, "finally")
    assert answer.text == "finally"
    assert len(counter.read_text().splitlines()) == 3
    counter.unlink()
    config = make_config(backends={"b": cli(env=env, retry_rate_limit=False, max_retries=3)})
    error = await fail(config, environ)
    assert error.kind is ErrorKind.RATE_LIMIT
    assert "429 Too Many Requests" in str(error)
    assert len(counter.read_text().splitlines()) == 1


async def test_not_on_path_is_a_config_error(make_config: MakeConfig) -> None:
    config = make_config(backends={"b": cli("no-such-llm-cli")})
    async with open_router(config, environ={"PATH": "/nonexistent"}) as router:
        availability = router.backend("b").availability()
        with pytest.raises(BackendError) as info:
            await router.complete("b", ChatRequest.from_prompt("x"))
    assert not availability.ok
    assert "`no-such-llm-cli` not found on PATH" in availability.reason
    assert info.value.kind is ErrorKind.CONFIG


async def test_command_given_as_a_path(make_config: MakeConfig) -> None:
    config = make_config(backends={"b": cli(str(FAKE_BIN / "claude"), args=["-p"])})
    assert (await ask(config, {"PATH": os.environ["PATH"]})).text == "hello world"


async def test_timeout_stops_the_process(
    make_config: MakeConfig, environ: dict[str, str], tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    env = {"FAKE_LLM_MODE": "slow", "FAKE_LLM_PIDFILE": str(pidfile)}
    config = make_config(backends={"b": cli(env=env, timeout=0.5)})
    start = trio.current_time()
    error = await fail(config, environ)
    assert error.kind is ErrorKind.TIMEOUT
    assert trio.current_time() - start < 5
    assert not alive(int(pidfile.read_text()))


async def test_stream_yields_stdout_as_it_comes(
    make_config: MakeConfig, environ: dict[str, str]
) -> None:
    config = make_config(backends={"b": cli(env={"FAKE_LLM_CHUNK_DELAY": "0.15"})})
    async with open_router(config, environ=environ) as router:
        events = [e async for e in router.stream("b", ChatRequest.from_prompt("a b c d"))]
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) >= 2  # pieces as they were written, not one answer at the end
    assert "".join(texts) == "a b c d "
    assert isinstance(events[-1], Finish)


async def test_closing_a_stream_early_stops_the_process(
    make_config: MakeConfig, environ: dict[str, str], tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    env = {"FAKE_LLM_CHUNK_DELAY": "1", "FAKE_LLM_PIDFILE": str(pidfile)}
    config = make_config(backends={"b": cli(env=env)})
    async with open_router(config, environ=environ) as router:
        events = router.stream("b", ChatRequest.from_prompt("w1 w2 w3 w4 w5 w6 w7 w8 w9"))
        first = await events.__anext__()
        await events.aclose()
        pid = int(pidfile.read_text())
        with trio.fail_after(5):
            while alive(pid):
                await trio.sleep(0.05)
    assert isinstance(first, TextDelta)


async def test_secret_env_values_are_redacted_from_stderr(
    make_config: MakeConfig, environ: dict[str, str]
) -> None:
    env = {"FAKE_LLM_MODE": "fail", "FAKE_LLM_STDERR": "auth failed for ${SERVICE_TOKEN}"}
    config = make_config(backends={"b": cli(env=env)})
    error = await fail(config, {**environ, "SERVICE_TOKEN": "tok-9f8e7d6c5b"})
    assert "auth failed for ***" in str(error)
    assert "tok-9f8e7d6c5b" not in str(error)


async def test_huge_prompt_as_argument_suggests_stdin(
    make_config: MakeConfig, environ: dict[str, str]
) -> None:
    config = make_config(backends={"b": cli(), "s": cli(prompt_via="stdin")})
    prompt = "x" * 300_000  # more than Linux allows in one argument (128 KiB)
    async with open_router(config, environ=environ) as router:
        with pytest.raises(BackendError) as info:
            await router.complete("b", ChatRequest.from_prompt(prompt))
        via_stdin = await router.complete("s", ChatRequest.from_prompt(prompt))
    assert info.value.kind is ErrorKind.CONFIG
    assert 'set prompt_via = "stdin"' in str(info.value)
    assert via_stdin.text == prompt


@pytest.mark.slow
async def test_a_cli_ignoring_sigterm_is_killed_after_the_grace(
    make_config: MakeConfig, environ: dict[str, str], tmp_path: Path
) -> None:
    pidfile = tmp_path / "pid"
    env = {"FAKE_LLM_MODE": "stubborn", "FAKE_LLM_PIDFILE": str(pidfile)}
    config = make_config(backends={"b": cli(env=env, timeout=0.5)})
    start = trio.current_time()
    error = await fail(config, environ)
    assert error.kind is ErrorKind.TIMEOUT
    assert 5 <= trio.current_time() - start < 10  # SIGTERM ignored, SIGKILL after 5 s
    assert not alive(int(pidfile.read_text()))
