"""A small POSIX sh lexer over the literal text of a shell template (SPEC 11).

:class:`ShellLexer` is fed text a piece at a time and knows the quoting state
at every point: unquoted (and inside which word of which simple command),
inside ``"…"``, ``'…'`` or bash's ``$'…'``, in a comment, inside ``$(…)``,
``${…}``, ``$((…))`` or backticks, in a here-document body (pending after
``<<``/``<<-`` until the end of the line). :meth:`ShellLexer.insert` encodes a
value for that state (:mod:`.shell_encode`); an encoded value never moves the
state. :meth:`ShellLexer.code_position` says when the current word is code
that a shell or an interpreter runs (:mod:`.shell_code`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from muxlang.template.shell_code import code_word
from muxlang.template.shell_encode import ShellQuoteError, encode

__all__ = ["Context", "ShellLexer"]

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


#: frames where a backslash escapes the next character and one character closes
#: the frame: bash's ``$'...'``, ```...``` and ``${...}``
_CLOSED_BY = {"ansi": "'", "backticks": "`", "parameter": "}"}


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
        elif frame.kind in _CLOSED_BY:
            if self.escape:
                self.escape = False
            elif ch == "\\":
                self.escape = True
            elif ch == _CLOSED_BY[frame.kind]:
                self.stack.pop()
        elif frame.kind == "comment":
            if ch == "\n":
                self.stack.pop()
                self._char(ch)
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
        return code_word(words)
