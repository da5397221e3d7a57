"""MUX006 for `min_success` above a role's entries and for `detect` patterns that
are not globs: in a config file and in a workflow's own tables, at the value."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from muxlang.compiler.config_checks import glob_problem
from muxlang.compiler.project import validate_config, validate_workflow

SEED = Path(__file__).parent / "seed"

STEP = """
[[steps]]
name = "ask"
type = "query"
role = "pair"
prompt = "Hello"
"""


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {"MUXLANG_CONFIG": str(SEED / "config.toml"), "HOME": str(tmp_path)}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def mux003(found) -> list[tuple[int, int, str]]:
    return [(d.span.line, d.span.column, d.message) for d in found if d.code == "MUX006"]


@pytest.mark.parametrize(
    "pattern",
    ["Cargo.toml", "**/*.py", "src/*.rs", "[]]x", "[!]]y", "file[0-9].txt", "a/b/[[]c"],
)
def test_valid_globs_pass(pattern: str) -> None:
    assert glob_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("", "empty"),
        ("  ", "empty"),
        ("/abs/Cargo.toml", "absolute"),
        ("~/x", "absolute"),
        ("../Cargo.toml", "`..`"),
        ("src/[ab.py", "never closed"),
        ("[!", "never closed"),
    ],
)
def test_invalid_globs_say_why(pattern: str, why: str) -> None:
    assert why in (glob_problem(pattern) or "")


def test_min_success_above_entries_in_a_workflow_is_reported_at_the_value(
    tmp_path: Path, environ: dict[str, str]
) -> None:
    path = write(
        tmp_path,
        "wf.toml",
        textwrap.dedent("""
        [roles.pair]
        backends = ["claude", "codex"]
        execution = "parallel"
        min_success = 9
        """).lstrip()
        + STEP,
    )
    found = validate_workflow(path, tmp_path, environ=environ)
    assert mux003(found) == [(4, 15, "`min_success` is 9 but role `pair` lists 2 backends")]
    assert found[0].file == str(path)


def test_min_success_equal_to_entries_is_fine(tmp_path: Path, environ: dict[str, str]) -> None:
    path = write(
        tmp_path,
        "wf.toml",
        textwrap.dedent("""
        [roles.pair]
        backends = ["claude", "codex"]
        execution = "parallel"
        min_success = 2
        """).lstrip()
        + STEP,
    )
    assert validate_workflow(path, tmp_path, environ=environ) == []


def test_a_workflow_that_shrinks_a_config_role_is_reported_where_it_shrank_it(
    tmp_path: Path,
) -> None:
    config = write(
        tmp_path,
        "config.toml",
        textwrap.dedent("""
        [backends.claude]
        command = "claude"
        [backends.codex]
        command = "codex"
        [roles.pair]
        backends = ["claude", "codex"]
        execution = "parallel"
        min_success = 2
        """),
    )
    environ = {"MUXLANG_CONFIG": str(config), "HOME": str(tmp_path)}
    assert validate_config(config, tmp_path, environ=environ) == []
    path = write(tmp_path, "wf.toml", '[roles.pair]\nbackends = ["claude"]\n' + STEP)
    found = validate_workflow(path, tmp_path, environ=environ)
    # the workflow's `backends` is what made the role impossible: reported there
    assert mux003(found) == [(2, 12, "`min_success` is 2 but role `pair` lists 1 backend")]


def test_team_override_and_detect_in_a_config_file(tmp_path: Path, environ: dict[str, str]) -> None:
    config = write(
        tmp_path,
        "other.toml",
        textwrap.dedent("""
        [teams.web]
        detect = ["package.json", ""]

        [teams.web.roles.analyzer]
        min_success = 3
        """),
    )
    found = validate_config(config, tmp_path, environ=environ)
    assert sorted(mux003(found)) == [
        (3, 27, "`detect` pattern `` of team `web` is not a valid glob: it is empty"),
        (6, 15, "`min_success` is 3 but role `analyzer` (team `web`) lists 2 backends"),
    ]
