"""The static checks of ``muxlang validate`` (SPEC section 5, MUX011 to MUX040).

One function per concern, each taking a :class:`CheckContext` and yielding
diagnostics, registered in :data:`CHECKS` in the order they run. A check never
stops another: the compiler runs them all and reports everything at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from muxlang.compiler import analysis as a
from muxlang.compiler import config_checks
from muxlang.compiler.loop_checks import check_loop_fields
from muxlang.compiler.plan import ResolvedConfig
from muxlang.compiler.roles import RoleResolver, locate
from muxlang.diagnostics import Diagnostic, Severity, did_you_mean
from muxlang.source import Span
from muxlang.steps import REGISTRY as STEP_KINDS
from muxlang.steps import step_kind
from muxlang.template import ast as t
from muxlang.template.filters import FilterSpec
from muxlang.workflow import AnyStep, QueryStep, Workflow


@dataclass
class CheckContext:
    """Everything a check may look at, computed once per workflow."""

    workflow: Workflow
    config: ResolvedConfig
    #: the files of the workflows calling this one (``uses``), outermost first
    callers: tuple[str, ...] = ()
    #: what each ``uses`` step calls, resolved once (:mod:`muxlang.steps.uses`)
    calls: dict[str, object] = field(default_factory=dict)
    sites: tuple[a.Site, ...] = field(init=False)
    #: every sub-expression of each site, walked once for all the checks
    _nodes: dict[int, tuple[t.Expr, ...]] = field(init=False)
    _envs: dict[int, a.TypeEnv] = field(init=False)

    def __post_init__(self) -> None:
        self.sites = tuple(a.sites(self.workflow))
        # keyed by identity: sites hold steps, which hold (unhashable) mappings
        self._nodes = {id(site): tuple(a.walk(site.expr)) for site in self.sites}
        self._envs = {}

    @property
    def file(self) -> str:
        return self.workflow.path

    @cached_property
    def steps(self) -> Mapping[str, AnyStep]:
        """Step by name; for a duplicated name, the first."""
        found: dict[str, AnyStep] = {}
        for step in self.workflow.steps:
            found.setdefault(step.name, step)
        return found

    def env(self, site: a.Site) -> a.TypeEnv:
        found = self._envs.get(id(site))
        if found is None:
            found = self._envs[id(site)] = a.site_env(self.workflow, site)
        return found

    def nodes(self, site: a.Site) -> tuple[t.Expr, ...]:
        """``site``'s expression and everything inside it, outermost first."""
        return self._nodes[id(site)]

    def names(self, site: a.Site) -> Iterator[t.Name]:
        """The variable names used in ``site``."""
        return (node for node in self.nodes(site) if isinstance(node, t.Name))

    def diag(
        self,
        span: Span,
        code: str,
        message: str,
        hint: str | None = None,
        severity: Severity = Severity.ERROR,
    ) -> Diagnostic:
        return Diagnostic(self.file, span, code, message, severity, hint)

    @cached_property
    def _refs(self) -> tuple[tuple[a.Site, a.StepRef], ...]:
        return tuple(
            (site, ref) for site in self.sites for ref in a.step_refs(site.expr, site.bound)
        )

    def refs(self) -> Iterator[tuple[a.Site, a.StepRef]]:
        """Every ``steps.X`` reference, with the site it is in."""
        return iter(self._refs)


Check = Callable[[CheckContext], Iterable[Diagnostic]]


# --------------------------------------------------------------------------- filters


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


@dataclass(frozen=True, slots=True)
class Params:
    """A filter's parameters after its input: names in order, how many are required,
    and how it is written (``join(sep=", ")``)."""

    names: tuple[str, ...]
    required: int
    usage: str = ""

    def at_most(self) -> str:
        n = len(self.names)
        if n == 0:
            return "no arguments"
        return f"at most {n} argument{'s' if n != 1 else ''}"


def filter_params(spec: FilterSpec) -> Params:
    """The parameters of a filter, from its ``FilterSpec``."""
    return Params(tuple(spec.params), spec.required, usage=spec.signature)


