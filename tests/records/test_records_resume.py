"""``muxlang run W --resume [RUN]`` through the real CLI: what is reused, what runs
again and why."""

from __future__ import annotations

import signal
from pathlib import Path

from records_support import asker, clean_env, fix_project, mux, mux_json, ran, stop_when_hung, write

from tests.fakes.llm_server import FakeLLMServer

WORKFLOW = """\
name = "res"

[args.x]
default = "1"

[[steps]]
name = "a"
type = "shell"
run = "echo a-{{ args.x }}; echo a >> ran.log"

[[steps]]
name = "b"
type = "shell"
run = "echo b; echo b >> ran.log"

[[steps]]
name = "c"
type = "shell"
run = "echo c-{{ steps.a.output }}; echo c >> ran.log; test -f ok"
# after d too: a failing c cancels what still runs, and d must have finished first
depends_on = ["a", "b", "d"]

[[steps]]
name = "d"
type = "shell"
for_each = "['p', 'q']"
run = "echo d-{{ item }}; echo d >> ran.log"
"""


def test_resume_reruns_only_what_failed(project: Path) -> None:
    write(project, WORKFLOW)
    first = mux(project, "run", "wf.toml")
    assert first.returncode == 1
    failed_id = mux_json(project, "runs")[0]["id"]
    assert ran(project, sort=True) == ["a", "b", "c", "d", "d"]
    (project / "ok").write_text("")
    done = mux(project, "run", "wf.toml", "--resume", "--print", "c")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "c-a-1\n"
    assert ran(project, sort=True) == ["c"]
    assert "✓ a (reused," in done.stderr
    assert "✓ d (reused," in done.stderr
    assert "↻ c runs again: failed before" in done.stderr
    run = mux_json(project, "runs")[0]
    assert run["resumed_from"] == failed_id
    assert run["status"] == "success"
    shown = mux_json(project, "show")
    origins = {s["name"]: s["origin"] for s in shown["steps"]}
    assert origins == {"a": "reused", "b": "reused", "c": "run", "d": "reused"}
    d = mux_json(project, "show", "last", "d")
    assert [i["output"] for i in d["items"]] == ["d-p", "d-q"]
    c = mux_json(project, "show", "last", "c")
    assert c["reason"] == "ran again: failed before"


def test_a_run_recorded_under_another_users_secret_is_never_resumed(
    project: Path, tmp_path: Path
) -> None:
    """A repository can commit its .muxlang/runs.db: --resume reuses only runs this
    user's muxlang recorded (signed with the secret in their state directory)."""
    write(project, WORKFLOW)
    theirs = clean_env(XDG_STATE_HOME=str(tmp_path / "their-state"))
    ours = clean_env(XDG_STATE_HOME=str(tmp_path / "our-state"))
    assert mux(project, "run", "wf.toml", env=theirs).returncode == 1
    ran(project)
    (project / "ok").write_text("")
    refused = mux(project, "run", "wf.toml", "--resume", env=ours)
    assert refused.returncode == 2
    assert "was not recorded by muxlang for this user" in refused.stderr
    assert ran(project) == []  # nothing ran, nothing was taken from that run
    # the same run resumes for the user who recorded it
    done = mux(project, "run", "wf.toml", "--resume", env=theirs)
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["c"]


def test_changed_inputs_run_again_and_say_why(project: Path) -> None:
    write(project, WORKFLOW)
    (project / "ok").write_text("")
    assert mux(project, "run", "wf.toml").returncode == 0
    ran(project, sort=True)
    done = mux(project, "run", "wf.toml", "x=2", "--resume=last")
    assert done.returncode == 0
    assert "↻ a runs again: changed: command" in done.stderr
    assert "↻ c runs again: reads a, which re-ran" in done.stderr
    assert "✓ b (reused," in done.stderr
    assert ran(project, sort=True) == ["a", "c"]
    # editing a step's definition
    write(project, WORKFLOW.replace("echo b; echo b", "echo B; echo b"))
    done = mux(project, "run", "wf.toml", "x=2", "--resume", "last")
    assert "↻ b runs again: changed: definition" in done.stderr
    assert "✓ a (reused," in done.stderr
    assert ran(project, sort=True) == ["b", "c"]


