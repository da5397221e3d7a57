"""Broken templates and expressions: the exact message and where it points."""

from __future__ import annotations

import pytest

from muxlang.source import LineIndex
from muxlang.template import TemplateSyntaxError, parse_expression, parse_template

# (template, message, line, column)
TEMPLATE_ERRORS = [
    ("{{ x | }}", "expected a filter name after `|`", 1, 8),
    ("{{ x | 1 }}", "expected a filter name after `|`", 1, 8),
    ("{% endfi %}", "unknown tag `{% endfi %}`: did you mean `endif`?", 1, 1),
    ("{% iff x %}", "unknown tag `{% iff %}`: did you mean `if`?", 1, 1),
    ("{% include 'x' %}", "unknown tag `{% include %}`", 1, 1),
    (
        "line 1\n  {% if x %}\nbody",
        "`{% if %}` at line 2 is never closed (expected `{% endif %}`)",
        2,
        3,
    ),
    (
        "{% for x in y %}{% if x %}{% endfor %}",
        "`{% endfor %}` cannot close `{% if %}` at line 1 (expected `{% endif %}`)",
        1,
        27,
    ),
    ("{% for x in y %}", "`{% for %}` at line 1 is never closed (expected `{% endfor %}`)", 1, 1),
    ("a {% endif %}", "`{% endif %}` without a matching `{% if %}`", 1, 3),
    ("{% endfor %}", "`{% endfor %}` without a matching `{% for %}`", 1, 1),
    ("{% else %}", "`{% else %}` outside `{% if %}` or `{% for %}`", 1, 1),
    ("{% if a %}{% else %}{% elif b %}{% endif %}", "`{% elif %}` after `{% else %}`", 1, 21),
    ("{% if a %}{% else %}{% else %}{% endif %}", "`{% else %}` after `{% else %}`", 1, 21),
    (
        "{% for a in b %}{% elif c %}{% endfor %}",
        "`{% elif %}` inside `{% for %}` at line 1: only `{% if %}` has `elif` "
        "(expected `{% endfor %}`)",
        1,
        17,
    ),
    ("{% for a in b %}{% else %}{% else %}{% endfor %}", "`{% else %}` after `{% else %}`", 1, 27),
    (
        "{% if a %}{% for b in c %}{% endif %}",
        "`{% endif %}` cannot close `{% for %}` at line 1 (expected `{% endfor %}`)",
        1,
        27,
    ),
    ("{{ x $ }}", "unexpected character `$`", 1, 6),
    ("{{ 'abc }}", "string starting at line 1 is never closed (expected a closing ')", 1, 4),
    ("{{ x y }}", "unexpected name `y`; expected `}}`", 1, 6),
    ("{{ }}", "expected an expression after `{{`", 1, 4),
    ("ab\n{{ x", "`{{` at line 2 is never closed (expected `}}`)", 2, 1),
    ("{{ x }", "unexpected `}`: did you mean `}}`?", 1, 6),
    ("{{ x {% endif %}", "`{{` at line 1 is never closed (expected `}}`)", 1, 1),
    ("{% if %}{% endif %}", "expected a condition after `{% if`", 1, 7),
    ("{% if a %}{% elif %}{% endif %}", "expected a condition after `{% elif`", 1, 19),
    ("{% if a {% endif %}", "tag `{% if` at line 1 is never closed (expected `%}`)", 1, 1),
    ("{% for %}{% endfor %}", "expected a loop variable after `{% for`", 1, 8),
    ("{% for x of y %}{% endfor %}", "expected `in` after the loop variable", 1, 10),
    ("{% for x in %}{% endfor %}", "expected an expression after `in`", 1, 13),
    ("{% for in in x %}{% endfor %}", "`in` is a keyword and cannot be a loop variable", 1, 8),
    ("{# note", "comment `{#` at line 1 is never closed (expected `#}`)", 1, 1),
    ("{% raw %}{{ x }}", "`{% raw %}` at line 1 is never closed (expected `{% endraw %}`)", 1, 1),
    ("x {% endraw %}", "`{% endraw %}` without a matching `{% raw %}`", 1, 3),
    ("{% %}", "expected a tag name after `{%`", 1, 1),
    ("{% if a %}{% else x %}{% endif %}", "`{% else %}` takes nothing after `else`", 1, 11),
    ("{% if a %}{% endif", "tag `{% endif` at line 1 is never closed (expected `%}`)", 1, 11),
    ("{{ (a }}", "`(` at line 1 is never closed (expected `)`)", 1, 4),
    ("{{ [a, }}", "`[` at line 1 is never closed (expected `]`)", 1, 4),
    ("{{ a is }}", "expected `defined` or `not defined` after `is`", 1, 9),
    ("{{ a is not x }}", "expected `defined` after `is not`", 1, 13),
    ("{{ a == }}", "expected an expression after `==`", 1, 9),
    ("{{ a ~ }}", "expected an expression after `~`", 1, 8),
    ("{{ a and and b }}", "expected an expression after `and`, found `and`", 1, 10),
    ("{{ -x }}", "unexpected `-`: there is no subtraction, and a name cannot start with `-`", 1, 4),
    ("{{ a.1 }}", "expected a name after `.`", 1, 6),
    ("{{ f(a=1, 2) }}", "a positional argument cannot follow a keyword argument", 1, 11),
    ("{{ x | f(a=1, a=2) }}", "argument `a` is given twice", 1, 15),
    ("{{ is }}", "expected an expression, found `is`", 1, 4),
]


