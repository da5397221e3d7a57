"""Edit parsing: every accepted format, prose around it, and clear errors."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muxlang.apply import Edit, EditParseError, Patch, Replace, WriteFile, parse_edits

ONE = {"path": "src/app.py", "old": "a - b", "new": "a + b"}


def test_bare_json_object() -> None:
    assert parse_edits(json.dumps(ONE)) == (Replace(1, "src/app.py", "a - b", "a + b"),)


def test_list_and_edits_wrapper_number_edits_in_order() -> None:
    two = [ONE, {"path": "b.txt", "content": "hello\n"}]
    for text in (json.dumps(two), json.dumps({"edits": two})):
        edits = parse_edits(text)
        assert edits == (
            Replace(1, "src/app.py", "a - b", "a + b"),
            WriteFile(2, "b.txt", "hello\n"),
        )


def test_fenced_json_with_prose_around_it() -> None:
    text = (
        "Sure! The bug is the minus sign. Here is the fix:\n\n"
        f"```json\n{json.dumps(ONE, indent=2)}\n```\n\n"
        "This makes `add` add. Let me know if {you} need anything else."
    )
    assert parse_edits(text) == (Replace(1, "src/app.py", "a - b", "a + b"),)


def test_several_fenced_blocks_are_all_applied_in_order() -> None:
    text = (
        f"First:\n```json\n{json.dumps(ONE)}\n```\nthen:\n"
        '```json\n{"path": "new.txt", "content": "x"}\n```\n'
        "```python\nprint('not an edit')\n```\n"
    )
    edits = parse_edits(text)
    assert [e.index for e in edits] == [1, 2]
    assert isinstance(edits[1], WriteFile)


def test_unlabelled_fence_and_json_inside_prose() -> None:
    assert parse_edits(f"```\n{json.dumps([ONE])}\n```")[0] == Replace(
        1, "src/app.py", "a - b", "a + b"
    )
    prose = f"I would change this: {json.dumps({'edits': [ONE]})} and that is all."
    assert parse_edits(prose) == (Replace(1, "src/app.py", "a - b", "a + b"),)


def test_extra_keys_are_ignored() -> None:
    edit = {**ONE, "explanation": "fix sign"}
    assert parse_edits(json.dumps(edit))[0] == Replace(1, "src/app.py", "a - b", "a + b")


MULTI = """\
Here is the patch; it touches two files.

```diff
diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,2 +1,2 @@
 def add(a, b):
-    return a - b
+    return a + b
@@ -4,1 +4,2 @@
 print(add(1, 2))
+print(add(3, 4))
--- a/src/util.py
+++ b/src/util.py
@@ -1 +1 @@
-X = 1
+X = 2
--- /dev/null
+++ b/docs/new.md
@@ -0,0 +1,2 @@
+# New
+text
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
```

