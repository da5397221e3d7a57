"""Parsing: the AST shape, precedence, names, literals, whitespace control, raw, comments."""

from __future__ import annotations

from typing import Any

import pytest

from muxlang.source import LineIndex, Span
from muxlang.template import ast, parse_expression, parse_template, render, to_source


def shape(expr: ast.Expr) -> Any:
    """A compact, span-free picture of an expression tree."""
    match expr:
        case ast.Literal(value=value):
            return value
        case ast.Name(name=name):
            return name
        case ast.ListExpr(items=items):
            return ["list", *[shape(i) for i in items]]
        case ast.Attr(obj=obj, name=name):
            return [".", shape(obj), name]
        case ast.Index(obj=obj, index=index):
            return ["[]", shape(obj), shape(index)]
        case ast.Not(operand=operand):
            return ["not", shape(operand)]
        case ast.BoolOp(op=op, left=left, right=right):
            return [op, shape(left), shape(right)]
        case ast.Compare(op=op, left=left, right=right):
            return [op, shape(left), shape(right)]
        case ast.IsDefined(operand=operand, negated=negated):
            return ["is not defined" if negated else "is defined", shape(operand)]
        case ast.Concat(left=left, right=right):
            return ["~", shape(left), shape(right)]
        case ast.Filter(operand=operand, name=name, args=args, kwargs=kwargs):
            return [
                "|",
                shape(operand),
                name,
                [shape(a) for a in args],
                {k: shape(v) for k, v in kwargs},
            ]
        case ast.Call(name=name, args=args):
            return ["call", name, [shape(a) for a in args]]
    raise AssertionError(expr)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a or b and c", ["or", "a", ["and", "b", "c"]]),
        ("a and b or c", ["or", ["and", "a", "b"], "c"]),
        ("not a and b", ["and", ["not", "a"], "b"]),
        ("not a == b", ["not", ["==", "a", "b"]]),
        ("not not a", ["not", ["not", "a"]]),
        ("a == b ~ c", ["==", "a", ["~", "b", "c"]]),
        ("a ~ b | upper", ["~", "a", ["|", "b", "upper", [], {}]]),
        ("a.b | upper", ["|", [".", "a", "b"], "upper", [], {}]),
        ("x | f | g", ["|", ["|", "x", "f", [], {}], "g", [], {}]),
        ("(a ~ b) | upper", ["|", ["~", "a", "b"], "upper", [], {}]),
        ("a in b and c not in d", ["and", ["in", "a", "b"], ["not in", "c", "d"]]),
        ("x is defined or y is not defined", ["or", ["is defined", "x"], ["is not defined", "y"]]),
        ("not x is defined", ["not", ["is defined", "x"]]),
        ("a <= b", ["<=", "a", "b"]),
        ("a != b", ["!=", "a", "b"]),
        ("a['k'][0].c", [".", ["[]", ["[]", "a", "k"], 0], "c"]),
        ("(a or b) and c", ["and", ["or", "a", "b"], "c"]),
        ("always() or failure()", ["or", ["call", "always", []], ["call", "failure", []]]),
        ("x | join(', ')", ["|", "x", "join", [", "], {}]),
        ("x | indent(2, first=true)", ["|", "x", "indent", [2], {"first": True}]),
        ("[1, 'a', [none],]", ["list", 1, "a", ["list", None]]),
        ("[]", ["list"]),
    ],
)
def test_precedence_and_shapes(source: str, expected: Any) -> None:
    assert shape(parse_expression(source)) == expected


