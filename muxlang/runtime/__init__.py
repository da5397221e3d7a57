"""The Trio runtime: runs a compiled :class:`~muxlang.compiler.plan.Plan`.

``execute(plan, args=..., query=..., reporter=...)`` schedules every step with
structured concurrency (:mod:`muxlang.runtime.scheduler`); each step runs by its
type's hook (:mod:`muxlang.steps`) with :mod:`muxlang.runtime.steps`' executor
as its runner; subprocesses go through
:mod:`muxlang.runtime.process`. (An in-process scripted query service for tests
is ``tests/fakes/scripted.py``.)

Names are imported lazily, so ``import muxlang.runtime.process`` or
``muxlang.runtime.backends`` (the gateway) does not load the scheduler and the
template engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from muxlang.runtime.args import ArgsError, resolve_args
    from muxlang.runtime.events import NullReporter, Reporter
    from muxlang.runtime.scheduler import RunResult, execute

__all__ = ["ArgsError", "NullReporter", "Reporter", "RunResult", "execute", "resolve_args"]

_EXPORTS = {
    "ArgsError": "args",
    "resolve_args": "args",
    "NullReporter": "events",
    "Reporter": "events",
    "RunResult": "scheduler",
    "execute": "scheduler",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'muxlang.runtime' has no attribute {name!r}")
    return getattr(importlib.import_module(f"muxlang.runtime.{module}"), name)
