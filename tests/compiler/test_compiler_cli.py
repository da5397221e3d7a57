"""``muxlang validate`` and ``muxlang graph`` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from mux_compiler_support import cli_project

from muxlang.cli import cli

SEED = Path(__file__).parent / "seed"

CLEAN = """\
name = "review"

[[steps]]
name = "diff"
type = "shell"
run = "git diff"

[[steps]]
name = "analyze"
type = "query"
role = "analyzer"
prompt = "Review:\\n{{ steps.diff.output }}"
"""

BROKEN = CLEAN.replace("steps.diff.output", "steps.dif.output")
WARNS = (
    CLEAN
    + """
[[steps]]
name = "show"
type = "shell"
run = "echo {{ steps.analyze.output | raw }}"
"""
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project (a git root) as the working directory, the seed's config as user layer."""
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return cli_project(tmp_path, monkeypatch, SEED / "config.toml")


def write(project: Path, name: str, text: str, where: str = ".muxlang/workflows") -> Path:
    path = project / where / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_clean_project_exits_0(project: Path) -> None:
    write(project, "review.toml", CLEAN)
    result = invoke("validate")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "No problems found in 1 file." in result.stderr


def test_errors_exit_1_with_location_source_and_summary(project: Path) -> None:
    write(project, "review.toml", CLEAN)
    write(project, "bad.toml", BROKEN, ".llm-mux/workflows")
    result = invoke("validate")
    assert result.exit_code == 1
    out = result.stdout
    assert ".llm-mux/workflows/bad.toml:12:29: error[MUX021]: unknown step `dif`" in out
    assert 'prompt = "Review:\\n{{ steps.dif.output }}"' in out
    assert "= hint: did you mean `diff`?" in out
    assert "Found 1 error in 1 file." in result.stderr


def test_warnings_pass_unless_strict(project: Path) -> None:
    write(project, "review.toml", WARNS)
    relaxed = invoke("validate")
    assert relaxed.exit_code == 0
    assert "warning[MUX040]" in relaxed.stdout
    assert invoke("validate", "--strict").exit_code == 1


def test_names_and_paths_select_files(project: Path) -> None:
    write(project, "review.toml", CLEAN)
    bad = write(project, "bad.toml", BROKEN)
    assert invoke("validate", "review").exit_code == 0
    assert invoke("validate", ".muxlang/workflows/review.toml").exit_code == 0
    result = invoke("validate", str(bad.relative_to(project)), "review")
    assert result.exit_code == 1
    assert "Found 1 error in 1 file." in result.stderr


def test_a_directory_means_every_toml_file_under_it(project: Path) -> None:
    write(project, "review.toml", CLEAN)
    write(project, "bad.toml", BROKEN)
    result = invoke("validate", ".muxlang")
    assert result.exit_code == 1
    assert "Found 1 error in 1 file." in result.stderr


def test_unknown_name_or_missing_file_is_a_usage_error(project: Path) -> None:
    missing = invoke("validate", "nope")
    assert missing.exit_code == 2
    assert "workflow `nope` not found" in missing.stderr
    assert invoke("validate", "no/such.toml").exit_code == 2
    assert invoke("validate", "--format", "xml").exit_code == 2


def test_config_file_checked_as_config(project: Path) -> None:
    config = write(
        project, "config.toml", '[roles.r]\nbackends = ["claude", "nobody"]\n', ".muxlang"
    )
    result = invoke("validate", str(config.relative_to(project)), "--format", "json")
    assert result.exit_code == 1
    [d] = json.loads(result.stdout)
    assert (d["file"], d["line"], d["column"], d["code"]) == (
        ".muxlang/config.toml",
        2,
        23,
        "MUX030",
    )
    # with no argument the project's config file is checked too
    assert invoke("validate").exit_code == 1


