"""Where muxlang keeps analysed Lark grammars between runs.

Building an LALR parser (and, with ``strict=True``, checking every pair of
terminals for regex collisions) costs far more than a whole ``muxlang
validate``; Lark can pickle the result and load it in a millisecond. The file
goes in the user's own cache directory (``$XDG_CACHE_HOME/muxlang``, default
``~/.cache/muxlang``), never a shared temp directory, because it is a pickle.
Lark stores a hash of the grammar and its options in the file and rebuilds
when they differ, so an edited grammar or a new Lark never loads a stale one.
"""

from __future__ import annotations

import os

import lark

__all__ = ["lark_cache_file"]


def lark_cache_file(name: str) -> str | bool:
    """The cache path for grammar ``name``, or ``False`` (no cache) when the
    directory cannot be created or written."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "muxlang")
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return False
    if not os.access(folder, os.W_OK):
        return False
    return os.path.join(folder, f"{name}-lark-{lark.__version__}.cache")
