"""The template and expression AST (SPEC section 4).

Frozen dataclasses, each with the :class:`~muxlang.source.Span` of the source
it came from (in the file's own coordinates when the template sat in a TOML
string). Built by :mod:`muxlang.template.parser` from the Lark grammar in
``muxlang/grammar.lark``; read by the evaluator and by the compiler's checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal as TypingLiteral

from muxlang._frozen import frozen
from muxlang.source import Span

# --------------------------------------------------------------------------- expressions

LiteralValue = str | int | float | bool | None


@frozen(slots=True)
class Literal:
    value: LiteralValue
    span: Span


@frozen(slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    span: Span


@frozen(slots=True)
class TableExpr:
    """A table literal ``{'k': v, ...}`` (as in llm-mux); keys are expressions
    that must give strings."""

    items: tuple[tuple[Expr, Expr], ...]
    span: Span


@frozen(slots=True)
class Name:
    """A bare name: ``steps``, ``args``, ``env``, ``item``, ``loop``, ``team``, a loop var."""

    name: str
    span: Span


@frozen(slots=True)
class Attr:
    """``obj.name``; ``name_span`` covers just the name after the dot."""

    obj: Expr
    name: str
    span: Span
    name_span: Span


@frozen(slots=True)
class Index:
    """``obj[index]``: ``a['k']`` or ``a[0]``."""

    obj: Expr
    index: Expr
    span: Span


@frozen(slots=True)
class Not:
    operand: Expr
    span: Span


@frozen(slots=True)
class BoolOp:
    op: TypingLiteral["and", "or"]
    left: Expr
    right: Expr
    span: Span


CompareOp = TypingLiteral["==", "!=", "<", "<=", ">", ">=", "in", "not in"]


@frozen(slots=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr
    span: Span


@frozen(slots=True)
class IsDefined:
    """``x is defined`` (``negated=False``) or ``x is not defined``."""

    operand: Expr
    negated: bool
    span: Span


@frozen(slots=True)
class Concat:
    """``left ~ right``: both inserted as text, then joined."""

    left: Expr
    right: Expr
    span: Span


@frozen(slots=True)
class Filter:
    """``operand | name`` or ``operand | name(arg, key=arg)``."""

    operand: Expr
    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]
    span: Span
    name_span: Span
    #: the span of each keyword's NAME, parallel to ``kwargs`` (empty when the node
    #: was built by hand: fall back to the value's span)
    kwarg_spans: tuple[Span, ...] = ()


@frozen(slots=True)
class Call:
    """A status function in ``if``: ``success()``, ``failure()``, ``always()``."""

    name: str
    args: tuple[Expr, ...]
    span: Span


Expr = (
    Literal
    | ListExpr
    | TableExpr
    | Name
    | Attr
    | Index
    | Not
    | BoolOp
    | Compare
    | IsDefined
    | Concat
    | Filter
    | Call
)

# --------------------------------------------------------------------------- templates


@frozen(slots=True)
class Text:
    text: str
    span: Span


@frozen(slots=True)
class Output:
    """``{{ expr }}``."""

    expr: Expr
    span: Span


@frozen(slots=True)
class If:
    """``{% if %}…{% elif %}…{% else %}…{% endif %}``: (condition, body) pairs, then else."""

    branches: tuple[tuple[Expr, tuple[Node, ...]], ...]
    else_body: tuple[Node, ...] | None
    span: Span


@frozen(slots=True)
class For:
    """``{% for var in iterable %}…{% endfor %}``; binds ``var`` and ``loop`` in its body."""

    var: str
    iterable: Expr
    body: tuple[Node, ...]
    span: Span
    var_span: Span
    #: ``{% for %}…{% else %}…{% endfor %}``: rendered when the list is empty (as Jinja)
    else_body: tuple[Node, ...] | None = None


Node = Text | Output | If | For


@frozen(slots=True)
class Template:
    body: tuple[Node, ...]
    span: Span
    source: str

    @property
    def is_constant(self) -> bool:
        """True when the template is plain text (nothing to evaluate)."""
        return all(isinstance(node, Text) for node in self.body)


# --------------------------------------------------------------------------- unparsing

_PRECEDENCE: dict[type, int] = {
    BoolOp: 1,  # refined below: or 1, and 2
    Not: 3,
    Compare: 4,
    IsDefined: 4,
    Concat: 5,
    Filter: 6,
}


def _prec(expr: Expr) -> int:
    if isinstance(expr, BoolOp):
        return 1 if expr.op == "or" else 2
    return _PRECEDENCE.get(type(expr), 7)


def _quote(text: str) -> str:
    escaped = (
        text.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return f"'{escaped}'"


def to_source(expr: Expr) -> str:
    """Canonical source text of an expression, for messages: ``steps.diff.output``,
    ``x | default('a')``. Parsing it again gives the same tree (spans aside)."""

    def wrap(sub: Expr, minimum: int) -> str:
        text = to_source(sub)
        return f"({text})" if _prec(sub) < minimum else text

    match expr:
        case Literal(value=value):
            if value is None:
                return "none"
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, str):
                return _quote(value)
            return repr(value)
        case ListExpr(items=items):
            return "[" + ", ".join(to_source(item) for item in items) + "]"
        case TableExpr(items=pairs):
            return "{" + ", ".join(f"{to_source(k)}: {to_source(v)}" for k, v in pairs) + "}"
        case Name(name=name):
            return name
        case Attr(obj=obj, name=name):
            return f"{wrap(obj, 7)}.{name}"
        case Index(obj=obj, index=index):
            return f"{wrap(obj, 7)}[{to_source(index)}]"
        case Not(operand=operand):
            return f"not {wrap(operand, 3)}"
        case BoolOp(op=op, left=left, right=right):
            level = _prec(expr)
            return f"{wrap(left, level)} {op} {wrap(right, level + 1)}"
        case Compare(op=op, left=left, right=right):
            return f"{wrap(left, 5)} {op} {wrap(right, 5)}"
        case IsDefined(operand=operand, negated=negated):
            return f"{wrap(operand, 5)} is {'not ' if negated else ''}defined"
        case Concat(left=left, right=right):
            return f"{wrap(left, 5)} ~ {wrap(right, 6)}"
        case Filter(operand=operand, name=name, args=args, kwargs=kwargs):
            text = f"{wrap(operand, 6)} | {name}"
            if args or kwargs:
                parts = [to_source(a) for a in args] + [f"{k}={to_source(v)}" for k, v in kwargs]
                text += "(" + ", ".join(parts) + ")"
            return text
        case Call(name=name, args=args):
            return f"{name}(" + ", ".join(to_source(a) for a in args) + ")"
    raise TypeError(f"not an expression: {expr!r}")


# --------------------------------------------------------------------------- walking


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of ``expr``, in source order."""
    match expr:
        case ListExpr(items=items):
            return items
        case TableExpr(items=pairs):
            return tuple(part for pair in pairs for part in pair)
        case Attr(obj=obj):
            return (obj,)
        case Index(obj=obj, index=index):
            return (obj, index)
        case Not(operand=operand) | IsDefined(operand=operand):
            return (operand,)
        case BoolOp(left=left, right=right) | Compare(left=left, right=right):
            return (left, right)
        case Concat(left=left, right=right):
            return (left, right)
        case Filter(operand=operand, args=args, kwargs=kwargs):
            return (operand, *args, *(value for _, value in kwargs))
        case Call(args=args):
            return args
    return ()


