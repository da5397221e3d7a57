"""``muxlang doctor``: check for real that every configured backend can be used.

CLI backends: the program is found on PATH and runs ``--version`` (5 s at most).
HTTP backends: every ``${VAR}`` they need is set, and the base URL answers an
authenticated GET of its model list (3 s at most) without rejecting the key.
Also shown: the project root, the detected team and the config files read.

Exit status: 0 when every role and backend the project uses is usable; 1 when
one is not (each problem is named on stderr, e.g. "backend `openai`: environment
variable OPENAI_API_KEY is not set"); 2 for a config error. The project uses a
role when its user or project config file defines it or one of its workflows
names it (directly, or through a role that nests it), and a backend when such a
role reaches it or a workflow step names it (``backend = "x"``). Built-in
defaults nobody uses, and backends nothing uses, are only warnings. Backends
defined only in a workflow's own ``[backends]`` are probed as well. Disabled
backends are shown, never counted as problems. Secrets are never printed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import click

from muxlang.cli.options import Settings, global_options, settings
from muxlang.config.discovery import ConfigFileStatus
from muxlang.redaction import mask_url

CLI_TIMEOUT = 5.0
HTTP_TIMEOUT = 3.0


@dataclass
class BackendReport:
    name: str
    kind: str  # "cli" | "http"
    command: str
    status: str  # "ok" | "disabled" | "unusable"
    detail: str = ""
    problems: list[str] = field(default_factory=list)
    used_by: list[str] = field(default_factory=list)  # roles reaching it
    used_by_workflows: list[str] = field(default_factory=list)  # steps naming it directly
    used: bool = True  # by the project (see the module's docstring)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "command": self.command,
            "status": self.status,
            "ok": self.status == "ok",
            "detail": self.detail,
            "problems": self.problems,
            "used_by": self.used_by,
            "used_by_workflows": self.used_by_workflows,
            "used": self.used,
        }


@dataclass
class ProjectUsage:
    """What the project itself uses: roles its config files define or its workflows
    name, and, per backend a workflow step names directly, those workflows."""

    roles: set[str] = field(default_factory=set)
    step_backends: dict[str, list[str]] = field(default_factory=dict)
    #: backends only a workflow's own ``[backends]`` defines, resolved (first wins)
    workflow_backends: dict[str, Any] = field(default_factory=dict)


@dataclass
class Report:
    project_root: Path
    team: str | None
    config_files: list[Path]
    backends: list[BackendReport]
    roles: list[dict[str, Any]]
    problems: list[str]
    warnings: list[str] = field(default_factory=list)
    #: config files that exist but are not read, and why (a muxlang file hides the
    #: llm-mux one of its layer; MUXLANG_CONFIG replaces the user layer)
    ignored_config_files: list[ConfigFileStatus] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "project_root": str(self.project_root),
            "team": self.team,
            "config_files": [str(p) for p in self.config_files],
            "ignored_config_files": [f.to_json() for f in self.ignored_config_files],
            "backends": [b.to_json() for b in self.backends],
            "roles": self.roles,
            "problems": self.problems,
            "warnings": self.warnings,
        }


async def diagnose(
    config: Any,
    *,
    environ: Mapping[str, str] = os.environ,
    cli_timeout: float = CLI_TIMEOUT,
    http_timeout: float = HTTP_TIMEOUT,
    configured: set[str] | None = None,
    usage: ProjectUsage | None = None,
) -> Report:
    """Probe every backend of a resolved config (concurrently) and judge the roles.

    Problems (exit 1): a role the project uses that cannot run (no usable backend;
    fewer than ``min_success`` for parallel), an unusable backend a workflow step
    names, and an unusable backend a used role reaches — except a built-in default
    backend (not in ``configured``, the names the user's files define) whose used
    roles still have other usable backends: that is a warning. Roles and backends
    the project does not use are warnings only. ``configured=None`` treats every
    backend as configured by the user, ``usage=None`` every role as used."""
    import trio

    from muxlang.llm import BackendError
    from muxlang.runtime.backends import open_router

    reports: dict[str, BackendReport] = {}
    problems: list[str] = []
    roles: list[dict[str, Any]] = []
    leaves_of: dict[str, tuple[str, ...]] = {}
    used_roles = set(config.roles) if usage is None else _role_closure(config, usage.roles)
    step_backends = {} if usage is None else usage.step_backends
    warnings: list[str] = []
    async with open_router(config, environ=environ) as router:
        used: dict[str, list[str]] = {}
        for role_name in config.roles:
            try:
                resolved = router.resolve(role_name, "role")
            except BackendError as exc:
                if role_name in used_roles:
                    problems.append(f"role `{role_name}`: {exc.message}")
                else:
                    warnings.append(f"role `{role_name}`: {exc.message}{UNUSED_ROLE}")
                continue
            leaves_of[role_name] = resolved.backends
            for leaf in resolved.backends:
                used.setdefault(leaf, []).append(role_name)
            roles.append(
                {
                    "name": role_name,
                    "execution": resolved.execution,
                    "backends": list(resolved.entries),
                    "used": role_name in used_roles,
                }
            )

        async def check(name: str) -> None:
            raw = config.backends[name]
            report = BackendReport(
                name,
                "http" if raw.is_http else "cli",
                mask_url(raw.command),  # credentials written in a URL are never shown
                "ok",
                used_by=used.get(name, []),
            )
            report.used_by_workflows = list(step_backends.get(name, []))
            reports[name] = report
            if not raw.enabled:
                report.status = "disabled"
                return
            from muxlang.config import missing_variables

            missing = missing_variables(raw, environ)
            if missing:
                report.status = "unusable"
                report.problems = [
                    f"backend `{name}`: environment variable {var} is not set" for var in missing
                ]
                return
            backend: Any = router.backend(name)
            timeout = http_timeout if raw.is_http else cli_timeout
            probe = await backend.probe(timeout)
            report.detail = probe.detail
            if not probe.ok:
                report.status = "unusable"
                report.problems = list(probe.problems)

        async with trio.open_nursery() as nursery:
            for name in config.backends:
                nursery.start_soon(check, name)

    builtin_only = set() if configured is None else set(config.backends) - set(configured)
    for role in roles:
        name = role["name"]
        found = problems if role["used"] else warnings
        suffix = "" if role["used"] else UNUSED_ROLE
        leaves = leaves_of[name]
        for b in leaves:
            if b not in config.backends:
                found.append(f"role `{name}`: unknown backend `{b}`{suffix}")
        usable = [b for b in leaves if b in reports and reports[b].status == "ok"]
        needed = config.roles[name].min_success if role["execution"] == "parallel" else 1
        role["usable"] = len(usable) >= needed
        if not role["usable"]:
            what = f"{len(usable)} of {len(leaves)} backends usable, {needed} needed"
            found.append(f"role `{name}` ({role['execution']}) cannot run: {what}{suffix}")
    ordered = [reports[name] for name in config.backends]
    used_role_names = {role["name"] for role in roles if role["used"]}
    for report in ordered:
        users = [r for r in roles if r["name"] in report.used_by and r["name"] in used_role_names]
        report.used = bool(users or report.used_by_workflows)
        if report.status != "unusable":
            continue
        if report.used_by_workflows:
            problems.extend(report.problems)  # a step asks it by name: nothing to fall back on
        elif not report.used:
            warnings.extend(p + UNUSED_BACKEND for p in report.problems)
        elif report.name in builtin_only and all(
            role["usable"] and role["execution"] != "parallel" for role in users
        ):
            # a built-in default nobody configured: its roles still have others
            warnings.extend(p + " (its roles use other backends)" for p in report.problems)
        else:
            problems.extend(report.problems)
    return Report(
        project_root=config.project_root,
        team=config.team,
        config_files=list(config.sources),
        backends=ordered,
        roles=roles,
        problems=problems,
        warnings=warnings,
    )


UNUSED_ROLE = " (no config file or workflow of the project uses it)"
UNUSED_BACKEND = " (no role or workflow the project uses needs it)"


def _role_closure(config: Any, starts: set[str]) -> set[str]:
    """``starts`` and every role they nest (an entry that is a role, not a backend)."""
    found: set[str] = set()
    todo = [name for name in starts if name in config.roles]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found.add(name)
        for entry in config.roles[name].backends:
            if entry not in config.backends and entry in config.roles:
                todo.append(entry)
    return found


def project_usage(root: Path, config: Any, layers: Sequence[Any]) -> ProjectUsage:
    """What the project uses: the roles its user/project config files define (the
    active team's overrides too), and the roles and backends the steps of its
    workflows (``.muxlang/workflows``, ``.llm-mux/workflows``) name — also through
    a workflow's own ``[roles]``. A workflow that does not load adds what it can.
    Backends defined only in a workflow's own ``[backends]`` are collected (merged
    over the project's layers) so doctor probes them too."""
    from muxlang.compiler.loader import load_workflow_partial
    from muxlang.compiler.project import project_targets
    from muxlang.workflow import QueryStep

    usage = ProjectUsage()
    for layer in layers:
        if layer.path is None or layer.name not in ("user", "project"):
            continue
        usage.roles.update(layer.data.get("roles") or {})
        if config.team:
            team = (layer.data.get("teams") or {}).get(config.team) or {}
            usage.roles.update(team.get("roles") or {})
    for target in project_targets(root):
        if target.kind != "workflow":
            continue
        try:
            workflow = load_workflow_partial(target.path)[0]
        except Exception:  # a broken workflow is validate's business, not doctor's
            continue
        if workflow is None:
            continue
        own_backends = workflow.config.backends
        if any(name not in config.backends for name in own_backends):
            from muxlang.config import load_config

            merged, _ = load_config(root, workflow=workflow, team=config.team)
            for name in own_backends:
                if name not in config.backends and name in merged.backends:
                    usage.workflow_backends.setdefault(name, merged.backends[name])
        local = workflow.config.roles
        names: list[tuple[str, bool]] = []  # (name, named as a role)
        for step in workflow.steps:
            if isinstance(step, QueryStep):
                if step.role is not None:
                    names.append((step.role.name, True))
                if step.backend is not None:
                    names.append((step.backend.name, False))
        seen: set[str] = set()
        while names:
            name, as_role = names.pop()
            if as_role and name in local and name not in seen:
                seen.add(name)  # the workflow's own role: what it lists is used
                names.extend(
                    (entry, entry not in config.backends and entry not in own_backends)
                    for entry in local[name].backends
                )
            elif as_role:
                usage.roles.add(name)
            elif workflow.name not in usage.step_backends.setdefault(name, []):
                usage.step_backends[name].append(workflow.name)
    return usage


# --------------------------------------------------------------------------- output


def _plain_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    header = [c.upper() for c in columns]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    )


def _rows(report: Report) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for b in report.backends:
        detail = "; ".join(p.removeprefix(f"backend `{b.name}`: ") for p in b.problems)
        rows.append(
            (
                b.name,
                b.kind,
                b.status,
                detail or b.detail,
                ", ".join([*b.used_by, *(f"workflow {w}" for w in b.used_by_workflows)]) or "-",
            )
        )
    return rows


def _print_console(report: Report) -> None:
    files = ", ".join(str(p) for p in report.config_files) or "none (built-in defaults)"
    lines = [
        f"project root: {report.project_root}",
        f"team: {report.team or 'none'}",
        f"config files: {files}",
        *(f"ignored: {f.path} ({f.why})" for f in report.ignored_config_files),
    ]
    columns = ("backend", "kind", "status", "detail", "used by")
    rows = _rows(report)
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        console = Console()
        for line in lines:
            console.print(line, highlight=False, markup=False)
        table = Table(title="Backends", title_justify="left", header_style="bold")
        for column in columns:
            table.add_column(column)
        style = {"ok": "green", "unusable": "red", "disabled": "dim"}
        for row in rows:
            cells = [escape(cell) for cell in row]
            cells[2] = f"[{style.get(row[2], 'default')}]{row[2]}[/]"
            table.add_row(*cells)
        console.print(table)
    else:
        click.echo("\n".join(lines))
        click.echo("")
        click.echo(_plain_table(columns, rows) if rows else "no backends configured")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for problem in report.problems:
        click.echo(f"error: {problem}", err=True)
    if report.ok:
        click.echo("every backend the project uses is ready", err=True)


@click.command("doctor")
@global_options
@click.pass_context
def doctor_command(ctx: click.Context, /, **given: Any) -> None:
    """Check that every backend can be used: CLIs run, keys set, servers reachable."""
    import trio

    from muxlang.config import config_layers, find_project_root, load_config
    from muxlang.config.discovery import config_files_status

    opts: Settings = settings(ctx, **given)
    root = find_project_root(None, opts.directory)
    config, diagnostics = load_config(root, team=opts.team)
    errors = [d for d in diagnostics if d.is_error]
    if errors:
        for d in errors:
            click.echo(
                f"{d.file}:{d.span.line}:{d.span.column}: error[{d.code}]: {d.message}", err=True
            )
        raise SystemExit(2)
    layers, _ = config_layers(root)
    configured = {
        name
        for layer in layers
        if layer.path is not None
        for name in layer.data.get("backends") or {}
    }
    usage = project_usage(root, config, layers)
    if usage.workflow_backends:  # probe what only a workflow defines, as configured
        config = dataclasses.replace(
            config, backends={**config.backends, **usage.workflow_backends}
        )
        configured |= set(usage.workflow_backends)
    report = trio.run(partial(diagnose, config, configured=configured, usage=usage))
    report.ignored_config_files = [f for f in config_files_status(root) if not f.read]
    if opts.output == "json":
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
        for problem in report.problems:
            click.echo(f"error: {problem}", err=True)
    elif opts.output == "quiet":
        for problem in report.problems:
            click.echo(f"error: {problem}", err=True)
    else:
        _print_console(report)
    raise SystemExit(0 if report.ok else 1)
