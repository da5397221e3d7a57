"""The ``shell`` step type: ``run`` (a command for ``sh -c``) and ``cwd``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from muxlang.steps.base import Outcome, Shapes, StepKind, StepRunner
from muxlang.workflow import ShellStep, TemplateField


def _previewed(step: ShellStep) -> tuple[tuple[str, TemplateField], ...]:
    shown: list[tuple[str, TemplateField]] = [("run", step.run)]
    if step.cwd is not None:
        shown.append(("cwd", step.cwd))
    return tuple(shown)


def _combine_items(ran: list[dict[str, Any]]) -> dict[str, Any]:
    """A for_each shell step: the first failing item's exit code, every item's stderr."""
    codes = [r["exit_code"] for r in ran if r.get("exit_code")]
    return {
        "exit_code": codes[0] if codes else (0 if ran else None),
        "stderr": "\n".join(r["stderr"] for r in ran if r.get("stderr")),
    }


async def _run(
    step: ShellStep, values: Mapping[str, Any], runner: StepRunner, item: bool
) -> Outcome:
    return await runner.run_shell(step, values)


KIND = StepKind(
    name="shell",
    node=ShellStep,
    fields={"exit_code": "number", "stderr": "string"},
    defaults=lambda: {"exit_code": None, "stderr": ""},
    shell_fields=frozenset({"run", "cwd"}),
    previewed=_previewed,
    shapes=Shapes(mermaid=('["', '"]'), dot="box"),
    run=_run,
    combine_items=_combine_items,
)
