"""The workflow AST: frozen dataclasses with spans (SPEC section 3).

Built by :mod:`muxlang.compiler.loader` from a positioned TOML document after
validation against :mod:`muxlang.config.models`; every template string is parsed
into a :class:`~muxlang.template.ast.Template` whose spans point into the file.
The compiler checks and lowers this AST into a :class:`~muxlang.compiler.plan.Plan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import field
from typing import Any, Literal

from muxlang._frozen import frozen
from muxlang.config.models import ConfigFile
from muxlang.source import Span
from muxlang.template.ast import Expr, Template


@frozen(slots=True)
class Ref:
    """A name that refers to something else (a step, a role, a backend), where written."""

    name: str
    span: Span


@frozen(slots=True)
class TemplateField:
    """A template-valued key: the source text, its AST, and the value's span."""

    source: str
    template: Template
    span: Span


@frozen(slots=True)
class ExprField:
    """An expression-valued key (``if``, ``for_each``)."""

    source: str
    expr: Expr
    span: Span


StepType = Literal["shell", "query", "apply", "uses"]


@frozen(slots=True)
class Repeat:
    """``repeat = { until = "EXPR", max_iterations = N }``; ``span`` is the table's."""

    until: ExprField
    max_iterations: int
    span: Span


@frozen(slots=True, kw_only=True)
class Step:
    """Fields every step has. ``spans`` maps each key written in the file to the
    span of its value (``"name"``, ``"timeout"``, ...); ``span`` is the step's
    ``[[steps]]`` header."""

    name: str
    type: StepType
    span: Span
    name_span: Span
    depends_on: tuple[Ref, ...] = ()
    if_: ExprField | None = None
    for_each: ExprField | None = None
    max_parallel: int | None = None
    fail_fast: bool = True
    continue_on_error: bool = False
    timeout: float | None = None
    env: tuple[tuple[str, TemplateField], ...] = ()
    repeat: Repeat | None = None
    #: run a failed step again up to ``retries`` times, ``retry_delay_ms`` apart (llm-mux)
    retries: int = 0
    retry_delay_ms: int = 1000
    spans: Mapping[str, Span] = field(default_factory=dict)

    def templates(self) -> tuple[tuple[str, TemplateField], ...]:
        """Every template of the step, keyed by the TOML key it came from."""
        return tuple((f"env.{k}", v) for k, v in self.env)


@frozen(slots=True, kw_only=True)
class ShellStep(Step):
    run: TemplateField
    cwd: TemplateField | None = None

    def templates(self) -> tuple[tuple[str, TemplateField], ...]:
        own = [("run", self.run)] + ([("cwd", self.cwd)] if self.cwd else [])
        return (*own, *Step.templates(self))


@frozen(slots=True, kw_only=True)
class QueryStep(Step):
    prompt: TemplateField
    role: Ref | None = None
    backend: Ref | None = None
    system: TemplateField | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    #: ``cache``: True/False, a maximum age (``"7d"``), or None (the [defaults] decide)
    cache: bool | str | None = None
    #: a JSON Schema the answer must match (parsed into ``steps.NAME.data``; llm-mux)
    output_schema: Mapping[str, Any] | None = None

    def templates(self) -> tuple[tuple[str, TemplateField], ...]:
        own = [("prompt", self.prompt)] + ([("system", self.system)] if self.system else [])
        return (*own, *Step.templates(self))


@frozen(slots=True, kw_only=True)
class ApplyStep(Step):
    source: Ref  # the query step's bare name ("steps.fix" is normalised to "fix")
    verify: TemplateField | None = None
    verify_retries: int = 0
    verify_retry_prompt: TemplateField | None = None
    rollback_on_failure: bool = True

    def templates(self) -> tuple[tuple[str, TemplateField], ...]:
        own = [("verify", self.verify)] if self.verify else []
        if self.verify_retry_prompt:
            own.append(("verify_retry_prompt", self.verify_retry_prompt))
        return (*own, *Step.templates(self))


@frozen(slots=True, kw_only=True)
class UsesStep(Step):
    """A step that calls another workflow (``uses`` + ``with``); ``type`` is ``"uses"``."""

    uses: Ref
    #: ``with``: a template for each string value, other values as written
    with_: tuple[tuple[str, TemplateField | int | float | bool], ...] = ()
    #: where each ``with`` key is written
    with_spans: Mapping[str, Span] = field(default_factory=dict)

    def templates(self) -> tuple[tuple[str, TemplateField], ...]:
        own = [(f"with.{k}", v) for k, v in self.with_ if isinstance(v, TemplateField)]
        return (*own, *Step.templates(self))


AnyStep = ShellStep | QueryStep | ApplyStep | UsesStep


@frozen(slots=True)
class Arg:
    name: str
    description: str | None
    default: str | int | float | bool | None
    required: bool
    span: Span


@frozen(slots=True, kw_only=True)
class Workflow:
    path: str
    name: str
    description: str | None = None
    timeout: float | None = None
    max_concurrent: int | None = None
    continue_on_error: bool = False
    #: budgets of a run (SPEC section 10): tokens, and USD from backends' price
    max_tokens: int | None = None
    max_cost: float | None = None
    args: tuple[Arg, ...] = ()
    steps: tuple[AnyStep, ...] = ()
    #: the workflow's own [defaults]/[backends]/[roles]/[teams] tables (a config layer)
    config: ConfigFile = field(default_factory=ConfigFile)
    span: Span
    #: where each top-level key and each value of the workflow's config tables was
    #: read, by key path (``("backends", "claude")`` is the table's header,
    #: ``("roles", "r", "backends", 0)`` an entry): where checks report
    config_spans: Mapping[tuple[str | int, ...], Span] = field(default_factory=dict)
    #: name -> the first step of that name (a lookup must not scan every step)
    _by_name: Mapping[str, AnyStep] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {s.name: s for s in reversed(self.steps)})

    def step(self, name: str) -> AnyStep | None:
        return self._by_name.get(name)
