"""Pausing Python's cyclic garbage collector around short, allocation-heavy work.

Checking a workflow builds many objects that stay alive until the check ends
(the TOML tree, template trees, AST nodes, spans). Python's collector counts
allocations, not garbage: every 700 net allocations it scans the youngest
objects, and now and then the whole heap. A check of 20,000 steps spent more
than half its CPU in those scans, and more per step the bigger the workflow
(see docs/performance.md, "validate CPU per step"). The objects a check builds
hold no reference cycles worth collecting early, so the collector is paused
for the check and resumed after it, like build tools that raise its
thresholds for the same reason. Nothing is lost: garbage with cycles made
meanwhile is collected on the next scan after the pause.
"""

from __future__ import annotations

import atexit
import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused_gc() -> Iterator[None]:
    """Run the block with the cyclic collector off; nested pauses are harmless,
    and a collector the caller had disabled stays disabled."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


_freeze_registered = False


def freeze_at_exit() -> None:
    """When the interpreter exits, leave every object out of its final collection.

    At exit Python collects once more over the whole heap, to run finalizers of
    objects in reference cycles; for a short command like ``validate`` that walk
    costs ~20 ms of its ~250 and frees nothing the end of the process would not.
    ``gc.freeze()`` from an ``atexit`` handler moves every object out of the
    collector's reach first (standard streams are still flushed after it).
    Registered once per process, however many commands run in it."""
    global _freeze_registered
    if not _freeze_registered:
        _freeze_registered = True
        atexit.register(gc.freeze)
