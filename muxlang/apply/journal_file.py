"""The journal file ``.muxlang/journal/journal.json`` and the originals beside it:
written (fsynced) before any user file changes, read back, removed (``journal.json``
first, so a directory without it means nothing was written)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from muxlang._frozen import frozen
from muxlang.apply.atomic import atomic_write, fsync_dir
from muxlang.apply.changes import FileChange, PathProblem, resolve_inside
from muxlang.apply.errors import JournalError
from muxlang.apply.lock import journal_dir, state_dir_problem

_VERSION = 1
#: ``written`` of a journal entry whose change deletes the file
ABSENT = "absent"


@frozen(slots=True)
class JournalEntry:
    path: str  # relative to the real root
    existed: bool
    mode: int | None
    backup: str | None  # file name under files/
    #: SHA-256 (hex) of the bytes the apply writes, ``"absent"`` when it deletes the
    #: file, None in a journal from before muxlang kept it (then restored as before)
    written: str | None = None


@frozen(slots=True)
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
        written = ABSENT if change.after is None else digest(change.after)
        if change.before is not None:
            backup = f"{n}.orig"
            _write_private(files / backup, change.before, change.mode)
            entries.append(JournalEntry(change.path, True, change.mode, backup, written))
        else:
            entries.append(JournalEntry(change.path, False, None, None, written))
            for d in _missing_dirs(real_root, change.path):
                if d not in dirs:
                    dirs.append(d)
    fsync_dir(files)
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
    fsync_dir(jdir.parent)
    return journal


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def copy_mode(mode: int | None) -> int:
    """Permissions for a copy of a file with ``mode``: never more open to group and
    others than the original (the owner can always read and write its copy)."""
    if mode is None:
        return 0o600
    return (mode & 0o077) | 0o600


def _write_private(path: Path, data: bytes, mode: int | None) -> None:
    """Create ``path`` (it must not exist) with ``data``, fsynced, no wider than ``mode``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), copy_mode(mode))
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
    if value == ABSENT or (
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
        fsync_dir(jdir)
    shutil.rmtree(jdir, ignore_errors=True)
    fsync_dir(jdir.parent)
