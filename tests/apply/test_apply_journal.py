"""The journal: whatever set of changes is written, rollback restores the exact tree."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from muxlang.apply import FileChange
from muxlang.apply.journal import (
    Journal,
    apply_changes,
    atomic_write,
    journal_dir,
    lock_tree,
    read_journal,
    recover_tree,
    rollback,
    write_journal,
)
from tests.apply.apply_support import snapshot

NAMES = st.sampled_from(["a.txt", "b.bin", "d/c.txt", "d/e/f.txt", "new/x.txt", "new/deep/y"])
CONTENT = st.binary(max_size=64)
MODES = st.sampled_from([0o644, 0o600, 0o755, 0o444])
#: files in the tree before the apply: path -> (content, mode)
EXISTING = st.dictionaries(
    st.sampled_from(["a.txt", "b.bin", "d/c.txt", "d/e/f.txt"]), st.tuples(CONTENT, MODES)
)


def build(root: Path, existing: dict[str, tuple[bytes, int]]) -> None:
    for rel, (data, mode) in existing.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)


def changes_for(
    existing: dict[str, tuple[bytes, int]], targets: dict[str, bytes | None]
) -> tuple[FileChange, ...]:
    out = []
    for rel, after in targets.items():
        before = existing.get(rel)
        if before is None and after is None:
            continue
        out.append(
            FileChange(rel, before[0] if before else None, after, before[1] if before else None)
        )
    return tuple(out)


@contextmanager
def applied(root: Path, changes: tuple[FileChange, ...]) -> Iterator[Journal]:
    """``changes`` applied under the tree's lock, held for the ``with`` block: their journal."""
    lock = lock_tree(root)
    try:
        yield apply_changes(root, changes, "s", lock)
    finally:
        lock.release()


@settings(max_examples=60, deadline=None)
@given(
    existing=EXISTING,
    targets=st.dictionaries(NAMES, st.one_of(st.none(), CONTENT), min_size=1),
    stop_after=st.integers(min_value=0, max_value=6),
)
def test_rollback_restores_exactly_after_any_prefix_of_writes(
    existing: dict[str, tuple[bytes, int]], targets: dict[str, bytes | None], stop_after: int
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, existing)
        (root / "untouched.txt").write_text("keep me\n")
        before = snapshot(root)
        changes = changes_for(existing, targets)
        if not changes:
            return
        with applied(root, changes) as journal:
            for change in changes:  # everything was written
                path = root / change.path
                if change.after is None:
                    assert not path.exists()
                else:
                    assert path.read_bytes() == change.after
            assert read_journal(root) == journal
            rollback(journal)
        assert snapshot(root) == before
        assert not journal_dir(root).exists()
        assert recover_tree(root).status == "none"

        # a crash after any number of writes: the journal is on disk, part of the
        # changes are; recovery restores the same tree
        lock = lock_tree(root)
        try:
            write_journal(root, changes, "s", lock.created_state_dir)
            for change in changes[:stop_after]:
                path = root / change.path
                if change.after is None:
                    path.unlink()
                else:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    atomic_write(path, change.after, change.mode)
        finally:
            os.close(lock.fd)  # the process "died": the lock file stays behind
        report = recover_tree(root)
        assert report.status == "restored"
        assert snapshot(root) == before
