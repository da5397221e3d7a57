"""What ``muxlang run`` does before a step runs: find, load, check and compile the
workflow and resolve its arguments (any problem is :class:`NotRun`: exit 2,
nothing run), roll back what a killed run left half-applied, and ``--dry-run``."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from muxlang.cli.options import use_color

if TYPE_CHECKING:
    from muxlang.compiler.plan import Plan
    from muxlang.diagnostics import Diagnostic


class NotRun(Exception):
    """Something is wrong before the run (exit 2): a message, and diagnostics if any;
    ``workflow`` is the workflow's own name once its file was loaded (else None)."""

    def __init__(
        self, message: str, diagnostics: Sequence[Diagnostic] = (), workflow: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.diagnostics = tuple(diagnostics)
        self.workflow = workflow

    def report(self, workflow: str, output: str) -> None:
        """stderr in every mode; with --output json/jsonl also one JSON object on stdout."""
        if self.diagnostics:
            from muxlang.compiler import report

            sys.stderr.write(report.render_text(self.diagnostics, color=use_color(sys.stderr)))
        click.echo(f"error: {self.message}", err=True)
        if output in ("json", "jsonl"):
            from muxlang.compiler.report import to_json
            from muxlang.runtime.output import dumps

            document = {
                "workflow": workflow,
                "success": False,
                "duration_ms": 0,
                "error": self.message,
                "interrupted": False,
                "run_id": None,  # nothing ran, so nothing was recorded
                "steps": {},
                "diagnostics": [to_json(d) for d in self.diagnostics],
            }
            if output == "jsonl":
                document = {"event": "run_finished", **document}
            click.echo(dumps(document))


def debug_logging() -> None:
    """``--debug``: muxlang's own log records (backend calls, retries) on stderr."""
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("debug: %(name)s: %(message)s"))
    logger = logging.getLogger("muxlang")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)


def usage_error(message: str, *, workflow: str | None = None) -> NoReturn:
    raise NotRun(message, workflow=workflow)


def diagnostics_error(
    diagnostics: Sequence[Diagnostic], *, workflow: str | None = None
) -> NoReturn:
    count = sum(1 for d in diagnostics if d.is_error)
    raise NotRun(
        f"{count} problem{'s' if count != 1 else ''} found; nothing was run",
        diagnostics,
        workflow,
    )


def prepare(
    name: str,
    given: Sequence[str],
    directory: Path | None,
    team: str | None,
    max_concurrent: int | None,
    *,
    warn: bool,
) -> tuple[Plan, dict[str, Any]]:
    """Find, load, configure and compile the workflow; resolve its arguments."""
    from muxlang.compiler import compile_workflow
    from muxlang.compiler.loader import load_workflow
    from muxlang.config import WorkflowNotFoundError, find_project_root, find_workflow, load_config
    from muxlang.runtime.args import ArgsError, resolve_args

    root = find_project_root(Path.cwd(), directory)
    try:
        path = find_workflow(name, root)
    except WorkflowNotFoundError as exc:
        usage_error(str(exc))
    workflow, diagnostics = load_workflow(path)
    if workflow is None or any(d.is_error for d in diagnostics):
        # report every problem at once, as `validate` does: the compiler's checks
        # of the file's valid parts too
        from muxlang.compiler.loader import load_workflow_partial
        from muxlang.compiler.project import validate_workflow
        from muxlang.diagnostics import Diagnostic

        found = validate_workflow(path, root, team=team) or diagnostics
        partial = workflow or load_workflow_partial(path)[0]  # its name, when it has one
        diagnostics_error(
            sorted(dict.fromkeys(found), key=Diagnostic.sort_key),
            workflow=partial.name if partial is not None else None,
        )
    overrides = {"defaults": {"max_concurrent": max_concurrent}} if max_concurrent else None
    config, config_diagnostics = load_config(
        root, workflow=workflow, team=team, environ=os.environ, overrides=overrides
    )
    diagnostics = [*diagnostics, *config_diagnostics]
    if any(d.is_error for d in diagnostics):
        diagnostics_error(diagnostics, workflow=workflow.name)
    plan, compile_diagnostics = compile_workflow(workflow, config)
    diagnostics = [*diagnostics, *compile_diagnostics]
    if plan is None or any(d.is_error for d in diagnostics):
        diagnostics_error(diagnostics, workflow=workflow.name)
    try:
        run_args = resolve_args(workflow, given)
    except ArgsError as exc:
        usage_error(str(exc), workflow=workflow.name)
    if warn and diagnostics:  # warnings only: they never stop a run
        from muxlang.compiler import report

        sys.stderr.write(report.render_text(diagnostics, color=use_color(sys.stderr)))
    return plan, run_args


def preview_run(plan: Plan, run_args: Mapping[str, Any], output: str, limit: int) -> None:
    from muxlang.runtime.output import dumps
    from muxlang.runtime.preview import format_preview, preview

    steps = preview(plan, args=run_args, environ=os.environ)
    if output in ("json", "jsonl"):
        click.echo(
            dumps(
                {
                    "workflow": plan.workflow.name,
                    "dry_run": True,
                    "max_concurrent": limit,
                    "args": run_args,
                    "steps": [step.to_json() for step in steps],
                }
            )
        )
        return
    sys.stdout.write(format_preview(plan, steps, max_concurrent=limit))


def recover_interrupted(root: Path, output: str, workflow: str | None = None) -> None:
    """Roll back what a killed run left half-applied, and say so on stderr."""
    from muxlang.apply import recover_tree

    try:
        report = recover_tree(root)
    except Exception as exc:  # a journal we cannot read must not be ignored silently
        usage_error(
            f"cannot roll back an interrupted apply: {exc} (see `muxlang recover`)",
            workflow=workflow,
        )
    restored = report.paths
    if restored:
        paths = ", ".join(restored[:10]) + (" …" if len(restored) > 10 else "")
        click.echo(
            f"recovered: rolled back {len(restored)} file{'s' if len(restored) != 1 else ''} "
            f"an interrupted run had changed: {paths}",
            err=True,
        )
    for line in report.kept:  # changed after muxlang wrote them: left as they are
        click.echo(f"recovered: {line}", err=True)
