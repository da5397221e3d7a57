"""`muxlang run` through the real CLI: rules a user sees, output modes, exit codes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from cli_support import write
from click.testing import CliRunner, Result
from runtime_helpers import barrier

from muxlang.cli import cli


def run(root: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(cli, ["-C", str(root), "run", *args], env=env, catch_exceptions=False)


def run_json(root: Path, *args: str) -> tuple[int, dict]:
    result = run(root, *args, "--output", "json")
    return result.exit_code, json.loads(result.stdout)


# --------------------------------------------------------------------------- scheduling


def test_independent_steps_run_at_the_same_time(tmp_path: Path) -> None:
    """Five independent steps meet at a barrier: each marks that it started, then
    waits until all five have. Run one after another, the first would wait alone
    and give up; run together, all five pass. No timing is asserted."""
    steps = "".join(
        f'[[steps]]\nname = "s{i}"\ntype = "shell"\nrun = \'{barrier(i, 5)}\'\n\n' for i in range(5)
    )
    write(tmp_path, steps)
    result = run(tmp_path, "wf.toml")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "started").iterdir()) == [str(i) for i in range(5)]


def test_outputs_flow_and_final_output_goes_to_stdout(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "greet"
        type = "shell"
        run = "echo hello"

        [[steps]]
        name = "shout"
        type = "shell"
        run = "echo \\"$TEXT\\" | tr a-z A-Z"
        env = { TEXT = "{{ steps.greet.output }} world" }
        """,
    )
    result = run(tmp_path, "wf.toml")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "HELLO WORLD\n"
    assert "✓ greet" in result.stderr
    assert "✓ shout" in result.stderr


def test_print_selects_the_step_whose_output_is_printed(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "a"
        type = "shell"
        run = "echo first"

        [[steps]]
        name = "b"
        type = "shell"
        run = "echo second"
        depends_on = ["a"]
        """,
    )
    assert run(tmp_path, "wf.toml", "--print", "a").stdout == "first\n"
    bad = run(tmp_path, "wf.toml", "--print", "bb")
    assert bad.exit_code == 2
    assert "no step named 'bb'" in bad.stderr


def test_status_functions_and_continue_on_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "check"
        type = "shell"
        run = "echo checking; exit 3"
        continue_on_error = true

        [[steps]]
        name = "on-failure"
        type = "shell"
        depends_on = ["check"]
        if = "failure()"
        run = 'echo "failed with $CODE"'
        env = { CODE = "{{ steps.check.exit_code }}" }

        [[steps]]
        name = "on-success"
        type = "shell"
        depends_on = ["check"]
        if = "success()"
        run = "echo passed"

        [[steps]]
        name = "plain"
        type = "shell"
        depends_on = ["check"]
        run = "echo plain"

        [[steps]]
        name = "cleanup"
        type = "shell"
        depends_on = ["on-failure", "on-success"]
        if = "always()"
        run = "echo cleanup"
        """,
    )
    code, doc = run_json(tmp_path, "wf.toml")
    assert code == 0
    steps = doc["steps"]
    assert steps["check"]["status"] == "failed"
    assert steps["check"]["exit_code"] == 3
    assert steps["on-failure"]["output"] == "failed with 3"
    assert steps["on-success"]["status"] == "skipped"
    assert steps["plain"]["status"] == "skipped"
    assert steps["cleanup"]["status"] == "success"
    assert doc["success"] is True


def test_failure_runs_failure_handlers_but_skips_the_rest(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "build"
        type = "shell"
        run = "exit 1"

        [[steps]]
        name = "test"
        type = "shell"
        depends_on = ["build"]
        run = "echo test"

        [[steps]]
        name = "notify"
        type = "shell"
        depends_on = ["test"]
        if = "failure()"
        run = "echo notified"
        """,
    )
    code, doc = run_json(tmp_path, "wf.toml")
    assert code == 1
    assert doc["success"] is False
    assert doc["steps"]["test"]["status"] == "skipped"
    assert doc["steps"]["notify"]["output"] == "notified"


def test_if_false_skips_and_skipping_propagates(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [args.mode]
        default = "fast"

        [[steps]]
        name = "slow-only"
        type = "shell"
        if = "args.mode == 'slow'"
        run = "echo slow"

        [[steps]]
        name = "after"
        type = "shell"
        run = "echo {{ steps.slow-only.output | shell_escape }}"

        [[steps]]
        name = "independent"
        type = "shell"
        run = "echo ok"
        """,
    )
    code, doc = run_json(tmp_path, "wf.toml")
    assert code == 0
    assert doc["steps"]["slow-only"]["status"] == "skipped"
    assert doc["steps"]["after"]["status"] == "skipped"
    assert doc["steps"]["independent"]["status"] == "success"
    code, doc = run_json(tmp_path, "wf.toml", "mode=slow")
    assert doc["steps"]["after"]["output"] == "slow"


