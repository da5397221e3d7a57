"""Checking edits against a real tree before anything is written."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from muxlang.apply import (
    ApplyError,
    EditCheckError,
    FileChange,
    parse_edits,
    plan_changes,
    render_diff,
)
from tests.apply.apply_support import snapshot


def plan(root: Path, text: str) -> dict[str, tuple[bytes | None, bytes | None]]:
    return {c.path: (c.before, c.after) for c in plan_changes(root, parse_edits(text))}


def check_error(root: Path, text: str) -> str:
    before = snapshot(root)
    with pytest.raises(EditCheckError) as info:
        plan_changes(root, parse_edits(text))
    assert snapshot(root) == before
    return str(info.value)


def test_replace_and_whole_file(repo: Path) -> None:
    text = json.dumps(
        [
            {"path": "src/app.py", "old": "a - b", "new": "a + b"},
            {"path": "src/new/mod.py", "content": "Y = 2\n"},
        ]
    )
    changes = plan(repo, text)
    expected = (repo / "src/app.py").read_bytes().replace(b"a - b", b"a + b")
    assert changes["src/app.py"][1] == expected
    assert changes["src/new/mod.py"] == (None, b"Y = 2\n")


def test_old_must_occur_exactly_once_and_the_error_says_how_often(repo: Path) -> None:
    (repo / "dup.py").write_text("x = 1\nx = 1\nx = 1\n")
    msg = check_error(repo, json.dumps({"path": "dup.py", "old": "x = 1", "new": "x = 2"}))
    assert "edit 1 (dup.py)" in msg
    assert "occurs 3 times" in msg
    msg = check_error(repo, json.dumps({"path": "dup.py", "old": "nope", "new": "x"}))
    assert "does not occur" in msg


def test_one_bad_edit_reports_every_problem_and_nothing_is_planned(repo: Path) -> None:
    text = json.dumps(
        [
            {"path": "src/util.py", "old": "X = 1", "new": "X = 2"},
            {"path": "src/app.py", "old": "missing", "new": "x"},
            {"path": "../outside.txt", "content": "x"},
        ]
    )
    msg = check_error(repo, text)
    assert "edit 2 (src/app.py)" in msg
    assert "edit 3 (../outside.txt)" in msg
    assert "edit 1" not in msg


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("../escape.txt", "leaves the project root"),
        ("src/../../escape.txt", "leaves the project root"),
        ("/etc/passwd", "is absolute"),
        ("~/x", "is absolute"),
        (".git/hooks/pre-commit", "version-control"),
        (".muxlang/journal/journal.json", "journal"),
        ("", '"path" must be a non-empty string'),
    ],
)
def test_paths_outside_the_root_are_refused(repo: Path, path: str, reason: str) -> None:
    from muxlang.apply import ApplyError

    before = snapshot(repo)
    with pytest.raises(ApplyError) as info:
        plan_changes(repo, parse_edits(json.dumps({"path": path, "content": "pwned\n"})))
    assert reason in str(info.value)
    assert snapshot(repo) == before


def test_symlinked_file_and_parent_dir_pointing_out_are_refused(repo: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "target.txt").write_text("outside\n")
    (repo / "link.txt").symlink_to(outside / "target.txt")
    (repo / "linkdir").symlink_to(outside)
    for path in ("link.txt", "linkdir/target.txt", "linkdir/new.txt"):
        msg = check_error(repo, json.dumps({"path": path, "content": "pwned\n"}))
        assert "outside the project root through a symlink" in msg
    assert (outside / "target.txt").read_text() == "outside\n"
    assert not (outside / "new.txt").exists()


def test_symlink_inside_the_root_edits_its_target(repo: Path) -> None:
    (repo / "alias.py").symlink_to("src/util.py")
    changes = plan(repo, json.dumps({"path": "alias.py", "old": "X = 1", "new": "X = 3"}))
    assert changes == {"src/util.py": (b"X = 1\n", b"X = 3\n")}


def test_diff_hunks_apply_with_offset_and_keep_other_lines(repo: Path) -> None:
    # the user's uncommitted note shifted print() by one line: the hunk still applies
    diff = (
        "--- a/src/app.py\n+++ b/src/app.py\n"
        "@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n"
        "@@ -4,1 +4,2 @@\n print(add(1, 2))\n+print(add(3, 4))\n"
    )
    after = plan(repo, diff)["src/app.py"][1]
    assert after == (
        b"def add(a, b):\n    return a + b\n\n# user's uncommitted note\n"
        b"print(add(1, 2))\nprint(add(3, 4))\n"
    )


def test_diff_context_mismatch_says_where(repo: Path) -> None:
    diff = "--- a/src/util.py\n+++ b/src/util.py\n@@ -1 +1 @@\n-X = 5\n+X = 6\n"
    msg = check_error(repo, diff)
    assert "edit 1 (src/util.py)" in msg
    assert "hunk 1 (@@ -1 +1 @@) does not match" in msg
    assert "line 1" in msg
    assert "'X = 5'" in msg


def test_diff_creates_and_deletes_files(repo: Path) -> None:
    diff = (
        "--- /dev/null\n+++ b/pkg/new.py\n@@ -0,0 +1,2 @@\n+A = 1\n+B = 2\n"
        "--- a/src/util.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-X = 1\n"
    )
    changes = plan(repo, diff)
    assert changes == {"pkg/new.py": (None, b"A = 1\nB = 2\n"), "src/util.py": (b"X = 1\n", None)}
    msg = check_error(repo, diff.replace("pkg/new.py", "README.md"))
    assert "already exists" in msg


def test_crlf_file_keeps_its_line_endings(repo: Path) -> None:
    (repo / "win.txt").write_bytes(b"one\r\ntwo\r\nthree\r\n")
    diff = "--- a/win.txt\n+++ b/win.txt\n@@ -1,3 +1,4 @@\n one\n-two\n+TWO\n+2.5\n three\n"
    assert plan(repo, diff)["win.txt"][1] == b"one\r\nTWO\r\n2.5\r\nthree\r\n"
    replace = json.dumps({"path": "win.txt", "old": "one\ntwo", "new": "one\n2"})
    assert plan(repo, replace)["win.txt"][1] == b"one\r\n2\r\nthree\r\n"


def test_missing_final_newline_is_kept_or_changed_as_the_diff_says(repo: Path) -> None:
    (repo / "nofinal.txt").write_bytes(b"a\nb")
    keep = "--- a/nofinal.txt\n+++ b/nofinal.txt\n@@ -1,2 +1,2 @@\n-a\n+A\n b\n"
    assert plan(repo, keep)["nofinal.txt"][1] == b"A\nb"
    add = (
        "--- a/nofinal.txt\n+++ b/nofinal.txt\n@@ -1,2 +1,2 @@\n a\n-b\n"
        "\\ No newline at end of file\n+b\n"
    )
    assert plan(repo, add)["nofinal.txt"][1] == b"a\nb\n"


def test_non_utf8_bytes_elsewhere_in_the_file_survive(repo: Path) -> None:
    (repo / "latin.txt").write_bytes(b"caf\xe9\nold\n")
    after = plan(repo, json.dumps({"path": "latin.txt", "old": "old", "new": "new"}))
    assert after["latin.txt"][1] == b"caf\xe9\nnew\n"


def test_render_diff_is_a_unified_diff(repo: Path) -> None:
    changes = plan_changes(
        repo,
        parse_edits(
            json.dumps(
                [
                    {"path": "src/util.py", "old": "X = 1", "new": "X = 2"},
                    {"path": "new.txt", "content": "n\n"},
                ]
            )
        ),
    )
    diff = render_diff(changes)
    assert "--- a/src/util.py\n+++ b/src/util.py\n@@ -1 +1 @@\n-X = 1\n+X = 2\n" in diff
    assert "--- /dev/null\n+++ b/new.txt\n" in diff
    # and it parses back to the same changes
    assert plan_changes(repo, parse_edits(diff)) == changes
    assert os.path.exists(repo / "src/util.py")


LINE = st.sampled_from(["a", "b", "c", "", "  x = 1", "def f():", "\tpass", "é", "-- x", "++ y"])


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    before=st.lists(LINE, max_size=30),
    after=st.lists(LINE, max_size=30),
    before_final=st.booleans(),
    after_final=st.booleans(),
)
def test_rendered_diff_applies_back_exactly(
    tmp_path: Path, before: list[str], after: list[str], before_final: bool, after_final: bool
) -> None:
    """Whatever two versions of a file, the diff muxlang renders applies back to the
    exact after-bytes: diff output and diff input agree, newline markers included."""
    old = ("\n".join(before) + ("\n" if before_final and before else "")).encode()
    new = ("\n".join(after) + ("\n" if after_final and after else "")).encode()
    if old == new:
        return
    (tmp_path / "f.txt").write_bytes(old)
    change = FileChange("f.txt", old, new, 0o644)
    text = render_diff((change,))
    assert plan_changes(tmp_path, parse_edits(text)) == (change,)


def test_bare_hunk_must_be_unique(repo: Path) -> None:
    (repo / "many.py").write_text("pass\npass\n")
    msg = check_error(repo, "--- a/many.py\n+++ b/many.py\n@@\n-pass\n+return\n")
    assert "occur 2 times" in msg


def test_later_hunks_account_for_lines_added_by_earlier_ones(repo: Path) -> None:
    (repo / "rep.txt").write_text("x\n" * 3 + "y\n" + "x\n" * 3 + "y\n")
    diff = "--- a/rep.txt\n+++ b/rep.txt\n@@ -1,1 +1,3 @@\n x\n+n1\n+n2\n@@ -8,1 +10,1 @@\n-y\n+Y\n"
    after = plan(repo, diff)["rep.txt"][1]
    assert after == b"x\nn1\nn2\nx\nx\ny\nx\nx\nx\nY\n"


SEGMENT = st.sampled_from(
    ["..", ".", "", "src", "app.py", "out", "loop", "x" * 300, "~", ".git", "a\0b", "C:", "\\"]
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=st.lists(SEGMENT, min_size=1, max_size=6), lead=st.sampled_from(["", "/", "./"]))
def test_any_path_is_refused_or_lands_inside_the_root(
    tmp_path: Path, parts: list[str], lead: str
) -> None:
    root = tmp_path / "root"
    if not root.exists():
        (root / "src").mkdir(parents=True)
        (root / "src" / "app.py").write_text("a\n")
        (root / "out").symlink_to(tmp_path)
        (root / "loop").symlink_to(root / "loop")
    path = lead + "/".join(parts)
    edit = json.dumps({"path": path, "content": "z\n"})
    try:
        changes = plan_changes(root, parse_edits(edit))
    except ApplyError:
        return
    real_root = root.resolve()
    for change in changes:
        target = (real_root / change.path).resolve()
        assert target.is_relative_to(real_root)
        assert ".git" not in Path(change.path).parts
