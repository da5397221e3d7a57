"""``muxlang init``: write a starter ``.muxlang/`` for this project.

It writes ``.muxlang/config.toml`` (backends for the LLM command-line tools found
on PATH, the three default roles ``analyzer``, ``coder`` and ``quick``, team
definitions for common kinds of project) and one workflow,
``.muxlang/workflows/check.toml``. It never overwrites: when the config exists it
exits 1, unless ``--force``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import click

from muxlang._frozen import frozen
from muxlang.cli.options import global_options, settings


@frozen(slots=True)
class KnownCli:
    name: str
    command: str
    args: tuple[str, ...]


#: LLM command-line tools init looks for, in the order roles will use them.
KNOWN_CLIS = (
    KnownCli("claude", "claude", ("-p",)),
    KnownCli("codex", "codex", ("exec",)),
    KnownCli("gemini", "gemini", ("-p",)),
    KnownCli("ollama", "ollama", ("run", "llama3")),
)


@frozen(slots=True)
class TeamTemplate:
    name: str
    description: str
    detect: tuple[str, ...]
    verify: str


TEAMS = (
    TeamTemplate("rust", "Rust projects", ("Cargo.toml",), "cargo clippy && cargo test"),
    TeamTemplate(
        "python",
        "Python projects",
        ("pyproject.toml", "setup.py", "setup.cfg"),
        "python3 -m pytest -q",
    ),
    TeamTemplate("node", "JavaScript and TypeScript projects", ("package.json",), "npm test"),
    TeamTemplate("go", "Go projects", ("go.mod",), "go vet ./... && go test ./..."),
)


def _toml_str(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _table(header: str, **values: str | tuple[str, ...] | list[str]) -> list[str]:
    """The lines of a ``[header]`` table of string and string-list values, then a blank."""
    lines = [f"[{header}]"]
    for key, value in values.items():
        if isinstance(value, str):
            lines.append(f"{key} = {_toml_str(value)}")
        else:
            lines.append(f"{key} = [{', '.join(_toml_str(item) for item in value)}]")
    return [*lines, ""]


def render_config(found: list[KnownCli], user_roles: frozenset[str] = frozenset()) -> str:
    """The text of the starter config for the CLIs ``found`` on PATH. Roles the
    user's own config defines (``user_roles``) are left to it, not redefined here."""
    out = [
        "# muxlang configuration for this project, written by `muxlang init`.",
        "# Layers, later wins: built-in defaults < ~/.config/muxlang/config.toml",
        "# < this file < a workflow's own tables < command-line flags.",
        "# Check it with `muxlang validate` and `muxlang doctor`.",
        "",
        "[defaults]",
        "max_concurrent = 8",
        "",
    ]
    if found:
        out.append("# LLM command-line tools found on PATH when this file was written.")
    for cli in found:
        out += _table(f"backends.{cli.name}", command=cli.command, args=cli.args)
    out += [
        "# An HTTP backend: `command` is the API's base URL; the key comes from the",
        "# OPENAI_API_KEY environment variable (export OPENAI_API_KEY=... before a run).",
        "[backends.openai]",
        'command = "https://api.openai.com/v1"',
        'protocol = "openai"',
        'model = "gpt-4o"',
        'api_key = "${OPENAI_API_KEY}"',
        f"enabled = {'false' if found else 'true'}",
        "",
    ]
    names = [cli.name for cli in found] or ["openai"]
    roles = (
        ("analyzer", "Code analysis and review", "fallback", names),
        ("coder", "Writes code and edits", "fallback", names),
        ("quick", "Fast, short answers", "first", list(reversed(names))),
    )
    kept = [role for role, *_ in roles if role in user_roles]
    if kept:
        out += [
            f"# Roles {', '.join(kept)} come from your user config; they are not redefined here.",
            "",
        ]
    for role, description, execution, backends in roles:
        if role in user_roles:
            continue
        out += _table(
            f"roles.{role}", description=description, backends=backends, execution=execution
        )
    out.append("# The first team whose `detect` globs match is the team; `--team` overrides.")
    for team in TEAMS:
        out += _table(
            f"teams.{team.name}",
            description=team.description,
            detect=team.detect,
            verify=team.verify,
        )
    return "\n".join(out)


#: what a run writes under .muxlang/: never to be committed (a journal from a
#: repository would be obeyed by the next run's recovery)
GITIGNORE = """\
# written by `muxlang init`: muxlang's run-time state, not configuration
journal/
apply.lock
.made-by-muxlang
runs.db
runs.db-*
"""

CHECK_WORKFLOW = """\
# Run the project's checks; when they fail, ask the `analyzer` role why.
#   muxlang run check
name = "check"
description = "Run the checks and explain failures"

[[steps]]
name = "checks"
type = "shell"
run = {verify}
continue_on_error = true

[[steps]]
name = "explain"
type = "query"
role = "analyzer"
depends_on = ["checks"]
if = "failure()"
prompt = \"\"\"
These checks failed. Explain the most likely cause and how to fix it, briefly.

{{{{ steps.checks.output }}}}
{{{{ steps.checks.stderr }}}}
\"\"\"
"""


