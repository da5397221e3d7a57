"""The first hour of a new user (issue 22): what the command line says when they
guess a command, ask for the version, or pipe its output into a CI log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import muxlang

MUXLANG = [sys.executable, "-m", "muxlang"]


def muxlang_cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    skip = ("MUXLANG_", "FORCE_COLOR", "NO_COLOR")
    environ = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    environ.update(XDG_CONFIG_HOME=str(cwd / ".config"), **env)
    return subprocess.run(
        [*MUXLANG, *args], cwd=cwd, env=environ, capture_output=True, text=True, check=False
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()
    return tmp_path


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_flag(project: Path, flag: str) -> None:
    done = muxlang_cli(project, flag)
    assert done.returncode == 0
    assert done.stdout == f"muxlang, version {muxlang.__version__}\n"


def test_a_workflow_name_used_as_a_command_suggests_run(project: Path) -> None:
    done = muxlang_cli(project, "explain")
    assert done.returncode == 2
    assert (
        "No such command 'explain'. 'explain' is a workflow: run it with `muxlang run explain`."
        in done.stderr
    )


def test_a_project_workflow_used_as_a_command_suggests_run(project: Path) -> None:
    (project / ".muxlang" / "workflows").mkdir(parents=True)
    (project / ".muxlang" / "workflows" / "lint-all.toml").write_text(
        '[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n'
    )
    done = muxlang_cli(project, "lint-all")
    assert "`muxlang run lint-all`" in done.stderr


@pytest.mark.parametrize(
    ("typed", "suggestion"),
    [("valdate", "Did you mean `validate`?"), ("revew", "Did you mean `run review` (a workflow)?")],
)
def test_a_misspelt_command_gets_a_did_you_mean(project: Path, typed: str, suggestion: str) -> None:
    done = muxlang_cli(project, typed)
    assert done.returncode == 2
    assert f"No such command '{typed}'. {suggestion}" in done.stderr


def test_nothing_close_is_just_no_such_command(project: Path) -> None:
    done = muxlang_cli(project, "xyzzy")
    assert done.returncode == 2
    assert "Error: No such command 'xyzzy'.\n" in done.stderr


BROKEN = '[[steps]]\nname = "a"\ntype = "shel"\nrun = "true"\n'


@pytest.mark.parametrize("command", ["run", "validate", "graph"])
def test_force_color_colours_diagnostics_in_a_pipe(project: Path, command: str) -> None:
    (project / "broken.toml").write_text(BROKEN)
    plain = muxlang_cli(project, command, "broken.toml")
    forced = muxlang_cli(project, command, "broken.toml", FORCE_COLOR="1")
    both = forced.stdout + forced.stderr
    assert "\x1b[" not in plain.stdout + plain.stderr
    assert "\x1b[" in both
    assert "`type` must be one of shell, query, apply" in both


def test_no_color_wins_over_force_color(project: Path) -> None:
    (project / "broken.toml").write_text(BROKEN)
    done = muxlang_cli(project, "run", "broken.toml", FORCE_COLOR="1", NO_COLOR="1")
    assert "\x1b[" not in done.stderr


def test_team_is_empty_when_no_team_is_detected(project: Path) -> None:
    (project / "w.toml").write_text(
        '[[steps]]\nname = "t"\ntype = "shell"\nrun = "echo team=[{{ team }}]"\n'
        '[[steps]]\nname = "when"\ntype = "shell"\nif = "team"\nrun = "echo never"\n'
    )
    assert muxlang_cli(project, "validate", "w.toml").returncode == 0
    done = muxlang_cli(project, "run", "w.toml", "--output", "json", "--no-record")
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout)["steps"]
    assert steps["t"]["output"] == "team=[]"
    assert steps["when"]["status"] == "skipped"


UNDECLARED = """
[[steps]]
name = "side"
type = "shell"
run = "touch side-effect"

