"""MUX040: what stays dangerous in a shell command once every insertion is quoted.

Since SPEC section 11 an insertion in ``run`` or ``verify`` is quoted for its
place, so a value can no longer break out of the command. Two things remain
dangerous, and this check warns about them when the value comes from another
step's output or from ``args`` (text someone else controls):

- the value is inserted with ``raw``: it is shell code, on purpose;
- the value lands in code that a shell or an interpreter runs (``eval``,
  ``sh -c``, ``bash -c``, ``python -c``, ``node -e``, ``awk``'s program, ``ssh``'s
  remote command, or the command name itself): quoting keeps it one argument,
  and that argument is then run as code.

Where an insertion stands is read from the template's literal text by the same
lexer the renderer uses (:func:`muxlang.template.shell.insertion_sites`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from muxlang.compiler import analysis as a
from muxlang.diagnostics import Diagnostic, Severity
from muxlang.template import ast as t
from muxlang.template.shell import SHELL_FIELDS, insertion_sites

if TYPE_CHECKING:
    from muxlang.compiler.checks import CheckContext

CODE = "MUX040"


def _arg_name(expr: t.Expr, bound: frozenset[str]) -> str | None:
    """The first ``args.NAME`` read in ``expr`` (not under a number-valued filter)."""
    if "args" in bound:
        return None
    for node in t.walk(expr):
        if isinstance(node, t.Attr) and isinstance(node.obj, t.Name) and node.obj.name == "args":
            return node.name
        if (
            isinstance(node, t.Index)
            and isinstance(node.obj, t.Name)
            and node.obj.name == "args"
            and isinstance(node.index, t.Literal)
        ):
            return str(node.index.value)
    return None


def _origin(ctx: CheckContext, site: a.Site) -> tuple[str, str] | None:
    """Where the text of ``site`` comes from, when someone else controls it:
    (words for the message, a name for an env var)."""
    env = ctx.env(site)
    if a.infer(site.expr, env) in ("number", "bool", "none"):
        return None
    found = a.tainted_ref(site.expr, env, site.tainted, escaping=False)
    if isinstance(found, a.StepRef):
        step = ctx.steps.get(found.name)
        if step is None or (found.field and found.field not in a.step_fields(step)):
            return None  # MUX021/MUX023 say what is wrong with it
        var = f"{found.name}_{found.field or 'output'}".replace("-", "_").upper()
        return f"the output of step `{found.name}`", var
    if found is not None:
        return f"`{found.name}` (from another step's output)", found.name.upper()
    arg = _arg_name(site.expr, site.bound)
    if arg is not None:
        return f"the argument `{arg}`", arg.replace("-", "_").upper()
    return None


def dangerous_insertions(ctx: CheckContext) -> Iterator[Diagnostic]:
    """MUX040 (warning): another step's output or an argument inserted with
    ``raw``, or as code a shell or interpreter runs."""
    by_expr = {id(site.expr): site for site in ctx.sites if site.role == "output"}
    for step in ctx.workflow.steps:
        for field, value in step.templates():
            if field not in SHELL_FIELDS:
                continue
            for output, place in insertion_sites(value.template):
                site = by_expr.get(id(output.expr))
                if site is None:
                    continue
                raw = isinstance(output.expr, t.Filter) and output.expr.name == "raw"
                if not raw and place.code is None:
                    continue
                origin = _origin(ctx, site)
                if origin is None:
                    continue
                source, var = origin
                if raw:
                    message = (
                        f"{source} is inserted into `{field}` with `raw`: "
                        "its text runs as shell code"
                    )
                    hint = (
                        f"drop `| raw`: every insertion in `{field}` is quoted for its place, "
                        "so the text arrives as it is"
                    )
                else:
                    shown = output.expr
                    if isinstance(shown, t.Filter) and shown.name == "shell_escape":
                        shown = shown.operand  # the environment needs no quoting
                    message = (
                        f"{source} is inserted as {place.code}: quoted or not, "
                        "whatever it holds runs as code"
                    )
                    hint = (
                        f"give it to the program as data instead: env = {{ {var} = "
                        f'"{{{{ {t.to_source(shown)} }}}}" }} and read "${var}" '
                        "in the code"
                    )
                yield Diagnostic(ctx.file, output.expr.span, CODE, message, Severity.WARNING, hint)
