"""``muxlang run W --resume`` inside groups (issue 21), through the real CLI: the
iterations of a ``repeat`` step and the nested steps of a ``uses`` call that
finished in the earlier run are reused, the rest runs; and ``run_id`` in
``--output json`` / the last ``jsonl`` event."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest
from records_support import asker, mux, mux_json, ran, stop_when_hung, write

from muxlang.records.store import Store
from tests.fakes.llm_server import FakeLLMServer, Reply

#: a shell step that counts its runs (file `n`) and logs them (ran.log); its third
#: run fails unless the file `ok` exists; `until` holds after a third that succeeded
REPEAT = """\
name = "rep"

[args.r]
default = "3"

[[steps]]
name = "count"
type = "shell"
run = '''
n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; echo count >> ran.log
echo round; test $n -lt 3 || test -f ok'''
repeat = { until = "not steps.count.failed and (loop.index | json) == args.r", max_iterations = 3 }

[[steps]]
name = "after"
type = "shell"
run = "echo {{ steps.count.iterations | length }} {{ steps.count.output }}; echo after >> ran.log"
"""

#: a called workflow of two steps: the second fails unless the file `ok` exists
INNER = """\
name = "inner"

[args.tag]
default = "x"

[[steps]]
name = "first"
type = "shell"
run = "echo first-{{ args.tag }}; echo first >> ran.log"

[[steps]]
name = "second"
type = "shell"
depends_on = ["first"]
run = "echo second-{{ steps.first.output }}; echo second >> ran.log; test -f ok"
"""

CALLER = """\
name = "outer"

[[steps]]
name = "prep"
type = "shell"
run = "echo prep; echo prep >> ran.log"

[[steps]]
name = "call"
uses = "inner.toml"
with = { tag = "{{ steps.prep.output }}" }

[[steps]]
name = "after"
type = "shell"
run = "echo after {{ steps.call.output }}; echo after >> ran.log"
"""

#: a uses group that repeats: `work` counts, `check` fails in round 3 unless `ok`
ROUNDS_INNER = """\
name = "rounds"

[[steps]]
name = "work"
type = "shell"
run = "n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; echo work >> ran.log; echo worked"

[[steps]]
name = "check"
type = "shell"
depends_on = ["work"]
run = "echo check >> ran.log; n=$(cat n); { test $n -lt 3 || test -f ok; } && echo checked"
"""

ROUNDS = """\
name = "outer"

[[steps]]
name = "loop"
uses = "rounds.toml"
repeat = { until = "steps.loop.steps.check.exit_code == 0 and loop.index == 3", max_iterations = 3 }
"""


def _iterations(record: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The iterations as a user compares them (durations aside)."""
    return [
        (i["iteration"], i["status"], i["output"], i.get("exit_code"), i["error"])
        for i in record["iterations"]
    ]


def _stored(project: Path, step: str) -> dict[str, Any]:
    """The newest run's stored row of ``step`` (its extra fields)."""
    store = Store(project / ".muxlang" / "runs.db")
    try:
        run = store.runs()[0]
        rows = {row.name: row for row in store.steps(run.id) if row.item < 0}
        return dict(rows[step].fields)
    finally:
        store.close()


def test_a_repeat_that_failed_in_iteration_3_resumes_at_3(project: Path, tmp_path: Path) -> None:
    write(project, REPEAT)
    first = mux(project, "run", "wf.toml")
    assert first.returncode == 1, first.stderr
    assert "was still false after 3 iterations" in first.stderr
    assert ran(project) == ["count", "count", "count"]
    (project / "ok").write_text("")
    done = mux(project, "run", "wf.toml", "--resume", "--print", "after")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["count", "after"]  # iterations 1 and 2 were not run again
    assert done.stdout == "3 round\n"
    assert "↻ count runs again: failed before" in done.stderr
    assert "↻ count#3 runs again: failed before" in done.stderr
    assert "count#1 runs again" not in done.stderr
    assert "count#2 runs again" not in done.stderr
    # the new run's record holds all three iterations, the first two marked reused
    fields = _stored(project, "count")
    assert [i["iteration"] for i in fields["iterations"]] == [1, 2, 3]
    nested = fields["nested"]["steps"]
    assert nested["count#1"]["origin"] == "reused"
    assert nested["count#2"]["origin"] == "reused"
    assert "origin" not in nested["count#3"]
    assert nested["count#3"]["rerun"] == "failed before"


