"""Deeply nested JSON from an upstream is a normal backend error (issue 14 item 15,
the backend half): the step does not end in "internal error: RecursionError", and
a fallback role goes on to its next backend. The same for ``from_json`` on a
step's output.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from rel_support import run_muxlang, subprocess_env

from tests.fakes.llm_server import FakeLLMServer, Reply

DEPTH = 100_000
DEEP = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH
DEEP_LIST = b"[" * DEPTH + b"]" * DEPTH


@pytest.fixture(scope="module")
def deep_server() -> Iterator[FakeLLMServer]:
    def respond(request: object) -> Reply:
        stream = getattr(request, "stream", False)
        if stream:
            return Reply(body=b"data: " + DEEP + b"\n\n", content_type="text/event-stream")
        return Reply(body=DEEP, content_type="application/json")

    with FakeLLMServer(default=respond) as server:
        yield server


@pytest.fixture(scope="module")
def good_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(default=Reply.answer("the fallback answered")) as server:
        yield server


def _project(tmp_path: Path, deep: str, good: str, protocol: str) -> tuple[Path, Path]:
    root = tmp_path / "p"
    (root / ".git").mkdir(parents=True)
    (root / ".muxlang").mkdir()
    base = "" if protocol == "anthropic" else "/v1"
    (root / ".muxlang" / "config.toml").write_text(
        f"""
[backends.deep]
command = "{deep}{base}"
protocol = "{protocol}"
model = "m"
api_key = "k-deep"
max_retries = 0

[backends.good]
command = "{good}{base}"
protocol = "{protocol}"
model = "m"
api_key = "k-good"
max_retries = 0

[roles.safe]
backends = ["deep", "good"]
execution = "fallback"
"""
    )
    (root / "wf.toml").write_text(
        """
[[steps]]
name = "ask"
type = "query"
role = "safe"
prompt = "hello"

[[steps]]
name = "direct"
type = "query"
backend = "deep"
prompt = "hello"
"""
    )
    home = tmp_path / "home"
    home.mkdir()
    return root, home


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini", "ollama"])
def test_a_deeply_nested_answer_is_a_backend_error_and_fallback_goes_on(
    tmp_path: Path, deep_server: FakeLLMServer, good_server: FakeLLMServer, protocol: str
) -> None:
    root, home = _project(tmp_path, deep_server.url, good_server.url, protocol)
    done = run_muxlang(
        root, "run", "wf.toml", "--keep-going", "--output", "json", env=subprocess_env(home)
    )
    out = (done.stdout + done.stderr).decode()
    assert "RecursionError" not in out, out
    assert "internal error" not in out, out
    assert "Traceback" not in out, out
    steps = json.loads(done.stdout)["steps"]
    assert steps["ask"]["status"] == "success", steps["ask"]
    assert steps["ask"]["output"] == "the fallback answered"
    assert steps["direct"]["status"] == "failed"
    assert "nested too deeply" in steps["direct"]["error"], steps["direct"]["error"]


def test_from_json_of_deep_text_is_a_template_error(tmp_path: Path) -> None:
    root = tmp_path / "p"
    (root / ".git").mkdir(parents=True)
    (root / "deep.json").write_bytes(DEEP_LIST)
    (root / "wf.toml").write_text(
        """
[[steps]]
name = "make"
type = "shell"
run = "cat deep.json"

[[steps]]
name = "use"
type = "shell"
run = "echo {{ steps.make.output | from_json | length }}"
depends_on = ["make"]
"""
    )
    home = tmp_path / "home"
    home.mkdir()
    done = run_muxlang(root, "run", "wf.toml", "--output", "json", env=subprocess_env(home))
    out = (done.stdout + done.stderr).decode()
    assert done.returncode == 1, out
    assert "RecursionError" not in out, out
    assert "internal error" not in out, out
    assert "Traceback" not in out, out
    use = json.loads(done.stdout)["steps"]["use"]
    assert use["status"] == "failed"
    assert "from_json" in use["error"], use["error"]
