"""Follow-ups of issues 21/16, through the real CLI: the nested steps of a ``uses``
call stopped half-way are kept and reused by ``--resume``; a repeating for_each
step resumes at its unfinished iteration; a nested query step honours its own
``cache``; and the exit-2 JSON carries ``run_id``."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest
from records_support import mux, mux_json, ran, stop_when_hung, write

from tests.fakes.llm_server import FakeLLMServer, Reply


def test_the_exit_2_json_has_a_null_run_id(project: Path) -> None:
    write(project, 'name = "bad"\n[[steps]]\nname = "a"\ntype = "shell"\nrun = "{{ nope }"\n')
    for output in ("json", "jsonl"):
        done = mux(project, "run", "wf.toml", "--output", output)
        assert done.returncode == 2, done.stderr
        doc = json.loads(done.stdout.splitlines()[-1])
        assert doc["success"] is False
        assert "run_id" in doc
        assert doc["run_id"] is None
    assert "no runs recorded yet" in mux(project, "runs").stderr  # nothing was recorded


#: a called workflow whose second step hangs (writing slow.pid) unless `fast` exists
HANGS = """\
name = "inner"

[[steps]]
name = "first"
type = "shell"
run = "echo first >> ran.log; echo first"

[[steps]]
name = "second"
type = "shell"
depends_on = ["first"]
run = "echo second >> ran.log; test -f fast || { echo $$ > slow.pid; exec sleep 60; }; echo second"
"""

CALLS_HANGS = """\
name = "outer"

[[steps]]
name = "call"
uses = "inner.toml"

[[steps]]
name = "after"
type = "shell"
run = "echo after {{ steps.call.steps.first.output }}; echo after >> ran.log"
"""


@pytest.mark.parametrize(
    "how", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "killed"]
)
def test_a_call_stopped_half_way_keeps_its_finished_steps(
    project: Path, how: signal.Signals
) -> None:
    write(project, HANGS, "inner.toml")
    write(project, CALLS_HANGS)
    stop_when_hung(project, how)
    assert mux_json(project, "runs")[0]["status"] == "interrupted"
    assert ran(project) == ["first", "second"]
    (project / "fast").write_text("")
    done = mux(project, "run", "wf.toml", "--resume", "--print", "after")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["second", "after"]  # call.first is not run again
    assert done.stdout == "after first\n"
    assert "✓ call.first (reused," in done.stderr
    assert "call.first runs again" not in done.stderr
    assert "↻ call.second runs again: " in done.stderr  # (failed, or interrupted, before)


def _backend(llm: FakeLLMServer) -> str:
    return f'[backends.fake]\ncommand = "{llm.url}/v1"\nprotocol = "openai"\nmodel = "m"\n'


def _ask(prompt: str, cache: str | None) -> str:
    setting = f"cache = {cache}\n" if cache is not None else ""
    return (
        f'[[steps]]\nname = "ask"\ntype = "query"\nbackend = "fake"\nprompt = "{prompt}"\n{setting}'
    )


@pytest.mark.parametrize("where", ["called", "project"])
def test_a_nested_query_honours_its_own_cache(
    project: Path, llm: FakeLLMServer, where: str
) -> None:
    """The called workflow's `ask` caches, the caller's `ask` (same name) does not:
    the second run asks the backend for the caller's only. The backend is the called
    workflow's own, or the project's (shared with the caller)."""
    if where == "called":
        called = 'name = "asker"\n' + _backend(llm) + _ask("inner question", "true")
        caller = 'name = "outer"\n' + _backend(llm)
    else:
        (project / ".muxlang").mkdir()
        (project / ".muxlang" / "config.toml").write_text(_backend(llm))
        called = 'name = "asker"\n' + _ask("inner question", "true")
        caller = 'name = "outer"\n'
    write(project, called, "asker.toml")
    caller += _ask("outer question", None) + '[[steps]]\nname = "call"\nuses = "asker.toml"\n'
    write(project, caller)
    llm.default = lambda request: Reply.answer(f"answer {len(llm.requests)}")
    first = mux_json(project, "run", "wf.toml")
    assert len(llm.requests) == 2
    again = mux(project, "run", "wf.toml", "--output", "json")
    assert again.returncode == 0, again.stderr
    assert len(llm.requests) == 3  # only the caller's `ask` asked again
    doc = json.loads(again.stdout)
    inner = doc["steps"]["call"]["steps"]["ask"]["output"]
    assert inner == first["steps"]["call"]["steps"]["ask"]["output"]
    assert doc["steps"]["ask"]["output"] != first["steps"]["ask"]["output"]
    console = mux(project, "run", "wf.toml")
    assert "✓ call.ask (cached," in console.stderr
    assert "✓ ask (cached," not in console.stderr
    assert len(llm.requests) == 4


def test_a_nested_step_does_not_take_a_same_named_callers_cache_setting(
    project: Path, llm: FakeLLMServer
) -> None:
    write(project, 'name = "asker"\n' + _backend(llm) + _ask("inner question", None), "asker.toml")
    write(
        project,
        'name = "outer"\n'
        + _backend(llm)
        + _ask("outer question", "true")
        + '[[steps]]\nname = "call"\nuses = "asker.toml"\n',
    )
    llm.default = lambda request: Reply.answer("an answer")
    assert mux(project, "run", "wf.toml").returncode == 0
    again = mux(project, "run", "wf.toml")
    assert again.returncode == 0, again.stderr
    assert "✓ ask (cached," in again.stderr
    assert "call.ask (cached" not in again.stderr
    assert len(llm.requests) == 3  # the caller's ask once, the called one twice


#: a repeating for_each step: each item counts its runs (file n-ITEM); an item's
#: third run fails unless the file `ok` exists
EACH = """\
name = "each"

