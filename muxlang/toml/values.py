"""Decoding of TOML strings and bare values (numbers, booleans, dates, times).

The grammar lexes strings and bare values loosely; the functions here apply
TOML 1.0's exact rules and produce the same Python values as ``tomllib``. A
violation raises :class:`ValueFault` with the file offsets of the offending
characters, which the parser turns into a positioned ``TOMLDecodeError``.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime, time, timedelta, timezone
from typing import Any, overload


class ValueFault(Exception):
    """A lexical error inside one token: a message and its file offsets."""

    def __init__(self, msg: str, start: int, end: int | None = None) -> None:
        super().__init__(msg)
        self.msg = msg
        self.start = start
        self.end = start + 1 if end is None else end


# ---------------------------------------------------------------------------
# strings


class Pairs(Sequence[tuple[int, int]]):
    """A sorted sequence of ``(decoded, file)`` offset pairs kept in two machine
    arrays: a string with an escape in every few characters holds one or two
    pairs per escape, and tuples of ints would cost ~120 bytes each (the reader
    would need ~110 bytes of memory per byte of such a string; this ~25)."""

    __slots__ = ("decoded", "file")

    def __init__(self, pairs: Iterable[tuple[int, int]] = ()) -> None:
        self.decoded = array("q")
        self.file = array("q")
        for d, f in pairs:
            self.decoded.append(d)
            self.file.append(f)

    def append(self, decoded: int, file: int) -> None:
        self.decoded.append(decoded)
        self.file.append(file)

    def __len__(self) -> int:
        return len(self.decoded)

    @overload
    def __getitem__(self, index: int) -> tuple[int, int]: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[int, int]]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return tuple(zip(self.decoded[index], self.file[index], strict=True))
        return self.decoded[index], self.file[index]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self.decoded, self.file, strict=True)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Pairs):
            return self.decoded == other.decoded and self.file == other.file
        if isinstance(other, Sequence):
            return tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"Pairs({list(self)!r})"


#: Decoded string, runs (decoded offset -> file offset), escapes (decoded index
#: -> file offset just past the escape sequence that produced it).
Decoded = tuple[str, Pairs, Pairs]

_SIMPLE_ESCAPES = {
    "b": "\b",
    "t": "\t",
    "n": "\n",
    "f": "\f",
    "r": "\r",
    '"': '"',
    "\\": "\\",
}

_BASIC_SPECIAL = re.compile(r"[\\\x00-\x08\x0a-\x1f\x7f]")
_ML_BASIC_SPECIAL = re.compile(r"[\\\x00-\x08\x0b-\x1f\x7f]")
_LITERAL_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_ML_LITERAL_SPECIAL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_HEX = re.compile(r"[0-9A-Fa-f]+")


def _control_message(ch: str) -> str:
    if ch == "\r":
        return "a carriage return must be followed by a line feed"
    if ch == "\n":
        return "a single-line string cannot span lines; close it or use a multi-line string"
    return f"control character U+{ord(ch):04X} is not allowed in a string; escape it"


def _trim_first_newline(body: str) -> int:
    if body.startswith("\n"):
        return 1
    if body.startswith("\r\n"):
        return 2
    return 0


class _Builder:
    """Collects decoded text and the map back to the file."""

    __slots__ = ("blocks", "chunks", "escapes", "length", "runs")

    #: pieces of text held before they are joined into one block: a list of
    #: many small strings costs ~60 bytes per piece, a joined block 1 per char
    _JOIN_EVERY = 1024

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.chunks: list[str] = []
        self.runs = Pairs()
        self.escapes = Pairs()
        self.length = 0

    def _add(self, s: str) -> None:
        self.chunks.append(s)
        if len(self.chunks) >= self._JOIN_EVERY:
            self.blocks.append("".join(self.chunks))
            self.chunks.clear()
        self.length += len(s)

    def _run(self, file_offset: int) -> None:
        """A run starting at the current decoded offset; one already starting
        there is superseded (replaced in place: no second copy of the map)."""
        runs = self.runs
        if runs and runs.decoded[-1] == self.length:
            runs.file[-1] = file_offset
        else:
            runs.append(self.length, file_offset)

    def text(self, s: str, file_offset: int) -> None:
        if not s:
            return
        if not self.runs or self._mapped_end() != file_offset:
            self._run(file_offset)
        self._add(s)

    def escape(self, s: str, file_start: int, file_end: int) -> None:
        self._run(file_start)
        self.escapes.append(self.length, file_end)
        self._add(s)
        # the next character starts a new run wherever it is
        self._run(file_end)

    def _mapped_end(self) -> int:
        return self.runs.file[-1] + (self.length - self.runs.decoded[-1])

    def result(self, end_offset: int) -> Decoded:
        runs = self.runs
        if not runs:
            runs.append(0, end_offset)
        if runs.decoded[-1] == self.length and self.length:
            runs.file[-1] = end_offset
        else:
            runs.append(self.length, end_offset)
        self.blocks.append("".join(self.chunks))
        return "".join(self.blocks), runs, self.escapes


def _escape(body: str, i: int, base: int, multiline: bool) -> tuple[str | None, int]:
    """Decode the escape at ``body[i] == '\\'``: (text or None for a line
    continuation, index after it)."""
    nxt = body[i + 1] if i + 1 < len(body) else ""
    if nxt in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[nxt], i + 2
    if nxt in ("u", "U"):
        width = 4 if nxt == "u" else 8
        digits = body[i + 2 : i + 2 + width]
        if len(digits) != width or not _HEX.fullmatch(digits):
            raise ValueFault(
                f"\\{nxt} must be followed by exactly {width} hexadecimal digits",
                base + i,
                base + i + 2 + len(digits),
            )
        code = int(digits, 16)
        if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
            raise ValueFault(
                f"\\{nxt}{digits} is not a Unicode scalar value", base + i, base + i + 2 + width
            )
        return chr(code), i + 2 + width
    if multiline:
        j = i + 1
        while j < len(body) and body[j] in " \t":
            j += 1
        if body.startswith("\n", j) or body.startswith("\r\n", j):
            while j < len(body) and body[j] in " \t\r\n":
                if body[j] == "\r" and not body.startswith("\r\n", j):
                    raise ValueFault(_control_message("\r"), base + j)
                j += 1
            return None, j
    if not nxt:
        raise ValueFault("a backslash must be followed by an escape sequence", base + i)
    shown = nxt if nxt.isprintable() else f"U+{ord(nxt):04X}"
    raise ValueFault(
        f'invalid escape sequence \\{shown}; valid are \\b \\t \\n \\f \\r \\" \\\\ '
        "\\uXXXX \\UXXXXXXXX",
        base + i,
        base + i + 2,
    )


def decode_string(raw: str, start: int) -> Decoded:
    """Decode one string token ``raw`` found at file offset ``start``."""
    quote = raw[0]
    multiline = raw.startswith(quote * 3) and len(raw) >= 6
    q = 3 if multiline else 1
    body = raw[q:-q]
    base = start + q
    out = _Builder()
    i = 0
    if multiline:
        i = _trim_first_newline(body)
    n = len(body)
    # literal strings have no escapes: their patterns never stop at a backslash
    if quote == "'":
        special = _ML_LITERAL_SPECIAL if multiline else _LITERAL_BAD
    else:
        special = _ML_BASIC_SPECIAL if multiline else _BASIC_SPECIAL
    while i < n:
        m = special.search(body, i)
        stop = m.start() if m else n
        out.text(body[i:stop], base + i)
        if m is None:
            break
        ch = m.group()
        if ch == "\\":
            text, after = _escape(body, stop, base, multiline)
            if text is not None:
                out.escape(text, base + stop, base + after)
            i = after
            continue
        if ch == "\r" and multiline and body.startswith("\r\n", stop):
            out.escape("\n", base + stop, base + stop + 2)
            i = stop + 2
            continue
        raise ValueFault(_control_message(ch), base + stop)
    return out.result(start + len(raw) - q)


def decode_key(raw: str, start: int) -> str:
    """The name of one key segment (bare, or a single-line quoted string)."""
    if raw[0] in "\"'":
        return decode_string(raw, start)[0]
    return raw


# ---------------------------------------------------------------------------
# bare values

_DIGITS = r"[0-9](?:_?[0-9])*"
_DEC_INT = re.compile(r"[+-]?(?:0|[1-9](?:_?[0-9])*)")
_HEX_INT = re.compile(r"0x[0-9A-Fa-f](?:_?[0-9A-Fa-f])*")
_OCT_INT = re.compile(r"0o[0-7](?:_?[0-7])*")
_BIN_INT = re.compile(r"0b[01](?:_?[01])*")
_FLOAT = re.compile(
    rf"[+-]?(?:0|[1-9](?:_?[0-9])*)(?:\.{_DIGITS}(?:[eE][+-]?{_DIGITS})?|[eE][+-]?{_DIGITS})"
)
_SPECIAL_FLOAT = re.compile(r"[+-]?(?:inf|nan)")
_DATETIME = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})"
    r"(?:[Tt ](?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]+))?"
    r"(?P<tz>[Zz]|(?P<sign>[+-])(?P<oh>[0-9]{2}):(?P<om>[0-9]{2}))?)?"
)
_TIME = re.compile(r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2}):(?P<s>[0-9]{2})(?:\.(?P<f>[0-9]+))?")


def _micro(frac: str | None) -> int:
    return int(frac[:6].ljust(6, "0")) if frac else 0


def _number_fault(text: str, start: int) -> ValueFault:
    """The most helpful explanation of a malformed number-like value."""
    end = start + len(text)
    body = text.lstrip("+-")
    if len(text) - len(body) > 1:
        return ValueFault(f"invalid number {text!r}: more than one sign", start, end)
    low = body.lower()
    if low in ("inf", "nan"):
        return ValueFault(f"invalid value {text!r}: write {low} in lowercase", start, end)
    if low.startswith(("0x", "0o", "0b")):
        kind = {"0x": "hexadecimal", "0o": "octal", "0b": "binary"}[low[:2]]
        if text[0] in "+-":
            article = "an" if kind[0] == "o" else "a"
            return ValueFault(f"{article} {kind} integer cannot have a sign: {text!r}", start, end)
        if body[1] in "XOB":
            return ValueFault(
                f"invalid integer {text!r}: the prefix must be lowercase ({low[:2]})", start, end
            )
        digits = body[2:]
        if not digits:
            return ValueFault(f"invalid {kind} integer {text!r}: no digits", start, end)
        if digits.startswith("_") or digits.endswith("_") or "__" in digits:
            return ValueFault(
                f"invalid number {text!r}: an underscore must be between two digits", start, end
            )
        return ValueFault(f"invalid {kind} integer {text!r}", start, end)
    if (
        "__" in body
        or body.startswith("_")
        or body.endswith("_")
        or re.search(r"_[.eE]|[.eE+-]_", body)
    ):
        return ValueFault(
            f"invalid number {text!r}: an underscore must be between two digits", start, end
        )
    mantissa = re.split(r"[.eE]", body, maxsplit=1)[0].replace("_", "")
    if len(mantissa) > 1 and mantissa.startswith("0") and mantissa.isdigit():
        return ValueFault(f"invalid number {text!r}: leading zeros are not allowed", start, end)
    if body.startswith("."):
        return ValueFault(
            f"invalid float {text!r}: a decimal point must have digits before it", start, end
        )
    if re.search(r"\.(?![0-9])", body):
        return ValueFault(
            f"invalid float {text!r}: a decimal point must have digits after it", start, end
        )
    return ValueFault(f"invalid number {text!r}", start, end)


def _date_parts(m: re.Match[str], text: str, start: int) -> date:
    end = start + len(text)
    try:
        return date(int(m["y"]), int(m["mo"]), int(m["d"]))
    except ValueError as exc:
        raise ValueFault(f"invalid date {text!r}: {exc}", start, end) from None


def _time_parts(m: re.Match[str], text: str, start: int) -> time:
    end = start + len(text)
    try:
        return time(int(m["h"]), int(m["mi"]), int(m["s"]), _micro(m["f"]))
    except ValueError as exc:
        raise ValueFault(f"invalid time {text!r}: {exc}", start, end) from None


def _tz(m: re.Match[str], text: str, start: int) -> timezone | None:
    if not m["tz"]:
        return None
    if m["tz"] in "Zz":
        return UTC
    hours, minutes = int(m["oh"]), int(m["om"])
    if hours > 23 or minutes > 59:
        raise ValueFault(f"invalid time offset {m['tz']!r} in {text!r}", start, start + len(text))
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if m["sign"] == "-" else delta)


def decode_atom(text: str, start: int) -> Any:
    """The Python value of a bare value (``ATOM``) token at file offset ``start``."""
    if text == "true":
        return True
    if text == "false":
        return False
    if _SPECIAL_FLOAT.fullmatch(text):
        return float(text)
    first = text[0]
    if first.isdigit() or (first in "+-" and len(text) > 1):
        if _DEC_INT.fullmatch(text):
            try:
                return int(text.replace("_", ""))
            except ValueError:  # beyond Python's limit on decimal digits
                raise ValueFault(
                    f"integer with {len(text)} digits is too large", start, start + len(text)
                ) from None
        if _FLOAT.fullmatch(text):
            return float(text.replace("_", ""))
        if first == "0" and len(text) > 1:
            prefix = text[1]
            if prefix == "x" and _HEX_INT.fullmatch(text):
                return int(text[2:].replace("_", ""), 16)
            if prefix == "o" and _OCT_INT.fullmatch(text):
                return int(text[2:].replace("_", ""), 8)
            if prefix == "b" and _BIN_INT.fullmatch(text):
                return int(text[2:].replace("_", ""), 2)
        if len(text) >= 5 and text[2] == ":":
            m = _TIME.fullmatch(text)
            if m:
                return _time_parts(m, text, start)
            raise ValueFault(
                f"invalid time {text!r}: expected HH:MM:SS with optional .fraction",
                start,
                start + len(text),
            )
        if len(text) >= 8 and re.match(r"[0-9]{2,}-", text):
            m = _DATETIME.fullmatch(text)
            if m is None:
                raise ValueFault(
                    f"invalid date-time {text!r}: expected YYYY-MM-DD, "
                    "optionally followed by T (or a space) and HH:MM:SS[.fraction][Z|±HH:MM]",
                    start,
                    start + len(text),
                )
            day = _date_parts(m, text, start)
            if m["h"] is None:
                return day
            moment = _time_parts(m, text, start)
            return datetime.combine(day, moment, tzinfo=_tz(m, text, start))
        raise _number_fault(text, start)
    if text.lower() in ("true", "false"):
        raise ValueFault(
            f"invalid value {text!r}: booleans are lowercase true and false",
            start,
            start + len(text),
        )
    if text.lower().lstrip("+-") in ("inf", "nan"):
        raise _number_fault(text, start)
    if first in ".+-_":
        raise _number_fault(text, start)
    raise ValueFault(f"invalid value {text!r}: a string must be quoted", start, start + len(text))