[[steps]]
name = "use"
type = "shell"
depends_on = ["side"]
run = '''echo {{ args.file }} {{ args.opt | default('x') }}
{%- if args.more is defined %}{{ args.more }}{% endif %}'''

[[steps]]
name = "guarded"
type = "shell"
if = "args.flag is defined and args.flag == 'on'"
run = "echo {{ args.flag }}"
"""


def test_an_unset_arg_the_workflow_reads_stops_the_run_before_anything_starts(
    project: Path,
) -> None:
    (project / "w.toml").write_text(UNDECLARED)
    done = muxlang_cli(project, "run", "w.toml")
    assert done.returncode == 2
    assert "reads argument with no value: file (" in done.stderr
    assert "w.toml:11:" in done.stderr  # where it is read
    assert "pass file=VALUE" in done.stderr
    assert not (project / "side-effect").exists()  # the earlier step never ran


def test_reads_through_default_and_is_defined_need_no_value(project: Path) -> None:
    (project / "w.toml").write_text(UNDECLARED)
    done = muxlang_cli(project, "run", "w.toml", "file=a.txt", "--print", "use", "--no-record")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "a.txt x\n"
    assert (project / "side-effect").exists()


def test_run_help_with_a_workflow_lists_its_args(project: Path) -> None:
    done = muxlang_cli(project, "run", "fix", "--help")
    assert done.returncode == 0
    assert "Usage: muxlang run" in done.stdout
    assert "Workflow fix: " in done.stdout
    assert "file=VALUE" in done.stdout
    assert "(required)" in done.stdout
    assert "problem=VALUE" in done.stdout


def test_run_help_without_a_workflow_is_the_commands_help(project: Path) -> None:
    done = muxlang_cli(project, "run", "--help")
    assert done.returncode == 0
    assert "Workflow " not in done.stdout


def complete(project: Path, words: str) -> list[str]:
    done = muxlang_cli(
        project,
        _MUXLANG_COMPLETE="bash_complete",
        COMP_WORDS=words,
        COMP_CWORD=str(len(words.split(" ")) - 1),
    )
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines()]


def test_shell_completion_of_workflow_names_and_their_args(project: Path) -> None:
    (project / ".muxlang" / "workflows").mkdir(parents=True)
    (project / ".muxlang" / "workflows" / "release.toml").write_text(
        '[args.tag]\n[args.notes]\ndefault = ""\n'
        '[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo {{ args.tag }}"\n'
    )
    assert complete(project, "muxlang run re") == ["release", "review"]
    assert complete(project, "muxlang run release ") == ["tag=", "notes="]
    assert complete(project, "muxlang run release tag=v1 ") == ["notes="]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_documented_completion_scripts_are_produced(project: Path, shell: str) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "getting-started.md").read_text()
    assert f"_MUXLANG_COMPLETE={shell}_source muxlang" in page
    done = muxlang_cli(project, _MUXLANG_COMPLETE=f"{shell}_source")
    assert done.returncode == 0
    assert "_MUXLANG_COMPLETE" in done.stdout


DURATIONS = """
[defaults]
max_concurrent = 2
[backends.b]
command = "echo"
timeout = {timeout}
retry_delay = {delay}
[serve]
cooldown = "2m"
[[steps]]
name = "a"
type = "shell"
timeout = "5m"
run = "true"
"""


@pytest.mark.parametrize(
    ("timeout", "delay"), [('"30s"', '"250ms"'), ("30", "250"), ('"1.5m"', '"2s"'), ("0.5", "0")]
)
def test_every_time_key_takes_the_same_durations(project: Path, timeout: str, delay: str) -> None:
    (project / "w.toml").write_text(DURATIONS.format(timeout=timeout, delay=delay))
    done = muxlang_cli(project, "validate", "w.toml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_bad_backend_duration_says_what_it_takes(project: Path) -> None:
    (project / "w.toml").write_text(DURATIONS.format(timeout='"30 parsecs"', delay="1"))
    done = muxlang_cli(project, "validate", "w.toml")
    assert done.returncode == 1
    assert (
        "w.toml:6:11: error[MUX003]: `timeout` must be a number of seconds or a duration"
        in done.stdout
    )


def test_durations_reach_the_backend_in_their_unit() -> None:
    from muxlang.config.models import BackendConfig

    backend = BackendConfig.model_validate({"command": "x", "timeout": "1.5m", "retry_delay": "2s"})
    assert (backend.timeout, backend.retry_delay) == (90.0, 2000)


def two_user_configs(project: Path) -> Path:
    home = project / ".config"
    for tool, backend in (("muxlang", "mine"), ("llm-mux", "old")):
        (home / tool).mkdir(parents=True)
        (home / tool / "config.toml").write_text(f'[backends.{backend}]\ncommand = "echo"\n')
    return home


def test_backends_and_doctor_say_which_config_files_are_ignored_and_why(project: Path) -> None:
    home = two_user_configs(project)
    listing = muxlang_cli(project, "backends")
    assert listing.returncode == 0, listing.stderr
    assert f"config files: {home}/muxlang/config.toml" in listing.stderr
    assert (
        f"ignored: {home}/llm-mux/config.toml ({home}/muxlang/config.toml is read instead: "
        "one user config file is read, muxlang's own before llm-mux's" in listing.stderr
    )
    assert "old" not in listing.stdout.split()

    doctor = muxlang_cli(project, "doctor", "--output", "json")
    ignored = json.loads(doctor.stdout)["ignored_config_files"]
    assert ignored == [
        {
            "layer": "user",
            "path": f"{home}/llm-mux/config.toml",
            "read": False,
            "why": f"{home}/muxlang/config.toml is read instead: one user config file is "
            "read, muxlang's own before llm-mux's; copy what you still need into it",
        }
    ]
    text = muxlang_cli(project, "doctor")
    assert f"ignored: {home}/llm-mux/config.toml (" in text.stdout


def test_muxlang_config_replaces_the_user_layer_and_says_so(project: Path) -> None:
    home = two_user_configs(project)
    chosen = home / "llm-mux" / "config.toml"
    done = muxlang_cli(project, "backends", "--output", "json", MUXLANG_CONFIG=str(chosen))
    assert f"config files: {chosen}" in done.stderr
    assert (
        f"ignored: {home}/muxlang/config.toml (MUXLANG_CONFIG replaces the user config layer)"
        in done.stderr
    )
    assert f"ignored: {chosen}" not in done.stderr
    assert "old" in [backend["name"] for backend in json.loads(done.stdout)]


@pytest.mark.parametrize(
    ("step", "typo", "meant"),
    [
        ('type = "query"\nbackend = "claude"\npromt = "hi"', "promt", "prompt"),
        ('type = "shell"\nrn = "true"', "rn", "run"),
        ('type = "query"\nprompt = "hi"\nbakend = "claude"', "bakend", "backend"),
        ('type = "query"\nprompt = "hi"\nrol = "analyzer"', "rol", "role"),
    ],
)
def test_one_typo_is_one_error(project: Path, step: str, typo: str, meant: str) -> None:
    (project / "w.toml").write_text(f'[[steps]]\nname = "a"\n{step}\n')
    done = muxlang_cli(project, "validate", "w.toml", "--format", "json")
    found = json.loads(done.stdout)
    assert [(d["code"], d["message"], d["hint"]) for d in found] == [
        ("MUX002", f"unknown key `{typo}` in step `a`", f"did you mean `{meant}`?")
    ]


def test_a_missing_key_with_no_near_miss_is_still_reported(project: Path) -> None:
    (project / "w.toml").write_text('[[steps]]\nname = "a"\ntype = "query"\nbackend = "claude"\n')
    found = json.loads(muxlang_cli(project, "validate", "w.toml", "--format", "json").stdout)
    assert [d["code"] for d in found] == ["MUX004"]


def test_dry_run_says_why_a_template_is_shown_as_written(project: Path) -> None:
    (project / "w.toml").write_text(
        '[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo hi"\n'
        '[[steps]]\nname = "b"\ntype = "shell"\nrun = "echo {{ steps.a.output }}"\n'
        '[[steps]]\nname = "c"\ntype = "shell"\nfor_each = "[1, 2]"\nrun = "echo {{ item }}"\n'
    )
    done = muxlang_cli(project, "run", "w.toml", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "[template]" not in done.stdout
    assert (
        "run: echo {{ steps.a.output }}  [shown as written: it reads other steps' results, "
        "known only when the step runs]" in done.stdout
    )
    assert "run: echo {{ item }}  [shown as written: it reads the for_each item," in done.stdout
    assert "run: echo hi\n" in done.stdout


def test_init_with_no_cli_tools_says_which_variable_to_set(project: Path) -> None:
    done = muxlang_cli(project, "init", PATH="/nonexistent")
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert any(
        line.startswith("no LLM command-line tool (claude, codex, gemini, ollama) is on PATH")
        and "set OPENAI_API_KEY" in line
        for line in lines
    )
    # the closing line is a whole sentence, not cut off
    assert lines[-1] == (
        "next: `muxlang doctor` checks that the backends can answer; `muxlang run check` "
        "runs the project's checks (.muxlang/workflows/check.toml)."
    )
    config = (project / ".muxlang" / "config.toml").read_text()
    assert "# OPENAI_API_KEY environment variable" in config


def test_init_with_a_cli_tool_does_not_ask_for_a_key(project: Path, tmp_path: Path) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "claude").write_text("#!/bin/sh\necho hi\n")
    (tools / "claude").chmod(0o755)
    done = muxlang_cli(project, "init", PATH=f"{tools}:/usr/bin:/bin")
    assert done.returncode == 0, done.stderr
    assert "OPENAI_API_KEY" not in done.stderr


GRAPHED = """
[[steps]]
name = "diff"
type = "shell"
run = "git diff"

