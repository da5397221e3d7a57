"""`uses` + `with` through the real CLI (issue 21, SPEC 16): a called workflow runs
as a nested group whose output and steps the caller sees; `validate` checks the
call with positions; `--dry-run`, `graph`, `--output json`/`jsonl` show the
nested steps; failures, timeouts and Ctrl-C reach them."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from cli_support import ctrl_c_when_running, invoke, run_json
from test_runtime_processes import marker

GREET = """\
description = "Say hello"

[args.who]
description = "Whom to greet"
default = "world"

[[steps]]
name = "hello"
type = "shell"
run = "echo hello {{ args.who }}"

[[steps]]
name = "shout"
type = "shell"
run = "echo {{ steps.hello.output | upper }}"
"""


def project(root: Path, main: str, **workflows: str) -> None:
    (root / ".muxlang" / "workflows").mkdir(parents=True, exist_ok=True)
    (root / "wf.toml").write_text(textwrap.dedent(main))
    for name, text in {"greet": GREET, **workflows}.items():
        (root / ".muxlang" / "workflows" / f"{name}.toml").write_text(textwrap.dedent(text))


CALLER = """\
[[steps]]
name = "who"
type = "shell"
run = "echo muxlang"

[[steps]]
name = "greeting"
uses = "greet"
with = { who = "{{ steps.who.output }}" }

[[steps]]
name = "show"
type = "shell"
run = "echo {{ steps.greeting.output }} / {{ steps.greeting.steps.hello.output }}"
"""


def test_the_called_workflow_runs_nested_and_the_caller_sees_it(tmp_path: Path) -> None:
    project(tmp_path, CALLER)
    assert invoke(tmp_path, "validate", "--strict", "wf.toml").exit_code == 0
    code, doc = run_json(tmp_path)
    assert code == 0, doc
    greeting = doc["steps"]["greeting"]
    assert greeting["status"] == "success"
    assert greeting["output"] == "HELLO MUXLANG"
    assert greeting["steps"]["hello"]["output"] == "hello muxlang"
    assert greeting["steps"]["shout"]["status"] == "success"
    assert doc["steps"]["show"]["output"] == "HELLO MUXLANG / hello muxlang"


def test_a_called_workflow_takes_its_defaults(tmp_path: Path) -> None:
    project(tmp_path, '[[steps]]\nname = "g"\nuses = "greet"\n')
    code, doc = run_json(tmp_path)
    assert code == 0
    assert doc["steps"]["g"]["output"] == "HELLO WORLD"


def test_a_failure_inside_fails_the_call_and_stops_the_caller(tmp_path: Path) -> None:
    broken = '[[steps]]\nname = "boom"\ntype = "shell"\nrun = "echo oops >&2; exit 3"\n'
    project(
        tmp_path,
        """\
        [[steps]]
        name = "call"
        uses = "broken"

        [[steps]]
        name = "after"
        type = "shell"
        run = "echo {{ steps.call.output }}"
        """,
        broken=broken,
    )
    code, doc = run_json(tmp_path)
    assert code == 1
    call = doc["steps"]["call"]
    assert call["status"] == "failed"
    assert "workflow `broken` failed" in call["error"]
    assert "exit code 3" in call["error"]
    assert call["steps"]["boom"]["exit_code"] == 3
    assert doc["steps"]["after"]["status"] == "skipped"


def test_uses_with_repeat_runs_the_group_again(tmp_path: Path) -> None:
    counter = (
        '[[steps]]\nname = "count"\ntype = "shell"\n'
        'run = "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; echo $n"\n'
    )
    project(
        tmp_path,
        """\
        [[steps]]
        name = "rounds"
        uses = "counter"
        repeat = { until = "steps.rounds.output == '3'", max_iterations = 5 }
        """,
        counter=counter,
    )
    code, doc = run_json(tmp_path)
    assert code == 0
    rounds = doc["steps"]["rounds"]
    assert rounds["output"] == "3"
    assert [i["steps"]["count"]["output"] for i in rounds["iterations"]] == ["1", "2", "3"]
    (tmp_path / "n").unlink()
    lines = invoke(tmp_path, "run", "wf.toml", "--output", "jsonl").stdout.splitlines()
    finished = [e["step"] for e in map(json.loads, lines) if e["event"] == "step_finished"]
    assert finished == ["rounds#1.count", "rounds#2.count", "rounds#3.count", "rounds"]


def test_an_apply_step_inside_a_call_runs_with_one_slot(tmp_path: Path) -> None:
    """Also: the backend is defined only in the called workflow's own tables."""
    (tmp_path / "greet.txt").write_text("hello wrold\n")
    (tmp_path / "edit.json").write_text('{"path": "greet.txt", "old": "wrold", "new": "world"}')
    fixer = """\
    [backends.fake]
    command = "sh"
    args = ["-c", "cat edit.json", "fake"]

    [[steps]]
    name = "ask"
    type = "query"
    backend = "fake"
    prompt = "fix it"

    [[steps]]
    name = "apply"
    type = "apply"
    source = "ask"
    verify = "grep -q world greet.txt"
    """
    project(
        tmp_path,
        """\
        [[steps]]
        name = "side"
        type = "shell"
        run = "echo side"

        [[steps]]
        name = "fix"
        uses = "fixer"
        """,
        fixer=fixer,
    )
    code, doc = run_json(tmp_path, "--max-concurrent", "1")
    assert code == 0, doc
    assert doc["steps"]["fix"]["steps"]["apply"]["files"] == ["greet.txt"]
    assert (tmp_path / "greet.txt").read_text() == "hello world\n"