def test_keep_going(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "bad"
        type = "shell"
        run = "exit 1"

        [[steps]]
        name = "slow"
        type = "shell"
        run = "sleep 0.5; echo finished"
        """,
    )
    code, doc = run_json(tmp_path, "wf.toml")
    assert code == 1
    assert doc["steps"]["slow"]["status"] == "failed"
    assert "cancelled" in doc["steps"]["slow"]["error"]
    code, doc = run_json(tmp_path, "wf.toml", "--keep-going")
    assert code == 1
    assert doc["steps"]["slow"]["output"] == "finished"


def test_timeouts(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "slow"
        type = "shell"
        run = "sleep 30"
        timeout = "300ms"
        """,
    )
    code, doc = run_json(tmp_path, "wf.toml")
    assert code == 1
    assert "timed out after 300 ms" in doc["steps"]["slow"]["error"]
    write(
        tmp_path,
        """
        timeout = 0.5
        [[steps]]
        name = "slow"
        type = "shell"
        run = "sleep 30"
        """,
        name="wf2.toml",
    )
    started = time.monotonic()
    code, doc = run_json(tmp_path, "wf2.toml")
    assert time.monotonic() - started < 8
    assert code == 1
    assert "timed out" in doc["error"]


# --------------------------------------------------------------------------- for_each


def test_for_each_semantics(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "list"
        type = "shell"
        run = "printf 'c\\\\nb\\\\na\\\\n'"

        [[steps]]
        name = "each"
        type = "shell"
        for_each = "steps.list.output | lines"
        max_parallel = 2
        if = "item != 'b'"
        run = "echo {{ loop.index }}/{{ loop.length }}:{{ item }}:{{ loop.index0 }}"
        """,
    )
    code, doc = run_json(tmp_path, "wf.toml")
    assert code == 0, doc
    each = doc["steps"]["each"]
    assert [r["status"] for r in each["results"]] == ["success", "skipped", "success"]
    assert [r["item"] for r in each["results"]] == ["c", "b", "a"]
    assert each["output"] == "1/3:c:0\n3/3:a:2"


def test_for_each_fail_fast_and_not(tmp_path: Path) -> None:
    body = """
        [[steps]]
        name = "each"
        type = "shell"
        for_each = "['quick-fail', 'slow', 'slow']"
        fail_fast = {fail_fast}
        run = "if [ {{{{ item }}}} = quick-fail ]; then exit 4; fi; sleep 0.5; echo done"
        """
    write(tmp_path, body.format(fail_fast="true"))
    code, doc = run_json(tmp_path, "wf.toml")
    assert code == 1
    results = doc["steps"]["each"]["results"]
    assert results[0]["status"] == "failed"
    assert results[0]["exit_code"] == 4
    assert all(r["status"] != "success" for r in results[1:])
    assert "item 1 (quick-fail) failed" in doc["steps"]["each"]["error"]
    write(tmp_path, body.format(fail_fast="false"))
    code, doc = run_json(tmp_path, "wf.toml")
    assert code == 1
    results = doc["steps"]["each"]["results"]
    assert [r["status"] for r in results] == ["failed", "success", "success"]


def test_for_each_empty_list_and_string(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "empty"
        type = "shell"
        run = "printf ''"

        [[steps]]
        name = "each"
        type = "shell"
        for_each = "steps.empty.output | lines"
        run = "echo {{ item }}"

        [[steps]]
        name = "after"
        type = "shell"
        run = "echo [{{ steps.each.output }}]"
        """,
    )
    code, doc = run_json(tmp_path, "wf.toml")
    assert code == 0, doc
    assert doc["steps"]["each"]["results"] == []
    assert doc["steps"]["each"]["status"] == "success"
    assert doc["steps"]["after"]["output"] == "[]"


