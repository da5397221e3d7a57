"""The template and expression AST (SPEC section 4).

Frozen dataclasses, each with the :class:`~muxlang.source.Span` of the source
it came from (in the file's own coordinates when the template sat in a TOML
string). Built by :mod:`muxlang.template.parser` from the Lark grammar in
``muxlang/grammar.lark``; read by the evaluator and by the compiler's checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal as TypingLiteral

from muxlang.source import Span

# --------------------------------------------------------------------------- expressions

LiteralValue = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Literal:
    value: LiteralValue
    span: Span


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Name:
    """A bare name: ``steps``, ``args``, ``env``, ``item``, ``loop``, ``team``, a loop var."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Attr:
    """``obj.name``; ``name_span`` covers just the name after the dot."""

    obj: Expr
    name: str
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Index:
    """``obj[index]``: ``a['k']`` or ``a[0]``."""

    obj: Expr
    index: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Not:
    operand: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class BoolOp:
    op: TypingLiteral["and", "or"]
    left: Expr
    right: Expr
    span: Span


CompareOp = TypingLiteral["==", "!=", "<", "<=", ">", ">=", "in", "not in"]


@dataclass(frozen=True, slots=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class IsDefined:
    """``x is defined`` (``negated=False``) or ``x is not defined``."""

    operand: Expr
    negated: bool
    span: Span


@dataclass(frozen=True, slots=True)
class Concat:
    """``left ~ right``: both inserted as text, then joined."""

    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Filter:
    """``operand | name`` or ``operand | name(arg, key=arg)``."""

    operand: Expr
    name: str
    args: tuple[Expr, ...]
    kwargs: tuple[tuple[str, Expr], ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Call:
    """A status function in ``if``: ``success()``, ``failure()``, ``always()``."""

    name: str
    args: tuple[Expr, ...]
    span: Span


Expr = (
    Literal
    | ListExpr
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


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    span: Span


@dataclass(frozen=True, slots=True)
class Output:
    """``{{ expr }}``."""

    expr: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class If:
    """``{% if %}…{% elif %}…{% else %}…{% endif %}``: (condition, body) pairs, then else."""

    branches: tuple[tuple[Expr, tuple[Node, ...]], ...]
    else_body: tuple[Node, ...] | None
    span: Span


@dataclass(frozen=True, slots=True)
class For:
    """``{% for var in iterable %}…{% endfor %}``; binds ``var`` and ``loop`` in its body."""

    var: str
    iterable: Expr
    body: tuple[Node, ...]
    span: Span
    var_span: Span


Node = Text | Output | If | For


@dataclass(frozen=True, slots=True)
class Template:
    body: tuple[Node, ...]
    span: Span
    source: str

    @property
    def is_constant(self) -> bool:
        """True when the template is plain text (nothing to evaluate)."""
        return all(isinstance(node, Text) for node in self.body)
