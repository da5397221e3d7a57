"""Secrets: redacted first, then cut (issue 14 item 9); masked in what the listing
commands show (item 10).

A provider's 401 body that echoes the key near the end of a long message, or a
CLI's long stderr with a token in it, used to be cut to a snippet *before* the
key was redacted: the cut left part of the key, which no longer matched, and
that part was printed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from rel_support import gateway_project, run_muxlang, subprocess_env

from tests.fakes.llm_server import FakeLLMServer, RecordedRequest, Reply

HTTP_KEY = "sk-Q7f3a9c2e51d84b06Zx81mN"
CLI_KEY = "tok-8d0e2b7c4a19f35e60aa"
URL_PASSWORD = "pw-5c1f9e0b7a3d2c48"
URL_QUERY_KEY = "AIzaQk9fT2m0b7c1d3e5f7a9"
ARG_KEY = "sk-live-argument-4e5f6a7b8c9d"
HEADER_KEY = "hdr-9a8b7c6d5e4f3a2b1c0d"


def _pieces(secret: str) -> list[str]:
    """Every 8-character piece of ``secret``: none may appear anywhere."""
    return [secret[i : i + 8] for i in range(len(secret) - 7)]


def assert_no_piece(where: str, text: str, *secrets: str) -> None:
    for secret in secrets:
        for piece in _pieces(secret):
            assert piece not in text, f"part of a secret ({piece!r}) leaked in {where}:\n{text}"


@pytest.fixture(scope="module")
def echoing_server() -> Iterator[FakeLLMServer]:
    """A 401 whose long message echoes the key across character 300 (where the
    message is cut for display)."""

    def respond(request: RecordedRequest) -> Reply:
        auth = request.headers.get("authorization", "")
        return Reply.fail(401, "Incorrect API key provided. " + "x" * 250 + " got: " + auth)

    with FakeLLMServer(default=respond) as server:
        yield server


def _project(tmp_path: Path, url: str) -> tuple[Path, Path]:
    root = tmp_path / "p"
    (root / ".git").mkdir(parents=True)
    (root / ".muxlang").mkdir()
    padding = "y" * 787  # the last 800 characters of stderr begin inside the token
    (root / ".muxlang" / "config.toml").write_text(
        f"""
[backends.api]
command = "{url}/v1"
api_key = "${{HTTP_API_KEY}}"
max_retries = 0

[backends.cli]
command = "fake-llm"
args = ["--mode", "fail"]
env = {{ FAKE_LLM_STDERR = "auth failed for token ${{CLI_TOKEN}} {padding}" }}
max_retries = 0
"""
    )
    (root / "wf.toml").write_text(
        """
[[steps]]
name = "http"
type = "query"
backend = "api"
prompt = "hello"

[[steps]]
name = "cli"
type = "query"
backend = "cli"
prompt = "hello"
"""
    )
    home = tmp_path / "home"
    home.mkdir()
    return root, home


def test_error_text_is_redacted_before_it_is_cut(
    tmp_path: Path, echoing_server: FakeLLMServer
) -> None:
    root, home = _project(tmp_path, echoing_server.url)
    env = subprocess_env(home, HTTP_API_KEY=HTTP_KEY, CLI_TOKEN=CLI_KEY)
    seen = {"http": False, "cli": False}
    for command in (
        ["run", "wf.toml", "--keep-going"],
        ["run", "wf.toml", "--keep-going", "--output", "json"],
        ["run", "wf.toml", "--keep-going", "--output", "jsonl"],
        ["run", "wf.toml", "--keep-going", "--debug"],
    ):
        done = run_muxlang(root, *command, env=env, cwd=root)
        out = (done.stdout + done.stderr).decode()
        assert done.returncode == 1, out
        assert_no_piece(" ".join(command), out, HTTP_KEY, CLI_KEY)
        seen["http"] |= "Incorrect API key provided" in out
        seen["cli"] |= "*** yyyy" in out
    # the upstream did get (and echo) the key; the redaction did the work
    assert any(HTTP_KEY in r.headers.get("authorization", "") for r in echoing_server.requests)
    assert seen == {"http": True, "cli": True}


def test_the_json_record_keeps_the_redacted_error(
    tmp_path: Path, echoing_server: FakeLLMServer
) -> None:
    root, home = _project(tmp_path, echoing_server.url)
    env = subprocess_env(home, HTTP_API_KEY=HTTP_KEY, CLI_TOKEN=CLI_KEY)
    done = run_muxlang(root, "run", "wf.toml", "--keep-going", "--output", "json", env=env)
    result = json.loads(done.stdout)
    assert "***" in result["steps"]["http"]["error"]
    assert "*** yyyy" in result["steps"]["cli"]["error"]


# --------------------------------------------------------------------------- masking


def _listing_project(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "p"
    (root / ".git").mkdir(parents=True)
    (root / ".muxlang").mkdir()
    (root / ".muxlang" / "config.toml").write_text(
        f"""
[backends.userinfo]
command = "https://me:{URL_PASSWORD}@127.0.0.1:9/v1?key={URL_QUERY_KEY}&api_key={URL_QUERY_KEY}&x=1"
model = "m"
max_retries = 0

[backends.tokenuser]
command = "https://{URL_PASSWORD}@127.0.0.1:9/v1"
model = "m"
max_retries = 0

[backends.withargs]
command = "fake-llm"
args = ["--api-key", "{ARG_KEY}", "--token={ARG_KEY}", "--mode", "echo", "{ARG_KEY}"]
env = {{ SERVICE_TOKEN = "{HEADER_KEY}", NO_COLOR = "1" }}

[backends.withheaders]
command = "http://127.0.0.1:9/v1"
model = "m"
headers = {{ X-Api-Key = "{HEADER_KEY}", X-Trace = "on" }}
max_retries = 0

