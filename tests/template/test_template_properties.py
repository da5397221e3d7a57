"""Properties over random input: text renders to itself, parsing fails only cleanly."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from muxlang.template import (
    TemplateError,
    TemplateSyntaxError,
    parse_expression,
    parse_template,
    render,
    to_source,
)

PLAIN = st.text(st.characters(blacklist_characters="{}", blacklist_categories=("Cs",)))

PIECES = st.sampled_from(
    [
        "{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-}}", "{%-", "-%}", " ", "\n", "\r\n",
        "if", "elif", "else", "endif", "for", "endfor", "raw", "endraw", "in", "not", "and",
        "or", "is", "defined", "true", "none", "x", "steps.a-b.output", "|", "lines", "join",
        "(", ")", "[", "]", ",", "=", "==", "<", "~", ".", "'", '"', "\\", "0", "1.5", "-",
        "a", "é", "{", "}", "%", "#", "$", "sort", "default", "first", "from_json", "indent",
        "truncate", "split", "replace", "length", "json", "unique", "loop", "loop.index",
    ]
)  # fmt: skip
SOUP = st.lists(PIECES, max_size=25).map("".join)


@given(PLAIN)
@settings(max_examples=200, deadline=None)
def test_text_without_braces_renders_to_itself(text: str) -> None:
    assert render(parse_template(text), {}) == text


@given(st.one_of(SOUP, st.text(max_size=40)))
@settings(max_examples=400, deadline=None)
def test_parsing_a_template_raises_only_syntax_errors(source: str) -> None:
    problem: TemplateSyntaxError | TemplateError | None = None
    try:
        template = parse_template(source)
        assert template.source == source
        render(template, {"x": "v", "steps": {"a-b": {"output": "o"}}})
    except (TemplateSyntaxError, TemplateError) as exc:
        problem = exc
    if problem is not None:
        assert problem.message
        assert 1 <= problem.span.line <= source.count("\n") + 1


@given(st.one_of(SOUP, st.text(max_size=30)))
@settings(max_examples=300, deadline=None)
def test_parsing_an_expression_raises_only_syntax_errors(source: str) -> None:
    problem: TemplateSyntaxError | None = None
    try:
        parse_expression(source)
    except TemplateSyntaxError as exc:
        problem = exc
    if problem is not None:
        assert problem.message
        assert 1 <= problem.span.column <= len(source) + 1 or problem.span.line > 1


@given(st.text())
@settings(max_examples=200, deadline=None)
def test_an_inserted_value_is_never_rendered_again(value: str) -> None:
    tpl = parse_template("<{{ v }}>")
    assert render(tpl, {"v": value}) == f"<{value}>"


ATOMS = st.sampled_from(
    ["x", "a", "n", "d", "steps.a-b.output", "a[0]", "d['k']", "missing", "'s'", "''", "0",
     "2.5", "-1", "true", "none", "[1, 'b']", "[]", "loop.index"]
)  # fmt: skip
FILTER_CALLS = st.sampled_from(
    [f"| {name}" for name in ("trim", "lines", "nonblank", "join", "json", "from_json",
     "shell_escape", "default", "upper", "lower", "length", "first", "last", "sort", "unique",
     "reverse", "basename", "dirname", "split", "indent", "truncate")]
    + ["| join('-')", "| default(x)", "| replace('a', 'b')", "| split(',')", "| indent(2)",
       "| truncate(5)", "| sort(reverse=true)", "| join(1)", "| replace(1, 2)"]
)  # fmt: skip
BINARY = st.sampled_from(["and", "or", "==", "!=", "<", ">=", "in", "not in", "~"])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(children, BINARY, children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(children, FILTER_CALLS).map(lambda t: f"{t[0]} {t[1]}"),
        children.map(lambda c: f"(not {c})"),
        children.map(lambda c: f"(({c}) is defined)"),
    )


EXPRESSIONS = st.recursive(ATOMS, _combine, max_leaves=6)
NAMES = {
    "x": "a,b",
    "a": ["b", "A", None],
    "n": 3,
    "d": {"k": "v"},
    "steps": {"a-b": {"output": "o\n"}},
}


@given(EXPRESSIONS)
@settings(max_examples=300, deadline=None)
def test_valid_expressions_evaluate_or_fail_cleanly(source: str) -> None:
    expr = parse_expression(source)
    assert to_source(parse_expression(to_source(expr))) == to_source(expr)
    problem: TemplateError | None = None
    try:
        render(parse_template("{{ " + source + " }}"), NAMES)
    except TemplateError as exc:
        problem = exc
    if problem is not None:
        assert problem.message
