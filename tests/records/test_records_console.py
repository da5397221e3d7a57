"""What the console says while a run goes (a non-terminal: CI, `| cat`)."""

from __future__ import annotations

from pathlib import Path

from records_support import FAKE_LLM, clean_env, fix_project, mux, mux_json, start_run, write

from tests.fakes.llm_server import FakeLLMServer, Reply


def test_plain_console_announces_the_run_and_each_step_start(project: Path) -> None:
    write(
        project,
        'name = "two"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo a"\n'
        '[[steps]]\nname = "b"\ntype = "shell"\nrun = "echo b"\ndepends_on = ["a"]\n',
    )
    done = mux(project, "run", "wf.toml")
    assert done.returncode == 0
    run_id = mux_json(project, "runs")[0]["id"]
    lines = done.stderr.splitlines()
    assert lines[0] == f"▸ two: 2 steps (run {run_id})"
    assert lines[1].startswith("▸ a started [0/2 done, ")
    assert lines[2].startswith("✓ a (")
    assert lines[3].startswith("▸ b started [1/2 done, ")
    assert lines[4].startswith("✓ b (")
    # without a record, no run id
    quiet = mux(project, "run", "wf.toml", "--no-record")
    assert quiet.stderr.splitlines()[0] == "▸ two: 2 steps"


def test_a_failing_apply_shows_its_verify_attempts_and_summary(
    project: Path, llm: FakeLLMServer
) -> None:
    fix_project(project, llm, "fixer", 'verify = "echo checking; exit 1"\nverify_retries = 2\n')
    done = mux(project, "run", "wf.toml")
    assert done.returncode == 1
    err = done.stderr
    for attempt in (1, 2, 3):
        assert f"▸ write: verify, attempt {attempt}/3" in err
    assert "│ apply failed after 3 attempts; no file was changed" in err
    assert (project / "f.txt").read_text() == "old\n"
    run_id = mux_json(project, "runs")[0]["id"]
    assert f"the rest: muxlang show {run_id} write" in err


def test_a_parallel_role_says_which_members_answered_failed_or_were_unavailable(
    project: Path, llm: FakeLLMServer
) -> None:
    llm.default = lambda request: (
        Reply.fail(500, "upstream exploded") if request.model == "bad" else Reply.answer("fine")
    )
    write(
        project,
        f"""\
name = "panel"
[backends.good]
command = "{llm.url}/v1"
model = "good"
max_retries = 0

[backends.bad]
command = "{llm.url}/v1"
model = "bad"
max_retries = 0

[backends.gone]
command = "/nonexistent/llm-cli"

[roles.panel]
backends = ["good", "bad", "gone"]
execution = "parallel"

[[steps]]
name = "ask"
type = "query"
role = "panel"
prompt = "hi"
""",
    )
    done = mux(project, "run", "wf.toml")
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stderr.splitlines() if x.startswith("    good "))
    assert line.startswith("    good answered, bad failed (")
    assert "500" in line
    assert ", gone unavailable (" in line
    shown = mux_json(project, "show", "last", "ask")
    assert shown["output"] == "=== good ===\nfine"
    assert [(m["entry"], m["status"]) for m in shown["members"]] == [
        ("good", "answered"),
        ("bad", "failed"),
        ("gone", "unavailable"),
    ]
    assert "member gone: unavailable (" in mux(project, "show", "last", "ask").stdout


def test_debug_shows_each_backend_call_with_secrets_masked(project: Path) -> None:

    write(
        project,
        f"""\
name = "dbg"
[backends.echo]
command = "{FAKE_LLM}"
args = ["--mode", "echo", "--text", "${{MY_API_TOKEN}}"]

[[steps]]
name = "ask"
type = "query"
backend = "echo"
prompt = "hello there"
""",
    )
    done = mux(project, "run", "wf.toml", "--debug", env=clean_env(MY_API_TOKEN="supersecret-xyz"))
    assert done.returncode == 0, done.stderr
    assert "supersecret-xyz" not in done.stderr
    assert "step ask asks backend echo: prompt of 11 characters" in done.stderr
    assert f"backend echo: run {FAKE_LLM} --mode echo --text *** (prompt of 11 bytes" in done.stderr
    assert "step ask: echo answered" in done.stderr


def test_ctrl_c_during_an_apply_says_which_files_were_rolled_back(
    project: Path, llm: FakeLLMServer
) -> None:
    import signal
    import time

    fix_project(project, llm, "stopme", 'verify = "touch verifying; sleep 30"\n', protocol=False)
    proc = start_run(project, capture=True)
    try:
        deadline = time.monotonic() + 30
        while not (project / "verifying").exists():
            assert time.monotonic() < deadline, "verify never started"
            time.sleep(0.02)
        assert (project / "f.txt").read_text() == "new\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "↺ write: rolled back f.txt (as before the step)" in err
    assert (project / "f.txt").read_text() == "old\n"
    assert mux_json(project, "runs")[0]["status"] == "interrupted"
