"""What the shell and ``--help`` know about workflows.

``muxlang run fix --help`` shows, after the command's own help, the workflow's
description and its arguments; the shell completes workflow names after
``muxlang run`` and ``name=`` for the chosen workflow's arguments (click's
completion: ``eval "$(_MUXLANG_COMPLETE=bash_source muxlang)"``, see
docs/getting-started.md).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.shell_completion import CompletionItem

if TYPE_CHECKING:
    from muxlang.workflow import Workflow


def _root(ctx: click.Context) -> Path:
    from muxlang.config.discovery import find_project_root

    directory = ctx.params.get("directory") or ctx.find_root().params.get("directory")
    return find_project_root(directory=directory)


def _load(ctx: click.Context, name: str) -> Workflow | None:
    """The workflow ``muxlang run NAME`` would run, or None (any problem: no help)."""
    from muxlang.compiler.loader import load_workflow
    from muxlang.config.discovery import WorkflowNotFoundError, find_workflow

    try:
        path = find_workflow(name, _root(ctx), os.environ)
        workflow, _ = load_workflow(path)
    except (WorkflowNotFoundError, OSError, ValueError):
        return None
    return workflow


def complete_workflow(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Workflow names (with where each comes from), or ``.toml`` paths once a ``/`` is typed."""
    if "/" in incomplete or incomplete.endswith(".toml"):
        return [CompletionItem(incomplete, type="file")]
    from muxlang.config.discovery import list_workflows

    try:
        entries = list_workflows(_root(ctx))
    except (OSError, ValueError):
        return []
    return [
        CompletionItem(entry.name, help=entry.source)
        for entry in entries
        if entry.name.startswith(incomplete)
    ]


def complete_arg(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """``name=`` for each argument of the chosen workflow not given yet."""
    workflow = _load(ctx, str(ctx.params.get("workflow") or ""))
    if workflow is None:
        return []
    given = {str(text).split("=", 1)[0] for text in ctx.params.get("args") or ()}
    return [
        CompletionItem(f"{arg.name}=", help=arg.description or "")
        for arg in workflow.args
        if arg.name not in given and f"{arg.name}=".startswith(incomplete)
    ]


def describe_args(workflow: Workflow) -> list[tuple[str, str]]:
    """One ``(name=VALUE, what it is)`` row per argument, for help text."""
    rows = []
    for arg in workflow.args:
        about = arg.description or ""
        if arg.required:
            about = f"{about} (required)".strip()
        else:
            about = f"{about} (default: {arg.default!r})".strip()
        rows.append((f"{arg.name}=VALUE", about))
    return rows


class RunCommand(click.Command):
    """``muxlang run``: with a workflow before ``--help``, the help also describes it."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if any(a in ("-h", "--help") for a in args):
            named = [a for a in args if not a.startswith("-")]
            if named:
                ctx.meta["muxlang.help_workflow"] = named[0]
        return super().parse_args(ctx, args)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        name = ctx.meta.get("muxlang.help_workflow")
        if not name:
            return
        workflow = _load(ctx, name)
        if workflow is None:
            formatter.write_paragraph()
            formatter.write_text(f"No workflow {name!r} could be loaded here.")
            return
        title = f"Workflow {workflow.name}"
        if workflow.description:
            title += f": {workflow.description}"
        with formatter.section(title):
            if workflow.args:
                formatter.write_dl(describe_args(workflow))
            else:
                formatter.write_text("It declares no [args]; pass values as name=value.")