def detected_team(root: Path) -> TeamTemplate | None:
    """The team template the project's config would detect: the first whose ``detect``
    globs match under ``root``, by the same rules as :func:`muxlang.config.detect_team`."""
    from muxlang.config import detect_team
    from muxlang.config.models import TeamConfig

    by_name = {team.name: team for team in TEAMS}
    teams = {
        team.name: TeamConfig(
            description=team.description, detect=list(team.detect), verify=team.verify
        )
        for team in TEAMS
    }
    name = detect_team(teams, root)
    return by_name[name] if name is not None else None


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command("init")
@click.option(
    "--force",
    is_flag=True,
    help="Overwrite an existing .muxlang/config.toml (an existing workflow is always kept).",
)
@global_options
@click.pass_context
def init_command(ctx: click.Context, /, force: bool, **given: Any) -> None:
    """Write a starter .muxlang/ for this project.

    Writes .muxlang/config.toml and .muxlang/workflows/check.toml at the project
    root (the nearest ancestor with .muxlang/, .llm-mux/ or .git, or -C DIR).
    Never overwrites the config without --force, and never overwrites a workflow.
    """
    from muxlang.config import find_project_root
    from muxlang.config.resolve import config_layers

    opts = settings(ctx, **given)
    root = find_project_root(Path.cwd(), opts.directory)
    config_path = root / ".muxlang" / "config.toml"
    workflow_path = root / ".muxlang" / "workflows" / "check.toml"
    legacy = root / ".llm-mux" / "config.toml"

    def refuse(message: str, code: int) -> None:
        click.echo(f"muxlang init: {message}", err=True)
        if opts.output == "json":
            click.echo(json.dumps({"root": str(root), "written": [], "error": message}))
        ctx.exit(code)

    by_name = {team.name: team for team in TEAMS}
    if opts.team is not None and opts.team not in by_name:
        refuse(f"unknown team {opts.team!r}: init knows {', '.join(by_name)}", 2)
    if config_path.exists() and not force:
        refuse(f"{config_path} exists already; nothing written (use --force to overwrite it)", 1)
    if legacy.exists() and not config_path.exists() and not force:
        refuse(
            f"{legacy} is this project's config, and muxlang reads it as it is; a new "
            ".muxlang/config.toml would hide it. Nothing written (use --force to write one "
            "anyway, then move what you need from the llm-mux file into it)",
            1,
        )
    layers, _ = config_layers(root)
    user_roles = frozenset(
        role for layer in layers if layer.name == "user" for role in layer.data.get("roles", {})
    )
    found = [cli for cli in KNOWN_CLIS if shutil.which(cli.command)]
    team = by_name[opts.team] if opts.team else detected_team(root)
    verify = (
        team.verify if team else "echo 'no checks configured: edit .muxlang/workflows/check.toml'"
    )
    _write_atomic(config_path, render_config(found, user_roles))
    written, kept = [config_path], []
    ignore_path = root / ".muxlang" / ".gitignore"
    if not ignore_path.exists():  # run-time state must never be committed (docs/reliability.md)
        _write_atomic(ignore_path, GITIGNORE)
        written.append(ignore_path)
    if workflow_path.exists():
        kept.append(workflow_path)
    else:
        _write_atomic(workflow_path, CHECK_WORKFLOW.format(verify=_toml_str(verify)))
        written.append(workflow_path)
    from muxlang.cli.editor_setup import write_editor_files

    # editors find the schemas with no setup (docs/editors.md); nothing overwritten
    editor_written, editor_kept = write_editor_files(root, _write_atomic)
    written.extend(editor_written)
    summary = {
        "root": str(root),
        "written": [str(path.relative_to(root)) for path in written],
        "kept": [str(path.relative_to(root)) for path in kept],
        "backends": [cli.name for cli in found],
        "team": team.name if team else None,
    }
    for path in written:
        click.echo(f"wrote {path.relative_to(root)}", err=True)
    for path in kept:
        click.echo(
            f"kept {path.relative_to(root)} (it exists; init never overwrites a workflow)", err=True
        )
    for path in editor_kept:
        click.echo(
            f"kept {path.relative_to(root)} (it exists): see docs/editors.md to point "
            "editors at muxlang's schemas",
            err=True,
        )
    click.echo(
        "backends found on PATH: "
        + (", ".join(c.name for c in found) or "none")
        + f"; team: {team.name if team else 'none detected'}",
        err=True,
    )
    if not found:
        click.echo(
            "no LLM command-line tool ("
            + ", ".join(cli.command for cli in KNOWN_CLIS)
            + ") is on PATH, so every role points at the `openai` HTTP backend: set "
            "OPENAI_API_KEY (export "
            "OPENAI_API_KEY=...), or install one of those tools and run `muxlang init --force`.",
            err=True,
        )
    click.echo(
        "next: `muxlang doctor` checks that the backends can answer; `muxlang run check` "
        "runs the project's checks (.muxlang/workflows/check.toml).",
        err=True,
    )
    if opts.output == "json":
        click.echo(json.dumps(summary))
