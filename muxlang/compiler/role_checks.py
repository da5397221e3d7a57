"""Checks of the roles and backends a workflow uses or defines (MUX030,
MUX006). One function per concern, registered in
:data:`muxlang.compiler.checks.CHECKS`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from muxlang.compiler import config_checks
from muxlang.compiler.roles import RoleResolver
from muxlang.config.compat import is_llm_mux_file
from muxlang.diagnostics import Diagnostic, Severity
from muxlang.source import Span
from muxlang.workflow import QueryStep

if TYPE_CHECKING:
    from muxlang.compiler.checks import CheckContext


def check_roles_and_backends(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX030: a step's ``role``/``backend`` that the merged config does not define,
    and roles (used by the workflow, or defined in it) naming unknown entries or
    nesting in a cycle."""
    resolver = RoleResolver.for_workflow(ctx.workflow, ctx.config)
    starts: list[tuple[str, str, Span]] = [
        (name, ctx.file, ctx.workflow.span) for name in ctx.workflow.config.roles
    ]
    for step in ctx.workflow.steps:
        if not isinstance(step, QueryStep):
            continue
        if step.role is not None:
            if step.role.name in resolver.roles:
                starts.append((step.role.name, ctx.file, step.role.span))
            else:
                yield _as_llm_mux(ctx, resolver.unknown(ctx.file, "role", step.role))
        if step.backend is not None and step.backend.name not in resolver.backends:
            yield _as_llm_mux(ctx, resolver.unknown(ctx.file, "backend", step.backend))
    yield from resolver.check_roles(starts)


def _as_llm_mux(ctx: CheckContext, found: Diagnostic) -> Diagnostic:
    """In a workflow under ``.llm-mux/``, a role or backend the config lacks is a
    warning: llm-mux's ``validate`` accepts it and only its run fails (SPEC 12);
    the step fails the same way here."""
    if not is_llm_mux_file(ctx.file):
        return found
    return replace(
        found,
        severity=Severity.WARNING,
        message=found.message + " (a warning in an llm-mux file: the step fails when it runs)",
    )


def check_role_min_success(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX003: a role in the workflow's own tables whose ``min_success`` is more
    than the number of its entries (it could never succeed)."""
    locate = config_checks.locator(ctx.workflow.config_spans)
    return config_checks.check_min_success(ctx.config, ctx.file, locate)


def check_team_detect(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX003: a ``detect`` pattern of the workflow's own ``[teams]`` that is not a
    valid glob."""
    return config_checks.check_detect_globs(
        ctx.workflow.config, ctx.file, config_checks.locator(ctx.workflow.config_spans)
    )
