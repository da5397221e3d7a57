"""What the runtime hands an ``apply`` step to, and what it gets back.

The runtime sits below :mod:`muxlang.apply` (which runs ``verify`` through
:mod:`muxlang.runtime.process`), so it never imports it: whoever starts a run
passes the apply service in (``execute(..., apply=muxlang.apply.execute_apply)``,
as ``muxlang run`` does). A run without one fails an apply step with a clear
error instead of importing upwards.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Literal

from muxlang._frozen import frozen
from muxlang.llm import ChatRequest, QueryService
from muxlang.workflow import ApplyStep


@frozen
class ApplyRequest:
    step: ApplyStep
    project_root: Path
    source_output: str  # the source query step's output text (the edits)
    source_request: ChatRequest  # the request the source step sent, for the re-ask
    source_target: str  # role or backend name of the source step
    source_kind: Literal["role", "backend"]
    query: QueryService  # to ask the source again
    verify_command: str | None  # rendered verify, or the team's, or None
    env: Mapping[str, str]  # full environment for the verify command
    render_retry_prompt: Callable[[str, str], str] | None  # None: DEFAULT_RETRY_TEMPLATE
    dry_run: bool = False
    timeout: float | None = None  # unused: the runtime wraps the call in the step's scope


@frozen
class ApplyResult:
    success: bool
    output: str  # human summary: files changed (for steps.X.output)
    error: str | None  # which edit failed and why / last verify output
    files: tuple[str, ...]  # paths changed, relative to the project root
    diff: str  # unified diff of what was (or, in dry-run, would be) written
    attempts: int
    verify_output: str


#: runs one apply step: :func:`muxlang.apply.execute_apply`
ApplyService = Callable[[ApplyRequest], Awaitable[ApplyResult]]
