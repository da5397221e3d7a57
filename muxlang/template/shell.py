"""Templates that become shell code: every insertion is quoted for where it stands
(SPEC section 11).

A ``run`` or ``verify`` template is rendered by :func:`render_shell`. Its literal
text is fed, as it is produced, through :class:`ShellLexer`, a small POSIX sh
lexer that knows the quoting state at every point: unquoted (also inside a
word), inside ``"…"``, inside ``'…'``, in a here-document body (quoted or
unquoted delimiter), in a comment, inside ``$(…)``. Each ``{{ }}`` value is then
encoded so that the shell reads it back as exactly its text, with no character
interpreted (:func:`encode`). Only literal text and ``raw`` values move the
lexer; an encoded value never changes the state it was inserted in.

- ``{{ x | raw }}`` inserts ``x`` unquoted, on purpose: it is shell code.
- ``{{ x | shell_escape }}`` is already quoted for an unquoted place; it is
  never quoted twice: in any other place its original text is encoded for
  that place (so ``"{{ x | shell_escape }}"`` prints ``x``, not ``'x'``).
- In ``{% if %}`` and ``{% for %}`` blocks, the literal text of what is
  rendered counts, in the order it is rendered.
- Places where no encoding can keep a value inert are refused with a clear
  error instead: inside backticks (use ``$(…)``), inside ``${…}``, in an
  arithmetic ``$((…))`` (unless the value is an integer), as a here-document
  delimiter, right after a bare ``$`` in a here-document, or a line of a value
  that would end a here-document with a quoted delimiter.

:func:`insertion_sites` is the static counterpart for ``validate``: where each
``{{ }}`` of a template stands, and whether it lands in code a shell or an
interpreter runs (``sh -c``, ``eval``, ``python -c``, …), which MUX040 reports.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from muxlang.template import ast
from muxlang.template.errors import TemplateError
from muxlang.template.evaluate import _context, _insert, compile_expression
from muxlang.template.loop import LOOP_FIELDS, loop_builder
from muxlang.template.marks import RawText, ShellQuoted
from muxlang.template.values import Scope

__all__ = [
    "SHELL_FIELDS",
    "Insertion",
    "RawText",
    "ShellLexer",
    "ShellQuoteError",
    "ShellQuoted",
    "encode",
    "insertion_sites",
    "quote_word",
    "render_shell",
]

#: the template keys of a step whose text is a shell command
SHELL_FIELDS: Final = frozenset({"run", "verify"})

Context = Literal[
    "unquoted",
    "double",
    "single",
    "ansi",
    "heredoc",
    "heredoc-quoted",
    "comment",
    "backticks",
    "parameter",
    "arithmetic",
    "delimiter",
]


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


@dataclass(slots=True)
class _Frame:
    kind: Literal[
        "cmd", "double", "single", "ansi", "backticks", "parameter", "arithmetic", "comment"
    ]
    #: cmd: open `(` inside; arithmetic: open parentheses
    depth: int = 0
    #: cmd: a `$(` substitution (a `)` at depth 0 closes it)
    substitution: bool = False
    #: cmd: just opened by `$(` (a second `(` makes it arithmetic)
    fresh: bool = False
    #: cmd: the words of the current simple command ("\0" marks an insertion)
    words: list[str] = field(default_factory=list)
    word: str | None = None
    #: cmd: open `case` commands (their patterns end with a `)` that closes nothing)
    cases: int = 0


@dataclass(slots=True)
class _Heredoc:
    delimiter: str
    quoted: bool
    strip_tabs: bool
    line: str = ""
    inserted: bool = False


@dataclass(slots=True)
class Insertion:
    """Where an insertion stands: its context and, when it lands in code that a
    shell or interpreter runs, a description of that (``sh -c``)."""

    context: Context
    code: str | None = None


class ShellLexer:
    """The quoting state of POSIX sh text, fed a piece at a time."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = [_Frame("cmd")]
        self.heredoc: _Heredoc | None = None
        self.pending: list[_Heredoc] = []
        #: a `\` is waiting for the character it escapes
        self.escape = False
        #: an unescaped `$` is waiting for what follows it
        self.dollar = False
        #: inside the name of a `$NAME` expansion (a name character would extend it)
        self.name = False
        #: `<` characters just seen (2 = a here-document operator)
        self.lt = 0
        #: reading a here-document delimiter: (text, quoted, strip tabs, quote char)
        self.delim: list[Any] | None = None

    # ---------------------------------------------------------------- state

    @property
    def top(self) -> _Frame:
        return self.stack[-1]

    def _cmd(self) -> _Frame:
        for frame in reversed(self.stack):
            if frame.kind == "cmd":
                return frame
        return self.stack[0]  # pragma: no cover - the bottom frame is a cmd

    def context(self) -> Context:
        """The context an insertion at this point stands in."""
        if self.delim is not None or (self.lt == 2 and self.top.kind == "cmd"):
            return "delimiter"
        if self.heredoc is not None and self.top.kind == "cmd" and len(self.stack) == 1:
            return "heredoc" if not self.heredoc.quoted else "heredoc-quoted"
        kind = self.top.kind
        if kind == "cmd":
            return "unquoted"
        return kind

    # ---------------------------------------------------------------- feeding

    def feed(self, text: str) -> None:
        """Advance over literal shell text."""
        for ch in text:
            self._char(ch)

    def _word_char(self, ch: str) -> None:
        cmd = self._cmd()
        cmd.word = (cmd.word or "") + ch

    def _end_word(self) -> None:
        cmd = self._cmd()
        if cmd.word is not None:
            if not cmd.words and cmd.word == "case":
                cmd.cases += 1
            elif not cmd.words and cmd.word == "esac":
                cmd.cases = max(0, cmd.cases - 1)
            cmd.words.append(cmd.word)
            cmd.word = None

    def _end_command(self) -> None:
        self._end_word()
        self._cmd().words = []

    def _char(self, ch: str) -> None:
        if self.heredoc is not None and len(self.stack) == 1:
            self._heredoc_char(ch)
            return
        frame = self.top
        if frame.kind == "cmd":
            self._cmd_char(frame, ch)
        elif frame.kind == "single":
            if ch == "'":
                self.stack.pop()
            else:
                self._word_char(ch)
        elif frame.kind == "double":
            self._double_char(ch)
        elif frame.kind == "ansi":  # bash's $'...': backslash escapes, `'` ends it
            if self.escape:
                self.escape = False
            elif ch == "\\":
                self.escape = True
            elif ch == "'":
                self.stack.pop()
        elif frame.kind == "comment":
            if ch == "\n":
                self.stack.pop()
                self._char(ch)
        elif frame.kind == "backticks":
            if self.escape:
                self.escape = False
            elif ch == "\\":
                self.escape = True
            elif ch == "`":
                self.stack.pop()
        elif frame.kind == "parameter":
            if self.escape:
                self.escape = False
            elif ch == "\\":
                self.escape = True
            elif ch == "}":
                self.stack.pop()
        elif frame.kind == "arithmetic":
            if ch == "(":
                frame.depth += 1
            elif ch == ")":
                frame.depth -= 1
                if frame.depth == 0:
                    self.stack.pop()

    def _name_state(self, ch: str) -> None:
        if self.name:
            if ch.isascii() and (ch.isalnum() or ch == "_"):
                return
            self.name = False
        elif self.dollar and ch.isascii() and (ch.isalpha() or ch == "_"):
            self.name = True

    def _expansion(self, ch: str) -> bool:
        """After a `$`: open what ``ch`` starts; True when ``ch`` was consumed."""
        self.dollar = False
        if ch == "(":
            self.stack.append(_Frame("cmd", substitution=True, fresh=True))
            return True
        if ch == "{":
            self.stack.append(_Frame("parameter"))
            return True
        return False

    def _double_char(self, ch: str) -> None:
        self._name_state(ch)
        if self.escape:
            self.escape = False
            self._word_char(ch)
            return
        if self.dollar and self._expansion(ch):
            return
        if ch == "\\":
            self.escape = True
        elif ch == '"':
            self.stack.pop()
        elif ch == "$":
            self.dollar = True
        elif ch == "`":
            self.stack.append(_Frame("backticks"))
        else:
            self._word_char(ch)

    def _cmd_char(self, frame: _Frame, ch: str) -> None:
        if frame.fresh:
            frame.fresh = False
            if ch == "(":
                self.stack[-1] = _Frame("arithmetic", depth=2)
                return
        if self.delim is not None and self._delimiter_char(ch):
            return
        self._name_state(ch)
        if self.escape:
            self.escape = False
            if ch != "\n":
                self._word_char(ch)
            return
        if self.dollar and ch == "'":
            self.dollar = False
            self.stack.append(_Frame("ansi"))
            return
        if self.dollar and self._expansion(ch):
            return
        lt, self.lt = self.lt, 0
        if lt == 2 and ch != "<":
            self.delim = ["", False, ch == "-", None]
            if ch == "-":
                return
            if self._delimiter_char(ch):
                return
        if ch == "\\":
            self.escape = True
        elif ch == "'":
            self.stack.append(_Frame("single"))
            self._word_char("")
        elif ch == '"':
            self.stack.append(_Frame("double"))
            self._word_char("")
        elif ch == "`":
            self.stack.append(_Frame("backticks"))
            self._word_char("`")
        elif ch == "$":
            self.dollar = True
            self._word_char("$")
        elif ch == "#" and frame.word is None:
            self.stack.append(_Frame("comment"))
        elif ch == "\n":
            self._end_command()
            if self.pending and len(self.stack) == 1:
                self.heredoc = self.pending.pop(0)
        elif ch in " \t":
            self._end_word()
        elif ch in ";&|":
            self._end_command()
        elif ch == "(":
            frame.depth += 1
            self._end_command()
        elif ch == ")":
            self._end_word()  # an `esac` just before it closes its `case`
            if frame.depth > 0:
                frame.depth -= 1
                self._end_command()
            elif frame.substitution and not frame.cases:
                self.stack.pop()
                self._word_char("")
            else:
                self._end_command()
        elif ch in "<>":
            self._end_word()
            if ch == "<":
                self.lt = lt + 1
        else:
            self._word_char(ch)

    def _delimiter_char(self, ch: str) -> bool:
        """One character of a here-document delimiter word; False when it ended the word."""
        delim = self.delim
        assert delim is not None
        text, quoted, strip, quote = delim
        if quote is not None:
            if ch == quote:
                delim[3] = None
            else:
                delim[0] = text + ch
            return True
        if self.escape:
            self.escape = False
            delim[0] = text + ch
            return True
        if ch in " \t" and not text:
            return True
        if ch in "'\"":
            delim[1] = True
            delim[3] = ch
            return True
        if ch == "\\":
            delim[1] = True
            self.escape = True
            return True
        if ch in " \t\n;&|()<>":
            self.pending.append(_Heredoc(text, quoted, strip))
            self.delim = None
            return False
        delim[0] = text + ch
        return True

    def _heredoc_char(self, ch: str) -> None:
        doc = self.heredoc
        assert doc is not None
        if not doc.quoted:
            self._name_state(ch)
            if self.escape:
                self.escape = False
                if ch != "\n":
                    doc.line += ch
                return
            if self.dollar and ch in "({":
                self.dollar = False
                doc.line += ch
                self.stack.append(
                    _Frame("cmd", substitution=True, fresh=True)
                    if ch == "("
                    else _Frame("parameter")
                )
                return
            self.dollar = False
            if ch == "\\":
                self.escape = True
                doc.line += ch
                return
            if ch == "$":
                self.dollar = True
            elif ch == "`":
                self.stack.append(_Frame("backticks"))
        if ch != "\n":
            doc.line += ch
            return
        line = doc.line.lstrip("\t") if doc.strip_tabs else doc.line
        if line == doc.delimiter:
            if doc.inserted:
                raise ShellQuoteError(
                    f"an inserted value completes the line {doc.delimiter!r} that ends the "
                    "here-document"
                )
            self.heredoc = self.pending.pop(0) if self.pending else None
            return
        doc.line = ""
        doc.inserted = False

    # ---------------------------------------------------------------- inserting

    def insert(self, value: str) -> str:
        """The encoding of ``value`` for this point; the lexer moves past it."""
        encoded = encode(self, value)
        self._after_insert(encoded)
        return encoded

    def _after_insert(self, encoded: str) -> None:
        doc = self.heredoc
        if doc is not None and len(self.stack) == 1:
            last = encoded.rsplit("\n", 1)[-1]
            doc.line = doc.line + last if "\n" not in encoded else last
            doc.inserted = True
            return
        if self.top.kind == "cmd":
            self.top.fresh = False
        if self.top.kind in ("cmd", "double", "single"):
            self._word_char("\0")

    def insert_raw(self, text: str) -> str:
        """``text`` as it is (shell code, on purpose); the lexer reads it."""
        self.feed(text)
        return text

    # ---------------------------------------------------------------- code detection

    def code_position(self) -> str | None:
        """When an insertion here lands in code a shell or interpreter runs, what runs it."""
        if self.heredoc is not None and len(self.stack) == 1:
            return None
        cmd = self._cmd()
        words = [*cmd.words, (cmd.word or "") + "\0"]
        return _code_word(words)