def test_resume_of_a_killed_run_reuses_its_finished_steps(project: Path) -> None:
    write(
        project,
        """\
        name = "killed"
        [[steps]]
        name = "first"
        type = "shell"
        run = "echo first >> ran.log; echo one"
        [[steps]]
        name = "slow"
        type = "shell"
        run = "test -f fast || { echo $$ > slow.pid; exec sleep 60; }; echo two"
        depends_on = ["first"]
        """,
    )
    stop_when_hung(project, signal.SIGKILL)
    assert mux_json(project, "runs")[0]["status"] == "interrupted"
    ran(project, sort=True)
    (project / "fast").write_text("")
    done = mux(project, "run", "wf.toml", "--resume")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "two\n"
    assert "✓ first (reused," in done.stderr
    assert ran(project, sort=True) == []


def test_resume_errors_are_clear(project: Path) -> None:
    write(project, WORKFLOW)
    (project / "ok").write_text("")
    nothing = mux(project, "run", "wf.toml", "--resume")
    assert nothing.returncode == 2
    assert "no run records" in nothing.stderr or "no failed or interrupted run" in nothing.stderr
    assert mux(project, "run", "wf.toml").returncode == 0
    none_failed = mux(project, "run", "wf.toml", "--resume")
    assert none_failed.returncode == 2
    assert "no failed or interrupted run of 'res'" in none_failed.stderr
    write(
        project, 'name = "other"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "true"\n', "o.toml"
    )
    run_id = mux_json(project, "runs")[0]["id"]
    other = mux(project, "run", "o.toml", f"--resume={run_id}")
    assert other.returncode == 2
    assert "is of workflow 'res', not 'other'" in other.stderr


#: after the apply, a step that fails until the file ``ok`` exists
CHECK = """
[[steps]]
name = "check"
type = "shell"
run = "test -f ok && cat f.txt"
depends_on = ["write"]
"""


def test_an_apply_is_reused_while_its_files_hold_what_it_wrote(
    project: Path, llm: FakeLLMServer
) -> None:
    fix_project(project, llm, "fixer", CHECK)
    assert mux(project, "run", "wf.toml").returncode == 1
    assert (project / "f.txt").read_text() == "new\n"
    (project / "ok").write_text("")
    done = mux(project, "run", "wf.toml", "--resume")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "new\n"
    assert "✓ fix (reused," in done.stderr
    assert "✓ write (reused," in done.stderr
    assert len(llm.requests) == 1


def test_an_apply_whose_files_changed_runs_again(project: Path, llm: FakeLLMServer) -> None:
    fix_project(project, llm, "fixer", CHECK)
    assert mux(project, "run", "wf.toml").returncode == 1
    (project / "ok").write_text("")
    (project / "f.txt").write_text("edited by hand\n")
    done = mux(project, "run", "wf.toml", "--resume")
    assert done.returncode == 0, done.stderr
    assert "↻ fix runs again: apply step write reads it, and runs again" in done.stderr
    assert "↻ write runs again: reads fix, which re-ran" in done.stderr
    assert done.stdout == "new\n"
    assert len(llm.requests) == 2


def test_an_unchanged_query_is_not_asked_again(project: Path, llm: FakeLLMServer) -> None:
    body = asker(llm.url)
    write(project, body)
    assert mux(project, "run", "wf.toml").returncode == 1
    (project / "ok").write_text("")
    assert mux(project, "run", "wf.toml", "--resume").returncode == 0
    assert len(llm.requests) == 1
    (project / "ok").unlink()
    assert mux(project, "run", "wf.toml").returncode == 1
    (project / "ok").write_text("")
    changed = mux(project, "run", "wf.toml", "topic=dogs", "--resume")
    assert "↻ ask runs again: changed: prompt" in changed.stderr
    assert len(llm.requests) == 3
