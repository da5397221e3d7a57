"""What a step type is: one :class:`StepKind` per type, registered in
:data:`muxlang.steps.REGISTRY`.

A step type's module (``muxlang/steps/shell.py``, ``query.py``, ``apply.py``)
holds everything the rest of muxlang needs to know about that type: the
fields its record has (for ``steps.X.FIELD`` checks and the record a run
starts from), which of its templates become shell text (MUX040), the other
steps it reads besides its templates (graph edges, MUX021), its own static
checks, what ``--dry-run`` shows of it, how ``graph`` draws it, and how it
runs. The compiler, the runtime, ``--dry-run`` and ``graph`` ask the registry
instead of testing the step's class.

Layers: this package sits with the compiler (it imports the workflow AST and
the template engine, never the runtime). How a type runs is a hook in the
type's module, written against a :class:`StepRunner`: the runtime's services
(rendering, the environment, subprocesses, backends, the apply service, the
trace), passed in as a parameter, so no step module imports the runtime.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from muxlang._frozen import frozen
from muxlang.workflow import AnyStep, Ref, TemplateField

if TYPE_CHECKING:
    from muxlang.compiler.checks import CheckContext
    from muxlang.compiler.plan import ResolvedConfig
    from muxlang.diagnostics import Diagnostic
    from muxlang.llm import ChatRequest, QueryService

#: a kind of template value (``"string"``, ``"number"``, ``"table"``...; None: unknown)
Kind = str | None


class StepError(Exception):
    """A step failed for a reason the user should read (not a bug)."""


@dataclass(slots=True)
class Outcome:
    """What one execution left: record fields, and ``error`` when it failed."""

    fields: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


@frozen(slots=True)
class SentRequest:
    """The request a query step sent, kept for an apply step's re-ask."""

    request: ChatRequest
    target: str
    kind: Literal["role", "backend"]


class Finished(Protocol):
    """A command that ran to its end (:class:`muxlang.runtime.process.ProcessResult`)."""

    @property
    def returncode(self) -> int: ...

    @property
    def stdout(self) -> bytes | bytearray: ...

    @property
    def stderr(self) -> bytes: ...


class Applied(Protocol):
    """What the apply service did (:class:`muxlang.runtime.apply_service.ApplyResult`)."""

    @property
    def success(self) -> bool: ...

    @property
    def output(self) -> str: ...

    @property
    def error(self) -> str | None: ...

    @property
    def files(self) -> tuple[str, ...]: ...

    @property
    def diff(self) -> str: ...

    @property
    def attempts(self) -> int: ...

    @property
    def verify_output(self) -> str: ...


class StepRunner(Protocol):
    """The runtime's services for a step type's ``run`` hook (implemented by
    :class:`muxlang.runtime.steps.Executor`)."""

    project_root: Path
    query: QueryService
    #: the team's ``verify``, for an apply step without its own
    team_verify: str | None
    #: ``--no-write``: apply steps write nothing and show the diff they would write
    no_write: bool
    #: what each query step of this run sent (not for_each items), by step name
    requests: dict[str, SentRequest]

    def render(self, key: str, template: TemplateField, values: Mapping[str, Any]) -> str:
        """A template of the step, rendered (errors raise :class:`StepError`)."""
        ...

    def env(self, step: Any, values: Mapping[str, Any]) -> dict[str, str]:
        """The environment of the step's commands: the run's plus the step's ``env``."""
        ...

    def note(self, step: str, values: Mapping[str, Any], **sent: Any) -> None:
        """Record what the step sent (``command``, ``prompt``...) in the run's trace."""
        ...

    async def spawn(self, argv: list[str], cwd: Path, env: Mapping[str, str]) -> Finished:
        """Run a command to its end (a program that cannot start raises :class:`StepError`)."""
        ...

    def check_answer(self, output: str, schema: Any) -> tuple[Any, str | None]:
        """An answer parsed and checked by ``output_schema``: (data, problem or None)."""
        ...

    @property
    def can_apply(self) -> bool:
        """Whether the run was started with an apply service."""
        ...

    async def apply_edits(
        self,
        step: Any,
        source: SentRequest,
        source_output: str,
        verify: str | None,
        env: Mapping[str, str],
        retry_prompt: Callable[[str, str], str] | None,
    ) -> Applied:
        """Hand an apply step's edits to the apply service."""
        ...

    async def run_workflow(
        self,
        step: Any,
        args: Mapping[str, Any],
        environ: Mapping[str, str],
        *,
        item: int | None = None,
    ) -> Outcome:
        """Run the workflow ``step`` calls (its compiled plan) as a nested group
        (``item``: the for_each item it runs for, from 1)."""
        ...


