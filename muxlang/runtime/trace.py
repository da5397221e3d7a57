"""What each step actually sent, for run records (SPEC section 10).

The step executors call :func:`note` with the rendered command, prompt and
system of a step (or of one for_each item); a run recorder that installed a
:class:`Trace` with :func:`install` reads them back when the step finishes.
Without an installed trace, :func:`note` does nothing and costs one lookup.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

#: (step name, item index or -1) -> what the step sent
Key = tuple[str, int]


class Trace:
    """The rendered inputs of every step of one run, by step and item."""

    def __init__(self) -> None:
        self.sent: dict[Key, dict[str, Any]] = {}

    def take(self, step: str, index: int = -1) -> dict[str, Any]:
        """What ``step`` (item ``index``) sent, removed from the trace."""
        return self.sent.pop((step, index), {})


_current: ContextVar[Trace | None] = ContextVar("muxlang_trace", default=None)


def install(trace: Trace | None) -> None:
    """Make ``trace`` receive the notes of every task started from here on."""
    _current.set(trace)


def item_index(values: Mapping[str, Any]) -> int:
    """The for_each item index of the values a step renders with (-1: not an item)."""
    if "item" not in values:
        return -1
    loop = values.get("loop")
    index = loop.get("index0") if isinstance(loop, Mapping) else None
    return index if isinstance(index, int) else -1


def note(step: str, values: Mapping[str, Any], **fields: Any) -> None:
    """Record what ``step`` sent (``command``, ``prompt``, ``system``, ``target``)."""
    trace = _current.get()
    if trace is None:
        return
    entry = trace.sent.setdefault((step, item_index(values)), {"started": time.time()})
    entry.update(fields)
