"""Work is never lost: an apply killed at any point, two runs on one tree, a full disk.

The tree is hashed before and after. Whatever happens, once the next run (or
``muxlang recover``) has looked at the tree it is byte for byte either as it was
before the apply or as the completed apply left it — never half of each — and
no temp file or journal is left behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rel_support import (
    answered_apply_workflow,
    apply_canned,
    canned_apply_plan,
    muxlang_argv,
    run_muxlang,
    stray_files,
    subprocess_env,
    tree_hash,
)

FILES = 40
SIZE = 30_000


def make_tree(root: Path) -> None:
    (root / ".git").mkdir(parents=True)
    (root / "src" / "deep").mkdir(parents=True)
    for i in range(FILES):
        folder = root / "src" / ("deep" if i % 3 == 0 else "")
        path = folder / f"f{i:03d}.txt"
        path.write_bytes((f"original {i}\n" * (SIZE // 12)).encode())
        if i % 7 == 0:
            path.chmod(0o750)
    (root / "keep.txt").write_text("never touched\n")


def edits() -> str:
    """Whole-file rewrites of every file, two new files, one deletion (via a diff-free form)."""
    out: list[dict[str, Any]] = []
    for i in range(FILES):
        folder = "src/deep/" if i % 3 == 0 else "src/"
        out.append({"path": f"{folder}f{i:03d}.txt", "content": f"edited {i}\n" * (SIZE // 10)})
    out.append({"path": "src/new/created.txt", "content": "brand new\n"})
    out.append({"path": "added.txt", "content": "added\n"})
    return json.dumps({"edits": out})


def workflow(root: Path, verify: str | None = None) -> Path:
    answer = root.parent / f"{root.name}-answer.json"
    return answered_apply_workflow(root / "apply.toml", answer, edits(), verify)


def noop_workflow(root: Path) -> Path:
    """``root/noop.toml``: one shell step that does nothing (a run only for its start-up
    recovery)."""
    noop = root / "noop.toml"
    noop.write_text('[[steps]]\nname = "noop"\ntype = "shell"\nrun = "true"\n')
    return noop


def snapshot(root: Path) -> dict[str, str]:
    return tree_hash(root, skip=(".muxlang", ".git", "apply.toml", "noop.toml", "wf.toml"))


@contextlib.contextmanager
def background_run(root: Path, home: Path, wf: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``muxlang run WF --output json`` started in the background; killed (and
    reaped) if it is still alive when the block ends."""
    proc = subprocess.Popen(
        muxlang_argv("-C", str(root), "run", str(wf), "--output", "json"),
        cwd=root,
        env=subprocess_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_for_journal(root: Path, proc: subprocess.Popen[bytes], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (root / ".muxlang").exists() or proc.poll() is not None:
            return proc.poll() is None
        time.sleep(0.002)
    raise AssertionError("the apply never started")


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path, dict[str, str], dict[str, str]]:
    """A project tree, a HOME, and the hashes before and after a complete apply."""
    home = tmp_path / "home"
    home.mkdir()
    ref = tmp_path / "ref"
    make_tree(ref)
    wf = workflow(ref)
    before = snapshot(ref)
    done = run_muxlang(
        ref, "run", str(wf), "--output", "json", env=subprocess_env(home), timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    after = snapshot(ref)
    assert after != before
    return ref, home, before, after


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM])
def test_apply_killed_at_random_points_is_restored(
    tmp_path: Path, trees: tuple[Path, Path, dict[str, str], dict[str, str]], sig: int
) -> None:
    _ref, home, before, after = trees
    rng = random.Random(int(sig) * 7919)
    outcomes: list[str] = []
    for attempt in range(4):
        root = tmp_path / f"t{attempt}"
        make_tree(root)
        wf = workflow(root, verify="sleep 0.3")
        assert snapshot(root) == before
        with background_run(root, home, wf) as proc:
            running = wait_for_journal(root, proc)
            if running:
                time.sleep(rng.uniform(0, 1.2))
                proc.send_signal(sig)
            _out, err = proc.communicate(timeout=60)
        code = proc.returncode
        if sig != signal.SIGKILL and code in (130, 143) and b"stopping running steps" in err:
            # a stop during the run rolls back by itself: nothing left to recover
            # (a signal after the run finished, while printing, interrupts nothing)
            assert snapshot(root) == before, err.decode()
            # nothing of the apply is left: .muxlang/ holds at most the run's records
            state = root / ".muxlang"
            left = {p.name for p in state.iterdir()} if state.exists() else set()
            assert left <= {"runs.db", "runs.db-wal", "runs.db-shm", ".gitignore"}, left
            outcomes.append("rolled back by the run")
        # the next run, or `muxlang recover`, restores whatever is left
        if attempt % 2:
            rec = run_muxlang(root, "recover", env=subprocess_env(home))
            assert rec.returncode == 0, rec.stderr.decode()
        else:
            noop = noop_workflow(root)
            rec = run_muxlang(root, "run", str(noop), env=subprocess_env(home))
            assert rec.returncode == 0, rec.stderr.decode()
        state = snapshot(root)
        assert state in (before, after), f"half-applied tree after {sig!r} (exit {code})"
        # `after` with a non-zero exit: the kill came after verify passed (the
        # commit point: the journal was being removed), so the edits stand
        outcomes.append("restored" if state == before else "completed")
        assert stray_files(root) == [], stray_files(root)
        assert not (root / ".muxlang" / "journal").exists()
    assert "restored" in outcomes or "rolled back by the run" in outcomes, outcomes
    assert list((home / "tmp").iterdir()) == []  # nothing left in TMPDIR either


