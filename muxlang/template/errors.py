"""The two exceptions of the template language.

Both carry a human message, the :class:`~muxlang.source.Span` it concerns (in the
file's own coordinates when the template sat in a TOML string) and, where one
helps, a hint. The compiler turns a :class:`TemplateSyntaxError` into a MUX010
diagnostic; the runtime reports a :class:`TemplateError` as a failed step.
"""

from __future__ import annotations

from muxlang.source import Span


class _Located:
    message: str
    span: Span
    hint: str | None

    def _init(self, message: str, span: Span, hint: str | None) -> None:
        self.message = message
        self.span = span
        self.hint = hint

    def __str__(self) -> str:
        where = f"{self.span.line}:{self.span.column}: {self.message}"
        return f"{where} ({self.hint})" if self.hint else where


class TemplateSyntaxError(_Located, ValueError):
    """A template or expression that does not parse (MUX010)."""

    def __init__(self, message: str, span: Span, hint: str | None = None) -> None:
        ValueError.__init__(self, message)
        self._init(message, span, hint)


class TemplateError(_Located, Exception):
    """A template that parsed but cannot be evaluated with the values it was given."""

    def __init__(self, message: str, span: Span, hint: str | None = None) -> None:
        Exception.__init__(self, message)
        self._init(message, span, hint)
