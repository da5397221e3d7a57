"""The static checks of ``muxlang validate`` (SPEC section 5, MUX011 to MUX040).

One function per concern, each taking a :class:`CheckContext` and yielding
diagnostics, registered in :data:`CHECKS` in the order they run. A check never
stops another: the compiler runs them all and reports everything at once.

The checks live in groups, like the rules they report (:mod:`muxlang.rules`):
templates and expressions in :mod:`~muxlang.compiler.template_checks`, steps
and references in :mod:`~muxlang.compiler.step_checks`, roles and backends in
:mod:`~muxlang.compiler.role_checks`, shell insertions in
:mod:`~muxlang.compiler.shell_checks`, ``loop`` in
:mod:`~muxlang.compiler.loop_checks`, a step type's own in its
:mod:`muxlang.steps` module. This module holds the context and the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from muxlang.compiler import analysis as a
from muxlang.compiler.loop_checks import check_loop_fields
from muxlang.compiler.plan import ResolvedConfig
from muxlang.compiler.role_checks import (
    check_role_min_success,
    check_roles_and_backends,
    check_team_detect,
)
from muxlang.compiler.step_checks import (
    NO_STEPS_CODE,
    check_duplicate_steps,
    check_has_steps,
    check_item_scope,
    check_step_fields,
    check_undeclared_args,
    check_unknown_steps,
)
from muxlang.compiler.template_checks import (
    check_access_types,
    check_comparison_types,
    check_filter_argument_types,
    check_filter_arguments,
    check_filter_input_types,
    check_iterables,
    check_status_functions,
    check_unknown_filters,
    check_unknown_names,
)
from muxlang.diagnostics import Diagnostic, Severity
from muxlang.source import Span
from muxlang.steps import REGISTRY as STEP_KINDS
from muxlang.template import ast as t
from muxlang.workflow import AnyStep, Workflow

__all__ = [
    "CHECKS",
    "NO_STEPS_CODE",
    "Check",
    "CheckContext",
    "check_access_types",
    "check_comparison_types",
    "check_duplicate_steps",
    "check_filter_argument_types",
    "check_filter_arguments",
    "check_filter_input_types",
    "check_has_steps",
    "check_item_scope",
    "check_iterables",
    "check_loop_fields",
    "check_role_min_success",
    "check_roles_and_backends",
    "check_shell_injection",
    "check_status_functions",
    "check_step_fields",
    "check_step_types",
    "check_team_detect",
    "check_undeclared_args",
    "check_unknown_filters",
    "check_unknown_names",
    "check_unknown_steps",
    "run_checks",
]


@dataclass
class CheckContext:
    """Everything a check may look at, computed once per workflow."""

    workflow: Workflow
    config: ResolvedConfig
    #: the files of the workflows calling this one (``uses``), outermost first
    callers: tuple[str, ...] = ()
    #: what each ``uses`` step calls, resolved once (:mod:`muxlang.steps.uses`)
    calls: dict[str, object] = field(default_factory=dict)
    sites: tuple[a.Site, ...] = field(init=False)
    #: every sub-expression of each site, walked once for all the checks
    _nodes: dict[int, tuple[t.Expr, ...]] = field(init=False)
    _envs: dict[int, a.TypeEnv] = field(init=False)

    def __post_init__(self) -> None:
        self.sites = tuple(a.sites(self.workflow))
        # keyed by identity: sites hold steps, which hold (unhashable) mappings
        self._nodes = {id(site): tuple(a.walk(site.expr)) for site in self.sites}
        self._envs = {}

    @property
    def file(self) -> str:
        return self.workflow.path

    @cached_property
    def steps(self) -> Mapping[str, AnyStep]:
        """Step by name; for a duplicated name, the first."""
        found: dict[str, AnyStep] = {}
        for step in self.workflow.steps:
            found.setdefault(step.name, step)
        return found

    def env(self, site: a.Site) -> a.TypeEnv:
        found = self._envs.get(id(site))
        if found is None:
            found = self._envs[id(site)] = a.site_env(self.workflow, site)
        return found

    def nodes(self, site: a.Site) -> tuple[t.Expr, ...]:
        """``site``'s expression and everything inside it, outermost first."""
        return self._nodes[id(site)]

    def names(self, site: a.Site) -> Iterator[t.Name]:
        """The variable names used in ``site``."""
        return (node for node in self.nodes(site) if isinstance(node, t.Name))

    def diag(
        self,
        span: Span,
        code: str,
        message: str,
        hint: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> Diagnostic:
        return Diagnostic(self.file, span, code, message, severity, hint)

    @cached_property
    def _refs(self) -> tuple[tuple[a.Site, a.StepRef], ...]:
        return tuple(
            (site, ref) for site in self.sites for ref in a.step_refs(site.expr, site.bound)
        )

    def refs(self) -> Iterator[tuple[a.Site, a.StepRef]]:
        """Every ``steps.X`` reference, with the site it is in."""
        return iter(self._refs)


Check = Callable[[CheckContext], Iterable[Diagnostic]]


def check_step_types(ctx: CheckContext) -> Iterator[Diagnostic]:
    """The checks of each step type's own module (:mod:`muxlang.steps`)."""
    for kind in STEP_KINDS.values():
        for check in kind.checks:
            yield from check(ctx)


# --------------------------------------------------------------------------- safety


def check_shell_injection(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX040 (warning): another step's output or an argument inserted into a
    shell command with ``raw``, or as code a shell or interpreter runs
    (:mod:`muxlang.compiler.shell_checks`)."""
    from muxlang.compiler.shell_checks import dangerous_insertions

    return dangerous_insertions(ctx)


# --------------------------------------------------------------------------- registry

#: Every check, in the order they run.
CHECKS: Sequence[Check] = (
    check_unknown_filters,
    check_filter_arguments,
    check_filter_argument_types,
    check_iterables,
    check_filter_input_types,
    check_access_types,
    check_comparison_types,
    check_unknown_names,
    check_status_functions,
    check_has_steps,
    check_duplicate_steps,
    check_unknown_steps,
    check_step_fields,
    check_item_scope,
    check_loop_fields,
    check_undeclared_args,
    check_roles_and_backends,
    check_role_min_success,
    check_team_detect,
    check_step_types,
    check_shell_injection,
)


def run_checks(ctx: CheckContext, checks: Sequence[Check] = CHECKS) -> list[Diagnostic]:
    """Every diagnostic of every check, in file order."""
    found: list[Diagnostic] = []
    for check in checks:
        found.extend(check(ctx))
    return found
