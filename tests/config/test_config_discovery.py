"""Project root, workflow lookup order, `muxlang workflows|backends|roles|teams`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from muxlang.cli import cli
from muxlang.config import WorkflowNotFoundError, find_project_root, find_workflow, list_workflows
from muxlang.config.discovery import stdlib_dir

STEP = '[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n'


def write(path: Path, text: str = STEP) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --------------------------------------------------------------------------- root


@pytest.mark.parametrize("marker", [".muxlang", ".llm-mux", ".git"])
def test_project_root_is_the_nearest_ancestor_with_a_marker(tmp_path: Path, marker: str) -> None:
    (tmp_path / "outer" / ".git").mkdir(parents=True)
    inner = tmp_path / "outer" / "inner"
    (inner / marker).mkdir(parents=True)
    deep = inner / "a" / "b"
    deep.mkdir(parents=True)
    assert find_project_root(deep) == inner.resolve()


def test_git_file_of_a_worktree_marks_a_root(tmp_path: Path) -> None:
    (tmp_path / "wt").mkdir()
    (tmp_path / "wt" / ".git").write_text("gitdir: /elsewhere\n")
    assert find_project_root(tmp_path / "wt") == (tmp_path / "wt").resolve()


def test_directory_option_wins_and_no_marker_means_start(tmp_path: Path) -> None:
    bare = tmp_path / "bare"
    bare.mkdir()
    (tmp_path / "x" / ".git").mkdir(parents=True)
    assert find_project_root(tmp_path / "x", directory=bare) == bare.resolve()
    # tmp_path has no marker above it in a sane test environment; the start is the root
    assert find_project_root(bare) in (bare.resolve(), *bare.resolve().parents)


# --------------------------------------------------------------------------- find_workflow


def test_lookup_order_project_then_llm_mux_then_user_then_stdlib(project: Path, home: Path) -> None:
    environ = {"HOME": str(home)}
    user_llm = write(home / ".config/llm-mux/workflows/review.toml")
    assert find_workflow("review", project, environ) == user_llm
    user = write(home / ".config/muxlang/workflows/review.toml")
    assert find_workflow("review", project, environ) == user
    legacy = write(project / ".llm-mux/workflows/review.toml")
    assert find_workflow("review", project, environ) == legacy
    mine = write(project / ".muxlang/workflows/review.toml")
    assert find_workflow("review", project, environ) == mine


def test_bundled_stdlib_is_the_last_resort(project: Path, home: Path) -> None:
    found = find_workflow("review", project, {"HOME": str(home)})
    assert found == stdlib_dir() / "review.toml"
    assert found.is_file()


def test_argument_with_slash_or_toml_suffix_is_a_path(
    project: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project / ".muxlang/workflows/x.toml")
    wf = write(project / "flows/x.toml")
    monkeypatch.chdir(project)
    assert find_workflow("flows/x.toml", project, {"HOME": str(home)}) == project / "flows/x.toml"
    local = write(project / "x.toml")
    assert find_workflow("x.toml", project, {"HOME": str(home)}) == project / "x.toml"
    assert local.is_file()
    assert find_workflow(str(wf), project, {"HOME": str(home)}) == wf
    with pytest.raises(WorkflowNotFoundError, match=r"flows/none\.toml"):
        find_workflow("flows/none.toml", project, {"HOME": str(home)})


def test_not_found_lists_where_it_looked_with_a_suggestion(project: Path, home: Path) -> None:
    with pytest.raises(WorkflowNotFoundError) as caught:
        find_workflow("reveiw", project, {"HOME": str(home)})
    message = str(caught.value)
    assert str(project / ".muxlang/workflows/reveiw.toml") in message
    assert str(project / ".llm-mux/workflows/reveiw.toml") in message
    assert str(home / ".config/muxlang/workflows/reveiw.toml") in message
    assert str(home / ".config/llm-mux/workflows/reveiw.toml") in message
    assert "did you mean `review`?" in message


def test_list_workflows_first_hit_wins_with_its_source(project: Path, home: Path) -> None:
    environ = {"HOME": str(home)}
    mine = write(project / ".muxlang/workflows/review.toml")
    write(home / ".config/muxlang/workflows/review.toml")
    own = write(home / ".config/llm-mux/workflows/mine.toml")
    entries = {e.name: e for e in list_workflows(project, environ)}
    assert (entries["review"].source, entries["review"].path) == ("project", mine)
    assert (entries["mine"].source, entries["mine"].path) == ("user", own)
    assert entries["fix"].source == "stdlib"
    assert list(entries) == sorted(entries)


# --------------------------------------------------------------------------- CLI


def run(args: list[str], home: Path) -> tuple[int, str, str]:
    runner = CliRunner()
    result = runner.invoke(
        cli, args, env={"HOME": str(home), "XDG_CONFIG_HOME": "", "MUXLANG_CONFIG": ""}
    )
    return result.exit_code, result.stdout, result.stderr


def test_workflows_command_json(project: Path, home: Path) -> None:
    path = write(project / ".muxlang/workflows/hello.toml")
    code, out, _ = run(["workflows", "--output", "json", "-C", str(project)], home)
    assert code == 0
    records = json.loads(out)
    assert {"name": "hello", "source": "project", "path": str(path)} in records
    assert all(set(r) == {"name", "source", "path"} for r in records)
    assert {r["name"] for r in records if r["source"] == "stdlib"} >= {
        "review",
        "fix",
        "explain",
        "commit-message",
        "test-gen",
    }


def test_global_options_work_before_the_command(project: Path, home: Path) -> None:
    write(project / ".muxlang/workflows/hello.toml")
    code, out, _ = run(["-C", str(project), "--output", "json", "workflows"], home)
    assert code == 0
    assert "hello" in {r["name"] for r in json.loads(out)}


def test_plain_text_table_when_not_a_terminal(project: Path, home: Path) -> None:
    write(project / ".muxlang/workflows/hello.toml")
    code, out, _ = run(["workflows", "-C", str(project)], home)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "SOURCE", "PATH"]
    hello = next(line for line in lines if line.startswith("hello "))
    assert hello.split()[1] == "project"
    # columns are aligned: every row's SOURCE starts where the header's does
    column = lines[0].index("SOURCE")
    assert all(line[column - 2 : column] == "  " for line in lines[1:])


CONFIG = """
[backends.openai]
command = "https://api.openai.com/v1"
model = "gpt-4o"
api_key = "${OPENAI_API_KEY}"

