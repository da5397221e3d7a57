"""The Trio runtime: runs a compiled :class:`~muxlang.compiler.plan.Plan`.

``execute(plan, args=..., query=..., reporter=...)`` schedules every step with
structured concurrency (:mod:`muxlang.runtime.scheduler`); shell, query and apply
steps run in :mod:`muxlang.runtime.steps`; subprocesses go through
:mod:`muxlang.runtime.process`; :mod:`muxlang.runtime.scripted` is an in-process
query service for tests.
"""

from muxlang.runtime.args import ArgsError, resolve_args
from muxlang.runtime.events import NullReporter, Reporter
from muxlang.runtime.scheduler import RunResult, execute

__all__ = ["ArgsError", "NullReporter", "Reporter", "RunResult", "execute", "resolve_args"]
