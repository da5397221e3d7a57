"""What the checks look at: every expression of a workflow, where it sits, and
what it refers to.

:func:`sites` walks each step's templates and expression fields and yields one
:class:`Site` per top-level expression (an ``{{ }}`` output, an ``{% if %}``
condition, a ``{% for %}`` iterable, an ``if`` or ``for_each`` field), with the
names a template ``{% for %}`` binds around it. :func:`step_refs` finds the
``steps.X`` / ``steps.X.field`` references inside an expression, and
:func:`infer` is the small static type inference MUX013 and MUX040 use.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Literal as TypingLiteral

from muxlang._frozen import frozen
from muxlang.source import Span
from muxlang.steps import REGISTRY as STEP_KINDS
from muxlang.steps import step_kind
from muxlang.template import ast as t
from muxlang.template.loop import LOOP_FIELDS as _LOOP_FIELDS
from muxlang.template.values import kind_of
from muxlang.workflow import AnyStep, Workflow

#: Static kinds of template values (the ``accepts``/``returns`` vocabulary of filters).
Kind = str  # "string" | "number" | "bool" | "none" | "list" | "table"

#: Root names every template can use.
ROOT_NAMES = frozenset({"steps", "args", "env", "team", "workflow"})
#: Root names only a for_each step's fields can use.
ITEM_NAMES = frozenset({"item", "loop"})
#: Extra names in an apply step's ``verify_retry_prompt``.
RETRY_PROMPT_NAMES = frozenset({"original", "error"})
#: Status functions, allowed in a step's ``if``.
STATUS_FUNCTIONS = frozenset({"success", "failure", "always"})

#: The fields a step record has (SPEC section 3), by step type; ``results`` only
#: for for_each steps.
COMMON_FIELDS: Mapping[str, Kind | None] = {
    "output": "string",
    "status": "string",
    "error": None,  # a string, or none when the step did not fail
    "duration_ms": "number",
    "failed": "bool",  # as in llm-mux: the status is "failed"
}
#: the fields each step type adds, from the step types' registry
TYPE_FIELDS: Mapping[str, Mapping[str, Kind | None]] = {
    name: kind.fields for name, kind in STEP_KINDS.items()
}
FOR_EACH_FIELDS: Mapping[str, Kind | None] = {"results": "list"}
REPEAT_FIELDS: Mapping[str, Kind | None] = {"iterations": "list"}
#: the fields of ``loop`` (one table for validate, run and ``{% for %}``)
LOOP_FIELDS: Mapping[str, Kind | None] = _LOOP_FIELDS


def step_fields(step: AnyStep) -> dict[str, Kind | None]:
    """The fields ``steps.NAME.FIELD`` may name for ``step``, with their kinds."""
    fields = dict(COMMON_FIELDS)
    fields.update(step_kind(step).fields)
    if step.for_each is not None:
        fields.update(FOR_EACH_FIELDS)
    if step.repeat is not None:
        fields.update(REPEAT_FIELDS)
    return fields


SiteRole = TypingLiteral["output", "if_tag", "for_tag", "if", "for_each", "until"]


@frozen(slots=True)
class Site:
    """One top-level expression of a step.

    ``field`` is the TOML key it came from (``run``, ``prompt``, ``env.TOKEN``,
    ``if``, ``for_each``); ``role`` says what the expression does there;
    ``bound`` holds the names template ``{% for %}`` tags bind around it (and
    ``loop`` inside one); ``tainted`` the bound names whose values come from
    another step's output.
    """

    step: AnyStep
    index: int
    field: str
    role: SiteRole
    expr: t.Expr
    bound: frozenset[str] = frozenset()
    tainted: frozenset[str] = frozenset()

    @property
    def item_available(self) -> bool:
        """``item`` and ``loop`` (of the step's for_each) are in scope here (not in
        ``repeat.until``, where ``loop`` is the iteration: a bound name there)."""
        return self.step.for_each is not None and self.role not in ("for_each", "until")


def shell_fields(step: AnyStep) -> frozenset[str]:
    """The template keys of ``step`` that become a shell command line."""
    return step_kind(step).shell_fields


def children(expr: t.Expr) -> tuple[t.Expr, ...]:
    """The direct sub-expressions of ``expr``, in source order."""
    if isinstance(expr, t.ListExpr):
        return expr.items
    if isinstance(expr, t.TableExpr):
        return tuple(part for pair in expr.items for part in pair)
    if isinstance(expr, t.Attr):
        return (expr.obj,)
    if isinstance(expr, t.Index):
        return (expr.obj, expr.index)
    if isinstance(expr, t.Not | t.IsDefined):
        return (expr.operand,)
    if isinstance(expr, t.BoolOp | t.Compare | t.Concat):
        return (expr.left, expr.right)
    if isinstance(expr, t.Filter):
        return (expr.operand, *expr.args, *(value for _, value in expr.kwargs))
    if isinstance(expr, t.Call):
        return expr.args
    return ()


def walk(expr: t.Expr) -> Iterator[t.Expr]:
    """``expr`` and every expression inside it, outermost first."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(children(node)))