[[steps]]
name = "lint"
type = "shell"
run = "true"

[[steps]]
name = "review"
type = "shell"
run = "echo {{ steps.diff.output }} {{ steps.lint.output }}"
"""

TREE = """g: 3 steps
├─ diff (shell)
├─ lint (shell)
└─ review (shell)  ← diff, lint
"""


def test_graph_text_is_a_tree_for_a_terminal(project: Path) -> None:
    (project / "g.toml").write_text(GRAPHED)
    done = muxlang_cli(project, "graph", "g.toml", "--format", "text")
    assert done.returncode == 0, done.stderr
    assert done.stdout == TREE
    piped = muxlang_cli(project, "graph", "g.toml")
    assert piped.stdout.startswith("flowchart TD\n")  # scripts keep getting mermaid


def test_graph_defaults_to_text_on_a_terminal(project: Path) -> None:
    import pty

    (project / "g.toml").write_text(GRAPHED)
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MUXLANG_")}
    with subprocess.Popen(
        [*MUXLANG, "graph", "g.toml"], cwd=project, env=env, stdout=follower, stderr=follower
    ) as proc:
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the command is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    os.close(leader)
    assert b"".join(chunks).decode().replace("\r\n", "\n") == TREE


def test_force_color_colours_the_step_lines_of_run_in_a_pipe(project: Path) -> None:
    (project / "w.toml").write_text('[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n')
    forced = muxlang_cli(project, "run", "w.toml", "--no-record", FORCE_COLOR="1")
    assert forced.returncode == 0, forced.stderr
    assert "\x1b[32m✓\x1b[0m a (" in forced.stderr
    plain = muxlang_cli(project, "run", "w.toml", "--no-record")
    assert "\x1b[" not in plain.stderr
    assert "✓ a (" in plain.stderr
