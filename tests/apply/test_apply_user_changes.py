"""Rollback never overwrites a change made after muxlang wrote a file (property test).

Whatever set of changes is applied and whichever of the written files the user
changes afterwards, a rollback puts back exactly the files that still hold what
muxlang wrote, keeps every file the user changed (with the original beside it as
``FILE.muxlang-backup`` when there was one), and touches nothing else.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from muxlang.apply import FileChange
from muxlang.apply.journal import BACKUP_SUFFIX, rollback
from tests.apply.test_apply_journal import CONTENT, EXISTING, NAMES, applied, build, changes_for

USER = b"the user's own bytes\n"


@settings(max_examples=60, deadline=None)
@given(
    existing=EXISTING,
    targets=st.dictionaries(NAMES, st.one_of(st.none(), CONTENT), min_size=1),
    touched=st.sets(NAMES),
)
def test_rollback_keeps_every_file_changed_after_the_apply(
    existing: dict[str, tuple[bytes, int]],
    targets: dict[str, bytes | None],
    touched: set[str],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        build(root, existing)
        changes = changes_for(existing, targets)
        if not changes:
            return
        with applied(root, changes) as journal:
            by_path = {c.path: c for c in changes}
            # the user writes some of the files the apply wrote (or deleted)
            mine = {p for p in touched if p in by_path and by_path[p].after != USER}
            for rel in mine:
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                (root / rel).write_bytes(USER)
            done = rollback(journal)
        for rel, change in by_path.items():
            path = root / rel
            if rel in mine:
                assert path.read_bytes() == USER  # never overwritten, never removed
                assert any(line.startswith(f"kept {rel}:") for line in done.kept)
                _check_backup(path, change)
            elif change.before is None:
                assert not path.exists()
            else:
                assert path.read_bytes() == change.before
                assert change.mode is not None
                assert stat.S_IMODE(path.stat().st_mode) == change.mode


def _check_backup(path: Path, change: FileChange) -> None:
    backup = path.with_name(path.name + BACKUP_SUFFIX)
    if change.before is None or change.before == USER:
        assert not backup.exists()
        return
    assert backup.read_bytes() == change.before
    assert change.mode is not None
    # never more open to group and others than the original
    assert stat.S_IMODE(backup.stat().st_mode) & 0o077 == change.mode & 0o077
    assert os.access(backup, os.R_OK)
