"""`muxlang doctor` judges what the project uses: roles and backends its config
files define or its workflows name. Built-in defaults nobody uses only warn."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from muxlang.cli import cli
from tests.backends.conftest import FAKE_BIN

ECHO_ONLY = """
[backends.e]
command = "echo"

[roles.mine]
backends = ["e"]
"""


def project(tmp_path: Path, config: str, **workflows: str) -> Path:
    root = tmp_path / "proj"
    (root / ".muxlang" / "workflows").mkdir(parents=True)
    (root / ".muxlang" / "config.toml").write_text(config)
    for name, text in workflows.items():
        (root / ".muxlang" / "workflows" / f"{name}.toml").write_text(text)
    return root


def doctor(root: Path, *args: str, fake_clis: bool = False, user: str | None = None) -> Any:
    """Run doctor with none of the built-in CLIs on PATH (or the fakes of claude,
    codex and ollama — never gemini — with ``fake_clis``)."""
    home = root.parent / "home"
    home.mkdir(exist_ok=True)
    if user is not None:
        (home / "config.toml").write_text(user)
    path = "/usr/bin:/bin"
    environ = {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "MUXLANG_CONFIG": str(home / "config.toml") if user is not None else None,
        "PATH": f"{FAKE_BIN}{os.pathsep}{path}" if fake_clis else path,
    }
    return CliRunner().invoke(cli, ["-C", str(root), "doctor", *args], env=environ)


def query(target: str, kind: str = "role") -> str:
    return f"""
[[steps]]
name = "ask"
type = "query"
{kind} = "{target}"
prompt = "hi"
"""


def test_unused_builtin_roles_only_warn(tmp_path: Path) -> None:
    result = doctor(project(tmp_path, ECHO_ONLY))
    assert result.exit_code == 0, result.output
    assert "error" not in result.stderr
    for role in ("analyzer", "coder", "quick"):
        assert f"warning: role `{role}`" in result.stderr
    assert "every backend the project uses is ready" in result.stderr


def test_unused_builtin_roles_only_warn_in_json(tmp_path: Path) -> None:
    result = doctor(project(tmp_path, ECHO_ONLY), "--output", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    roles = {r["name"]: r for r in report["roles"]}
    assert roles["mine"]["used"] is True
    assert roles["quick"]["used"] is False
    assert roles["quick"]["usable"] is False
    backends = {b["name"]: b for b in report["backends"]}
    assert backends["e"]["used"] is True
    assert backends["gemini"]["used"] is False


def test_a_workflow_using_a_builtin_role_makes_it_count(tmp_path: Path) -> None:
    root = project(tmp_path, ECHO_ONLY, review=query("analyzer"))
    result = doctor(root)
    assert result.exit_code == 1
    assert "error: role `analyzer` (fallback) cannot run" in result.stderr
    assert "warning: role `quick`" in result.stderr  # still nobody's


def test_a_builtin_role_redefined_in_config_counts(tmp_path: Path) -> None:
    config = ECHO_ONLY + '\n[roles.quick]\nbackends = ["ollama"]\n'
    result = doctor(project(tmp_path, config))
    assert result.exit_code == 1
    assert "error: role `quick` (first) cannot run" in result.stderr
    assert "error: backend `ollama`: command `ollama` not found on PATH" in result.stderr


def test_a_role_defined_in_the_user_config_counts(tmp_path: Path) -> None:
    user = '[roles.mine2]\nbackends = ["codex"]\n'
    result = doctor(project(tmp_path, ECHO_ONLY), user=user)
    assert result.exit_code == 1
    assert "error: role `mine2` (first) cannot run" in result.stderr


def test_a_nested_role_a_workflow_reaches_counts(tmp_path: Path) -> None:
    config = ECHO_ONLY + '\n[roles.outer]\nbackends = ["e", "quick"]\nexecution = "parallel"\n'
    config += "min_success = 2\n"
    root = project(tmp_path, config, review=query("outer"))
    result = doctor(root)
    assert result.exit_code == 1
    assert "error: role `quick` (first) cannot run" in result.stderr


def test_a_backend_a_step_names_directly_counts_and_is_shown(tmp_path: Path) -> None:
    # claude/codex/ollama are on PATH (fakes); gemini is not, and a step asks it
    root = project(tmp_path, ECHO_ONLY, review=query("gemini", "backend"))
    result = doctor(root, "--output", "json", fake_clis=True)
    assert result.exit_code == 1
    assert "error: backend `gemini`: command `gemini` not found on PATH" in result.stderr
    backends = {b["name"]: b for b in json.loads(result.stdout)["backends"]}
    assert backends["gemini"]["used"] is True
    assert backends["gemini"]["used_by_workflows"] == ["review"]
    assert backends["e"]["used_by_workflows"] == []
    table = doctor(root, fake_clis=True)
    [row] = [line for line in table.stdout.splitlines() if line.startswith("gemini")]
    assert "workflow review" in row


def test_a_configured_backend_a_step_names_is_shown_in_used_by(tmp_path: Path) -> None:
    root = project(tmp_path, ECHO_ONLY, ping=query("e", "backend"))
    result = doctor(root)
    assert result.exit_code == 0, result.output
    [row] = [line for line in result.stdout.splitlines() if line.startswith("e ")]
    assert "mine, workflow ping" in row


def test_unused_builtin_backend_with_a_usable_role_still_warns_only(tmp_path: Path) -> None:
    # the built-in roles run on the fakes; gemini is missing and nobody uses it
    result = doctor(project(tmp_path, ECHO_ONLY), fake_clis=True)
    assert result.exit_code == 0, result.output
    assert "warning: backend `gemini`" in result.stderr
    assert "error" not in result.stderr


def test_a_backend_only_a_workflow_defines_is_probed(tmp_path: Path) -> None:
    missing = '[backends.local]\ncommand = "no-such-llm-cli-xyz"\n' + query("local", "backend")
    root = project(tmp_path, ECHO_ONLY, review=missing)
    result = doctor(root, "--output", "json")
    assert result.exit_code == 1, result.output
    assert "error: backend `local`: command `no-such-llm-cli-xyz` not found" in result.stderr
    backends = {b["name"]: b for b in json.loads(result.stdout)["backends"]}
    assert backends["local"]["status"] == "unusable"
    assert backends["local"]["used_by_workflows"] == ["review"]


def test_a_workflow_backend_reached_through_its_own_role_is_probed(tmp_path: Path) -> None:
    text = '[backends.here]\ncommand = "echo"\n\n[roles.own]\nbackends = ["here"]\n'
    root = project(tmp_path, ECHO_ONLY, review=text + query("own"))
    result = doctor(root)
    assert result.exit_code == 0, result.output
    [row] = [line for line in result.stdout.splitlines() if line.startswith("here ")]
    assert " ok " in row
    assert "workflow review" in row
