"""Files only this user's muxlang wrote: read them back, or learn that it must not.

A file muxlang keeps for itself outside the project (the grammar cache, the
records key) is written with mode 0600. Read back, it is trusted only when it
still is exactly that: a regular file (not a link: ``O_NOFOLLOW``; not a FIFO:
``O_NONBLOCK``), owned by this user, mode 0600 — a file from a git checkout or
an archive is never 0600 unless the umask is 077. Standard library only: the
run-record writer imports this without site-packages.
"""

from __future__ import annotations

import os
import stat

__all__ = ["read_private"]


def read_private(path: str | os.PathLike[str]) -> bytes | None:
    """The bytes of ``path`` when it is this user's own 0600 regular file, else None
    (absent, unreadable, a link, someone else's, or readable by others)."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (
            not stat.S_ISREG(info.st_mode)
            or info.st_uid != os.getuid()
            or stat.S_IMODE(info.st_mode) != 0o600
        ):
            return None
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)
