"""Strings that carry how they were made, for shell templates (SPEC section 11).

``shell_escape`` returns a :class:`ShellQuoted` and ``raw`` a :class:`RawText`;
both are ``str`` everywhere else (a plain template inserts them as text), and
:func:`muxlang.template.shell.render_shell` reads the mark: a raw value is
inserted as shell code, a quoted one is never quoted twice.
"""

from __future__ import annotations

__all__ = ["RawText", "ShellQuoted"]


class RawText(str):
    """Text a shell template inserts as it is (the ``raw`` filter)."""

    __slots__ = ()


class ShellQuoted(str):
    """The result of ``shell_escape``: quoted for an unquoted place in a command;
    ``plain`` is the text it stands for (a list's items joined by spaces)."""

    plain: str

    def __new__(cls, quoted: str, plain: str) -> ShellQuoted:
        self = super().__new__(cls, quoted)
        self.plain = plain
        return self
