"""What each step actually sent, for run records (SPEC section 10).

The step executors call :func:`note` with the rendered command, prompt and
system of a step (or of one for_each item); a run recorder that installed a
:class:`Trace` with :func:`install` reads them back when the step finishes.
Without an installed trace, :func:`note` does nothing and costs one lookup.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from muxlang.steps.uses import GROUP

#: (step name, item index or -1) -> what the step sent
Key = tuple[str, int]


class Trace:
    """The rendered inputs of every step of one run, by step and item."""

    def __init__(self) -> None:
        self.sent: dict[Key, dict[str, Any]] = {}
        #: ``--resume``: called before a step runs with its compiled step and the
        #: run's values; returns the earlier outcome to reuse, or None to run it
        self.reuse: Callable[[Any, Mapping[str, Any]], Any] | None = None
        #: called with (step, text) as a long step moves on ("verify, attempt 2/3")
        self.on_progress: Callable[[str, str], None] | None = None
        #: called with (step, record) when an iteration of a repeating step, or a
        #: nested step of a ``uses`` call, ends, so that a run killed before the
        #: step ends keeps what it finished (the run recorder)
        self.on_iteration: Callable[[str, Mapping[str, Any]], None] | None = None
        #: called before the run reaches outside its process (:func:`outside`), so
        #: that what the run recorder holds is written first
        self.on_outside: Callable[[], None] | None = None

    def get(self, step: str, index: int = -1) -> dict[str, Any]:
        """What ``step`` (item ``index``) sent (empty when nothing was noted)."""
        return self.sent.get((step, index), {})

    def mark(self, key: Key, **fields: Any) -> None:
        """Add facts about a step found after it rendered (``origin="cache"``, ...)."""
        self.sent.setdefault(key, {"started": time.time()}).update(fields)


_current: ContextVar[Trace | None] = ContextVar("muxlang_trace", default=None)
#: the step (and item) whose task this is, once it noted what it sent
_step: ContextVar[Key | None] = ContextVar("muxlang_step", default=None)


def current_trace() -> Trace | None:
    return _current.get()


def qualified(step: str) -> str:
    """``step`` as the run reports it: ``outer.inner`` inside a ``uses`` call (the
    group's name, :data:`muxlang.steps.uses.GROUP`), else ``step`` itself."""
    group = GROUP.get()
    return f"{group}.{step}" if group else step


def current_step() -> Key | None:
    """The step (and item index) running in this task, as the last :func:`note` said;
    a query service uses it to find the step's settings (``cache``)."""
    return _step.get()


def reused(compiled: Any, values: Mapping[str, Any]) -> Any:
    """The earlier outcome of a step when the run resumes and may reuse it (else None)."""
    trace = _current.get()
    if trace is None or trace.reuse is None:
        return None
    outcome = trace.reuse(compiled, values)
    if outcome is not None:
        trace.mark((qualified(compiled.name), -1), origin="reused")
    return outcome


def progress(step: str, text: str) -> None:
    """Tell whoever watches the run that ``step`` is at ``text`` (e.g. an apply step's
    ``verify, attempt 2/3``); nothing happens when nobody watches."""
    trace = _current.get()
    if trace is not None and trace.on_progress is not None:
        trace.on_progress(step, text)


def members(role: str, outcome: list[tuple[str, str, str]]) -> None:
    """A parallel role's members and how each did (``answered``, ``failed``,
    ``unavailable``, and why), kept for the step that asked."""
    trace = _current.get()
    key = _step.get()
    if trace is not None and key is not None:
        trace.mark(key, members=[{"entry": e, "status": s, "why": w} for e, s, w in outcome])


def outside() -> None:
    """The run is about to reach outside its process: start a process, send a
    request, change a file. The run recorder writes the records it holds first, so
    that nothing a step's end let start is seen before that step's record is safe."""
    trace = _current.get()
    if trace is not None and trace.on_outside is not None:
        trace.on_outside()


def rolled_back(step: str, paths: tuple[str, ...]) -> None:
    """An apply step stopped half-way put ``paths`` back as they were."""
    trace = _current.get()
    if trace is not None and paths:
        trace.mark((step, -1), rolled_back=list(paths))


def rollbacks(trace: Trace | None) -> list[tuple[str, list[str]]]:
    """(step, paths) of every apply step whose files were rolled back when stopped."""
    if trace is None:
        return []
    return [
        (key[0], list(entry["rolled_back"]))
        for key, entry in trace.sent.items()
        if entry.get("rolled_back")
    ]


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
    """Record what ``step`` sent (``command``, ``prompt``, ``system``, ``target``); a
    nested step's under its qualified name (``outer.inner``)."""
    key = (qualified(step), item_index(values))
    _step.set(key)
    trace = _current.get()
    if trace is None:
        return
    entry = trace.sent.setdefault(key, {"started": time.time()})
    entry.update(fields)
