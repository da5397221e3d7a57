"""The run store's own contract: ids, compression, liveness, lookup, pruning."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from muxlang.records.store import (
    StepRow,
    Store,
    StoreError,
    new_id,
    pack,
    process_alive,
    process_token,
    unpack,
)


def test_ids_are_short_sortable_and_unique() -> None:
    ids = [new_id(1_800_000_000 + i / 1000) for i in range(2000)]
    assert all(len(i) == 12 for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    same_ms = {new_id(1_800_000_000.0) for _ in range(200)}
    assert len(same_ms) > 150  # three random characters tell them apart


def test_long_texts_are_compressed_and_come_back_whole() -> None:
    short = "x" * 100
    assert pack(short) == short
    long = "".join(f"line {i}\n" for i in range(100_000))
    packed = pack(long)
    assert isinstance(packed, bytes)
    assert len(packed) < len(long) / 4
    assert unpack(packed) == long
    assert unpack(None) is None


def test_a_dead_process_or_a_reused_pid_is_not_alive() -> None:
    assert process_alive(os.getpid(), process_token(os.getpid()))
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert not process_alive(int(done.stdout), None)
    assert not process_alive(os.getpid(), "not-my-start-time")
    assert not process_alive(None, None)


def test_run_lookup_by_prefix_last_and_ambiguity(tmp_path: Path) -> None:
    with Store(tmp_path / "runs.db") as store:
        a = store.start_run(workflow="w", started=1_800_000_000.0)
        b = store.start_run(workflow="w", started=1_800_000_000.0)
        store.finish_run(a, status="success")
        store.finish_run(b, status="failed")
        last = store.run("last")
        assert last is not None
        assert last.id == max(a, b)
        assert store.run(a) is not None
        assert store.run("zzzz") is None
        common = next(a[:n] for n in range(len(a), 0, -1) if b.startswith(a[:n]))
        with pytest.raises(LookupError, match="ambiguous"):
            store.run(common)
        found = store.latest("w", ("failed",))
        assert found is not None
        assert found.id == b


def test_prune_never_deletes_a_run_in_progress(tmp_path: Path) -> None:
    with Store(tmp_path / "runs.db") as store:
        running = store.start_run(workflow="w", started=1_000.0)  # this process: alive
        done = store.start_run(workflow="w", started=2_000.0)
        store.save_steps(done, [StepRow(name="s", status="success", output="x")])
        store.finish_run(done, status="success", ended=2_001.0)
        assert store.prune(keep=0) == 1
        assert [r.id for r in store.runs()] == [running]
        assert store.steps(done) == []


def test_totals_of_a_finished_and_of_an_unfinished_run(tmp_path: Path) -> None:
    with Store(tmp_path / "runs.db") as store:
        run = store.start_run(workflow="w")
        store.save_steps(
            run,
            [
                StepRow(name="a", status="success", input_tokens=10, output_tokens=5, cost=0.5),
                StepRow(name="b", status="failed"),
                StepRow(name="c", status="skipped"),
                StepRow(name="c", item=0, status="success", input_tokens=99),
            ],
        )
        for found in (store.run(run), None):
            if found is None:
                store.finish_run(run, status="failed")
                found = store.run(run)
            assert found is not None
            assert (found.steps_ok, found.steps_failed, found.steps_skipped) == (1, 1, 1)
            assert (found.input_tokens, found.output_tokens, found.cost) == (10, 5, 0.5)


def test_a_database_from_a_newer_muxlang_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="newer muxlang"):
        Store(path)