def test_two_runs_on_one_tree_the_second_is_refused_clearly(
    tmp_path: Path, trees: tuple[Path, Path, dict[str, str], dict[str, str]]
) -> None:
    _ref, home, _before, after = trees
    root = tmp_path / "shared"
    make_tree(root)
    wf = workflow(root, verify="sleep 5")
    with background_run(root, home, wf) as first:
        assert wait_for_journal(root, first)
        time.sleep(0.3)  # the first run is now in its verify, holding the lock
        second = run_muxlang(root, "run", str(wf), "--output", "json", env=subprocess_env(home))
        _out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err.decode()
    assert second.returncode == 1
    report = json.loads(second.stdout)
    error = report["steps"]["write"]["error"]
    assert "lock" in error
    assert "another" in error.lower() or "pid" in error.lower() or "running" in error.lower()
    assert "Traceback" not in second.stderr.decode()
    assert snapshot(root) == after  # the first run's edits, whole; no corruption
    assert stray_files(root) == []


def test_full_disk_mid_apply_restores_the_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 10th file write fails with ENOSPC: every earlier write is rolled back."""
    root = tmp_path / "p"
    make_tree(root)
    before = snapshot(root)
    plan = canned_apply_plan(root)

    real_replace = os.replace
    calls = {"n": 0}

    def failing_replace(src: Any, dst: Any, **kw: Any) -> None:
        if str(src).endswith(".muxtmp"):
            calls["n"] += 1
            if calls["n"] == 10:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(dst))
        real_replace(src, dst, **kw)

    monkeypatch.setattr(os, "replace", failing_replace)
    result = apply_canned(plan, edits())
    step = result.steps["write"]
    assert step["status"] == "failed"
    assert "No space left on device" in step["error"]
    assert "rolled back" in step["error"]
    assert snapshot(root) == before
    assert stray_files(root) == []
    assert not (root / ".muxlang" / "journal").exists()


def test_full_disk_while_journaling_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The journal itself cannot be written: no project file is touched."""
    root = tmp_path / "p"
    make_tree(root)
    before = snapshot(root)
    plan = canned_apply_plan(root)
    import builtins

    real_open = builtins.open

    def failing_open(file: Any, mode: str = "r", *args: Any, **kw: Any) -> Any:
        if ".muxlang" in str(file) and ("w" in mode or "a" in mode or "x" in mode):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(file))
        return real_open(file, mode, *args, **kw)

    monkeypatch.setattr(builtins, "open", failing_open)
    real_write = os.write

    def failing_write(fd: int, data: Any) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if ".muxlang" in target:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", failing_write)
    result = apply_canned(plan, edits())
    monkeypatch.undo()
    step = result.steps["write"]
    assert step["status"] == "failed"
    assert "No space left on device" in step["error"], step["error"]
    assert snapshot(root) == before
    assert stray_files(root) == []


