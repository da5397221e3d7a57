"""Expressions compiled to closures, and how a value is inserted into text.

Each expression AST becomes one Python closure over its sub-expressions (cached
per AST object): :func:`compile_expression`. :mod:`muxlang.template.evaluate`
builds templates from these.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from muxlang.diagnostics import did_you_mean
from muxlang.template import ast
from muxlang.template.errors import TemplateError
from muxlang.template.filters import FILTERS, FilterError, FilterSpec, describe_kinds
from muxlang.template.values import UNDEFINED, NamedTable, kind_of, now, to_json

__all__ = ["compile_expression"]

Context = dict[str, Any]
ExprFn = Callable[[Context], Any]
RenderFn = Callable[[Context], str]

#: where the status functions sit in a context; no name can spell it
_FUNCTIONS: Final = "\0functions"
_CACHE_LIMIT: Final = 8192
#: what a filter may raise on odd input; reported as the filter's failure, never a traceback
_FILTER_FAILURES: Final = (FilterError, ValueError, TypeError, OverflowError, RecursionError)
_HINT_MISSING: Final = "give a fallback with `| default('...')`, or test it with `is defined`"

_expr_cache: dict[int, tuple[ast.Expr, ExprFn]] = {}


# ----------------------------------------------------------------------------- insertion


def _insert(value: Any, expr: ast.Expr, ctx: Context) -> str:
    """The text ``value`` inserts as (its type is not ``str``; that is the fast path)."""
    typ = type(value)
    if typ is bool:
        return "true" if value else "false"
    if typ is int or typ is float:
        return str(value)
    if typ is list or typ is dict:
        try:
            return to_json(value)
        except (TypeError, ValueError):
            raise TemplateError(
                f"`{ast.to_source(expr)}` holds a value that cannot be inserted "
                "(an undefined item?)",
                expr.span,
            ) from None
    if value is UNDEFINED:
        raise TemplateError(_undefined_message(expr, ctx), expr.span, _HINT_MISSING)
    if value is None:
        raise TemplateError(f"`{ast.to_source(expr)}` is none", expr.span, _HINT_MISSING)
    if isinstance(value, NamedTable):
        return value.text
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple | Mapping):
        return _insert(list(value) if isinstance(value, tuple) else dict(value), expr, ctx)
    raise TemplateError(  # pragma: no cover - values come from plain data
        f"`{ast.to_source(expr)}` is not a template value", expr.span
    )


def _text_of(fn: ExprFn, expr: ast.Expr) -> RenderFn:
    """``fn``'s value as inserted text (for ``{{ }}`` and ``~``)."""

    def text(ctx: Context) -> str:
        value = fn(ctx)
        if type(value) is str:
            return value
        return _insert(value, expr, ctx)

    return text


def _undefined_message(expr: ast.Expr, ctx: Context) -> str:
    source = ast.to_source(expr)
    reason = _why_undefined(expr, ctx)
    if reason is None or reason == f"`{source}` is undefined":
        return f"`{source}` is undefined"
    return f"`{source}` is undefined: {reason}"


def _why_undefined(expr: ast.Expr, ctx: Context) -> str | None:
    """Which part of ``expr`` made it undefined, in words (slow path, errors only)."""
    if isinstance(expr, ast.Name):
        if expr.name in ctx:
            return None
        return f"`{expr.name}` is undefined"
    if isinstance(expr, ast.Attr | ast.Index):
        try:
            base = compile_expression(expr.obj)(ctx)
        except TemplateError:
            return None
        if base is UNDEFINED:
            return _why_undefined(expr.obj, ctx)
        base_src = ast.to_source(expr.obj)
        if isinstance(expr, ast.Attr):
            key: Any = expr.name
        else:
            try:
                key = compile_expression(expr.index)(ctx)
            except TemplateError:
                return None
        if isinstance(base, Mapping):
            if not isinstance(key, str):
                return f"`{base_src}` is a table: its keys are strings"
            message = f"`{base_src}` has no key `{key}`"
            if base_src != "env":  # the environment is large; no guesses from it
                hint = did_you_mean(key, [k for k in base if isinstance(k, str)])
                if hint:
                    message += f" ({hint})"
            return message
        if base is None:
            return f"`{base_src}` is none"
        if isinstance(base, list | str) and type(key) is int:
            return f"index {key} is out of range: `{base_src}` has {len(base)} items"
        what = describe_kinds([kind_of(base)])
        return f"`{base_src}` is {what}, which has no key `{key}`"
    if isinstance(expr, ast.Filter) and expr.name in ("first", "last"):
        return f"`{ast.to_source(expr.operand)}` is empty"
    return None


