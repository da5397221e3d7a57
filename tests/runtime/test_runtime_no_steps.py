"""`muxlang run` of a workflow with no steps says so instead of "succeeding" silently."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from muxlang.cli import cli

NOTE = "note: workflow `empty` has no steps: nothing to run"


def run(root: Path, *args: str):
    (root / ".muxlang").mkdir(exist_ok=True)
    (root / "wf.toml").write_text('name = "empty"\n')
    return CliRunner().invoke(
        cli, ["-C", str(root), "run", "wf.toml", *args], catch_exceptions=False
    )


@pytest.mark.parametrize("mode", ["console", "json", "jsonl"])
def test_run_of_an_empty_workflow_prints_a_note(tmp_path: Path, mode: str) -> None:
    result = run(tmp_path, "--output", mode)
    assert result.exit_code == 0
    assert NOTE in result.stderr
    if mode == "json":
        document = json.loads(result.stdout)  # stdout still holds exactly one object
        assert document["workflow"] == "empty"
        assert document["steps"] == {}


def test_dry_run_of_an_empty_workflow_prints_the_note(tmp_path: Path) -> None:
    result = run(tmp_path, "--dry-run")
    assert result.exit_code == 0
    assert NOTE in result.stderr


def test_quiet_prints_nothing(tmp_path: Path) -> None:
    result = run(tmp_path, "--output", "quiet")
    assert result.exit_code == 0
    assert result.stderr == ""
