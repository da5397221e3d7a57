"""The apply journal, atomic writes, the tree lock, rollback and recovery.

Layout under the project root::

    .muxlang/apply.lock             pid of the run applying edits (flock-held)
    .muxlang/journal/journal.json   what is about to change (the commit point)
    .muxlang/journal/files/N.orig   original bytes of each file about to change
    .muxlang/.made-by-muxlang       muxlang created ``.muxlang/`` (so it may remove it)

Order of operations (:func:`apply_changes`): the original bytes are written and
fsynced (with the original's permissions), then ``journal.json`` (atomically,
fsynced; it holds the SHA-256 of every file's new bytes) — only then is the
first user file touched, each one atomically (temp file in the same directory,
fsync, rename, fsync of the directory). A journal directory without
``journal.json`` means nothing was written yet, so removing a journal unlinks
``journal.json`` first. :func:`rollback` puts back a journaled file only while
it still holds exactly the bytes muxlang wrote (else the user's version stays
and the original is saved beside it as ``FILE.muxlang-backup``), removes the
files and the now-empty directories the step created, leaves every other file
alone, never runs git, and is idempotent: a rollback killed half-way is
finished by the next one. After a successful step or a rollback the journal is
removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import trio

from muxlang.apply.atomic import atomic_write, fsync_dir
from muxlang.apply.changes import FileChange, PathProblem, resolve_inside
from muxlang.apply.errors import JournalError
from muxlang.apply.journal_file import Journal, read_journal, remove_journal, write_journal
from muxlang.apply.lock import TreeLock, journal_dir, lock_tree
from muxlang.apply.rollback import (
    BACKUP_SUFFIX,
    RecoverReport,
    RolledBack,
    recover_locked,
    recover_tree,
    rollback,
)

__all__ = [
    "AFTER_WRITE_HOOK",
    "BACKUP_SUFFIX",
    "Journal",
    "RecoverReport",
    "RolledBack",
    "TreeLock",
    "apply_changes",
    "atomic_write",
    "journal_dir",
    "lock_tree",
    "read_journal",
    "recover_locked",
    "recover_tree",
    "remove_journal",
    "rollback",
    "write_journal",
]

#: called after each file written by :func:`apply_changes` with (path, count so far).
#: Tests set it in a child process to die between two writes; never set in production.
AFTER_WRITE_HOOK: Callable[[str, int], None] | None = None


@trio.lowlevel.enable_ki_protection
def apply_changes(
    root: Path, changes: tuple[FileChange, ...], step: str | None, lock: TreeLock
) -> Journal:
    """Journal, then write every change atomically (``lock`` must be held). On any
    error while writing, the changes made so far are rolled back before it propagates."""
    journal = write_journal(root, changes, step, lock.created_state_dir)
    real_root = journal.root
    try:
        for count, change in enumerate(changes, 1):
            target = _target(real_root, change.path)
            if change.after is None:
                target.unlink()
                fsync_dir(target.parent)
            else:
                if change.before is None:
                    target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write(target, change.after, change.mode)
            if AFTER_WRITE_HOOK is not None:
                AFTER_WRITE_HOOK(change.path, count)
    except BaseException:
        rollback(journal)
        raise
    return journal


def _target(real_root: Path, rel: str) -> Path:
    try:
        target, _ = resolve_inside(real_root, rel)
    except PathProblem as exc:
        raise JournalError(f"{rel}: the path {exc}") from exc
    return target
