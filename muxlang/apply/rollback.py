"""Rollback of an apply from its journal, and recovery of a journal a killed run
left behind (``muxlang recover``)."""

from __future__ import annotations

import contextlib
import glob
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import trio

from muxlang._frozen import frozen
from muxlang.apply.atomic import atomic_write, fsync_dir
from muxlang.apply.errors import JournalError, LockedError
from muxlang.apply.journal_file import (
    ABSENT,
    Journal,
    copy_mode,
    digest,
    read_journal,
    remove_journal,
)
from muxlang.apply.lock import (
    JOURNAL_DIR,
    LOCK_FILE,
    MADE_MARKER,
    STATE_DIR,
    TreeLock,
    journal_dir,
    lock_tree,
    state_dir_problem,
)

#: where rollback keeps muxlang's copy of an original it did not put back
BACKUP_SUFFIX = ".muxlang-backup"


@frozen(slots=True)
class RolledBack:
    """What :func:`rollback` did: ``restored`` the paths put back (or, for files the
    apply created, removed); ``kept`` one line per file or directory left as it is
    because someone changed it after muxlang wrote it (for the user to read)."""

    restored: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()


@trio.lowlevel.enable_ki_protection
def rollback(journal: Journal) -> RolledBack:
    """Put back every journaled file that still holds what the apply wrote, remove
    the files it created; what was done.

    Raises :class:`JournalError` (the journal stays, for ``muxlang recover``) when
    a file cannot be restored."""
    try:
        return _rollback(journal)
    except OSError as exc:
        name = f" {exc.filename}" if exc.filename else ""
        raise JournalError(
            f"could not roll back{name}: {exc.strerror or exc}; the journal is kept in "
            f"{STATE_DIR}/{JOURNAL_DIR} — fix the problem, then run `muxlang recover`"
        ) from exc


def _rollback(journal: Journal) -> RolledBack:
    real_root = journal.root
    files = journal_dir(real_root) / "files"
    restored: list[str] = []
    kept: list[str] = []
    for entry in journal.entries:
        target = real_root / entry.path
        # the path was checked before writing; refuse to follow a symlink planted since
        if _escapes(real_root, target):
            raise JournalError(f"{entry.path}: now resolves outside {real_root}; not touched")
        _remove_temp_files(target)
        if entry.existed:
            assert entry.backup is not None
            try:
                original = (files / entry.backup).read_bytes()
            except OSError as exc:
                raise JournalError(
                    f"the journal's copy of {entry.path} is missing ({exc.strerror or exc})"
                ) from exc
            if _same(target, original, entry.mode):
                continue
            if not _holds(target, entry.written) and not _same(target, original, None):
                backup = _keep_beside(real_root, entry.path, original, entry.mode)
                kept.append(
                    f"kept {entry.path}: it changed after muxlang wrote it, so your version "
                    f"stays; the original from before the apply is in {backup}"
                )
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, original, entry.mode)
            restored.append(entry.path)
        else:
            if not os.path.lexists(target):
                continue
            if not _holds(target, entry.written):
                kept.append(
                    f"kept {entry.path}: the apply created it, but it changed after muxlang "
                    "wrote it, so your version stays"
                )
                continue
            try:
                target.unlink()
            except FileNotFoundError:
                continue
            except IsADirectoryError:
                continue
            fsync_dir(target.parent)
            restored.append(entry.path)
    left: set[str] = set()
    for rel in reversed(journal.dirs):
        directory = real_root / rel
        if directory.is_symlink() or not directory.is_dir():
            continue
        if _escapes(real_root, directory) or Path(os.path.realpath(directory)) == real_root:
            continue  # never remove anything outside the tree, nor the tree itself
        try:
            os.rmdir(directory)  # only when empty: what is in it now, the apply did not write
        except OSError:
            left.add(rel)
            with contextlib.suppress(OSError):
                if any(rel + "/" + name not in left for name in os.listdir(directory)):
                    kept.append(
                        f"kept directory {rel}/: the apply created it, but it holds files "
                        "the apply did not write"
                    )
            continue
        fsync_dir(directory.parent)
    remove_journal(real_root)
    return RolledBack(tuple(restored), tuple(kept))


def _holds(target: Path, written: str | None) -> bool:
    """Whether ``target`` is exactly what the apply left there (None: not recorded)."""
    if written is None:
        return True  # a journal from before muxlang recorded it: restore, as it did then
    if written == ABSENT:
        return not os.path.lexists(target)
    try:
        if not stat.S_ISREG(target.lstat().st_mode):
            return False
        return digest(target.read_bytes()) == written
    except OSError:
        return False


