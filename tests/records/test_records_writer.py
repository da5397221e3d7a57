"""The record writer (muxlang.records.writer): a child process fed through a pipe, or
the same handler in process; what a killed run, a cut message and a broken store leave."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from muxlang.records.recorder import plan_facts
from muxlang.records.store import Store
from muxlang.records.writer import Local, Pipe, open_channel
from tests.runtime.runtime_helpers import plan_from_toml

WORKFLOW = """\
name = "w"

[[steps]]
name = "a"
type = "query"
role = "r"
prompt = "hello"

[[steps]]
name = "b"
type = "shell"
run = "echo {{ steps.a.output }}"
"""


def _plan(root: Path) -> Any:
    tables = '\n[roles.r]\nbackends = ["x"]\n[backends.x]\ncommand = "cat"\n'
    return plan_from_toml(root, WORKFLOW + tables, "w.toml")


def _open(db: Path, run_id: str, plan: Any, **extra: Any) -> tuple[str, dict[str, Any]]:
    facts = plan_facts(plan)
    facts.update(
        db=str(db),
        id=run_id,
        pid=os.getpid(),
        secrets=("s3cret",),
        workflow="w",
        path=plan.workflow.path,
        args={"token": "s3cret"},
        team=None,
        version="test",
        resumed_from=None,
        started=time.time(),
    )
    facts.update(extra)
    return ("open", facts)


def _step(name: str, output: str) -> tuple[Any, ...]:
    record = {"output": output, "status": "success", "duration_ms": 3}
    sent = {"started": time.time(), "prompt": f"say {output}"}
    return ("step", name, record, None, time.time(), time.time(), sent, None)


def _rows(db: Path, run_id: str) -> dict[str, Any]:
    with Store(db) as store:
        return {row.name: row for row in store.steps(run_id)}


@pytest.mark.parametrize("kind", ["pipe", "local"])
def test_both_writers_record_the_same_rows_redacted(tmp_path: Path, kind: str) -> None:
    plan = _plan(tmp_path)
    db = tmp_path / "runs.db"
    channel = open_channel(local=kind == "local")
    assert isinstance(channel, Pipe if kind == "pipe" else Local)
    channel.send(_open(db, "run000000001", plan))
    channel.send(_step("a", "the s3cret answer"))
    channel.send(_step("b", "done"))
    channel.send(("finish", "success", None, "b", time.time()))
    assert channel.close() is None
    rows = _rows(db, "run000000001")
    assert rows["a"].output == "the *** answer"
    assert rows["a"].prompt == "say the *** answer"
    assert rows["b"].output == "done"
    assert [rows["a"].seq, rows["b"].seq] == [1, 2]
    with Store(db) as store:
        run = store.run("run000000001")
    assert run is not None
    assert run.status == "success"
    assert run.args == {"token": "***"}
    assert run.steps_ok == 2
    assert run.plan["edges"] == [["a", "b"]]
    assert run.plan["types"] == {"a": "query", "b": "shell"}
    assert b"s3cret" not in db.read_bytes()


def test_fingerprints_are_the_ones_resume_compares_with(tmp_path: Path) -> None:
    """The writer hashes definitions from the facts the run sent; --resume hashes the
    plan it compiled: the two must agree, from a file and for a plan with no file."""
    from muxlang.records.resume import fingerprints

    plan = _plan(tmp_path)
    db = tmp_path / "runs.db"
    channel = open_channel()
    channel.send(_open(db, "run000000002", plan))
    channel.send(_step("a", "x"))
    channel.send(_step("b", "y"))
    assert channel.close() is None
    expected = fingerprints(plan)
    assert {n: r.fingerprint for n, r in _rows(db, "run000000002").items()} == expected
    assert len(set(expected.values())) == 2
    # a plan whose file is gone: the definitions sent as data
    (tmp_path / "w.toml").unlink()
    channel = open_channel()
    channel.send(_open(db, "run000000003", plan))
    channel.send(_step("a", "x"))
    assert channel.close() is None
    assert _rows(db, "run000000003")["a"].fingerprint == fingerprints(plan)["a"]
    assert fingerprints(plan)["a"] != expected["a"]


KILLED = """
import os, signal, sys, time
sys.path.insert(0, {tests!r})
from pathlib import Path
from test_records_writer import _open, _plan, _step
from muxlang.records.writer import open_channel

