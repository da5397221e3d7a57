"""A run killed half-way through writing is recovered byte for byte."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from muxlang.apply import execute_apply, recover
from muxlang.apply.journal import journal_dir, lock_tree
from muxlang.cli import cli
from tests.apply.apply_support import make_request, snapshot

EDITS = json.dumps(
    [
        {"path": "src/app.py", "old": "return a - b", "new": "return a + b"},
        {"path": "README.md", "old": "uncommitted README work", "new": "LLM README"},
        {"path": "src/util.py", "content": "X = 2\n"},
        {"path": "newpkg/sub/mod.py", "content": "M = 1\n"},
    ]
)

#: applies EDITS in a child that SIGKILLs itself right after the N-th file write
CHILD = """
import os, signal, sys
from pathlib import Path
import trio
import muxlang.apply.journal as journal
from muxlang.apply import execute_apply
from tests.apply.apply_support import make_request

root, edits, kill_after = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])

def hook(path: str, count: int) -> None:
    if count == kill_after:
        os.kill(os.getpid(), signal.SIGKILL)

journal.AFTER_WRITE_HOOK = hook
request, _ = make_request(root, edits, verify="true")
print(trio.run(execute_apply, request))
"""


def kill_half_way(root: Path, kill_after: int) -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), EDITS, str(kill_after)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=60,
        check=False,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [1, 3])
def test_sigkill_between_writes_is_recovered_by_the_cli(repo: Path, kill_after: int) -> None:
    before = snapshot(repo)
    kill_half_way(repo, kill_after)
    assert journal_dir(repo).exists()
    assert snapshot(repo) != before  # the kill left the tree half-edited
    assert "return a + b" in (repo / "src/app.py").read_text()

    result = CliRunner().invoke(cli, ["recover", "-C", str(repo)])
    assert result.exit_code == 0, result.stderr
    assert "rolled back an interrupted apply of step 'apply'" in result.stderr
    assert "restored src/app.py" in result.stderr
    assert snapshot(repo) == before  # byte for byte, modes, no journal, no created dirs

    again = CliRunner().invoke(cli, ["recover", "-C", str(repo)])
    assert again.exit_code == 0
    assert "nothing to recover" in again.stderr


@pytest.mark.slow
async def test_next_apply_recovers_a_killed_run_first(repo: Path) -> None:
    before = snapshot(repo)
    kill_half_way(repo, 2)
    request, _ = make_request(
        repo, json.dumps({"path": "src/util.py", "old": "X = 1", "new": "X = 5"})
    )
    result = await execute_apply(request)
    assert result.success, result.error
    assert "rolled back an interrupted apply" in result.output
    after = snapshot(repo)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {"src/util.py"}
    assert (repo / "src/util.py").read_text() == "X = 5\n"


@pytest.mark.slow
def test_recover_function_returns_restored_paths(repo: Path) -> None:
    before = snapshot(repo)
    kill_half_way(repo, 4)
    restored = recover(repo)
    assert sorted(restored) == ["README.md", "newpkg/sub/mod.py", "src/app.py", "src/util.py"]
    assert snapshot(repo) == before
    assert recover(repo) == []


def test_recover_with_nothing_to_do(repo: Path) -> None:
    before = snapshot(repo)
    assert recover(repo) == []
    result = CliRunner().invoke(cli, ["recover", "-C", str(repo), "--output", "json"])
    assert result.exit_code == 0
    assert json.loads(result.stdout)["status"] == "none"
    assert snapshot(repo) == before


def test_uncommitted_journal_means_nothing_was_written(repo: Path) -> None:
    before = snapshot(repo)
    (journal_dir(repo) / "files").mkdir(parents=True)
    (journal_dir(repo) / "files" / "0.orig").write_bytes(b"partial")
    result = CliRunner().invoke(cli, ["recover", "-C", str(repo)])
    assert result.exit_code == 0
    assert "wrote nothing" in result.stderr
    assert snapshot(repo) == {**before, ".muxlang/": "dir"}  # the test made .muxlang/


def test_recover_leaves_a_live_runs_journal_alone(repo: Path) -> None:
    (journal_dir(repo) / "files").mkdir(parents=True)
    (journal_dir(repo) / "journal.json").write_text('{"version": 1, "files": [], "pid": 1}')
    lock = lock_tree(repo)
    try:
        assert recover(repo) == []
        result = CliRunner().invoke(cli, ["recover", "-C", str(repo)])
        assert result.exit_code == 1
        assert f"pid {os.getpid()}" in result.stderr
        assert (journal_dir(repo) / "journal.json").exists()
    finally:
        lock.release()


def test_damaged_journal_is_reported_not_guessed(repo: Path) -> None:
    journal_dir(repo).mkdir(parents=True)
    (journal_dir(repo) / "journal.json").write_text("{not json")
    result = CliRunner().invoke(cli, ["recover", "-C", str(repo)])
    assert result.exit_code == 1
    assert "is damaged" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert (journal_dir(repo) / "journal.json").exists()


def _crash_after_apply(root: Path) -> None:
    """Apply a modify and a create, then "die" holding the journal (no rollback)."""
    from muxlang.apply import FileChange
    from muxlang.apply.journal import apply_changes

    app = root / "src/app.py"
    before = app.read_bytes()
    changes = (
        FileChange("src/app.py", before, before + b"# LLM\n", app.stat().st_mode & 0o777),
        FileChange("new/dir/c.py", None, b"C = 1\n", None),
    )
    lock = lock_tree(root)
    apply_changes(root, changes, "apply", lock)
    os.close(lock.fd)  # the process died: journal and lock file stay behind


def test_recover_says_removed_for_a_file_the_apply_created(repo: Path) -> None:
    before = snapshot(repo)
    _crash_after_apply(repo)
    assert (repo / "new/dir/c.py").exists()
    result = CliRunner().invoke(cli, ["recover", "-C", str(repo)])
    assert result.exit_code == 0, result.stderr
    assert "  restored src/app.py" in result.stderr
    assert "  removed new/dir/c.py" in result.stderr
    assert "restored new/dir/c.py" not in result.stderr
    assert snapshot(repo) == before


def test_recover_json_lists_removed_files_apart(repo: Path) -> None:
    _crash_after_apply(repo)
    result = CliRunner().invoke(cli, ["recover", "-C", str(repo), "--output", "json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "restored"
    assert document["restored"] == ["src/app.py"]
    assert document["removed"] == ["new/dir/c.py"]
