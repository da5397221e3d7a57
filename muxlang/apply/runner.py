"""The apply step: parse, check, journal, write, verify, re-ask, roll back.

:func:`execute_apply` is what the runtime calls for an ``apply`` step (the
contract is in docs/architecture.md and docs/apply.md).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import trio

from muxlang.apply.changes import FileChange, plan_changes, render_diff
from muxlang.apply.edits import parse_edits
from muxlang.apply.errors import ApplyError, LockedError
from muxlang.apply.journal import (
    Journal,
    TreeLock,
    apply_changes,
    journal_dir,
    lock_tree,
    recover_locked,
    recover_tree,
    remove_journal,
    rollback,
)
from muxlang.llm import BackendError, ChatRequest, Message
from muxlang.runtime import process, trace
from muxlang.runtime.apply_service import ApplyRequest, ApplyResult

__all__ = [
    "DEFAULT_RETRY_TEMPLATE",
    "ApplyRequest",
    "ApplyResult",
    "default_retry_prompt",
    "execute_apply",
    "recover",
]

#: how much of the verify command's output is kept (the tail), in characters
VERIFY_OUTPUT_LIMIT = 20_000

#: the re-ask prompt when the step has no ``verify_retry_prompt``
#: (``{original}`` is the source step's prompt, ``{error}`` what went wrong)
DEFAULT_RETRY_TEMPLATE = """{original}

---
Your previous answer did not work. Its edits have been undone: the files are as
they were before it.

{error}

