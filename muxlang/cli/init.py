"""``muxlang init``: write a starter ``.muxlang/`` for this project.

It writes ``.muxlang/config.toml`` (backends for the LLM command-line tools found
on PATH, the three default roles ``analyzer``, ``coder`` and ``quick``, team
definitions for common kinds of project) and one workflow,
``.muxlang/workflows/check.toml``. It never overwrites: when the config exists it
exits 1, unless ``--force``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from muxlang.cli.options import global_options, settings


@dataclass(frozen=True, slots=True)
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


@dataclass(frozen=True, slots=True)
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


def _toml_list(items: tuple[str, ...] | list[str]) -> str:
    return "[" + ", ".join(_toml_str(item) for item in items) + "]"


def _toml_str(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def render_config(found: list[KnownCli]) -> str:
    """The text of the starter config for the CLIs ``found`` on PATH."""
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
        out += [
            f"[backends.{cli.name}]",
            f"command = {_toml_str(cli.command)}",
            f"args = {_toml_list(cli.args)}",
            "",
        ]
    out += [
        "# An HTTP backend: `command` is the API's base URL.",
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
    for role, description, execution, backends in roles:
        out += [
            f"[roles.{role}]",
            f"description = {_toml_str(description)}",
            f"backends = {_toml_list(backends)}",
            f"execution = {_toml_str(execution)}",
            "",
        ]
    out.append("# The first team whose `detect` globs match is the team; `--team` overrides.")
    for team in TEAMS:
        out += [
            f"[teams.{team.name}]",
            f"description = {_toml_str(team.description)}",
            f"detect = {_toml_list(team.detect)}",
            f"verify = {_toml_str(team.verify)}",
            "",
        ]
    return "\n".join(out)


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
@click.option("--force", is_flag=True, help="Overwrite an existing .muxlang/config.toml.")
@global_options
@click.pass_context
def init_command(ctx: click.Context, /, force: bool, **given: Any) -> None:
    """Write a starter .muxlang/ for this project."""
    opts = settings(ctx, **given)
    root = (opts.directory or Path.cwd()).resolve()
    config_path = root / ".muxlang" / "config.toml"
    workflow_path = root / ".muxlang" / "workflows" / "check.toml"
    if config_path.exists() and not force:
        click.echo(
            f"muxlang init: {config_path} exists already; nothing written "
            "(use --force to overwrite it)",
            err=True,
        )
        ctx.exit(1)
    found = [cli for cli in KNOWN_CLIS if shutil.which(cli.command)]
    team = detected_team(root)
    verify = (
        team.verify if team else "echo 'no checks configured: edit .muxlang/workflows/check.toml'"
    )
    _write_atomic(config_path, render_config(found))
    if force or not workflow_path.exists():
        _write_atomic(workflow_path, CHECK_WORKFLOW.format(verify=_toml_str(verify)))
    click.echo(f"wrote {config_path.relative_to(root)}", err=True)
    click.echo(f"wrote {workflow_path.relative_to(root)}", err=True)
    click.echo(
        "backends found on PATH: "
        + (", ".join(c.name for c in found) or "none")
        + f"; team: {team.name if team else 'none detected'}",
        err=True,
    )
    click.echo("next: `muxlang doctor` checks the backends, `muxlang run check` runs", err=True)
