"""Templates that become shell code: every insertion is quoted for where it stands
(SPEC section 11).

A ``run`` or ``verify`` template is rendered by :func:`render_shell`. Its literal
text is fed, as it is produced, through :class:`ShellLexer`, a small POSIX sh
lexer that knows the quoting state at every point: unquoted (also inside a
word), inside ``"…"``, inside ``'…'``, in a here-document body (quoted or
unquoted delimiter), in a comment, inside ``$(…)``. Each ``{{ }}`` value is then
encoded so that the shell reads it back as exactly its text, with no character
interpreted (:func:`encode`). Only literal text and ``raw`` values move the
lexer; an encoded value never changes the state it was inserted in.

- ``{{ x | raw }}`` inserts ``x`` unquoted, on purpose: it is shell code.
- ``{{ x | shell_escape }}`` is already quoted for an unquoted place; it is
  never quoted twice: in any other place its original text is encoded for
  that place (so ``"{{ x | shell_escape }}"`` prints ``x``, not ``'x'``).
- In ``{% if %}`` and ``{% for %}`` blocks, the literal text of what is
  rendered counts, in the order it is rendered.
- Places where no encoding can keep a value inert are refused with a clear
  error instead: inside backticks (use ``$(…)``), inside ``${…}``, in an
  arithmetic ``$((…))`` (unless the value is an integer), as a here-document
  delimiter, right after a bare ``$`` in a here-document, or a line of a value
  that would end a here-document with a quoted delimiter.

:func:`insertion_sites` is the static counterpart for ``validate``: where each
``{{ }}`` of a template stands, and whether it lands in code a shell or an
interpreter runs (``sh -c``, ``eval``, ``python -c``, …), which MUX040 reports.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from muxlang.template import ast
from muxlang.template.errors import TemplateError
from muxlang.template.evaluate import _context, _insert, compile_expression
from muxlang.template.loop import LOOP_FIELDS, loop_builder
from muxlang.template.marks import RawText, ShellQuoted
from muxlang.template.shell_encode import ShellQuoteError, encode, quote_word
from muxlang.template.shell_lexer import Context, ShellLexer
from muxlang.template.values import Scope

__all__ = [
    "SHELL_FIELDS",
    "Insertion",
    "RawText",
    "ShellLexer",
    "ShellQuoteError",
    "ShellQuoted",
    "encode",
    "insertion_sites",
    "quote_word",
    "render_shell",
]

#: the template keys of a step whose text is a shell command
SHELL_FIELDS: Final = frozenset({"run", "verify"})


@dataclass(slots=True)
class Insertion:
    """Where an insertion stands: its context and, when it lands in code that a
    shell or interpreter runs, a description of that (``sh -c``)."""

    context: Context
    code: str | None = None


# ----------------------------------------------------------------------------- rendering


def render_shell(template: ast.Template, scope: Scope | Mapping[str, Any]) -> str:
    """Render a shell template with every insertion quoted for its context.
    Raises :class:`TemplateError`."""
    lexer = ShellLexer()
    out: list[str] = []
    ctx = _context(scope)
    _render(template.body, ctx, lexer, out)
    return "".join(out)


def _render(
    nodes: tuple[ast.Node, ...], ctx: dict[str, Any], lexer: ShellLexer, out: list[str]
) -> None:
    for node in nodes:
        if isinstance(node, ast.Text):
            try:
                lexer.feed(node.text)
            except ShellQuoteError as exc:
                raise TemplateError(str(exc), node.span) from None
            out.append(node.text)
        elif isinstance(node, ast.Output):
            value = compile_expression(node.expr)(ctx)
            try:
                out.append(_insertion(lexer, value, node.expr, ctx))
            except ShellQuoteError as exc:
                raise TemplateError(
                    f"cannot insert `{ast.to_source(node.expr)}` here: {exc}", node.expr.span
                ) from None
        elif isinstance(node, ast.If):
            for condition, body in node.branches:
                if compile_expression(condition)(ctx):
                    _render(body, ctx, lexer, out)
                    break
            else:
                if node.else_body is not None:
                    _render(node.else_body, ctx, lexer, out)
        else:
            _render_for(node, ctx, lexer, out)


def _insertion(lexer: ShellLexer, value: Any, expr: ast.Expr, ctx: dict[str, Any]) -> str:
    if isinstance(value, RawText):
        return lexer.insert_raw(str.__str__(value))
    if isinstance(value, ShellQuoted):
        if (
            lexer.context() == "unquoted"
            and not (lexer.dollar or lexer.escape or lexer.name)
            and not lexer._cmd().fresh
        ):
            quoted = str.__str__(value)
            lexer._after_insert(quoted)
            return quoted
        return lexer.insert(value.plain)
    text = value if type(value) is str else _insert(value, expr, ctx)
    return lexer.insert(text)


_FULL_LOOP: Final = loop_builder(tuple(LOOP_FIELDS))


def _render_for(node: ast.For, ctx: dict[str, Any], lexer: ShellLexer, out: list[str]) -> None:
    items = compile_expression(node.iterable)(ctx)
    if isinstance(items, tuple):
        items = list(items)
    if not isinstance(items, list):
        # the plain renderer words the error (undefined, or not a list)
        from muxlang.template.evaluate import render

        render(ast.Template((node,), node.span, ""), ctx)
        raise TemplateError(f"`{ast.to_source(node.iterable)}` is not a list", node.span)
    if not items:
        if node.else_body is not None:
            _render(node.else_body, ctx, lexer, out)
        return
    inner = dict(ctx)
    last = len(items) - 1
    for i, item in enumerate(items):
        inner[node.var] = item
        inner["loop"] = _FULL_LOOP(i, len(items), last)
        _render(node.body, inner, lexer, out)


# ----------------------------------------------------------------------------- static view


def insertion_sites(template: ast.Template) -> Iterator[tuple[ast.Output, Insertion]]:
    """Every ``{{ }}`` of a shell template with the context it stands in, read
    from the literal text before it (each ``{% if %}`` branch from the state
    at its start; after the block, the first branch's end state)."""
    lexer = ShellLexer()
    yield from _sites(template.body, lexer)


def _clone(lexer: ShellLexer) -> ShellLexer:
    return copy.deepcopy(lexer)


def _sites(
    nodes: tuple[ast.Node, ...], lexer: ShellLexer
) -> Iterator[tuple[ast.Output, Insertion]]:
    for node in nodes:
        try:
            if isinstance(node, ast.Text):
                lexer.feed(node.text)
            elif isinstance(node, ast.Output):
                info = Insertion(lexer.context(), lexer.code_position())
                yield node, info
                lexer._after_insert("x")
            elif isinstance(node, ast.If):
                bodies = [body for _, body in node.branches]
                if node.else_body is not None:
                    bodies.append(node.else_body)
                after: ShellLexer | None = None
                for body in bodies:
                    branch = _clone(lexer)
                    yield from _sites(body, branch)
                    after = after or branch
                if after is not None:
                    _copy_into(lexer, after)
            else:
                yield from _sites(node.body, lexer)
                if node.else_body is not None:
                    yield from _sites(node.else_body, _clone(lexer))
        except ShellQuoteError:
            return


def _copy_into(target: ShellLexer, source: ShellLexer) -> None:
    target.stack = source.stack
    target.heredoc = source.heredoc
    target.pending = source.pending
    target.escape = source.escape
    target.dollar = source.dollar
    target.lt = source.lt
    target.delim = source.delim