@pytest.mark.parametrize(("source", "message", "line", "column"), TEMPLATE_ERRORS)
def test_template_syntax_errors(source: str, message: str, line: int, column: int) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse_template(source)
    assert (info.value.message, info.value.span.line, info.value.span.column) == (
        message,
        line,
        column,
    )


EXPRESSION_ERRORS = [
    ("", "expected an expression, found nothing", 1, 1),
    ("a and", "expected an expression after `and`", 1, 6),
    ("x |", "expected a filter name after `|`", 1, 4),
    ("(a", "`(` at line 1 is never closed (expected `)`)", 1, 1),
    ("a b", "unexpected name `b`", 1, 3),
    ("{{ steps.a.output }}", "an expression here is written without `{{ }}`", 1, 1),
    ("a in", "expected an expression after `in`", 1, 5),
    ("a not b", "expected `in` after `not`", 1, 7),
    ("steps.x.output | lines |", "expected a filter name after `|`", 1, 25),
]


@pytest.mark.parametrize(("source", "message", "line", "column"), EXPRESSION_ERRORS)
def test_expression_syntax_errors(source: str, message: str, line: int, column: int) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse_expression(source)
    assert (info.value.message, info.value.span.line, info.value.span.column) == (
        message,
        line,
        column,
    )


def test_chained_comparison_gets_a_hint() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse_expression("a < b < c")
    assert info.value.message == "unexpected `<`"
    assert info.value.hint == "comparisons do not chain: write `a < b and b < c`"


def test_braces_in_an_expression_get_a_hint() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse_expression("{{ steps.a.output != '' }}")
    assert info.value.hint == "write `steps.a.output != ''`"


def test_error_span_covers_the_unknown_tag() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse_template("ab {% endfi %} cd")
    span = info.value.span
    assert (span.line, span.column, span.end_line, span.end_column) == (1, 4, 1, 15)


def test_errors_are_reported_in_the_file_coordinates_of_a_locator() -> None:
    # the template sits in a TOML string on line 3, starting at column 8
    toml = 'name = "x"\n[[steps]]\nrun = "echo {{ args.a | }}"\n'
    base = toml.index("echo")
    locate = LineIndex(toml).locator(base)
    with pytest.raises(TemplateSyntaxError) as info:
        parse_template("echo {{ args.a | }}", locate)
    span = info.value.span
    assert (span.line, span.column) == (3, 25)
    assert toml.splitlines()[2][span.column - 1 :].startswith("}}")


def test_unclosed_block_line_is_the_file_line_under_a_locator() -> None:
    text = "# header\n# header\nprompt = '''\nA\n{% if x %}\nB\n'''\n"
    base = text.index("A\n")
    source = "A\n{% if x %}\nB\n"
    with pytest.raises(TemplateSyntaxError) as info:
        parse_template(source, LineIndex(text).locator(base))
    assert info.value.message == "`{% if %}` at line 5 is never closed (expected `{% endif %}`)"
    assert (info.value.span.line, info.value.span.column) == (5, 1)


def test_syntax_error_str_has_position_and_message() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse_template("{{ x | }}")
    assert str(info.value) == "1:8: expected a filter name after `|`"
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + "[" * 150 + "]" * 150 + " }}",
        "{{ x" + " | trim" * 150 + " }}",
        "{% if x %}" * 150 + "{% endif %}" * 150,
        "{% if x %}" * 3000 + "{% endif %}" * 3000,
        "{{ " + "[" * 5000 + "]" * 5000 + " }}",
    ],
)
def test_absurd_nesting_is_a_syntax_error_not_a_crash(source: str) -> None:
    with pytest.raises(TemplateSyntaxError, match="nested too deeply"):
        parse_template(source)


def test_reasonable_nesting_is_fine() -> None:
    from muxlang.template import render

    assert render(parse_template("{{ " + "(" * 60 + "x" + ")" * 60 + " }}"), {"x": "v"}) == "v"
    deep = "{% if x %}" * 40 + "y" + "{% endif %}" * 40
    assert render(parse_template(deep), {"x": True}) == "y"


@pytest.mark.parametrize(
    ("source", "message", "hint"),
    [
        ("{{\u00a0x }}", "unexpected character U+00A0 (no-break space)", None),
        ("{{ x + 1 }}", "unexpected character `+`", "there is no arithmetic in templates"),
        (
            "{{ x if y else z }}",
            "unexpected name `if`; expected `}}`",
            "there is no inline `if`: use `{% if %}…{% else %}…{% endif %}`",
        ),
        (
            "{{ x.upper() }}",
            "unexpected `(`; expected `}}`",
            "there are no methods: apply a filter, `x | name(...)`",
        ),
    ],
)
def test_messages_with_hints(source: str, message: str, hint: str | None) -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        parse_template(source)
    assert (info.value.message, info.value.hint) == (message, hint)
