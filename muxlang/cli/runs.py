"""``muxlang runs``: the run history (SPEC section 10).

``muxlang runs [--workflow W] [--limit N]`` lists recorded runs, newest first;
``muxlang runs prune --keep N`` / ``--older-than 30d`` deletes old ones. Both
take ``--output json``. The records live in ``.muxlang/runs.db`` at the project
root, or in ``$MUXLANG_RUNS_DB``.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from muxlang.cli.options import Settings, global_options, settings
from muxlang.records.facts import duration, money

if TYPE_CHECKING:
    from muxlang.records.store import RunRow, Store

EXIT_ERROR = 1
EXIT_USAGE = 2


def db_path(opts: Settings) -> Path:
    from muxlang.config import find_project_root
    from muxlang.records.store import default_path

    root = find_project_root(Path.cwd(), opts.directory)
    return default_path(root)


def open_store(opts: Settings) -> Store:
    """The project's run store, or exit 1 saying there is none."""
    from muxlang.records.store import Store, StoreError

    path = db_path(opts)
    try:
        return Store(path, create=False)
    except StoreError as exc:
        if not path.exists():
            fail(f"no runs recorded yet ({path} does not exist): `muxlang run` records every run")
        fail(str(exc))


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def when(seconds: float) -> str:
    """A start time as people read it: local time, to the second."""
    return datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


def tokens(input_tokens: int, output_tokens: int) -> str:
    total = input_tokens + output_tokens
    return f"{total:,}" if total else "-"


def run_row(run: RunRow) -> list[str]:
    return [
        run.id,
        run.workflow,
        run.status,
        when(run.started),
        duration(run.duration_ms),
        f"{run.steps_ok}/{run.steps_failed}/{run.steps_skipped}",
        tokens(run.input_tokens, run.output_tokens),
        money(run.cost),
    ]


RUN_COLUMNS = (
    "id",
    "workflow",
    "status",
    "started",
    "duration",
    "ok/failed/skipped",
    "tokens",
    "cost",
)


class _RunsGroup(click.Group):
    """``muxlang runs`` lists; ``muxlang runs prune`` deletes."""


@click.group("runs", cls=_RunsGroup, invoke_without_command=True)
@click.option("--workflow", "-w", "workflow", default=None, help="Only runs of this workflow.")
@click.option(
    "--limit",
    "-n",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Show at most N runs.",
)
@global_options
@click.pass_context
def runs_command(ctx: click.Context, /, workflow: str | None, limit: int, **given: Any) -> None:
    """List recorded runs, newest first."""
    ctx.obj = given
    if ctx.invoked_subcommand is not None:
        return
    opts = settings(ctx, **given)
    with open_store(opts) as store:
        try:
            rows = store.runs(workflow=workflow, limit=limit)
        except Exception as exc:  # StoreError: a corrupt or locked database
            fail(str(exc))
    if opts.output == "json":
        click.echo(json.dumps([r.to_json() for r in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        which = f" of workflow {workflow!r}" if workflow else ""
        click.echo(f"no runs recorded{which}", err=True)
        return
    from muxlang.cli.listing import format_plain

    click.echo(format_plain(RUN_COLUMNS, [run_row(r) for r in rows]))


@runs_command.command("prune")
@click.option("--keep", type=click.IntRange(min=0), default=None, help="Keep the newest N runs.")
@click.option(
    "--older-than",
    "older_than",
    default=None,
    metavar="AGE",
    help="Delete runs older than AGE (30d, 12h).",
)
@global_options
@click.pass_context
def prune_command(
    ctx: click.Context, /, keep: int | None, older_than: str | None, **given: Any
) -> None:
    """Delete old run records (never a run still in progress)."""
    parent = ctx.parent.obj if ctx.parent is not None and ctx.parent.obj else {}
    merged = {**parent, **given}
    for name, value in given.items():
        if value is None and parent.get(name) is not None:
            merged[name] = parent[name]
    opts = settings(ctx, **merged)
    if keep is None and older_than is None:
        fail("say what to delete: --keep N and/or --older-than AGE (e.g. 30d)", EXIT_USAGE)
    age: float | None = None
    if older_than is not None:
        from muxlang.runtime.accounting import parse_age

        try:
            age = parse_age(older_than)
        except ValueError as exc:
            fail(str(exc), EXIT_USAGE)
    with open_store(opts) as store:
        try:
            deleted = store.prune(keep=keep, older_than=age)
            left = store.count()
        except Exception as exc:  # StoreError
            fail(str(exc))
    if opts.output == "json":
        click.echo(json.dumps({"deleted": deleted, "kept": left}))
        return
    click.echo(f"deleted {deleted} run{'s' if deleted != 1 else ''}; {left} kept")
