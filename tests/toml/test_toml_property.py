"""Property tests: generated TOML documents read exactly as ``tomllib`` reads them.

The strategy builds a Python value (tables, arrays of tables, every scalar type)
and serializes it to TOML text in randomly chosen styles: [headers], implicit
super-tables, dotted keys, inline tables, [[arrays of tables]], bare and quoted
keys, all four string kinds with escapes and line continuations, integers in
every base with underscores, comments and blank lines.
"""

from __future__ import annotations

import math
import tomllib
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toml_compare import assert_same

from muxlang.source import Span
from muxlang.toml import loads, parse
from muxlang.toml.nodes import Array, Node, String, Table

Draw = st.DrawFn

# characters that stress the escaping: quotes, backslashes, controls, non-ASCII
TEXT_CHARS = st.sampled_from(
    [*"abc xyz_-.=#[]{},'\"\\\t\n\r\b\f\x00\x1f\x7f", "é", "☃", "\U0001f600", "\u3000"]
)
texts = st.text(TEXT_CHARS, max_size=12)
key_texts = st.one_of(
    st.text(st.sampled_from("abcXYZ019_-"), min_size=1, max_size=6),
    st.text(TEXT_CHARS, max_size=6),
)

INTEGERS = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)
OFFSETS = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1)


@st.composite
def datetimes(draw: Draw) -> datetime | date | time:
    kind = draw(st.sampled_from(["offset", "local", "date", "time"]))
    moment = draw(st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
    if kind == "date":
        return moment.date()
    if kind == "time":
        return moment.time()
    if kind == "local":
        return moment
    minutes = draw(OFFSETS)
    tz = UTC if minutes == 0 else timezone(timedelta(minutes=minutes))
    return moment.replace(tzinfo=tz)


scalars = st.one_of(st.booleans(), INTEGERS, FLOATS, texts, datetimes())


def tables(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    if depth == 0:
        return st.dictionaries(key_texts, scalars, max_size=3)
    child = tables(depth - 1)
    values = st.one_of(
        scalars,
        st.lists(st.one_of(scalars, child), max_size=3),
        child,
        st.lists(child, min_size=1, max_size=2),  # an array of tables, or of inline tables
    )
    return st.dictionaries(key_texts, values, max_size=4)


documents = tables(2)


# ---------------------------------------------------------------------------
# serialization


def bare_ok(key: str) -> bool:
    return bool(key) and all(c.isascii() and (c.isalnum() or c in "_-") for c in key)


def basic_escape(text: str, draw: Draw, multiline: bool = False) -> str:
    out = []
    for ch in text:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n" and multiline and draw(st.booleans()):
            out.append("\n")
        elif ch in "\b\t\n\f\r":
            if ch == "\t" and draw(st.booleans()):
                out.append("\t")  # a raw tab is allowed
            else:
                out.append({"\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}[ch])
        elif ord(ch) < 0x20 or ch == "\x7f":
            out.append(f"\\u{ord(ch):04x}")
        elif ord(ch) > 0x7F and draw(st.booleans()):
            if ord(ch) > 0xFFFF or draw(st.booleans()):
                out.append(f"\\U{ord(ch):08X}")
            else:
                out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
        if multiline and out[-1] and not out[-1][0].isspace() and draw(st.integers(0, 9)) == 0:
            # a line continuation before a non-blank character decodes to nothing
            out.insert(len(out) - 1, "\\" + draw(st.sampled_from(["", " ", "\t"])) + "\n  ")
    return "".join(out)


def literal_ok(text: str, multiline: bool) -> bool:
    bad = [c for c in text if (ord(c) < 0x20 and c not in "\t\n") or c == "\x7f"]
    if bad or (not multiline and ("'" in text or "\n" in text)):
        return False
    return not multiline or ("'''" not in text and not text.endswith("'"))


def string(text: str, draw: Draw, key: bool = False) -> str:
    kinds = ["basic"]
    if literal_ok(text, multiline=False):
        kinds.append("literal")
    if not key:
        kinds.append("ml-basic")
        if literal_ok(text, multiline=True) and "\r" not in text:
            kinds.append("ml-literal")
    kind = draw(st.sampled_from(kinds))
    if kind == "literal":
        return f"'{text}'"
    if kind == "basic":
        return '"' + basic_escape(text, draw) + '"'
    newline = "\n" if draw(st.booleans()) else ""
    if kind == "ml-literal":
        if text.startswith("\n") and not newline:
            newline = "\n"
        return f"'''{newline}{text}'''"
    body = basic_escape(text, draw, multiline=True)
    if body.startswith("\n") and not newline:
        newline = "\n"
    return f'"""{newline}{body}"""'


def key(name: str, draw: Draw) -> str:
    if bare_ok(name) and draw(st.integers(0, 3)):
        return name
    return string(name, draw, key=True)


def integer(value: int, draw: Draw) -> str:
    style = draw(st.sampled_from(["dec", "hex", "oct", "bin", "under"]))
    if value >= 0 and style in ("hex", "oct", "bin"):
        digits = format(value, {"hex": "x", "oct": "o", "bin": "b"}[style])
        if draw(st.booleans()):
            digits = digits.upper() if style == "hex" else digits
        return "0" + style[0].replace("h", "x") + digits
    text = str(value)
    if style == "under" and len(text.lstrip("-")) > 1:
        sign = "-" if value < 0 else ("+" if draw(st.booleans()) else "")
        digits = text.lstrip("-")
        return sign + "_".join(digits[i : i + 2] for i in range(0, len(digits), 2))
    return text


def floating(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)


def moment(value: datetime | date | time, draw: Draw) -> str:
    if isinstance(value, datetime):
        text = value.isoformat(sep=draw(st.sampled_from(["T", " ", "t"])))
        if value.tzinfo is UTC and draw(st.booleans()):
            text = text[:-6] + draw(st.sampled_from(["Z", "z"]))
        return text
    return value.isoformat()


def inline(value: Any, draw: Draw) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return integer(value, draw)
    if isinstance(value, float):
        return floating(value)
    if isinstance(value, str):
        return string(value, draw)
    if isinstance(value, datetime | date | time):
        return moment(value, draw)
    if isinstance(value, list):
        sep = draw(st.sampled_from([", ", ",", ",\n  ", " , # note\n "]))
        items = sep.join(inline(item, draw) for item in value)
        trailing = "," if value and draw(st.booleans()) else ""
        return f"[{items}{trailing}]"
    assert isinstance(value, dict)
    parts = [f"{key(name, draw)} = {inline(item, draw)}" for name, item in value.items()]
    return "{" + ", ".join(parts) + "}" if parts else "{}"


# the dot of a dotted key may have blanks around it
DOTS = st.sampled_from([".", ".", " . ", "\t.", ". "])


def dotted_lines(prefix: str, value: dict[str, Any], draw: Draw) -> list[str] | None:
    """``prefix.key = value`` lines for a table, or None when dotted keys cannot say it."""
    lines: list[str] = []
    for name, item in value.items():
        here = f"{prefix}{draw(DOTS)}{key(name, draw)}"
        if isinstance(item, dict) and item and draw(st.booleans()):
            sub = dotted_lines(here, item, draw)
            if sub is None:
                return None
            lines.extend(sub)
        else:
            lines.append(f"{here} = {inline(item, draw)}")
    return lines or None


def is_aot(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def section(path: list[str], value: dict[str, Any], draw: Draw, out: list[str]) -> None:
    """Emit a table's own key/value lines, then its sub-tables as [headers]."""
    later: list[tuple[str, Any]] = []
    for name, item in value.items():
        written = key(name, draw)
        if isinstance(item, dict) and draw(st.integers(0, 2)):
            if draw(st.booleans()):
                later.append((name, item))
                continue
            lines = dotted_lines(written, item, draw)
            if lines is not None:
                out.extend(lines)
                continue
        if is_aot(item) and draw(st.booleans()):
            later.append((name, item))
            continue
        comment = draw(st.sampled_from(["", "", " # c", '\t#\t"quoted" [x]']))
        out.append(f"{written} = {inline(item, draw)}{comment}")
    for name, item in later:
        sub_path = [*path, key(name, draw)]
        header = draw(DOTS).join(sub_path)
        pad = draw(st.sampled_from(["", " ", "\t"]))
        if isinstance(item, dict):
            body: list[str] = []
            section(sub_path, item, draw, body)
            # a table holding only sub-tables may be left implicit
            if not body or not body[0].lstrip("\n").startswith("[") or draw(st.booleans()):
                out.append(draw(st.sampled_from(["", "\n"])) + f"[{pad}{header}{pad}]")
            out.extend(body)
        else:
            for element in item:
                out.append(f"[[{pad}{header}{pad}]]")
                section(sub_path, element, draw, out)


@st.composite
def toml_documents(draw: Draw) -> str:
    value = draw(documents)
    out: list[str] = []
    if draw(st.booleans()):
        out.append("# generated")
    section([], value, draw, out)
    text = "\n".join(out) + ("\n" if draw(st.booleans()) else "")
    if draw(st.booleans()):
        # every line break, also those inside multi-line strings, becomes CRLF
        text = text.replace("\n", "\r\n")
    return text


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(toml_documents())
def test_generated_documents_read_as_tomllib_reads_them(text: str) -> None:
    assert_same(loads(text), tomllib.loads(text))


@settings(max_examples=200, deadline=None)
@given(texts, st.data())
def test_every_decoded_character_maps_to_the_text_that_wrote_it(
    value: str, data: st.DataObject
) -> None:
    written = string(value, data.draw)
    text = f"x = 1\ns = {written}\n"
    node = parse(text).root.get("s")
    assert isinstance(node, String)
    assert node.value == value
    locate = node.locator()
    for i, ch in enumerate(value):
        span = locate(i, i + 1)
        start = _offset(text, span.line, span.column)
        end = _offset(text, span.end_line, span.end_column)
        raw = text[start:end]
        # the file text of one character is the character, its escape, or a CRLF
        assert raw == ch or _decodes_to(raw) == ch or (raw == "\r\n" and ch == "\n"), (
            i,
            raw,
            ch,
        )


def _offset(text: str, line: int, column: int) -> int:
    starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
    return starts[line - 1] + column - 1


def _decodes_to(raw: str) -> str | None:
    try:
        return str(tomllib.loads(f's = "{raw}"')["s"])
    except tomllib.TOMLDecodeError:
        return None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(toml_documents())
def test_every_span_cuts_out_what_was_written(text: str) -> None:
    """Each key's span holds that key as written; each value's span holds a TOML
    value that reads back as the same value; headers hold a header."""
    doc = parse(text)

    def check_table(table: Table) -> None:
        for name, entry in table.entries.items():
            raw_key = _cut(text, entry.key.span)
            assert list(tomllib.loads(f"{raw_key} = 1")) == [name]
            check_value(entry.value)

    def check_value(node: Node) -> None:
        raw = _cut(text, node.span)
        aot = isinstance(node, Array) and bool(node.items) and node.items[0].span == node.span
        if aot or (isinstance(node, Table) and not raw.startswith("{")):
            assert "\n" not in raw
            if aot:  # its first [[header]]
                assert raw.startswith("[[")
                assert raw.endswith("]]")
            elif raw.startswith("["):  # its [header]
                assert raw.endswith("]")
            else:  # a table implied by a dotted key or a longer header: its first key
                assert tomllib.loads(f"{raw} = 1")
        else:
            assert_same(tomllib.loads(f"x = {raw}")["x"], node.to_python())
        if isinstance(node, Table):
            check_table(node)
        elif isinstance(node, Array):
            for item in node.items:
                check_value(item)

    check_table(doc.root)


def _cut(text: str, span: Span) -> str:
    return text[
        _offset(text, span.line, span.column) : _offset(text, span.end_line, span.end_column)
    ]