def compile_expression(expr: ast.Expr) -> ExprFn:
    """The evaluation function of ``expr`` (from a context dict of root names), cached."""
    entry = _expr_cache.get(id(expr))
    if entry is not None and entry[0] is expr:
        return entry[1]
    fn = _expr(expr)
    if len(_expr_cache) >= _CACHE_LIMIT:
        _expr_cache.clear()
    _expr_cache[id(expr)] = (expr, fn)
    return fn


# ----------------------------------------------------------------------------- expressions


def _expr(expr: ast.Expr) -> ExprFn:
    compiler = _COMPILERS.get(type(expr))
    if compiler is None:  # pragma: no cover - every node type is listed
        raise AssertionError(f"unknown expression {expr!r}")
    return compiler(expr)


def _literal(expr: ast.Literal) -> ExprFn:
    value = expr.value
    return lambda ctx: value


def _list(expr: ast.ListExpr) -> ExprFn:
    items = tuple(_expr(item) for item in expr.items)
    return lambda ctx: [item(ctx) for item in items]


def _table(expr: ast.TableExpr) -> ExprFn:
    pairs = tuple((_expr(k), _expr(v), k) for k, v in expr.items)

    def table(ctx: Context) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_fn, value_fn, key_expr in pairs:
            key = key_fn(ctx)
            if not isinstance(key, str):
                raise TemplateError(
                    f"a table's keys are strings, but `{ast.to_source(key_expr)}` is "
                    f"{describe_kinds([kind_of(key)])}",
                    key_expr.span,
                )
            out[key] = value_fn(ctx)
        return out

    return table


def _name(expr: ast.Name) -> ExprFn:
    name = expr.name
    return lambda ctx: ctx.get(name, UNDEFINED)


def _key(value: Any, key: Any) -> Any:
    """``value[key]`` / ``value.key`` over template values; undefined when absent."""
    if isinstance(value, Mapping):
        return value.get(key, UNDEFINED) if isinstance(key, str) else UNDEFINED
    if isinstance(value, list | str | tuple) and type(key) is int:
        try:
            return value[key]
        except IndexError:
            return UNDEFINED
    return UNDEFINED


def _attr(expr: ast.Attr) -> ExprFn:
    # flatten `a.b.c` so a path costs one closure call
    path = [expr.name]
    base: ast.Expr = expr.obj
    while isinstance(base, ast.Attr):
        path.append(base.name)
        base = base.obj
    path.reverse()
    if isinstance(base, ast.Name):
        root = base.name
        if len(path) == 1:
            (key,) = path

            def attr_root1(ctx: Context) -> Any:
                value = ctx.get(root, UNDEFINED)
                if type(value) is dict:
                    return value.get(key, UNDEFINED)
                return _key(value, key)

            return attr_root1
        if len(path) == 2:
            key1, key2 = path

            def attr_root2(ctx: Context) -> Any:
                value = ctx.get(root, UNDEFINED)
                value = value.get(key1, UNDEFINED) if type(value) is dict else _key(value, key1)
                if type(value) is dict:
                    return value.get(key2, UNDEFINED)
                return _key(value, key2)

            return attr_root2
        keys = tuple(path)

        def attr_root(ctx: Context) -> Any:
            value = ctx.get(root, UNDEFINED)
            for key in keys:
                value = value.get(key, UNDEFINED) if type(value) is dict else _key(value, key)
            return value

        return attr_root
    obj = _expr(base)
    keys = tuple(path)

    def attr(ctx: Context) -> Any:
        value = obj(ctx)
        for key in keys:
            value = value.get(key, UNDEFINED) if type(value) is dict else _key(value, key)
        return value

    return attr