def test_resume_output_json_holds_the_iterations_of_a_full_run(
    project: Path, tmp_path: Path
) -> None:
    write(project, REPEAT)
    assert mux(project, "run", "wf.toml").returncode == 1
    (project / "ok").write_text("")
    resumed = mux_json(project, "run", "wf.toml", "--resume")
    full_root = tmp_path / "full"
    (full_root / ".git").mkdir(parents=True)
    write(full_root, REPEAT)
    (full_root / "ok").write_text("")
    full = mux_json(full_root, "run", "wf.toml")
    assert _iterations(resumed["steps"]["count"]) == _iterations(full["steps"]["count"])
    assert len(resumed["steps"]["count"]["iterations"]) == 3
    assert resumed["steps"]["after"]["output"] == full["steps"]["after"]["output"] == "3 round"
    assert resumed["run_id"] == mux_json(project, "runs")[0]["id"]


def test_until_is_evaluated_after_each_reused_iteration(project: Path) -> None:
    """An iteration whose `until` now holds ends the step: nothing more runs."""
    write(project, REPEAT)
    assert mux(project, "run", "wf.toml").returncode == 1
    ran(project)
    done = mux(project, "run", "wf.toml", "--resume", "--print", "after", "r=2")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["after"]  # iteration 2 is reused and ends the step
    assert done.stdout == "2 round\n"


def test_a_uses_group_whose_second_step_failed_reuses_the_first(project: Path) -> None:
    write(project, INNER, "inner.toml")
    write(project, CALLER)
    first = mux(project, "run", "wf.toml")
    assert first.returncode == 1
    assert ran(project) == ["prep", "first", "second"]
    (project / "ok").write_text("")
    done = mux(project, "run", "wf.toml", "--resume", "--print", "after")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["second", "after"]
    assert done.stdout == "after second-first-prep\n"
    assert "✓ call.first (reused," in done.stderr
    assert "↻ call runs again: failed before" in done.stderr
    assert "↻ call.second runs again: failed before" in done.stderr
    assert "call.first runs again" not in done.stderr
    nested = _stored(project, "call")["nested"]["steps"]
    assert nested["call.first"]["origin"] == "reused"
    assert nested["call.second"]["command"].startswith("echo second-first-prep;")
    # resumed from that run: the call is reused whole, its nested records with it
    again = mux_json(project, "run", "wf.toml", "--resume", "last")
    assert ran(project) == []
    assert again["steps"]["call"]["steps"]["second"]["output"] == "second-first-prep"


