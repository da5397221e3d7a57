"""`muxlang init` writes a starter project and never overwrites without --force."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest


def muxlang(*args: str, cwd: Path, path: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": path, "HOME": str(cwd), "XDG_CONFIG_HOME": str(cwd / ".xdg")}
    return subprocess.run(
        [sys.executable, "-m", "muxlang", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def fake_path(tmp_path: Path) -> str:
    """A PATH with a fake `claude` and `ollama` on it, plus the system's tools."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    for name in ("claude", "ollama"):
        exe = bin_dir / name
        exe.write_text("#!/bin/sh\necho stand-in\n")
        exe.chmod(0o755)
    return f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin"


def test_init_writes_config_with_found_clis_roles_and_team(tmp_path: Path, fake_path: str) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "Cargo.toml").write_text("[package]\nname = 'x'\n")

    result = muxlang("init", cwd=project, path=fake_path)

    assert result.returncode == 0, result.stderr
    config = tomllib.loads((project / ".muxlang" / "config.toml").read_text())
    assert set(config["backends"]) == {"claude", "ollama", "openai"}
    assert config["backends"]["claude"] == {"command": "claude", "args": ["-p"]}
    assert config["backends"]["openai"]["enabled"] is False
    assert set(config["roles"]) == {"analyzer", "coder", "quick"}
    assert config["roles"]["analyzer"]["backends"] == ["claude", "ollama"]
    assert "rust" in config["teams"]
    workflow = tomllib.loads((project / ".muxlang" / "workflows" / "check.toml").read_text())
    assert workflow["steps"][0]["run"] == "cargo clippy && cargo test"
    assert "team: rust" in result.stderr


def test_init_without_any_cli_uses_the_http_backend(tmp_path: Path) -> None:
    result = muxlang("init", cwd=tmp_path, path="/nonexistent")

    assert result.returncode == 0, result.stderr
    config = tomllib.loads((tmp_path / ".muxlang" / "config.toml").read_text())
    assert config["roles"]["coder"]["backends"] == ["openai"]
    assert config["backends"]["openai"]["enabled"] is True


def test_init_refuses_to_overwrite_unless_forced(tmp_path: Path, fake_path: str) -> None:
    config_path = tmp_path / ".muxlang" / "config.toml"
    config_path.parent.mkdir()
    config_path.write_text("# mine\n")

    refused = muxlang("init", cwd=tmp_path, path=fake_path)
    assert refused.returncode == 1
    assert "exists already" in refused.stderr
    assert config_path.read_text() == "# mine\n"

    forced = muxlang("init", "--force", cwd=tmp_path, path=fake_path)
    assert forced.returncode == 0, forced.stderr
    assert "[roles.analyzer]" in config_path.read_text()


@pytest.mark.parametrize("marker", ["Cargo.toml", "pyproject.toml", None])
def test_init_output_passes_validate_strict(
    tmp_path: Path, fake_path: str, marker: str | None
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".git").mkdir()
    if marker:
        (project / marker).write_text("")

    assert muxlang("init", cwd=project, path=fake_path).returncode == 0
    checked = muxlang(
        "validate", "--strict", ".muxlang/config.toml", "check", cwd=project, path=fake_path
    )
    everything = muxlang("validate", "--strict", cwd=project, path=fake_path)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "2 files" in checked.stdout + checked.stderr
    assert everything.returncode == 0, everything.stdout + everything.stderr


def test_init_detects_the_team_the_config_would_detect(tmp_path: Path, fake_path: str) -> None:
    """init and `muxlang teams` agree on the project's team (one detection rule)."""
    project = tmp_path / "proj"
    project.mkdir()
    (project / "go.mod").write_text("module x\n")
    (project / "package.json").write_text("{}\n")

    result = muxlang("init", cwd=project, path=fake_path)
    teams = muxlang("teams", "--output", "json", cwd=project, path=fake_path)

    assert result.returncode == 0, result.stderr
    assert "team: node" in result.stderr  # node comes before go in file order
    workflow = tomllib.loads((project / ".muxlang" / "workflows" / "check.toml").read_text())
    assert workflow["steps"][0]["run"] == "npm test"
    assert teams.returncode == 0, teams.stderr
    active = [team["name"] for team in json.loads(teams.stdout) if team["active"]]
    assert active == ["node"]