def check_filter_arguments(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX012: too many or too few arguments, an unknown or repeated keyword."""
    filters = _filters()
    for _, node in filter_nodes(ctx):
        spec = filters.get(node.name)
        if spec is None:
            continue
        params = filter_params(spec)
        usage = f"usage: `{params.usage}`"
        given = len(node.args)
        if given > len(params.names):
            extra = node.args[len(params.names)]
            yield ctx.diag(
                extra.span.to(node.args[-1].span),
                "MUX012",
                f"`{node.name}` takes {params.at_most()}, "
                f"but {given} {'was' if given == 1 else 'were'} given",
                usage,
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
                    did_you_mean(key, params.names) or usage,
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
                usage,
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


# --------------------------------------------------------------------------- steps


def check_has_steps(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX008 (warning): a workflow with no steps — `run` would do nothing and
    "succeed". A warning, not an error: a workflow being written may be empty."""
    if ctx.workflow.steps:
        return
    span = locate(ctx.file, ("steps",)) or locate(ctx.file, ("name",)) or Span.point(1, 1)
    yield ctx.diag(
        span,
        NO_STEPS_CODE,
        f"workflow `{ctx.workflow.name}` has no steps",
        'add a [[steps]] table, e.g. [[steps]] name = "hello" type = "shell" run = "echo hi"',
        Severity.WARNING,
    )


#: the code of :func:`check_has_steps`'s warning
NO_STEPS_CODE = "MUX008"


def check_duplicate_steps(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX020: two steps with one name (reported at the second)."""
    for step in ctx.workflow.steps:
        first = ctx.steps[step.name]
        if first is not step:
            yield ctx.diag(
                step.name_span,
                "MUX020",
                f"duplicate step name `{step.name}` (first defined at line {first.name_span.line})",
                "give each step its own name",
            )


def _unknown_step(ctx: CheckContext, name: str, span: Span, where: str) -> Diagnostic:
    hint = did_you_mean(name, ctx.steps) or (
        "the steps are " + ", ".join(f"`{n}`" for n in ctx.steps)
        if ctx.steps
        else "the workflow has no steps"
    )
    return Diagnostic(
        ctx.file, span, "MUX021", f"unknown step `{name}` in {where}", hint=hint, subject=name
    )


def check_unknown_steps(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX021: ``depends_on``, ``steps.X`` in a template, or ``source`` naming no step."""
    for step in ctx.workflow.steps:
        for ref in step.depends_on:
            if ref.name not in ctx.steps:
                yield _unknown_step(ctx, ref.name, ref.span, f"`depends_on` of `{step.name}`")
        for ref in step_kind(step).refs(step):
            if ref.name not in ctx.steps:
                yield _unknown_step(ctx, ref.name, ref.span, "`source`")
    for site, found in ctx.refs():
        if found.name not in ctx.steps:
            yield _unknown_step(ctx, found.name, found.span, f"`{site.field}`")


#: names people reach for, and the field that holds it
_FIELD_ALIASES: Mapping[str, str] = {
    "stdout": "output",
    "text": "output",
    "result": "output",
    "response": "output",
    "returncode": "exit_code",
    "exitcode": "exit_code",
    "exit_status": "exit_code",
    "code": "exit_code",
    "duration": "duration_ms",
}
_ALIAS_REASONS: Mapping[str, str] = {
    "stdout": "a shell step's stdout (trailing newlines removed) is its `output`",
}


def check_step_fields(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX023: ``steps.X.FIELD`` where a step of X's type has no such field."""
    for _, ref in ctx.refs():
        step = ctx.steps.get(ref.name)
        if step is None or ref.field is None or ref.field_span is None:
            continue
        fields = a.step_fields(step)
        if ref.field in fields:
            continue
        owner = next(
            (kind for kind, extra in a.TYPE_FIELDS.items() if ref.field in extra),
            "for_each" if ref.field in a.FOR_EACH_FIELDS else None,
        )
        alias = _FIELD_ALIASES.get(ref.field)
        if alias is not None and alias in fields:
            hint = f"use `{alias}`: {_ALIAS_REASONS.get(ref.field, 'that is the field')}"
        elif owner == "for_each":
            hint = f"`results` exists only for steps with `for_each`; `{step.name}` has none"
        elif owner is not None:
            hint = f"`{ref.field}` is a field of {owner} steps; `{step.name}` is a {step.type} step"
        else:
            hint = did_you_mean(ref.field, fields) or "fields: " + ", ".join(sorted(fields))
        yield ctx.diag(
            ref.field_span,
            "MUX023",
            f"step `{step.name}` has no field `{ref.field}`",
            hint,
        )


def check_item_scope(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX024: ``item`` or ``loop`` where no for_each (nor template ``{% for %}``) binds it."""
    for site in ctx.sites:
        if site.item_available:
            continue
        for node in ctx.names(site):
            if node.name not in a.ITEM_NAMES or node.name in site.bound:
                continue
            if site.role == "for_each":
                message = f"`{node.name}` is not defined in `for_each` itself"
                hint = "`for_each` computes the items; `item` exists in the step's other fields"
            else:
                message = f"`{node.name}` used outside a for_each step"
                hint = (
                    f"add `for_each = ...` to step `{site.step.name}`, "
                    f"or loop in the template with `{{% for x in ... %}}`"
                )
            yield ctx.diag(node.span, "MUX024", message, hint)


def _arg_refs(site: a.Site) -> Iterator[tuple[str, Span]]:
    if "args" in site.bound:
        return
    for node in a.walk(site.expr):
        if not (isinstance(node, t.Attr | t.Index) and isinstance(node.obj, t.Name)):
            continue
        if node.obj.name != "args":
            continue
        if isinstance(node, t.Attr):
            yield node.name, node.name_span
        elif isinstance(node.index, t.Literal) and isinstance(node.index.value, str):
            yield node.index.value, node.index.span


def check_undeclared_args(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX025: ``args.X`` not declared, when the workflow declares ``[args]``."""
    declared = [arg.name for arg in ctx.workflow.args]
    if not declared:
        return
    for site in ctx.sites:
        for name, span in _arg_refs(site):
            if name not in declared:
                yield ctx.diag(
                    span,
                    "MUX025",
                    f"undeclared arg `{name}`",
                    did_you_mean(name, declared)
                    or f"declare it with `[args.{name}]`, or use one of "
                    + ", ".join(f"`{n}`" for n in declared),
                )


# --------------------------------------------------------------------------- config


def check_roles_and_backends(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX030: a step's ``role``/``backend`` that the merged config does not define,
    and roles (used by the workflow, or defined in it) naming unknown entries or
    nesting in a cycle."""
    resolver = RoleResolver.for_workflow(ctx.workflow, ctx.config)
    starts: list[tuple[str, str, Span]] = [
        (name, ctx.file, ctx.workflow.span) for name in ctx.workflow.config.roles
    ]
    for step in ctx.workflow.steps:
        if not isinstance(step, QueryStep):
            continue
        if step.role is not None:
            if step.role.name in resolver.roles:
                starts.append((step.role.name, ctx.file, step.role.span))
            else:
                yield resolver.unknown_role(ctx.file, step.role.name, step.role.span)
        if step.backend is not None and step.backend.name not in resolver.backends:
            yield resolver.unknown_backend(ctx.file, step.backend.name, step.backend.span)
    yield from resolver.check_roles(starts)


def check_role_min_success(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX003: a role in the workflow's own tables whose ``min_success`` is more
    than the number of its entries (it could never succeed)."""
    return config_checks.check_min_success(ctx.config, ctx.file, config_checks.locator(ctx.file))


def check_team_detect(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX003: a ``detect`` pattern of the workflow's own ``[teams]`` that is not a
    valid glob."""
    return config_checks.check_detect_globs(
        ctx.workflow.config, ctx.file, config_checks.locator(ctx.file)
    )


def check_step_types(ctx: CheckContext) -> Iterator[Diagnostic]:
    """The checks of each step type's own module (:mod:`muxlang.steps`)."""
    for kind in STEP_KINDS.values():
        for check in kind.checks:
            yield from check(ctx)


# --------------------------------------------------------------------------- safety


def check_shell_injection(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX040 (warning): another step's output or an argument inserted into a
    shell command with ``raw``, or as code a shell or interpreter runs
    (:mod:`muxlang.compiler.shell_checks`)."""
    from muxlang.compiler.shell_checks import dangerous_insertions

    return dangerous_insertions(ctx)


# --------------------------------------------------------------------------- registry

#: Every check, in the order they run.
CHECKS: Sequence[Check] = (
    check_unknown_filters,
    check_filter_arguments,
    check_filter_argument_types,
    check_iterables,
    check_filter_input_types,
    check_access_types,
    check_comparison_types,
    check_unknown_names,
    check_status_functions,
    check_has_steps,
    check_duplicate_steps,
    check_unknown_steps,
    check_step_fields,
    check_item_scope,
    check_loop_fields,
    check_undeclared_args,
    check_roles_and_backends,
    check_role_min_success,
    check_team_detect,
    check_step_types,
    check_shell_injection,
)


def run_checks(ctx: CheckContext, checks: Sequence[Check] = CHECKS) -> list[Diagnostic]:
    """Every diagnostic of every check, in file order."""
    found: list[Diagnostic] = []
    for check in checks:
        found.extend(check(ctx))
    return found
