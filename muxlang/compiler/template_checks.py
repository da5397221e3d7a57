"""Checks of templates and expressions: filters, types and names (MUX011,
MUX012, MUX013, MUX026). One function per concern, registered in
:data:`muxlang.compiler.checks.CHECKS`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from muxlang._frozen import frozen
from muxlang.compiler import analysis as a
from muxlang.diagnostics import Diagnostic, did_you_mean
from muxlang.template import ast as t
from muxlang.template.filters import FilterSpec

if TYPE_CHECKING:
    from muxlang.compiler.checks import CheckContext


def _filters() -> Mapping[str, FilterSpec]:
    """The filter table: names to what the compiler knows of each filter."""
    from muxlang.template.filters import FILTERS

    return FILTERS


def filter_nodes(ctx: CheckContext) -> Iterator[tuple[a.Site, t.Filter]]:
    for site in ctx.sites:
        for node in ctx.nodes(site):
            if isinstance(node, t.Filter):
                yield site, node


def check_unknown_filters(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX011: a filter the standard library does not have."""
    filters = _filters()
    for _, node in filter_nodes(ctx):
        if node.name not in filters:
            yield ctx.diag(
                node.name_span,
                "MUX011",
                f"unknown filter `{node.name}`",
                did_you_mean(node.name, filters)
                or "the filters are: " + ", ".join(sorted(filters)),
            )


@frozen(slots=True)
class Params:
    """A filter's parameters after its input: names in order, how many are required."""

    names: tuple[str, ...]
    required: int

    def at_most(self) -> str:
        n = len(self.names)
        if n == 0:
            return "no arguments"
        return f"at most {n} argument{'s' if n != 1 else ''}"


def filter_params(spec: FilterSpec) -> Params:
    """The parameters of a filter, from its ``FilterSpec``."""
    return Params(tuple(spec.params), spec.required)


def _usage(spec: FilterSpec) -> str:
    """How the filter is written (``usage: `join(sep=", ")```), for a hint: built only
    for a diagnostic, never for the filter calls that are right."""
    return f"usage: `{spec.signature}`"