def names(expr: t.Expr) -> Iterator[t.Name]:
    """Every variable name used in ``expr``."""
    return (node for node in walk(expr) if isinstance(node, t.Name))


# --------------------------------------------------------------------------- sites


def _template_sites(
    workflow: Workflow,
    step: AnyStep,
    index: int,
    field: str,
    body: tuple[t.Node, ...],
    bound: frozenset[str],
    tainted: frozenset[str],
) -> Iterator[Site]:
    for node in body:
        if isinstance(node, t.Output):
            yield Site(step, index, field, "output", node.expr, bound, tainted)
        elif isinstance(node, t.If):
            for condition, branch in node.branches:
                yield Site(step, index, field, "if_tag", condition, bound, tainted)
                yield from _template_sites(workflow, step, index, field, branch, bound, tainted)
            if node.else_body is not None:
                yield from _template_sites(
                    workflow, step, index, field, node.else_body, bound, tainted
                )
        elif isinstance(node, t.For):
            iterable = Site(step, index, field, "for_tag", node.iterable, bound, tainted)
            yield iterable
            inner = bound | {node.var, "loop"}
            taints = tainted - {node.var, "loop"}
            if reads_step_text(workflow, iterable):
                taints |= {node.var}
            yield from _template_sites(workflow, step, index, field, node.body, inner, taints)
            if node.else_body is not None:
                yield from _template_sites(
                    workflow, step, index, field, node.else_body, bound, tainted
                )


def sites(workflow: Workflow) -> Iterator[Site]:
    """Every top-level expression of every step, in file order."""
    for index, step in enumerate(workflow.steps):
        item_tainted: frozenset[str] = frozenset()
        if step.for_each is not None:
            for_each = Site(step, index, "for_each", "for_each", step.for_each.expr)
            yield for_each
            if reads_step_text(workflow, for_each):
                item_tainted = frozenset({"item"})
        if step.if_ is not None:
            yield Site(step, index, "if", "if", step.if_.expr)
        if step.repeat is not None:
            until = step.repeat.until.expr
            yield Site(step, index, "repeat.until", "until", until, frozenset({"loop"}))
        for field, value in step.templates():
            yield from _template_sites(
                workflow, step, index, field, value.template.body, frozenset(), item_tainted
            )


# --------------------------------------------------------------------------- references


@frozen(slots=True)
class StepRef:
    """``steps.NAME`` (``field`` None) or ``steps.NAME.FIELD`` inside an expression."""

    name: str
    span: Span
    field: str | None = None
    field_span: Span | None = None
    node: t.Expr | None = None


def _literal_str(expr: t.Expr) -> str | None:
    if isinstance(expr, t.Literal) and isinstance(expr.value, str):
        return expr.value
    return None


def _step_level(expr: t.Expr) -> tuple[str, Span] | None:
    """``steps.X`` or ``steps['X']``: the step name and where it is written."""
    return t.member(expr, "steps")


def step_refs(expr: t.Expr, bound: frozenset[str] = frozenset()) -> Iterator[StepRef]:
    """The step references in ``expr`` (``steps`` shadowed by a loop var yields none)."""
    if "steps" in bound:
        return
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, t.Attr | t.Index):
            inner = _step_level(node.obj)
            if inner is not None:
                name, span = inner
                if isinstance(node, t.Attr):
                    yield StepRef(name, span, node.name, node.name_span, node)
                    continue
                key = _literal_str(node.index)
                if key is not None:
                    yield StepRef(name, span, key, node.index.span, node)
                    continue
                yield StepRef(name, span, None, None, node.obj)
                stack.append(node.index)
                continue
            outer = _step_level(node)
            if outer is not None:
                yield StepRef(outer[0], outer[1], None, None, node)
                continue
        stack.extend(reversed(children(node)))


# --------------------------------------------------------------------------- types


@frozen(slots=True)
class TypeEnv:
    """What inference knows about names: the workflow's steps and the loop names."""

    workflow: Workflow
    item_available: bool = False
    bound: frozenset[str] = frozenset()


def kind_of_value(value: object) -> Kind | None:
    """The kind of a literal (:func:`muxlang.template.kind_of`; None for no value)."""
    kind = kind_of(value)
    return None if kind == "undefined" else kind


def _filter_returns(name: str) -> Kind | None:
    from muxlang.template.filters import FILTERS

    spec = FILTERS.get(name)
    return spec.returns if spec is not None else None


