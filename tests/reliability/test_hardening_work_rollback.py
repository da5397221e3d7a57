"""Rollback and recovery never undo what the user did after muxlang wrote a file.

Issue 14, items 1-3 and 17a: a rollback restores a file only while it still holds
exactly the bytes muxlang wrote (the journal keeps their SHA-256); a file changed
since keeps the user's version, muxlang's copy of the original goes beside it as
``FILE.muxlang-backup``, and stderr says so; a directory the apply created stays
when it holds anything the apply did not write. The journal is invalidated before
its backups go, backups keep the original's permissions, and no empty
``.muxlang/`` is left behind by a kill or a race.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from rel_support import (
    answered_apply_workflow,
    kill_all,
    marker,
    muxlang_argv,
    run_muxlang,
    subprocess_env,
)

REPO = Path(__file__).resolve().parents[2]

ORIGINAL_APP = "def add(a, b):\n    return a - b\n"
WRITTEN_APP = "def add(a, b):\n    return a + b\n"
USER_APP = "def add(a, b):\n    return a + b  # reviewed by me\n"


def git(root: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
    done = subprocess.run(
        ["git", *args], cwd=root, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def make_project(tmp_path: Path) -> tuple[Path, Path]:
    """A git repo with app.py, README.md and a 0600 secrets file; and a HOME."""
    root = tmp_path / "p"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "src").mkdir()
    (root / "src" / "app.py").write_text(ORIGINAL_APP)
    (root / "README.md").write_text("# demo\n")
    (root / "secret.env").write_text("TOKEN=1\n")
    (root / "secret.env").chmod(0o600)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    home = tmp_path / "home"
    home.mkdir()
    return root, home


EDITS = [
    {"path": "src/app.py", "old": "return a - b", "new": "return a + b"},
    {"path": "README.md", "content": "# demo, by the LLM\n"},
    {"path": "secret.env", "content": "TOKEN=2\n"},
    {"path": "newdir/made.py", "content": "MADE = 1\n"},
]


def apply_workflow(root: Path, verify: str, *, rollback_on_failure: bool = True) -> Path:
    return answered_apply_workflow(
        root.parent / "apply.toml",
        root.parent / "answer.json",
        json.dumps({"edits": EDITS}),
        verify,
        rollback_on_failure=rollback_on_failure,
    )


def noop_workflow(root: Path) -> Path:
    wf = root.parent / "noop.toml"
    wf.write_text('[[steps]]\nname = "noop"\ntype = "shell"\nrun = "true"\n')
    return wf


def wait_for(path: Path, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"muxlang ended early: {proc.communicate()[1].decode()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.02)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[tuple[Path, Path, str]]:
    """(ready, go, mark): a verify that says it is running, then waits to be let go."""
    mark = marker()
    try:
        yield tmp_path / "ready", tmp_path / "go", mark
    finally:
        kill_all(mark)


def gated_verify(ready: Path, go: Path, mark: str, status: int) -> str:
    return f"touch {ready}; while [ ! -e {go} ]; do sleep 0.02; done; : {mark}; exit {status}"


def start(root: Path, home: Path, wf: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        muxlang_argv("-C", str(root), "run", str(wf), "--output", "json"),
        cwd=root,
        env=subprocess_env(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def kill_during_verify(
    root: Path, home: Path, gate: tuple[Path, Path, str]
) -> subprocess.Popen[bytes]:
    """Run the apply and SIGKILL muxlang while its verify runs (the edits are written)."""
    ready, _go, mark = gate
    proc = start(root, home, apply_workflow(root, gated_verify(*gate, 0)))
    try:
        wait_for(ready, proc)
        assert (root / "src" / "app.py").read_text() == WRITTEN_APP
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    kill_all(mark)  # the orphaned verify (a SIGKILL gives muxlang no chance to stop it)
    assert (root / ".muxlang" / "journal" / "journal.json").exists()
    return proc


@pytest.mark.slow
def test_recovery_keeps_a_file_the_user_edited_after_a_kill(
    tmp_path: Path, gate: tuple[Path, Path, str]
) -> None:
    """Killed during verify; the user edits the applied file and adds a file in the
    directory the apply created; the next unrelated `muxlang run` keeps both."""
    root, home = make_project(tmp_path)
    kill_during_verify(root, home, gate)
    (root / "src" / "app.py").write_text(USER_APP)
    (root / "newdir" / "mine.txt").write_text("the user's own file\n")

    done = run_muxlang(root, "run", str(noop_workflow(root)), env=subprocess_env(home))
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert (root / "src" / "app.py").read_text() == USER_APP  # the user's edit stands
    backup = root / "src" / "app.py.muxlang-backup"
    assert backup.read_text() == ORIGINAL_APP  # and the original is beside it
    assert "kept src/app.py" in err, err
    assert "src/app.py.muxlang-backup" in err
    # files nobody touched since are put back; the created file is removed ...
    assert (root / "README.md").read_text() == "# demo\n"
    assert (root / "secret.env").read_text() == "TOKEN=1\n"
    assert stat.S_IMODE((root / "secret.env").stat().st_mode) == 0o600
    assert not (root / "newdir" / "made.py").exists()
    # ... but not the directory holding the user's file
    assert (root / "newdir" / "mine.txt").read_text() == "the user's own file\n"
    assert "kept directory newdir/" in err, err
    assert "Traceback" not in err
    assert not (root / ".muxlang" / "journal").exists()
    # nothing is left to recover, and a second look changes nothing
    again = run_muxlang(root, "recover", env=subprocess_env(home))
    assert again.returncode == 0
    assert "nothing to recover" in again.stderr.decode()
    assert (root / "src" / "app.py").read_text() == USER_APP


@pytest.mark.slow
def test_recovery_after_a_branch_checkout_keeps_the_branch(
    tmp_path: Path, gate: tuple[Path, Path, str]
) -> None:
    """Killed during verify; the user checks out another branch (discarding the
    edits); `muxlang recover` must not overwrite that branch's files."""
    root, home = make_project(tmp_path)
    git(root, "checkout", "-q", "-b", "feature")
    feature_app = "def add(a, b):\n    return sum((a, b))\n"
    (root / "src" / "app.py").write_text(feature_app)
    git(root, "commit", "-q", "-am", "feature")
    git(root, "checkout", "-q", "main")

    kill_during_verify(root, home, gate)
    git(root, "checkout", "-q", "-f", "feature")
    assert (root / "src" / "app.py").read_text() == feature_app

    done = run_muxlang(root, "recover", "--output", "json", env=subprocess_env(home))
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert (root / "src" / "app.py").read_text() == feature_app
    assert (root / "src" / "app.py.muxlang-backup").read_text() == ORIGINAL_APP
    assert any(line.startswith("kept src/app.py") for line in report["kept"]), report
    assert "src/app.py" not in report["restored"]
    # the created file still held muxlang's bytes: removed, and its directory with it
    assert report["removed"] == ["newdir/made.py"]
    assert not (root / "newdir").exists()
    status = git(root, "status", "--porcelain").splitlines()
    # secret.env: the checkout gave back its bytes (with git's mode): simply put back
    assert [line for line in status if ".muxlang/" not in line] == ["?? src/app.py.muxlang-backup"]
    assert stat.S_IMODE((root / "secret.env").stat().st_mode) == 0o600


