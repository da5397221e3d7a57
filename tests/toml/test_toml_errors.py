"""Broken documents: a TOMLDecodeError with a human message at the right place."""

from __future__ import annotations

import pickle

import pytest

from muxlang.toml import TOMLDecodeError, decode, load, loads, parse, parse_bytes

CASES = [
    # (document, line, column, words the message must contain)
    ("a = 1\nb = \n", 2, 5, "expected a value, found a line break"),
    ("a = 1\nb\n", 2, 2, "expected '=' after the key"),
    ("name 'x'\n", 1, 6, "expected '=' after the key"),
    ("a = [1 2]\n", 1, 8, "expected ',' or ']' in the array"),
    ("a = [1,,]\n", 1, 8, "expected a value or ']'"),
    ("[tbl\nx = 1\n", 1, 5, "expected ']' to close the table header"),
    ("[[steps]\n", 1, 8, "expected ']]'"),
    ("a = {b = 1,\nc = 2}\n", 1, 12, "inline table must be on one line"),
    ("a = {b = 1, }\n", 1, 13, "expected a key"),
    ("a = 1 b = 2\n", 1, 7, "expected the end of the line"),
    ('a = "abc\n', 1, 5, "unterminated string"),
    ('x = 1\na = """abc\n', 2, 5, "unterminated multi-line string"),
    ("a = 'abc\n", 1, 5, "unterminated string"),
    ("a = 1\na = 2\n", 2, 1, "duplicate key `a`: already defined on line 1"),
    ("[t]\nx.y = 1\nx.y = 2\n", 3, 3, "duplicate key `t.x.y`"),
    ("[a]\n[b]\n[a]\n", 3, 2, "table `a` is already defined on line 1"),
    ("[a]\nb.c = 1\n[a.b]\n", 3, 4, "table `a.b` is already defined"),
    ("[a.b.c]\n[a]\nb.c.d = 1\n", 3, 3, "cannot add to table `a.b.c` with a dotted key"),
    ("a = [1]\n[[a]]\n", 2, 3, "cannot append to `a`: it is an array value"),
    ("[[a]]\n[a]\n", 2, 2, "`a` is an array of tables"),
    ("a = {x = 1}\na.y = 2\n", 2, 1, "it is an inline table"),
    ("a = {x = 1}\n[a.b]\n", 2, 2, "`a` is an inline table"),
    ("a = 1\na.b = 2\n", 2, 1, "`a` is already a value"),
    ("a = 'x'\n[a]\n", 2, 2, "`a` is already a value"),
    ('a = "bad \\q escape"\n', 1, 10, "invalid escape sequence \\q"),
    ('a = "\\u12"\n', 1, 6, "\\u must be followed by exactly 4 hexadecimal digits"),
    ('a = "\\uD800"\n', 1, 6, "is not a Unicode scalar value"),
    ('a = """\nline\n  bad \\x41"""\n', 3, 7, "invalid escape sequence \\x"),
    ("a = 012\n", 1, 5, "leading zeros are not allowed"),
    ("a = 1__2\n", 1, 5, "underscore must be between two digits"),
    ("a = +0x1F\n", 1, 5, "cannot have a sign"),
    ("a = 1.\n", 1, 5, "a decimal point must have digits after it"),
    ("a = .5\n", 1, 5, "a decimal point must have digits before it"),
    ("a = True\n", 1, 5, "booleans are lowercase"),
    ("a = hello\n", 1, 5, "a string must be quoted"),
    ("a = 2023-02-30\n", 1, 5, "invalid date '2023-02-30'"),
    ("a = 2023-01-01T25:00:00\n", 1, 5, "hour must be in 0..23"),
    ("a = 2023-01-01T10:00\n", 1, 5, "invalid date-time"),
    ("a = 10:00\n", 1, 5, "invalid time"),
    ("a = 1979-05-27T07:32:00+24:00\n", 1, 5, "invalid time offset"),
    ('a = "tab\tok but \x01 not"\n', 1, 17, "control character U+0001"),
    ("a = 1 # comment \x7f\n", 1, 17, "control character U+007F is not allowed in a comment"),
    ("a = 1\rb = 2\n", 1, 6, "carriage return must be followed by a line feed"),
    ("a = 1\n\ufeffb = 2\n", 2, 1, "byte order mark"),
    ("bad key = 1\n", 1, 5, "expected '=' after the key"),
    ("ké = 1\n", 1, 2, "invalid character 'é' in a key"),
    ("= 1\n", 1, 1, "expected a key or a [table] header"),
    ("a = [\n  1,\n  2\n", 4, 1, "found the end of the file"),
    ('x = 1\n"""key""" = 1\n', 2, 1, "a key cannot be a multi-line string"),
    ("['''tbl''']\n", 1, 2, "a key cannot be a multi-line string"),
    ("[a]]\n", 1, 3, "expected ']' to close the table header, found ']]'"),
    ("a = [1] = 2\n", 1, 9, "expected the end of the line"),
    ("[[a]]\n[[a]]\nb = 1\nb = 2\n", 4, 1, "duplicate key `a[1].b`"),
    ("a = [{b = 1, b = 2}]\n", 1, 14, "duplicate key `a[0].b`"),
    ("a = " + "9" * 5000 + "\n", 1, 5, "is too large"),
    ("a = " + "[" * 300 + "]" * 300 + "\n", 1, 205, "nested more than 200 deep"),
]


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    CASES,
    ids=[f"{i}-{case[3][:40]}" for i, case in enumerate(CASES)],
)
def test_error_position_and_message(text: str, line: int, column: int, words: str) -> None:
    with pytest.raises(TOMLDecodeError) as info:
        parse(text)
    err = info.value
    assert words in err.msg
    assert (err.line, err.column) == (line, column), str(err)
    assert str(err) == f"{err.msg} (at line {line}, column {column})"
    assert (err.span.line, err.span.column) == (line, column)


def test_error_is_a_value_error_and_never_leaks_lark() -> None:
    with pytest.raises(ValueError, match=r"at line 1, column 4\)$"):
        loads("a =")


def test_error_span_covers_the_offending_value() -> None:
    with pytest.raises(TOMLDecodeError) as info:
        loads("x = 1\nwhen = 2023-13-01\n")
    span = info.value.span
    assert (span.line, span.column, span.end_line, span.end_column) == (2, 8, 2, 18)


def test_error_survives_pickling() -> None:
    with pytest.raises(TOMLDecodeError) as info:
        loads("a = 1\na = 2")
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.msg, copy.line, copy.column, copy.span) == (
        info.value.msg,
        info.value.line,
        info.value.column,
        info.value.span,
    )


def test_invalid_utf8_points_at_the_bad_byte() -> None:
    with pytest.raises(TOMLDecodeError) as info:
        decode("a = 1\nb = 'é\xff'\n".encode("utf-8", "surrogateescape")[:-3] + b"\xff'\n")
    assert info.value.line == 2
    assert "invalid UTF-8" in info.value.msg


def test_utf16_is_named() -> None:
    with pytest.raises(TOMLDecodeError, match="UTF-16"):
        parse_bytes("a = 1\n".encode("utf-16"))


def test_load_reads_a_binary_file(tmp_path: object) -> None:
    import pathlib

    assert isinstance(tmp_path, pathlib.Path)
    path = tmp_path / "x.toml"
    path.write_bytes(b"\xef\xbb\xbfa = 'b'\r\n")
    with path.open("rb") as fp:
        assert load(fp) == {"a": "b"}
