"""Positions: every key and value has the span a user sees in the file, and
``String.locator()`` maps decoded text back to the file's own characters."""

from __future__ import annotations

import pytest

from muxlang.source import LineIndex, Span
from muxlang.toml import parse
from muxlang.toml.nodes import Array, Node, Scalar, String, Table

SAMPLE = """\
# sample
name = "review"
[args.base]
default = 'HEAD~1'

[[steps]]
name = "diff"
run = \"\"\"
git diff \\
  --stat\"\"\"
env = { A = "1", "B c" = 2 }
list = [1, 2.5,
  true]
a.b.c = 1979-05-27T07:32:00Z
"""


def _table(node: Node | None) -> Table:
    assert isinstance(node, Table)
    return node


def _array(node: Node | None) -> Array:
    assert isinstance(node, Array)
    return node


def _string(node: Node | None) -> String:
    assert isinstance(node, String)
    return node


def offset(text: str, line: int, column: int) -> int:
    """The offset of a 1-based line/column in ``text``."""
    starts = [0] + [i + 1 for i, ch in enumerate(text) if ch == "\n"]
    return starts[line - 1] + column - 1


def cut(text: str, span: Span) -> str:
    """The characters of ``text`` that ``span`` covers."""
    return text[offset(text, span.line, span.column) : offset(text, span.end_line, span.end_column)]


def test_keys_and_values_have_exact_spans() -> None:
    doc = parse(SAMPLE, "sample.toml")
    root = doc.root
    assert doc.path == "sample.toml"
    assert root.entries["name"].key.span == Span(2, 1, 2, 5)
    assert root.entries["name"].value.span == Span(2, 8, 2, 16)

    args = _table(root.get("args"))
    assert args.span == Span(3, 2, 3, 6)  # implied by the header: its first key
    base = _table(args.get("base"))
    assert args.entries["base"].key.span == Span(3, 7, 3, 11)
    assert base.span == Span(3, 1, 3, 12)  # the whole [args.base] header
    assert base.entries["default"].key.span == Span(4, 1, 4, 8)
    assert base.entries["default"].value.span == Span(4, 11, 4, 19)

    steps = _array(root.get("steps"))
    assert root.entries["steps"].key.span == Span(6, 3, 6, 8)
    assert steps.span == Span(6, 1, 6, 10)
    step = _table(steps.items[0])
    assert step.span == Span(6, 1, 6, 10)  # the [[steps]] header
    assert step.entries["name"].value.span == Span(7, 8, 7, 14)
    assert step.entries["run"].key.span == Span(8, 1, 8, 4)
    assert step.entries["run"].value.span == Span(8, 7, 10, 12)

    env = _table(step.get("env"))
    assert env.span == Span(11, 7, 11, 29)
    assert env.entries["A"].key.span == Span(11, 9, 11, 10)
    assert env.entries["A"].value.span == Span(11, 13, 11, 16)
    assert env.entries["B c"].key.span == Span(11, 18, 11, 23)
    assert env.entries["B c"].value.span == Span(11, 26, 11, 27)

    items = _array(step.get("list"))
    assert items.span == Span(12, 8, 13, 8)
    assert [item.span for item in items.items] == [
        Span(12, 9, 12, 10),
        Span(12, 12, 12, 15),
        Span(13, 3, 13, 7),
    ]

    a = _table(step.get("a"))
    assert a.span == Span(14, 1, 14, 2)
    b = _table(a.get("b"))
    assert a.entries["b"].key.span == Span(14, 3, 14, 4)
    assert b.entries["c"].key.span == Span(14, 5, 14, 6)
    assert b.entries["c"].value.span == Span(14, 9, 14, 29)


def test_spans_cut_exactly_the_written_text() -> None:
    doc = parse(SAMPLE)
    step = _table(_array(doc.root.get("steps")).items[0])
    assert cut(SAMPLE, step.entries["run"].value.span) == '"""\ngit diff \\\n  --stat"""'
    assert cut(SAMPLE, step.entries["env"].key.span) == "env"
    assert cut(SAMPLE, _table(step.get("env")).entries["B c"].key.span) == '"B c"'


def test_entries_keep_file_order() -> None:
    doc = parse("z = 1\na = 2\n[m]\nq = 1\n[b]\n[m.x]\n")
    assert list(doc.root.entries) == ["z", "a", "m", "b"]
    assert list(_table(doc.root.get("m")).entries) == ["q", "x"]


def test_header_defining_an_implied_table_takes_its_span() -> None:
    text = "[a.b]\nx = 1\n[a]\ny = 2\n"
    a = _table(parse(text).root.get("a"))
    assert a.span == Span(3, 1, 3, 4)


