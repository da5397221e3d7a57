"""Silencing findings: `# muxlang: ignore[...]`, `[validate] ignore` in config and
`validate --select/--ignore`, through the real command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from mux_compiler_support import cli_project

from muxlang.cli import cli
from muxlang.compiler.suppress import inline_ignores

# two findings: MUX021 (line 9) and MUX040 (line 14, a warning)
WORKFLOW = """\
name = "two"

[[steps]]
name = "diff"
type = "shell"
run = "git diff"
{above21}
[[steps]]
name = "show"
type = "shell"
run = "echo {{{{ steps.dif.exit_code }}}}"{same21}

[[steps]]
name = "raw"
type = "shell"
run = "cat {{{{ steps.diff.output | raw }}}}"{same40}
"""


def workflow(above21: str = "", same21: str = "", same40: str = "") -> str:
    return WORKFLOW.format(above21=above21, same21=same21, same40=same40)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return cli_project(tmp_path, monkeypatch)


def codes(project: Path, text: str, *args: str) -> tuple[int, list[str]]:
    (project / ".muxlang/workflows/two.toml").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(cli, ["validate", "--format", "json", *args])
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, [d["code"] for d in json.loads(result.stdout)]


def test_both_findings_without_suppression(project: Path) -> None:
    assert codes(project, workflow()) == (1, ["MUX021", "MUX040"])


def test_a_comment_on_the_line_silences_that_code_there(project: Path) -> None:
    text = workflow(same21="  # muxlang: ignore[MUX021]")
    assert codes(project, text) == (0, ["MUX040"])


def test_a_comment_on_the_line_above_silences_it_too(project: Path) -> None:
    text = workflow(above21="").replace(
        'run = "echo {{ steps.dif', '# muxlang: ignore[MUX021]\nrun = "echo {{ steps.dif'
    )
    assert codes(project, text) == (0, ["MUX040"])


def test_several_codes_with_commas_and_prefixes(project: Path) -> None:
    text = workflow(same21="  #muxlang:ignore[mux040, MUX02]")
    assert codes(project, text) == (0, ["MUX040"])  # only on its own line
    text = workflow(same40="  # muxlang: ignore[MUX021, MUX04]")
    assert codes(project, text) == (1, ["MUX021"])


def test_a_comment_naming_another_code_silences_nothing(project: Path) -> None:
    assert codes(project, workflow(same21="  # muxlang: ignore[MUX040]")) == (
        1,
        ["MUX021", "MUX040"],
    )


def test_a_comment_two_lines_above_is_too_far(project: Path) -> None:
    text = workflow(above21="# muxlang: ignore[MUX021]\n")
    assert codes(project, text) == (1, ["MUX021", "MUX040"])


def test_config_validate_ignore_is_project_wide(project: Path) -> None:
    (project / ".muxlang/config.toml").write_text('[validate]\nignore = ["MUX040"]\n')
    assert codes(project, workflow()) == (1, ["MUX021"])


def test_a_bad_code_in_config_ignore_is_reported_at_it(project: Path) -> None:
    config = project / ".muxlang/config.toml"
    config.write_text('[validate]\nignore = ["E501"]\n')
    result = CliRunner().invoke(cli, ["validate", str(config)])
    assert result.exit_code == 1
    assert ".muxlang/config.toml:2:11: error[MUX006]" in result.stdout


def test_select_and_ignore_on_the_command_line(project: Path) -> None:
    assert codes(project, workflow(), "--select", "MUX04") == (0, ["MUX040"])
    assert codes(project, workflow(), "--ignore", "MUX021") == (0, ["MUX040"])
    assert codes(project, workflow(), "--select", "MUX02,MUX04", "--ignore", "MUX040") == (
        1,
        ["MUX021"],
    )
    assert codes(project, workflow(), "--strict", "--ignore", "mux02") == (1, ["MUX040"])


def test_select_of_something_not_a_code_is_a_usage_error(project: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "--select", "E501"])
    assert result.exit_code == 2
    assert "`E501` is not a code or a prefix of codes" in result.stderr


def test_directives_are_read_per_line() -> None:
    text = 'a = 1  # muxlang: ignore[MUX002,MUX003]\nb = "# muxlang: ignore[]"\n'
    assert inline_ignores(text) == {1: ("MUX002", "MUX003"), 2: ("MUX002", "MUX003")}
