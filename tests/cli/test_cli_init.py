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
