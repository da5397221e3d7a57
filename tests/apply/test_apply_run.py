"""execute_apply on real git repositories with the user's uncommitted work."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from muxlang.apply import DEFAULT_RETRY_TEMPLATE, execute_apply
from muxlang.apply.journal import journal_dir, lock_tree
from muxlang.llm import BackendError, ErrorKind
from tests.apply.apply_support import make_request, snapshot

FIX = json.dumps({"path": "src/app.py", "old": "return a - b", "new": "return a + b"})
BROKEN = json.dumps({"path": "src/app.py", "old": "return a - b", "new": "return a * b"})
#: passes only when add() adds
VERIFY = (
    'out="$(python3 src/app.py)"; test "$out" = 3 || { echo "add(1, 2) printed $out"; exit 1; }'
)


async def test_edits_applied_and_verified_keep_the_users_work(repo: Path) -> None:
    before = snapshot(repo)
    request, query = make_request(repo, FIX, verify=VERIFY)
    result = await execute_apply(request)
    assert result.success, result.error
    assert result.files == ("src/app.py",)
    assert result.attempts == 1
    assert "modified: src/app.py" in result.output
    assert "-    return a - b\n+    return a + b" in result.diff
    app = (repo / "src/app.py").read_text()
    assert "return a + b" in app
    assert "# user's uncommitted note" in app  # uncommitted work in the same file kept
    after = snapshot(repo)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed == {"src/app.py"}  # nothing else touched, no journal or lock left
    assert query.calls == []


async def test_verify_failure_then_corrected_answer_ends_green(repo: Path) -> None:
    request, query = make_request(repo, BROKEN, verify=VERIFY, answers=[FIX], verify_retries=2)
    result = await execute_apply(request)
    assert result.success, result.error
    assert result.attempts == 2
    assert "return a + b" in (repo / "src/app.py").read_text()
    assert "return a * b" not in (repo / "src/app.py").read_text()
    # the source was asked again: same target and kind, system kept, prompt = original + output
    ((target, asked, kind),) = query.calls
    assert (target, kind) == ("fixer", "role")
    assert asked.system == "You fix code."
    prompt = asked.messages[-1].content
    assert prompt.startswith("Fix the bug in src/app.py")
    assert "add(1, 2) printed 2" in prompt
    assert "exited with status 1" in prompt
    head, tail = DEFAULT_RETRY_TEMPLATE.split("{error}")
    assert prompt.startswith(head.format(original="Fix the bug in src/app.py"))
    assert prompt.endswith(tail)


async def test_custom_retry_prompt_sees_original_and_error(repo: Path) -> None:
    seen: list[tuple[str, str]] = []

    def render(original: str, error: str) -> str:
        seen.append((original, error))
        return f"RETRY: {original} / {error}"

    request, query = make_request(
        repo, BROKEN, verify=VERIFY, answers=[FIX], verify_retries=1, render=render
    )
    assert (await execute_apply(request)).success
    ((original, error),) = seen
    assert original == "Fix the bug in src/app.py"
    assert "add(1, 2) printed 2" in error
    assert query.calls[0][1].messages[-1].content.startswith("RETRY: Fix the bug")


async def test_out_of_retries_restores_the_tree_byte_for_byte(repo: Path) -> None:
    before = snapshot(repo)
    wrong_again = json.dumps(
        [
            {"path": "src/app.py", "old": "return a - b", "new": "return a - b - 0"},
            {"path": "src/new_dir/deep/helper.py", "content": "H = 1\n"},
            {"path": "run.sh", "old": "echo hi", "new": "echo bye"},
        ]
    )
    request, query = make_request(
        repo, BROKEN, verify=VERIFY, answers=[wrong_again, BROKEN], verify_retries=2
    )
    result = await execute_apply(request)
    assert not result.success
    assert result.attempts == 3
    assert len(query.calls) == 2
    assert "add(1, 2) printed 2" in (result.error or "")
    assert "add(1, 2) printed 2" in result.verify_output
    assert "no file was changed" in result.output
    assert result.files == ()
    assert snapshot(repo) == before  # modes, untracked files, created dirs all as before


async def test_rollback_on_failure_false_keeps_the_last_edits(repo: Path) -> None:
    request, _ = make_request(repo, BROKEN, verify=VERIFY, rollback_on_failure=False)
    result = await execute_apply(request)
    assert not result.success
    assert result.files == ("src/app.py",)
    assert "return a * b" in (repo / "src/app.py").read_text()
    assert not journal_dir(repo).exists()
    assert not (repo / ".muxlang").exists()


async def test_bad_edits_fail_with_the_reason_and_write_nothing(repo: Path) -> None:
    before = snapshot(repo)
    bad = json.dumps(
        [
            {"path": "src/util.py", "old": "X = 1", "new": "X = 2"},
            {"path": "src/app.py", "old": "not there", "new": "x"},
        ]
    )
    request, _ = make_request(repo, bad)
    result = await execute_apply(request)
    assert not result.success
    assert 'edit 2 (src/app.py): "old" does not occur' in (result.error or "")
    assert snapshot(repo) == before


async def test_bad_edits_are_re_asked_when_retries_remain(repo: Path) -> None:
    request, query = make_request(
        repo, "I can't do that", verify=VERIFY, answers=[FIX], verify_retries=1
    )
    result = await execute_apply(request)
    assert result.success, result.error
    assert "no edits found" in query.calls[0][1].messages[-1].content


async def test_backend_error_on_re_ask_fails_with_tree_restored(repo: Path) -> None:
    before = snapshot(repo)
    request, _ = make_request(
        repo,
        BROKEN,
        verify=VERIFY,
        answers=[BackendError("fixer", ErrorKind.SERVER, "HTTP 503: overloaded")],
        verify_retries=1,
    )
    result = await execute_apply(request)
    assert not result.success
    assert "HTTP 503: overloaded" in (result.error or "")
    assert snapshot(repo) == before


async def test_dry_run_writes_nothing_and_returns_the_diff(repo: Path) -> None:
    before = snapshot(repo)
    request, _ = make_request(repo, FIX, verify="touch verify-ran", dry_run=True)
    result = await execute_apply(request)
    assert result.success
    assert "+    return a + b" in result.diff
    assert "would be modified: src/app.py" in result.output
    assert snapshot(repo) == before


async def test_no_verify_command_just_applies(repo: Path) -> None:
    request, _ = make_request(repo, FIX)
    result = await execute_apply(request)
    assert result.success
    assert result.verify_output == ""
    assert "return a + b" in (repo / "src/app.py").read_text()


async def test_verify_runs_in_the_root_with_the_requests_env(repo: Path, tmp_path: Path) -> None:
    out = tmp_path / "env.txt"
    env = {**os.environ, "FROM_STEP": "hello"}
    request, _ = make_request(
        repo, FIX, verify=f'pwd > "{out}"; echo "$FROM_STEP" >> "{out}"', env=env
    )
    assert (await execute_apply(request)).success
    assert out.read_text().split("\n")[:2] == [str(repo.resolve()), "hello"]


async def test_cancellation_during_verify_rolls_back(repo: Path, tmp_path: Path) -> None:
    before = snapshot(repo)
    seen = tmp_path / "seen.py"
    request, _ = make_request(repo, FIX, verify=f'cp src/app.py "{seen}"; exec sleep 30')
    with trio.CancelScope() as scope:
        async with trio.open_nursery() as nursery:

            async def cancel_when_verify_runs() -> None:
                with trio.fail_after(20):
                    while not seen.exists():
                        await trio.sleep(0.02)
                scope.cancel()

            nursery.start_soon(cancel_when_verify_runs)
            await execute_apply(request)
    assert scope.cancelled_caught
    assert "return a + b" in seen.read_text()  # the edits were in place during verify
    assert snapshot(repo) == before  # and are gone after the cancellation


async def test_a_second_apply_on_the_same_tree_is_refused(repo: Path) -> None:
    lock = lock_tree(repo)
    try:
        request, _ = make_request(repo, FIX)
        result = await execute_apply(request)
    finally:
        lock.release()
    assert not result.success
    assert f"another muxlang run (pid {os.getpid()}) is applying edits" in (result.error or "")
    assert "return a - b" in (repo / "src/app.py").read_text()
    # once released, it works
    assert (await execute_apply(request)).success


async def test_lock_held_by_another_process(repo: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path;"
            "from muxlang.apply.journal import lock_tree;"
            "lock_tree(Path(sys.argv[1])); print('locked', flush=True); time.sleep(60)",
            str(repo),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        request, _ = make_request(repo, FIX)
        result = await execute_apply(request)
        assert not result.success
        assert f"(pid {holder.pid})" in (result.error or "")
    finally:
        holder.kill()
        holder.wait()
    # the holder died without cleaning up: its lock file is stale and is taken over
    assert (repo / ".muxlang" / "apply.lock").read_text().strip() == str(holder.pid)
    assert (await execute_apply(request)).success
    assert not (repo / ".muxlang" / "apply.lock").exists()


DIFF_ANSWER = """\
The subtraction should be an addition, and util needs a new constant.

