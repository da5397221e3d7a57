"""Rendering: insertion rules, truthiness, loops, conditionals, undefined values."""

from __future__ import annotations

from typing import Any

import pytest

from muxlang.template import (
    UNDEFINED,
    Scope,
    TemplateError,
    evaluate,
    parse_expression,
    parse_template,
    render,
    to_text,
    truthy,
)


def r(source: str, **names: Any) -> str:
    return render(parse_template(source), names)


def ev(source: str, **names: Any) -> Any:
    return evaluate(parse_expression(source), names)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "plain"),
        (3, "3"),
        (2.5, "2.5"),
        (1e20, "1e+20"),
        (True, "true"),
        (False, "false"),
        (["a", "b"], '["a","b"]'),
        ({"k": [1, None]}, '{"k":[1,null]}'),
        (["é"], '["é"]'),
        ("", ""),
    ],
)
def test_insertion_of_each_kind(value: Any, text: str) -> None:
    assert r("{{ v }}", v=value) == text
    assert to_text(value) == text


def test_inserted_value_is_never_rendered_again() -> None:
    out = r("x={{ steps.a.output }}", steps={"a": {"output": "{{ secret }} {% if %}"}})
    assert out == "x={{ secret }} {% if %}"


def test_inserting_none_names_the_expression() -> None:
    with pytest.raises(TemplateError) as info:
        r("a\n  {{ args.base }}", args={"base": None})
    assert info.value.message == "`args.base` is none"
    assert (info.value.span.line, info.value.span.column) == (2, 6)
    assert "default" in (info.value.hint or "")


def test_inserting_an_unset_env_var_is_an_error() -> None:
    with pytest.raises(TemplateError) as info:
        r("{{ env.NOPE }}", env={"HOME": "/root"})
    assert info.value.message == "`env.NOPE` is undefined: `env` has no key `NOPE`"


def test_undefined_step_field_suggests_the_right_one() -> None:
    with pytest.raises(TemplateError) as info:
        r("{{ steps.diff.outptu }}", steps={"diff": {"output": "x", "status": "success"}})
    assert info.value.message == (
        "`steps.diff.outptu` is undefined: `steps.diff` has no key `outptu` "
        "(did you mean `output`?)"
    )


def test_default_rescues_none_undefined_and_empty() -> None:
    assert r("{{ env.NOPE | default('x') }}", env={}) == "x"
    assert r("{{ a | default('x') }}", a=None) == "x"
    assert r("{{ a | default('x') }}", a="") == "x"
    assert r("{{ a | default('x') }}", a="y") == "y"
    assert r("{{ a | default('x') }}", a=0) == "0"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (UNDEFINED, False),
        (False, False),
        (0, False),
        (0.0, False),
        ("", False),
        ([], False),
        ({}, False),
        ("false", True),
        ("0", True),
        (" ", True),
        ([0], True),
        ({"a": None}, True),
        (-1, True),
    ],
)
def test_truthiness(value: Any, expected: bool) -> None:
    assert truthy(value) is expected
    assert r("{% if v %}T{% else %}F{% endif %}", v=value) == ("T" if expected else "F")


def test_is_defined_is_safe_on_any_chain() -> None:
    assert ev("steps.nope.output.deeper is defined", steps={}) is False
    assert ev("steps.nope.output is not defined", steps={}) is True
    assert ev("steps.a.output is defined", steps={"a": {"output": ""}}) is True
    assert ev("env.HOME is defined", env={"HOME": "/"}) is True


def test_for_loop_binds_item_and_loop() -> None:
    src = (
        "{% for f in files %}{{ loop.index }}/{{ loop.length }}:{{ f }}"
        "{% if not loop.last %}, {% endif %}{% endfor %}"
    )
    assert r(src, files=["a", "b", "c"]) == "1/3:a, 2/3:b, 3/3:c"
    assert r("{% for x in xs %}{{ loop.index0 }}{{ loop.first }}{% endfor %}", xs=[1, 2]) == (
        "0true1false"
    )


def test_for_else_renders_for_an_empty_list() -> None:
    assert r("{% for x in xs %}{{ x }}{% else %}none{% endfor %}", xs=[]) == "none"


def test_for_over_a_string_suggests_lines() -> None:
    with pytest.raises(TemplateError) as info:
        r("{% for x in text %}{{ x }}{% endfor %}", text="a\nb")
    assert info.value.message == "`text` is a string; `for` needs a list"
    assert "| lines" in (info.value.hint or "")


def test_loop_variable_does_not_leak() -> None:
    assert r("{% for x in xs %}{% endfor %}{{ x | default('gone') }}", xs=[1]) == "gone"


def test_if_elif_else() -> None:
    src = "{% if n == 1 %}one{% elif n == 2 %}two{% else %}many{% endif %}"
    assert [r(src, n=n) for n in (1, 2, 3)] == ["one", "two", "many"]


def test_status_functions_come_from_the_scope() -> None:
    scope = Scope({"team": "rust"}, {"success": lambda: False, "always": lambda: True})
    assert evaluate(parse_expression("always() and team == 'rust'"), scope) is True
    assert evaluate(parse_expression("success()"), scope) is False
    with pytest.raises(TemplateError, match="not available"):
        evaluate(parse_expression("failure()"), scope)


def test_no_python_attribute_is_reachable() -> None:
    assert ev("s.upper", s="abc") is UNDEFINED
    assert ev("d.items", d={"a": 1}) is UNDEFINED
    assert ev("d.__class__", d={}) is UNDEFINED
    assert ev("l.__len__", l=[1]) is UNDEFINED


