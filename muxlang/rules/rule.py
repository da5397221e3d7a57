"""The :class:`Rule` type: what one diagnostic code means.

Kept free of imports from the rest of muxlang so that every stage (and the
diagnostics module itself) can load the rule table cheaply.
"""

from __future__ import annotations

import enum

from muxlang._frozen import frozen

#: where each rule is explained for people (SARIF ``helpUri``, ``muxlang rule``)
DOCS_URL = "https://github.com/muxlang/muxlang/blob/main/docs/validation.md"


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@frozen(slots=True, kw_only=True)
class Rule:
    """One diagnostic code and its one meaning.

    ``bad`` is a whole workflow file that gets the code; ``fixed`` is the same
    file with the problem fixed (tests check both through ``validate``).
    """

    code: str
    #: a CamelCase name that says what is wrong (``UnknownStepReference``)
    name: str
    #: one line, lower case, no full stop: what the rule catches
    summary: str
    #: a paragraph or two: what exactly is caught, and why it matters
    explanation: str
    bad: str
    fixed: str
    severity: Severity = Severity.ERROR

    @property
    def help_uri(self) -> str:
        return f"{DOCS_URL}#{self.code.lower()}"

    @property
    def anchor(self) -> str:
        return self.code.lower()