#: commands that run their operands as another command; options they take a value for
_WRAPPERS: Final[Mapping[str, frozenset[str]]] = {
    "sudo": frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U"}),
    "env": frozenset({"-u", "-C", "-S"}),
    "nohup": frozenset(),
    "nice": frozenset({"-n"}),
    "timeout": frozenset({"-s", "-k", "--signal", "--kill-after"}),
    "command": frozenset(),
    "exec": frozenset({"-a"}),
    "time": frozenset(),
    "xargs": frozenset({"-I", "-n", "-P", "-d", "-L", "-s", "-E", "-a"}),
    "stdbuf": frozenset({"-i", "-o", "-e"}),
}
_SHELLS: Final = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "fish", "busybox"})
#: interpreters and the options whose value is a program
_INTERPRETERS: Final[Mapping[str, frozenset[str]]] = {
    "python": frozenset({"-c"}),
    "python3": frozenset({"-c"}),
    "python2": frozenset({"-c"}),
    "pypy": frozenset({"-c"}),
    "pypy3": frozenset({"-c"}),
    "node": frozenset({"-e", "--eval", "-p", "--print"}),
    "nodejs": frozenset({"-e", "--eval", "-p", "--print"}),
    "deno": frozenset({"eval"}),
    "perl": frozenset({"-e", "-E"}),
    "ruby": frozenset({"-e"}),
    "php": frozenset({"-r"}),
    "lua": frozenset({"-e"}),
    "Rscript": frozenset({"-e"}),
    "osascript": frozenset({"-e"}),
    "pwsh": frozenset({"-c", "-Command", "-command"}),
}
#: programs whose first operand is a program they run
_PROGRAM_FIRST: Final = frozenset({"eval", "awk", "gawk", "mawk", "nawk", "sed", "trap"})


