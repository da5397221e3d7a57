"""Lark's syntax errors in the TOML grammar, in words: what the parser expected
and what it found instead, at which line and column (``toml.parser`` raises
:func:`syntax_error` for every :class:`lark.exceptions.UnexpectedInput`)."""

from __future__ import annotations

from lark import Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from muxlang.source import LineIndex
from muxlang.toml.errors import TOMLDecodeError

STRING_TOKENS = frozenset(
    {"BASIC_STRING", "LITERAL_STRING", "ML_BASIC_STRING", "ML_LITERAL_STRING"}
)

_KEY_TOKENS = frozenset({"BARE_KEY", "BASIC_STRING", "LITERAL_STRING"})
_VALUE_TOKENS = frozenset({"ATOM", "ML_BASIC_STRING", "ML_LITERAL_STRING", "LBRACE"})


def _expected(accepts: set[str]) -> str:
    """What the parser wanted, in words."""
    acc = set(accepts)
    if acc & _VALUE_TOKENS:
        if "RSQB" in acc:
            return "a value or ']'"
        return "a value"
    if acc >= {"EQUAL", "DOT"}:
        return "'=' after the key"
    if ("DOT" in acc and "RSQB" in acc) or acc == {"RSQB"}:
        return "']' to close the table header"
    if "RDSQB" in acc:
        return "']]' to close the array-of-tables header"
    if "LDSQB" in acc or "LSQB" in acc:
        return "a key or a [table] header"
    if acc & _KEY_TOKENS:
        return "a key or '}'" if "RBRACE" in acc else "a key"
    if "COMMA" in acc and "RSQB" in acc:
        return "',' or ']' in the array"
    if "COMMA" in acc and "RBRACE" in acc:
        return "',' or '}' in the inline table"
    if acc <= {"_NL", "$END"}:
        return "the end of the line"
    names = {"RSQB": "']'", "RBRACE": "'}'", "COMMA": "','", "EQUAL": "'='", "DOT": "'.'"}
    return " or ".join(sorted(names.get(a, a) for a in acc))


def _found(tok: Token) -> str:
    if tok.type == "_NL":
        return "a line break"
    if tok.type == "$END":
        return "the end of the file"
    text = str(tok)
    if len(text) > 30:
        text = text[:27] + "..."
    return repr(text)


def _char_message(text: str, pos: int, allowed: set[str]) -> tuple[str, int, int]:
    """(message, start, end) for a character no token can start with."""
    ch = text[pos]
    if ch == "\r":
        return "a carriage return must be followed by a line feed", pos, pos + 1
    if (ch < " " and ch != "\t") or ch == "\x7f":
        where = "in a comment" if "#" in text[text.rfind("\n", 0, pos) + 1 : pos] else "here"
        return f"control character U+{ord(ch):04X} is not allowed {where}", pos, pos + 1
    if ch in "\"'" and text.startswith(ch * 2, pos - 2):
        return "unterminated multi-line string", pos - 2, pos + 1
    if ch in "\"'" and allowed & STRING_TOKENS:
        return "unterminated string", pos, pos + 1
    if ch == "\ufeff":
        return "a byte order mark is allowed only at the very start of the file", pos, pos + 1
    shown = repr(ch) if ch.isprintable() else f"U+{ord(ch):04X}"
    previous = text[pos - 1] if pos else " "
    in_key = previous.isascii() and (previous.isalnum() or previous in "_-")
    if (allowed & _KEY_TOKENS or (in_key and "DOT" in allowed)) and not allowed & _VALUE_TOKENS:
        return (
            f"invalid character {shown} in a key: bare keys may hold only A-Z a-z 0-9 _ -; "
            "quote other keys",
            pos,
            pos + 1,
        )
    return f"unexpected character {shown}; expected {_expected(allowed)}", pos, pos + 1


def _accepts(exc: UnexpectedInput, fallback: set[str]) -> set[str]:
    """The terminals the parser would have taken at the error (exact, unlike the
    lexer's set, which LALR state merging widens)."""
    parser = getattr(exc, "interactive_parser", None)
    if parser is None:
        return fallback
    try:
        return set(parser.accepts())
    except Exception:  # pragma: no cover - accepts() is best effort
        return fallback


def syntax_error(text: str, lines: LineIndex, exc: UnexpectedInput) -> TOMLDecodeError:
    """Lark's syntax error ``exc`` as a :class:`TOMLDecodeError` in words a TOML
    author understands: what was expected, what was found, where."""
    if isinstance(exc, UnexpectedToken):
        tok = exc.token
        accepts = _accepts(exc, set(exc.expected))
        if tok.type == "$END" or tok.start_pos is None:
            start = end = len(text)
        else:
            start, end = tok.start_pos, tok.end_pos or tok.start_pos + 1
        msg = f"expected {_expected(accepts)}, found {_found(tok)}"
        if (tok.type == "_NL" and "COMMA" in accepts and "RBRACE" in accepts) or (
            tok.type == "_NL"
            and accepts == _KEY_TOKENS
            and "{" in lines.line_text(lines.position(start)[0])
        ):
            msg += " (an inline table must be on one line)"
        quote = str(tok)[:1]
        if (
            tok.type in _KEY_TOKENS
            and quote in "\"'"
            and text.startswith(quote * 2, start - 2)
            and accepts & {"EQUAL", "RSQB", "RDSQB"}
        ):
            # `"""key""" = 1` lexes as "" then "key": keys are single-line strings
            msg = "a key cannot be a multi-line string"
            start -= 2
        span = lines.span(start, max(end, start + 1) if tok.type != "$END" else start)
        return TOMLDecodeError(msg, span.line, span.column, span)
    if isinstance(exc, UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        msg, start, end = _char_message(text, pos, _accepts(exc, set(exc.allowed or ())))
        span = lines.span(start, end)
        return TOMLDecodeError(msg, span.line, span.column, span)
    line, column = lines.position(len(text))  # pragma: no cover - UnexpectedEOF is unused
    return TOMLDecodeError(str(exc), line, column)