def member(expr: Expr, name: str) -> tuple[str, Span] | None:
    """``name.KEY`` or ``name['KEY']`` (a string key), as in ``steps.diff`` or
    ``args['who']``: KEY and the span that spells it (the name after the dot, or
    the quoted key); None for anything else."""
    if not (isinstance(expr, Attr | Index) and isinstance(expr.obj, Name)):
        return None
    if expr.obj.name != name:
        return None
    if isinstance(expr, Attr):
        return expr.name, expr.name_span
    if isinstance(expr.index, Literal) and isinstance(expr.index.value, str):
        return expr.index.value, expr.index.span
    return None


def walk(expr: Expr) -> Iterator[Expr]:
    """``expr`` and every expression inside it, outermost first, in source order."""
    yield expr
    for child in children(expr):
        yield from walk(child)


def expressions(nodes: Template | tuple[Node, ...]) -> Iterator[Expr]:
    """Every top-level expression of a template (``{{ }}``, ``if``/``elif``
    conditions, ``for`` iterables), in source order. Use :func:`walk` to go inside."""
    body = nodes.body if isinstance(nodes, Template) else nodes
    for node in body:
        if isinstance(node, Output):
            yield node.expr
        elif isinstance(node, If):
            for condition, branch in node.branches:
                yield condition
                yield from expressions(branch)
            if node.else_body is not None:
                yield from expressions(node.else_body)
        elif isinstance(node, For):
            yield node.iterable
            yield from expressions(node.body)
            if node.else_body is not None:
                yield from expressions(node.else_body)