def _index(expr: ast.Index) -> ExprFn:
    obj = _expr(expr.obj)
    index = _expr(expr.index)
    return lambda ctx: _key(obj(ctx), index(ctx))


def _not(expr: ast.Not) -> ExprFn:
    operand = _expr(expr.operand)
    return lambda ctx: not operand(ctx)


def _boolop(expr: ast.BoolOp) -> ExprFn:
    left = _expr(expr.left)
    right = _expr(expr.right)
    if expr.op == "and":
        return lambda ctx: left(ctx) and right(ctx)
    return lambda ctx: left(ctx) or right(ctx)


_ORDERING: Final = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


def _compare(expr: ast.Compare) -> ExprFn:
    left = _expr(expr.left)
    right = _expr(expr.right)
    op = expr.op
    if op == "==":
        return lambda ctx: left(ctx) == right(ctx)
    if op == "!=":
        return lambda ctx: left(ctx) != right(ctx)
    if op in ("in", "not in"):
        negate = op == "not in"

        def contains(ctx: Context) -> bool:
            needle = left(ctx)
            haystack = right(ctx)
            if isinstance(haystack, str):
                if not isinstance(needle, str):
                    raise TemplateError(
                        f"`{op}` a string needs a string on its left, got "
                        f"{describe_kinds([kind_of(needle)])} (`{ast.to_source(expr.left)}`)",
                        expr.span,
                    )
                found = needle in haystack
            elif isinstance(haystack, list | tuple | Mapping):
                try:
                    found = needle in haystack
                except TypeError:  # an unhashable key into a table
                    found = False
            else:
                what = (
                    _undefined_message(expr.right, ctx)
                    if haystack is UNDEFINED
                    else f"`{ast.to_source(expr.right)}` is {describe_kinds([kind_of(haystack)])}"
                )
                raise TemplateError(
                    f"`{op}` needs a string, list or table on its right: {what}", expr.span
                )
            return found != negate

        return contains
    compare = _ORDERING[op]

    def order(ctx: Context) -> bool:
        a = left(ctx)
        b = right(ctx)
        ka, kb = kind_of(a), kind_of(b)
        if ka == kb and ka in ("number", "string", "list"):
            try:
                return bool(compare(a, b))
            except TypeError:
                pass
        raise TemplateError(
            f"cannot compare {describe_kinds([ka])} with {describe_kinds([kb])} using `{op}` "
            f"(`{ast.to_source(expr)}`)",
            expr.span,
        )

    return order


def _is_defined(expr: ast.IsDefined) -> ExprFn:
    operand = _expr(expr.operand)
    if expr.negated:
        return lambda ctx: operand(ctx) is UNDEFINED
    return lambda ctx: operand(ctx) is not UNDEFINED


def _concat(expr: ast.Concat) -> ExprFn:
    left = _text_of(_expr(expr.left), expr.left)
    right = _text_of(_expr(expr.right), expr.right)
    return lambda ctx: left(ctx) + right(ctx)


