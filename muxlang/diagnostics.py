"""Diagnostics: the one type every check reports through.

A diagnostic names a file, a span, a severity, a stable code (``MUX001`` ...),
a message and, where one helps, a hint. Renderers (text, json, github, sarif)
live in :mod:`muxlang.compiler.report`; this module holds only the data and the
code table, so that every stage can import it cheaply.
"""

from __future__ import annotations

import difflib
import enum
from collections.abc import Iterable
from dataclasses import dataclass

from muxlang.source import Span


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


#: Every stable code and its one-line summary (SPEC section 5).
CODES: dict[str, str] = {
    "MUX001": "TOML syntax error",
    "MUX002": "unknown key",
    "MUX003": "wrong type for a key, or a value outside its fixed set",
    "MUX004": "missing required key",
    "MUX010": "template or expression syntax error",
    "MUX011": "unknown filter",
    "MUX012": "wrong arguments to a filter",
    "MUX013": "type error known before running",
    "MUX020": "duplicate step name",
    "MUX021": "unknown step referenced",
    "MUX022": "dependency cycle",
    "MUX023": "unknown step field",
    "MUX024": "`item` or `loop` outside a for_each step",
    "MUX025": "undeclared arg",
    "MUX030": "unknown role or backend",
    "MUX031": "apply `source` is not a query step",
    "MUX040": "another step's output reaches a shell `run` without `shell_escape`",
}


@dataclass(frozen=True, slots=True)
class Diagnostic:
    file: str
    span: Span
    code: str
    message: str
    severity: Severity = Severity.ERROR
    hint: str | None = None

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown diagnostic code {self.code!r}")

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.file, self.span.line, self.span.column, self.code)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A "did you mean" hint for a misspelt name, or None when nothing is close."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None
