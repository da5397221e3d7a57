"""``muxlang validate``: check workflows and config files, run nothing.

Exit status: 0 when there is no error (warnings allowed, unless ``--strict``),
1 when there are errors, 2 for a usage error. Kept light on purpose: this path
never imports trio, httpx or rich.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from muxlang.cli.options import global_options, settings, use_color


def _code_patterns(given: tuple[str, ...], option: str) -> tuple[str, ...]:
    """``--select MUX02,MUX040 --select MUX1`` as code prefixes; a usage error
    (exit 2) for anything that is not a code or a prefix of one."""
    from muxlang.rules import code_pattern

    patterns: list[str] = []
    for part in (p for text in given for p in text.split(",") if p.strip()):
        pattern = code_pattern(part)
        if pattern is None:
            raise click.BadParameter(
                f"`{part.strip()}` is not a code or a prefix of codes (`muxlang rule` lists them)",
                param_hint=option,
            )
        patterns.append(pattern)
    return tuple(patterns)


#: the file name diagnostics give text read by ``validate -``
STDIN_NAME = "<stdin>"


@click.command(name="validate")
@click.argument("targets", nargs=-1, metavar="[WORKFLOW|FILE]...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "github", "sarif"]),
    default=None,
    help="How to print the diagnostics (default text; json with --output json).",
)
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option(
    "--select",
    "select",
    multiple=True,
    metavar="CODES",
    help="Report only these codes or prefixes (MUX02,MUX040); repeatable.",
)
@click.option(
    "--ignore",
    "ignore",
    multiple=True,
    metavar="CODES",
    help="Never report these codes or prefixes (MUX040); repeatable.",
)
@click.option(
    "--stdin-filename",
    metavar="PATH",
    default=None,
    help="Read the file's text from stdin and report it as PATH (for editors).",
)
@global_options
@click.pass_context
def validate_command(
    ctx: click.Context,
    /,
    targets: tuple[str, ...],
    fmt: str | None,
    strict: bool,
    select: tuple[str, ...],
    ignore: tuple[str, ...],
    stdin_filename: str | None,
    **given: Any,
) -> None:
    """Check workflows and config files without running anything.

    \b
    With no argument: every workflow of the project and its config files
      (.muxlang/workflows/*.toml, .llm-mux/workflows/*.toml, config.toml).
    Arguments: workflow names, files (a config.toml is checked as config)
    or directories; `-` reads a workflow from stdin (reported as <stdin>,
    or as --stdin-filename PATH).

    Exit status: 0 no errors, 1 errors (or warnings with --strict), 2 usage.
    """
    from muxlang._gc import paused_then_frozen

    # the imports and the checks below build objects that live until the command
    # ends: no collector scans of them, now or when it resumes as ctx closes, nor
    # at exit (muxlang/_gc.py)
    ctx.with_resource(paused_then_frozen())
    from muxlang.compiler import report
    from muxlang.compiler.project import (
        Target,
        TargetError,
        display_path,
        kind_of,
        resolve_targets,
        validate,
    )
    from muxlang.config import find_project_root

    options = settings(ctx, **given)
    chosen_codes = _code_patterns(select, "--select")
    dropped = _code_patterns(ignore, "--ignore")
    if fmt is None:
        fmt = "json" if options.output == "json" else "text"
    root = find_project_root(Path.cwd(), options.directory)
    stdin_text: str | None = None
    if "-" in targets and stdin_filename is None:
        # `validate -`: the workflow's text on stdin, as `ruff check -` reads it
        if targets != ("-",):
            raise click.UsageError("`-` (read stdin) takes no other file arguments")
        stdin_filename = STDIN_NAME
    if stdin_filename is not None:
        if targets not in ((), ("-",)):
            raise click.UsageError("--stdin-filename takes no other file arguments")
        # bytes as sent: a text-mode read would turn a lone CR into a line break
        stdin_text = sys.stdin.buffer.read().decode("utf-8", errors="replace")
        path = Path(stdin_filename)
        chosen = [Target(path, kind_of(path), stdin_text)]
    else:
        try:
            chosen = resolve_targets(root, targets)
        except TargetError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
    if not chosen:
        click.echo(f"No workflows or config files found in {root}.", err=True)
        ctx.exit(0)
    result = validate(chosen, root, team=options.team)
    if chosen_codes or dropped:
        from muxlang.rules import selected

        result = result.keep(lambda d: selected(d.code, chosen_codes, dropped))
    diagnostics = result.diagnostics
    out = sys.stdout
    if fmt == "text":
        read = report.read_source
        if stdin_filename is not None:
            names = {str(chosen[0].path), display_path(str(chosen[0].path))}
            given_text = stdin_text

            def read(path: str) -> str | None:
                return given_text if path in names else report.read_source(path)

        out.write(report.render_text(diagnostics, color=use_color(out), read=read))
        out.flush()
        if options.output != "quiet":
            click.echo(report.summary(diagnostics, result.files), err=True)
    else:
        out.write(report.render(diagnostics, fmt))
        out.flush()
        if fmt == "github":
            click.echo(report.github_summary(diagnostics), err=True)
    failed = result.errors > 0 or (strict and result.warnings > 0)
    ctx.exit(1 if failed else 0)
