"""The checks never crash: random expressions built from the language's pieces,
placed in every kind of field, give diagnostics or a plan — never an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mux_compiler_support import config, query, shell

from muxlang.compiler import compile_workflow
from muxlang.source import Span
from muxlang.template import TemplateSyntaxError, parse_expression, parse_template
from muxlang.workflow import ExprField, TemplateField, Workflow

ATOMS = st.sampled_from(
    [
        "steps.a.output",
        "steps.b.results",
        "steps.a.exit_code",
        "steps['a'].stderr",
        "steps.nope.output",
        "steps.a.nope",
        "steps",
        "item",
        "loop.index",
        "args.x",
        "env.HOME",
        "team",
        "workflow.name",
        "stpes",
        "'text'",
        "3",
        "true",
        "none",
        "[1, 'a']",
        "success()",
        "always(1)",
        "nosuch()",
    ]
)
FILTERS = st.sampled_from(
    ["trim", "lines", "join(', ')", "join(1, 2)", "shell_escape", "length", "nope", "default(x=1)"]
)


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    expr = draw(ATOMS)
    for _ in range(draw(st.integers(0, 2))):
        choice = draw(st.integers(0, 4))
        if choice == 0:
            expr = f"{expr} | {draw(FILTERS)}"
        elif choice == 1:
            expr = f"{expr}.{draw(st.sampled_from(['output', 'x', 'index']))}"
        elif choice == 2 and depth < 2:
            op = draw(st.sampled_from(["==", "<", "in", "and", "or", "~"]))
            expr = f"({expr}) {op} ({draw(expressions(depth + 1))})"
        elif choice == 3:
            expr = f"not {expr}"
        else:
            expr = f"{expr} is defined"
    return expr


def field(source: str) -> TemplateField:
    return TemplateField(source, parse_template(source), Span(1, 1, 1, 2))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), expressions(), expressions())
def test_random_expressions_never_crash_the_compiler(one: str, two: str, three: str) -> None:
    try:
        run = field(f"echo {{{{ {one} }}}} {{% for v in {two} %}}{{{{ v }}}}{{% endfor %}}")
        prompt = field(f"{{% if {three} %}}{{{{ {two} }}}}{{% endif %}}")
        cond = ExprField(three, parse_expression(three), Span(1, 1, 1, 2))
        each = ExprField(two, parse_expression(two), Span(1, 1, 1, 2))
    except TemplateSyntaxError:
        return
    workflow = Workflow(
        path="wf.toml",
        name="wf",
        steps=(
            shell("a", run, if_=cond),
            query("b", prompt, for_each=each),
            shell("c", field(f"x {{{{ {one} }}}}"), depends_on=()),
        ),
        span=Span(1, 1, 1, 2),
    )
    plan, diagnostics = compile_workflow(workflow, config())
    assert (plan is None) == any(d.is_error for d in diagnostics)
    for d in diagnostics:
        assert d.message
        assert d.span.line >= 1
