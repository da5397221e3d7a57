"""``muxlang workflows | backends | roles | teams``: what this project has.

Each prints a table: a rich table when stdout is a terminal, plain aligned
columns otherwise (for pipes and scripts), or with ``--output json`` a JSON
list of objects. Config values are shown as written: an ``api_key`` of
``${OPENAI_API_KEY}`` is printed like that, never expanded, and a key written
literally in a file is masked, as are credentials inside a URL
(``https://user:pass@host/v1?key=...``) and secret-looking ``args``
(:mod:`muxlang.redaction`).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from muxlang.cli.options import Settings, global_options, settings
from muxlang.diagnostics import Diagnostic
from muxlang.redaction import MASK, mask_args, mask_url

_REFERENCE = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*(?::?-[^}]*)?\}")


# --------------------------------------------------------------------------- output


@dataclass
class _Listing:
    """What a listing command prints: a row per entry for the table and an object
    per entry for ``--output json``."""

    title: str
    columns: tuple[str, ...]
    #: said on stderr when there are no entries
    empty: str
    rows: list[tuple[str, ...]] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)

    def add(self, row: tuple[str, ...], record: dict[str, Any]) -> None:
        self.rows.append(row)
        self.records.append(record)

    def emit(self, opts: Settings) -> None:
        if opts.output == "json":
            click.echo(json.dumps(self.records, indent=2, ensure_ascii=False))
            return
        if not self.rows:
            click.echo(self.empty, err=True)
            return
        if is_terminal():
            from rich.console import Console
            from rich.table import Table

            table = Table(title=self.title, title_justify="left", header_style="bold")
            for column in self.columns:
                table.add_column(column)
            for row in self.rows:
                table.add_row(*row)
            Console().print(table)
            return
        click.echo(format_plain(self.columns, self.rows))


def is_terminal() -> bool:
    """Rich tables for people at a terminal; plain columns for pipes and scripts."""
    return sys.stdout.isatty()


def format_plain(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Columns padded to a common width, an upper-case header, no trailing spaces."""
    header = [c.upper() for c in columns]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(columns))]
    lines = []
    for row in [header, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _fail(diagnostics: Sequence[Diagnostic]) -> None:
    for d in diagnostics:
        if not d.is_error:
            continue
        click.echo(
            f"{d.file}:{d.span.line}:{d.span.column}: {d.severity}[{d.code}]: {d.message}",
            err=True,
        )
        if d.hint:
            click.echo(f"  hint: {d.hint}", err=True)
    raise SystemExit(2)


def _project(opts: Settings) -> Path:
    from muxlang.config import find_project_root

    return find_project_root(None, opts.directory)


def _config(opts: Settings) -> Any:
    """The resolved config and its layers; config errors exit 2 with diagnostics."""
    from muxlang.config import config_layers, load_config

    root = _project(opts)
    config, problems = load_config(root, team=opts.team)
    if any(d.is_error for d in problems):
        _fail(problems)
    layers, _ = config_layers(root)
    return config, layers


def _source(layers: Sequence[Any], table: str, name: str) -> str:
    """Where an entry comes from: the last layer that wrote it."""
    for layer in reversed(layers):
        if name in (layer.data.get(table) or {}):
            return str(layer.path) if layer.path is not None else layer.name
    return "?"


def _shown_path(path: Path) -> str:
    """A path relative to the working directory when it lies inside it (tables only;
    JSON always has the absolute path)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def shown_secret(value: str | None) -> str | None:
    """An api key as written when it only references variables, else masked."""
    if value is None:
        return None
    return value if _REFERENCE.fullmatch(value) or not value else MASK


# --------------------------------------------------------------------------- commands


def _listing_command(name: str) -> Callable[[Callable[[Settings], None]], click.Command]:
    """A listing command: the shared options, then ``listing(opts)`` with the
    merged settings; its docstring is the command's help."""

    def command(listing: Callable[[Settings], None]) -> click.Command:
        @click.command(name, help=listing.__doc__)
        @global_options
        @click.pass_context
        def run(ctx: click.Context, /, **given: Any) -> None:
            listing(settings(ctx, **given))

        return run

    return command


@_listing_command("workflows")
def workflows_command(opts: Settings) -> None:
    """List the workflows this project can run by name, and where each comes from."""
    from muxlang.config import list_workflows

    listing = _Listing("Workflows", ("name", "source", "path"), "no workflows found")
    for e in list_workflows(_project(opts)):
        listing.add((e.name, e.source, _shown_path(e.path)), e.to_json())
    listing.emit(opts)


@_listing_command("backends")
def backends_command(opts: Settings) -> None:
    """List configured backends (api keys as written, never expanded)."""
    config, layers = _config(opts)
    listing = _Listing(
        "Backends",
        ("name", "kind", "command", "args / model", "enabled", "source"),
        "no backends configured",
    )
    for name, backend in config.backends.items():
        kind = "http" if backend.is_http else "cli"
        # credentials written in the file (in a URL, in args) are masked
        command = mask_url(backend.command)
        args = mask_args(backend.args)
        detail = (
            f"{backend.protocol} {backend.model or ''}".strip()
            if backend.is_http
            else " ".join(args)
        )
        source = _source(layers, "backends", name)
        listing.add(
            (name, kind, command, detail, "yes" if backend.enabled else "no", source),
            {
                "name": name,
                "kind": kind,
                "command": command,
                "args": args,
                "protocol": backend.protocol if backend.is_http else None,
                "model": backend.model,
                "api_key": shown_secret(backend.api_key),
                "enabled": backend.enabled,
                "timeout": backend.timeout,
                "max_retries": backend.max_retries,
                "source": source,
            },
        )
    listing.emit(opts)
    _say_config_files(opts)


def _say_config_files(opts: Settings) -> None:
    """On stderr (stdout stays a table or JSON): the config files read, and those
    that exist but are ignored, with why."""
    from muxlang.config.discovery import config_files_status

    if opts.output == "quiet":
        return
    found = config_files_status(_project(opts))
    read = ", ".join(str(f.path) for f in found if f.read) or "none (built-in defaults)"
    click.echo(f"config files: {read}", err=True)
    for f in found:
        if not f.read:
            click.echo(f"ignored: {f.path} ({f.why})", err=True)


@_listing_command("roles")
def roles_command(opts: Settings) -> None:
    """List configured roles (with the team's overrides applied)."""
    config, layers = _config(opts)
    team = config.teams.get(config.team) if config.team else None
    listing = _Listing(
        "Roles" + (f" (team {config.team})" if config.team else ""),
        ("name", "execution", "backends", "description", "source"),
        "no roles configured",
    )
    for name, role in config.roles.items():
        overridden = team is not None and name in team.roles
        source = _source(layers, "roles", name)
        if overridden:
            source += f" (team {config.team})"
        listing.add(
            (name, role.execution, ", ".join(role.backends), role.description or "", source),
            {
                "name": name,
                "description": role.description,
                "execution": role.execution,
                "backends": list(role.backends),
                "min_success": role.min_success,
                "team_override": config.team if overridden else None,
                "source": source,
            },
        )
    listing.emit(opts)


@_listing_command("teams")
def teams_command(opts: Settings) -> None:
    """List configured teams; the detected (or --team) one is marked."""
    config, layers = _config(opts)
    listing = _Listing(
        "Teams" + (f" (active: {config.team})" if config.team else " (none detected)"),
        ("team", "detect", "verify", "role overrides", "description"),
        "no teams configured",
    )
    for name, team in config.teams.items():
        active = name == config.team
        listing.add(
            (
                ("* " if active else "  ") + name,
                ", ".join(team.detect),
                team.verify or "",
                ", ".join(team.roles),
                team.description or "",
            ),
            {
                "name": name,
                "description": team.description,
                "detect": list(team.detect),
                "verify": team.verify,
                "roles": sorted(team.roles),
                "active": active,
                "source": _source(layers, "teams", name),
            },
        )
    listing.emit(opts)
    if opts.output != "json" and listing.rows:
        click.echo(f"active team: {config.team}" if config.team else "no team detected", err=True)