[backends.literal]
command = "https://api.example/v1"
api_key = "sk-literal-secret"

[roles.analyzer]
backends = ["openai"]
execution = "parallel"

[teams.rust]
description = "Rust projects"
detect = ["Cargo.toml"]
verify = "cargo test"
[teams.rust.roles.analyzer]
backends = ["claude"]

[teams.python]
detect = ["pyproject.toml"]
"""


def test_backends_command_never_expands_or_leaks_keys(project: Path, home: Path) -> None:
    write(project / ".muxlang/config.toml", CONFIG)
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["backends", "-C", str(project), "--output", "json"],
        env={"HOME": str(home), "OPENAI_API_KEY": "sk-from-env-123"},
    )
    assert result.exit_code == 0
    assert "sk-from-env-123" not in result.output
    assert "sk-literal-secret" not in result.output
    records = {r["name"]: r for r in json.loads(result.stdout)}
    assert records["openai"]["api_key"] == "${OPENAI_API_KEY}"
    assert records["openai"]["kind"] == "http"
    assert records["openai"]["source"] == str(project / ".muxlang/config.toml")
    assert records["claude"]["kind"] == "cli"
    assert records["claude"]["source"] == "built-in"
    text = runner.invoke(cli, ["backends", "-C", str(project)], env={"HOME": str(home)})
    assert text.exit_code == 0
    assert "openai" in text.stdout
    assert "sk-literal-secret" not in text.output


def test_roles_command_applies_the_detected_team(project: Path, home: Path) -> None:
    write(project / ".muxlang/config.toml", CONFIG)
    (project / "Cargo.toml").touch()
    code, out, _ = run(["roles", "-C", str(project), "--output", "json"], home)
    assert code == 0
    analyzer = next(r for r in json.loads(out) if r["name"] == "analyzer")
    assert analyzer["backends"] == ["claude"]
    assert analyzer["execution"] == "parallel"
    assert analyzer["team_override"] == "rust"


def test_teams_command_marks_the_active_team_and_honours_team_flag(
    project: Path, home: Path
) -> None:
    write(project / ".muxlang/config.toml", CONFIG)
    (project / "Cargo.toml").touch()
    code, out, err = run(["teams", "-C", str(project)], home)
    assert code == 0
    assert any(line.startswith("* rust") for line in out.splitlines())
    assert "active team: rust" in err
    code, out, _ = run(["--team", "python", "teams", "-C", str(project), "--output", "json"], home)
    assert code == 0
    assert [r["name"] for r in json.loads(out) if r["active"]] == ["python"]


def test_unknown_team_flag_exits_2_with_a_message(project: Path, home: Path) -> None:
    write(project / ".muxlang/config.toml", CONFIG)
    code, out, err = run(["roles", "-C", str(project), "--team", "rsut"], home)
    assert code == 2
    assert out == ""
    assert "unknown team `rsut`" in err
    assert "did you mean `rust`?" in err
    assert "Traceback" not in err


def test_broken_config_exits_2_with_positions(project: Path, home: Path) -> None:
    path = write(
        project / ".muxlang/config.toml", '[roles.r]\nbackends = ["a"]\nexecution = "paralel"\n'
    )
    code, _, err = run(["backends", "-C", str(project)], home)
    assert code == 2
    assert f"{path}:3:13: error[MUX005]" in err
    assert "did you mean `parallel`?" in err


def test_rich_table_on_a_terminal(
    project: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import muxlang.cli.listing

    monkeypatch.setattr(muxlang.cli.listing, "is_terminal", lambda: True)
    write(project / ".muxlang/workflows/hello.toml")
    code, out, _ = run(["workflows", "-C", str(project)], home)
    assert code == 0
    assert "┃" in out or "│" in out
    assert "hello" in out