def test_a_repeating_uses_group_resumes_in_its_unfinished_iteration(project: Path) -> None:
    write(project, ROUNDS_INNER, "rounds.toml")
    write(project, ROUNDS)
    first = mux(project, "run", "wf.toml")
    assert first.returncode == 1
    assert ran(project) == ["work", "check"] * 3
    (project / "ok").write_text("")
    done = mux(project, "run", "wf.toml", "--resume", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["check"]  # rounds 1-2 reused, and round 3's work
    doc = json.loads(done.stdout)
    loop = doc["steps"]["loop"]
    assert [(i["iteration"], i["steps"]["check"]["status"]) for i in loop["iterations"]] == [
        (1, "success"),
        (2, "success"),
        (3, "success"),
    ]
    assert loop["steps"]["check"]["output"] == "checked"
    nested = _stored(project, "loop")["nested"]["steps"]
    reused = sorted(k for k, v in nested.items() if v.get("origin") == "reused")
    assert reused == ["loop#1.check", "loop#1.work", "loop#2.check", "loop#2.work", "loop#3.work"]
    assert nested["loop#3.check"]["rerun"] == "failed before"


def test_a_changed_definition_runs_everything_again(project: Path) -> None:
    write(project, REPEAT)
    assert mux(project, "run", "wf.toml").returncode == 1
    ran(project)
    (project / "ok").write_text("")
    (project / "n").write_text("0")
    write(project, REPEAT.replace("max_iterations = 3 }", "max_iterations = 3 }  # edited"))
    done = mux(project, "run", "wf.toml", "--resume")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["count", "count", "count", "after"]
    assert "↻ count runs again: failed before; changed: definition" in done.stderr


def test_a_changed_called_workflow_runs_the_whole_group_again(project: Path) -> None:
    write(project, ROUNDS_INNER, "rounds.toml")
    write(project, ROUNDS)
    assert mux(project, "run", "wf.toml").returncode == 1
    ran(project)
    (project / "ok").write_text("")
    (project / "n").write_text("0")
    write(project, ROUNDS_INNER + "# edited\n", "rounds.toml")
    done = mux(project, "run", "wf.toml", "--resume")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["work", "check"] * 3
    assert "↻ loop runs again: failed before; changed: the workflow it calls" in done.stderr
    assert "↻ loop#1.work runs again: loop runs again whole" in done.stderr


def test_run_id_in_json_and_jsonl(project: Path) -> None:
    write(project, INNER.replace("; test -f ok", ""))
    doc = mux_json(project, "run", "wf.toml")
    assert doc["run_id"] == mux_json(project, "runs")[0]["id"]
    unrecorded = mux_json(project, "run", "wf.toml", "--no-record")
    assert unrecorded["run_id"] is None
    lines = mux(project, "run", "wf.toml", "--output", "jsonl").stdout.splitlines()
    last = json.loads(lines[-1])
    assert last["event"] == "run_finished"
    assert last["run_id"] == mux_json(project, "runs")[0]["id"]
    lines = mux(project, "run", "wf.toml", "--output", "jsonl", "--no-record").stdout.splitlines()
    assert json.loads(lines[-1])["run_id"] is None


#: a repeating step whose third iteration hangs (writing slow.pid) unless `fast`
#: exists; the first two take 0.1 s (the recorder keeps every iteration that slow)
STOPPED = """\
name = "stopped"

[[steps]]
name = "count"
type = "shell"
run = '''
n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n; echo count >> ran.log
test $n -ge 3 || sleep 0.1
test $n -lt 3 || test -f fast || { echo $$ > slow.pid; exec sleep 60; }; echo round'''
repeat = { until = "loop.index == 3", max_iterations = 3 }
"""


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_an_interrupted_repeat_resumes_at_the_iteration_it_was_in(
    project: Path, how: signal.Signals
) -> None:
    """Ctrl-C, or SIGKILL, in iteration 3: the run is `interrupted`; resumed,
    iterations 1 and 2 are reused and only the third runs."""
    write(project, STOPPED)
    stop_when_hung(project, how)
    assert mux_json(project, "runs")[0]["status"] == "interrupted"
    assert ran(project) == ["count", "count", "count"]
    (project / "fast").write_text("")
    done = mux(project, "run", "wf.toml", "--resume", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["count"]
    count = json.loads(done.stdout)["steps"]["count"]
    assert [(i["iteration"], i["status"], i["output"]) for i in count["iterations"]] == [
        (1, "success", "round"),
        (2, "success", "round"),
        (3, "success", "round"),
    ]


def test_a_for_each_of_calls_reuses_each_items_finished_steps(project: Path) -> None:
    write(project, INNER.replace("test -f ok", "test -f ok-{{ args.tag }}"), "inner.toml")
    write(
        project,
        """\
        name = "outer"

        [[steps]]
        name = "each"
        uses = "inner.toml"
        for_each = "['a', 'b']"
        max_parallel = 1
        with = { tag = "{{ item }}" }
        """,
    )
    (project / "ok-a").write_text("")
    assert mux(project, "run", "wf.toml").returncode == 1
    assert ran(project) == ["first", "second", "first", "second"]
    (project / "ok-b").write_text("")
    done = mux(project, "run", "wf.toml", "--resume", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["second"]  # item b's second step; the rest is reused
    results = json.loads(done.stdout)["steps"]["each"]["results"]
    assert [r["steps"]["second"]["output"] for r in results] == [
        "second-first-a",
        "second-first-b",
    ]


def test_a_nested_query_is_asked_again_only_when_its_prompt_changed(
    project: Path, llm: FakeLLMServer
) -> None:
    called = asker(llm.url)
    write(project, called, "asker.toml")
    write(
        project,
        """\
        name = "outer"
        [args.topic]
        default = "cats"
        [[steps]]
        name = "call"
        uses = "asker.toml"
        with = { topic = "{{ args.topic }}" }
        """,
    )
    llm.default = lambda request: Reply.answer("an answer")
    assert mux(project, "run", "wf.toml").returncode == 1
    (project / "ok").write_text("")
    done = mux(project, "run", "wf.toml", "--resume")
    assert done.returncode == 0, done.stderr
    assert "✓ call.ask (reused," in done.stderr
    assert len(llm.requests) == 1
    (project / "ok").unlink()
    assert mux(project, "run", "wf.toml").returncode == 1
    assert len(llm.requests) == 2
    (project / "ok").write_text("")
    changed = mux(project, "run", "wf.toml", "topic=dogs", "--resume")
    assert changed.returncode == 0, changed.stderr
    assert "↻ call.ask runs again: changed: prompt" in changed.stderr
    assert len(llm.requests) == 3
