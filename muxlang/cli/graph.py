"""``muxlang graph WORKFLOW``: print the step graph as Mermaid, dot or JSON.

The workflow is checked first, exactly as ``muxlang validate`` would (with schema
errors, the same full set of problems validate reports); with an error nothing is
drawn, the diagnostics go to stderr and the exit status is 2 (as for ``muxlang
run``). Warnings are printed and the graph drawn.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from muxlang.cli.options import global_options, settings, use_color
from muxlang.compiler.draw import GRAPH_FORMATS


@click.command(name="graph")
@click.argument("workflow", metavar="WORKFLOW")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(GRAPH_FORMATS),
    default=None,
    help="text (a tree, the default on a terminal), mermaid (the default in a pipe), "
    "Graphviz dot, or JSON (nodes and edges).",
)
@global_options
@click.pass_context
def graph_command(ctx: click.Context, /, workflow: str, fmt: str | None, **given: Any) -> None:
    """Print a workflow's step graph (edges run from a step to the steps that need it)."""
    from muxlang.compiler import report
    from muxlang.compiler.build import compile_workflow
    from muxlang.compiler.draw import draw
    from muxlang.compiler.loader import load_workflow
    from muxlang.compiler.project import Target, display_path, validate
    from muxlang.config import WorkflowNotFoundError, find_project_root, find_workflow, load_config

    options = settings(ctx, **given)
    root = find_project_root(Path.cwd(), options.directory)
    try:
        path = find_workflow(workflow, root)
    except WorkflowNotFoundError as exc:
        click.echo(f"error: {exc}", err=True)
        ctx.exit(2)
    loaded, found = load_workflow(Path(display_path(str(path))))
    plan = None
    if loaded is not None:
        config, problems = load_config(root, workflow=loaded, team=options.team)
        found.extend(problems)
        plan, checked = compile_workflow(loaded, config)
        found.extend(checked)
    else:
        # schema errors: report everything validate would (the loader's problems and
        # the checks of the valid rest), not only the loader's
        found = validate([Target(path, "workflow")], root, team=options.team).diagnostics
    if found:
        sys.stderr.write(report.render_text(found, color=use_color(sys.stderr)))
    if plan is None or any(d.is_error for d in found):
        click.echo(report.summary(found), err=True)
        ctx.exit(2)
    if fmt is None:
        fmt = "text" if sys.stdout.isatty() else "mermaid"
    sys.stdout.write(draw(plan, fmt))
