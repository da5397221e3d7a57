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

import contextlib
import errno
import fcntl
import glob
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import trio

from muxlang.apply.changes import FileChange, PathProblem, resolve_inside
from muxlang.apply.errors import JournalError, LockedError

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
    "recover_tree",
    "rollback",
]

STATE_DIR = ".muxlang"
JOURNAL_DIR = "journal"
LOCK_FILE = "apply.lock"
#: present in ``.muxlang/`` when muxlang created the directory: it removes it again
#: once nothing else is in it (any run may, so a killed or racing run leaves none)
MADE_MARKER = ".made-by-muxlang"
#: where rollback keeps muxlang's copy of an original it did not put back
BACKUP_SUFFIX = ".muxlang-backup"
_VERSION = 1
#: ``written`` of a journal entry whose change deletes the file
_ABSENT = "absent"

#: called after each file written by :func:`apply_changes` with (path, count so far).
#: Tests set it in a child process to die between two writes; never set in production.
AFTER_WRITE_HOOK: Callable[[str, int], None] | None = None


def state_dir_problem(real_root: Path) -> str | None:
    """Why muxlang must not keep its journal or lock under ``real_root`` (None: fine).

    ``.muxlang/`` can be committed to a repository, so it may be a symlink pointing
    anywhere; following it would write the lock there and let rollback remove a
    directory named ``journal`` outside the project.
    """
    state = real_root / STATE_DIR
    for path in (state, state / JOURNAL_DIR, state / LOCK_FILE):
        if path.is_symlink():
            return (
                f"{path} is a symbolic link; muxlang keeps its apply journal and lock only "
                "in a real directory inside the project (remove the link)"
            )
    return None


def journal_dir(root: Path) -> Path:
    return Path(os.path.realpath(root)) / STATE_DIR / JOURNAL_DIR


