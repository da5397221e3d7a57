"""How each step type runs once: shell, query, apply (the runtime's side of the
:class:`~muxlang.steps.base.StepRunner` that each step type's ``run`` hook calls).

Each executor renders the step's templates with the values it is given, does
the work, and returns an :class:`Outcome`: the type's record fields (SPEC
section 3) and an error message when the step failed. Errors the user should
read (a template error, a non-zero exit, a backend error) never raise out of
here; cancellation does.
"""

from __future__ import annotations

import signal
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from muxlang.llm import BackendError, ChatRequest, QueryService, Usage
from muxlang.runtime import process, trace
from muxlang.runtime.apply_service import ApplyRequest, ApplyService
from muxlang.runtime.context import StepError, render
from muxlang.steps import step_kind
from muxlang.steps.base import Outcome as Outcome
from muxlang.workflow import AnyStep, ApplyStep, QueryStep, ShellStep, TemplateField

STDERR_TAIL_LINES = 10
STDERR_TAIL_CHARS = 2000


@dataclass(frozen=True, slots=True)
class SentRequest:
    """The request a query step sent, kept for an apply step's re-ask."""

    request: ChatRequest
    target: str
    kind: Literal["role", "backend"]


@dataclass(slots=True)
class Executor:
    """Runs single steps (or single for_each items) of one workflow."""

    project_root: Path
    query: QueryService
    environ: Mapping[str, str]
    workflow_path: str = ""
    team_verify: str | None = None
    #: ``--no-write``: apply steps write nothing and show the diff they would write
    no_write: bool = False
    requests: dict[str, SentRequest] = field(default_factory=dict)
    #: runs a ``uses`` step's workflow (set by the scheduler)
    call: Callable[..., Awaitable[Outcome]] | None = None
    #: runs an ``apply`` step (:func:`muxlang.apply.execute_apply`, passed in by
    #: whoever starts the run: the runtime does not import the layer above it)
    apply: ApplyService | None = None

    async def run(self, step: AnyStep, values: Mapping[str, Any], *, item: bool = False) -> Outcome:
        """Run ``step`` once with ``values`` in scope."""
        try:
            return await step_kind(step).run(step, values, self, item)
        except StepError as exc:
            return Outcome(error=str(exc))

    # ------------------------------------------------------------------ shell

    async def run_shell(self, step: ShellStep, values: Mapping[str, Any]) -> Outcome:
        command = self._render("run", step.run, values)
        trace.note(step.name, values, command=command)
        cwd = self._cwd(step, values)
        env = self._env(step, values)
        try:
            result = await process.run(["sh", "-c", command], cwd=cwd, env=env)
        except process.SpawnError as exc:
            return Outcome({"exit_code": None, "stderr": ""}, str(exc))
        stdout = _text_of(result.stdout)
        stderr = result.stderr.decode("utf-8", errors="replace").rstrip("\r\n")
        fields = {"output": stdout, "exit_code": result.returncode, "stderr": stderr}
        if result.returncode == 0:
            return Outcome(fields)
        return Outcome(fields, _exit_message(result.returncode, stderr))

    def _cwd(self, step: ShellStep, values: Mapping[str, Any]) -> Path:
        root = self.project_root.resolve()
        if step.cwd is None:
            return root
        rendered = self._render("cwd", step.cwd, values)
        if "\0" in rendered:
            raise StepError(f"cwd {rendered!r} contains a NUL byte")
        target = (root / rendered).resolve()
        if not target.is_relative_to(root):
            raise StepError(f"cwd {rendered!r} is outside the project root {str(root)!r}")
        if not target.is_dir():
            raise StepError(f"cwd {rendered!r} is not a directory")
        return target

    def _env(self, step: AnyStep, values: Mapping[str, Any]) -> dict[str, str]:
        env = dict(self.environ)
        for key, template in step.env:
            env[key] = self._render(f"env.{key}", template, values)
        return env

    # ------------------------------------------------------------------ query

    async def run_query(self, step: QueryStep, values: Mapping[str, Any], *, item: bool) -> Outcome:
        prompt = self._render("prompt", step.prompt, values)
        system = self._render("system", step.system, values) if step.system else None
        request = ChatRequest.from_prompt(prompt, system, options=dict(step.options))
        target, kind = _target(step)
        trace.note(step.name, values, prompt=prompt, system=system, target=target)
        if not item:
            self.requests[step.name] = SentRequest(request, target, kind)
        try:
            result = await self.query.query(target, request, kind=kind)
        except BackendError as exc:
            return Outcome({"outputs": {}, "backend": None}, str(exc))
        fields = {
            "output": result.output,
            "outputs": dict(result.outputs),
            "backend": result.backend,
            "usage": usage_fields(result.usage),
            "cost": result.cost,
        }
        if step.output_schema is not None:
            from muxlang.runtime.answer_schema import check_answer

            fields["data"], problem = check_answer(result.output, step.output_schema)
            if problem is not None:
                again = " (asked again `retries` times)" if step.retries else ""
                return Outcome(fields, f"output_schema: {problem}{again}")
        return Outcome(fields)

    # ------------------------------------------------------------------ apply

    async def run_apply(self, step: ApplyStep, values: Mapping[str, Any]) -> Outcome:
        if self.apply is None:
            return Outcome(error="this run was started without an apply service")
        sent = self.requests.get(step.source.name)
        source = values["steps"].get(step.source.name, {})
        if "results" in source:
            return Outcome(
                error=f"source step {step.source.name!r} uses for_each: apply needs one answer"
            )
        if sent is None or source.get("status") != "success":
            return Outcome(error=f"source step {step.source.name!r} has no successful answer")
        if step.verify is not None:
            verify: str | None = self._render("verify", step.verify, values)
        else:
            verify = self.team_verify
        env = self._env(step, values)
        retry_prompt = self._retry_prompt(step, values)
        request = ApplyRequest(
            step=step,
            project_root=self.project_root,
            source_output=str(source.get("output", "")),
            source_request=sent.request,
            source_target=sent.target,
            source_kind=sent.kind,
            query=self.query,
            verify_command=verify,
            env=env,
            render_retry_prompt=retry_prompt,
            dry_run=self.no_write,
        )
        result = await self.apply(request)
        shown = (
            f"{result.output}\n\n{result.diff}" if self.no_write and result.diff else result.output
        )
        if verify is None and result.success and result.files and not self.no_write:
            shown += (
                "\nno verify command: the edits were applied unchecked "
                "(set `verify` on the step, or a team's `verify`)"
            )
        fields = {
            "output": shown.rstrip("\n"),
            "files": list(result.files),
            "diff": result.diff,
            "attempts": result.attempts,
            "verify_output": result.verify_output,
        }
        if result.success:
            return Outcome(fields)
        return Outcome(fields, result.error or "apply failed")

    def _retry_prompt(
        self, step: ApplyStep, values: Mapping[str, Any]
    ) -> Callable[[str, str], str] | None:
        template = step.verify_retry_prompt
        if template is None:
            return None

        def render_retry(original: str, error: str) -> str:
            scope = {**values, "original": original, "error": error}
            return self._render("verify_retry_prompt", template, scope)

        return render_retry

    def _render(self, key: str, template: Any, values: Mapping[str, Any]) -> str:
        return render(key, template, values, path=self.workflow_path)

    # ------------------------------------------------------------------ for step types

    def render(self, key: str, template: TemplateField, values: Mapping[str, Any]) -> str:
        return self._render(key, template, values)

    def env(self, step: AnyStep, values: Mapping[str, Any]) -> dict[str, str]:
        return self._env(step, values)

    async def run_workflow(
        self,
        step: AnyStep,
        args: Mapping[str, Any],
        environ: Mapping[str, str],
        *,
        item: int | None = None,
    ) -> Outcome:
        if self.call is None:
            raise StepError("this run cannot call workflows")
        return await self.call(step, args, environ, item=item)