NEEDS_X = '[args.x]\ndescription = "x"\n\n[[steps]]\nname = "s"\ntype = "shell"\nrun = "true"\n'


def _found(root: Path) -> dict[tuple[int, int], tuple[str, str]]:
    result = invoke(root, "validate", "--format", "json", "wf.toml")
    assert result.exit_code == 1, result.output
    return {(d["line"], d["column"]): (d["code"], d["message"]) for d in json.loads(result.stdout)}


def test_validate_checks_the_call_with_positions(tmp_path: Path) -> None:
    project(
        tmp_path,
        """\
        [[steps]]
        name = "one"
        uses = "gret"

        [[steps]]
        name = "two"
        uses = "greet"
        with = { whom = "x" }

        [[steps]]
        name = "three"
        uses = "needs"

        [[steps]]
        name = "four"
        uses = "../outside.toml"
        """,
        needs=NEEDS_X,
    )
    found = _found(tmp_path)
    assert found[(3, 8)] == ("MUX032", "no workflow `gret`")
    assert found[(8, 10)] == ("MUX034", "workflow `greet` has no arg `whom`")
    assert found[(12, 8)][0] == "MUX033"
    assert "needs arg `x`" in found[(12, 8)][1]
    assert found[(16, 8)][0] == "MUX032"
    assert "outside the project root" in found[(16, 8)][1]
    text = invoke(tmp_path, "validate", "wf.toml").output
    assert "did you mean `greet`?" in text
    assert "did you mean `who`?" in text


def test_validate_reports_recursion_with_the_chain(tmp_path: Path) -> None:
    project(
        tmp_path,
        '[[steps]]\nname = "go"\nuses = "a"\n',
        a='[[steps]]\nname = "to-b"\nuses = "b"\n',
        b='[[steps]]\nname = "to-a"\nuses = "a"\n',
    )
    found = _found(tmp_path)
    assert found == {(3, 8): ("MUX035", "`uses` recursion: wf → a → b → a")}
    run = invoke(tmp_path, "run", "wf.toml")
    assert run.exit_code == 2


def test_a_workflow_calling_itself_is_recursion(tmp_path: Path) -> None:
    project(tmp_path, '[[steps]]\nname = "again"\nuses = "./wf.toml"\n')
    assert _found(tmp_path) == {(3, 8): ("MUX035", "`uses` recursion: wf → wf")}


def test_a_called_workflow_with_errors_is_mux032(tmp_path: Path) -> None:
    project(
        tmp_path,
        '[[steps]]\nname = "call"\nuses = "broken"\n',
        broken='[[steps]]\nname = "x"\ntype = "shell"\nrun = "{{ steps.nope.output }}"\n',
    )
    ((code, message),) = _found(tmp_path).values()
    assert code == "MUX032"
    assert "workflow `broken` cannot run: it has 1 error" in message
    assert "unknown step `nope`" in message