# --------------------------------------------------------------------------- atomic writes


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: Path, data: bytes, mode: int | None) -> None:
    """Replace ``path`` with ``data``: temp file in the same directory, fsync, rename.

    ``mode`` None: a new file gets the default permissions (0o666 minus umask).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".muxtmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if mode is None:
                umask = os.umask(0)
                os.umask(umask)
                os.fchmod(f.fileno(), 0o666 & ~umask)
            else:
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


# --------------------------------------------------------------------------- the lock


@dataclass
class TreeLock:
    """``.muxlang/apply.lock``, held with ``flock`` (so a dead holder never blocks)."""

    path: Path
    fd: int
    created_state_dir: bool

    def release(self) -> None:
        if self.fd < 0:
            return
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(self.fd)
        self.fd = -1
        _tidy_state_dir(self.path.parent)


def _tidy_state_dir(state: Path) -> None:
    """Remove ``.muxlang/`` when muxlang made it and nothing but its marker is left.

    Any run does this, not only the one that made it: a run killed while journaling,
    or the loser of two runs racing to create the directory, leaves none behind.
    ``.muxlang/`` holding anything else (a config, another run's lock) stays.
    """
    try:
        names = os.listdir(state)
    except OSError:
        return
    if names != [MADE_MARKER] or state_dir_problem(state.parent) is not None:
        return
    # another run may take the lock in between: its lock file makes rmdir fail
    # (ENOTEMPTY) and the marker is put back, so the directory stays marked
    marker = state / MADE_MARKER
    with contextlib.suppress(OSError):
        os.unlink(marker)
    try:
        os.rmdir(state)
    except OSError:
        with contextlib.suppress(OSError):
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        return
    _fsync_dir(state.parent)


def _make_state_dir(real_root: Path, state: Path) -> bool:
    """Create ``.muxlang/`` with its marker (True), or find it there (False)."""
    if state.exists():
        return False
    try:
        state.mkdir()
    except FileExistsError:
        return False
    except OSError as exc:
        raise LockedError(f"cannot create {state}: {exc.strerror or exc}", None) from exc
    with contextlib.suppress(OSError):
        os.close(os.open(state / MADE_MARKER, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644))
        _fsync_dir(state)
    _fsync_dir(real_root)  # the journal inside it must survive a power cut
    return True


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def lock_tree(root: Path) -> TreeLock:
    """Take the tree's apply lock, or raise :class:`LockedError` naming the holder.

    A lock file left by a dead process is taken over (its ``flock`` died with it).
    """
    real_root = Path(os.path.realpath(root))
    state = real_root / STATE_DIR
    problem = state_dir_problem(real_root)
    if problem is not None:
        raise LockedError(problem, None)
    path = state / LOCK_FILE
    created = False
    for _ in range(20):
        # a racing run may remove an empty .muxlang/ it made between our mkdir and open
        created = _make_state_dir(real_root, state) or created
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise LockedError(f"cannot open {path}: {exc.strerror or exc}", None) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockedError(f"cannot lock {path}: {exc.strerror or exc}", None) from exc
            pid = _read_pid(path)
            who = f"another muxlang run (pid {pid})" if pid else "another muxlang run"
            raise LockedError(
                f"{who} is applying edits in {real_root} right now; "
                f"wait for it to finish (lock: {STATE_DIR}/{LOCK_FILE})",
                pid,
            ) from None
        # the file may have been unlinked by its previous holder between open and flock
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if not same:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        return TreeLock(path, fd, created)
    raise LockedError(f"could not take {path}: it keeps changing", None)


# --------------------------------------------------------------------------- the journal


@dataclass(frozen=True, slots=True)
class JournalEntry:
    path: str  # relative to the real root
    existed: bool
    mode: int | None
    backup: str | None  # file name under files/
    #: SHA-256 (hex) of the bytes the apply writes, ``"absent"`` when it deletes the
    #: file, None in a journal from before muxlang kept it (then restored as before)
    written: str | None = None


@dataclass(frozen=True, slots=True)
class Journal:
    root: Path  # the real project root
    entries: tuple[JournalEntry, ...]
    dirs: tuple[str, ...]  # directories the step creates, parents first
    pid: int
    step: str | None
    #: the run created ``.muxlang/`` itself (so recovery removes it when empty)
    state_dir_created: bool = False


def _missing_dirs(real_root: Path, rel: str) -> list[str]:
    missing: list[str] = []
    parent = (real_root / rel).parent
    while parent != real_root and not parent.exists():
        missing.append(parent.relative_to(real_root).as_posix())
        parent = parent.parent
    return list(reversed(missing))


def write_journal(
    root: Path,
    changes: tuple[FileChange, ...],
    step: str | None,
    state_dir_created: bool = False,
) -> Journal:
    """Record the original bytes of every file about to change, fsynced, before any write."""
    real_root = Path(os.path.realpath(root))
    jdir = journal_dir(real_root)
    if jdir.exists():
        raise JournalError(
            f"a journal from an interrupted run exists at {jdir}; run `muxlang recover` first"
        )
    try:
        return _write_journal(real_root, jdir, changes, step, state_dir_created)
    except BaseException:
        # nothing was written to the tree yet: an incomplete journal must not stay
        shutil.rmtree(jdir, ignore_errors=True)
        raise


def _write_journal(
    real_root: Path,
    jdir: Path,
    changes: tuple[FileChange, ...],
    step: str | None,
    state_dir_created: bool,
) -> Journal:
    files = jdir / "files"
    jdir.mkdir(mode=0o700, parents=True)
    files.mkdir(mode=0o700)
    entries: list[JournalEntry] = []
    dirs: list[str] = []
    for n, change in enumerate(changes):
        written = _ABSENT if change.after is None else _digest(change.after)
        if change.before is not None:
            backup = f"{n}.orig"
            _write_private(files / backup, change.before, change.mode)
            entries.append(JournalEntry(change.path, True, change.mode, backup, written))
        else:
            entries.append(JournalEntry(change.path, False, None, None, written))
            for d in _missing_dirs(real_root, change.path):
                if d not in dirs:
                    dirs.append(d)
    _fsync_dir(files)
    journal = Journal(real_root, tuple(entries), tuple(dirs), os.getpid(), step, state_dir_created)
    document = {
        "version": _VERSION,
        "pid": journal.pid,
        "step": step,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": [
            {
                "path": e.path,
                "existed": e.existed,
                "mode": e.mode,
                "backup": e.backup,
                "written": e.written,
            }
            for e in entries
        ],
        "dirs": list(dirs),
        "state_dir_created": state_dir_created,
    }
    atomic_write(jdir / "journal.json", json.dumps(document, indent=2).encode(), 0o600)
    _fsync_dir(jdir.parent)
    return journal


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _copy_mode(mode: int | None) -> int:
    """Permissions for a copy of a file with ``mode``: never more open to group and
    others than the original (the owner can always read and write its copy)."""
    if mode is None:
        return 0o600
    return (mode & 0o077) | 0o600


def _write_private(path: Path, data: bytes, mode: int | None) -> None:
    """Create ``path`` (it must not exist) with ``data``, fsynced, no wider than ``mode``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), _copy_mode(mode))
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def read_journal(root: Path) -> Journal | None:
    """The journal a run left, None when there is none (or it never got committed)."""
    real_root = Path(os.path.realpath(root))
    jdir = journal_dir(real_root)
    path = jdir / "journal.json"
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("version") != _VERSION:
            raise JournalError(f"{path}: unknown journal version {document.get('version')!r}")
        entries = tuple(
            JournalEntry(
                str(e["path"]),
                bool(e["existed"]),
                e.get("mode"),
                e.get("backup"),
                _written(e.get("written")),
            )
            for e in document["files"]
        )
        dirs = tuple(str(d) for d in document.get("dirs", []))
        pid = int(document.get("pid", 0))
        step = document.get("step")
        created = bool(document.get("state_dir_created", False))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise JournalError(f"the journal {path} is damaged ({exc}); inspect it by hand") from exc
    for e in entries:
        if e.existed and (not e.backup or "/" in e.backup or e.backup.startswith(".")):
            raise JournalError(f"the journal {path} is damaged (backup of {e.path}: {e.backup!r})")
    # a journal is data on disk (it could even be committed to a repository): every
    # path it names must be one an apply could have written, inside the root
    made = [e.path for e in entries if not e.existed]
    for rel in (*(e.path for e in entries), *dirs):
        try:
            resolve_inside(real_root, rel)
        except (PathProblem, OSError) as exc:
            raise JournalError(
                f"the journal {path} is damaged ({rel!r}: the path {exc}); nothing was touched"
            ) from None
    for rel in dirs:
        if not any(p.startswith(rel.rstrip("/") + "/") for p in made):
            raise JournalError(
                f"the journal {path} is damaged (directory {rel!r} holds no file the apply "
                "created); nothing was touched"
            )
    return Journal(real_root, entries, dirs, pid, step, created)