plan = _plan(Path({root!r}))
channel = open_channel()
channel.send(_open(Path({db!r}), "run000000004", plan))
channel.send(_step("a", "kept"))
os.kill(os.getpid(), signal.SIGKILL)  # at once after the step ended: no time to write
"""


def test_a_step_in_the_pipe_outlives_a_sigkill_of_the_run(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    script = KILLED.format(tests=str(Path(__file__).parent), root=str(tmp_path), db=str(db))
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)], capture_output=True, timeout=60
    )
    assert done.returncode == -9, done.stderr
    deadline = time.monotonic() + 30  # the writer goes on after the run died
    while time.monotonic() < deadline:
        if db.exists() and "a" in _rows(db, "run000000004"):
            break
        time.sleep(0.05)
    assert _rows(db, "run000000004")["a"].output == "kept"
    with Store(db) as store:
        run = store.run("run000000004")
    assert run is not None
    assert run.status == "interrupted"  # its process is gone


def test_a_message_cut_short_is_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    plan = _plan(tmp_path)
    db = tmp_path / "runs.db"
    channel = open_channel()
    assert isinstance(channel, Pipe)
    channel.send(_open(db, "run000000005", plan))
    channel.send(_step("a", "whole"))
    os.write(channel.fd, b"\xff\x00\x00\x00\x80\x05")  # a run killed mid-write
    assert channel.close() is None
    assert channel.proc.returncode == 0
    assert set(_rows(db, "run000000005")) == {"a"}


@pytest.mark.parametrize("kind", ["pipe", "local"])
def test_a_broken_store_is_said_once_and_never_raises(tmp_path: Path, kind: str) -> None:
    plan = _plan(tmp_path)
    (tmp_path / "file").write_text("")
    channel = open_channel(local=kind == "local")
    channel.send(_open(tmp_path / "file" / "runs.db", "run000000006", plan))
    for index in range(50):
        channel.send(_step(f"s{index}", "x"))  # the writer drains what it cannot write
    said = [channel.poll() for _ in range(3)]
    said.append(channel.close())
    errors = [s for s in said if s is not None]
    assert len(errors) == 1
    assert "cannot open" in errors[0]


def test_a_writer_that_dies_never_fails_the_run_and_is_said_once(tmp_path: Path) -> None:
    import io
    import signal

    import trio

    from muxlang.records.recorder import Recorder
    from muxlang.runtime import execute
    from muxlang.runtime.events import NullReporter
    from tests.fakes.scripted import ScriptedQueryService

    plan = _plan(tmp_path)
    channel = open_channel()
    assert isinstance(channel, Pipe)
    channel.proc.send_signal(signal.SIGKILL)
    channel.proc.wait(timeout=30)
    stderr = io.StringIO()
    recorder = Recorder(
        NullReporter(), tmp_path / "runs.db", args={}, secrets=(), stderr=stderr, channel=channel
    )
    result = trio.run(
        lambda: execute(plan, args={}, query=ScriptedQueryService(default="hi"), reporter=recorder)
    )
    assert result.success
    assert stderr.getvalue().count("not being recorded") == 1
    assert recorder.run_id is None


def test_a_value_the_writer_cannot_import_is_stored_as_null(tmp_path: Path) -> None:
    """The writer runs without site-packages: the template's undefined value (its
    module needs lark) must not stop the recording."""
    from muxlang.template.values import UNDEFINED

    plan = _plan(tmp_path)
    db = tmp_path / "runs.db"
    channel = open_channel()
    assert isinstance(channel, Pipe)
    channel.send(_open(db, "run000000007", plan))
    record = {"output": "x", "status": "success", "data": UNDEFINED, "outputs": {"k": UNDEFINED}}
    channel.send(("step", "a", record, None, time.time(), time.time(), None, None))
    channel.send(_step("b", "after"))
    assert channel.close() is None
    rows = _rows(db, "run000000007")
    assert rows["a"].fields == {"data": None, "outputs": {"k": None}}
    assert rows["b"].output == "after"