def test_json_format(project: Path) -> None:
    write(project, "bad.toml", BROKEN)
    result = invoke("validate", "--format", "json")
    assert result.exit_code == 1
    [d] = json.loads(result.stdout)
    assert d == {
        "file": ".muxlang/workflows/bad.toml",
        "line": 12,
        "column": 29,
        "end_line": 12,
        "end_column": 32,
        "severity": "error",
        "code": "MUX021",
        "message": "unknown step `dif` in `prompt`",
        "hint": "did you mean `diff`?",
    }


def test_global_output_json_and_quiet(project: Path) -> None:
    write(project, "bad.toml", BROKEN)
    as_json = invoke("--output", "json", "validate")
    assert [d["code"] for d in json.loads(as_json.stdout)] == ["MUX021"]
    quiet = invoke("validate", "--quiet")
    assert quiet.exit_code == 1
    assert "error[MUX021]" in quiet.stdout
    assert quiet.stderr == ""


def test_stdin_filename_checks_unsaved_text(project: Path) -> None:
    on_disk = write(project, "review.toml", CLEAN)
    runner = CliRunner()
    result = runner.invoke(
        cli,
        ["validate", "--stdin-filename", str(on_disk)],
        input=BROKEN,
        catch_exceptions=False,
    )
    assert result.exit_code == 1
    assert ".muxlang/workflows/review.toml:12:29: error[MUX021]" in result.stdout
    assert "{{ steps.dif.output }}" in result.stdout  # the source line is the stdin text
    config = runner.invoke(
        cli,
        ["validate", "--stdin-filename", ".muxlang/config.toml", "--format", "json"],
        input='# unsaved\n[roles.r]\nbackends = ["nobody"]\n',
        catch_exceptions=False,
    )
    [d] = json.loads(config.stdout)
    assert (d["line"], d["column"], d["code"]) == (3, 13, "MUX030")


def test_github_format(project: Path) -> None:
    write(project, "bad.toml", BROKEN)
    result = invoke("validate", "--format", "github")
    assert result.exit_code == 1
    assert result.stdout.startswith(
        "::error file=.muxlang/workflows/bad.toml,line=12,col=29,endLine=12,endColumn=32,"
        "title=MUX021::unknown step `dif` in `prompt`%0Ahint: did you mean `diff`?"
    )
    assert "Found 1 error in 1 file." in result.stderr


def test_sarif_format(project: Path) -> None:
    write(project, "bad.toml", BROKEN)
    result = invoke("validate", "--format", "sarif")
    log = json.loads(result.stdout)
    assert log["version"] == "2.1.0"
    [res] = log["runs"][0]["results"]
    assert res["ruleId"] == "MUX021"
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"]["uri"] == ".muxlang/workflows/bad.toml"


def test_toml_syntax_errors_are_reported_not_raised(project: Path) -> None:
    write(project, "a.toml", 'name = "x\n')
    write(project, "b.toml", BROKEN)
    result = invoke("validate", "--format", "json")
    assert result.exit_code == 1
    assert [d["code"] for d in json.loads(result.stdout)] == ["MUX001", "MUX021"]


def test_empty_project(project: Path) -> None:
    result = invoke("validate")
    assert result.exit_code == 0
    assert "No workflows or config files found" in result.stderr