@pytest.mark.slow
def test_a_file_saved_during_a_failing_verify_is_not_rolled_back(
    tmp_path: Path, gate: tuple[Path, Path, str]
) -> None:
    """rollback_on_failure: the user saves the applied file while verify runs and
    verify then fails; the rollback keeps the saved file and says so."""
    root, home = make_project(tmp_path)
    ready, go, mark = gate
    proc = start(root, home, apply_workflow(root, gated_verify(ready, go, mark, 1)))
    try:
        wait_for(ready, proc)
        (root / "src" / "app.py").write_text(USER_APP)
        (root / "newdir" / "notes.md").write_text("saved while verify ran\n")
        go.touch()
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err.decode()
    step = json.loads(out)["steps"]["write"]
    assert step["status"] == "failed"
    assert "kept src/app.py" in step["error"], step["error"]
    assert "kept src/app.py" in err.decode()
    assert (root / "src" / "app.py").read_text() == USER_APP
    assert (root / "src" / "app.py.muxlang-backup").read_text() == ORIGINAL_APP
    assert (root / "README.md").read_text() == "# demo\n"
    assert (root / "newdir" / "notes.md").exists()
    assert not (root / "newdir" / "made.py").exists()
    assert not (root / ".muxlang" / "journal").exists()


@pytest.mark.slow
def test_backups_keep_the_originals_permissions(
    tmp_path: Path, gate: tuple[Path, Path, str]
) -> None:
    """While the apply runs, its copy of a 0600 file is 0600 (and the journal 0700);
    so is the backup a rollback leaves beside a file the user changed."""
    root, home = make_project(tmp_path)
    ready, go, mark = gate
    proc = start(root, home, apply_workflow(root, gated_verify(ready, go, mark, 1)))
    try:
        wait_for(ready, proc)
        journal = root / ".muxlang" / "journal"
        document = json.loads((journal / "journal.json").read_text())
        (entry,) = [e for e in document["files"] if e["path"] == "secret.env"]
        copy = journal / "files" / entry["backup"]
        assert copy.read_text() == "TOKEN=1\n"
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
        assert stat.S_IMODE(journal.stat().st_mode) == 0o700
        assert stat.S_IMODE((journal / "journal.json").stat().st_mode) == 0o600
        (root / "secret.env").write_text("TOKEN=mine\n")  # the user's save: kept
        go.touch()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1
    backup = root / "secret.env.muxlang-backup"
    assert backup.read_text() == "TOKEN=1\n"
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600
    assert (root / "secret.env").read_text() == "TOKEN=mine\n"