#: `NAME=` in front of a command: an assignment, not the command
_ASSIGNMENT: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
#: words after which the next word is a command again
_KEYWORDS: Final = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{"})


def _code_word(words: list[str]) -> str | None:
    """Whether the last word of a simple command (the one being inserted into) is code."""
    i = 0
    # assignments, keywords and wrappers in front of the command
    while i < len(words) - 1:
        word = words[i]
        if _ASSIGNMENT.match(word) or word in _KEYWORDS:
            i += 1
            continue
        name = word.rsplit("/", 1)[-1]
        if name in _WRAPPERS:
            takes = _WRAPPERS[name]
            i += 1
            while i < len(words) - 1 and (words[i].startswith("-") or "=" in words[i]):
                i += 2 if words[i] in takes else 1
            if name == "timeout" and i < len(words) - 1:
                i += 1  # the duration
            continue
        break
    if i == len(words) - 1:
        return None if _ASSIGNMENT.match(words[i]) else "the command to run"
    command = words[i].rsplit("/", 1)[-1].replace("\0", "")
    rest = words[i + 1 :]
    target = len(rest) - 1
    if command in _SHELLS:
        seen_c = False
        for j, word in enumerate(rest[:target]):
            if word.startswith("-") and not word.startswith("--") and "c" in word:
                seen_c = True
            elif not word.startswith("-"):
                if seen_c:
                    return None  # past the script: $0, $1…
                if j == 0 or rest[j - 1].startswith("-") is False:
                    return None  # a script file's operands
        return f"`{command} -c`" if seen_c else None
    if command in _INTERPRETERS:
        options = _INTERPRETERS[command]
        if target >= 1 and rest[target - 1] in options:
            return f"`{command} {rest[target - 1]}`"
        return None
    if command in _PROGRAM_FIRST:
        if command in ("eval", "trap"):
            return f"`{command}`"
        if target >= 1 and rest[target - 1] in ("-e", "--expression"):
            return f"`{command} {rest[target - 1]}`"
        operands = [w for w in rest[:target] if not w.startswith("-")]
        if not operands and not any(w in ("-e", "-f", "--expression", "--file") for w in rest):
            return f"the program of `{command}`"
        return None
    if command == "ssh":
        operands = [w for w in rest[:target] if not w.startswith("-")]
        if operands:
            return "the remote command of `ssh`"
    return None


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


# ----------------------------------------------------------------------------- rendering


def render_shell(template: ast.Template, scope: Scope | Mapping[str, Any]) -> str:
    """Render a shell template with every insertion quoted for its context.
    Raises :class:`TemplateError`."""
    lexer = ShellLexer()
    out: list[str] = []
    ctx = _context(scope)
    _render(template.body, ctx, lexer, out)
    return "".join(out)


def _render(
    nodes: tuple[ast.Node, ...], ctx: dict[str, Any], lexer: ShellLexer, out: list[str]
) -> None:
    for node in nodes:
        if isinstance(node, ast.Text):
            try:
                lexer.feed(node.text)
            except ShellQuoteError as exc:
                raise TemplateError(str(exc), node.span) from None
            out.append(node.text)
        elif isinstance(node, ast.Output):
            value = compile_expression(node.expr)(ctx)
            try:
                out.append(_insertion(lexer, value, node.expr, ctx))
            except ShellQuoteError as exc:
                raise TemplateError(
                    f"cannot insert `{ast.to_source(node.expr)}` here: {exc}", node.expr.span
                ) from None
        elif isinstance(node, ast.If):
            for condition, body in node.branches:
                if compile_expression(condition)(ctx):
                    _render(body, ctx, lexer, out)
                    break
            else:
                if node.else_body is not None:
                    _render(node.else_body, ctx, lexer, out)
        else:
            _render_for(node, ctx, lexer, out)


def _insertion(lexer: ShellLexer, value: Any, expr: ast.Expr, ctx: dict[str, Any]) -> str:
    if isinstance(value, RawText):
        return lexer.insert_raw(str.__str__(value))
    if isinstance(value, ShellQuoted):
        if (
            lexer.context() == "unquoted"
            and not (lexer.dollar or lexer.escape or lexer.name)
            and not lexer._cmd().fresh
        ):
            quoted = str.__str__(value)
            lexer._after_insert(quoted)
            return quoted
        return lexer.insert(value.plain)
    text = value if type(value) is str else _insert(value, expr, ctx)
    return lexer.insert(text)


_FULL_LOOP: Final = loop_builder(tuple(LOOP_FIELDS))


def _render_for(node: ast.For, ctx: dict[str, Any], lexer: ShellLexer, out: list[str]) -> None:
    items = compile_expression(node.iterable)(ctx)
    if isinstance(items, tuple):
        items = list(items)
    if not isinstance(items, list):
        # the plain renderer words the error (undefined, or not a list)
        from muxlang.template.evaluate import render

        render(ast.Template((node,), node.span, ""), ctx)
        raise TemplateError(f"`{ast.to_source(node.iterable)}` is not a list", node.span)
    if not items:
        if node.else_body is not None:
            _render(node.else_body, ctx, lexer, out)
        return
    inner = dict(ctx)
    last = len(items) - 1
    for i, item in enumerate(items):
        inner[node.var] = item
        inner["loop"] = _FULL_LOOP(i, len(items), last)
        _render(node.body, inner, lexer, out)


# ----------------------------------------------------------------------------- static view


def insertion_sites(template: ast.Template) -> Iterator[tuple[ast.Output, Insertion]]:
    """Every ``{{ }}`` of a shell template with the context it stands in, read
    from the literal text before it (each ``{% if %}`` branch from the state
    at its start; after the block, the first branch's end state)."""
    lexer = ShellLexer()
    yield from _sites(template.body, lexer)


def _clone(lexer: ShellLexer) -> ShellLexer:
    import copy

    return copy.deepcopy(lexer)


def _sites(
    nodes: tuple[ast.Node, ...], lexer: ShellLexer
) -> Iterator[tuple[ast.Output, Insertion]]:
    for node in nodes:
        try:
            if isinstance(node, ast.Text):
                lexer.feed(node.text)
            elif isinstance(node, ast.Output):
                info = Insertion(lexer.context(), lexer.code_position())
                yield node, info
                lexer._after_insert("x")
            elif isinstance(node, ast.If):
                bodies = [body for _, body in node.branches]
                if node.else_body is not None:
                    bodies.append(node.else_body)
                after: ShellLexer | None = None
                for body in bodies:
                    branch = _clone(lexer)
                    yield from _sites(body, branch)
                    after = after or branch
                if after is not None:
                    _copy_into(lexer, after)
            else:
                yield from _sites(node.body, lexer)
                if node.else_body is not None:
                    yield from _sites(node.else_body, _clone(lexer))
        except ShellQuoteError:
            return


def _copy_into(target: ShellLexer, source: ShellLexer) -> None:
    target.stack = source.stack
    target.heredoc = source.heredoc
    target.pending = source.pending
    target.escape = source.escape
    target.dollar = source.dollar
    target.lt = source.lt
    target.delim = source.delim
