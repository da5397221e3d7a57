"""The exceptions of the apply stage. Each message says what is wrong and where."""

from __future__ import annotations


class ApplyError(Exception):
    """Base class: anything that stops edits from being applied or recovered."""


class EditParseError(ApplyError):
    """The source step's output holds no edits, or malformed ones.

    The message names the edit (1-based, in the order they appear) and why.
    """


class EditCheckError(ApplyError):
    """The edits were parsed but cannot be applied to this tree (nothing was written).

    ``problems`` lists one message per bad edit.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(problems))


class LockedError(ApplyError):
    """Another live process holds ``.muxlang/apply.lock`` for this tree."""

    def __init__(self, message: str, pid: int | None) -> None:
        self.pid = pid
        super().__init__(message)


class JournalError(ApplyError):
    """A journal left by a killed run cannot be read or rolled back."""