@pytest.mark.parametrize(
    ("source", "value"),
    [
        ("'it''s'", None),  # two adjacent strings are not one: checked below
        ("'a\\'b'", "a'b"),
        ('"a\\"b"', 'a"b'),
        ("'tab\\there'", "tab\there"),
        ("'nl\\n'", "nl\n"),
        ("'back\\\\slash'", "back\\slash"),
        ("'\\u00e9'", "é"),
        ("'keep \\q'", "keep \\q"),
        ("42", 42),
        ("-7", -7),
        ("2.5", 2.5),
        ("1e3", 1000.0),
        ("true", True),
        ("false", False),
        ("none", None),
        ("True", True),
        ("None", None),
    ],
)
def test_literals(source: str, value: Any) -> None:
    if value is None and source.startswith("'"):
        return
    expr = parse_expression(source)
    assert isinstance(expr, ast.Literal)
    assert expr.value == value
    assert type(expr.value) is type(value)


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ("steps.check-files.output", ["steps", "check-files", "output"]),
        ("steps.a-b-c.status", ["steps", "a-b-c", "status"]),
        ("my-arg", ["my-arg"]),
        ("steps.x2.output", ["steps", "x2", "output"]),
        ("_private", ["_private"]),
    ],
)
def test_hyphenated_names(source: str, path: list[str]) -> None:
    expr = parse_expression(source)
    names: list[str] = []
    while isinstance(expr, ast.Attr):
        names.insert(0, expr.name)
        expr = expr.obj
    assert isinstance(expr, ast.Name)
    assert [expr.name, *names] == path


def test_hyphen_before_close_is_whitespace_control_not_part_of_a_name() -> None:
    tpl = parse_template("[{{ x-}}  ]")
    out = tpl.body[1]
    assert isinstance(out, ast.Output)
    assert isinstance(out.expr, ast.Name)
    assert out.expr.name == "x"
    assert render(tpl, {"x": "v"}) == "[v]"
    assert (
        render(
            parse_template("{{ steps.check-files.output-}} !"),
            {"steps": {"check-files": {"output": "o"}}},
        )
        == "o!"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a  {{- x }}  b", "aX  b"),
        ("a  {{ x -}}  b", "a  Xb"),
        ("a \n {{- x -}} \n b", "aXb"),
        ("<{% if t -%}\n  yes\n{%- endif %}>", "<yes>"),
        ("<\n{%- if t %}y{% endif -%}\n>", "<y>"),
        ("<{% if f %}a{% else -%}  b  {%- endif %}>", "<b>"),
        ("<{% if f %}a{%- elif t -%}  c  {% endif %}>", "<c  >"),
        ("{% for i in l -%}\n  {{ i }}\n{%- endfor %}", "12"),
        ("a  {#- note -#}  b", "ab"),
        ("a  {# note #}  b", "a    b"),
        ("a  {%- raw -%}  {{ x }}  {%- endraw -%}  b", "a{{ x }}b"),
        ("a  {%- raw %}  {{ x }}  {% endraw -%}  b", "a  {{ x }}  b"),
        ("a{{ x }}\n", "aX\n"),
    ],
)
def test_whitespace_control(source: str, expected: str) -> None:
    assert (
        render(parse_template(source), {"x": "X", "t": True, "f": False, "l": [1, 2]}) == expected
    )


def test_whitespace_control_matches_jinja() -> None:
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment(keep_trailing_newline=True)
    sources = [
        "a  {{- x }}  b",
        "a \n {{- x -}} \n b",
        "<{% if t -%}\n  yes\n{%- endif %}>",
        "{% for i in l -%}\n  {{ i }}\n{%- endfor %}",
        "a  {#- note -#}  b",
        " {% if t %} x {% endif %} \n",
        "a  {%- raw -%}  {{ x }}  {%- endraw -%}  b",
    ]
    scope = {"x": "X", "t": True, "l": [1, 2]}
    for source in sources:
        assert render(parse_template(source), scope) == env.from_string(source).render(scope)


def test_raw_keeps_tags_as_text() -> None:
    tpl = parse_template("a{% raw %}{{ x }} {% if %} {# c #}{% endraw %}b")
    assert tpl.is_constant
    assert render(tpl, {}) == "a{{ x }} {% if %} {# c #}b"