```diff
diff --git a/src/app.py b/src/app.py
--- a/src/app.py
+++ b/src/app.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
@@ -4,1 +4,2 @@
 print(add(1, 2))
+print(add(2, 2))
--- a/src/util.py
+++ b/src/util.py
@@ -1 +1,2 @@
 X = 1
+Y = 2
--- /dev/null
+++ b/tests/test_new.py
@@ -0,0 +1 @@
+from src.util import Y
--- a/run.sh
+++ /dev/null
@@ -1,2 +0,0 @@
-#!/bin/sh
-echo hi
```

Run `python3 src/app.py` to check.
"""


async def test_multi_file_diff_with_prose_applies_and_rolls_back(repo: Path) -> None:
    before = snapshot(repo)
    request, _ = make_request(repo, DIFF_ANSWER)
    result = await execute_apply(request)
    assert result.success, result.error
    assert set(result.files) == {"src/app.py", "src/util.py", "tests/test_new.py", "run.sh"}
    assert (repo / "src/app.py").read_text() == (
        "def add(a, b):\n    return a + b\n\n# user's uncommitted note\n"
        "print(add(1, 2))\nprint(add(2, 2))\n"
    )
    assert (repo / "src/util.py").read_text() == "X = 1\nY = 2\n"
    assert (repo / "tests/test_new.py").read_text() == "from src.util import Y\n"
    assert not (repo / "run.sh").exists()
    assert "deleted: run.sh" in result.output
    assert "created: tests/test_new.py" in result.output
    untouched = {k for k in before if k.split("/")[0] not in ("src", "run.sh")}
    assert {k: before[k] for k in untouched} == {k: snapshot(repo)[k] for k in untouched}


async def test_created_deleted_and_mode_changes_undone_when_verify_fails(repo: Path) -> None:
    before = snapshot(repo)
    request, _ = make_request(repo, DIFF_ANSWER, verify="echo nope >&2; exit 3")
    result = await execute_apply(request)
    assert not result.success
    assert "exited with status 3" in (result.error or "")
    assert "nope" in result.verify_output
    assert snapshot(repo) == before
    assert (repo / "run.sh").stat().st_mode & 0o777 == 0o755


async def test_file_mode_is_kept_by_the_atomic_write(repo: Path) -> None:
    edit = json.dumps(
        [
            {"path": "run.sh", "old": "echo hi", "new": "echo hello"},
            {"path": "private.key", "content": "rotated\n"},
        ]
    )
    request, _ = make_request(repo, edit, verify="./run.sh | grep -q hello")
    result = await execute_apply(request)
    assert result.success, result.error
    assert (repo / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (repo / "private.key").stat().st_mode & 0o777 == 0o600
    assert list(repo.rglob("*.muxtmp")) == []


async def test_escaping_paths_fail_the_step_with_nothing_written(
    repo: Path, tmp_path: Path
) -> None:
    (tmp_path / "outside").mkdir()
    (repo / "out").symlink_to(tmp_path / "outside")
    before = snapshot(repo)
    for path in ("../evil.txt", "/tmp/evil.txt", "out/evil.txt"):
        edits = json.dumps(
            [
                {"path": "src/util.py", "content": "X = 99\n"},
                {"path": path, "content": "pwned\n"},
            ]
        )
        request, _ = make_request(repo, edits)
        result = await execute_apply(request)
        assert not result.success
        assert f"edit 2 ({path}): the path" in (result.error or "")
        assert snapshot(repo) == before
    assert list((tmp_path / "outside").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


async def test_a_write_error_half_way_rolls_back_what_was_written(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import muxlang.apply.journal as journal

    def disk_full(path: str, count: int) -> None:
        if count == 2:
            raise OSError(28, "No space left on device", str(repo / path))

    monkeypatch.setattr(journal, "AFTER_WRITE_HOOK", disk_full)
    before = snapshot(repo)
    edits = json.dumps(
        [
            {"path": "README.md", "content": "new readme\n"},
            {"path": "src/app.py", "old": "a - b", "new": "a + b"},
            {"path": "src/util.py", "content": "X = 3\n"},
        ]
    )
    request, query = make_request(repo, edits, verify="true", verify_retries=2)
    result = await execute_apply(request)
    assert not result.success
    assert "No space left on device" in (result.error or "")
    assert "rolled back" in (result.error or "")
    assert query.calls == []  # not the LLM's fault: no re-ask
    assert snapshot(repo) == before


async def test_a_broken_retry_template_fails_the_step_cleanly(repo: Path) -> None:
    def render(original: str, error: str) -> str:
        raise ValueError("undefined name 'steps.nope.output' at line 3")

    before = snapshot(repo)
    request, query = make_request(repo, BROKEN, verify=VERIFY, verify_retries=1, render=render)
    result = await execute_apply(request)
    assert not result.success
    assert "verify_retry_prompt could not be rendered: undefined name" in (result.error or "")
    assert query.calls == []
    assert snapshot(repo) == before


async def test_failed_verify_error_first_line_says_why(repo: Path) -> None:
    # the console line and the summary show only the first line of the error:
    # it must carry the reason, not end with a dangling "Its output:"
    request, _ = make_request(repo, BROKEN, verify=VERIFY)
    result = await execute_apply(request)
    assert not result.success
    first, _, rest = (result.error or "").partition("\n")
    assert first == (f"The verify command `{VERIFY}` exited with status 1: add(1, 2) printed 2")
    assert "add(1, 2) printed 2" in rest  # the full output still follows


async def test_silent_failed_verify_says_it_printed_nothing(repo: Path) -> None:
    request, _ = make_request(repo, FIX, verify="exit 4")
    result = await execute_apply(request)
    assert result.error == "The verify command `exit 4` exited with status 4 and printed nothing"


async def test_bad_edits_error_first_line_names_the_first_problem(repo: Path) -> None:
    bad = json.dumps(
        [
            {"path": "src/app.py", "old": "not there", "new": "x"},
            {"path": "src/util.py", "old": "nor this", "new": "y"},
        ]
    )
    request, _ = make_request(repo, bad)
    result = await execute_apply(request)
    first, _, rest = (result.error or "").partition("\n")
    assert first.startswith(
        "The edits could not be applied (nothing was written): edit 1 (src/app.py)"
    )
    assert "edit 2 (src/util.py)" in rest
