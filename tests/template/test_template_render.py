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
