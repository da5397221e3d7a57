"""A secret of this user's, kept outside every project, that keys the answer cache
and signs the runs ``--resume`` may reuse.

``.muxlang/runs.db`` lies inside the project, so a repository can commit one.
Cached answers are found by an HMAC of their cache key under this secret: rows
written with another secret (on another machine, by another user, or made up)
are never found, so a committed database cannot hand a cache-enabled workflow
answers no backend gave; likewise ``--resume`` reuses only runs signed with it.

The secret is 32 random bytes in ``$XDG_STATE_HOME/muxlang/records.key``
(default ``~/.local/state``), created on first use with mode 0600. A file that
is not this user's own 0600 regular file (:func:`muxlang._private.read_private`)
is not trusted: the process then uses a secret of its own, and the cache only
hits within it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from muxlang._private import read_private

__all__ = ["key_path", "keyed", "signature", "signed", "user_key"]

KEY_BYTES = 32
_cached: dict[str, bytes] = {}


def key_path(environ: Mapping[str, str] = os.environ) -> Path:
    state = environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state):  # a relative XDG value is ignored, as the spec says
        state = os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "muxlang" / "records.key"


def _read(path: Path) -> bytes | None:
    data = read_private(path)
    return data if data is not None and len(data) == KEY_BYTES else None


def _create(path: Path) -> bytes | None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:  # another run made it first
        return _read(path)
    except OSError:
        return None
    key = secrets.token_bytes(KEY_BYTES)
    try:
        os.write(fd, key)
    finally:
        os.close(fd)
    return key


def user_key(environ: Mapping[str, str] = os.environ) -> bytes:
    """This user's secret (created on first use), else one for this process only."""
    path = key_path(environ)
    where = str(path)
    key = _cached.get(where)
    if key is None:
        if os.name != "posix":  # no uid to check: one secret per process
            key = secrets.token_bytes(KEY_BYTES)
        else:
            key = _read(path) or _create(path) or secrets.token_bytes(KEY_BYTES)
        _cached[where] = key
    return key


def keyed(text: str, environ: Mapping[str, str] = os.environ) -> str:
    """``text`` (a cache key) as it is stored: its HMAC-SHA256 under :func:`user_key`."""
    return hmac.new(user_key(environ), text.encode(), hashlib.sha256).hexdigest()


def signature(run_id: str) -> str:
    """What marks run ``run_id`` as recorded by this user's muxlang."""
    return keyed("run:" + run_id)


def signed(run_id: str, mac: object) -> bool:
    return isinstance(mac, str) and hmac.compare_digest(mac, signature(run_id))
