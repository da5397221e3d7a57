"""The seed README's quick start, verbatim except for where the servers live:
claude/codex/ollama are the fake CLIs on PATH, openai and local the fake upstream."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from muxlang.config import load_config
from muxlang.llm import ChatRequest
from muxlang.runtime.backends import open_router
from tests.backends.conftest import FAKE_BIN
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.fixtures import seed

#: the quick start's config (backends and roles) with both HTTP backends on the fake upstream
SEED_URLS = ("https://api.openai.com/v1", "http://localhost:11434/v1")


@pytest.fixture
def quickstart(tmp_path: Path, llm_server: FakeLLMServer) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    (home / ".config" / "llm-mux").mkdir(parents=True)
    config = "\n".join((seed.BACKENDS, seed.ROLES))
    for url in SEED_URLS:
        config = config.replace(url, llm_server.base_url("openai"))
    (home / ".config" / "llm-mux" / "config.toml").write_text(config)
    root = tmp_path / "project"
    (root / ".llm-mux" / "workflows").mkdir(parents=True)
    (root / ".llm-mux" / "workflows" / "review.toml").write_text(seed.REVIEW_WORKFLOW)
    env = {
        "HOME": str(home),
        "PATH": f"{FAKE_BIN}{os.pathsep}{os.environ['PATH']}",
        "OPENAI_API_KEY": "sk-quickstart-key",
        "GIT_CONFIG_NOSYSTEM": "1",
        "LANG": "C.UTF-8",
    }
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q"], cwd=root, check=True, env=env)
    (root / "app.py").write_text("print('hello')\n")
    subprocess.run([*git, "add", "."], cwd=root, check=True, env=env)
    subprocess.run([*git, "commit", "-qm", "one"], cwd=root, check=True, env=env)
    (root / "app.py").write_text("print('hello, world')\n")
    subprocess.run([*git, "commit", "-qam", "two"], cwd=root, check=True, env=env)
    return root, env


async def test_quickstart_roles_and_http_backends(
    quickstart: tuple[Path, dict[str, str]], llm_server: FakeLLMServer
) -> None:
    root, env = quickstart
    config, problems = load_config(root, environ=env)
    assert not [p for p in problems if p.is_error]
    async with open_router(config, environ=env) as router:
        quick = await router.query("quick", ChatRequest.from_prompt("ping"), kind="role")
        analyzer = await router.query("analyzer", ChatRequest.from_prompt("look"), kind="role")
        openai = await router.query("openai", ChatRequest.from_prompt("hi"), kind="backend")
        local = await router.query("local", ChatRequest.from_prompt("yo"), kind="backend")
    assert (quick.output, quick.backend) == ("ping", "ollama")
    assert analyzer.output == "=== claude ===\nlook\n\n=== codex ===\nlook"
    assert analyzer.outputs == {"claude": "look", "codex": "look"}
    assert openai.output == "hi"
    assert local.output == "yo"
    first, second = llm_server.requests
    assert first.headers["authorization"] == "Bearer sk-quickstart-key"
    assert first.json["model"] == "gpt-4"
    assert second.json["model"] == "llama3"
    assert "authorization" not in second.headers


@pytest.mark.slow
def test_quickstart_review_workflow_runs(quickstart: tuple[Path, dict[str, str]]) -> None:
    root, env = quickstart
    muxlang = Path(sys.executable).parent / "muxlang"
    result = subprocess.run(
        [str(muxlang), "run", "review", "--output", "json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    analyze = report["steps"]["analyze"]
    assert analyze["status"] == "success"
    assert analyze["backend"] == "claude"
    assert list(analyze["outputs"]) == ["claude", "codex"]
    assert analyze["output"].startswith("=== claude ===\n")
    assert "+print('hello, world')" in analyze["outputs"]["codex"]


@pytest.mark.slow
@pytest.mark.parametrize("output", ["console", "json", "jsonl"])
def test_debug_run_never_prints_the_key(
    tmp_path: Path, llm_server: FakeLLMServer, output: str
) -> None:
    secret = "sk-debug-SECRET-0042"
    llm_server.default = Reply.fail(401, f"Incorrect API key provided: {secret}")
    root = tmp_path / "p"
    (root / ".muxlang").mkdir(parents=True)
    (root / ".muxlang" / "config.toml").write_text(
        f'[backends.openai]\ncommand = "{llm_server.base_url()}"\nmodel = "m"\n'
        'api_key = "${OPENAI_API_KEY}"\nmax_retries = 1\nretry_delay = 0\n'
    )
    (root / "wf.toml").write_text(
        '[[steps]]\nname = "ask"\ntype = "query"\nbackend = "openai"\nprompt = "hi"\n'
    )
    env = {"HOME": str(tmp_path), "PATH": os.environ["PATH"], "OPENAI_API_KEY": secret}
    muxlang = Path(sys.executable).parent / "muxlang"
    result = subprocess.run(
        [str(muxlang), "run", "./wf.toml", "--debug", "--output", output],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "HTTP 401" in result.stdout + result.stderr
    assert "Incorrect API key provided: ***" in result.stdout + result.stderr
    assert secret not in result.stdout + result.stderr
    assert llm_server.requests[0].headers["authorization"] == f"Bearer {secret}"
