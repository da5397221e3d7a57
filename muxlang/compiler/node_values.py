"""Small readers of TOML nodes and validated step data for the loader: the
fields every step has, ``repeat``, references with their spans, and where the
workflow's keys were read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from muxlang.config.files import CONFIG_KEYS, node_spans
from muxlang.config.models import (
    ApplyStepSpec,
    QueryStepSpec,
    ShellStepSpec,
    UsesStepSpec,
)
from muxlang.source import Span
from muxlang.toml.nodes import Node, String, Table
from muxlang.workflow import (
    ExprField,
    Ref,
    Repeat,
)


def _common_values(
    spec: ShellStepSpec | QueryStepSpec | ApplyStepSpec | UsesStepSpec,
) -> dict[str, Any]:
    return {
        "max_parallel": spec.max_parallel,
        "fail_fast": spec.fail_fast,
        "continue_on_error": spec.continue_on_error,
        "timeout": _seconds(spec.timeout),
        "retries": spec.retries,
        "retry_delay_ms": spec.retry_delay,
    }


def _seconds(value: float | str | None) -> float | None:
    """A validated Duration (the model's validator already made it seconds)."""
    return None if value is None else float(value)


def _repeat(table: Table, data: Mapping[str, Any], exprs: Mapping[str, ExprField]) -> Repeat | None:
    """The step's ``repeat``, when it is valid (its table and its parsed ``until``)."""
    node, given = table.get("repeat"), data.get("repeat")
    until = exprs.get("repeat.until")
    if not isinstance(node, Table) or not isinstance(given, Mapping) or until is None:
        return None
    count = given.get("max_iterations")
    if not isinstance(count, int) or isinstance(count, bool):
        return None
    return Repeat(until, count, node.span)


def _config_spans(root: Table) -> dict[tuple[str | int, ...], Span]:
    """Where the workflow's top-level keys and config tables' values were read."""
    return {
        path: span
        for path, span in node_spans(root).items()
        if len(path) == 1 or (path and path[0] in CONFIG_KEYS)
    }


def _string(node: Node | None) -> str | None:
    return node.value if isinstance(node, String) else None


def _ref(node: Node | None) -> Ref | None:
    return Ref(node.value, node.span) if isinstance(node, String) else None


def _source_ref(node: String) -> Ref:
    """``"steps.fix"`` → ``fix`` with the span of the name alone."""
    value = node.value
    prefix = "steps."
    if value.startswith(prefix) and len(value) > len(prefix):
        return Ref(value[len(prefix) :], node.locator()(len(prefix), len(value)))
    return Ref(value, node.span)


def _after(a: Span, b: Span) -> bool:
    return (a.line, a.column) > (b.line, b.column)