def test_sigkill_leaves_no_temp_file_after_recover(tmp_path: Path) -> None:
    """A temp file left by a write that a SIGKILL cut short is removed by recovery."""
    from muxlang.apply import recover
    from muxlang.apply.changes import plan_changes
    from muxlang.apply.edits import parse_edits
    from muxlang.apply.journal import lock_tree, write_journal

    root = tmp_path / "p"
    make_tree(root)
    before = snapshot(root)
    real = Path(os.path.realpath(root))
    changes = plan_changes(real, parse_edits(edits()))
    lock = lock_tree(real)
    write_journal(real, changes, "write", lock.created_state_dir)
    # what a SIGKILL between mkstemp and rename leaves: a temp file next to the target
    # (and an earlier file written whole: rollback puts back what still holds its edit)
    (real / "src" / ".f001.txt.abc123.muxtmp").write_bytes(b"half")
    (edited,) = [c.after for c in changes if c.path == "src/f001.txt"]
    assert edited is not None
    (real / "src" / "f001.txt").write_bytes(edited)
    lock.release()
    recover(real)
    assert snapshot(root) == before
    assert stray_files(root) == []


def test_workflow_timeout_during_verify_rolls_back(tmp_path: Path) -> None:
    """The run's own `timeout` fires while verify runs: the edits are rolled back,
    the verify process group is gone, the report says why."""
    from rel_support import marker, processes_with

    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "p"
    make_tree(root)
    before = snapshot(root)
    mark = marker()
    wf = workflow(root, verify=f"sleep 30; : {mark}")
    text = wf.read_text()
    wf.write_text("timeout = 2\n" + text)
    done = run_muxlang(
        root, "run", str(wf), "--output", "json", env=subprocess_env(home, MUXLANG_KILL_GRACE="1")
    )
    assert done.returncode == 1, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["success"] is False
    assert report["steps"]["write"]["status"] == "failed"
    assert "timed out" in (report["steps"]["write"]["error"] or "") + (report["error"] or "")
    assert snapshot(root) == before
    assert stray_files(root) == []
    assert not (root / ".muxlang" / "journal").exists()
    assert processes_with(mark) == []


def test_recover_never_touches_a_live_run(
    tmp_path: Path, trees: tuple[Path, Path, dict[str, str], dict[str, str]]
) -> None:
    """`muxlang recover` (and another `run`'s start-up recovery) while a run is in its
    verify: the live run's journal is left alone, and the run completes."""
    _ref, home, _before, after = trees
    root = tmp_path / "live"
    make_tree(root)
    wf = workflow(root, verify="sleep 5")
    noop = noop_workflow(root)
    with background_run(root, home, wf) as first:
        assert wait_for_journal(root, first)
        time.sleep(0.5)
        rec = run_muxlang(root, "recover", env=subprocess_env(home))
        other = run_muxlang(root, "run", str(noop), env=subprocess_env(home))
        _out, err = first.communicate(timeout=60)
    assert b"Traceback" not in rec.stderr + other.stderr
    assert b"rolled back" not in rec.stdout + rec.stderr + other.stderr
    assert other.returncode == 0, other.stderr.decode()
    assert first.returncode == 0, err.decode()
    assert snapshot(root) == after
    assert stray_files(root) == []
