"""Diagnostics: the one type every check reports through.

A diagnostic names a file, a span, a severity, a stable code (``MUX001`` ...),
a message and, where one helps, a hint. Renderers (text, json, github, sarif)
live in :mod:`muxlang.compiler.report`; this module holds only the data; what
each code means is in :mod:`muxlang.rules`. Every stage can import both cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import field

from muxlang._frozen import frozen
from muxlang.rules import RULES, Severity
from muxlang.source import Span

__all__ = ["CODES", "Diagnostic", "Severity", "did_you_mean"]


#: Every stable code and its one-line summary, from the rule table
#: (:mod:`muxlang.rules`: one :class:`~muxlang.rules.Rule` object per code).
class _Summaries(Mapping[str, str]):
    def __getitem__(self, code: str) -> str:
        return RULES[code].summary

    def __iter__(self) -> Iterator[str]:
        return iter(RULES)

    def __len__(self) -> int:
        return len(RULES)


CODES: Mapping[str, str] = _Summaries()


@frozen(slots=True)
class Diagnostic:
    file: str
    span: Span
    code: str
    message: str
    severity: Severity = Severity.ERROR
    hint: str | None = None
    #: the name the diagnostic is about (the unknown step of a MUX021), for
    #: callers that filter findings: never match on the message text
    subject: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown diagnostic code {self.code!r}")

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.span.line, self.span.column, self.code)


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice ``word`` is most likely a misspelling of, or None when nothing is close."""
    import difflib  # only once a name is unknown: a clean validate never needs it

    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A "did you mean" hint for a misspelt name, or None when nothing is close."""
    close = closest(word, choices)
    return f"did you mean `{close}`?" if close else None
