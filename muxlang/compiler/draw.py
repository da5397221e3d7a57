"""``muxlang graph``: a plan's steps and dependency edges as Mermaid, Graphviz dot
or JSON. Nodes come in plan order; edges run from a dependency to its dependent."""

from __future__ import annotations

import json

from muxlang.compiler.plan import Plan
from muxlang.steps import step_kind
from muxlang.steps.base import detail_label
from muxlang.workflow import AnyStep

GRAPH_FORMATS = ("text", "mermaid", "dot", "json")


def _detail(step: AnyStep) -> str:
    parts: list[str] = [detail_label(step_kind(step), step)]
    if step.for_each is not None:
        parts.append("for_each")
    if step.if_ is not None:
        parts.append("if")
    if step.repeat is not None:
        parts.append(f"repeat ≤{step.repeat.max_iterations}")
    return ", ".join(parts)


def _edges(plan: Plan) -> list[tuple[str, str]]:
    position = {name: i for i, name in enumerate(plan.order)}
    return sorted(plan.graph.edges, key=lambda e: (position[e[1]], position[e[0]]))


def to_mermaid(plan: Plan) -> str:
    """A Mermaid flowchart: shell steps as boxes, queries rounded, applies as hexagons,
    and a ``uses`` step as a subgraph holding the called workflow's steps."""
    lines = ["flowchart TD"]
    _mermaid(plan, "", "    ", lines)
    return "\n".join(lines) + "\n"


def _mermaid(plan: Plan, prefix: str, indent: str, lines: list[str]) -> None:
    ids = {name: f"{prefix}s{i}" for i, name in enumerate(plan.order)}
    for name in plan.order:
        step = plan.step(name).step
        label = f"{name}<br/><small>{_detail(step)}</small>".replace('"', "#quot;")
        called = plan.calls.get(name)
        if called is not None:
            lines.append(f'{indent}subgraph {ids[name]} ["{label}"]')
            _mermaid(called, f"{ids[name]}_", indent + "    ", lines)
            lines.append(f"{indent}end")
            continue
        left, right = step_kind(step).shapes.mermaid
        lines.append(f"{indent}{ids[name]}{left}{label}{right}")
    lines.extend(f"{indent}{ids[a]} --> {ids[b]}" for a, b in _edges(plan))


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(plan: Plan) -> str:
    """A Graphviz digraph."""
    lines = [f"digraph {_dot_string(plan.workflow.name)} {{", "    rankdir=TB;"]
    _dot(plan, "", "    ", lines)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot(plan: Plan, prefix: str, indent: str, lines: list[str]) -> None:
    """Nodes and edges of ``plan``; a ``uses`` step is a node inside a cluster that
    holds the called workflow's steps (named ``step.inner``)."""
    for name in plan.order:
        step = plan.step(name).step
        label = _dot_string(f"{name}\n{_detail(step)}").replace("\n", "\\n")
        shape = step_kind(step).shapes.dot
        node = f"{indent}{_dot_string(prefix + name)} [shape={shape}, label={label}];"
        called = plan.calls.get(name)
        if called is None:
            lines.append(node)
            continue
        lines.append(f"{indent}subgraph {_dot_string('cluster_' + prefix + name)} {{")
        lines.append(f"{indent}    label={_dot_string(prefix + name)};")
        lines.append("    " + node)
        _dot(called, f"{prefix}{name}.", indent + "    ", lines)
        for first in (n for n in called.order if called.graph.in_degree(n) == 0):
            target = _dot_string(f"{prefix}{name}.{first}")
            lines.append(f"{indent}    {_dot_string(prefix + name)} -> {target} [style=dashed];")
        lines.append(f"{indent}}}")
    lines.extend(
        f"{indent}{_dot_string(prefix + a)} -> {_dot_string(prefix + b)};" for a, b in _edges(plan)
    )


def to_json(plan: Plan) -> str:
    """``{"workflow", "nodes": [{"name", "type", ...}], "edges": [{"from", "to"}], "order"}``;
    a ``uses`` node holds the called workflow's graph, the same way, in ``"calls"``."""
    return json.dumps(_json(plan), indent=2, ensure_ascii=False) + "\n"


def _json(plan: Plan) -> dict[str, object]:
    nodes = []
    for name in plan.order:
        compiled = plan.step(name)
        step = compiled.step
        node: dict[str, object] = {
            "name": name,
            "type": step.type,
            "depends_on": list(compiled.dependencies),
        }
        node.update(step_kind(step).graph_json(step))
        node["for_each"] = step.for_each.source if step.for_each is not None else None
        node["if"] = step.if_.source if step.if_ is not None else None
        repeat = step.repeat
        node["repeat"] = (
            {"until": repeat.until.source, "max_iterations": repeat.max_iterations}
            if repeat is not None
            else None
        )
        called = plan.calls.get(name)
        if called is not None:
            node["calls"] = _json(called)
        nodes.append(node)
    return {
        "workflow": plan.workflow.name,
        "nodes": nodes,
        "edges": [{"from": a, "to": b} for a, b in _edges(plan)],
        "order": list(plan.order),
    }


def to_text(plan: Plan) -> str:
    """For a terminal: one line per step in run order, as a tree (``uses`` steps hold
    the called workflow's steps), each with what it waits for::

        review: 2 steps
        ├─ diff (shell)
        └─ analyze (query, role analyzer)  ← diff
    """
    count = len(plan.order)
    lines = [f"{plan.workflow.name}: {count} step{'s' if count != 1 else ''}"]
    _text(plan, "", lines)
    return "\n".join(lines) + "\n"


def _text(plan: Plan, indent: str, lines: list[str]) -> None:
    for index, name in enumerate(plan.order):
        last = index == len(plan.order) - 1
        compiled = plan.step(name)
        line = f"{indent}{'└─' if last else '├─'} {name} ({_detail(compiled.step)})"
        if compiled.dependencies:
            line += "  ← " + ", ".join(compiled.dependencies)
        lines.append(line)
        called = plan.calls.get(name)
        if called is not None:
            _text(called, indent + ("   " if last else "│  "), lines)


def draw(plan: Plan, fmt: str) -> str:
    drawers = {"text": to_text, "mermaid": to_mermaid, "dot": to_dot, "json": to_json}
    return drawers[fmt](plan)