def check_filter_arguments(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX012: too many or too few arguments, an unknown or repeated keyword."""
    filters = _filters()
    for _, node in filter_nodes(ctx):
        spec = filters.get(node.name)
        if spec is None:
            continue
        params = filter_params(spec)
        given = len(node.args)
        if given > len(params.names):
            extra = node.args[len(params.names)]
            yield ctx.diag(
                extra.span.to(node.args[-1].span),
                "MUX012",
                f"`{node.name}` takes {params.at_most()}, "
                f"but {given} {'was' if given == 1 else 'were'} given",
                _usage(spec),
            )
            continue
        filled = set(params.names[:given])
        bad = False
        for index, (key, value) in enumerate(node.kwargs):
            # the keyword's name when the parser recorded it, else its value
            where = node.kwarg_spans[index] if index < len(node.kwarg_spans) else value.span
            if key not in params.names:
                yield ctx.diag(
                    where,
                    "MUX012",
                    f"`{node.name}` has no argument `{key}`",
                    did_you_mean(key, params.names) or _usage(spec),
                )
                bad = True
            elif key in filled:
                yield ctx.diag(where, "MUX012", f"`{node.name}` got argument `{key}` twice")
                bad = True
            filled.add(key)
        if bad:
            continue
        missing = [n for n in params.names[: params.required] if n not in filled]
        if missing:
            yield ctx.diag(
                node.name_span.to(node.span),
                "MUX012",
                f"`{node.name}` is missing {', '.join(f'`{m}`' for m in missing)}",
                _usage(spec),
            )


def check_filter_argument_types(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX012: an argument of a kind the filter's parameter does not take
    (``truncate('long')``, ``join(1)``)."""
    filters = _filters()
    for site, node in filter_nodes(ctx):
        spec = filters.get(node.name)
        if spec is None:
            continue
        kinds = spec.param_kinds
        given = [*zip(spec.params, node.args, strict=False), *node.kwargs]
        for name, arg in given:
            wanted = kinds.get(name)
            kind = a.infer(arg, ctx.env(site))
            if not wanted or kind is None or kind in wanted:
                continue
            expected = " or ".join(a.a_kind(k) for k in sorted(wanted))
            yield ctx.diag(
                arg.span,
                "MUX012",
                f"`{name}` of `{node.name}` must be {expected}, but `{a.show(arg)}` is "
                f"{a.a_kind(kind)}",
                f"usage: `{spec.signature}`",
            )


# --------------------------------------------------------------------------- types


def _as_text_hint(kind: a.Kind) -> str | None:
    if kind == "string":
        return "use `| lines` or `| from_json` to turn text into a list"
    return None


def check_iterables(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX013: ``for_each`` (or a template ``{% for %}``) over something not a list."""
    for site in ctx.sites:
        if site.role not in ("for_each", "for_tag"):
            continue
        kind = a.infer(site.expr, ctx.env(site))
        if kind is None or kind in ("list", "table"):
            if kind == "table" and site.role == "for_each":
                yield ctx.diag(
                    site.expr.span,
                    "MUX013",
                    f"`for_each` needs a list, but `{a.show(site.expr)}` is a table",
                )
            continue
        what = "`for_each`" if site.role == "for_each" else "`{% for %}`"
        yield ctx.diag(
            site.expr.span,
            "MUX013",
            f"{what} needs a list, but `{a.show(site.expr)}` is {a.a_kind(kind)}",
            _as_text_hint(kind),
        )


def check_filter_input_types(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX013: a filter given a kind of value it does not take (``join`` on a string)."""
    filters = _filters()
    for site, node in filter_nodes(ctx):
        spec = filters.get(node.name)
        accepts = spec.accepts if spec is not None else frozenset()
        if not accepts:
            continue
        kind = a.infer(node.operand, ctx.env(site))
        if kind is None or kind in accepts:
            continue
        wanted = " or ".join(a.a_kind(k) for k in sorted(accepts))
        hint = _as_text_hint(kind) if "list" in accepts else None
        yield ctx.diag(
            node.name_span,
            "MUX013",
            f"`{node.name}` takes {wanted}, but `{a.show(node.operand)}` is {a.a_kind(kind)}",
            hint,
        )


_SCALARS = frozenset({"string", "number", "bool", "none"})


def check_access_types(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX013: a field of a string, number or boolean (``steps.x.output.text``)."""
    for site in ctx.sites:
        env = ctx.env(site)
        for node in ctx.nodes(site):
            if not isinstance(node, t.Attr | t.Index):
                continue
            kind = a.infer(node.obj, env)
            if kind not in _SCALARS:
                continue
            assert kind is not None
            what = (
                f"field `{node.name}`" if isinstance(node, t.Attr) else f"`[{a.show(node.index)}]`"
            )
            span = node.name_span if isinstance(node, t.Attr) else node.index.span
            yield ctx.diag(
                span,
                "MUX013",
                f"`{a.show(node.obj)}` is {a.a_kind(kind)}; it has no {what}",
            )


_NEVER_EQUAL = (frozenset({"string", "number"}), frozenset({"string", "bool"}))


def _as_literal_hint(node: t.Compare, left: a.Kind | None) -> str | None:
    """``exit_code == '0'`` → suggest ``0``: the string literal that reads as a number."""
    for side, other in ((node.right, left), (node.left, None)):
        if isinstance(side, t.Literal) and isinstance(side.value, str) and other != "string":
            text = side.value.strip()
            if text.lstrip("-").replace(".", "", 1).isdigit():
                return f"compare with the number: `{text}` instead of `{a.show(side)}`"
            if text in ("true", "false"):
                return f"compare with the boolean: `{text}` instead of `{a.show(side)}`"
    return None


def check_comparison_types(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX013: ordering values that cannot be ordered, ``in`` over a scalar, and
    ``==``/``!=`` between a string and a number or boolean (never equal: values are
    not converted, unlike GitHub Actions)."""
    for site in ctx.sites:
        env = ctx.env(site)
        for node in ctx.nodes(site):
            if not isinstance(node, t.Compare):
                continue
            left, right = a.infer(node.left, env), a.infer(node.right, env)
            if node.op in ("==", "!=") and left and right and {left, right} in _NEVER_EQUAL:
                always = "false" if node.op == "==" else "true"
                yield ctx.diag(
                    node.span,
                    "MUX013",
                    f"`{node.op}` compares {a.a_kind(left)} with {a.a_kind(right)}: "
                    f"always {always}",
                    _as_literal_hint(node, left),
                )
            elif node.op in ("<", "<=", ">", ">="):
                orderable = left == right and left in ("number", "string", "list")
                if left and right and not orderable:
                    yield ctx.diag(
                        node.span,
                        "MUX013",
                        f"`{node.op}` cannot compare {a.a_kind(left)} with {a.a_kind(right)}",
                    )
            elif node.op in ("in", "not in") and right in ("number", "bool", "none"):
                yield ctx.diag(
                    node.right.span,
                    "MUX013",
                    f"`{node.op}` needs a string, list or table on its right, "
                    f"but `{a.show(node.right)}` is {a.a_kind(right)}",
                )
            elif node.op in ("in", "not in") and right == "string" and left not in (None, "string"):
                assert left is not None
                yield ctx.diag(
                    node.left.span,
                    "MUX013",
                    f"`{node.op}` a string needs a string on its left, "
                    f"but `{a.show(node.left)}` is {a.a_kind(left)}",
                )


def _names_at(site: a.Site) -> frozenset[str]:
    known = a.ROOT_NAMES | site.bound
    if site.item_available:
        known |= a.ITEM_NAMES
    if site.field == "verify_retry_prompt":
        known |= a.RETRY_PROMPT_NAMES
    return known


def check_unknown_names(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX026: a name no template scope has (``stpes.diff.output``)."""
    for site in ctx.sites:
        known = _names_at(site)
        for node in ctx.names(site):
            if node.name in known or node.name in a.ITEM_NAMES:
                continue  # item/loop outside a for_each step is MUX024's
            yield ctx.diag(
                node.span,
                "MUX026",
                f"unknown name `{node.name}`",
                did_you_mean(node.name, known)
                or "templates know " + ", ".join(f"`{n}`" for n in sorted(known)),
            )


def check_status_functions(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX011/MUX012/MUX013: ``success()``, ``failure()``, ``always()`` — only in ``if``."""
    for site in ctx.sites:
        for node in ctx.nodes(site):
            if not isinstance(node, t.Call):
                continue
            if node.name == "now":  # the current time, anywhere (as in llm-mux)
                if node.args:
                    yield ctx.diag(
                        node.args[0].span.to(node.args[-1].span),
                        "MUX012",
                        "`now()` takes no arguments",
                    )
                continue
            if node.name not in a.STATUS_FUNCTIONS:
                yield ctx.diag(
                    node.span,
                    "MUX011",
                    f"unknown function `{node.name}()`",
                    did_you_mean(node.name, a.STATUS_FUNCTIONS)
                    or "the functions are success(), failure() and always()",
                )
            elif node.args:
                yield ctx.diag(
                    node.args[0].span.to(node.args[-1].span),
                    "MUX012",
                    f"`{node.name}()` takes no arguments",
                )
            elif site.role != "if":
                yield ctx.diag(
                    node.span,
                    "MUX013",
                    f"`{node.name}()` can only be used in a step's `if`",
                )