RunHook = Callable[[Any, Mapping[str, Any], StepRunner, bool], Awaitable[Outcome]]
StepCheck = Callable[["CheckContext"], Iterable["Diagnostic"]]


def _no_refs(step: Any) -> tuple[Ref, ...]:
    return ()


def _no_combined(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {}


def _no_details(step: Any, config: ResolvedConfig | None) -> tuple[tuple[str, str], ...]:
    return ()


@frozen(slots=True, kw_only=True)
class Shapes:
    """How ``muxlang graph`` draws a type: Mermaid's brackets and dot's shape."""

    mermaid: tuple[str, str]
    dot: str


@frozen(slots=True, kw_only=True)
class StepKind:
    """One step type (see the module doc)."""

    #: the ``type`` written in the file
    name: str
    #: the AST class (:mod:`muxlang.workflow`)
    node: type
    #: the record fields this type adds to every step's (``output``, ``status``...),
    #: with their kinds, and the values a record starts from
    fields: Mapping[str, Kind]
    defaults: Callable[[], dict[str, Any]]
    #: template keys whose text becomes a shell command line (MUX040)
    shell_fields: frozenset[str] = frozenset()
    #: the step runs alone: nothing else runs beside it (apply)
    exclusive: bool = False
    #: the step asks LLM backends (``run`` opens the backends only when one does)
    asks_backends: bool = False
    #: the step takes a ``max_concurrent`` slot while it runs (a group of steps does
    #: not: its own steps take them)
    takes_slot: bool = True
    #: steps it reads besides its templates (apply's ``source``): graph edges, MUX021
    refs: Callable[[Any], tuple[Ref, ...]] = _no_refs
    #: ``role analyzer``, ``source fix``: what ``--dry-run`` and ``graph`` show
    details: Callable[[Any, ResolvedConfig | None], tuple[tuple[str, str], ...]] = _no_details
    #: the templates ``--dry-run`` renders, in the order it shows them
    previewed: Callable[[Any], tuple[tuple[str, TemplateField], ...]]
    shapes: Shapes
    #: the keys ``graph --format json`` adds to the step's node
    graph_json: Callable[[Any], dict[str, Any]] = lambda step: {}
    #: the type's own static checks
    checks: tuple[StepCheck, ...] = ()
    #: how one execution (or one for_each item, ``item`` True) runs
    run: RunHook
    #: a for_each step's own fields from its items' records (those that ran)
    combine_items: Callable[[list[dict[str, Any]]], dict[str, Any]] = _no_combined
    #: builds the AST node from a valid step table (``table``, its Python ``data``,
    #: the fields every step has, its parsed templates); None: the loader's own
    build: Callable[[Any, Mapping[str, Any], dict[str, Any], Mapping[str, Any]], Any] | None = None


def detail_label(kind: StepKind, step: AnyStep) -> str:
    """``query: analyzer``: the type and its main target, for drawings."""
    main = [
        value for key, value in kind.details(step, None) if key in ("role", "backend", "workflow")
    ]
    return f"{kind.name}: {main[0]}" if main else kind.name