def infer(expr: t.Expr, env: TypeEnv) -> Kind | None:
    """The static kind of ``expr``, or None when it cannot be known before running."""
    if isinstance(expr, t.Literal):
        return kind_of_value(expr.value)
    if isinstance(expr, t.ListExpr):
        return "list"
    if isinstance(expr, t.TableExpr):
        return "table"
    if isinstance(expr, t.Name):
        if expr.name in env.bound:
            return None
        if expr.name in ("steps", "args", "env", "workflow"):
            return "table"
        if expr.name == "loop" and env.item_available:
            return "table"
        return None
    if isinstance(expr, t.Attr | t.Index):
        return _infer_access(expr, env)
    if isinstance(expr, t.Call) and expr.name == "now":
        return "string"  # the current time as RFC 3339 text
    if isinstance(expr, t.Not | t.Compare | t.IsDefined | t.Call):
        return "bool"
    if isinstance(expr, t.Concat):
        return "string"
    if isinstance(expr, t.BoolOp):
        left, right = infer(expr.left, env), infer(expr.right, env)
        return left if left == right else None
    return _filter_returns(expr.name)


def _access_key(expr: t.Attr | t.Index) -> str | None:
    if isinstance(expr, t.Attr):
        return expr.name
    return _literal_str(expr.index)


def _arg_kind(workflow: Workflow, name: str) -> Kind | None:
    """Args given on the command line are strings; a default keeps its TOML type."""
    if not workflow.args:
        return "string"
    arg = next((arg for arg in workflow.args if arg.name == name), None)
    if arg is None:
        return None
    if arg.required or isinstance(arg.default, str):
        return "string"
    return None


def _infer_access(expr: t.Attr | t.Index, env: TypeEnv) -> Kind | None:
    key = _access_key(expr)
    obj = expr.obj
    if isinstance(obj, t.Name) and obj.name not in env.bound:
        if obj.name == "args" and key is not None:
            return _arg_kind(env.workflow, key)
        if obj.name == "env" and key is not None:
            return "string"
        if obj.name == "steps":
            return "table"
        if obj.name == "workflow" and key == "name":
            return "string"
        if obj.name == "loop" and env.item_available and key is not None:
            return LOOP_FIELDS.get(key)
        return None
    level = _step_level(obj) if "steps" not in env.bound else None
    if level is not None and key is not None:
        step = env.workflow.step(level[0])
        if step is not None:
            return step_fields(step).get(key)
    return None


# --------------------------------------------------------------------------- taint

#: Step fields whose values cannot carry text another program wrote.
SAFE_STEP_FIELDS = frozenset({"exit_code", "duration_ms", "status", "attempts"})
_SAFE_KINDS = frozenset({"number", "bool", "none"})


def tainted_ref(
    expr: t.Expr, env: TypeEnv, tainted: frozenset[str], *, escaping: bool = True
) -> StepRef | t.Name | None:
    """The first place where another step's text flows, unescaped, into ``expr``'s value.

    A value is clean when ``shell_escape`` is the last filter it went through, or
    when it is a number, a boolean or the result of a comparison; ``tainted`` names
    loop variables that hold step output. Below a filter other than
    ``shell_escape`` (``x | shell_escape | upper``), an inner escape no longer counts
    (``escaping`` is False there).
    """
    if isinstance(expr, t.Literal | t.Not | t.Compare | t.IsDefined | t.Call):
        return None
    if isinstance(expr, t.Name):
        return expr if expr.name in tainted else None
    if isinstance(expr, t.Filter):
        if expr.name == "shell_escape" and escaping:
            return None
        if infer(expr, env) in _SAFE_KINDS:
            return None
        inner = expr.name == "shell_escape"
        for part in (expr.operand, *expr.args, *(v for _, v in expr.kwargs)):
            found = tainted_ref(part, env, tainted, escaping=inner and escaping)
            if found is not None:
                return found
        return None
    if isinstance(expr, t.Attr | t.Index):
        if "steps" not in env.bound:
            key = _access_key(expr)
            level = _step_level(expr.obj)
            if level is not None:
                if key in SAFE_STEP_FIELDS:
                    return None
                return StepRef(level[0], level[1], key, None, expr)
            level = _step_level(expr)
            if level is not None:
                return StepRef(level[0], level[1], None, None, expr)
        return tainted_ref(expr.obj, env, tainted, escaping=escaping)
    for part in children(expr):
        found = tainted_ref(part, env, tainted, escaping=escaping)
        if found is not None:
            return found
    return None


def site_env(workflow: Workflow, site: Site) -> TypeEnv:
    return TypeEnv(workflow, site.item_available, site.bound)


def reads_step_text(workflow: Workflow, site: Site) -> bool:
    """True when ``site``'s value may carry another step's (unescaped) text."""
    return tainted_ref(site.expr, site_env(workflow, site), site.tainted) is not None


# --------------------------------------------------------------------------- display


def show(expr: t.Expr) -> str:
    """The expression written back as source (for messages)."""
    return t.to_source(expr)


def a_kind(kind: Kind) -> str:
    """``"a string"``, ``"a list"``: a kind for a message (the words the filters use)."""
    from muxlang.template.filters import KIND_ARTICLES

    return KIND_ARTICLES.get(kind, kind)