def test_init_from_a_subdirectory_writes_at_the_project_root(
    tmp_path: Path, fake_path: str
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "Cargo.toml").write_text("[package]\nname = 'x'\n")
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)

    result = muxlang("init", cwd=sub, path=fake_path)

    assert result.returncode == 0, result.stderr
    assert (tmp_path / ".muxlang" / "config.toml").exists()
    assert not (sub / ".muxlang").exists()
    assert "team: rust" in result.stderr


def test_init_never_overwrites_a_workflow_even_with_force(tmp_path: Path, fake_path: str) -> None:
    workflow = tmp_path / ".muxlang" / "workflows" / "check.toml"
    workflow.parent.mkdir(parents=True)
    workflow.write_text("# my precious workflow\n")

    first = muxlang("init", cwd=tmp_path, path=fake_path)
    forced = muxlang("init", "--force", cwd=tmp_path, path=fake_path)

    assert first.returncode == 0, first.stderr
    assert forced.returncode == 0, forced.stderr
    assert workflow.read_text() == "# my precious workflow\n"
    for result in (first, forced):
        assert "kept .muxlang/workflows/check.toml" in result.stderr
        assert "wrote .muxlang/workflows/check.toml" not in result.stderr


def test_init_does_not_hide_an_llm_mux_config(tmp_path: Path, fake_path: str) -> None:
    legacy = tmp_path / ".llm-mux" / "config.toml"
    legacy.parent.mkdir()
    legacy.write_text('[backends.mine]\ncommand = "mine"\n[roles.analyzer]\nbackends = ["mine"]\n')

    refused = muxlang("init", cwd=tmp_path, path=fake_path)

    assert refused.returncode == 1
    assert "would hide it" in refused.stderr
    assert not (tmp_path / ".muxlang").exists()
    forced = muxlang("init", "--force", cwd=tmp_path, path=fake_path)
    assert forced.returncode == 0, forced.stderr
    assert (tmp_path / ".muxlang" / "config.toml").exists()


def test_init_team_option_and_json_output(tmp_path: Path, fake_path: str) -> None:
    unknown = muxlang("init", "--team", "cobol", cwd=tmp_path, path=fake_path)
    assert unknown.returncode == 2
    assert "unknown team 'cobol'" in unknown.stderr
    assert not (tmp_path / ".muxlang").exists()

    result = muxlang("--output", "json", "init", "--team", "go", cwd=tmp_path, path=fake_path)

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["team"] == "go"
    assert summary["written"] == [
        ".muxlang/config.toml",
        ".muxlang/.gitignore",
        ".muxlang/workflows/check.toml",
        ".muxlang/workflow.schema.json",
        ".muxlang/config.schema.json",
        ".taplo.toml",
    ]
    assert summary["backends"] == ["claude", "ollama"]
    workflow = tomllib.loads((tmp_path / ".muxlang" / "workflows" / "check.toml").read_text())
    assert workflow["steps"][0]["run"] == "go vet ./... && go test ./..."


def test_init_leaves_roles_the_user_config_defines_to_it(tmp_path: Path, fake_path: str) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    user = project / ".xdg" / "muxlang" / "config.toml"  # the helper's XDG_CONFIG_HOME
    user.parent.mkdir(parents=True)
    user.write_text('[roles.analyzer]\nbackends = ["claude"]\nexecution = "parallel"\n')

    result = muxlang("init", cwd=project, path=fake_path)

    assert result.returncode == 0, result.stderr
    config = tomllib.loads((project / ".muxlang" / "config.toml").read_text())
    assert "analyzer" not in config["roles"]
    assert set(config["roles"]) == {"coder", "quick"}


def test_init_keeps_run_state_out_of_git(tmp_path: Path, fake_path: str) -> None:
    result = muxlang("init", cwd=tmp_path, path=fake_path)

    assert result.returncode == 0, result.stderr
    ignored = (tmp_path / ".muxlang" / ".gitignore").read_text().split()
    assert "journal/" in ignored
    assert "apply.lock" in ignored