def test_dry_run_shows_the_nested_steps(tmp_path: Path) -> None:
    project(tmp_path, CALLER)
    result = invoke(tmp_path, "run", "wf.toml", "--dry-run")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert "2. greeting (uses, workflow greet) after who" in lines
    assert "   2.1. greeting.hello (shell)" in lines
    assert "   2.2. greeting.shout (shell) after greeting.hello" in lines
    assert "Plan for workflow 'wf': 3 steps" in lines[0]


def test_graph_draws_the_call_as_a_subgraph(tmp_path: Path) -> None:
    project(tmp_path, CALLER)
    mermaid = invoke(tmp_path, "graph", "wf.toml").stdout
    assert '    subgraph s1 ["greeting<br/><small>uses: greet</small>"]' in mermaid
    assert '        s1_s0["hello<br/><small>shell</small>"]' in mermaid
    assert "        s1_s0 --> s1_s1" in mermaid
    assert "    s0 --> s1" in mermaid
    dot = invoke(tmp_path, "graph", "wf.toml", "--format", "dot").stdout
    assert 'subgraph "cluster_greeting" {' in dot
    assert '"greeting.hello" -> "greeting.shout";' in dot
    data = json.loads(invoke(tmp_path, "graph", "wf.toml", "--format", "json").stdout)
    greeting = data["nodes"][1]
    assert greeting["uses"] == "greet"
    assert greeting["calls"]["order"] == ["hello", "shout"]


def test_jsonl_and_console_name_nested_steps(tmp_path: Path) -> None:
    project(tmp_path, CALLER)
    result = invoke(tmp_path, "run", "wf.toml", "--output", "jsonl")
    events = [json.loads(line) for line in result.stdout.splitlines()]
    finished = [e["step"] for e in events if e["event"] == "step_finished"]
    assert finished == ["who", "greeting.hello", "greeting.shout", "greeting", "show"]
    console = invoke(tmp_path, "run", "wf.toml")
    assert "  ✓ greeting.hello" in console.stderr


def test_the_callers_timeout_stops_the_nested_steps(tmp_path: Path) -> None:
    project(
        tmp_path,
        '[[steps]]\nname = "call"\nuses = "slow"\ntimeout = "300ms"\n',
        slow='[[steps]]\nname = "nap"\ntype = "shell"\nrun = "sleep 30"\n',
    )
    code, doc = run_json(tmp_path)
    assert code == 1
    assert "timed out after 300 ms" in doc["steps"]["call"]["error"]


def test_ctrl_c_stops_a_called_workflow(tmp_path: Path) -> None:
    mark = marker()
    project(
        tmp_path,
        '[[steps]]\nname = "call"\nuses = "sleepy"\n',
        sleepy=f'[[steps]]\nname = "nap"\ntype = "shell"\nrun = "sleep {mark}"\n',
    )
    assert ctrl_c_when_running(tmp_path, mark)["steps"]["call"]["status"] == "failed"


def test_for_each_over_a_call_with_shared_names_and_one_slot(tmp_path: Path) -> None:
    project(
        tmp_path,
        """\
        [[steps]]
        name = "hello"
        type = "shell"
        run = "echo top"

        [[steps]]
        name = "each"
        uses = "greet"
        for_each = "['a', 'b']"
        with = { who = "{{ item }}" }
        """,
    )
    for slots in ("1", "4"):
        code, doc = run_json(tmp_path, "--max-concurrent", slots)
        assert code == 0, doc
        results = doc["steps"]["each"]["results"]
        assert [r["output"] for r in results] == ["HELLO A", "HELLO B"]
        assert results[1]["steps"]["hello"]["output"] == "hello b"
        assert doc["steps"]["hello"]["output"] == "top"
    lines = invoke(tmp_path, "run", "wf.toml", "--output", "jsonl").stdout.splitlines()
    finished = {e["step"] for e in map(json.loads, lines) if e["event"] == "step_finished"}
    assert {"each[1].hello", "each[2].shout", "hello", "each"} <= finished
