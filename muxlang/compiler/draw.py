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
    """A Mermaid flowchart: shell steps as boxes, queries rounded, applies as hexagons."""
    ids = {name: f"s{i}" for i, name in enumerate(plan.order)}
    lines = ["flowchart TD"]
    for name in plan.order:
        step = plan.step(name).step
        label = f"{name}<br/><small>{_detail(step)}</small>".replace('"', "#quot;")
        left, right = step_kind(step).shapes.mermaid
        lines.append(f"    {ids[name]}{left}{label}{right}")
    lines.extend(f"    {ids[a]} --> {ids[b]}" for a, b in _edges(plan))
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(plan: Plan) -> str:
    """A Graphviz digraph."""
    lines = [f"digraph {_dot_string(plan.workflow.name)} {{", "    rankdir=TB;"]
    for name in plan.order:
        step = plan.step(name).step
        label = _dot_string(f"{name}\n{_detail(step)}").replace("\n", "\\n")
        shape = step_kind(step).shapes.dot
        lines.append(f"    {_dot_string(name)} [shape={shape}, label={label}];")
    lines.extend(f"    {_dot_string(a)} -> {_dot_string(b)};" for a, b in _edges(plan))
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_json(plan: Plan) -> str:
    """``{"workflow", "nodes": [{"name", "type", ...}], "edges": [{"from", "to"}], "order"}``."""
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
        nodes.append(node)
    data = {
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
