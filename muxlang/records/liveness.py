"""Whether the process that wrote a ``running`` run is still alive (its pid, and on
Linux its start time, so that a recycled pid does not make a dead run look alive)."""

from __future__ import annotations

import os


def process_token(pid: int) -> str | None:
    """What identifies a live process beyond its pid (its start time, on Linux), so
    that a recycled pid does not make a dead run look alive."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # the command name is in parentheses and may hold spaces: fields follow the last ")"
    fields = stat.rpartition(b")")[2].split()
    return fields[19].decode() if len(fields) > 19 else None


def process_alive(pid: int | None, token: str | None) -> bool:
    """Whether the process that wrote a ``running`` run still exists."""
    if not pid:
        return False
    if os.path.isdir("/proc/self"):
        current = process_token(pid)
        return current is not None and (token is None or current == token)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