def _written(value: object) -> str | None:
    if value is None:
        return None
    if value == _ABSENT or (
        isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)
    ):
        return str(value)
    raise ValueError(f"bad written hash {value!r}")


def remove_journal(root: Path) -> None:
    """Remove the journal: ``journal.json`` first (fsynced), so a kill part-way through
    leaves a journal that means "nothing to roll back", never a partial one."""
    jdir = journal_dir(root)
    if state_dir_problem(jdir.parent.parent) is not None:
        return  # never follow a symlinked state directory
    try:
        os.unlink(jdir / "journal.json")
    except FileNotFoundError:
        pass
    except OSError:
        return  # the journal stays whole, for `muxlang recover`
    else:
        _fsync_dir(jdir)
    shutil.rmtree(jdir, ignore_errors=True)
    _fsync_dir(jdir.parent)


# --------------------------------------------------------------------------- writing


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
                _fsync_dir(target.parent)
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


# --------------------------------------------------------------------------- rollback


@dataclass(frozen=True, slots=True)
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
            _fsync_dir(target.parent)
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
        _fsync_dir(directory.parent)
    remove_journal(real_root)
    return RolledBack(tuple(restored), tuple(kept))


def _holds(target: Path, written: str | None) -> bool:
    """Whether ``target`` is exactly what the apply left there (None: not recorded)."""
    if written is None:
        return True  # a journal from before muxlang recorded it: restore, as it did then
    if written == _ABSENT:
        return not os.path.lexists(target)
    try:
        if not stat.S_ISREG(target.lstat().st_mode):
            return False
        return _digest(target.read_bytes()) == written
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
            atomic_write(candidate, original, _copy_mode(mode))
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


# --------------------------------------------------------------------------- recovery


@dataclass(frozen=True, slots=True)
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