def test_arrays_of_tables_have_one_table_per_header() -> None:
    text = "[[steps]]\nname = 'a'\n\n[[steps]]\nname = 'b'\n[steps.env]\nX = '1'\n"
    steps = _array(parse(text).root.get("steps"))
    assert [t.span for t in steps.items] == [Span(1, 1, 1, 10), Span(4, 1, 4, 10)]
    second = _table(steps.items[1])
    assert _table(second.get("env")).span == Span(6, 1, 6, 12)


def test_document_with_bom_keeps_columns_of_the_text_given() -> None:
    text = "\ufeffa = 1\nb = 'x'\n"
    doc = parse(text)
    assert doc.root.entries["a"].key.span == Span(1, 2, 1, 3)
    assert doc.root.entries["b"].value.span == Span(2, 5, 2, 8)


def test_crlf_line_endings_count_as_one_line_break() -> None:
    doc = parse("a = 1\r\nb = 2\r\n")
    assert doc.root.entries["b"].value.span == Span(2, 5, 2, 6)
    assert isinstance(doc.root.get("b"), Scalar)


# ---------------------------------------------------------------------------
# String.locator


def _locate_substring(text: str, key: str, needle: str) -> tuple[String, str]:
    node = _string(parse(text).root.get(key))
    start = node.value.index(needle)
    span = node.locator()(start, start + len(needle))
    return node, cut(text, span)


@pytest.mark.parametrize(
    ("text", "needle", "expected"),
    [
        # plain basic string
        ('s = "run {{ x }} now"\n', "{{ x }}", "{{ x }}"),
        # escapes before the region shift it in the file
        ('s = "a\\tb\\u00e9c {{ x }}"\n', "{{ x }}", "{{ x }}"),
        # a region containing escapes covers them whole
        ('s = "{{ \\"q\\" }}"\n', '{{ "q" }}', '{{ \\"q\\" }}'),
        # ending on an escape ends after the whole escape sequence
        ('s = "x\\U0001F600"\n', "x\U0001f600", "x\\U0001F600"),
        # literal string: no escapes
        ("s = 'C:\\dir {{ y }}'\n", "{{ y }}", "{{ y }}"),
        # multi-line basic: the newline after the opening quotes is trimmed
        ('s = """\nfirst\n  {{ z }}\n"""\n', "{{ z }}", "{{ z }}"),
        # a line continuation drops the break and the indentation
        ('s = """one \\\n      {{ w }}"""\n', "{{ w }}", "{{ w }}"),
        ('s = """one \\\n      two"""\n', "one two", "one \\\n      two"),
        # multi-line literal with a CRLF line break inside
        ("s = '''\r\nab\r\n{{ v }}'''\n", "b\n{", "b\r\n{"),
        # non-ASCII characters are one column each
        ('s = "héllo {{ u }}"\n', "{{ u }}", "{{ u }}"),
    ],
)
def test_locator_maps_decoded_text_to_file_text(text: str, needle: str, expected: str) -> None:
    _, got = _locate_substring(text, "s", needle)
    assert got == expected


def test_locator_reports_line_and_column_inside_a_multiline_string() -> None:
    text = 'x = 1\nprompt = """\nReview:\n  {{ steps.diff.outptu }}\n"""\n'
    node = _string(parse(text).root.get("prompt"))
    start = node.value.index("steps")
    span = node.locator()(start, start + len("steps.diff.outptu"))
    assert span == Span(4, 6, 4, 23)


def test_locator_of_an_empty_region_is_a_point_in_the_file() -> None:
    text = 's = "ab\\ncd"\n'
    node = _string(parse(text).root.get("s"))
    span = node.locator()(3, 3)
    # decoded index 3 is the "c" after the two-character escape \n
    assert (span.line, span.column) == (1, 10)
    assert (span.end_line, span.end_column) == (1, 10)


def test_locator_at_the_end_of_the_value_points_at_the_closing_quote() -> None:
    text = 's = "ab\\n"\n'
    node = _string(parse(text).root.get("s"))
    assert node.file_offset(len(node.value)) == text.index('"\n')


def test_key_spans_of_dotted_keys_are_each_segment() -> None:
    text = 'site."google.com".rank = 1\n'
    site = _table(parse(text).root.get("site"))
    entry = site.entries["google.com"]
    assert cut(text, entry.key.span) == '"google.com"'
    assert cut(text, _table(entry.value).entries["rank"].key.span) == "rank"


def test_line_index_of_document_matches_the_text() -> None:
    doc = parse(SAMPLE)
    assert isinstance(doc.lines, LineIndex)
    assert doc.lines.line_text(2) == 'name = "review"'
