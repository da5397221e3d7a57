"""What templates see while a workflow runs, and the one place the runtime renders.

The runtime keeps template values as plain dicts (SPEC section 3, "Values in
templates" in docs/architecture.md): ``steps``, ``args``, ``env``, ``team``,
``workflow`` and, inside for_each steps, ``item`` and ``loop``. Every template
error is turned into a :class:`StepError` whose message names the key and the
position in the workflow file.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from muxlang import template as engine
from muxlang._frozen import frozen
from muxlang.steps.base import StepError as StepError
from muxlang.template import ast
from muxlang.template.loop import loop_table
from muxlang.template.shell import SHELL_FIELDS, render_shell
from muxlang.workflow import ExprField, TemplateField


@frozen(slots=True)
class Status:
    """The values of ``success()``, ``failure()`` and ``always()`` for one step."""

    success: bool
    failure: bool


def loop_values(index0: int, length: int) -> dict[str, Any]:
    """The ``loop`` table of a for_each item (:mod:`muxlang.template.loop`)."""
    return loop_table(index0, length)


#: the template keys whose text is a shell command: each insertion is quoted for
#: its place in it (SPEC section 11, muxlang/template/shell.py)
SHELL_KEYS = SHELL_FIELDS


def render(
    key: str,
    field: TemplateField,
    values: Mapping[str, Any],
    *,
    path: str = "",
    shell: bool | None = None,
) -> str:
    """Render a template field; errors become a :class:`StepError` naming ``key``.

    ``shell`` (by default: ``key`` is in :data:`SHELL_KEYS`) quotes every
    insertion for the shell context it stands in."""
    template = field.template
    if template.is_constant:
        return "".join(node.text for node in template.body if isinstance(node, ast.Text))

    try:
        if key in SHELL_KEYS if shell is None else shell:
            return render_shell(template, _scope(values, None))
        return str(engine.render(template, _scope(values, None)))
    except engine.TemplateError as exc:
        raise StepError(_where(key, exc, field.span.line, path)) from exc


def evaluate(
    key: str,
    field: ExprField,
    values: Mapping[str, Any],
    *,
    status: Status | None = None,
    path: str = "",
) -> Any:
    """Evaluate an expression field (``if``, ``for_each``)."""

    try:
        return engine.evaluate(field.expr, _scope(values, status))
    except engine.TemplateError as exc:
        raise StepError(_where(key, exc, field.span.line, path)) from exc


def truthy(value: Any) -> bool:
    """Truthiness as templates define it (the string ``"false"`` is true)."""

    return engine.truthy(value)


def references_name(template: ast.Template | ast.Expr, name: str) -> bool:
    """Whether ``name`` appears as a bare name anywhere in a template or expression."""
    stack: list[Any] = [template]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name):
            if node.name == name:
                return True
            continue
        if isinstance(node, tuple | list):
            stack.extend(node)
            continue
        for attr in getattr(node, "__slots__", ()):
            child = getattr(node, attr, None)
            if isinstance(child, tuple | list) or hasattr(child, "__slots__"):
                stack.append(child)
    return False


def _scope(values: Mapping[str, Any], status: Status | None) -> engine.Scope:
    if status is None:
        return engine.Scope(values)
    functions = {
        "success": lambda: status.success,
        "failure": lambda: status.failure,
        "always": lambda: True,
    }
    return engine.Scope(values, functions)


def _where(key: str, exc: Exception, line: int, path: str) -> str:
    span = getattr(exc, "span", None)
    if span is not None:
        line, column = span.line, span.column
        location = f"{path}:{line}:{column}" if path else f"line {line}, column {column}"
    else:
        location = f"{path}:{line}" if path else f"line {line}"
    message = getattr(exc, "message", None) or str(exc)
    hint = getattr(exc, "hint", None)
    if hint:
        message += f" ({hint})"
    return f"in `{key}` ({location}): {message}"
