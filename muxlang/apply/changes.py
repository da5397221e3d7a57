"""Checking edits against the tree, in memory, before the first byte is written.

:func:`plan_changes` resolves every path inside the project root, applies every
edit to an in-memory copy of its file and returns one :class:`FileChange` per
file (before and after bytes). Any problem — a path escaping the root, ``old``
not occurring exactly once, a hunk whose context does not match — is collected,
and :class:`~muxlang.apply.errors.EditCheckError` lists them all: one bad edit
means no edit is applied.
"""

from __future__ import annotations

import difflib
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from muxlang._frozen import frozen
from muxlang.apply.edits import Edit, Hunk, Patch, Replace, WriteFile, describe
from muxlang.apply.errors import EditCheckError

__all__ = ["FileChange", "PathProblem", "plan_changes", "render_diff", "resolve_inside"]

#: paths an edit may never write: version control internals and muxlang's own state
_FORBIDDEN_DIRS = frozenset({".git", ".hg", ".svn"})
_MUXLANG_STATE = (".muxlang/journal", ".muxlang/apply.lock")


@frozen(slots=True)
class FileChange:
    """What one file becomes. ``before`` None: created; ``after`` None: deleted."""

    path: str  # relative to the (real) project root, "/"-separated
    before: bytes | None
    after: bytes | None
    mode: int | None  # permission bits of the existing file

    @property
    def kind(self) -> str:
        if self.before is None:
            return "created"
        if self.after is None:
            return "deleted"
        return "modified"


class PathProblem(Exception):
    """Why a path may not be written (the message completes "path ...")."""


def resolve_inside(root: Path, path: str) -> tuple[Path, str]:
    """The real target of ``path`` and its root-relative name, or :class:`PathProblem`.

    Refused: empty and absolute paths, ``..`` leaving the root, a symlink (the
    file or any parent directory) that points outside the root, and paths into
    ``.git`` or muxlang's journal. A symlink inside the root is followed: the
    file it points to is the one edited.
    """
    real_root = Path(os.path.realpath(root))
    if not path or not path.strip():
        raise PathProblem("is empty")
    if "\0" in path:
        raise PathProblem("contains a NUL byte")
    if path.startswith(("/", "\\", "~")) or (len(path) > 1 and path[1] == ":"):
        raise PathProblem("is absolute; paths must be relative to the project root")
    normal = posixpath.normpath(path.replace("\\", "/"))
    if normal == ".":
        raise PathProblem("names the project root itself, not a file")
    if normal == ".." or normal.startswith("../"):
        raise PathProblem("leaves the project root (..)")
    target = Path(os.path.realpath(real_root / normal))
    try:
        relative = target.relative_to(real_root)
    except ValueError:
        raise PathProblem(
            "resolves outside the project root through a symlink "
            f"({_first_symlink(real_root, normal)} points outside)"
        ) from None
    rel = relative.as_posix()
    if rel == ".":
        raise PathProblem("names the project root itself, not a file")
    parts = rel.split("/")
    if any(part in _FORBIDDEN_DIRS for part in parts):
        raise PathProblem("is inside a version-control directory, which edits never touch")
    if any(rel == s or rel.startswith(s + "/") for s in _MUXLANG_STATE):
        raise PathProblem("is muxlang's own apply journal or lock")
    return target, rel


def _first_symlink(root: Path, normal: str) -> str:
    current = root
    for part in normal.split("/"):
        current = current / part
        if current.is_symlink():
            return current.relative_to(root).as_posix()
    return normal


@dataclass
class _State:
    rel: str
    target: Path
    original: bytes | None
    mode: int | None
    text: str | None  # current content (None: the file does not exist)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def plan_changes(root: Path, edits: tuple[Edit, ...]) -> tuple[FileChange, ...]:
    """Apply ``edits`` in memory; the resulting changes, in the order files were first
    named. Raises :class:`EditCheckError` with every problem found."""
    problems: list[str] = []
    states: dict[Path, _State] = {}
    for edit in edits:
        where = describe(edit)
        try:
            target, rel = resolve_inside(root, edit.path)
        except PathProblem as exc:
            problems.append(f"{where}: the path {exc}")
            continue
        except OSError as exc:  # a name too long, a symlink loop, ...
            problems.append(f"{where}: the path cannot be used: {exc.strerror or exc}")
            continue
        state = states.get(target)
        if state is None:
            try:
                state = _load(target, rel)
            except PathProblem as exc:
                problems.append(f"{where}: {rel} {exc}")
                continue
            except OSError as exc:
                problems.append(f"{where}: {rel} cannot be used: {exc.strerror or exc}")
                continue
            states[target] = state
        try:
            state.text = _apply_edit(edit, state.text)
        except PathProblem as exc:
            problems.append(f"{where}: {exc}")
    if problems:
        raise EditCheckError(problems)
    changes: list[FileChange] = []
    for state in states.values():
        after = None if state.text is None else _encode(state.text)
        if after == state.original:
            continue
        changes.append(FileChange(state.rel, state.original, after, state.mode))
    return tuple(changes)