def test_for_each_over_text_suggests_lines(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "data"
        type = "shell"
        run = "echo '\\"just text\\"'"

        [[steps]]
        name = "each"
        type = "shell"
        for_each = "steps.data.output | from_json"
        run = "echo {{ item }}"
        """,
    )
    code, doc = run_json(tmp_path, "wf.toml")
    assert code == 1
    error = doc["steps"]["each"]["error"]
    assert "| lines" in error
    assert "| from_json" in error


# --------------------------------------------------------------------------- output modes


def test_json_output_is_exactly_one_object(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        name = "shape"
        [[steps]]
        name = "a"
        type = "shell"
        run = "echo out; echo err >&2"
        """,
    )
    result = run(tmp_path, "wf.toml", "--output", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert set(doc) >= {"workflow", "success", "duration_ms", "steps"}
    assert doc["workflow"] == "shape"
    step = doc["steps"]["a"]
    assert step["status"] == "success"
    assert step["output"] == "out"
    assert step["stderr"] == "err"
    assert step["exit_code"] == 0
    assert step["error"] is None
    assert isinstance(step["duration_ms"], int)


def test_jsonl_events(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "a"
        type = "shell"
        run = "exit 1"
        continue_on_error = true

        [[steps]]
        name = "b"
        type = "shell"
        run = "echo b"
        depends_on = ["a"]
        """,
    )
    result = run(tmp_path, "wf.toml", "--output", "jsonl")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    kinds = [(e["event"], e.get("step")) for e in events]
    assert kinds == [
        ("run_started", None),
        ("step_started", "a"),
        ("step_finished", "a"),
        ("step_finished", "b"),
        ("run_finished", None),
    ]
    assert events[2]["status"] == "failed"
    assert events[3]["status"] == "skipped"
    assert "reason" in events[3]
    assert events[-1]["success"] is True


def test_quiet_prints_only_the_output(tmp_path: Path) -> None:
    write(tmp_path, '[[steps]]\nname = "a"\ntype = "shell"\nrun = "echo hi"\n')
    result = run(tmp_path, "wf.toml", "--quiet")
    assert result.exit_code == 0
    assert result.stdout == "hi\n"
    assert result.stderr == ""


def test_plain_lines_name_failures(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "bad"
        type = "shell"
        run = "echo broken >&2; exit 2"

        [[steps]]
        name = "next"
        type = "shell"
        run = "echo no"
        depends_on = ["bad"]
        """,
    )
    result = run(tmp_path, "wf.toml")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "✗ bad" in result.stderr
    assert "exit code 2: broken" in result.stderr
    assert "- next skipped" in result.stderr


# --------------------------------------------------------------------------- args, errors


ARGS_WORKFLOW = """
    [args.first]
    description = "required one"

    [args.second]
    default = "two"

    [[steps]]
    name = "show"
    type = "shell"
    run = "echo {{ args.first | shell_escape }} {{ args.second | shell_escape }}"
    """


def test_args_positional_named_and_defaults(tmp_path: Path) -> None:
    write(tmp_path, ARGS_WORKFLOW)
    assert run(tmp_path, "wf.toml", "one").stdout == "one two\n"
    assert run(tmp_path, "wf.toml", "one", "2").stdout == "one 2\n"
    assert run(tmp_path, "wf.toml", "second=x", "first=y").stdout == "y x\n"
    assert run(tmp_path, "wf.toml", "second=x", "z").stdout == "z x\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "missing required argument"),
        (("one", "two", "three"), "too many arguments"),
        (("frist=1",), "unknown argument 'frist'"),
    ],
)
def test_bad_args_exit_2_before_running(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    write(tmp_path, ARGS_WORKFLOW.replace("echo", "touch ran; echo"))
    result = run(tmp_path, "wf.toml", *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "ran").exists()


def test_validation_errors_exit_2_with_position(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "a"
        type = "shell"
        run = "touch ran; echo {{ steps.nope.output }}"
        """,
    )
    result = run(tmp_path, "wf.toml")
    assert result.exit_code == 2
    assert "wf.toml:5:" in result.stderr
    assert "MUX021" in result.stderr
    assert not (tmp_path / "ran").exists()


def test_unknown_workflow_exits_2(tmp_path: Path) -> None:
    result = run(tmp_path, "does-not-exist")
    assert result.exit_code == 2
    assert "does-not-exist" in result.stderr


def test_dry_run_renders_what_it_can_and_runs_nothing(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [args.base]
        default = "HEAD~1"

        [[steps]]
        name = "diff"
        type = "shell"
        run = "touch ran; git diff {{ args.base | shell_escape }}"

        [[steps]]
        name = "count"
        type = "shell"
        run = "echo {{ steps.diff.output | length }}"
        """,
    )
    result = run(tmp_path, "wf.toml", "--dry-run", "base=main")
    assert result.exit_code == 0, result.stderr
    assert "touch ran; git diff main" in result.stdout
    assert "{{ steps.diff.output | length }}" in result.stdout
    assert result.stdout.index("diff") < result.stdout.index("count")
    assert not (tmp_path / "ran").exists()
    doc = json.loads(run(tmp_path, "wf.toml", "--dry-run", "--output", "json").stdout)
    assert doc["dry_run"] is True
    assert [s["name"] for s in doc["steps"]] == ["diff", "count"]
    assert doc["steps"][0]["fields"]["run"]["text"] == "touch ran; git diff 'HEAD~1'"


def test_unset_env_in_a_template_fails_the_step_with_its_position(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "a"
        type = "shell"
        run = "echo {{ env.MUXLANG_TEST_SURELY_UNSET }}"
        """,
    )
    env = {k: v for k, v in os.environ.items() if k != "MUXLANG_TEST_SURELY_UNSET"}
    result = run(tmp_path, "wf.toml", "--output", "json", env=env)
    assert result.exit_code == 1
    error = json.loads(result.stdout)["steps"]["a"]["error"]
    assert "wf.toml:5:" in error
    assert "MUXLANG_TEST_SURELY_UNSET" in error


def test_max_concurrent_flag_runs_one_at_a_time_in_file_order(tmp_path: Path) -> None:
    steps = "".join(
        f'[[steps]]\nname = "s{i}"\ntype = "shell"\nrun = "sleep 0.0{i}; echo {i} >> log"\n\n'
        for i in (5, 3, 1, 4, 2)
    )
    write(tmp_path, steps)
    result = run(tmp_path, "wf.toml", "--max-concurrent", "1")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "log").read_text().split() == ["5", "3", "1", "4", "2"]
    assert run(tmp_path, "wf.toml", "--max-concurrent", "0").exit_code == 2


def test_console_shows_backend_retries(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [backends.flaky]
        command = "sh"
        args = ["-c", "[ -e m ] && echo ok || { touch m; echo 'rate limit' >&2; exit 1; }", "x"]
        retry_delay = 10

        [[steps]]
        name = "ask"
        type = "query"
        backend = "flaky"
        prompt = "hi"
        """,
    )
    result = run(tmp_path, "wf.toml")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ok\n"
    assert "↻ ask: flaky: rate_limit" in result.stderr  # the step that asked leads
    assert "retry 1 in" in result.stderr


def test_success_function_does_not_bypass_a_failure(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "bad"
        type = "shell"
        run = "exit 1"

        [[steps]]
        name = "slow"
        type = "shell"
        run = "sleep 0.3"

        [[steps]]
        name = "after-slow"
        type = "shell"
        depends_on = ["slow"]
        if = "success() or true"
        run = "echo ran"

        [[steps]]
        name = "cleanup"
        type = "shell"
        depends_on = ["slow"]
        if = "always()"
        run = "echo cleaned"
        """,
    )
    code, doc = run_json(tmp_path, "wf.toml")
    assert code == 1
    assert doc["steps"]["slow"]["status"] == "failed"
    assert doc["steps"]["after-slow"]["status"] == "skipped"
    assert doc["steps"]["cleanup"]["output"] == "cleaned"


def test_json_mode_reports_errors_before_running_as_json(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "a"
        type = "shell"
        run = "echo {{ steps.nope.output }}"
        """,
    )
    result = run(tmp_path, "wf.toml", "--output", "json")
    assert result.exit_code == 2
    doc = json.loads(result.stdout)
    assert doc["success"] is False
    assert doc["steps"] == {}
    (diagnostic,) = doc["diagnostics"]
    assert diagnostic["code"] == "MUX021"
    assert diagnostic["line"] == 5
    assert "MUX021" in result.stderr
    bad_arg = run(tmp_path, "wf.toml", "x=1", "--output", "json")
    assert bad_arg.exit_code == 2
