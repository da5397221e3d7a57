"""The runtime's side of running a step: :class:`Executor`, the
:class:`~muxlang.steps.base.StepRunner` that each step type's ``run`` hook (in
its module under :mod:`muxlang.steps`) is given.

The executor offers what a step needs of the runtime (rendering with the run's
workflow path, the environment, subprocesses, backends, the apply service, the
trace) and turns a :class:`StepError` out of a hook into a failed
:class:`Outcome`. Errors the user should read never raise out of here;
cancellation does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from muxlang.llm import QueryService
from muxlang.runtime import process, trace
from muxlang.runtime.apply_service import ApplyRequest, ApplyResult, ApplyService
from muxlang.runtime.context import StepError, render
from muxlang.steps import step_kind
from muxlang.steps.base import Outcome as Outcome
from muxlang.steps.base import SentRequest
from muxlang.workflow import AnyStep, ApplyStep, TemplateField


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

    def render(self, key: str, template: TemplateField, values: Mapping[str, Any]) -> str:
        return render(key, template, values, path=self.workflow_path)

    def env(self, step: AnyStep, values: Mapping[str, Any]) -> dict[str, str]:
        env = dict(self.environ)
        for key, template in step.env:
            env[key] = self.render(f"env.{key}", template, values)
        return env

    def note(self, step: str, values: Mapping[str, Any], **sent: Any) -> None:
        trace.note(step, values, **sent)

    async def spawn(
        self, argv: list[str], cwd: Path, env: Mapping[str, str]
    ) -> process.ProcessResult:
        try:
            return await process.run(argv, cwd=cwd, env=env)
        except process.SpawnError as exc:
            raise StepError(str(exc)) from exc

    def check_answer(self, output: str, schema: Any) -> tuple[Any, str | None]:
        from muxlang.runtime.answer_schema import check_answer

        return check_answer(output, schema)

    @property
    def can_apply(self) -> bool:
        return self.apply is not None

    async def apply_edits(
        self,
        step: ApplyStep,
        source: SentRequest,
        source_output: str,
        verify: str | None,
        env: Mapping[str, str],
        retry_prompt: Callable[[str, str], str] | None,
    ) -> ApplyResult:
        if self.apply is None:
            raise StepError("this run was started without an apply service")
        request = ApplyRequest(
            step=step,
            project_root=self.project_root,
            source_output=source_output,
            source_request=source.request,
            source_target=source.target,
            source_kind=source.kind,
            query=self.query,
            verify_command=verify,
            env=env,
            render_retry_prompt=retry_prompt,
            dry_run=self.no_write,
        )
        return await self.apply(request)

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
