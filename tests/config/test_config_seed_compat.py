"""Drop-in compatibility: the seed README's llm-mux setup works unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from muxlang.cli import cli
from muxlang.compiler.loader import load_workflow
from muxlang.config import find_workflow, load_config
from tests.fixtures import seed


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path]:
    home = tmp_path / "home"
    (home / ".config/llm-mux").mkdir(parents=True)
    (home / ".config/llm-mux/config.toml").write_text(seed.CONFIG)
    project = tmp_path / "project"
    (project / ".llm-mux/workflows").mkdir(parents=True)
    (project / ".llm-mux/workflows/review.toml").write_text(seed.REVIEW_WORKFLOW)
    (project / ".llm-mux/workflows/analyze.toml").write_text(seed.PARALLEL_WORKFLOW)
    (project / "Cargo.toml").touch()
    return home, project


def test_seed_config_and_workflows_load_without_a_problem(setup: tuple[Path, Path]) -> None:
    home, project = setup
    environ = {"HOME": str(home)}
    path = find_workflow("review", project, environ)
    assert path == project / ".llm-mux/workflows/review.toml"
    workflow, problems = load_workflow(path)
    assert problems == []
    assert workflow is not None
    config, problems = load_config(project, workflow=workflow, environ=environ)
    assert problems == []
    assert config.team == "rust"
    assert config.team_verify == "cargo clippy && cargo test"
    assert config.roles["analyzer"].execution == "parallel"
    assert config.backends["openai"].api_key == "${OPENAI_API_KEY}"
    assert config.backends["local"].is_http


def test_workflow_local_role_joins_the_config(setup: tuple[Path, Path]) -> None:
    home, project = setup
    environ = {"HOME": str(home)}
    workflow, _ = load_workflow(find_workflow("analyze", project, environ))
    assert workflow is not None
    config, problems = load_config(project, workflow=workflow, environ=environ)
    assert problems == []
    assert config.roles["multi"].backends == ["claude", "codex", "gemini"]
    assert "gemini" in config.backends  # from the built-in layer


def test_workflow_teams_are_detected_too(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "setup.py").touch()
    workflow, _ = load_workflow(
        tmp_path / "w.toml",
        '[teams.python]\ndetect = ["setup.py"]\nverify = "pytest"\n'
        '[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n',
    )
    config, problems = load_config(tmp_path, workflow=workflow, environ={"HOME": str(tmp_path)})
    assert problems == []
    assert (config.team, config.team_verify) == ("python", "pytest")


def test_listing_commands_on_the_seed_setup(setup: tuple[Path, Path]) -> None:
    home, project = setup
    runner = CliRunner()
    env = {"HOME": str(home), "XDG_CONFIG_HOME": "", "MUXLANG_CONFIG": ""}

    def records(command: str) -> list[dict[str, object]]:
        result = runner.invoke(cli, [command, "-C", str(project), "--output", "json"], env=env)
        assert result.exit_code == 0, result.output
        loaded: list[dict[str, object]] = json.loads(result.stdout)
        return loaded

    workflows = {r["name"]: r for r in records("workflows")}
    assert workflows["review"]["source"] == "project"
    assert workflows["analyze"]["source"] == "project"
    backends = {r["name"]: r for r in records("backends")}
    assert set(backends) >= {"claude", "codex", "ollama", "openai", "local"}
    seed_file = str(home / ".config/llm-mux/config.toml")
    assert backends["codex"]["args"] == ["exec", "-q"]
    assert backends["codex"]["source"] == seed_file
    roles = {r["name"]: r for r in records("roles")}
    assert roles["quick"]["backends"] == ["ollama"]
    teams = records("teams")
    assert [(t["name"], t["active"]) for t in teams] == [("rust", True)]
