"""Where muxlang keeps analysed Lark grammars between runs, and how it trusts them.

Building an LALR parser costs far more than a whole ``muxlang validate`` (about
0.2 s for the two grammars, against 10 ms to load them), so the analysed tables
are kept in the user's cache directory. No file there can run code:

- the tables are stored as plain data (``marshal`` of Lark's own serialized
  form: dicts, lists, strings, numbers), never as a pickle, and loaded with
  ``Lark.load`` from that dict. ``marshal`` only builds values: it calls no
  constructor and runs nothing (the one code-like thing it can build, a code
  object, is inert: nothing in Lark executes one, and calling it is a
  TypeError), so a file that is not what muxlang wrote fails to load and is
  rebuilt. (Checking every value's type as well cost 2 ms per ``validate``.)
- the directory is ``$XDG_CACHE_HOME/muxlang`` when that is an absolute path
  (a relative one is ignored, as the XDG spec says, so a repository cannot
  point it into itself), else ``~/.cache/muxlang``;
- a cache file is used only when it is a regular file owned by the user with
  mode 0600 (what muxlang writes; a file from a git checkout is never 0600
  unless the umask is 077), in a directory owned by the user that group and
  others cannot write; anything else is ignored and the grammar rebuilt;
- the file starts with a key (a hash of the grammar, its options, Lark's and
  Python's versions): a stale file is rebuilt, never loaded;
- it is written to a temporary file (0600) and renamed into place, so a
  concurrent run never reads half of one.
"""

from __future__ import annotations

import contextlib
import hashlib
import marshal
import os
import stat
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

import lark

from muxlang._private import read_private

__all__ = ["cache_dir", "cache_path", "load_lark"]

_MAGIC = b"muxlang-lark-tables-1\n"


def cache_dir(environ: Mapping[str, str] = os.environ) -> str | None:
    """The cache directory (absolute), or None when there is no usable home."""
    base = environ.get("XDG_CACHE_HOME", "")
    if not (base and os.path.isabs(base)):
        home = environ.get("HOME") or os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return os.path.join(base, "muxlang")


def _key(text: str, options: Mapping[str, Any]) -> str:
    described = repr(sorted(options.items()))
    versions = f"{lark.__version__} {sys.version_info[:3]} {marshal.version}"
    return hashlib.sha256(f"{versions}\n{described}\n{text}".encode()).hexdigest()


def cache_path(name: str, text: str, options: Mapping[str, Any], directory: str) -> str:
    return os.path.join(directory, f"{name}-{_key(text, options)[:16]}.tables")


def _trusted_dir(directory: str) -> bool:
    """Owned by the user, a real directory, not writable by group or others."""
    try:
        info = os.lstat(directory)
    except OSError:
        return False
    return (
        stat.S_ISDIR(info.st_mode)
        and info.st_uid == os.getuid()
        and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    )


def _read(path: str, key: str) -> dict[str, Any] | None:
    """The stored tables, or None when the file is absent, foreign or stale."""
    data = read_private(path)
    if data is None:
        return None
    header = _MAGIC + key.encode() + b"\n"
    if not data.startswith(header):
        return None
    try:
        value = marshal.loads(data[len(header) :])
    except (EOFError, ValueError, TypeError):
        return None
    if not (isinstance(value, dict) and set(value) == {"data", "memo"}):
        return None
    return value


def _write(path: str, key: str, parser: lark.Lark) -> None:
    """Store the tables atomically with mode 0600; any failure leaves no file."""
    data, memo = parser.memo_serialize([lark.lexer.TerminalDef, lark.grammar.Rule])
    try:
        payload = marshal.dumps({"data": data, "memo": memo})
    except ValueError:  # a value marshal cannot hold: no cache, nothing lost
        return
    directory = os.path.dirname(path)
    try:
        fd, temp = tempfile.mkstemp(prefix=".tables-", dir=directory)  # created 0600
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_MAGIC + key.encode() + b"\n" + payload)
        os.replace(temp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temp)


def load_lark(
    name: str, text: str, environ: Mapping[str, str] = os.environ, **options: Any
) -> lark.Lark:
    """``lark.Lark(text, **options)``, its analysed tables kept in the cache
    directory between runs when that directory can be trusted (LALR only)."""
    directory = cache_dir(environ)
    if directory is None:
        return lark.Lark(text, **options)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError:
        return lark.Lark(text, **options)
    if not _trusted_dir(directory):
        return lark.Lark(text, **options)
    key = _key(text, options)
    path = cache_path(name, text, options, directory)
    stored = _read(path, key)
    if stored is not None:
        try:
            return lark.Lark.load(stored)
        except Exception:  # a damaged file of ours: rebuild it
            pass
    parser = lark.Lark(text, **options)
    _write(path, key, parser)
    return parser