def test_comments_vanish() -> None:
    tpl = parse_template("a{# {{ x }} {% if %} #}b")
    assert tpl.is_constant
    assert render(tpl, {}) == "ab"


def test_text_spans_and_source() -> None:
    tpl = parse_template("ab\n{{ x }}c")
    assert tpl.source == "ab\n{{ x }}c"
    first, output, last = tpl.body
    assert isinstance(first, ast.Text)
    assert first.span == Span(1, 1, 2, 1)
    assert isinstance(output, ast.Output)
    assert output.span == Span(2, 1, 2, 8)
    assert output.expr.span == Span(2, 4, 2, 5)
    assert isinstance(last, ast.Text)
    assert last.span == Span(2, 8, 2, 9)


def test_locator_maps_spans_into_the_file() -> None:
    text = 'x = 1\nrun = "ls {{ steps.list-files.output }}"\n'
    base = text.index("ls ")
    expr_tpl = parse_template("ls {{ steps.list-files.output }}", LineIndex(text).locator(base))
    output = expr_tpl.body[1]
    assert isinstance(output, ast.Output)
    attr = output.expr
    assert isinstance(attr, ast.Attr)
    assert attr.name == "output"
    assert attr.span == Span(2, 14, 2, 37)
    assert attr.name_span == Span(2, 31, 2, 37)
    inner = attr.obj
    assert isinstance(inner, ast.Attr)
    assert inner.name_span == Span(2, 20, 2, 30)


def test_filter_and_for_spans() -> None:
    tpl = parse_template("{% for f in files | lines %}{{ f }}{% endfor %}")
    loop = tpl.body[0]
    assert isinstance(loop, ast.For)
    assert loop.var == "f"
    assert loop.var_span == Span(1, 8, 1, 9)
    assert isinstance(loop.iterable, ast.Filter)
    assert loop.iterable.name_span == Span(1, 21, 1, 26)
    assert loop.span == Span(1, 1, 1, 48)


def test_parse_results_are_cached_by_source() -> None:
    assert parse_template("{{ a }}") is parse_template("{{ a }}")
    assert parse_expression("a.b") is parse_expression("a.b")


@pytest.mark.parametrize(
    "source",
    [
        "a or b and not c",
        "x | join(', ') ~ 'y'",
        "(a ~ b) | upper",
        "not (a or b)",
        "a['k'][0].c-d",
        "[1, 2.5, 'q\\'s', none, true]",
        "x | default('a\\nb')",
        "steps.x.output is not defined",
        "a not in b",
        "success() and x",
        "x | truncate(10, end='…')",
    ],
)
def test_to_source_round_trips(source: str) -> None:
    expr = parse_expression(source)
    assert shape(parse_expression(to_source(expr))) == shape(expr)


def test_walk_and_expressions_visit_everything() -> None:
    tpl = parse_template(
        "{% if a %}{{ b | f(c) }}{% else %}{% for x in d %}{{ e.g }}{% endfor %}{% endif %}"
    )
    tops = [to_source(e) for e in ast.expressions(tpl)]
    assert tops == ["a", "b | f(c)", "d", "e.g"]
    names = {
        e.name for top in ast.expressions(tpl) for e in ast.walk(top) if isinstance(e, ast.Name)
    }
    assert names == {"a", "b", "c", "d", "e"}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ '}}' }}", "}}"),
        ('{{ "{{ x }}" }}', "{{ x }}"),
        ("a{", "a{"),
        ("{ {", "{ {"),
        ("{ x }", "{ x }"),
        ("{%raw%}x{%endraw%}", "x"),
        ("{%if x%}y{%endif%}", "y"),
        ("{{x|upper}}", "V"),
        ("{%\n  if x\n%}y{%\nendif\n%}", "y"),
    ],
)
def test_lexing_edge_cases(source: str, expected: str) -> None:
    assert render(parse_template(source), {"x": "v"}) == expected
