"""Evaluate expressions and render templates over plain values.

Each AST is compiled once into nested Python closures (cached per AST object),
so rendering a template many times costs only the closure calls: no tree walk,
no isinstance dispatch. Values are only strings, numbers, booleans, none, lists,
tables and :data:`UNDEFINED`; a table's keys are the only "attributes" there
are, so no Python attribute is ever reachable. A value is inserted once and
never rendered again: ``{{`` inside a step's output is just text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from muxlang.template import ast
from muxlang.template.errors import TemplateError
from muxlang.template.expressions import (
    _CACHE_LIMIT,
    _FUNCTIONS,
    _HINT_MISSING,
    Context,
    RenderFn,
    _expr,
    _expr_cache,
    _text_of,
    _undefined_message,
    compile_expression,
)
from muxlang.template.expressions import _insert as _insert  # muxlang.template.shell uses it
from muxlang.template.filters import describe_kinds
from muxlang.template.loop import LOOP_FIELDS, loop_builder
from muxlang.template.values import UNDEFINED, Scope, kind_of

__all__ = [
    "compile_expression",
    "compile_template",
    "evaluate",
    "render",
]

_template_cache: dict[int, tuple[ast.Template, RenderFn]] = {}


# ----------------------------------------------------------------------------- public API


def render(template: ast.Template, scope: Scope | Mapping[str, Any]) -> str:
    """Render ``template`` with the names of ``scope``. Raises :class:`TemplateError`."""
    entry = _template_cache.get(id(template))
    if entry is not None and entry[0] is template:
        return entry[1](_context(scope))
    return compile_template(template)(_context(scope))


def evaluate(expr: ast.Expr, scope: Scope | Mapping[str, Any]) -> Any:
    """The value of ``expr`` (possibly :data:`UNDEFINED`). Raises :class:`TemplateError`."""
    entry = _expr_cache.get(id(expr))
    if entry is not None and entry[0] is expr:
        return entry[1](_context(scope))
    return compile_expression(expr)(_context(scope))


def compile_template(template: ast.Template) -> RenderFn:
    """The render function of ``template`` (from a context dict of root names), cached."""
    entry = _template_cache.get(id(template))
    if entry is not None and entry[0] is template:
        return entry[1]
    fn = _body(template.body)
    if len(_template_cache) >= _CACHE_LIMIT:
        _template_cache.clear()
    _template_cache[id(template)] = (template, fn)
    return fn


def _context(scope: Scope | Mapping[str, Any]) -> Context:
    if type(scope) is dict:
        return scope
    if isinstance(scope, Scope):
        if scope.functions:
            ctx = dict(scope.names)
            ctx[_FUNCTIONS] = scope.functions
            return ctx
        names = scope.names
        return names if type(names) is dict else dict(names)
    return dict(scope)


# ----------------------------------------------------------------------------- templates


def _body(nodes: tuple[ast.Node, ...]) -> RenderFn:
    """One function for a sequence of nodes.

    Generated Python (from identifiers only; texts and closures are passed in a
    namespace), so text is a constant and a ``{{ }}`` whose value is a string
    costs one call: ``lambda ctx: t0 + (v if type(v := e1(ctx)) is str else ...)``.
    """
    if not nodes:
        return _empty
    if all(isinstance(node, ast.Text) for node in nodes):
        text = "".join(node.text for node in nodes)  # type: ignore[union-attr]
        return lambda ctx: text
    namespace: dict[str, Any] = {"_insert": _insert, "type": type, "str": str}
    terms: list[str] = []
    for i, node in enumerate(nodes):
        if isinstance(node, ast.Text):
            namespace[f"t{i}"] = node.text
            terms.append(f"t{i}")
        elif isinstance(node, ast.Output):
            namespace[f"e{i}"] = _expr(node.expr)
            namespace[f"x{i}"] = node.expr
            terms.append(
                f"(v if (t := type(v := e{i}(ctx))) is str else str(v) if t is int "
                f"else _insert(v, x{i}, ctx))"
            )
        else:
            namespace[f"n{i}"] = _node(node)
            terms.append(f"n{i}(ctx)")
    if len(terms) == 1 and isinstance(nodes[0], ast.If | ast.For):
        return namespace["n0"]  # type: ignore[no-any-return]
    joined = " + ".join(terms) if len(terms) <= 3 else "''.join((" + ", ".join(terms) + ",))"
    return eval(f"lambda ctx: {joined}", namespace)  # type: ignore[no-any-return]


def _empty(ctx: Context) -> str:
    return ""


def _node(node: ast.Node) -> RenderFn:
    if isinstance(node, ast.Text):
        text = node.text
        return lambda ctx: text
    if isinstance(node, ast.Output):
        return _text_of(_expr(node.expr), node.expr)
    if isinstance(node, ast.If):
        return _if(node)
    if isinstance(node, ast.For):
        return _for(node)
    raise AssertionError(f"unknown template node {node!r}")  # pragma: no cover


def _if(node: ast.If) -> RenderFn:
    branches = tuple((_expr(cond), _body(body)) for cond, body in node.branches)
    otherwise = _body(node.else_body) if node.else_body is not None else _empty
    if len(branches) == 1:
        ((cond, then),) = branches

        def if_one(ctx: Context) -> str:
            return then(ctx) if cond(ctx) else otherwise(ctx)

        return if_one

    def if_many(ctx: Context) -> str:
        for cond, then in branches:
            if cond(ctx):
                return then(ctx)
        return otherwise(ctx)

    return if_many


def _loop_keys(node: ast.For) -> tuple[str, ...]:
    """The ``loop.X`` keys the body reads (all of them if it uses ``loop`` otherwise)."""
    used: set[str] = set()

    def uses_whole_loop(expr: ast.Expr) -> bool:
        if (
            isinstance(expr, ast.Attr)
            and isinstance(expr.obj, ast.Name)
            and expr.obj.name == "loop"
        ):
            used.add(expr.name)
            return False
        if isinstance(expr, ast.Name):
            return expr.name == "loop"
        return any(uses_whole_loop(child) for child in ast.children(expr))

    bodies = [node.body] + ([node.else_body] if node.else_body is not None else [])
    for body in bodies:
        for top in ast.expressions(body):
            if uses_whole_loop(top):
                return tuple(LOOP_FIELDS)
    return tuple(k for k in LOOP_FIELDS if k in used)


def _for(node: ast.For) -> RenderFn:
    iterable = _expr(node.iterable)
    body = _body(node.body)
    otherwise = _body(node.else_body) if node.else_body is not None else _empty
    var = node.var
    expr = node.iterable
    keys = _loop_keys(node)
    make_loop = loop_builder(keys)

    def for_loop(ctx: Context) -> str:
        items = iterable(ctx)
        if type(items) is not list:
            items = _as_list(items, expr, ctx)
        count = len(items)
        if not count:
            return otherwise(ctx)
        inner = dict(ctx)
        if not keys:
            out = []
            for item in items:
                inner[var] = item
                out.append(body(inner))
            return "".join(out)
        out = []
        last = count - 1
        for i, item in enumerate(items):
            inner[var] = item
            inner["loop"] = make_loop(i, count, last)
            out.append(body(inner))
        return "".join(out)

    return for_loop


def _as_list(value: Any, expr: ast.Expr, ctx: Context) -> list[Any]:
    if isinstance(value, list | tuple):
        return list(value)
    source = ast.to_source(expr)
    if value is UNDEFINED:
        raise TemplateError(_undefined_message(expr, ctx), expr.span, _HINT_MISSING)
    hint = None
    if isinstance(value, str):
        hint = f"split it first: `{source} | lines`, or `{source} | from_json`"
    raise TemplateError(
        f"`{source}` is {describe_kinds([kind_of(value)])}; `for` needs a list",
        expr.span,
        hint,
    )