[[steps]]
name = "each"
type = "shell"
for_each = "['a', 'b']"
max_parallel = 1
fail_fast = false
run = '''
n=$(cat n-{{ item }} 2>/dev/null || echo 0); n=$((n+1)); echo $n > n-{{ item }}
echo {{ item }} >> ran.log; echo {{ item }}$n; test $n -lt 3 || test -f ok'''
repeat = { until = "not steps.each.failed and loop.index == 3", max_iterations = 3 }
"""


def test_a_repeating_for_each_resumes_at_its_unfinished_iteration(project: Path) -> None:
    write(project, EACH)
    first = mux(project, "run", "wf.toml")
    assert first.returncode == 1, first.stderr
    assert ran(project) == ["a", "b"] * 3
    (project / "ok").write_text("")
    done = mux(project, "run", "wf.toml", "--resume", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["a", "b"]  # iterations 1 and 2 were not run again
    each = json.loads(done.stdout)["steps"]["each"]
    assert [
        (i["iteration"], i["status"], [r["output"] for r in i["results"]])
        for i in each["iterations"]
    ] == [
        (1, "success", ["a1", "b1"]),
        (2, "success", ["a2", "b2"]),
        (3, "success", ["a4", "b4"]),  # (the counters went on from 3)
    ]
    assert each["output"] == "a4\nb4"
    # an edited step runs every iteration again
    (project / "ok").unlink()
    for name in ("n-a", "n-b"):
        (project / name).write_text("0")
    assert mux(project, "run", "wf.toml").returncode == 1
    ran(project)
    (project / "ok").write_text("")
    write(project, EACH.replace("['a', 'b']", "['a', 'c']"))
    again = mux(project, "run", "wf.toml", "--resume")
    assert again.returncode == 0, again.stderr
    assert "↻ each runs again: failed before; changed: definition" in again.stderr
    assert ran(project) == ["a", "c"] * 3


#: a called workflow: `work` counts its runs (0.1 s each, so that the recorder
#: keeps each), `check` hangs in round 2 unless `fast` exists
ROUNDS = """\
name = "rounds"

[[steps]]
name = "work"
type = "shell"
run = '''
n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n
echo work >> ran.log; sleep 0.1; echo w$n'''

[[steps]]
name = "check"
type = "shell"
depends_on = ["work"]
run = '''
echo check >> ran.log
test $(cat n) -lt 2 || test -f fast || { echo $$ > slow.pid; exec sleep 60; }; echo c'''
"""

LOOP = """\
name = "outer"

[[steps]]
name = "loop"
uses = "rounds.toml"
repeat = { until = "loop.index == 2", max_iterations = 2 }
"""


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_a_repeating_call_stopped_in_round_2_keeps_round_1_and_what_round_2_did(
    project: Path, how: signal.Signals
) -> None:
    write(project, ROUNDS, "rounds.toml")
    write(project, LOOP)
    stop_when_hung(project, how)
    assert ran(project) == ["work", "check", "work", "check"]
    (project / "fast").write_text("")
    done = mux(project, "run", "wf.toml", "--resume", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["check"]  # round 1, and round 2's work, are reused
    loop = json.loads(done.stdout)["steps"]["loop"]
    assert [
        (i["iteration"], i["status"], i["steps"]["work"]["output"], i["steps"]["check"]["output"])
        for i in loop["iterations"]
    ] == [(1, "success", "w1", "c"), (2, "success", "w2", "c")]


#: a called workflow whose second step hangs for the tag `b` unless `fast` exists
TAGGED = """\
name = "inner"

[args.tag]
default = "x"

[[steps]]
name = "first"
type = "shell"
run = "echo first >> ran.log; sleep 0.1; echo first-{{ args.tag }}"

[[steps]]
name = "second"
type = "shell"
depends_on = ["first"]
run = '''
echo second >> ran.log
test {{ args.tag }} != b || test -f fast || { echo $$ > slow.pid; exec sleep 60; }
echo second-{{ args.tag }}'''
"""


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "killed"])
def test_a_for_each_of_calls_stopped_in_item_2_keeps_what_finished(
    project: Path, how: signal.Signals
) -> None:
    write(project, TAGGED, "inner.toml")
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
    stop_when_hung(project, how)
    assert ran(project) == ["first", "second", "first", "second"]
    (project / "fast").write_text("")
    done = mux(project, "run", "wf.toml", "--resume", "--output", "json")
    assert done.returncode == 0, done.stderr
    assert ran(project) == ["second"]  # item b's second step; the rest is reused
    results = json.loads(done.stdout)["steps"]["each"]["results"]
    assert [(r["steps"]["first"]["output"], r["steps"]["second"]["output"]) for r in results] == [
        ("first-a", "second-a"),
        ("first-b", "second-b"),
    ]


def test_a_called_workflows_own_backends_count_toward_the_callers_budget(
    project: Path, llm: FakeLLMServer
) -> None:
    """1,200 tokens an answer: once the first nested query spent them, no second starts."""
    llm.default = lambda request: Reply.answer("ok", usage=(1000, 200))
    called = (
        'name = "asker"\n'
        + _backend(llm)
        + _ask("one", None)
        + _ask("two", None).replace('name = "ask"', 'name = "ask2"')
        + 'depends_on = ["ask"]\n'
    )
    write(project, called, "asker.toml")
    write(
        project,
        'name = "outer"\nmax_tokens = 1000\n[[steps]]\nname = "call"\nuses = "asker.toml"\n',
    )
    done = mux(project, "run", "wf.toml")
    assert done.returncode == 1
    assert "max_tokens = 1000" in done.stderr
    assert len(llm.requests) == 1
