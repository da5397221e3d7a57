"""Which ``args`` a workflow reads without a guard (SPEC section 8).

``muxlang run`` checks, before any step starts, that every arg the workflow
reads has a value, declared in ``[args]`` or not: a workflow that uses
``{{ args.file }}`` without declaring it must not run its earlier steps (side
effects included) and only then fail on the missing value. A read is guarded,
and so not required, when it goes through ``default(...)``, is the operand of
``is defined``, or stands where ``args.X is defined`` was tested first: in the
right side of ``... and``, in the body of ``{% if args.X is defined %}``, or
anywhere in a step whose ``if`` tests it.
"""

from __future__ import annotations

from collections.abc import Iterable

from muxlang.compiler.analysis import children
from muxlang.source import Span
from muxlang.template import ast as t
from muxlang.workflow import Workflow


def arg_reads(workflow: Workflow) -> dict[str, Span]:
    """Every arg read unguarded, with where it is first read, in file order."""
    found: dict[str, Span] = {}
    for step in workflow.steps:
        guarded: frozenset[str] = frozenset()
        if step.if_ is not None:
            _expr(step.if_.expr, guarded, found)
            guarded = _tested(step.if_.expr)
        if step.for_each is not None:
            _expr(step.for_each.expr, guarded, found)
        for _, value in step.templates():
            _body(value.template.body, guarded, found)
    return found


def _arg_name(expr: t.Expr) -> str | None:
    """``args.X`` or ``args['X']``: X."""
    read = t.member(expr, "args")
    return read[0] if read else None


def _tested(expr: t.Expr) -> frozenset[str]:
    """The args that ``expr`` being true proves defined (``args.X is defined``,
    possibly joined by ``and``)."""
    if isinstance(expr, t.IsDefined) and not expr.negated:
        name = _arg_name(expr.operand)
        return frozenset({name}) if name else frozenset()
    if isinstance(expr, t.BoolOp) and expr.op == "and":
        return _tested(expr.left) | _tested(expr.right)
    return frozenset()


def _expr(expr: t.Expr, guarded: frozenset[str], found: dict[str, Span]) -> None:
    name = _arg_name(expr)
    if name is not None:
        if name not in guarded:
            found.setdefault(name, expr.span)
        return
    if isinstance(expr, t.IsDefined):
        return
    if isinstance(expr, t.Filter) and expr.name == "default":
        subs: Iterable[t.Expr] = (*expr.args, *(value for _, value in expr.kwargs))
    elif isinstance(expr, t.BoolOp) and expr.op == "and":
        _expr(expr.left, guarded, found)
        _expr(expr.right, guarded | _tested(expr.left), found)
        return
    else:
        subs = children(expr)
    for sub in subs:
        _expr(sub, guarded, found)


def _body(nodes: Iterable[t.Node], guarded: frozenset[str], found: dict[str, Span]) -> None:
    for node in nodes:
        if isinstance(node, t.Output):
            _expr(node.expr, guarded, found)
        elif isinstance(node, t.If):
            for condition, branch in node.branches:
                _expr(condition, guarded, found)
                _body(branch, guarded | _tested(condition), found)
            if node.else_body is not None:
                _body(node.else_body, guarded, found)
        elif isinstance(node, t.For):
            _expr(node.iterable, guarded, found)
            _body(node.body, guarded, found)
            if node.else_body is not None:
                _body(node.else_body, guarded, found)
