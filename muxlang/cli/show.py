"""``muxlang show [RUN] [STEP]``: one recorded run, or one step of it in full.

RUN is a run id (or a unique prefix of one) or ``last`` (the default). Without
STEP: the run and its steps as a table. With STEP: the rendered command or
prompt, the whole output and stderr, the backend, attempts and tokens (and
each for_each item's). ``--html FILE`` writes the run as one self-contained
page instead; ``--output json`` prints JSON.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from muxlang.cli.options import global_options, settings
from muxlang.cli.runs import EXIT_USAGE, fail, open_store, tokens, when
from muxlang.records.facts import duration, measured, money

if TYPE_CHECKING:
    from muxlang.records.store import RunRow, StepRow


@click.command("show")
@click.argument("run", required=False, default=None)
@click.argument("step", required=False, default=None)
@click.option(
    "--html",
    "html",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Write the run as one self-contained HTML page.",
)
@global_options
@click.pass_context
def show_command(
    ctx: click.Context,
    /,
    run: str | None,
    step: str | None,
    html: Path | None,
    **given: Any,
) -> None:
    """Show a recorded run (default: the last one), or one STEP of it in full."""
    opts = settings(ctx, **given)
    with open_store(opts) as store:
        try:
            found = store.run(run or "last")
            if found is None and run is not None and step is None:
                # `muxlang show STEP`: a step of the last run
                last = store.run("last")
                if last is not None and any(s.name == run for s in store.steps(last.id)):
                    found, step = last, run
            if found is None:
                fail(
                    f"no run {run!r} recorded (see `muxlang runs`)"
                    if run
                    else "no runs recorded yet: `muxlang run` records every run"
                )
            rows = store.steps(found.id)
        except LookupError as exc:
            fail(str(exc), EXIT_USAGE)
        except Exception as exc:  # StoreError
            fail(str(exc))
    if html is not None:
        _write_html(found, rows, html)
        return
    if step is not None:
        chosen = [r for r in rows if r.name == step]
        if not chosen:
            from muxlang.diagnostics import did_you_mean

            names = sorted({r.name for r in rows})
            hint = did_you_mean(step, names)
            fail(
                f"run {found.id} has no step {step!r}"
                + (f" ({hint})" if hint else f"; its steps: {', '.join(names) or 'none'}"),
                EXIT_USAGE,
            )
        if opts.output == "json":
            main = next(r for r in chosen if r.item < 0)
            data = main.to_json()
            data["run"] = found.id
            data["items"] = [r.to_json() for r in chosen if r.item >= 0]
            click.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        click.echo(_step_text(found, chosen), nl=False)
        return
    if opts.output == "json":
        data = found.to_json()
        data["steps"] = [r.to_json() for r in rows if r.item < 0]
        for entry in data["steps"]:
            entry["items"] = [r.to_json() for r in rows if r.item >= 0 and r.name == entry["name"]]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    click.echo(_run_text(found, rows), nl=False)


def _write_html(run: RunRow, rows: list[StepRow], target: Path) -> None:
    from muxlang.records.report_html import render_report

    page = render_report(run, rows)
    from muxlang.records.files import write_atomic

    try:
        write_atomic(target, page.encode("utf-8"))
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}")
    click.echo(f"wrote {target}", err=True)


def _run_text(run: RunRow, rows: list[StepRow]) -> str:
    lines = [
        f"run {run.id}: {run.workflow} {run.status}",
        f"  started   {when(run.started)}  ({duration(run.duration_ms)})",
        f"  file      {run.path}",
    ]
    if run.args:
        lines.append("  args      " + ", ".join(f"{k}={v}" for k, v in run.args.items()))
    if run.team:
        lines.append(f"  team      {run.team}")
    if run.resumed_from:
        lines.append(f"  resumed   from {run.resumed_from}")
    if run.input_tokens or run.output_tokens or run.cost is not None:
        lines.append(
            f"  usage     {run.input_tokens:,} in / {run.output_tokens:,} out tokens"
            + (f", {money(run.cost)}" if run.cost is not None else "")
        )
    if run.error:
        lines.append(f"  error     {run.error.splitlines()[0] if run.error else ''}")
    lines.append("")
    items: dict[str, list[StepRow]] = {}
    for row in rows:
        if row.item >= 0:
            items.setdefault(row.name, []).append(row)
    table = []
    for row in rows:
        if row.item >= 0:
            continue
        status = row.status
        if row.origin != "run" and row.status == "success":
            status = row.origin
        note = ""
        if row.name in items:
            done = sum(1 for i in items[row.name] if i.status == "success")
            note = f"{done}/{len(items[row.name])} items"
        if row.error:
            note = (note + " " if note else "") + row.error.splitlines()[0][:80]
        elif row.reason and row.status == "skipped":
            note = row.reason
        table.append(
            [
                row.name,
                status,
                duration(row.duration_ms) if row.status != "skipped" else "-",
                row.backend or "-",
                tokens(row.input_tokens, row.output_tokens),
                money(row.cost),
                note,
            ]
        )
    from muxlang.cli.listing import format_plain

    lines.append(
        format_plain(("step", "status", "duration", "backend", "tokens", "cost", "note"), table)
    )
    failed = [r.name for r in rows if r.item < 0 and r.status == "failed"]
    if failed:
        lines.append("")
        lines.append(f"details: muxlang show {run.id} {failed[0]}")
    return "\n".join(lines) + "\n"


def _section(title: str, body: str | None) -> list[str]:
    if body is None:
        return []
    text = body if body.endswith("\n") or not body else body + "\n"
    return [f"--- {title} ---\n", text or "(empty)\n"]


def _step_text(run: RunRow, rows: list[StepRow]) -> str:
    out: list[str] = []
    for row in rows:
        label = row.name if row.item < 0 else f"{row.name} item {row.item + 1}"
        facts = [row.kind or "step", row.status]
        if row.origin != "run":
            facts.append(f"from {'the cache' if row.origin == 'cache' else 'an earlier run'}")
        facts += measured(row)
        header = f"{label} (run {run.id}): " + ", ".join(facts)
        out.append(("\n" if out else "") + header + "\n")
        if row.item >= 0:
            out.append(f"item: {json.dumps(row.item_value, ensure_ascii=False)}\n")
        if row.reason:
            out.append(f"reason: {row.reason}\n")
        for member in row.fields.get("members") or ():
            why = f" ({member.get('why')})" if member.get("why") else ""
            out.append(f"member {member.get('entry')}: {member.get('status')}{why}\n")
        if row.error:
            out += _section("error", row.error)
        out += _section("command", row.command)
        out += _section("system", row.system)
        out += _section("prompt", row.prompt)
        if row.status != "skipped":
            out += _section("output", row.output or "")
        if row.stderr:
            out += _section("stderr", row.stderr)
    return "".join(out)
