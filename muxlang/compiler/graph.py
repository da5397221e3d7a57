"""The dependency graph: edges from ``depends_on`` and from every ``steps.X`` a
step mentions, the cycle check (MUX022), and the lowering to a :class:`Plan`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from muxlang.compiler import analysis as a
from muxlang.compiler.plan import CompiledStep, Plan, ResolvedConfig
from muxlang.diagnostics import Diagnostic
from muxlang.source import Span
from muxlang.steps import step_kind
from muxlang.template import ast as t
from muxlang.workflow import Workflow

if TYPE_CHECKING:
    import networkx as nx

# networkx is imported only where a graph is built (lowering, or reporting a
# cycle that exists): `muxlang validate` of a sound workflow never loads it.

#: step -> {dependency: where the step first refers to it}
Dependencies = dict[str, dict[str, Span]]


def dependencies(workflow: Workflow, sites: tuple[a.Site, ...] | None = None) -> Dependencies:
    """What each step waits for: ``depends_on`` entries, ``source``, and every
    ``steps.X`` in its templates, ``if`` and ``for_each`` (unknown names left out)."""
    known = {step.name for step in workflow.steps}
    deps: Dependencies = {step.name: {} for step in workflow.steps}

    def add(step: str, dep: str, span: Span) -> None:
        if dep in known:
            deps[step].setdefault(dep, span)

    for step in workflow.steps:
        for ref in step.depends_on:
            add(step.name, ref.name, ref.span)
        for ref in step_kind(step).refs(step):
            add(step.name, ref.name, ref.span)
    for site in sites if sites is not None else a.sites(workflow):
        for found in a.step_refs(site.expr, site.bound):
            if site.role == "until" and found.name == site.step.name:
                continue  # `until` reads the step's own iteration: no dependency
            add(site.step.name, found.name, found.span)
    return deps


def _needs_graph(workflow: Workflow, deps: Dependencies) -> nx.DiGraph:
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(deps)
    for step, needed in deps.items():
        graph.add_edges_from((step, dep) for dep in needed)
    return graph


def _acyclic(deps: Dependencies) -> bool:
    """Whether the dependencies form no cycle (Kahn's algorithm, linear time)."""
    waiting = {step: len(needed) for step, needed in deps.items()}
    dependents: dict[str, list[str]] = {step: [] for step in deps}
    for step, needed in deps.items():
        for dep in needed:
            dependents[dep].append(step)
    ready = [step for step, count in waiting.items() if count == 0]
    done = 0
    while ready:
        step = ready.pop()
        done += 1
        for dependent in dependents[step]:
            waiting[dependent] -= 1
            if waiting[dependent] == 0:
                ready.append(dependent)
    return done == len(deps)


def cycles(workflow: Workflow, deps: Dependencies) -> Iterator[tuple[list[str], Span]]:
    """One cycle per strongly connected group of steps: the names, starting with
    the first step in file order and ending with it again, and where that first
    step refers to the next."""
    if _acyclic(deps):
        return
    import networkx as nx

    index = {step.name: i for i, step in reversed(list(enumerate(workflow.steps)))}
    graph = _needs_graph(workflow, deps)
    groups = [
        sorted(group, key=index.__getitem__)
        for group in nx.strongly_connected_components(graph)
        if len(group) > 1 or graph.has_edge(next(iter(group)), next(iter(group)))
    ]
    groups.sort(key=lambda group: index[group[0]])
    for group in groups:
        first = group[0]
        if graph.has_edge(first, first):
            yield [first, first], deps[first][first]
            continue
        sub = graph.subgraph(group)
        best: list[str] | None = None
        for succ in sorted(sub.successors(first), key=index.__getitem__):
            path: list[str] = nx.shortest_path(sub, succ, first)
            if best is None or len(path) + 1 < len(best):
                best = [first, *path]
        assert best is not None
        yield best, deps[first][best[1]]


def cycle_diagnostics(workflow: Workflow, deps: Dependencies) -> Iterator[Diagnostic]:
    """MUX022: every dependency cycle, with the cycle spelt out."""
    for loop, span in cycles(workflow, deps):
        if len(loop) == 2:
            message = f"dependency cycle: step `{loop[0]}` depends on itself"
            hint = "a step cannot use its own output"
        else:
            message = "dependency cycle: " + " → ".join(loop)
            hint = "each step needs the next; remove one of these references"
        yield Diagnostic(workflow.path, span, "MUX022", message, hint=hint)


def _status_functions(expr: t.Expr) -> frozenset[str]:
    return frozenset(
        node.name
        for node in a.walk(expr)
        if isinstance(node, t.Call) and node.name in a.STATUS_FUNCTIONS
    )


def lower(
    workflow: Workflow, config: ResolvedConfig, deps: Mapping[str, Mapping[str, Span]]
) -> Plan:
    """The plan of a workflow that passed every check."""
    import networkx as nx

    index = {step.name: i for i, step in enumerate(workflow.steps)}
    graph = nx.DiGraph()
    for step in workflow.steps:
        if_expr = step.if_.expr if step.if_ is not None else None
        compiled = CompiledStep(
            step=step,
            dependencies=tuple(sorted(deps[step.name])),
            status_functions=_status_functions(if_expr) if if_expr is not None else frozenset(),
            if_per_item=if_expr is not None
            and step.for_each is not None
            and any(name.name == "item" for name in a.names(if_expr)),
        )
        graph.add_node(step.name, step=compiled)
    for step in workflow.steps:
        for dep in deps[step.name]:
            graph.add_edge(dep, step.name)
    order = tuple(nx.lexicographical_topological_sort(graph, key=index.__getitem__))
    return Plan(workflow=workflow, config=config, graph=graph, order=order)