def test_directory_option_before_or_after(
    project: Path, tmp_path_factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(project, "bad.toml", BROKEN)
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    assert invoke("-C", str(project), "validate").exit_code == 1
    assert invoke("validate", "-C", str(project)).exit_code == 1


# --------------------------------------------------------------------------- graph


GRAPH = """\
[[steps]]
name = "diff"
type = "shell"
run = "git diff"

[[steps]]
name = "check-files"
type = "shell"
run = "ls"

[[steps]]
name = "analyze"
type = "query"
role = "analyzer"
prompt = "{{ steps.diff.output }} {{ steps.check-files.output }}"

[[steps]]
name = "apply"
type = "apply"
source = "steps.analyze"
"""


def test_graph_json(project: Path) -> None:
    write(project, "g.toml", GRAPH)
    result = invoke("graph", "g", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert [(n["name"], n["type"]) for n in data["nodes"]] == [
        ("diff", "shell"),
        ("check-files", "shell"),
        ("analyze", "query"),
        ("apply", "apply"),
    ]
    assert data["edges"] == [
        {"from": "diff", "to": "analyze"},
        {"from": "check-files", "to": "analyze"},
        {"from": "analyze", "to": "apply"},
    ]


def test_graph_mermaid_and_dot(project: Path) -> None:
    write(project, "g.toml", GRAPH)
    mermaid = invoke("graph", "g").stdout
    assert mermaid.startswith("flowchart TD\n")
    assert "s0 --> s2" in mermaid
    assert "s1 --> s2" in mermaid
    assert "check-files" in mermaid
    dot = invoke("graph", "g", "--format", "dot").stdout
    assert dot.startswith('digraph "g" {')
    assert '"check-files" -> "analyze";' in dot


def test_graph_of_a_broken_workflow_prints_diagnostics(project: Path) -> None:
    write(project, "bad.toml", BROKEN)
    result = invoke("graph", "bad")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "error[MUX021]" in result.stderr


@pytest.mark.slow
def test_validate_never_imports_the_runtime(project: Path) -> None:
    """The cold path of `validate` stays light: no trio, httpx or rich — and no
    networkx for a sound workflow (a graph is built only to run or to draw)."""
    write(project, "review.toml", CLEAN)
    code = (
        "import sys\n"
        "from muxlang.cli import main\n"
        "try:\n    main(['validate'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('trio', 'httpx', 'rich', 'hypercorn', 'networkx')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, cwd=project
    )
    assert out.stdout.strip().endswith("[]"), out.stdout + out.stderr


# --------------------------------------------------------------------------- pre-commit


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.mark.slow
def test_pre_commit_hook_passes_clean_and_fails_broken_files(tmp_path: Path) -> None:
    """Our .pre-commit-hooks.yaml, through pre-commit itself (try-repo installs this
    checkout into a fresh hook environment and passes it the matching file names)."""
    root = Path(__file__).resolve().parents[2]
    pre_commit = Path(sys.executable).with_name("pre-commit")
    repo = tmp_path / "repo"
    (repo / ".muxlang" / "workflows").mkdir(parents=True)
    (repo / ".muxlang" / "workflows" / "review.toml").write_text(CLEAN, encoding="utf-8")
    (repo / "notes.toml").write_text("this = 'is not a workflow: the hook ignores it'\n")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"),
        "MUXLANG_CONFIG": str(SEED / "config.toml"),
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }

    def hook() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(pre_commit), "try-repo", str(root), "muxlang-validate", "--all-files"],
            cwd=repo,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )

    clean = hook()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "muxlang validate" in clean.stdout
    assert "Passed" in clean.stdout

    (repo / ".muxlang" / "workflows" / "bad.toml").write_text(BROKEN, encoding="utf-8")
    _git(repo, "add", "-A")
    broken = hook()
    assert broken.returncode == 1, broken.stdout + broken.stderr
    assert "Failed" in broken.stdout
    assert ".muxlang/workflows/bad.toml:12:29: error[MUX021]" in broken.stdout


def test_graph_with_schema_errors_reports_what_validate_reports(project: Path) -> None:
    # a schema error (MUX003) and, in the valid rest, an unknown step (MUX021)
    write(
        project, "bad.toml", BROKEN.replace('run = "git diff"', 'run = "git diff"\ntimeout = "2x"')
    )
    graph = invoke("graph", "bad")
    assert graph.exit_code == 2
    assert graph.stdout == ""
    assert "error[MUX003]" in graph.stderr
    assert "error[MUX021]" in graph.stderr
    validate = invoke("validate", "bad")
    assert validate.exit_code == 1
    assert graph.stderr == validate.stdout + validate.stderr
