"""Encoding one inserted value for the shell context it stands in (SPEC section 11).

:func:`encode` is called by :class:`~muxlang.template.shell_lexer.ShellLexer`
with the lexer at the insertion point: unquoted words are single-quoted (a
plain word stays bare), double-quoted text is closed, single-quoted and
reopened, here-document bodies get ``$``, backticks and backslashes escaped
and no line that could end the document, comments lose their newlines.
Values are handled with C string operations only (``replace``, ``split``,
``join``): no Python loop per character. Where nothing can keep a value
inert, :class:`ShellQuoteError` says why.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from muxlang.template.shell_lexer import ShellLexer, _Heredoc

__all__ = ["ShellQuoteError", "encode", "quote_word"]


class ShellQuoteError(ValueError):
    """A value cannot be inserted inertly where it stands."""


# ----------------------------------------------------------------------------- encoding

#: characters an unquoted word may hold without quotes (no `=`: a first word
#: `A=b` would be an assignment; no `,`: bash's `{a,b}`; no `~`, glob, or
#: expansion characters)
_SAFE_WORD: Final = re.compile(r"[A-Za-z0-9_@%+:./-]+")
#: words the shell reads as syntax at the start of a command
_RESERVED: Final = frozenset(
    {"!", "{", "}", "[[", "]]", "case", "do", "done", "elif", "else", "esac", "fi", "for"}
    | {"if", "in", "then", "until", "while", "time", "function", "select", "coproc"}
)
#: characters that keep a meaning inside double quotes
_DOUBLE_SPECIAL: Final = re.compile(r'[$`\\"]')
_INTEGER: Final = re.compile(r"-?[0-9]+")
#: an expansion to nothing, used to keep a here-document line from matching its delimiter
_NOTHING: Final = "${-:+}"


def quote_word(text: str) -> str:
    """``text`` as one shell word that is exactly ``text``: bare when it is made
    of safe characters, else in single quotes (``'\\''`` for a quote); ``''``
    for the empty string."""
    if _SAFE_WORD.fullmatch(text) and text not in _RESERVED:
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def _single(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def encode(lexer: ShellLexer, value: str) -> str:
    """``value`` encoded so that the shell, at ``lexer``'s point, reads exactly it."""
    context = lexer.context()
    prefix = ""
    if lexer.escape and context in ("unquoted", "double", "heredoc"):
        prefix = "\n"  # `\` + newline is removed: the value is not escaped by it
        lexer.escape = False
    after_dollar = lexer.dollar
    in_name, lexer.name = lexer.name, False
    if context == "unquoted":
        lexer.dollar = False
        lexer.lt = 0
        if after_dollar:
            if not value:
                return prefix
            if value[0] == "\n":
                raise ShellQuoteError("a value starting with a newline cannot follow a bare `$`")
            # `$\c` is a `$` and the character c: the `$` starts nothing
            return prefix + "\\" + value[0] + (quote_word(value[1:]) if value[1:] else "")
        word = lexer._cmd().word or ""
        tilde = word.endswith("~")  # `~{{ x }}` must not become `~root`
        return prefix + (_single(value) if in_name or tilde else quote_word(value))
    if context == "double":
        lexer.dollar = False
        if not after_dollar and not in_name and not _DOUBLE_SPECIAL.search(value):
            return prefix + value
        return prefix + '"' + _single(value) + '"'
    if context == "single":
        return value.replace("'", "'\\''")
    if context == "comment":
        return value.replace("\n", " ")
    if context == "heredoc":
        separator = _NOTHING if in_name and value else ""  # `$NAME${-:+}value`
        return prefix + separator + _heredoc_unquoted(lexer, value, after_dollar)
    if context == "heredoc-quoted":
        _check_quoted_heredoc(lexer, value)
        return value
    if context == "arithmetic":
        if _INTEGER.fullmatch(value):
            return value
        raise ShellQuoteError(
            "only an integer can be inserted into an arithmetic expansion `$((…))`"
        )
    if context == "ansi":
        raise ShellQuoteError("a value cannot be quoted inside bash's `$'…'`: use '…' or \"…\"")
    if context == "backticks":
        raise ShellQuoteError("a value cannot be quoted inside backticks: write `$(…)` instead")
    if context == "parameter":
        raise ShellQuoteError(
            "a value cannot be quoted inside `${…}`: pass it through `env` and write "
            '"${NAME:-…}" with it'
        )
    raise ShellQuoteError("a value cannot be a here-document's delimiter")


def _heredoc_unquoted(lexer: ShellLexer, value: str, after_dollar: bool) -> str:
    doc = lexer.heredoc
    assert doc is not None
    lexer.dollar = False
    if after_dollar and value and value[0] not in "$`\\":
        raise ShellQuoteError(
            "a value right after a bare `$` in a here-document would start an expansion "
            "(write `\\$` in the template for a literal dollar)"
        )
    escaped = value.replace("\\", "\\\\").replace("$", "\\$").replace("`", "\\`")
    lines = escaped.split("\n")
    last = len(lines) - 1
    for index in _delimiter_lines(doc, lines):
        lines[index] += _NOTHING  # the raw line no longer matches; it expands to nothing
    # the value's last line goes on with the template's text: keep it from
    # becoming the delimiter there either
    tail = (doc.line if last == 0 else "") + lines[last]
    if doc.delimiter.startswith(_stripped(doc, tail)) and (lines[last] or last > 0):
        lines[last] += _NOTHING
    return "\n".join(lines)


def _stripped(doc: _Heredoc, line: str) -> str:
    return line.lstrip("\t") if doc.strip_tabs else line


def _delimiter_lines(doc: _Heredoc, lines: list[str]) -> list[int]:
    """The indexes of the value's complete lines (all but the last) that would
    read as the here-document's delimiter; the first continues ``doc.line``."""
    found = []
    if len(lines) > 1 and _stripped(doc, doc.line + lines[0]) == doc.delimiter:
        found.append(0)
    middle = lines[1:-1]
    # the common case, no such line, is decided at C speed
    if doc.strip_tabs:
        hit = any(line.lstrip("\t") == doc.delimiter for line in middle)
    else:
        hit = doc.delimiter in middle
    if hit:
        found.extend(
            i + 1 for i, line in enumerate(middle) if _stripped(doc, line) == doc.delimiter
        )
    return found


def _check_quoted_heredoc(lexer: ShellLexer, value: str) -> None:
    doc = lexer.heredoc
    assert doc is not None
    if _delimiter_lines(doc, value.split("\n")):
        raise ShellQuoteError(
            f"the value holds a line {doc.delimiter!r} that would end the here-document "
            "(its delimiter is quoted, so nothing in it can be escaped): choose a "
            "delimiter the value cannot contain"
        )
