"""Writing files the history commands produce: atomic (temp file + rename)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

#: what the store writes as ``.muxlang/.gitignore`` when there is none: muxlang's
#: run-time state (as ``muxlang init`` lists it), and itself — so a project that
#: never ran ``init`` sees nothing new in ``git status`` (``git add -f`` keeps it)
GITIGNORE = """\
# written by muxlang: its run-time state, not configuration (this file ignores itself)
journal/
apply.lock
runs.db
runs.db-*
.gitignore
"""


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one."""
    path = Path(path)
    handle, temp = tempfile.mkstemp(
        dir=path.parent or Path("."), prefix=f".{path.name}.", suffix=".tmp"
    )
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