def _filter(expr: ast.Filter) -> ExprFn:
    spec = FILTERS.get(expr.name)
    if spec is None:
        hint = did_you_mean(expr.name, FILTERS)
        raise TemplateError(f"unknown filter `{expr.name}`", expr.name_span, hint)
    problem = spec.check_args(len(expr.args), [k for k, _ in expr.kwargs])
    if problem is not None:
        raise TemplateError(problem, expr.name_span)
    operand = _expr(expr.operand)
    args = tuple(_expr(a) for a in expr.args)
    kwargs = tuple((k, _expr(v)) for k, v in expr.kwargs)
    func = spec.func
    check = _input_check(spec, expr)
    span = expr.name_span

    if not args and not kwargs:

        def filter0(ctx: Context) -> Any:
            value = operand(ctx)
            check(value, ctx)
            try:
                return func(value)
            except _FILTER_FAILURES as exc:
                raise TemplateError(f"filter `{spec.name}`: {exc}", span) from None

        return filter0

    # (argument name, kinds it accepts, its expression) for every argument given
    bound = [
        (spec.params[i], spec.param_kinds.get(spec.params[i], frozenset()), a)
        for i, a in enumerate(expr.args)
    ] + [(k, spec.param_kinds.get(k, frozenset()), v) for k, v in expr.kwargs]

    def check_args(values: list[Any], ctx: Context) -> None:
        for (param, kinds, arg), value in zip(bound, values, strict=True):
            if kinds and kind_of(value) not in kinds:
                got = kind_of(value)
                shown = (
                    _undefined_message(arg, ctx)
                    if got == "undefined"
                    else f"{describe_kinds([got])} (`{ast.to_source(arg)}`)"
                )
                raise TemplateError(
                    f"filter `{spec.name}`: `{param}` must be {describe_kinds(kinds)}, got {shown}",
                    arg.span,
                )

    def filter_n(ctx: Context) -> Any:
        value = operand(ctx)
        check(value, ctx)
        positional = [a(ctx) for a in args]
        named = {k: v(ctx) for k, v in kwargs}
        check_args([*positional, *named.values()], ctx)
        try:
            return func(value, *positional, **named)
        except _FILTER_FAILURES as exc:
            raise TemplateError(f"filter `{spec.name}`: {exc}", span) from None

    return filter_n


def _input_check(spec: FilterSpec, expr: ast.Filter) -> Callable[[Any, Context], None]:
    accepts = spec.accepts
    allow_undefined = spec.accepts_undefined
    fast = tuple(
        typ
        for typ, kind in ((str, "string"), (list, "list"), (dict, "table"))
        if kind in accepts or not accepts
    )

    def check(value: Any, ctx: Context) -> None:
        if type(value) in fast:
            return
        if value is UNDEFINED:
            if allow_undefined:
                return
            raise TemplateError(
                _undefined_message(expr.operand, ctx),
                expr.operand.span,
                _HINT_MISSING,
            )
        kind = kind_of(value)
        if accepts and kind not in accepts:
            hint = None
            if spec.name == "join" and kind == "string":
                hint = "split the text into a list first, e.g. `| lines | join(', ')`"
            raise TemplateError(
                f"filter `{spec.name}` needs {describe_kinds(accepts)}, but "
                f"`{ast.to_source(expr.operand)}` is {describe_kinds([kind])}",
                expr.name_span,
                hint,
            )

    return check


def _call(expr: ast.Call) -> ExprFn:
    args = tuple(_expr(a) for a in expr.args)
    name = expr.name

    if name == "now":
        return lambda ctx: now()

    def call(ctx: Context) -> Any:
        functions = ctx.get(_FUNCTIONS)
        func = functions.get(name) if functions is not None else None
        if func is None:
            raise TemplateError(
                f"`{name}()` is not available here",
                expr.span,
                "`success()`, `failure()` and `always()` can be used in a step's `if`",
            )
        return func(*[a(ctx) for a in args])

    return call


_COMPILERS: Final[dict[type, Callable[[Any], ExprFn]]] = {
    ast.Literal: _literal,
    ast.ListExpr: _list,
    ast.TableExpr: _table,
    ast.Name: _name,
    ast.Attr: _attr,
    ast.Index: _index,
    ast.Not: _not,
    ast.BoolOp: _boolop,
    ast.Compare: _compare,
    ast.IsDefined: _is_defined,
    ast.Concat: _concat,
    ast.Filter: _filter,
    ast.Call: _call,
}
