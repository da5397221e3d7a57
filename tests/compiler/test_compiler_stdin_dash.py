"""``muxlang validate -`` reads the workflow from stdin, as ``ruff check -`` does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from mux_compiler_support import cli_project

from muxlang.cli import cli
from tests.compiler.test_compiler_cli import BROKEN, CLEAN, SEED


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project as the working directory, the seed's config as user layer."""
    return cli_project(tmp_path, monkeypatch, SEED / "config.toml")


def validate(*args: str, text: str):
    return CliRunner().invoke(cli, ["validate", *args], input=text, catch_exceptions=False)


@pytest.mark.usefixtures("project")
def test_dash_reads_a_workflow_from_stdin_named_stdin() -> None:
    result = validate("-", text=BROKEN)
    assert result.exit_code == 1
    assert "<stdin>:12:29: error[MUX021]: unknown step `dif`" in result.stdout
    assert "{{ steps.dif.output }}" in result.stdout  # the source line shown is stdin's
    assert "not found" not in result.stderr


@pytest.mark.usefixtures("project")
def test_dash_with_clean_text_exits_0_and_json_names_stdin() -> None:
    assert validate("-", text=CLEAN).exit_code == 0
    result = validate("-", "--format", "json", text=BROKEN)
    [diagnostic] = json.loads(result.stdout)
    assert diagnostic["file"] == "<stdin>"
    assert diagnostic["code"] == "MUX021"


def test_dash_beside_other_files_is_a_usage_error(project: Path) -> None:
    (project / ".muxlang" / "workflows" / "review.toml").write_text(CLEAN)
    result = validate("-", "review", text=CLEAN)
    assert result.exit_code == 2
    assert "`-` (read stdin) takes no other file arguments" in result.stderr
