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


@contextmanager
def paused_then_frozen() -> Iterator[None]:
    """:func:`paused_gc` for a one-shot command (``validate``) whose objects live
    until the process exits: what the block made is frozen (``gc.freeze()``, out of
    every later collection's reach) before the collector resumes.

    Resuming would otherwise scan every object made during the pause once (~8 ms
    after a 50-step validate: the first allocation after ``gc.enable()`` finds the
    youngest generation far over its threshold), and at exit Python collects once
    more over the whole heap (~20 ms) to free nothing the end of the process would
    not. In a process that goes on (tests calling the CLI), objects frozen here that
    later become garbage in reference cycles are kept until it exits; what reference
    counting frees is freed as always."""
    with paused_gc():
        try:
            yield
        finally:
            gc.freeze()
