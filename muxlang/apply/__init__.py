"""Apply and verify: safe edits from LLM output, exact rollback, recovery.

The runtime calls :func:`execute_apply` for an ``apply`` step and
:func:`recover` before a run. See docs/apply.md for formats and guarantees.
"""

from muxlang.apply.changes import FileChange, plan_changes, render_diff
from muxlang.apply.edits import Edit, Patch, Replace, WriteFile, parse_edits
from muxlang.apply.errors import (
    ApplyError,
    EditCheckError,
    EditParseError,
    JournalError,
    LockedError,
)
from muxlang.apply.journal import RecoverReport, recover_tree
from muxlang.apply.runner import (
    DEFAULT_RETRY_TEMPLATE,
    ApplyRequest,
    ApplyResult,
    default_retry_prompt,
    execute_apply,
    recover,
)

__all__ = [
    "DEFAULT_RETRY_TEMPLATE",
    "ApplyError",
    "ApplyRequest",
    "ApplyResult",
    "Edit",
    "EditCheckError",
    "EditParseError",
    "FileChange",
    "JournalError",
    "LockedError",
    "Patch",
    "RecoverReport",
    "Replace",
    "WriteFile",
    "default_retry_prompt",
    "execute_apply",
    "parse_edits",
    "plan_changes",
    "recover",
    "recover_tree",
    "render_diff",
]
