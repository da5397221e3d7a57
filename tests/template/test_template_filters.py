"""Every filter of SPEC section 4, its edge cases, and the FilterSpec contract."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest

from muxlang.template import (
    FILTERS,
    KINDS,
    UNDEFINED,
    TemplateError,
    evaluate,
    parse_expression,
    parse_template,
    render,
)

SPEC_FILTERS = {
    "trim", "lines", "nonblank", "join", "json", "from_json", "shell_escape", "default",
    "upper", "lower", "length", "first", "last", "sort", "unique", "reverse",
    "replace", "split", "indent", "truncate", "basename", "dirname",
    "raw",  # SPEC section 11
    "strftime", "truncate_chars",  # SPEC section 12 (llm-mux's filters)
}  # fmt: skip


def ev(source: str, **names: Any) -> Any:
    return evaluate(parse_expression(source), names)


def test_the_table_holds_exactly_the_spec_filters() -> None:
    assert set(FILTERS) == SPEC_FILTERS


@pytest.mark.parametrize("name", sorted(SPEC_FILTERS))
def test_every_filter_spec_is_complete(name: str) -> None:
    spec = FILTERS[name]
    assert spec.name == name
    assert callable(spec.func)
    assert spec.doc
    assert spec.doc == spec.doc.strip()
    assert spec.accepts <= KINDS
    assert spec.returns is None or spec.returns in KINDS
    assert 0 <= spec.required <= spec.max_args == len(spec.params)


@pytest.mark.parametrize(
    ("name", "params", "required", "accepts", "returns"),
    [
        ("lines", (), 0, {"string"}, "list"),
        ("join", ("sep",), 0, {"list"}, "string"),
        ("replace", ("old", "new", "count"), 2, {"string"}, "string"),
        ("default", ("v",), 0, set(), None),
        ("split", ("sep", "maxsplit"), 0, {"string"}, "list"),
        ("length", (), 0, {"string", "list", "table"}, "number"),
        ("json", (), 0, set(), "string"),
        ("indent", ("width", "first", "blank"), 0, {"string"}, "string"),
        ("truncate", ("length", "killwords", "end", "leeway"), 0, {"string"}, "string"),
    ],
)
def test_filter_spec_contract(
    name: str, params: tuple[str, ...], required: int, accepts: set[str], returns: str | None
) -> None:
    spec = FILTERS[name]
    assert spec.params == params
    assert spec.required == required
    assert spec.accepts == frozenset(accepts)
    assert spec.returns == returns


def test_check_args_messages() -> None:
    join, replace, trim = FILTERS["join"], FILTERS["replace"], FILTERS["trim"]
    assert join.check_args(1, []) is None
    assert join.check_args(0, ["sep"]) is None
    assert join.check_args(2, []) == "filter `join` takes at most 1 argument (sep), got 2"
    assert join.check_args(0, ["spe"]) == "filter `join` has no argument `spe`: did you mean `sep`?"
    assert join.check_args(1, ["sep"]) == "filter `join` got argument `sep` twice"
    assert trim.check_args(1, []) == "filter `trim` takes no arguments, got 1"
    assert replace.check_args(1, []) == (
        "filter `replace` needs `new`: `replace(old, new, count=none)`"
    )
    assert replace.check_args(0, ["new", "old"]) is None
    assert join.signature == 'join(sep=", ")'


def test_param_kinds_come_from_the_annotations() -> None:
    assert FILTERS["join"].param_kinds == {"sep": frozenset({"string"})}
    assert FILTERS["replace"].param_kinds == {
        "old": frozenset({"string"}),
        "new": frozenset({"string"}),
        "count": frozenset({"number", "none"}),
    }
    assert FILTERS["indent"].param_kinds["width"] == frozenset({"number", "string"})
    assert FILTERS["sort"].param_kinds["reverse"] == frozenset({"bool"})
    assert FILTERS["default"].param_kinds == {"v": frozenset()}  # any value


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "x | join(sep=args.sep)",
            "filter `join`: `sep` must be a string, got a number (`args.sep`)",
        ),
        (
            "x | join(args.nope)",
            "filter `join`: `sep` must be a string, got `args.nope` is undefined: "
            "`args` has no key `nope`",
        ),
        ("x | sort(reverse=1)", "filter `sort`: `reverse` must be a boolean, got a number (`1`)"),
        (
            "s | indent(true)",
            "filter `indent`: `width` must be a string or a number, got a boolean (`true`)",
        ),
    ],
)
def test_argument_kinds_are_checked(source: str, message: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(source, x=["a"], s="text", args={"sep": 1})
    assert info.value.message == message


def test_trim() -> None:
    assert ev("x | trim", x="  a b \n\t") == "a b"
    assert ev("x | trim", x="") == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("a", ["a"]),
        ("a\n", ["a"]),
        ("a\nb", ["a", "b"]),
        ("a\r\nb\r\n", ["a", "b"]),
        ("a\n\nb", ["a", "", "b"]),
        ("\n", [""]),
        ("a\n\n", ["a", ""]),
        ("x\ry", ["x\ry"]),
        ("a\u2028b", ["a\u2028b"]),
    ],
)
def test_lines(text: str, expected: list[str]) -> None:
    assert ev("t | lines", t=text) == expected


def test_nonblank() -> None:
    assert ev("l | nonblank", l=["a", "", "  ", "\t", "b", None, 0]) == ["a", "b", 0]
    assert ev("t | lines | nonblank", t="a\n\n  \nb\n") == ["a", "b"]


def test_join() -> None:
    assert ev("l | join", l=["a", "b"]) == "a, b"
    assert ev("l | join('')", l=["a", "b"]) == "ab"
    assert ev("l | join(sep='-')", l=[1, True, 2.5, ["x"]]) == '1-true-2.5-["x"]'
    assert ev("l | join", l=[]) == ""


def test_join_on_a_string_is_an_error_with_a_hint() -> None:
    with pytest.raises(TemplateError) as info:
        ev("t | join", t="abc")
    assert info.value.message == "filter `join` needs a list, but `t` is a string"
    assert "| lines" in (info.value.hint or "")


def test_join_of_none_items_is_an_error() -> None:
    with pytest.raises(TemplateError, match="filter `join`: cannot join the list"):
        ev("l | join", l=["a", None])


def test_json() -> None:
    assert ev("v | json", v=["a", "b"]) == '["a","b"]'
    assert ev("v | json", v={"k": "é", "n": None}) == '{"k":"é","n":null}'
    assert ev("v | json", v='a"b') == '"a\\"b"'
    assert ev("v | json", v=None) == "null"
    assert ev("v | json", v=True) == "true"
    assert ev("v | json", v=1.5) == "1.5"


def test_json_output_is_not_html_escaped() -> None:
    assert ev("v | json", v="<a & b>") == '"<a & b>"'


def test_from_json() -> None:
    assert ev("t | from_json", t='{"a": [1, 2]}') == {"a": [1, 2]}
    assert ev("t | from_json", t=" [1] \n") == [1]
    answer = 'Here you go:\n```json\n{"files": ["a.py"]}\n```\nand more ```json\n[2]\n```'
    assert ev("t | from_json", t=answer) == {"files": ["a.py"]}
    assert ev("(t | from_json).files[0]", t=answer) == "a.py"


def test_from_json_without_json_is_an_error() -> None:
    with pytest.raises(TemplateError) as info:
        ev("t | from_json", t="no json here")
    assert info.value.message.startswith(
        "filter `from_json`: the text is not valid JSON and holds no ```json block"
    )
    with pytest.raises(TemplateError, match="fenced ```json block is not valid JSON"):
        ev("t | from_json", t="x\n```json\n{oops}\n```")


@pytest.mark.parametrize(
    "value",
    ["", "simple", "it's", "a b", "$(rm -rf /)", "`x`", "a\nb", "--flag", "é", "'\"'"],
)
def test_shell_escape_is_shlex_quote(value: str) -> None:
    assert ev("v | shell_escape", v=value) == shlex.quote(value)
    assert shlex.split(ev("v | shell_escape", v=value)) == [value]


def test_shell_escape_of_empty_is_two_quotes_and_of_scalars_and_lists() -> None:
    assert ev("v | shell_escape", v="") == "''"
    assert ev("v | shell_escape", v=3) == "3"
    assert ev("v | shell_escape", v=True) == "true"
    assert ev("v | shell_escape", v=["a b", "c"]) == "'a b' c"


def test_default() -> None:
    assert ev("x | default('d')", x=UNDEFINED) == "d"
    assert ev("missing | default('d')") == "d"
    assert ev("x | default('d')", x=None) == "d"
    assert ev("x | default('d')", x="") == "d"
    assert ev("x | default('d')", x=0) == 0
    assert ev("x | default('d')", x=False) is False
    assert ev("x | default('d')", x=[]) == []
    assert ev("x | default", x=None) == ""
    assert ev("a.b.c | default(1)", a={}) == 1


def test_upper_lower() -> None:
    assert ev("x | upper", x="aé") == "AÉ"
    assert ev("x | lower", x="AÉ") == "aé"


def test_length() -> None:
    assert ev("x | length", x="abc") == 3
    assert ev("x | length", x=[1, 2]) == 2
    assert ev("x | length", x={"a": 1}) == 1
    assert ev("t | lines | length", t="a\nb\n") == 2


def test_first_last() -> None:
    assert ev("x | first", x=[1, 2, 3]) == 1
    assert ev("x | last", x=[1, 2, 3]) == 3
    assert ev("x | first", x="abc") == "a"
    assert ev("x | last", x="abc") == "c"
    assert ev("x | first", x=[]) is UNDEFINED
    assert ev("x | first is defined", x=[]) is False


def test_first_of_an_empty_list_cannot_be_inserted() -> None:
    with pytest.raises(TemplateError) as info:
        render(parse_template("{{ x | first }}"), {"x": []})
    assert info.value.message == "`x | first` is undefined: `x` is empty"


def test_sort() -> None:
    assert ev("x | sort", x=["b", "A", "c"]) == ["A", "b", "c"]
    assert ev("x | sort(case_sensitive=true)", x=["b", "A", "c"]) == ["A", "b", "c"]
    assert ev("x | sort(case_sensitive=true)", x=["b", "a", "C"]) == ["C", "a", "b"]
    assert ev("x | sort(reverse=true)", x=[1, 3, 2]) == [3, 2, 1]
    assert ev("x | sort", x=[2, "a", None, 1.5]) == [None, 1.5, 2, "a"]
    assert ev("x | sort(attribute='n')", x=[{"n": 2}, {"n": 1}]) == [{"n": 1}, {"n": 2}]


def test_sort_matches_jinja_on_strings() -> None:
    jinja2 = pytest.importorskip("jinja2")
    items = ["banana", "Apple", "cherry", "apple"]
    expected = jinja2.Environment().from_string("{{ x | sort | join(',') }}").render(x=items)
    assert ",".join(ev("x | sort", x=items)) == expected


def test_unique() -> None:
    assert ev("x | unique", x=["a", "b", "a", "A", "c"]) == ["a", "b", "c"]
    assert ev("x | unique(case_sensitive=true)", x=["a", "A", "a"]) == ["a", "A"]
    assert ev("x | unique", x=[1, 1.0, True, {"k": 1}, {"k": 1}, [1], [1]]) == [
        1,
        True,
        {"k": 1},
        [1],
    ]


def test_reverse() -> None:
    assert ev("x | reverse", x=[1, 2, 3]) == [3, 2, 1]
    assert ev("x | reverse", x="abc") == "cba"


def test_replace() -> None:
    assert ev("x | replace('a', 'o')", x="banana") == "bonono"
    assert ev("x | replace('a', 'o', 1)", x="banana") == "bonana"
    assert ev("x | replace(old='a', new='')", x="banana") == "bnn"


def test_split() -> None:
    assert ev("x | split", x=" a  b\tc\n") == ["a", "b", "c"]
    assert ev("x | split(',')", x="a,b,,c") == ["a", "b", "", "c"]
    assert ev("x | split(sep=',', maxsplit=1)", x="a,b,c") == ["a", "b,c"]
    with pytest.raises(TemplateError, match="`sep` must not be empty"):
        ev("x | split('')", x="abc")


def test_indent_as_jinja() -> None:
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment()
    text = "a\n\nb\n  c"
    for args in ["", "(2)", "(2, true)", "(2, first=true, blank=true)", "('> ')"]:
        ours = ev(f"x | indent{args}", x=text)
        theirs = env.from_string("{{ x | indent" + args.replace("true", "True") + " }}").render(
            x=text
        )
        assert ours == theirs, args


def test_truncate() -> None:
    text = "The quick brown fox jumps"
    assert ev("x | truncate(100)", x=text) == text
    assert ev("x | truncate(13)", x=text) == "The quick..."
    assert ev("x | truncate(12)", x=text) == "The..."  # cut at a word boundary, as Jinja
    assert ev("x | truncate(12, killwords=true)", x=text) == "The quick..."
    assert ev("x | truncate(14, killwords=true)", x=text) == "The quick b..."
    assert ev("x | truncate(11, end='…')", x=text) == "The quick…"
    assert len(ev("x | truncate(10)", x="x" * 50)) <= 10


def test_truncate_matches_jinja_with_leeway() -> None:
    jinja2 = pytest.importorskip("jinja2")
    env = jinja2.Environment()
    text = "The quick brown fox jumps over the lazy dog"
    for n in (5, 10, 16, 20, 40):
        theirs = env.from_string(f"{{{{ x | truncate({n}) }}}}").render(x=text)
        assert ev(f"x | truncate({n}, leeway=5)", x=text) == theirs


def test_basename_dirname() -> None:
    assert ev("p | basename", p="src/pkg/a.py") == "a.py"
    assert ev("p | dirname", p="src/pkg/a.py") == "src/pkg"
    assert ev("p | basename", p="a.py") == "a.py"
    assert ev("p | dirname", p="a.py") == ""
    assert ev("p | basename", p="dir/") == ""


def test_filters_chain_in_a_template() -> None:
    tpl = parse_template(
        "Files: {{ steps.ls.output | lines | nonblank | sort | join(', ') }}\n"
        "Count: {{ steps.ls.output | lines | nonblank | length }}"
    )
    out = render(tpl, {"steps": {"ls": {"output": "b.py\n\na.py\n"}}})
    assert out == "Files: a.py, b.py\nCount: 2"


@pytest.mark.parametrize(
    ("source", "names", "message"),
    [
        ("x | upper", {"x": 3}, "filter `upper` needs a string, but `x` is a number"),
        (
            "x | length",
            {"x": None},
            "filter `length` needs a string, a list or a table, but `x` is none",
        ),
        ("x | lines", {}, "`x` is undefined"),
        ("x | sort", {"x": {"a": 1}}, "filter `sort` needs a list, but `x` is a table"),
        ("x | nope", {"x": 1}, "unknown filter `nope`"),
        ("x | join(1, 2)", {"x": []}, "filter `join` takes at most 1 argument (sep), got 2"),
        ("x | join(1)", {"x": []}, "filter `join`: `sep` must be a string, got a number (`1`)"),
        (
            "x | replace('a')",
            {"x": "a"},
            "filter `replace` needs `new`: `replace(old, new, count=none)`",
        ),
    ],
)
def test_filter_errors_at_run_time(source: str, names: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError) as info:
        ev(source, **names)
    assert info.value.message == message


def test_filter_error_points_at_the_filter_name() -> None:
    with pytest.raises(TemplateError) as info:
        render(parse_template("ab {{ x | upper }}"), {"x": 1})
    assert (info.value.span.line, info.value.span.column) == (1, 11)


def test_unknown_filter_suggests_a_name() -> None:
    with pytest.raises(TemplateError) as info:
        ev("x | uper", x="a")
    assert info.value.hint == "did you mean `upper`?"


def test_json_round_trip() -> None:
    value = {"a": [1, 2.5, "é", None, True], "b": {}}
    assert ev("v | json | from_json", v=value) == value
    assert json.loads(ev("v | json", v=value)) == value


@pytest.mark.parametrize(
    ("source", "names", "start"),
    [
        ("x | from_json", {"x": "[" * 100_000}, "filter `from_json`: the text is not valid JSON"),
        ("x | from_json", {"x": "1" * 5000}, "filter `from_json`: the text is not valid JSON"),
        ("x | truncate(1e400)", {"x": "abc"}, "filter `truncate`: "),
    ],
)
def test_hostile_input_fails_the_filter_cleanly(
    source: str, names: dict[str, Any], start: str
) -> None:
    with pytest.raises(TemplateError) as info:
        ev(source, **names)
    assert info.value.message.startswith(start)