def _keep_beside(real_root: Path, rel: str, original: bytes, mode: int | None) -> str:
    """Save ``original`` next to ``rel`` as ``rel.muxlang-backup`` (``.2``, ``.3`` … when
    taken by something else); the relative path used. Idempotent."""
    target = real_root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:
        name = f"{target.name}{BACKUP_SUFFIX}" + (f".{n}" if n > 1 else "")
        candidate = target.parent / name
        if not os.path.lexists(candidate):
            atomic_write(candidate, original, copy_mode(mode))
            break
        if _same(candidate, original, None):
            break
        n += 1
    return candidate.relative_to(real_root).as_posix()


def _remove_temp_files(target: Path) -> None:
    """Remove what :func:`atomic_write` of ``target`` left when a SIGKILL cut it short."""
    try:
        leftovers = list(target.parent.glob(f".{glob.escape(target.name)}.*.muxtmp"))
    except OSError:
        return
    for leftover in leftovers:
        if leftover.is_file() and not leftover.is_symlink():
            with contextlib.suppress(OSError):
                leftover.unlink()


def _escapes(real_root: Path, target: Path) -> bool:
    try:
        Path(os.path.realpath(target)).relative_to(real_root)
    except ValueError:
        return True
    return False


def _same(target: Path, data: bytes, mode: int | None) -> bool:
    try:
        st = target.lstat()
        if not stat.S_ISREG(st.st_mode):
            return False
        if mode is not None and stat.S_IMODE(st.st_mode) != mode:
            return False
        return target.read_bytes() == data
    except OSError:
        return False


@frozen(slots=True)
class RecoverReport:
    """What :func:`recover_tree` did. ``status``: ``"none"`` (no journal),
    ``"restored"`` (rolled back; ``paths`` lists what changed back) or ``"locked"``
    (a live run holds the tree: nothing touched). ``removed`` is the part of
    ``paths`` that the apply had created and the rollback deleted; ``kept`` says, one
    line each, what was left as it is because it changed after muxlang wrote it."""

    status: str
    paths: tuple[str, ...] = ()
    message: str = ""
    step: str | None = None
    removed: tuple[str, ...] = ()
    kept: tuple[str, ...] = ()


@contextlib.contextmanager
def _held(lock: TreeLock) -> Iterator[TreeLock]:
    try:
        yield lock
    finally:
        lock.release()


def recover_tree(root: Path) -> RecoverReport:
    """Roll back a journal that a killed run left in ``root``.

    Never touches a journal whose run is still alive (it holds the lock).
    Raises :class:`JournalError` for a damaged journal.
    """
    jdir = journal_dir(root)
    problem = state_dir_problem(jdir.parent.parent)
    if problem is not None:
        # muxlang never wrote there (lock_tree refuses it): touch nothing, but do not
        # ignore a journal someone put behind the link either
        if (jdir / "journal.json").exists():
            raise JournalError(problem)
        return RecoverReport("none", message="nothing to recover: no interrupted apply")
    if not jdir.exists():
        _tidy_stale_lock(jdir.parent)
        return RecoverReport("none", message="nothing to recover: no interrupted apply")
    try:
        lock = lock_tree(root)
    except LockedError as exc:
        return RecoverReport("locked", message=str(exc))
    with _held(lock):
        return recover_locked(root, lock)


def recover_locked(root: Path, lock: TreeLock) -> RecoverReport:
    """:func:`recover_tree` for a caller that already holds ``lock``."""
    journal = read_journal(root)
    if journal is None:
        # the run died before committing its journal: nothing had been written
        remove_journal(root)
        return RecoverReport(
            "none", message="nothing to recover: the interrupted apply wrote nothing"
        )
    done = rollback(journal)
    paths = done.restored
    created = {entry.path for entry in journal.entries if not entry.existed}
    if journal.state_dir_created:
        lock.created_state_dir = True
    what = ", ".join(paths) if paths else "no file had changed yet"
    if done.kept:
        what += f" ({len(done.kept)} left as you changed them)"
    step = f" of step {journal.step!r}" if journal.step else ""
    return RecoverReport(
        "restored",
        paths,
        f"rolled back an interrupted apply{step} (pid {journal.pid}): {what}",
        journal.step,
        tuple(path for path in paths if path in created),
        done.kept,
    )


def _tidy_stale_lock(state: Path) -> None:
    """A run killed after taking the lock but before journaling left only its lock
    file (and muxlang's marker) in ``.muxlang/``: take the lock over and let go of it,
    which removes both and the directory muxlang made. A live run's lock stays."""
    try:
        names = set(os.listdir(state))
    except OSError:
        return
    if LOCK_FILE not in names or not names <= {LOCK_FILE, MADE_MARKER}:
        return
    with contextlib.suppress(LockedError):
        lock_tree(state.parent).release()
