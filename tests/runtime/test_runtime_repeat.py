"""`repeat = { until, max_iterations }` through the real CLI (issue 21, SPEC 16):
runs until `until` holds, records every iteration, fails when it runs out
(unless `continue_on_error`), is checked by `validate` with positions, shows in
`--dry-run` and `graph`, and stops on a timeout or Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

from cli_support import ctrl_c_when_running, invoke, run_json, write
from test_runtime_processes import marker

#: a shell step that fails until its third run (a counter in a file)
COUNTER = (
    'run = "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; echo try $n; test $n -ge 3"'
)


def test_repeats_until_true_and_records_every_iteration(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"""
        [[steps]]
        name = "count"
        type = "shell"
        {COUNTER}
        repeat = {{ until = "steps.count.exit_code == 0", max_iterations = 5 }}

        [[steps]]
        name = "after"
        type = "shell"
        run = "echo {{{{ steps.count.iterations | length }}}} {{{{ steps.count.output }}}}"
        """,
    )
    code, doc = run_json(tmp_path)
    assert code == 0, doc
    count = doc["steps"]["count"]
    assert count["status"] == "success"
    assert count["output"] == "try 3"
    assert [i["iteration"] for i in count["iterations"]] == [1, 2, 3]
    assert [i["status"] for i in count["iterations"]] == ["failed", "failed", "success"]
    assert [i["output"] for i in count["iterations"]] == ["try 1", "try 2", "try 3"]
    assert count["iterations"][0]["exit_code"] == 1
    assert doc["steps"]["after"]["output"] == "3 try 3"


def test_loop_index_in_until_counts_iterations(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "tick"
        type = "shell"
        run = "echo tick"
        repeat = { until = "loop.index == 2", max_iterations = 10 }
        """,
    )
    code, doc = run_json(tmp_path)
    assert code == 0
    assert len(doc["steps"]["tick"]["iterations"]) == 2


def test_running_out_fails_the_step_and_the_run(tmp_path: Path) -> None:
    write(
        tmp_path,
        f"""
        [[steps]]
        name = "count"
        type = "shell"
        {COUNTER}
        repeat = {{ until = "steps.count.exit_code == 0", max_iterations = 2 }}

        [[steps]]
        name = "after"
        type = "shell"
        depends_on = ["count"]
        run = "echo never"
        """,
    )
    code, doc = run_json(tmp_path)
    assert code == 1
    count = doc["steps"]["count"]
    assert count["status"] == "failed"
    assert len(count["iterations"]) == 2
    assert "still false after 2 iterations" in count["error"]
    assert "steps.count.exit_code == 0" in count["error"]
    assert doc["steps"]["after"]["status"] == "skipped"


def test_running_out_with_continue_on_error_lets_the_run_go_on(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "never"
        type = "shell"
        run = "echo no"
        continue_on_error = true
        repeat = { until = "false", max_iterations = 3 }

        [[steps]]
        name = "other"
        type = "shell"
        run = "echo yes"
        """,
    )
    code, doc = run_json(tmp_path)
    assert code == 0
    assert doc["steps"]["never"]["status"] == "failed"
    assert len(doc["steps"]["never"]["iterations"]) == 3
    assert doc["steps"]["other"]["output"] == "yes"


def test_a_for_each_step_repeats_all_its_items(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "each"
        type = "shell"
        for_each = "['a', 'b']"
        run = "echo {{ item }}"
        repeat = { until = "loop.index == 2", max_iterations = 3 }
        """,
    )
    code, doc = run_json(tmp_path)
    assert code == 0
    iterations = doc["steps"]["each"]["iterations"]
    assert [[r["output"] for r in i["results"]] for i in iterations] == [["a", "b"], ["a", "b"]]


def _problems(root: Path) -> list[tuple[str, int, int, str]]:
    result = invoke(root, "validate", "--format", "json", "wf.toml")
    assert result.exit_code == 1, result.output
    return [(d["code"], d["line"], d["column"], d["message"]) for d in json.loads(result.stdout)]


def test_validate_reports_repeat_mistakes_with_positions(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        [[steps]]
        name = "a"
        type = "shell"
        run = "true"
        repeat = { until = "steps.nope.status == 'success'" }

        [[steps]]
        name = "b"
        type = "shell"
        run = "true"
        repeat = { until = "loop.index >= 2", max_iterations = 5000 }

        [[steps]]
        name = "c"
        type = "shell"
        run = "true"
        repeat = { max_iterations = 2 }
        """,
    )
    found = _problems(tmp_path)
    by_line = {(line, column): (code, message) for code, line, column, message in found}
    assert len(found) == 4, found
    assert "max_iterations" in by_line[(5, 10)][1]  # missing: at the repeat table
    assert by_line[(5, 27)][0] == "MUX021"  # until names an unknown step
    assert "nope" in by_line[(5, 27)][1]
    assert "1000" in by_line[(11, 56)][1]  # too large: at the value
    assert "until" in by_line[(17, 10)][1]  # missing until


def test_until_may_read_its_own_step_without_a_cycle(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "a"
        type = "shell"
        run = "echo hi"
        repeat = { until = "steps.a.output == 'hi' and loop.first", max_iterations = 2 }
        """,
    )
    assert invoke(tmp_path, "validate", "--strict", "wf.toml").exit_code == 0


def test_dry_run_and_graph_show_the_repeat(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "tick"
        type = "shell"
        run = "echo tick"
        repeat = { until = "loop.index == 2", max_iterations = 4 }
        """,
    )
    dry = invoke(tmp_path, "run", "wf.toml", "--dry-run")
    assert dry.exit_code == 0
    assert "repeat: until loop.index == 2, at most 4 times" in dry.output
    graph = invoke(tmp_path, "graph", "wf.toml", "--format", "json")
    (node,) = json.loads(graph.stdout)["nodes"]
    assert node["repeat"] == {"until": "loop.index == 2", "max_iterations": 4}
    assert "repeat ≤4" in invoke(tmp_path, "graph", "wf.toml").stdout


def test_the_step_timeout_covers_all_iterations(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        [[steps]]
        name = "slow"
        type = "shell"
        run = "sleep 30"
        timeout = "300ms"
        repeat = { until = "false", max_iterations = 100 }
        """,
    )
    code, doc = run_json(tmp_path)
    assert code == 1
    slow = doc["steps"]["slow"]
    assert "timed out after 300 ms" in slow["error"]
    assert len(slow["iterations"]) == 0  # the first iteration never finished


def test_ctrl_c_stops_a_repeating_step(tmp_path: Path) -> None:
    mark = marker()
    write(
        tmp_path,
        f"""
        [[steps]]
        name = "loop"
        type = "shell"
        run = "sleep {mark}"
        repeat = {{ until = "false", max_iterations = 1000 }}
        """,
    )
    assert ctrl_c_when_running(tmp_path, mark)["steps"]["loop"]["status"] == "failed"


def test_iterations_of_a_step_without_repeat_is_mux023_with_a_hint(tmp_path: Path) -> None:
    write(
        tmp_path,
        """\
        [[steps]]
        name = "once"
        type = "shell"
        run = "echo hi"

        [[steps]]
        name = "after"
        type = "shell"
        run = "echo {{ steps.once.iterations | length }}"
        """,
    )
    result = invoke(tmp_path, "validate", "--format", "json", "wf.toml")
    assert result.exit_code == 1
    (found,) = json.loads(result.stdout)
    assert (found["code"], found["line"], found["column"]) == ("MUX023", 9, 27)
    assert found["hint"] == "`iterations` exists only for steps with `repeat`; `once` has none"
