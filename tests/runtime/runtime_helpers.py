"""Plans built in tests: from TOML text through the real loader and compiler
when they exist, or step by step with constant templates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import networkx as nx

from muxlang.compiler.plan import CompiledStep, Plan, ResolvedConfig
from muxlang.source import Span
from muxlang.template.ast import Template, Text
from muxlang.workflow import (
    AnyStep,
    ApplyStep,
    QueryStep,
    Ref,
    ShellStep,
    TemplateField,
    Workflow,
)

SPAN = Span(1, 1, 1, 2)


def text(source: str) -> TemplateField:
    """A constant template (no ``{{ }}``)."""
    return TemplateField(source, Template((Text(source, SPAN),), SPAN, source), SPAN)


def shell(name: str, run: str, **fields: Any) -> ShellStep:
    return ShellStep(name=name, type="shell", span=SPAN, name_span=SPAN, run=text(run), **fields)


def query(name: str, prompt: str, *, role: str | None = None, **fields: Any) -> QueryStep:
    return QueryStep(
        name=name,
        type="query",
        span=SPAN,
        name_span=SPAN,
        prompt=text(prompt),
        role=Ref(role or name, SPAN),
        **fields,
    )


def make_plan(
    root: Path,
    steps: list[AnyStep],
    deps: dict[str, list[str]] | None = None,
    **workflow_fields: Any,
) -> Plan:
    """A plan of ``steps`` (in file order) with ``deps`` as dependencies."""
    deps = deps or {}
    workflow = Workflow(
        path="test.toml", name="test", steps=tuple(steps), span=SPAN, **workflow_fields
    )
    graph = nx.DiGraph()
    for step in steps:
        graph.add_node(step.name, step=CompiledStep(step, tuple(sorted(deps.get(step.name, [])))))
    for name, before in deps.items():
        for dep in before:
            graph.add_edge(dep, name)
    order = tuple(nx.lexicographical_topological_sort(graph, key=[s.name for s in steps].index))
    return Plan(workflow, ResolvedConfig(project_root=root), graph, order)


def apply_step(name: str, source: str, verify: str | None = None, **fields: Any) -> ApplyStep:
    return ApplyStep(
        name=name,
        type="apply",
        span=SPAN,
        name_span=SPAN,
        source=Ref(source, SPAN),
        verify=text(verify) if verify is not None else None,
        **fields,
    )


def plan_from_toml(root: Path, body: str, name: str = "wf.toml") -> Plan:
    """A plan through the real loader, config layers and compiler (errors fail the test)."""
    import textwrap

    from muxlang.compiler import compile_workflow
    from muxlang.compiler.loader import load_workflow
    from muxlang.config import load_config

    path = root / name
    path.write_text(textwrap.dedent(body))
    workflow, diagnostics = load_workflow(path)
    assert workflow is not None, diagnostics
    config, more = load_config(root, workflow=workflow, environ={"HOME": str(root)})
    assert not [d for d in more if d.is_error], more
    plan, more = compile_workflow(workflow, config)
    assert plan is not None, more
    return plan


def barrier(i: int, of: int) -> str:
    """A shell command for the i-th of ``of`` steps that must run at the same time:
    it marks ``started/i`` and waits until all ``of`` have; alone (run one after
    another) it gives up after 30 s with exit code 7. Proves overlap without timing."""
    return (
        f"mkdir -p started; touch started/{i}; n=0; "
        f'while [ "$(ls started | wc -l)" -lt {of} ]; do '
        "n=$((n+1)); [ $n -gt 600 ] && exit 7; sleep 0.05; done"
    )
