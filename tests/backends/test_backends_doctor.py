"""``muxlang doctor`` against fake CLIs and the fake upstream."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from muxlang.cli import cli
from tests.backends.conftest import FAKE_BIN
from tests.fakes.llm_server import FakeLLMServer, Reply

SECRET = "sk-doctor-SECRET-abcdef123"


def project(tmp_path: Path, config: str) -> Path:
    root = tmp_path / "proj"
    (root / ".muxlang").mkdir(parents=True)
    (root / ".muxlang" / "config.toml").write_text(config)
    return root


def doctor(root: Path, *args: str, **env: str | None) -> Any:
    home = root.parent / "home"
    home.mkdir(exist_ok=True)
    environ: dict[str, str | None] = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "MUXLANG_CONFIG": None,
        "PATH": f"{FAKE_BIN}{os.pathsep}/usr/bin:/bin",
        "OPENAI_API_KEY": None,
        **env,
    }
    return CliRunner().invoke(cli, ["-C", str(root), "doctor", *args], env=environ)


def config_for(server: FakeLLMServer, execution: str = "parallel") -> str:
    return f"""
[backends.claude]
command = "claude"
args = ["-p"]

[backends.openai]
command = "{server.base_url("openai")}"
model = "gpt-4o"
api_key = "${{OPENAI_API_KEY}}"

[roles.analyzer]
backends = ["claude", "openai"]
execution = "{execution}"
"""


def test_everything_ready(tmp_path: Path, llm_server: FakeLLMServer) -> None:
    root = project(tmp_path, config_for(llm_server))
    result = doctor(root, "--output", "json", OPENAI_API_KEY=SECRET)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["project_root"] == str(root)
    assert report["config_files"] == [str(root / ".muxlang" / "config.toml")]
    backends = {b["name"]: b for b in report["backends"]}
    assert backends["claude"]["status"] == "ok"
    assert "claude 1.0.0" in backends["claude"]["detail"]
    assert backends["openai"]["status"] == "ok"
    assert backends["openai"]["used_by"] == ["analyzer"]
    # the key was really sent to the model list, and never printed
    (probe,) = [r for r in llm_server.requests if r.path == "/v1/models"]
    assert probe.headers["authorization"] == f"Bearer {SECRET}"
    assert SECRET not in result.output


def test_missing_key_is_named_and_fails(tmp_path: Path, llm_server: FakeLLMServer) -> None:
    root = project(tmp_path, config_for(llm_server))
    result = doctor(root)
    assert result.exit_code == 1
    assert "backend `openai`: environment variable OPENAI_API_KEY is not set" in result.stderr
    assert "claude" in result.stdout
    assert llm_server.request_count == 0  # no point calling without the key


def test_rejected_key_fails(tmp_path: Path, llm_server: FakeLLMServer) -> None:
    llm_server.script(Reply.fail(401, f"Incorrect API key provided: {SECRET}"))
    root = project(tmp_path, config_for(llm_server))
    result = doctor(root, OPENAI_API_KEY=SECRET)
    assert result.exit_code == 1
    assert "rejected the API key (HTTP 401" in result.stderr
    assert SECRET not in result.output


def test_unreachable_server_fails(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = f"""
[backends.local]
command = "http://127.0.0.1:{port}/v1"
[roles.quick]
backends = ["local"]
"""
    result = doctor(project(tmp_path, config), "--output", "json")
    assert result.exit_code == 1
    assert f"backend `local`: cannot reach http://127.0.0.1:{port}/v1/models" in result.stderr
    assert json.loads(result.stdout)["backends"][-1]["status"] == "unusable"


def test_cli_missing_from_path(tmp_path: Path) -> None:
    config = """
[backends.mine]
command = "my-llm-cli"
[roles.quick]
backends = ["mine"]
"""
    result = doctor(project(tmp_path, config))
    assert result.exit_code == 1
    assert "backend `mine`: command `my-llm-cli` not found on PATH" in result.stderr
    assert "role `quick` (first) cannot run" in result.stderr


def test_unused_and_builtin_backends_do_not_fail(tmp_path: Path) -> None:
    # built-in defaults list gemini, which is not installed here; claude is
    config = """
[roles.analyzer]
backends = ["claude", "gemini"]
execution = "fallback"

[backends.spare]
command = "not-installed-spare"
"""
    result = doctor(project(tmp_path, config))
    assert result.exit_code == 0, result.output
    assert "warning: backend `gemini`: command `gemini` not found on PATH" in result.stderr
    assert "spare" in result.stdout
    assert "error" not in result.stderr


@pytest.mark.parametrize("execution", ["parallel", "fallback"])
def test_configured_backend_fails_in_any_role_mode(
    tmp_path: Path, llm_server: FakeLLMServer, execution: str
) -> None:
    root = project(tmp_path, config_for(llm_server, execution))
    result = doctor(root)
    assert result.exit_code == 1
    assert "OPENAI_API_KEY is not set" in result.stderr


def test_detected_team_is_shown(tmp_path: Path) -> None:
    config = """
[teams.rust]
detect = ["Cargo.toml"]
[teams.rust.roles.quick]
backends = ["claude"]
"""
    root = project(tmp_path, config)
    (root / "Cargo.toml").write_text("[package]\n")
    result = doctor(root)
    assert "team: rust" in result.stdout
    result = doctor(root, "--output", "json")
    assert json.loads(result.stdout)["team"] == "rust"