def usage_fields(usage: Usage | None) -> dict[str, int]:
    """``steps.X.usage``: the tokens a query used (zeros when the backend said nothing)."""
    if usage is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens}


def _target(step: QueryStep) -> tuple[str, Literal["role", "backend"]]:
    if step.role is not None:
        return step.role.name, "role"
    if step.backend is not None:
        return step.backend.name, "backend"
    raise StepError("query step has neither `role` nor `backend`")


def _exit_message(returncode: int, stderr: str) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        message = f"killed by {name}"
    else:
        message = f"exit code {returncode}"
    tail = stderr_tail(stderr)
    return f"{message}: {tail}" if tail else message


def stderr_tail(stderr: str) -> str:
    """The last lines of ``stderr``, short enough for an error message."""
    lines = stderr.strip().splitlines()[-STDERR_TAIL_LINES:]
    tail = "\n".join(lines)
    if len(tail) > STDERR_TAIL_CHARS:
        tail = "…" + tail[-STDERR_TAIL_CHARS:]
    return tail


def _text_of(output: bytes | bytearray) -> str:
    """``output.decode("utf-8", "replace").rstrip("\r\n")`` without a copy of a big
    output: the newlines are dropped from the bytes (a UTF-8 sequence never holds
    one) and the rest is decoded in place."""
    end = len(output)
    while end and output[end - 1] in (10, 13):
        end -= 1
    return str(memoryview(output)[:end], "utf-8", "replace")