#: a child that applies edits (argv[2], JSON) to argv[1] with verify, after a patch
#: (python code, between the two halves) made an os function SIGKILL the child
CHILD_HEAD = """
import os, signal, sys
from pathlib import Path
import trio
from muxlang.apply import execute_apply
from tests.apply.apply_support import make_request

root, edits = Path(sys.argv[1]), sys.argv[2]
"""
CHILD_TAIL = """
request, _ = make_request(root, edits, verify="true")
print(trio.run(execute_apply, request))
"""


def killed_child(script: str, *args: str) -> None:
    """Run the python ``script`` with ``args`` in a child: it must die of a SIGKILL."""
    child = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr


def killed_apply(root: Path, edits: list[dict[str, str]], patch: str) -> None:
    """Run the apply child with ``patch``: it must die of its SIGKILL."""
    killed_child(CHILD_HEAD + patch + CHILD_TAIL, str(root), json.dumps(edits))


#: os.unlink SIGKILLs the process right after it removed the first backup of the
#: finished apply's journal
KILL_WHILE_REMOVING = """
real_unlink = os.unlink

def unlink(path, *args, **kwargs):
    real_unlink(path, *args, **kwargs)
    if str(path).endswith(".orig"):
        os.kill(os.getpid(), signal.SIGKILL)

os.unlink = unlink
"""


@pytest.mark.slow
def test_a_kill_while_the_journal_is_removed_keeps_the_finished_apply(tmp_path: Path) -> None:
    root, home = make_project(tmp_path)
    edits = [e for e in EDITS if e["path"] != "newdir/made.py"]
    killed_apply(root, edits, KILL_WHILE_REMOVING)
    done = run_muxlang(root, "recover", "--output", "json", env=subprocess_env(home))
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["status"] == "none"
    # verify had passed: the apply is complete, all of it
    assert (root / "src" / "app.py").read_text() == WRITTEN_APP
    assert (root / "README.md").read_text() == "# demo, by the LLM\n"
    assert (root / "secret.env").read_text() == "TOKEN=2\n"
    assert not (root / ".muxlang").exists()


#: the child SIGKILLs itself at the journal's first fsync
KILL_WHILE_JOURNALING = """
real_fsync = os.fsync

def fsync(fd):
    if os.readlink(f"/proc/self/fd/{fd}").endswith(".orig"):
        os.kill(os.getpid(), signal.SIGKILL)
    real_fsync(fd)

os.fsync = fsync
"""


@pytest.mark.slow
def test_no_empty_state_directory_after_a_kill_while_journaling(tmp_path: Path) -> None:
    root, home = make_project(tmp_path)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}
    killed_apply(root, EDITS, KILL_WHILE_JOURNALING)
    assert (root / ".muxlang" / "journal").exists()
    done = run_muxlang(root, "recover", env=subprocess_env(home))
    assert done.returncode == 0, done.stderr.decode()
    assert "wrote nothing" in done.stderr.decode()
    assert not (root / ".muxlang").exists()
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and ".git" not in p.parts}
    assert after == before


RACE = """
import sys
from pathlib import Path
from muxlang.apply.errors import LockedError
from muxlang.apply.journal import lock_tree

root = Path(sys.argv[1])
taken = 0
for _ in range(300):
    try:
        lock = lock_tree(root)
    except LockedError:
        continue
    taken += 1
    lock.release()
print(taken)
"""


@pytest.mark.slow
def test_two_runs_racing_to_create_the_state_directory_leave_none(tmp_path: Path) -> None:
    root, _home = make_project(tmp_path)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, str(root)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [racer.communicate(timeout=120) for racer in racers]
    for racer, (out, err) in zip(racers, results, strict=True):
        assert racer.returncode == 0, err  # both work: each takes the lock, no error
        assert int(out) > 0
    assert not (root / ".muxlang").exists()


def test_a_state_directory_the_user_made_stays(tmp_path: Path) -> None:
    from muxlang.apply.journal import lock_tree

    root, _home = make_project(tmp_path)
    (root / ".muxlang").mkdir()
    lock_tree(root).release()
    assert (root / ".muxlang").is_dir()
    assert os.listdir(root / ".muxlang") == []


#: takes the apply lock (creating .muxlang/) and dies before journaling anything
KILL_AFTER_LOCKING = """
import os, signal, sys
from pathlib import Path
from muxlang.apply.journal import lock_tree

lock_tree(Path(sys.argv[1]))
os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.slow
def test_no_empty_state_directory_after_a_kill_right_after_locking(tmp_path: Path) -> None:
    """Killed holding the lock, before any journal: the next run's start-up recovery
    takes the dead lock over and leaves no `.muxlang/` behind."""
    root, home = make_project(tmp_path)
    killed_child(KILL_AFTER_LOCKING, str(root))
    assert sorted(os.listdir(root / ".muxlang")) == [".made-by-muxlang", "apply.lock"]
    done = run_muxlang(root, "recover", env=subprocess_env(home))
    assert done.returncode == 0, done.stderr.decode()
    assert not (root / ".muxlang").exists()