def test_and_or_return_an_operand_as_jinja() -> None:
    assert ev("a or 'fallback'", a="") == "fallback"
    assert ev("a or 'fallback'", a="set") == "set"
    assert ev("a and b", a=1, b=[2]) == [2]
    assert ev("a and b", a=0, b=[2]) == 0
    assert ev("not a", a="false") is False


@pytest.mark.parametrize(
    ("source", "names", "expected"),
    [
        ("a == b", {"a": 1, "b": 1.0}, True),
        ("a == b", {"a": "1", "b": 1}, False),
        ("a != b", {"a": None, "b": None}, False),
        ("missing == none", {}, False),
        ("a < b", {"a": 1, "b": 2.5}, True),
        ("a >= b", {"a": "b", "b": "a"}, True),
        ("a < b", {"a": [1, 2], "b": [1, 3]}, True),
        ("'ell' in a", {"a": "hello"}, True),
        ("'x' not in a", {"a": "hello"}, True),
        ("2 in a", {"a": [1, 2]}, True),
        ("'k' in a", {"a": {"k": None}}, True),
        ("a.k is defined", {"a": {"k": None}}, True),
        ("a[-1]", {"a": [1, 2, 3]}, 3),
        ("a[5] is defined", {"a": [1]}, False),
        ("a[0]", {"a": "xyz"}, "x"),
        ("a['k-1']", {"a": {"k-1": "v"}}, "v"),
        ("a[k]", {"a": {"x": 1}, "k": "x"}, 1),
        ("'a' ~ 1 ~ true ~ [1]", {}, "a1true[1]"),
        ("[a, 'b'][0]", {"a": "x"}, "x"),
        ("(a | lines)[1]", {"a": "p\nq"}, "q"),
    ],
)
def test_expression_values(source: str, names: dict[str, Any], expected: Any) -> None:
    assert ev(source, **names) == expected


@pytest.mark.parametrize(
    ("source", "names", "message"),
    [
        ("a < b", {"a": "1", "b": 2}, "cannot compare a string with a number using `<` (`a < b`)"),
        ("a < b", {"a": None, "b": 2}, "cannot compare none with a number using `<` (`a < b`)"),
        ("1 in a", {"a": "abc"}, "`in` a string needs a string on its left, got a number (`1`)"),
        ("'x' in a", {"a": 3}, "`in` needs a string, list or table on its right: `a` is a number"),
        (
            "'x' in steps.a.output",
            {"steps": {}},
            "`in` needs a string, list or table on its right: "
            "`steps.a.output` is undefined: `steps` has no key `a`",
        ),
        ("a ~ 'x'", {"a": None}, "`a` is none"),
        ("missing ~ 'x'", {}, "`missing` is undefined"),
    ],
)
def test_expression_errors(source: str, names: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(source, **names)
    assert info.value.message == message


def test_nested_loops_restore_the_outer_loop() -> None:
    src = (
        "{% for a in xs %}{% for b in ys %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}"
        "[{{ loop.index }}]{% endfor %}"
    )
    assert r(src, xs=["x", "y"], ys=["p", "q"]) == "xp1 xq2 [1]yp1 yq2 [2]"


def test_whole_loop_table_is_available() -> None:
    assert r("{% for x in xs %}{{ loop }}{% endfor %}", xs=["a"]) == (
        '{"index":1,"index0":0,"length":1,"first":true,"last":true,"revindex":1,"revindex0":0}'
    )


def test_for_each_item_and_loop_from_the_scope() -> None:
    tpl = parse_template("{{ loop.index }}/{{ loop.length }} {{ item }}")
    assert render(tpl, Scope({"item": "a.py", "loop": {"index": 2, "length": 3}})) == "2/3 a.py"


def test_scope_may_be_any_mapping_and_is_not_modified() -> None:
    from types import MappingProxyType

    names = {"xs": [1, 2]}
    assert render(parse_template("{% for x in xs %}{{ x }}{% endfor %}"), names) == "12"
    assert names == {"xs": [1, 2]}
    assert r("{{ a }}", a="ok") == "ok"
    assert render(parse_template("{{ a }}"), MappingProxyType({"a": "p"})) == "p"
    child = Scope({"a": 1}).child(b=2)
    assert render(parse_template("{{ a }}{{ b }}"), child) == "12"


def test_template_error_span_is_the_expression() -> None:
    with pytest.raises(TemplateError) as info:
        r("line one\nvalue: {{ steps.x.output }}", steps={})
    span = info.value.span
    assert (span.line, span.column, span.end_line, span.end_column) == (2, 11, 2, 25)
    assert str(info.value).startswith("2:11: `steps.x.output` is undefined")


def test_render_is_repeatable_and_cached() -> None:
    tpl = parse_template("{{ a }}-{{ b | upper }}")
    assert [render(tpl, {"a": i, "b": "x"}) for i in range(3)] == ["0-X", "1-X", "2-X"]


def test_constant_template() -> None:
    tpl = parse_template("just text\n")
    assert tpl.is_constant
    assert render(tpl, {}) == "just text\n"
    assert render(parse_template(""), {}) == ""


def test_read_only_tables_and_tuples_behave_as_tables_and_lists() -> None:
    from types import MappingProxyType

    names = {"s": MappingProxyType({"a": 1}), "t": ("x", "y")}
    out = r("{{ s }} {{ s.a }} {{ s | length }} {{ t }} {{ t | join('+') }} {{ t[1] }}", **names)
    assert out == '{"a":1} 1 1 ["x","y"] x+y y'
    assert to_text(MappingProxyType({"k": ["v"]})) == '{"k":["v"]}'