def _load(target: Path, rel: str) -> _State:
    try:
        st = target.lstat()
    except FileNotFoundError:
        _check_parents(target)
        return _State(rel, target, None, None, None)
    except OSError as exc:
        raise PathProblem(f"cannot be read: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(st.st_mode):
        raise PathProblem("is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise PathProblem("is not a regular file")
    try:
        data = target.read_bytes()
    except OSError as exc:
        raise PathProblem(f"cannot be read: {exc.strerror or exc}") from exc
    return _State(rel, target, data, stat.S_IMODE(st.st_mode), _decode(data))


def _check_parents(target: Path) -> None:
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise PathProblem(f"cannot be created: {parent.name} is a file, not a directory")
            return


def _apply_edit(edit: Edit, text: str | None) -> str | None:
    if isinstance(edit, WriteFile):
        return edit.content
    if isinstance(edit, Replace):
        return _replace(edit, text)
    return _patch(edit, text)


def _replace(edit: Replace, text: str | None) -> str:
    if text is None:
        if edit.old == "":
            return edit.new
        raise PathProblem(
            'the file does not exist (use "content", or an empty "old", to create it)'
        )
    if edit.old == "":
        raise PathProblem(
            '"old" is empty; give the text to replace, or "content" for the whole file'
        )
    old, new = edit.old, edit.new
    count = text.count(old)
    if count == 0 and "\r\n" in text and "\n" in old and "\r\n" not in old:
        # the file has Windows line endings and the model wrote Unix ones
        old, new = old.replace("\n", "\r\n"), new.replace("\n", "\r\n")
        count = text.count(old)
    if count != 1:
        how = "does not occur" if count == 0 else f"occurs {count} times"
        raise PathProblem(
            f'"old" {how} in the file; it must occur exactly once'
            + (" (add surrounding lines to make it unique)" if count > 1 else "")
        )
    return text.replace(old, new, 1)


# --------------------------------------------------------------------------- diff hunks


def _split(text: str) -> list[tuple[str, str]]:
    """Lines as (content, ending); the ending is "\\n", "\\r\\n" or "" for the last."""
    out: list[tuple[str, str]] = []
    *pieces, last = text.split("\n")
    for piece in pieces:
        if piece.endswith("\r"):
            out.append((piece[:-1], "\r\n"))
        else:
            out.append((piece, "\n"))
    if last:  # the text does not end with a newline
        out.append((last, ""))
    return out


def _patch(edit: Patch, text: str | None) -> str | None:
    if edit.old_path is None:
        if text is not None:
            raise PathProblem("the diff creates the file (--- /dev/null) but it already exists")
        text = ""
    elif text is None:
        raise PathProblem("the file does not exist")
    lines = _split(text)
    newline = next((end for _, end in lines if end), "\n")
    position = 0  # hunks apply in order: each is searched for after the previous one
    delta = 0  # lines added minus lines removed by the previous hunks
    drift = 0  # how far the previous hunk was from where its header said
    for number, hunk in enumerate(edit.hunks, 1):
        old = hunk.old_lines
        base = _expected(hunk) + delta
        expected = max(0, base + drift)
        at = _find(lines, old, position, expected)
        if at is not None and hunk.old_start is None and old:
            count = _count(lines, old, position)
            if count > 1:
                raise PathProblem(
                    f"hunk {number} ({hunk.header}) has no line numbers and its lines occur "
                    f"{count} times in the file; add context lines or @@ -N,M +N,M @@ numbers"
                )
        if at is None:
            raise PathProblem(_mismatch(hunk, number, lines, old, max(0, base)))
        if hunk.old_start is not None:
            drift = at - base
        delta += len(hunk.new_lines) - len(old)
        replacement = [(content, newline) for content in hunk.new_lines]
        end = at + len(old)
        if end == len(lines) and replacement:
            # the hunk reaches the end of the file: its marker decides the final newline
            if hunk.new_no_newline:
                final = ""
            elif hunk.old_no_newline or not old or hunk.lines[-1][0] != " ":
                final = newline
            else:  # unchanged last line and no marker: keep what the file had
                final = lines[end - 1][1]
            replacement[-1] = (replacement[-1][0], final)
        lines[at:end] = replacement
        if 0 < at < len(lines) and not lines[at - 1][1]:
            lines[at - 1] = (lines[at - 1][0], newline)  # no longer the last line
        position = at + len(replacement)
    if edit.new_path is None:
        if lines:
            raise PathProblem("the diff deletes the file (+++ /dev/null) but lines would remain")
        return None
    return "".join(content + end for content, end in lines)


def _expected(hunk: Hunk) -> int:
    """Where the header says the hunk starts (0-based, in the original file)."""
    if hunk.old_start is None:
        return 0
    return hunk.old_start - 1 if hunk.old_len else hunk.old_start


def _find(lines: list[tuple[str, str]], old: list[str], position: int, expected: int) -> int | None:
    """Where ``old`` occurs at or after ``position``, nearest to ``expected`` (the
    earlier one of two as near)."""
    if not old:
        return min(max(expected, position), len(lines))
    best: int | None = None
    for at in _occurrences(lines, old, position):
        if best is None or abs(at - expected) < abs(best - expected):
            best = at
        elif at > expected:
            break
    return best


def _count(lines: list[tuple[str, str]], old: list[str], position: int) -> int:
    return sum(1 for _ in _occurrences(lines, old, position))


def _occurrences(lines: list[tuple[str, str]], old: list[str], position: int) -> Iterator[int]:
    """Every index at or after ``position`` where the lines' contents equal ``old``
    (overlapping ones too), ascending: Knuth-Morris-Pratt over the lines, so
    O(len(lines) + len(old)) whatever they hold — a hunk of 2,000 lines against
    100,000 lines of near-repeats no longer takes lines × hunk comparisons."""
    m = len(old)
    # fallback[k]: the length of the longest proper prefix of old[:k + 1] that is
    # also its suffix: where to resume after a mismatch with k + 1 lines matched
    fallback = [0] * m
    k = 0
    for i in range(1, m):
        while k and old[i] != old[k]:
            k = fallback[k - 1]
        if old[i] == old[k]:
            k += 1
        fallback[i] = k
    k = 0
    for i in range(position, len(lines)):
        line = lines[i][0]
        while k and line != old[k]:
            k = fallback[k - 1]
        if line == old[k]:
            k += 1
            if k == m:
                yield i - m + 1
                k = fallback[k - 1]


def _mismatch(
    hunk: Hunk, number: int, lines: list[tuple[str, str]], old: list[str], expected: int
) -> str:
    head = f"hunk {number} ({hunk.header}) does not match the file"
    if hunk.old_start is None or expected >= len(lines):
        return f"{head}: its context and removed lines were not found"
    for k, want in enumerate(old):
        at = expected + k
        if at >= len(lines):
            return f"{head}: the file ends at line {len(lines)}, before the hunk does"
        if lines[at][0] != want:
            return (
                f"{head}: at line {at + 1} the hunk expects {want!r} but the file has "
                f"{lines[at][0]!r} (and the hunk's lines were not found elsewhere)"
            )
    return f"{head}: its lines were not found after the previous hunk"


# --------------------------------------------------------------------------- diff output


def render_diff(changes: tuple[FileChange, ...]) -> str:
    """A unified diff (``--- a/x`` / ``+++ b/x``, ``/dev/null`` for created/deleted)."""
    out: list[str] = []
    for change in changes:
        before = _diff_lines(change.before)
        after = _diff_lines(change.after)
        old_name = "/dev/null" if change.before is None else f"a/{change.path}"
        new_name = "/dev/null" if change.after is None else f"b/{change.path}"
        out.append(f"diff --git a/{change.path} b/{change.path}\n")
        if change.before is None:
            out.append("new file mode 100644\n")
        elif change.after is None:
            out.append(f"deleted file mode 100{change.mode or 0o644:o}\n")
        body = list(difflib.unified_diff(before, after, old_name, new_name, n=3))
        if not body:  # created or deleted empty file
            out.append(f"--- {old_name}\n+++ {new_name}\n")
        out.extend(body)
    return "".join(out)


def _diff_lines(data: bytes | None) -> list[str]:
    if data is None:
        return []
    text = data.decode("utf-8", "replace")
    lines = text.splitlines(keepends=True) if "\r" not in text else _keep_split(text)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n\\ No newline at end of file\n"
    return lines


def _keep_split(text: str) -> list[str]:
    return [line + "\n" for line in text.split("\n")[:-1]] + (
        [text.rsplit("\n", 1)[-1]] if not text.endswith("\n") else []
    )