Run the tests afterwards.
"""


def test_multi_file_multi_hunk_diff_in_a_fence() -> None:
    edits = parse_edits(MULTI)
    assert all(isinstance(e, Patch) for e in edits)
    patches = [e for e in edits if isinstance(e, Patch)]
    assert [(p.old_path, p.new_path) for p in patches] == [
        ("src/app.py", "src/app.py"),
        ("src/util.py", "src/util.py"),
        (None, "docs/new.md"),
        ("old.txt", None),
    ]
    first = patches[0]
    assert len(first.hunks) == 2
    assert first.hunks[0].old_lines == ["def add(a, b):", "    return a - b"]
    assert first.hunks[0].new_lines == ["def add(a, b):", "    return a + b"]
    assert first.hunks[1].new_lines == ["print(add(1, 2))", "print(add(3, 4))"]


def test_bare_diff_with_prose_before_and_after() -> None:
    text = (
        "The fix:\n--- a/x.py\n+++ b/x.py\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n\nThat should do it.\n"
    )
    (patch,) = parse_edits(text)
    assert isinstance(patch, Patch)
    assert patch.hunks[0].old_lines == ["a", "b", "c"]


def test_diff_with_wrong_counts_keeps_every_line() -> None:
    # LLMs get the @@ counts wrong; the lines that follow still belong to the hunk
    text = "--- a/x\n+++ b/x\n@@ -1,1 +1,1 @@\n a\n-b\n+B\n c\n"
    (patch,) = parse_edits(text)
    assert isinstance(patch, Patch)
    assert patch.hunks[0].new_lines == ["a", "B", "c"]


def test_diff_removed_line_that_looks_like_a_header() -> None:
    text = "--- a/q.sql\n+++ b/q.sql\n@@ -1,2 +1,1 @@\n--- a comment\n select 1;\n"
    (patch,) = parse_edits(text)
    assert isinstance(patch, Patch)
    assert patch.hunks[0].old_lines == ["-- a comment", "select 1;"]
    assert patch.hunks[0].new_lines == ["select 1;"]


def test_no_newline_marker_and_bare_hunk_header() -> None:
    text = "--- x\n+++ x\n@@\n-a\n\\ No newline at end of file\n+b\n\\ No newline at end of file\n"
    (patch,) = parse_edits(text)
    assert isinstance(patch, Patch)
    hunk = patch.hunks[0]
    assert hunk.old_start is None
    assert hunk.old_no_newline
    assert hunk.new_no_newline


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("I could not find the bug, sorry.", "no edits found"),
        ('```json\n{"path": "a", "old": "x"\n```', "fenced json block 1 is not valid JSON"),
        ('{"path": "a.py", "old": "x"}', 'edit 1 (a.py): missing "new"'),
        ('[{"path": "a", "old": "x", "new": "y"}, 7]', "edit 2: expected an object"),
        ('{"path": "a", "old": 1, "new": "y"}', '"old" must be a string, got a number'),
        ('{"path": "", "content": "y"}', 'edit 1: "path" must be a non-empty string'),
        ('{"edits": []}', "nothing to apply"),
        ("--- a/x\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n", "renames are not supported"),
        ("--- a/x\n+++ b/x\nno hunks here\n", "has no @@ hunks"),
        ('{"path": "a", "content": "x", "old": "y", "new": "z"}', "not both"),
    ],
)
def test_errors_name_the_edit_and_the_reason(text: str, message: str) -> None:
    with pytest.raises(EditParseError, match=None) as info:
        parse_edits(text)
    assert message in str(info.value)


def parse_or_message(text: str) -> tuple[Edit, ...] | str:
    try:
        return parse_edits(text)
    except EditParseError as exc:
        return str(exc)


@settings(max_examples=300, deadline=None)
@given(
    st.text(
        alphabet=st.sampled_from(list('{}[]":,\n `-+@/\\ab\t0123456789pathold new content\r~')),
        max_size=400,
    )
)
def test_parser_raises_only_its_own_error_on_arbitrary_text(text: str) -> None:
    edits = parse_or_message(text)
    if isinstance(edits, str):
        # the parser's own message, not the safety net around an internal error
        assert not edits.startswith("could not read the edits"), edits
        return
    assert edits
    assert all(e.path for e in edits)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_parser_on_any_unicode(text: str) -> None:
    edits = parse_or_message(text)
    if isinstance(edits, str):
        assert not edits.startswith("could not read the edits"), edits
        return
    assert all(e.path.strip() for e in edits)


def test_deeply_nested_json_is_an_error_not_a_crash() -> None:
    with pytest.raises(EditParseError):
        parse_edits("[" * 100_000)
    with pytest.raises(EditParseError):
        parse_edits('{"a": ' * 5000 + '{"path": "x"')


def test_diff_of_a_markdown_file_with_fences_in_its_context() -> None:
    md = (
        "--- a/README.md\n+++ b/README.md\n@@ -1,4 +1,4 @@\n"
        " # Title\n ```python\n-print(1)\n+print(2)\n ```\n"
    )
    for text in (md, f"Answer:\n```diff\n{md}```\nDone."):
        (patch,) = parse_edits(text)
        assert isinstance(patch, Patch)
        assert patch.hunks[0].new_lines == ["# Title", "```python", "print(2)", "```"]


def test_git_quoted_paths_and_timestamps() -> None:
    text = '--- "a/caf\\303\\251.txt"\n+++ "b/caf\\303\\251.txt"\n@@ -1 +1 @@\n-a\n+b\n'
    (patch,) = parse_edits(text)
    assert patch.path == "café.txt"
    text = "--- x.txt\t2024-01-01 10:00:00\n+++ x.txt\t2024-01-02 10:00:00\n@@ -1 +1 @@\n-a\n+b\n"
    assert parse_edits(text)[0].path == "x.txt"


def test_crlf_answer_is_read_like_lf() -> None:
    text = "--- a/x\r\n+++ b/x\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n"
    (patch,) = parse_edits(text)
    assert isinstance(patch, Patch)
    assert patch.hunks[0].lines == (("-", "a"), ("+", "b"))


def test_blank_lines_after_a_hunk_with_too_large_counts_are_not_context() -> None:
    text = "--- a/x\n+++ b/x\n@@ -1,9 +1,9 @@\n a\n-b\n+B\n\n\nThat is the fix.\n"
    (patch,) = parse_edits(text)
    assert isinstance(patch, Patch)
    assert patch.hunks[0].lines == ((" ", "a"), ("-", "b"), ("+", "B"))
    # but a blank context line the counts account for is kept
    text = "--- a/x\n+++ b/x\n@@ -1,3 +1,3 @@\n a\n\n-b\n+B\n"
    (patch,) = parse_edits(text)
    assert isinstance(patch, Patch)
    assert patch.hunks[0].old_lines == ["a", "", "b"]


def test_one_sided_prefix_names_the_same_file() -> None:
    for head in ("--- a/x.py\n+++ x.py\n", "--- x.py\n+++ b/x.py\n"):
        (patch,) = parse_edits(head + "@@ -1 +1 @@\n-a\n+b\n")
        assert isinstance(patch, Patch)
        assert (patch.old_path, patch.new_path) == ("x.py", "x.py")