[backends.referenced]
command = "http://127.0.0.1:9/v1?key=${{GEMINI_KEY}}"
model = "m"
api_key = "${{OPENAI_API_KEY}}"

[roles.all]
backends = ["userinfo", "tokenuser", "withargs", "withheaders", "referenced"]
execution = "fallback"
"""
    )
    home = tmp_path / "home"
    home.mkdir()
    return root, home


@pytest.mark.parametrize(
    "command",
    [
        ["backends"],
        ["backends", "--output", "json"],
        ["roles"],
        ["roles", "--output", "json"],
        ["doctor"],
        ["doctor", "--output", "json"],
        ["doctor", "--debug"],
    ],
)
def test_listing_commands_mask_credentials_written_in_config(
    tmp_path: Path, command: list[str]
) -> None:
    root, home = _listing_project(tmp_path)
    done = run_muxlang(root, *command, env=subprocess_env(home), cwd=root)
    out = (done.stdout + done.stderr).decode()
    assert "Traceback" not in out, out
    assert_no_piece(" ".join(command), out, URL_PASSWORD, URL_QUERY_KEY, ARG_KEY, HEADER_KEY)
    if command[0] == "backends":
        assert "me:****@127.0.0.1:9" in out, out
        assert "${GEMINI_KEY}" in out, out  # a reference holds no secret: shown as written
    if command == ["backends", "--output", "json"]:
        rows = {row["name"]: row for row in json.loads(done.stdout)}
        assert rows["withargs"]["args"][:2] == ["--api-key", "****"]
        assert rows["withargs"]["args"][2] == "--token=****"
        assert rows["withargs"]["args"][3:5] == ["--mode", "echo"]
        assert rows["referenced"]["api_key"] == "${OPENAI_API_KEY}"


# --------------------------------------------------------------------------- the functions


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p4ss-word-x@h.example/v1", "https://u:****@h.example/v1"),
        ("https://tok3n-abcdef@h.example/v1", "https://****@h.example/v1"),
        ("https://h.example/v1?key=abc123&model=x", "https://h.example/v1?key=****&model=x"),
        (
            "https://h.example/v1?api_key=a&access_token=b",
            "https://h.example/v1?api_key=****&access_token=****",
        ),
        ("https://h.example/v1?key=${GEMINI_KEY}", "https://h.example/v1?key=${GEMINI_KEY}"),
        ("https://u:${PASSWORD}@h.example/v1", "https://u:${PASSWORD}@h.example/v1"),
        ("https://h.example/v1", "https://h.example/v1"),
        ("claude", "claude"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    from muxlang.redaction import mask_url

    assert mask_url(url) == shown


def test_mask_args_and_mappings() -> None:
    from muxlang.redaction import mask_args, mask_mapping

    given = ["-p", "--model", "opus", "--api-key", "k-12345", "--token=abc", "prompt"]
    shown = ["-p", "--model", "opus", "--api-key", "****", "--token=****", "prompt"]
    assert mask_args(given) == shown
    assert mask_args(["--key", "${MY_KEY}", "sk-abcdefghijklmnop1234"]) == [
        "--key",
        "${MY_KEY}",
        "****",
    ]
    assert mask_mapping(
        {"Authorization": "Bearer abc", "X-Trace": "on", "TOKEN": "${T}", "URL": "https://a:b@h/"}
    ) == {"Authorization": "****", "X-Trace": "on", "TOKEN": "${T}", "URL": "https://a:****@h/"}


def test_redact_cut_redacts_first() -> None:
    from muxlang.redaction import redact_cut

    text = "x" * 95 + " key=" + HTTP_KEY
    assert redact_cut(text, [HTTP_KEY], 105) == "x" * 95 + " key=***"
    cut = redact_cut(text, [HTTP_KEY], 100)
    assert cut.endswith("…")
    assert_no_piece("redact_cut", cut, HTTP_KEY)
    assert HTTP_KEY[:5] not in cut
    tail = redact_cut(HTTP_KEY + " " + "y" * 50, [HTTP_KEY], 53, keep="tail")
    assert tail == "…** " + "y" * 50


def test_a_malformed_stream_chunk_is_redacted_before_it_is_cut(tmp_path: Path) -> None:
    """An upstream's stream chunk that is not JSON is quoted (80 characters) in
    the error: a key inside it is redacted before the quote is cut."""
    from test_hardening_untrusted_argv import _start_gateway

    chunk = "not json, key=" + "x" * 56 + " " + HTTP_KEY + " and more text after the key"

    def respond(request: RecordedRequest) -> Reply:
        return Reply(body=f"data: {chunk}\n\n".encode(), content_type="text/event-stream")

    with FakeLLMServer(default=respond) as upstream:
        root, home = gateway_project(
            tmp_path,
            f'[backends.api]\ncommand = "{upstream.url}/v1"\nmodel = "m"\n'
            'api_key = "${HTTP_API_KEY}"\nmax_retries = 0\n',
        )
        proc, url = _start_gateway(root, subprocess_env(home, HTTP_API_KEY=HTTP_KEY))
        try:
            answer = httpx.post(
                url + "/v1/messages",  # translated: the backend's own stream decoder reads it
                json={
                    "model": "api",
                    "max_tokens": 50,
                    "stream": True,
                    "messages": [{"role": "user", "content": "hi"}],
                },
                timeout=60,
            )
        finally:
            proc.terminate()
            _, stderr = proc.communicate(timeout=15)
    assert "not json" in answer.text, answer.text  # the chunk is quoted ...
    assert_no_piece("the gateway's answer", answer.text, HTTP_KEY)  # ... but not the key
    assert_no_piece("the gateway's log", stderr.decode(), HTTP_KEY)
