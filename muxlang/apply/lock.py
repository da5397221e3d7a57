"""The state directory ``.muxlang/`` (where the journal and the lock live, never
behind a symlink) and the tree lock ``.muxlang/apply.lock``, held with ``flock``."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from dataclasses import dataclass
from pathlib import Path

from muxlang.apply.atomic import fsync_dir
from muxlang.apply.errors import LockedError

STATE_DIR = ".muxlang"
JOURNAL_DIR = "journal"
LOCK_FILE = "apply.lock"
#: present in ``.muxlang/`` when muxlang created the directory: it removes it again
#: once nothing else is in it (any run may, so a killed or racing run leaves none)
MADE_MARKER = ".made-by-muxlang"


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
    fsync_dir(state.parent)


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
        fsync_dir(state)
    fsync_dir(real_root)  # the journal inside it must survive a power cut
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
