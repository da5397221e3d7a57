"""`muxlang run --output json` that stops before starting names the workflow as
it is named (its `name`, or its file's stem), not as the argument was typed."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from muxlang.cli import cli

NEEDS_ARG = """
    name = "reviewer"

    [args.base]
    description = "required"

    [[steps]]
    name = "show"
    type = "shell"
    run = "echo {{ args.base | shell_escape }}"
    """


def run_json(root: Path, *args: str) -> tuple[int, dict[str, object]]:
    result = CliRunner().invoke(
        cli, ["-C", str(root), "run", *args, "--output", "json"], catch_exceptions=False
    )
    return result.exit_code, json.loads(result.stdout)


def write(root: Path, name: str, body: str) -> None:
    (root / ".muxlang" / "workflows").mkdir(parents=True, exist_ok=True)
    (root / name).write_text(textwrap.dedent(body))


@pytest.mark.parametrize("output", ["json", "jsonl"])
def test_missing_required_arg_reports_the_loaded_workflows_name(
    tmp_path: Path, output: str
) -> None:
    write(tmp_path, "t4.toml", NEEDS_ARG)
    result = CliRunner().invoke(
        cli, ["-C", str(tmp_path), "run", "t4.toml", "--output", output], catch_exceptions=False
    )
    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["workflow"] == "reviewer"
    assert "base" in document["error"]


def test_unnamed_workflow_is_named_by_its_stem(tmp_path: Path) -> None:
    write(tmp_path, "t4.toml", NEEDS_ARG.replace('name = "reviewer"', ""))
    code, document = run_json(tmp_path, "./t4.toml")
    assert code == 2
    assert document["workflow"] == "t4"


def test_validation_error_reports_the_workflows_name(tmp_path: Path) -> None:
    write(tmp_path, "t4.toml", NEEDS_ARG.replace("args.base |", "steps.nope.output |"))
    code, document = run_json(tmp_path, "t4.toml", "base=x")
    assert code == 2
    assert document["workflow"] == "reviewer"


def test_unknown_print_step_reports_the_workflows_name(tmp_path: Path) -> None:
    write(tmp_path, "t4.toml", NEEDS_ARG)
    code, document = run_json(tmp_path, "t4.toml", "base=x", "--print", "nope")
    assert code == 2
    assert document["workflow"] == "reviewer"


def test_a_workflow_that_is_not_found_keeps_the_name_typed(tmp_path: Path) -> None:
    (tmp_path / ".muxlang").mkdir()
    code, document = run_json(tmp_path, "nowhere")
    assert code == 2
    assert document["workflow"] == "nowhere"