Answer again with corrected edits for the original files, in the same format."""


def default_retry_prompt(original: str, error: str) -> str:
    """The documented default re-ask: the original prompt, then what went wrong."""
    return DEFAULT_RETRY_TEMPLATE.format(original=original, error=error)


def recover(project_root: Path) -> list[str]:
    """Roll back a journal a killed run left; the restored paths ([] when none).

    A journal whose run is still alive (it holds the lock) is left alone ([]).
    Raises :class:`~muxlang.apply.errors.JournalError` when the journal is damaged.
    """
    return list(recover_tree(project_root).paths)


def _summary(changes: tuple[FileChange, ...], dry_run: bool) -> str:
    if not changes:
        return "no changes: the edits leave every file as it was"
    lines = [f"{'would be ' if dry_run else ''}{c.kind}: {c.path}" for c in changes]
    return "\n".join(lines)


def _original_prompt(request: ChatRequest) -> str:
    for message in reversed(request.messages):
        if message.role == "user":
            return message.content
    return request.prompt_text


def _reask_request(request: ChatRequest, prompt: str) -> ChatRequest:
    messages = list(request.messages)
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            messages[i] = Message("user", prompt)
            break
    else:
        messages.append(Message("user", prompt))
    return replace(request, messages=tuple(messages))


def _tail(text: str) -> str:
    if len(text) <= VERIFY_OUTPUT_LIMIT:
        return text
    return "[... earlier output cut ...]\n" + text[-VERIFY_OUTPUT_LIMIT:]


@dataclass
class _Outcome:
    ok: bool
    error: str  # for the re-ask and the result (empty when ok)
    verify_output: str = ""


async def _verify(request: ApplyRequest, root: Path) -> _Outcome:
    command = request.verify_command
    assert command is not None
    try:
        result = await process.run(["sh", "-c", command], cwd=root, env=dict(request.env))
    except process.OutputTooLarge as exc:
        return _Outcome(False, f"The verify command `{command}` was stopped: {exc}")
    except process.SpawnError as exc:
        return _Outcome(False, f"the verify command could not be started: {exc}")
    out = result.stdout.decode("utf-8", "replace")
    err = result.stderr.decode("utf-8", "replace")
    text = _tail(out + (("\n" if out and not out.endswith("\n") else "") + err if err else ""))
    if result.returncode == 0:
        return _Outcome(True, "", text)
    status = (
        f"was killed by signal {-result.returncode}"
        if result.returncode < 0
        else f"exited with status {result.returncode}"
    )
    last = _last_line(text)
    if not last:
        return _Outcome(False, f"The verify command `{command}` {status} and printed nothing", text)
    # the first line is what the console and the run summary show: it ends with the
    # verify's last output line (where test runners put their verdict), the full tail follows
    error = f"The verify command `{command}` {status}: {last}\nIts output:\n{text.rstrip()}"
    return _Outcome(False, error, text)


#: how long the reason on an error's first line may be, in characters
HEADLINE_LIMIT = 200


def _clip(line: str) -> str:
    return line if len(line) <= HEADLINE_LIMIT else line[: HEADLINE_LIMIT - 1] + "…"


def _last_line(text: str) -> str:
    """The last non-blank line of ``text``, stripped and clipped ("" when none)."""
    for line in reversed(text.splitlines()):
        if line.strip():
            return _clip(line.strip())
    return ""


def _edits_error(exc: ApplyError) -> str:
    """One line with the first problem, then the other problems (one a line)."""
    first, _, rest = str(exc).strip().partition("\n")
    head = f"The edits could not be applied (nothing was written): {first}"
    return f"{head}\n{rest}" if rest else head


async def execute_apply(request: ApplyRequest) -> ApplyResult:
    """Apply the source step's edits safely; see docs/apply.md.

    Parses the edits, checks them all, journals, writes atomically, runs
    ``verify`` and, while ``verify_retries`` remain, rolls back and asks the
    source again with the verify output. Cancellation rolls back before
    re-raising. Problems come back as ``success=False`` with ``error`` set.
    """
    if request.dry_run:
        return _dry_run(request)
    try:
        lock = lock_tree(request.project_root)
    except LockedError as exc:
        return ApplyResult(False, "", str(exc), (), "", 0, "")
    try:
        return await _locked_apply(request, lock)
    except ApplyError as exc:  # a rollback that could not finish: the journal is kept
        return ApplyResult(False, "apply failed", str(exc), (), "", 0, "")
    finally:
        lock.release()


def _dry_run(request: ApplyRequest) -> ApplyResult:
    root = Path(os.path.realpath(request.project_root))
    try:
        changes = plan_changes(root, parse_edits(request.source_output))
    except ApplyError as exc:
        return ApplyResult(False, "", str(exc), (), "", 1, "")
    return ApplyResult(
        True,
        _summary(changes, True),
        None,
        tuple(c.path for c in changes),
        render_diff(changes),
        1,
        "",
    )


async def _locked_apply(request: ApplyRequest, lock: TreeLock) -> ApplyResult:
    root = Path(os.path.realpath(request.project_root))
    step = request.step
    notes: list[str] = []
    if journal_dir(root).exists():
        # a killed run left a journal and we hold the lock: it is stale
        report = recover_locked(root, lock)
        if report.paths:
            notes.append(report.message)
    retries = max(0, step.verify_retries)
    output_text = request.source_output
    source_request = request.source_request
    original = _original_prompt(source_request)
    render = request.render_retry_prompt or default_retry_prompt
    attempts = 0
    last_error = ""
    last_verify = ""
    last_changes: tuple[FileChange, ...] = ()
    while True:
        attempts += 1
        journal: Journal | None = None
        try:
            try:
                changes = plan_changes(root, parse_edits(output_text))
            except ApplyError as exc:
                last_error = _edits_error(exc)
                outcome = _Outcome(False, last_error)
                changes = ()
            else:
                last_changes = changes
                if changes:
                    trace.outside()
                    try:
                        journal = apply_changes(root, changes, step.name, lock)
                    except OSError as exc:  # disk full, permissions: not the LLM's fault
                        name = f" {exc.filename}" if exc.filename else ""
                        return _failure(
                            request,
                            attempts,
                            f"could not write{name}: {exc.strerror or exc}; "
                            "what was written has been rolled back",
                            last_verify,
                            (),
                            False,
                        )
                if request.verify_command is None:
                    outcome = _Outcome(True, "")
                else:
                    trace.progress(step.name, f"verify, attempt {attempts}/{retries + 1}")
                    outcome = await _verify(request, root)
                last_verify = outcome.verify_output
            if outcome.ok:
                if journal is not None:
                    remove_journal(root)
                    journal = None
                summary = _summary(changes, False)
                if request.verify_command is not None:
                    summary += f"\nverify passed (attempt {attempts})"
                return ApplyResult(
                    True,
                    "\n".join([*notes, summary]),
                    None,
                    tuple(c.path for c in changes),
                    render_diff(changes),
                    attempts,
                    last_verify,
                )
            last_error = outcome.error
            out_of_retries = attempts > retries
            written = journal is not None
            if journal is not None:
                if out_of_retries and not step.rollback_on_failure:
                    remove_journal(root)  # the user asked to keep the failed edits
                else:
                    notes.extend(rollback(journal).kept)
                journal = None
            if out_of_retries:
                kept = written and not step.rollback_on_failure
                return _failure(
                    request, attempts, last_error, last_verify, last_changes, kept, notes
                )
            try:
                prompt = render(original, last_error)
            except Exception as exc:  # the user's verify_retry_prompt template failed
                return _failure(
                    request,
                    attempts,
                    f"{last_error}\n\nverify_retry_prompt could not be rendered: {exc}",
                    last_verify,
                    (),
                    False,
                )
            try:
                answer = await request.query.query(
                    request.source_target,
                    _reask_request(source_request, prompt),
                    kind=request.source_kind,
                )
            except BackendError as exc:
                return _failure(
                    request,
                    attempts,
                    f"{last_error}\n\nAsking {request.source_target} again failed: {exc}",
                    last_verify,
                    (),
                    False,
                )
            output_text = answer.output
        except BaseException:
            if journal is not None:
                with trio.CancelScope(shield=True):
                    rolled = rollback(journal)
                left = rolled.kept
                trace.rolled_back(step.name, rolled.restored)  # the run's summary names them
                for line in left:  # the step is being stopped: this is the only place left
                    sys.stderr.write(f"muxlang: rollback of step {step.name!r}: {line}\n")
            raise


def _failure(
    request: ApplyRequest,
    attempts: int,
    error: str,
    verify_output: str,
    changes: tuple[FileChange, ...],
    kept: bool,
    notes: list[str] | None = None,
) -> ApplyResult:
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if kept:
        state = "the last edits were kept (rollback_on_failure = false)"
        files = tuple(c.path for c in changes)
        diff = render_diff(changes)
    else:
        state = "no file was changed"
        files = ()
        diff = ""
    # files a rollback left because they changed after muxlang wrote them: the user
    # must hear of them (the error is what the console and the summary show)
    left = [note for note in notes or () if note.startswith("kept ")]
    if left:
        error = "\n".join([error, *left])
    return ApplyResult(
        False,
        "\n".join([f"apply failed{tries}; {state}", *left]),
        error,
        files,
        diff,
        attempts,
        verify_output,
    )
